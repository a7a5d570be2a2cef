"""Small MLflow helpers shared by the steps: params, references between runs, system metrics."""

from __future__ import annotations

import dataclasses
import re
import shlex
import warnings

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.errors import InputError

RUN_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")


def start_step_run(step: str, log_system_metrics: bool = False):
    """The step's run: the one `mlflow run` opened (MLFLOW_RUN_ID) or a new one, tagged with the step."""
    if log_system_metrics:
        mlflow.set_system_metrics_sampling_interval(2)
        mlflow.set_system_metrics_samples_before_logging(1)
    run = mlflow.start_run(log_system_metrics=log_system_metrics)
    mlflow.set_tag("pipeline.step", step)
    return run


def log_config(config) -> None:
    """Log a step's dataclass as params, skipping names `mlflow run` already logged.

    MLflow params are immutable, and `mlflow run` logs the entry point's params first; its
    strings can differ in form only (e.g. '1e-3' and '0.001'), since both were parsed the same.
    """
    run = mlflow.active_run()
    existing = MlflowClient().get_run(run.info.run_id).data.params
    params = {k: v for k, v in dataclasses.asdict(config).items() if k not in existing}
    if params:
        mlflow.log_params(params)


def get_run(run_id: str, parameter: str):
    """The run with this id, or an InputError naming the parameter."""
    try:
        return MlflowClient().get_run(run_id)
    except Exception as error:  # MlflowException for an unknown id
        raise InputError(f"parameter '{parameter}': no run {run_id!r} in {mlflow.get_tracking_uri()} ({error})") from None


def run_param(run, name: str, default: str | None = None) -> str | None:
    """A run's param as the step received it.

    `mlflow run` logs an entry point's params shell-quoted when they need it (a sampler list with
    ';' is stored as "'normal:0,1;...'"), so undo that quoting before use.
    """
    value = run.data.params.get(name)
    if value is None:
        return default
    if value[:1] in ("'", '"'):
        parts = shlex.split(value)
        if len(parts) == 1:
            return parts[0]
    return value


def model_uri(reference: str, parameter: str = "model") -> tuple[str, str | None]:
    """(model URI, source run id or None) for a train run id or a model URI."""
    if RUN_ID_PATTERN.match(reference):
        get_run(reference, parameter)
        return f"runs:/{reference}/model", reference
    match = re.match(r"^runs:/([0-9a-f]{32})/", reference)
    if match:
        get_run(match.group(1), parameter)
        return reference, match.group(1)
    if ":/" in reference or "://" in reference:
        return reference, None
    raise InputError(f"parameter '{parameter}': got {reference!r}; allowed: a train run id or a model URI (runs:/..., models:/...)")


def concrete_uri(reference: str, default_artifact: str) -> str:
    """A URI MLflow's dataset sources can resolve: runs:/ URIs and run ids become artifact-store URIs."""
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository
    from mlflow.tracking.artifact_utils import get_artifact_uri

    if RUN_ID_PATTERN.match(reference):
        return get_artifact_uri(reference, default_artifact)
    if reference.startswith("runs:/"):
        return RunsArtifactRepository.get_underlying_uri(reference)
    return reference


def log_dataset_inputs(prepared, name: str, source: str) -> None:
    """Record the train/val/test splits of prepared data as MLflow dataset inputs, with its digest.

    `source` is a local path or a concrete artifact URI (see `concrete_uri`).
    """
    for split, context in (("train", "training"), ("val", "validation"), ("test", "testing")):
        images, labels = prepared.splits[split]
        with warnings.catch_warnings():  # a local path matches MLflow's file source twice; either is right
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            dataset = mlflow.data.from_numpy(images, targets=labels, source=source, name=f"{name}-{split}",
                                             digest=prepared.digest[:16])
        mlflow.log_input(dataset, context=context)
