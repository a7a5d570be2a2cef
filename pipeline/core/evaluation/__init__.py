"""An evaluation: the context built once, sampler scoring, and both judges on the samples."""
