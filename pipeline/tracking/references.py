"""References between runs: a model by run id or URI, prepared data by name, run id or URI, and the
data a run used recorded as MLflow dataset inputs."""

from __future__ import annotations

import posixpath
import re
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import mlflow
from mlflow.data.http_dataset_source import HTTPDatasetSource
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.configs import RUN_ID_PATTERN
from pipeline.core.data import datasets
from pipeline.errors import InputError
from pipeline.tracking.artifacts import downloaded
from pipeline.tracking.runs import get_run


def model_uri(reference: str, parameter: str = "model") -> tuple[str, str | None]:
    """(model URI, source train run id or None) for a train run id or a model URI."""
    if RUN_ID_PATTERN.match(reference):
        get_run(reference, parameter)
        return f"runs:/{reference}/model", reference
    match = re.match(r"^runs:/([0-9a-f]{32})/", reference)
    if match:
        get_run(match.group(1), parameter)
        return reference, match.group(1)
    if reference.startswith("models:/"):
        return reference, _registered_model_run_id(reference)
    if ":/" in reference or "://" in reference:
        return reference, None
    raise InputError(
        f"parameter '{parameter}': got {reference!r}; allowed: a train run id or a model URI (runs:/..., models:/...)"
    )


def _registered_model_run_id(uri: str) -> str | None:
    """The train run behind a models:/ URI (name/version, name/stage or `latest`, name@alias or MLflow 3's
    logged model id), if known."""
    try:
        return mlflow.models.get_model_info(uri).run_id
    except Exception:  # MlflowException for an unknown name, version, alias or model
        return None


def resolve_data(
    reference: str, val_fraction: float = 0.1, seed: int = 0, data_root: str = "data"
) -> datasets.Prepared:
    """The prepared data a step's `data` parameter names: a dataset name, a prepare_data run id,
    an artifact URI, or a local prepared file."""
    if datasets.is_dataset_name(reference) or not (
        RUN_ID_PATTERN.match(reference) or "://" in reference or reference.startswith("runs:/")
    ):
        return datasets.resolve_local(reference, val_fraction, seed, data_root)
    where = (
        {"run_id": reference, "artifact_path": datasets.PREPARED_ARTIFACT}
        if RUN_ID_PATTERN.match(reference)
        else {"artifact_uri": reference}
    )
    try:
        with downloaded(**where) as local:
            return datasets.load_prepared(Path(local))
    except InputError:
        raise
    except Exception as error:  # MlflowException, OSError
        raise InputError(f"parameter 'data': cannot fetch prepared data from {reference!r} ({error})") from None


def data_source(reference: str, prepared: datasets.Prepared) -> str:
    """Where the data of a run came from, as a path or an artifact-store URI MLflow can resolve."""
    if datasets.is_dataset_name(reference):
        return str(datasets.cached_path(prepared.digest))
    if RUN_ID_PATTERN.match(reference):
        return _artifact_uri(reference, datasets.PREPARED_ARTIFACT)
    match = re.match(r"^runs:/([0-9a-f]{32})/(.*)$", reference)
    if match:
        return _artifact_uri(match.group(1), match.group(2))
    return reference


def _artifact_uri(run_id: str, path: str) -> str:
    """The artifact store's URI of `path` in run `run_id`: the run's artifact URI joined with the path."""
    return posixpath.join(MlflowClient().get_run(run_id).info.artifact_uri, path)


def dataset_source(source, tracking_uri: str | None = None):
    """`source` as MLflow's dataset inputs take it: a path or URI that MLflow resolves itself, or, for an
    `mlflow-artifacts:` URI (an `mlflow server` that proxies artifacts), which MLflow has no dataset
    source for, an HTTP source on the server's artifact download URL (`mlflow.data.get_source(...).load()`
    fetches it) on `tracking_uri` (default: the current one)."""
    if not isinstance(source, str) or not source.startswith("mlflow-artifacts:"):
        return source
    return HTTPDatasetSource(proxied_artifact_url(source, tracking_uri or mlflow.get_tracking_uri()))


def proxied_artifact_url(artifact_uri: str, tracking_uri: str) -> str:
    """The download URL of an `mlflow-artifacts:` URI on the tracking server that proxies it: MLflow's REST
    path `/api/2.0/mlflow-artifacts/artifacts/<path>` under the tracking URI, on the host the URI names,
    else the tracking server's."""
    artifact, server = urlparse(artifact_uri), urlparse(tracking_uri)
    path = re.sub("//+", "/", f"{server.path}/api/2.0/mlflow-artifacts/artifacts/{artifact.path}")
    return urlunparse((server.scheme, artifact.netloc or server.netloc, path, "", "", "")).rstrip("/")


def log_dataset_inputs(prepared: datasets.Prepared, name: str, source) -> None:
    """Record the train/val/test splits of prepared data as MLflow dataset inputs, with its digest;
    `source` is a path, an artifact URI or a DatasetSource (see `dataset_source`).

    Two runs that log the same new dataset at the same moment race in MLflow's store (both insert
    it: a unique-constraint error for one, from SQLite or from PostgreSQL behind a server); the
    loser tries again and then finds the dataset.
    """
    source = dataset_source(source)
    for split, context in (("train", "training"), ("val", "validation"), ("test", "testing")):
        images, labels = prepared.splits[split]
        with warnings.catch_warnings():  # a local path matches MLflow's file source twice; either is right
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            dataset = mlflow.data.from_numpy(
                images, targets=labels, source=source, name=f"{name}-{split}", digest=prepared.digest[:16]
            )
        for attempt in range(3):
            try:
                mlflow.log_input(dataset, context=context)
                break
            except MlflowException as error:
                if "unique" not in str(error).lower() or attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))
