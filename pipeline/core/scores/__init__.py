"""Scores of samples and models: quality (FID, PRDC, sharpness), likelihood, spread over seeds."""
