"""The training loop and the `train` step around it.

Hot path: the split lives on the device as one float tensor; each epoch walks one random
permutation of it, one gather per batch, so no per-sample Python work and, on CUDA, no wait on
the host inside an epoch (loss sums stay on the device until the epoch ends).
"""

from __future__ import annotations

import dataclasses
import math
import tempfile
from pathlib import Path

import mlflow
import numpy as np
import torch
from tqdm.auto import tqdm

from pipeline import checkpoints, datasets, plots
from pipeline.configs import TrainConfig
from pipeline.devices import resolve_device
from pipeline.errors import InputError
from pipeline.model import VAE, loss_terms
from pipeline.samplers import Sampler, parse_samplers
from pipeline.tracking import concrete_uri, log_config, log_dataset_inputs, start_step_run

TERMS = ("loss", "recon", "kl")
GRID_SIZE = 64
EVAL_BATCH = 4096
# What a checkpoint must share with the run that resumes it, so the result is the uninterrupted one.
RESUME_KEYS = ("loss", "forward", "latent_size", "hidden_size", "batch_size", "lr", "seed")


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite: the run stops FAILED instead of logging NaNs."""


def as_float_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 784) in [0, 1] on the device."""
    return torch.from_numpy(images).to(device).reshape(len(images), -1).float().div_(255.0)


def make_optimizer(model: VAE, lr: float, device: torch.device) -> torch.optim.Adam:
    """Adam with default betas/eps; the fused kernel where torch has one (same update, fewer ops)."""
    return torch.optim.Adam(model.parameters(), lr=lr, fused=device.type in ("cpu", "cuda"))


def train_epoch(model: VAE, optimizer, images: torch.Tensor, batch_size: int, loss: str) -> torch.Tensor:
    """One pass over shuffled images; returns the summed (loss, recon, kl) over images, on the device.

    Each batch is gathered through a slice of one permutation: the same batches as permuting the
    whole split first, without writing (and, on the CPU, page-faulting in) a copy of it every epoch.
    index_select, not images[indices]: the same rows, about 5x faster on the CPU.
    """
    model.train()
    count = images.shape[0]
    order = torch.randperm(count, device=images.device)
    sums = torch.zeros(3, device=images.device)
    for start in range(0, count, batch_size):
        batch = images.index_select(0, order[start : start + batch_size])
        terms = loss_terms(model(batch), batch, loss)
        optimizer.zero_grad(set_to_none=True)
        terms.total.backward()
        optimizer.step()
        sums += torch.stack(terms).detach() * batch.shape[0]
    return sums


@torch.no_grad()
def evaluate_epoch(model: VAE, images: torch.Tensor, loss: str, batch_size: int = EVAL_BATCH) -> torch.Tensor:
    """Summed (loss, recon, kl) over images with the model's own forward pass, without gradients."""
    model.eval()
    sums = torch.zeros(3, device=images.device)
    for start in range(0, images.shape[0], batch_size):
        batch = images[start : start + batch_size]
        sums += torch.stack(loss_terms(model(batch), batch, loss)) * batch.shape[0]
    return sums


def epoch_metrics(train_sums: torch.Tensor, train_count: int, val_sums: torch.Tensor, val_count: int) -> dict:
    values = torch.cat([train_sums / train_count, val_sums / val_count]).tolist()  # one host sync
    names = [f"train_{t}" for t in TERMS] + [f"val_{t}" for t in TERMS]
    return dict(zip(names, values))


