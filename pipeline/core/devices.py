"""Choosing the torch device: `auto` picks cuda, then mps, then cpu."""

from __future__ import annotations

import torch

from pipeline.errors import InputError


def resolve_device(name: str) -> torch.device:
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
