"""A step's own run: opened (or taken over from `mlflow run`), named, nested, tagged with its key, code
version, process and driver, and given a last system-metrics sample as it ends. Nothing else: the step's
process is set up by its process entry (pipeline/__main__.py)."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

import mlflow
from mlflow.tracking import MlflowClient

from pipeline.process import processes
from pipeline.tracking.reuse import reuse_tags
from pipeline.tracking.runs import (
    DRIVER_TAG,
    PARENT_TAG,
    STEP_TAG,
    current_experiment_id,
    launched_run_id,
    mark_training_experiment,
)

SYSTEM_METRICS_INTERVAL_S = 2


@contextmanager
def step_run(
    step: str,
    name: str,
    config=None,
    parent_run_id: str | None = None,
    experiment_id: str | None = None,
    tags: dict | None = None,
    log_system_metrics: bool = False,
    adopt_launched_run: bool = True,
    launched: str | None = None,
):
    """Open the step's run, named `name` and tagged with the step; yields the active run, and ends it.

    Under `mlflow run` the launcher already created the run (MLFLOW_RUN_ID): it is taken over
    (unless `adopt_launched_run` is False: a side run such as the classifier's). Ending any run clears
    MLFLOW_RUN_ID (mlflow.end_run), so a step that opens a side run before its own reads the launcher's
    run first (`launched_run_id()`) and passes it as `launched`. Otherwise, or when a driver calls a
    step in-process inside its own active run, a new run is created in `experiment_id` (default: the
    active experiment), as a child of `parent_run_id` when given. System metrics, when asked for, get a
    last sample as the run ends, so even a run shorter than the sampling interval records them. With
    `config`, the run carries what step reuse looks for: its configuration key, the code version, and
    its process; a step launched by a driver is tagged with the driver.
    """
    launched = launched or launched_run_id()
    client = MlflowClient()
    run_tags = {STEP_TAG: step, "mlflow.runName": name, **(tags or {})}
    if config is not None:
        run_tags.update(reuse_tags(step, config))
    driver = os.environ.get(processes.DRIVER_ENV)
    if driver:  # launched by main or search (its watchdog was started by the process entry)
        run_tags[DRIVER_TAG] = driver
    if parent_run_id:
        run_tags[PARENT_TAG] = parent_run_id
    if log_system_metrics:
        import psutil

        mlflow.set_system_metrics_sampling_interval(SYSTEM_METRICS_INTERVAL_S)
        mlflow.set_system_metrics_samples_before_logging(1)
        psutil.cpu_percent()  # start psutil's CPU window now, so the last sample covers the run
    nested = mlflow.active_run() is not None
    if launched and adopt_launched_run and not nested:
        run_id = launched
        if PARENT_TAG in client.get_run(run_id).data.tags:  # a driver launched it under its own parent
            run_tags.pop(PARENT_TAG, None)
    else:
        run_id = client.create_run(experiment_id or current_experiment_id(), tags=run_tags, run_name=name).info.run_id
    with mlflow.start_run(run_id=run_id, nested=nested, log_system_metrics=log_system_metrics) as run:
        mlflow.set_tags(run_tags)
        mark_training_experiment(run.info.experiment_id)
        try:
            yield run
        finally:
            if log_system_metrics:
                log_system_metrics_sample(run.info.run_id)


def log_system_metrics_sample(run_id: str) -> None:
    """One sample of MLflow's system metrics (CPU, memory, disk, network, GPU), logged right now."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    try:
        monitor = SystemMetricsMonitor(run_id, resume_logging=True)
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()
    except Exception as error:  # a metric source missing on this machine must not fail the step
        warnings.warn(f"could not log a last system metrics sample: {error}", stacklevel=2)
