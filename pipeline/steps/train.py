"""The `train` step: fit the study's VAE and log metrics, samples, checkpoints and the model."""

from __future__ import annotations

import dataclasses
import tempfile
import time
from pathlib import Path

import mlflow
import torch
from tqdm.auto import tqdm

from pipeline import tracking
from pipeline.configs import TrainConfig
from pipeline.core import plots
from pipeline.core.devices import resolve_device
from pipeline.core.experiments import cell_name
from pipeline.core.model import training
from pipeline.core.model.samplers import draw_samples, needs_fit, parse_samplers
from pipeline.core.model.vae import VAE
from pipeline.core.seeding import seeded
from pipeline.process.pause import pause_point


def run_name(config: TrainConfig) -> str:
    return f"train {config.loss} {config.forward} z{config.latent_size} s{config.seed}"


def log_sample_grids(model, samplers, seed, device, epoch: int) -> None:
    """One grid per sampler with step=epoch, the same latent draws each time, so progress shows."""
    for sampler in samplers:
        grid = plots.grid_array(draw_samples(model, sampler, plots.GRID_SIZE, seed, device))
        # synchronous: MLflow's asynchronous queues poll once a second, so ending them would hold up each step
        mlflow.log_image(grid, key=f"samples_{sampler.key}", step=epoch, synchronous=True)


def log_final_images(model, samplers, config: TrainConfig, device, test_images: torch.Tensor) -> None:
    """Per sampler a grid and n_images singles; a reconstruction grid; all under fixed names."""
    for sampler in samplers:
        images = draw_samples(model, sampler, max(plots.GRID_SIZE, config.n_images), config.seed, device)
        tracking.log_samples(images, sampler.key, config.n_images)
    inputs = test_images[:10]
    with torch.no_grad(), seeded(config.seed, device):
        model.eval()
        outputs = torch.sigmoid(model(inputs).logits)
    mlflow.log_image(plots.reconstruction_array(inputs, outputs), artifact_file="reconstructions.png")


def run_tags(config: TrainConfig) -> dict[str, str]:
    """What the MLflow UI groups train runs by."""
    return {
        "pipeline.cell": cell_name(config.loss, config.forward),
        "pipeline.loss": config.loss,
        "pipeline.forward": config.forward,
        "pipeline.latent_size": str(config.latent_size),
        "pipeline.seed": str(config.seed),
    }


def log_inputs(config: TrainConfig, prepared, device) -> None:
    """The config, the data's digests and datasets, and where the training ran from."""
    tracking.log_config(config)
    mlflow.log_params({"data_digest": prepared.digest, "device_used": str(device)})
    mlflow.set_tag("source_digest", prepared.source_digest)
    if config.resume != "none":
        mlflow.set_tag("resumed_from", config.resume)
    tracking.log_dataset_inputs(prepared, config.data, tracking.data_source(config.data, prepared))


def build_model(config: TrainConfig, device, resumed: dict | None) -> tuple[VAE, torch.optim.Optimizer, list[dict]]:
    """(model, optimizer, history): seeded fresh, or restored from a checkpoint with its history logged again,
    since the resumed run carries the whole history."""
    torch.manual_seed(config.seed)
    model = VAE(config.latent_size, config.hidden_size, config.forward).to(device)
    optimizer = training.make_optimizer(model, config.lr, device)
    history: list[dict] = []
    if resumed is not None:
        history = training.restore_state(resumed, model, optimizer, device)
        for row in history:
            mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])
    return model, optimizer, history


def run_epoch(config: TrainConfig, model: VAE, optimizer, split: dict, epoch: int) -> dict:
    """One epoch of training and validation, its metrics logged; a loss that diverged fails the run, saying so."""
    started = time.perf_counter()
    train_sums = training.train_epoch(
        model, optimizer, split["train"], config.batch_size, config.loss, config.precision
    )
    val_sums = training.evaluate_epoch(model, split["val"], config.loss)
    metrics = training.epoch_metrics(train_sums, len(split["train"]), val_sums, len(split["val"]))
    epoch_seconds = round(time.perf_counter() - started, 4)  # the rest of the step is fixed cost
    try:
        training.check_finite(metrics, epoch, config.lr)
    except training.DivergenceError as error:
        mlflow.set_tag("failure_reason", str(error))
        raise
    mlflow.log_metrics({**metrics, "time_epoch_s": epoch_seconds}, step=epoch)
    return metrics


def fit(config: TrainConfig, model: VAE, optimizer, split: dict, history: list[dict], samplers, device, digest: str):
    """The epochs left: each one's metrics, a sample grid every `sample_every`, a checkpoint every
    `checkpoint_every` and at the last epoch."""
    settings = dataclasses.asdict(config)
    with tempfile.TemporaryDirectory(prefix="vae-checkpoints-") as checkpoint_dir:
        progress = tqdm(
            range(len(history) + 1, config.epochs + 1),
            desc="train",
            unit="epoch",
            initial=len(history),
            total=config.epochs,
        )
        for epoch in progress:
            metrics = run_epoch(config, model, optimizer, split, epoch)
            history.append({"epoch": epoch, **metrics})
            progress.set_postfix(train=f"{metrics['train_loss']:.2f}", val=f"{metrics['val_loss']:.2f}")
            if config.sample_every and epoch % config.sample_every == 0:
                log_sample_grids(model, samplers, config.seed, device, epoch)
            if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
                state = training.checkpoint_state(model, optimizer, epoch, history, settings, digest, device)
                tracking.log_checkpoint(state, Path(checkpoint_dir))
                pause_point(f"train.epoch.{epoch}")  # kill tests (pipeline/process/pause.py)
        progress.close()


def log_results(config: TrainConfig, model: VAE, samplers, device, test_images: torch.Tensor, history: list[dict]):
    """The test split's loss terms, the last sample grids and images, the loss curve, the model and its generator."""
    test_terms = (training.evaluate_epoch(model, test_images, config.loss) / len(test_images)).tolist()
    mlflow.log_metrics({f"test_{t}": v for t, v in zip(training.TERMS, test_terms)}, step=config.epochs)
    if config.sample_every == 0 or config.epochs % config.sample_every:
        log_sample_grids(model, samplers, config.seed, device, config.epochs)
    log_final_images(model, samplers, config, device, test_images)
    if history:
        tracking.log_figure(plots.loss_curve_figure(history), "loss_curve.png")
    tracking.log_model(model)
    from pipeline.serving import log_generator  # mlflow.pyfunc: paid only here, at the end

    log_generator(model, next((s.spec for s in samplers if not needs_fit(s)), "normal:0,1"))


def train(config: TrainConfig) -> str:
    """Run the `train` step (all input checks before the run opens); returns the MLflow run id."""
    samplers = parse_samplers(config.samplers)
    device = resolve_device(config.device)
    prepared = tracking.resolve_data(config.data, config.val_fraction, config.seed, config.data_root)
    resumed = tracking.load_latest_checkpoint(config.resume) if config.resume != "none" else None
    if resumed is not None:
        training.check_resumable(resumed, dataclasses.asdict(config), prepared.digest)
    with tracking.step_run("train", run_name(config), config, tags=run_tags(config), log_system_metrics=True) as run:
        log_inputs(config, prepared, device)
        split = {name: training.as_float_tensor(images, device) for name, (images, _) in prepared.splits.items()}
        model, optimizer, history = build_model(config, device, resumed)
        fit(config, model, optimizer, split, history, samplers, device, prepared.digest)
        log_results(config, model, samplers, device, split["test"], history)
        return run.info.run_id
