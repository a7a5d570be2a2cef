"""Tracking owns every run's life: it creates runs (named when created), nests them, ends them with a status
and a reason, sweeps stale ones whose process is gone, and finds them (reuse); it also holds the references
to runs, models, checkpoints and data. Steps may log metrics, params and images into their own open run
with `mlflow.log_*`; no other module creates, ends or searches runs.

- launch: how a step's process was launched (the run `mlflow run` made for it, its driver), read once;
- step: a step's own run (adopted, new or nested) and side runs such as the classifier's;
- runs: finding runs (lookups only answer), ending them, the sweep of stale runs, child runs (search trials);
- code: the code version (a content hash of the files that decide a step's result, dirty, git commit);
- local_files: where the files the pipeline writes by default go (study files, report);
- reuse: configuration keys, reuse-or-launch and launching a step (the drivers, main and search);
- params: a step's params logged and read back canonically;
- references: models and prepared data by reference, dataset inputs;
- artifacts: grids, figures, models, checkpoints, copied artifacts and scores;
- classifier_run: the evaluation classifier's run, found by source digest or trained once;
- registry: a generator registered under a name and an alias (only the drivers, main and search, register).

`from pipeline import tracking; tracking.step_run(...)`: the names the steps use are re-exported here;
everything else is imported from the module that defines it.
"""

from pipeline.configs import RUN_ID_PATTERN
from pipeline.tracking.artifacts import (
    SETTINGS_TAG,
    artifact_batch,
    copy_scores,
    load_latest_checkpoint,
    load_model,
    log_checkpoint,
    log_figure,
    log_model,
    log_samples,
)
from pipeline.tracking.code import code_version
from pipeline.tracking.launch import launch_context
from pipeline.tracking.local_files import local_path
from pipeline.tracking.params import log_config, run_param
from pipeline.tracking.references import data_source, log_dataset_inputs, model_uri, resolve_data
from pipeline.tracking.runs import STEP_TAG, children, get_run, sweep_stale_runs, use_experiment_of
from pipeline.tracking.step import step_run

__all__ = [
    "RUN_ID_PATTERN",
    "SETTINGS_TAG",
    "STEP_TAG",
    "artifact_batch",
    "children",
    "code_version",
    "copy_scores",
    "data_source",
    "get_run",
    "launch_context",
    "load_latest_checkpoint",
    "load_model",
    "local_path",
    "log_checkpoint",
    "log_config",
    "log_dataset_inputs",
    "log_figure",
    "log_model",
    "log_samples",
    "model_uri",
    "resolve_data",
    "run_param",
    "step_run",
    "sweep_stale_runs",
    "use_experiment_of",
]
