"""The training loop: epochs over a split held on the device, and the state a checkpoint keeps.

Hot path: the split lives on the device as one float tensor; each epoch walks one random
permutation of it, one gather per batch, so no per-sample Python work and, on CUDA, no wait on
the host inside an epoch (loss sums stay on the device until the epoch ends).
"""

from __future__ import annotations

import contextlib
import math

import numpy as np
import torch

from pipeline.core.model.precision import PRECISIONS
from pipeline.core.model.vae import VAE, ForwardOutput, loss_terms
from pipeline.errors import InputError

TERMS = ("loss", "recon", "kl")
EVAL_BATCH = 4096
# What a checkpoint must share with the run that resumes it, so the result is the uninterrupted one.
RESUME_KEYS = ("loss", "forward", "latent_size", "hidden_size", "batch_size", "lr", "seed", "precision")
RESUME_DEFAULTS = {"precision": "32"}  # what a checkpoint written before a key existed trained with


class DivergenceError(RuntimeError):
    """The loss became NaN or infinite: the run stops FAILED instead of logging NaNs."""


def as_float_tensor(images: np.ndarray, device: torch.device) -> torch.Tensor:
    """uint8 (N, 28, 28) -> float32 (N, 784) in [0, 1] on the device. `torch.tensor` copies: the prepared
    splits are read-only arrays, which `torch.from_numpy` would share and warn about."""
    return torch.tensor(images, device=device).reshape(len(images), -1).float().div_(255.0)


def make_optimizer(model: VAE, lr: float, device: torch.device) -> torch.optim.Adam:
    """torch.optim.Adam with default betas and eps; its fused implementation on the CPU and CUDA (one
    kernel per step instead of a loop of small ops; torch >= 2.4 has it on both), the default elsewhere.

    Building it imports torch's dynamo compiler (every torch.optim optimizer does; docs/speed.md):
    this happens before the first epoch, so `time_epoch_s` does not count it. The state_dict is
    torch.optim's own, so checkpoints load with `torch.load(..., weights_only=True)`.
    """
    fused = True if device.type in ("cpu", "cuda") else None
    return torch.optim.Adam(model.parameters(), lr=lr, fused=fused)


def autocast(precision: str, device: torch.device):
    """The forward pass's context: none for "32"; for "bf16-mixed", torch.autocast in bfloat16 on the
    device's type, so matmuls compute in bf16 while the parameters and Adam's state stay float32."""
    if precision == "32":
        return contextlib.nullcontext()
    if precision == "bf16-mixed":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    raise ValueError(f"precision {precision!r}; allowed: {', '.join(PRECISIONS)}")


def forward_in_float32(model: VAE, batch: torch.Tensor, precision: str) -> ForwardOutput:
    """The model's forward pass under `precision`, its outputs as float32: the loss is reduced outside
    autocast (BCE with logits is not autocast-safe on CUDA), and a float32 tensor passes unchanged."""
    with autocast(precision, batch.device):
        output = model(batch)
    return ForwardOutput(*(tensor.float() for tensor in output))


def train_epoch(
    model: VAE, optimizer, images: torch.Tensor, batch_size: int, loss: str, precision: str = "32"
) -> torch.Tensor:
    """One pass over shuffled images; returns the summed (loss, recon, kl) over images, on the device.

    Each batch is gathered through a slice of one permutation: the same batches as permuting the
    whole split first, without writing (and, on the CPU, page-faulting in) a copy of it every epoch.
    index_select, not images[indices]: the same rows, about 5x faster on the CPU. The backward pass
    runs outside autocast, as torch recommends: each op's gradient takes its forward op's dtype.
    """
    model.train()
    count = images.shape[0]
    order = torch.randperm(count, device=images.device)
    sums = torch.zeros(3, device=images.device)
    for start in range(0, count, batch_size):
        batch = images.index_select(0, order[start : start + batch_size])
        terms = loss_terms(forward_in_float32(model, batch, precision), batch, loss)
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


def check_finite(metrics: dict, epoch: int, lr: float) -> None:
    """Raise DivergenceError naming the epoch when any epoch metric is NaN or infinite."""
    if not all(math.isfinite(v) for v in metrics.values()):
        raise DivergenceError(
            f"training diverged at epoch {epoch}: train loss {metrics['train_loss']}, "
            f"validation loss {metrics['val_loss']} (try a smaller lr than {lr})"
        )


def checkpoint_state(
    model: VAE, optimizer, epoch: int, history: list[dict], config: dict, digest: str, device: torch.device
) -> dict:
    """Everything a resumed run needs to continue bit for bit: weights, optimizer, RNG, history."""
    return {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict(),
        "epoch": epoch,
        "rng": {
            "cpu": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
        },
        "history": history,
        "config": config,
        "data_digest": digest,
    }


def restore_state(state: dict, model: VAE, optimizer, device: torch.device) -> list[dict]:
    """Load a checkpoint into model, optimizer and RNGs; returns its metric history."""
    model.load_state_dict(state["model"])
    optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["cpu"])
    if device.type == "cuda" and state["rng"].get("cuda") is not None:
        torch.cuda.set_rng_state_all(state["rng"]["cuda"])
    return list(state["history"])


def check_resumable(state: dict, config: dict, digest: str) -> None:
    """Refuse a checkpoint whose run differs in anything that changes the result."""
    saved = state["config"]
    for key in RESUME_KEYS:
        held = saved.get(key, RESUME_DEFAULTS.get(key))
        if str(held) != str(config[key]):
            raise InputError(f"parameter '{key}': got {config[key]!r} but the checkpoint to resume has {held!r}")
    if state["data_digest"] != digest:
        raise InputError(
            f"parameter 'data': digest {digest[:12]} differs from the checkpoint's {state['data_digest'][:12]}"
        )
    if state["epoch"] > config["epochs"]:
        raise InputError(
            f"parameter 'epochs': got {config['epochs']}, but the checkpoint is already at epoch {state['epoch']}"
        )
