"""A step's own run, in one of three ways, each a function named for it: the run `mlflow run` made for the
step's process is adopted (`adopted_run`), a new run is opened, nested under the active run when there is
one (`new_run`), or a side run is opened beside the step's own, such as the classifier's (`side_run`).
`step_run` picks the first or the second from the launch context (pipeline/tracking/launch.py). Each run is
named, tagged with its step, key, code version, process and driver, and marks its experiment as a training
one. Nothing else: the step's process is set up by its process entry (pipeline/__main__.py).
"""

from __future__ import annotations

from contextlib import contextmanager

import mlflow
import psutil
from mlflow.tracking import MlflowClient

from pipeline.tracking.launch import LaunchContext, launch_context
from pipeline.tracking.reuse import reuse_tags
from pipeline.tracking.runs import DRIVER_TAG, PARENT_TAG, STEP_TAG, mark_training_experiment

# MLflow's system metrics: a sample every second, logged as taken. MLflow logs none for a run shorter than
# one interval, nor for the last part of a longer one (it stops sampling when the run ends).
SYSTEM_METRICS_INTERVAL_S = 1


@contextmanager
def step_run(
    step: str,
    name: str,
    config=None,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    tags: dict | None = None,
    log_system_metrics: bool = False,
    launch: LaunchContext | None = None,
):
    """The step's run, named `name`: the run `mlflow run` made for this process when it was launched so
    (`launch`, default: read now) and no run is active; otherwise a new one, a child of `parent_run_id`
    when given (and of the active run, when a driver calls the step in its own process). With `config`,
    the run carries what step reuse looks for (see `run_tags`). Yields the active run, and ends it."""
    launch = launch or launch_context()
    run_tags = step_tags(step, name, config, parent_run_id, tags, launch)
    if launch.run_id and mlflow.active_run() is None:
        opened = adopted_run(launch.run_id, run_tags, log_system_metrics)
    else:
        opened = new_run(name, run_tags, experiment_id, log_system_metrics)
    with opened as run:
        yield run


def step_tags(step: str, name: str, config, parent_run_id: str | None, tags: dict | None, launch: LaunchContext):
    """The tags of a step's run: step, name, the caller's tags, its reuse tags (configuration key, code
    version, process) when it has a `config`, the driver that launched it, and its parent."""
    run_tags = {STEP_TAG: step, "mlflow.runName": name, **(tags or {})}
    if config is not None:
        run_tags.update(reuse_tags(step, config))
    if launch.driver:  # launched by main or search (its watchdog was started by the process entry)
        run_tags[DRIVER_TAG] = launch.driver
    if parent_run_id:
        run_tags[PARENT_TAG] = parent_run_id
    return run_tags


@contextmanager
def adopted_run(run_id: str, tags: dict, log_system_metrics: bool = False):
    """The run `mlflow run` made for this process, taken over and tagged; a driver that launched it
    already gave it its parent, which is kept."""
    if PARENT_TAG in MlflowClient().get_run(run_id).data.tags:
        tags = {k: v for k, v in tags.items() if k != PARENT_TAG}
    with _started(run_id, tags, nested=False, log_system_metrics=log_system_metrics) as run:
        yield run


@contextmanager
def new_run(name: str, tags: dict, experiment_id: str | None = None, log_system_metrics: bool = False):
    """A new run named `name`, nested under the active run when there is one. It goes to `experiment_id`,
    else the active run's experiment, else the one MLflow picks for a new run (set_experiment,
    MLFLOW_EXPERIMENT_NAME or _ID, the default): MLflow has no public getter of that one
    (mlflow/mlflow#24387), so `mlflow.start_run` creates the run there, with MLflow's source tags."""
    active = mlflow.active_run()
    if experiment_id is None and active is None:
        _start_system_metrics(log_system_metrics)
        with mlflow.start_run(run_name=name, tags=tags, log_system_metrics=log_system_metrics) as run:
            mark_training_experiment(run.info.experiment_id)
            yield run
        return
    experiment_id = experiment_id or active.info.experiment_id
    run_id = MlflowClient().create_run(experiment_id, tags=tags, run_name=name).info.run_id
    with _started(run_id, tags, nested=active is not None, log_system_metrics=log_system_metrics) as run:
        yield run


@contextmanager
def side_run(step: str, name: str, experiment_id: str, parent_run_id: str | None = None, tags: dict | None = None):
    """A run of `step` beside the step's own (the classifier's): never the run `mlflow run` made for the
    process, a child of `parent_run_id` when given; active while in the block, ended when it ends."""
    run_tags = step_tags(step, name, None, parent_run_id, tags, launch_context())
    run_id = MlflowClient().create_run(experiment_id, tags=run_tags, run_name=name).info.run_id
    with _started(run_id, run_tags, nested=mlflow.active_run() is not None) as run:
        yield run


@contextmanager
def _started(run_id: str, tags: dict, nested: bool, log_system_metrics: bool = False):
    _start_system_metrics(log_system_metrics)
    with mlflow.start_run(run_id=run_id, nested=nested, log_system_metrics=log_system_metrics) as run:
        mlflow.set_tags(tags)
        mark_training_experiment(run.info.experiment_id)
        yield run


def _start_system_metrics(log_system_metrics: bool) -> None:
    """MLflow's documented switches: sample every SYSTEM_METRICS_INTERVAL_S, log every sample."""
    if log_system_metrics:
        mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL_S)
        mlflow.set_system_metrics_samples_before_logging(1)
        psutil.cpu_percent()  # start psutil's CPU window now, so the first sample covers the run
