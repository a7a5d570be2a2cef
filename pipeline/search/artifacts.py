"""The study's artifact store: each trial's sample grid as an Optuna artifact, so optuna-dashboard
shows the samples beside the trial's FID (`optuna-dashboard STORAGE --artifact-dir FOLDER`).

By default the store is the folder `optuna-artifacts` beside the study's file (SQLite or journal), or
beside the MLflow database (or in the working directory) for PostgreSQL; `artifact_dir` moves it.
"""

from __future__ import annotations

import os
import shlex
import tempfile
from pathlib import Path

from optuna.artifacts import FileSystemArtifactStore, upload_artifact

from pipeline.configs import SearchConfig
from pipeline.errors import InputError
from pipeline.search.storage import Storage, storage_folder

FOLDER = "optuna-artifacts"
GRID_FILE = "samples_grid.png"


def artifact_folder(config: SearchConfig, storage: Storage) -> Path:
    """The artifact store's folder, absolute (workers and the printed command agree on it)."""
    if config.artifact_dir != "auto":
        return Path(config.artifact_dir).expanduser().resolve()
    if storage.kind in ("sqlite", "journal"):
        path = Path(storage.url[len("sqlite:///") :] if storage.kind == "sqlite" else storage.url)
        return path.expanduser().resolve().parent / FOLDER
    return storage_folder().resolve() / FOLDER


def checked_folder(config: SearchConfig, storage: Storage) -> Path:
    """The artifact folder, created; an InputError naming `artifact_dir` if it cannot be written."""
    folder = artifact_folder(config, storage)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        writable = os.access(folder, os.W_OK)
    except OSError as error:
        writable, folder = False, f"{folder} ({error.strerror})"
    if not writable:
        raise InputError(
            f"parameter 'artifact_dir': got {config.artifact_dir!r}; cannot write to {folder}; "
            "allowed: auto | a folder that can be created and written"
        )
    return folder


def dashboard_command(storage: Storage, folder: Path) -> str:
    return f"optuna-dashboard {shlex.quote(storage.dashboard)} --artifact-dir {shlex.quote(str(folder))}"


def upload_grid(trial, png: bytes, folder: Path) -> str:
    """Store a trial's sample grid (PNG bytes) in the artifact store; returns the artifact id."""
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="vae-trial-grid-") as scratch:
        path = Path(scratch) / GRID_FILE  # the dashboard shows the file's name
        path.write_bytes(png)
        return upload_artifact(
            artifact_store=FileSystemArtifactStore(str(folder)),
            file_path=str(path),
            study_or_trial=trial,
            mimetype="image/png",
        )
