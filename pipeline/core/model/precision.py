"""The training precisions, in Lightning's names: float32 throughout, or bfloat16 autocast over float32
weights. Apart from training.py so that parsing a step's parameters names them without importing torch."""

PRECISIONS = ("32", "bf16-mixed")
