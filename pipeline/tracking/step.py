"""A step's own run: opened (or taken over from `mlflow run`), named, nested, tagged with its key, code
version and process, watched for its driver, and given a last system-metrics sample as it ends."""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager

import mlflow
from mlflow.tracking import MlflowClient

from pipeline import collector, processes
from pipeline.tracking.reuse import reuse_tags
from pipeline.tracking.runs import DRIVER_TAG, PARENT_TAG, STEP_TAG, current_experiment_id, mark_training_experiment

SYSTEM_METRICS_INTERVAL_S = 2


@contextmanager
def step_run(step: str, name: str, config=None, parent_run_id: str | None = None, experiment_id: str | None = None,
             tags: dict | None = None, log_system_metrics: bool = False, adopt_launched_run: bool = True):
    """Open the step's run, named `name` and tagged with the step; yields the active run.

    Under `mlflow run` the launcher already created the run (MLFLOW_RUN_ID): it is taken over
    (unless `adopt_launched_run` is False: a side run such as the classifier's). Otherwise, or
    when a driver calls a step in-process inside its own active run, a new run is
    created in `experiment_id` (default: the active experiment), as a child of
    `parent_run_id` when given. System metrics, when asked for, get a last sample as the run ends,
    so even a run shorter than the sampling interval records them. Once the run is open, a step
    process's garbage collector resumes with its start-up frozen (pipeline/collector.py). With
    `config`, the run carries what step reuse looks for: its configuration key, the code version,
    and its process.
    """
    launched = os.environ.get("MLFLOW_RUN_ID")
    client = MlflowClient()
    run_tags = {STEP_TAG: step, "mlflow.runName": name, **(tags or {})}
    if config is not None:
        run_tags.update(reuse_tags(step, config))
    driver = os.environ.get(processes.DRIVER_ENV)
    if driver:  # launched by main or search: record the driver, and die with it
        run_tags[DRIVER_TAG] = driver
        processes.watch_driver(driver)
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
    try:
        with mlflow.start_run(run_id=run_id, nested=nested, log_system_metrics=log_system_metrics) as run:
            mlflow.set_tags(run_tags)
            mark_training_experiment(run.info.experiment_id)
            collector.resume_frozen()  # the step has started: what it built lives as long as its process
            try:
                yield run
            finally:
                if log_system_metrics:
                    log_system_metrics_sample(run.info.run_id)
    finally:
        if launched:  # mlflow.end_run() drops MLFLOW_RUN_ID; the launcher's run stays this process's own
            os.environ["MLFLOW_RUN_ID"] = launched


def log_system_metrics_sample(run_id: str) -> None:
    """One sample of MLflow's system metrics (CPU, memory, disk, network, GPU), logged right now."""
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    try:
        monitor = SystemMetricsMonitor(run_id, resume_logging=True)
        monitor.collect_metrics()
        monitor.publish_metrics(monitor.aggregate_metrics())
        monitor.mlflow_logger.flush()
    except Exception as error:  # a metric source missing on this machine must not fail the step
        warnings.warn(f"could not log a last system metrics sample: {error}")