@torch.no_grad()
def draw_samples(model: VAE, sampler: Sampler, n: int, seed: int, device: torch.device) -> torch.Tensor:
    """n decoded images; seeded on a forked RNG so training's random stream is left as it was."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        model.eval()
        return model.decode(sampler.sample(n, model.latent_size, device))


def log_sample_grids(model, samplers, seed, device, epoch: int) -> None:
    """One grid per sampler with step=epoch, the same latent draws each time, so progress shows."""
    for sampler in samplers:
        grid = plots.grid_array(draw_samples(model, sampler, GRID_SIZE, seed, device))
        mlflow.log_image(grid, key=f"samples_{sampler.key}", step=epoch)


def log_final_images(model, samplers, config: TrainConfig, device, test_images: torch.Tensor) -> None:
    """Per sampler a grid and n_images singles; a reconstruction grid; all under fixed names."""
    for sampler in samplers:
        images = draw_samples(model, sampler, max(GRID_SIZE, config.n_images), config.seed, device)
        mlflow.log_image(plots.grid_array(images[:GRID_SIZE]), artifact_file=f"samples/{sampler.key}/grid.png")
        for index, single in enumerate(plots.single_arrays(images[: config.n_images])):
            mlflow.log_image(single, artifact_file=f"samples/{sampler.key}/image_{index}.png")
    inputs = test_images[:10]
    with torch.no_grad(), torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(config.seed)
        model.eval()
        outputs = torch.sigmoid(model(inputs).logits)
    mlflow.log_image(plots.reconstruction_array(inputs, outputs), artifact_file="reconstructions.png")


def check_resumable(state: dict, config: TrainConfig, digest: str) -> None:
    """Refuse a checkpoint whose run differs in anything that changes the result."""
    saved = state["config"]
    for key in RESUME_KEYS:
        if str(saved[key]) != str(getattr(config, key)):
            raise InputError(f"parameter '{key}': got {getattr(config, key)!r} but the checkpoint to resume has {saved[key]!r}")
    if state["data_digest"] != digest:
        raise InputError(f"parameter 'data': digest {digest[:12]} differs from the checkpoint's {state['data_digest'][:12]}")
    if state["epoch"] > config.epochs:
        raise InputError(f"parameter 'epochs': got {config.epochs}, but the checkpoint is already at epoch {state['epoch']}")


def train(config: TrainConfig) -> str:
    """Run the `train` step; returns the MLflow run id."""
    samplers = parse_samplers(config.samplers)
    device = resolve_device(config.device)
    prepared = datasets.resolve(config.data, config.val_fraction, config.seed, config.data_root)
    resumed = checkpoints.load_latest(config.resume) if config.resume else None
    if resumed is not None:
        check_resumable(resumed, config, prepared.digest)

    with start_step_run("train", log_system_metrics=True) as run:
        log_config(config)
        mlflow.log_params({"data_digest": prepared.digest, "device_used": str(device)})
        if config.resume:
            mlflow.set_tag("resumed_from", config.resume)
        source = (str(datasets.cached_path(prepared.digest)) if datasets.is_dataset_name(config.data)
                  else concrete_uri(config.data, datasets.PREPARED_ARTIFACT))
        log_dataset_inputs(prepared, config.data, source)
        split = {name: as_float_tensor(images, device) for name, (images, _) in prepared.splits.items()}

        torch.manual_seed(config.seed)
        model = VAE(config.latent_size, config.hidden_size, config.forward).to(device)
        optimizer = make_optimizer(model, config.lr, device)
        history: list[dict] = []
        if resumed is not None:
            model.load_state_dict(resumed["model"])
            optimizer.load_state_dict(resumed["optimizer"])
            torch.set_rng_state(resumed["rng"]["cpu"])
            if device.type == "cuda" and resumed["rng"].get("cuda") is not None:
                torch.cuda.set_rng_state_all(resumed["rng"]["cuda"])
            history = list(resumed["history"])
            for row in history:  # the resumed run carries the whole history
                mlflow.log_metrics({k: v for k, v in row.items() if k != "epoch"}, step=row["epoch"])

        with tempfile.TemporaryDirectory(prefix="vae-checkpoints-") as checkpoint_dir:
            progress = tqdm(range(len(history) + 1, config.epochs + 1), desc="train", unit="epoch",
                            initial=len(history), total=config.epochs)
            for epoch in progress:
                train_sums = train_epoch(model, optimizer, split["train"], config.batch_size, config.loss)
                val_sums = evaluate_epoch(model, split["val"], config.loss)
                metrics = epoch_metrics(train_sums, len(split["train"]), val_sums, len(split["val"]))
                if not all(math.isfinite(v) for v in metrics.values()):
                    message = (f"training diverged at epoch {epoch}: train loss {metrics['train_loss']}, "
                               f"validation loss {metrics['val_loss']} (try a smaller lr than {config.lr})")
                    mlflow.set_tag("failure_reason", message)
                    raise DivergenceError(message)
                mlflow.log_metrics(metrics, step=epoch)
                history.append({"epoch": epoch, **metrics})
                progress.set_postfix(train=f"{metrics['train_loss']:.2f}", val=f"{metrics['val_loss']:.2f}")
                if config.sample_every and epoch % config.sample_every == 0:
                    log_sample_grids(model, samplers, config.seed, device, epoch)
                if epoch % config.checkpoint_every == 0 or epoch == config.epochs:
                    state = {
                        "model": model.state_dict(),
                        "optimizer": optimizer.state_dict(),
                        "epoch": epoch,
                        "rng": {"cpu": torch.get_rng_state(),
                                "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None},
                        "history": history,
                        "config": dataclasses.asdict(config),
                        "data_digest": prepared.digest,
                    }
                    checkpoints.log_checkpoint(state, Path(checkpoint_dir))
            progress.close()

        test_terms = (evaluate_epoch(model, split["test"], config.loss) / len(split["test"])).tolist()
        mlflow.log_metrics({f"test_{t}": v for t, v in zip(TERMS, test_terms)}, step=config.epochs)
        if config.sample_every == 0 or config.epochs % config.sample_every:
            log_sample_grids(model, samplers, config.seed, device, config.epochs)
        log_final_images(model, samplers, config, device, split["test"])
        if history:
            figure = plots.loss_curve_figure(history)
            mlflow.log_figure(figure, "loss_curve.png")
            plots.plt.close(figure)
        log_model(model)
        return run.info.run_id


def log_model(model: VAE) -> None:
    """The trained model as an MLflow pytorch model, on the CPU, with this package's code beside it."""
    import mlflow.pytorch

    package_dir = Path(__file__).resolve().parent
    mlflow.pytorch.log_model(
        model.to("cpu").eval(),
        name="model",
        serialization_format="pickle",  # pt2 keeps only forward(); sampling needs decode()
        code_paths=[str(package_dir)],
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
    )
