"""Choosing the torch device: `auto` picks cuda, then mps, then cpu; and the CPU's float mode."""

from __future__ import annotations

import torch

from pipeline.errors import InputError


def resolve_device(name: str) -> torch.device:
    """The device `name` stands for. Every step resolves its device before its first torch
    computation, so this is also where the CPU starts flushing denormal floats to zero (below)."""
    flush_denormals()
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise InputError(f"parameter 'device': got {name!r} but CUDA is not available here; allowed: auto | cpu")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise InputError(f"parameter 'device': got {name!r} but MPS is not available here; allowed: auto | cpu")
    return device


def flush_denormals() -> None:
    """Treat floats below 1.2e-38 as zero on the CPU (x86 FTZ/DAZ; a no-op where unsupported).

    As the VAE trains, Adam's second moments and the decoder's log-sigmoids fill with such tiny
    values, and each costs the CPU a slow path: on the 2-core machine a training step on the
    100-epoch study model took 1.7x as long as on a fresh one (the fused Adam kernel 3.7x), and with
    flushing both take the same time. The quick preset's scores came out identical to the last
    digit with and without it.
    The mode is per thread and OpenMP's threads copy it when they start: it must be set before the
    first parallel torch operation, which is why a step sets it with its device.
    """
    torch.set_flush_denormal(True)
