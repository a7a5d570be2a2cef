"""Seeded side computations that leave the caller's random stream exactly as it was.

Sampling a grid in the middle of training, or an evaluation's draws, must not shift training's
own random numbers (that would make a run with sample grids differ from one without).
"""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def seeded(seed: int, device: torch.device | str = "cpu"):
    """Run the block with torch's generators seeded to `seed`, restoring them afterwards."""
    device = torch.device(device)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        yield
