"""The `sample` step: decode latent draws of a trained model into grids and single images."""

from __future__ import annotations

import mlflow
import torch

from pipeline import plots
from pipeline.configs import DEFAULT_SAMPLERS, SampleConfig
from pipeline.devices import resolve_device
from pipeline.errors import InputError
from pipeline.samplers import parse_samplers
from pipeline.tracking import get_run, log_config, model_uri, run_param, start_step_run
from pipeline.training import draw_samples


def load_model(uri: str, device: torch.device):
    """A logged VAE on `device`, whichever device it was trained on."""
    import mlflow.pytorch

    try:
        return mlflow.pytorch.load_model(uri, map_location=device).to(device).eval()
    except Exception as error:  # MlflowException, OSError for a missing model
        raise InputError(f"parameter 'model': cannot load a model from {uri!r} ({error})") from None


def sample(config: SampleConfig) -> str:
    """Run the `sample` step; returns the MLflow run id."""
    uri, source_run_id = model_uri(config.model)
    specs = config.samplers
    if not specs:
        specs = run_param(get_run(source_run_id, "model"), "samplers", DEFAULT_SAMPLERS) if source_run_id else DEFAULT_SAMPLERS
    samplers = parse_samplers(specs)
    device = resolve_device(config.device)
    model = load_model(uri, device)

    with start_step_run("sample") as run:
        log_config(config)
        mlflow.set_tags({"source_model_uri": uri, **({"source_run_id": source_run_id} if source_run_id else {})})
        for sampler in samplers:
            images = draw_samples(model, sampler, config.n, config.seed, device)
            mlflow.log_image(plots.grid_array(images), artifact_file=f"samples/{sampler.key}/grid.png")
            for index, single in enumerate(plots.single_arrays(images)):
                mlflow.log_image(single, artifact_file=f"samples/{sampler.key}/image_{index}.png")
        print(f"sample run {run.info.run_id}: {len(samplers)} samplers x {config.n} images from {uri}")
        return run.info.run_id
