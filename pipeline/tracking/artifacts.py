"""What a run holds besides metrics: sample grids and figures, the model, checkpoints, artifacts copied
between runs, and an evaluation's scores copied onto its train run.

torch and matplotlib are imported by the functions that use them, so that main, which only finds and
launches runs, starts without them.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import numpy as np
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient
from PIL import Image

from pipeline.configs import RUN_ID_PATTERN
from pipeline.core.model import checkpoints
from pipeline.errors import InputError
from pipeline.tracking.runs import end_stale_runs, get_run

if TYPE_CHECKING:
    import torch

CHECKPOINT_DIR = "checkpoints"
SETTINGS_TAG = "scores.settings"
PNG_COMPRESS_LEVEL = 3  # zlib level: half the encoding time of the default (6), files no larger for our pictures


class ArtifactBatch:
    """Images and files written to one local folder and logged in one call as the block ends; tables
    logged with `mlflow.log_table`, so MLflow's UI lists them as its own.

    Each `mlflow.log_image` is a folder of its own and a call to the store; a batch is one upload. The images are uint8 arrays (grey, RGB or RGBA), saved as the same
    PNG pixels `mlflow.log_image` writes. A table costs what `mlflow.log_table` costs (it lists the run's
    artifacts and reads the run back to extend its `mlflow.loggedArtifacts` tag): the documented call,
    kept at that cost, rather than writing MLflow's tag by hand.
    """

    def __init__(self, folder: Path, artifact_path: str):
        self.folder, self.artifact_path = folder, artifact_path

    def image(self, name: str, array: np.ndarray) -> None:
        if array.dtype != np.uint8:
            raise ValueError(f"{name}: an image is a uint8 array, got {array.dtype}")
        Image.fromarray(array).save(self.folder / name, format="png", compress_level=PNG_COMPRESS_LEVEL)

    def file(self, name: str, data: bytes) -> None:
        (self.folder / name).write_bytes(data)

    def table(self, name: str, columns: dict) -> None:
        mlflow.log_table(columns, artifact_file=f"{self.artifact_path}/{name}")


@contextmanager
def artifact_batch(artifact_path: str):
    """Yields an ArtifactBatch; when the block ends, its images and files are logged to the active run
    under `artifact_path`."""
    with tempfile.TemporaryDirectory(prefix="vae-artifacts-") as tmp:
        batch = ArtifactBatch(Path(tmp), artifact_path)
        yield batch
        mlflow.log_artifacts(tmp, artifact_path)


def log_samples(images: torch.Tensor, key: str, n_singles: int, folder: str = "samples") -> None:
    """A grid of up to plots.GRID_SIZE images and `n_singles` single images under `{folder}/{key}/`."""
    from pipeline.core import plots  # lazily, as matplotlib: main starts without it (module docstring)

    with artifact_batch(f"{folder}/{key}") as batch:
        batch.image("grid.png", plots.grid_array(images[: plots.GRID_SIZE]))
        for index, single in enumerate(plots.single_arrays(images[:n_singles])):
            batch.image(f"image_{index}.png", single)


def log_figure(figure, artifact_file: str) -> None:
    from pipeline.core import plots  # lazily, as matplotlib: main starts without it (module docstring)

    mlflow.log_figure(figure, artifact_file)
    plots.pyplot().close(figure)


def log_model(model: torch.nn.Module) -> None:
    """A model as an MLflow pytorch model, on the CPU, with this package's code beside it.

    Pickle format: pt2 keeps only forward(); sampling needs decode(), the classifier features().
    Requirements pinned through `pip_requirements`, so MLflow does not infer them (inference loads
    the model again in a subprocess).
    """
    import mlflow.pytorch  # lazily, as torch: main starts without it (module docstring)
    import torch

    mlflow.pytorch.log_model(
        model.to("cpu").eval(),
        name="model",
        serialization_format="pickle",
        code_paths=[str(Path(__file__).resolve().parents[1])],
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
    )


def load_model(uri: str, device: torch.device, parameter: str = "model"):
    """A logged model on `device`, whichever device it was trained on."""
    import mlflow.pytorch  # lazily, as torch: main starts without it (module docstring)

    try:
        with tempfile.TemporaryDirectory(prefix="vae-model-") as tmp:  # MLflow's own download folder would stay
            return mlflow.pytorch.load_model(uri, map_location=device, dst_path=tmp).to(device).eval()
    except Exception as error:  # MlflowException, OSError for a missing model
        raise InputError(f"parameter '{parameter}': cannot load a model from {uri!r} ({error})") from None


@contextmanager
def downloaded(**where):
    """A local copy of an artifact (`mlflow.artifacts.download_artifacts`'s arguments: `run_id` and
    `artifact_path`, or `artifact_uri`), removed when the block ends.

    Without a destination MLflow downloads from a remote store (an `mlflow server`, S3) into a
    temporary folder of its own that nobody removes; against a local store it hands back the
    stored file itself. A folder of ours serves both, and is gone afterwards.
    """
    with tempfile.TemporaryDirectory(prefix="vae-download-") as tmp:
        yield mlflow.artifacts.download_artifacts(**where, dst_path=tmp)


def log_checkpoint(state: dict, folder: Path) -> Path:
    """Write the checkpoint for state['epoch'] locally and log it to the active run."""
    path = checkpoints.save_atomically(state, folder / checkpoints.checkpoint_name(state["epoch"]))
    mlflow.log_artifact(str(path), artifact_path=CHECKPOINT_DIR)
    return path


def load_latest_checkpoint(reference: str) -> dict:
    """The newest loadable checkpoint of a train run (by id), or the one a URI or path names.

    A checkpoint cut short by an interruption fails to load and the one before it is taken. A run
    left RUNNING by a process that is gone (killed) is ended FAILED first, as main's rerun does.
    """
    if RUN_ID_PATTERN.match(reference):
        end_stale_runs([get_run(reference, "resume")])
        listed = [Path(f.path).name for f in MlflowClient().list_artifacts(reference, CHECKPOINT_DIR)]
        names = sorted((n for n in listed if checkpoints.NAME_PATTERN.search(n)), reverse=True)
        if not names:
            raise InputError(f"parameter 'resume': run {reference} has no checkpoints under {CHECKPOINT_DIR}/")
        for name in names:
            try:
                with downloaded(run_id=reference, artifact_path=f"{CHECKPOINT_DIR}/{name}") as local:
                    return checkpoints.load(local)
            except Exception:  # truncated or unreadable: take the one before
                continue
        raise InputError(f"parameter 'resume': none of the checkpoints of run {reference} can be loaded")
    try:
        if Path(reference).is_file():
            return checkpoints.load(reference)
        with downloaded(artifact_uri=reference) as local:
            return checkpoints.load(local)
    except Exception as error:
        raise InputError(f"parameter 'resume': cannot load a checkpoint from {reference!r} ({error})") from None


def has_checkpoints(run_id: str) -> bool:
    return any(MlflowClient().list_artifacts(run_id, CHECKPOINT_DIR))


def copy_artifacts(source_run_id: str, path: str, target_run_id: str, folder: Path) -> None:
    """Copy a folder of artifacts from one run to another (same path), and into a local folder."""
    client = MlflowClient()
    with tempfile.TemporaryDirectory(prefix="vae-artifacts-") as tmp:
        local = Path(client.download_artifacts(source_run_id, path, tmp))
        client.log_artifacts(target_run_id, str(local), path)
        shutil.copytree(local, folder, dirs_exist_ok=True)


def copy_scores(
    train_run_id: str,
    scores: dict[str, float],
    tags: dict[str, str],
    settings: str,
    evaluation_run_id: str,
    mode: str,
    score_key,
) -> str:
    """Put an evaluation's model-level scores (likelihood, reconstruction, the real data's figures) on its
    train run too, so train runs line up in the compare view; each sampler's scores live in its own child
    run of the evaluation, not here.

    A train run holds scores of one evaluation setting only (tag `scores.settings`: sample count,
    importance samples, seed, classifier): with `mode=auto` scores under other settings are not
    copied, `mode=replace` replaces them (a score the new evaluation lacks becomes NaN, so no
    column mixes settings), `mode=skip` copies nothing. `score_key(name)` tells score metrics and
    tags from the train run's own. Returns what was done, for the log and the evaluation run's tags.
    """
    client = MlflowClient()
    train = client.get_run(train_run_id)
    held = train.data.tags.get(SETTINGS_TAG)
    if mode == "skip":
        return "skipped (copy_scores=skip)"
    if held is not None and held != settings and mode == "auto":
        return (
            f"not copied: the train run holds scores measured with {held} "
            f"(evaluation {train.data.tags.get('scores.evaluation_run_id')}); copy_scores=replace replaces them"
        )
    values = dict(scores)
    if held is not None and held != settings:
        for key in train.data.metrics:
            if score_key(key) and key not in values:
                values[key] = float("nan")
        for key in train.data.tags:
            if score_key(key) and key not in tags:
                client.delete_tag(train_run_id, key)
    now = int(time.time() * 1000)
    metrics = [Metric(key, value, now, 0) for key, value in values.items()]
    for start in range(0, len(metrics), 1000):
        client.log_batch(train_run_id, metrics=metrics[start : start + 1000])
    for key, value in {
        **tags,
        SETTINGS_TAG: settings,
        "scores.evaluation_run_id": evaluation_run_id,
        "evaluation_run_id": evaluation_run_id,
    }.items():
        client.set_tag(train_run_id, key, value)
    return "copied" if held in (None, settings) else f"copied, replacing scores measured with {held}"
