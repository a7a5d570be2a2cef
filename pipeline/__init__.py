"""MLflow-tracked pipeline that reproduces, measures and extends a VAE study on MNIST."""
