"""The VAE: its model, training loop, samplers, generation, checkpoints and convergence."""
