"""The `sample` step: decode latent draws of a trained model into grids and single images."""

from __future__ import annotations

from pipeline import tracking
from pipeline.configs import DEFAULT_SAMPLERS, SampleConfig
from pipeline.core.devices import resolve_device
from pipeline.core.model.samplers import draw_samples, parse_samplers


def sample(config: SampleConfig) -> str:
    """Run the `sample` step beside (and as a child of) its train run; returns the MLflow run id."""
    uri, source_run_id = tracking.model_uri(config.model)
    source_run = tracking.get_run(source_run_id, "model") if source_run_id else None
    specs = config.samplers
    if specs == "auto":
        specs = tracking.run_param(source_run, "samplers", DEFAULT_SAMPLERS) if source_run else DEFAULT_SAMPLERS
    samplers = parse_samplers(specs)
    device = resolve_device(config.device)
    model = tracking.load_model(uri, device)

    source_name = source_run.info.run_name if source_run else uri
    tags = {"source_model_uri": uri, **({"source_run_id": source_run_id} if source_run_id else {})}
    with tracking.step_run(
        "sample",
        f"sample {source_name}",
        config,
        parent_run_id=source_run_id,
        experiment_id=tracking.use_experiment_of(source_run) if source_run else None,
        tags=tags,
    ) as run:
        tracking.log_config(config)
        for sampler in samplers:
            images = draw_samples(model, sampler, config.n, config.seed, device)
            tracking.log_samples(images, sampler.key, config.n)
        print(f"sample run {run.info.run_id}: {len(samplers)} samplers x {config.n} images from {uri}")
        return run.info.run_id
