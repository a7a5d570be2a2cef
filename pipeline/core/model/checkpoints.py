"""Training checkpoints on disk: written atomically, loaded with weights_only=True.

Where they are kept (as `checkpoints/epoch_NNNN.pt` artifacts of the train run) is tracking's part.
torch is imported where a checkpoint is written or read: finding a run's checkpoints by name (main's
reuse) does not load it.
"""

from __future__ import annotations

import re
from pathlib import Path

from pipeline.core.files import atomic_path

NAME_PATTERN = re.compile(r"epoch_(\d+)\.pt$")


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:04d}.pt"


def save_atomically(state: dict, path: Path) -> Path:
    """torch.save to a temporary file in the same folder, then os.replace: never half-written."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def load(path: str | Path) -> dict:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
