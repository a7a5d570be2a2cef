"""The search's parts: where the study lives (storage), its policy (study), the models it scores
(models), the workers that run trials (workers) and what happens to trials of a dead worker (recovery).
The `search` step (pipeline/steps/search.py) drives them."""
