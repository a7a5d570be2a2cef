"""Params: a step's dataclass logged as params, and any run's params read back in canonical form,
whichever launcher logged them (`mlflow run` shell-quotes values that need it)."""

from __future__ import annotations

import dataclasses
import shlex

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.configs import STEP_CONFIGS
from pipeline.errors import InputError
from pipeline.tracking.runs import STEP_TAG


def log_config(config) -> None:
    """Log a step's dataclass as params, skipping names `mlflow run` already logged.

    MLflow params are immutable, and `mlflow run` logs the entry point's params first; its
    strings can differ in form only (e.g. '1e-3' and '0.001'), since both were parsed the same.
    `normalized_params` reads either form back the same.
    """
    run = mlflow.active_run()
    existing = MlflowClient().get_run(run.info.run_id).data.params
    params = {k: v for k, v in dataclasses.asdict(config).items() if k not in existing}
    if params:
        mlflow.log_params(params)


def _unquoted(value: str) -> str:
    """A param as the step received it: `mlflow run` shell-quotes values that need it ("'a;b'", "''")."""
    if value[:1] in ("'", '"'):
        try:
            parts = shlex.split(value)
        except ValueError:
            return value
        if len(parts) <= 1:
            return parts[0] if parts else ""
    return value


def run_param(run, name: str, default: str | None = None) -> str | None:
    """One param of a run, unquoted (see `normalized_params` for all of them, canonical)."""
    value = run.data.params.get(name)
    return default if value is None else _unquoted(value)


def normalized_params(run) -> dict[str, str]:
    """A run's params as canonical strings, whichever launcher logged them.

    `mlflow run -P lr=1e-3` logs '1e-3' and a quoted sampler list, `python -m pipeline` logs
    '0.001' and the canonical list: both come back here as the step's config would log them.
    """
    params = {name: _unquoted(value) for name, value in run.data.params.items()}
    config_class = STEP_CONFIGS.get(run.data.tags.get(STEP_TAG, ""))
    if config_class is not None:
        names = {f.name for f in dataclasses.fields(config_class)}
        try:
            config = config_class(**{k: v for k, v in params.items() if k in names})
            params.update({k: str(v) for k, v in dataclasses.asdict(config).items()})
        except InputError:
            pass  # params this code refuses (the step refused them, or another version logged them): as logged
    return params
