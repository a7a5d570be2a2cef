"""The core: data, model, samplers, training loop, metrics and plots. Plain PyTorch/NumPy, no mlflow."""
