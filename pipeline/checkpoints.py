"""Training checkpoints: model, optimizer, epoch, RNG states and metric history, written atomically.

Each checkpoint is logged to the run as `checkpoints/epoch_NNNN.pt`, so a run interrupted on one
machine can be resumed on another; resuming takes the newest one that loads.
"""

from __future__ import annotations

import re
from pathlib import Path

import mlflow
import torch
from mlflow.tracking import MlflowClient

from pipeline.errors import InputError
from pipeline.files import atomic_path
from pipeline.tracking import RUN_ID_PATTERN, get_run

CHECKPOINT_DIR = "checkpoints"
NAME_PATTERN = re.compile(r"epoch_(\d+)\.pt$")


def checkpoint_name(epoch: int) -> str:
    return f"epoch_{epoch:04d}.pt"


def save_atomically(state: dict, path: Path) -> Path:
    """torch.save to a temporary file in the same folder, then os.replace: never half-written."""
    with atomic_path(path) as tmp:
        torch.save(state, tmp)
    return path


def log_checkpoint(state: dict, folder: Path) -> Path:
    """Write the checkpoint for state['epoch'] locally and log it to the active run."""
    path = save_atomically(state, folder / checkpoint_name(state["epoch"]))
    mlflow.log_artifact(str(path), artifact_path=CHECKPOINT_DIR)
    return path


def load(path: str | Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


def _run_checkpoints(run_id: str) -> list[str]:
    names = [Path(f.path).name for f in MlflowClient().list_artifacts(run_id, CHECKPOINT_DIR)]
    return sorted((n for n in names if NAME_PATTERN.search(n)), reverse=True)


def load_latest(reference: str) -> dict:
    """The newest loadable checkpoint of a train run (by id), or the one a URI or path names."""
    if RUN_ID_PATTERN.match(reference):
        get_run(reference, "resume")
        names = _run_checkpoints(reference)
        if not names:
            raise InputError(f"parameter 'resume': run {reference} has no checkpoints under {CHECKPOINT_DIR}/")
        for name in names:
            try:
                local = mlflow.artifacts.download_artifacts(run_id=reference, artifact_path=f"{CHECKPOINT_DIR}/{name}")
                return load(local)
            except Exception:  # a copy cut short by the interruption: take the one before
                continue
        raise InputError(f"parameter 'resume': none of the checkpoints of run {reference} can be loaded")
    try:
        local = reference if Path(reference).is_file() else mlflow.artifacts.download_artifacts(artifact_uri=reference)
        return load(local)
    except Exception as error:
        raise InputError(f"parameter 'resume': cannot load a checkpoint from {reference!r} ({error})") from None
