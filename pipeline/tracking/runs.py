"""Runs and their life: finding them by tags (lookups only answer), ending them with a status and a reason,
the one sweep of stale runs whose process is gone, child runs a process opens and ends itself (search
trials, one evaluation of one sampler), a run's description, and links to a run's page in the UI."""

from __future__ import annotations

import time
from contextlib import contextmanager

import mlflow
from mlflow.entities import Metric, RunTag
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from pipeline.errors import InputError
from pipeline.process import processes
from pipeline.tracking.launch import LaunchContext, launch_context

STEP_TAG = "pipeline.step"
SAMPLER_STEP = "evaluate_sampler"  # the step of one sampler's child run under an evaluate run
PARENT_TAG = "mlflow.parentRunId"
PROCESS_TAG = "pipeline.process"  # host:pid:start time of the process that ran the step
DRIVER_TAG = "pipeline.driver"  # host:pid:start time of the main or search process that launched it
STALE_REASON = "its process ended without closing the run (killed?)"
KIND_TAG = "mlflow.experimentKind"  # what MLflow 3's UI opens an experiment as (GenAI or training view)
TRAINING_KIND = "custom_model_development"
_MARKED: set[tuple[str, str]] = set()  # (tracking URI, experiment id) marked by this process


def get_run(run_id: str, parameter: str):
    """The run with this id, or an InputError naming the parameter."""
    try:
        return MlflowClient().get_run(run_id)
    except Exception as error:  # MlflowException for an unknown id
        raise InputError(
            f"parameter '{parameter}': no run {run_id!r} in {mlflow.get_tracking_uri()} ({error})"
        ) from None


def mark_training_experiment(experiment_id: str) -> None:
    """Tag the experiment `mlflow.experimentKind = custom_model_development` unless it has a kind already.

    MLflow 3's UI opens an experiment without the tag in its GenAI view (traces, sessions), not in
    the runs table; a kind the user chose is kept. Once per experiment and process. Steps that start
    together (a search on three machines) may all see the tag missing: a server on PostgreSQL then
    refuses every write but the first, and the tag another process wrote is as good as ours.
    """
    key = (mlflow.get_tracking_uri(), experiment_id)
    if key in _MARKED:
        return
    client = MlflowClient()
    if KIND_TAG not in client.get_experiment(experiment_id).tags:
        try:
            client.set_experiment_tag(experiment_id, KIND_TAG, TRAINING_KIND)
        except MlflowException:
            if KIND_TAG not in client.get_experiment(experiment_id).tags:
                raise
    _MARKED.add(key)


def use_experiment_of(run, launch: LaunchContext | None = None) -> str | None:
    """The experiment of `run`, unless the user chose one (or `mlflow run` did) when the step was launched:
    sample and evaluate runs then sit beside their train run."""
    return None if (launch or launch_context()).experiment_chosen else run.info.experiment_id


def search_all_runs(experiment_ids: list[str], filter_string: str, order_by: list[str] | None = None) -> list:
    """Every run that matches, up to MLflow's 100,000 (MLflow pages through them; its multistep example
    stops at the newest 1,000)."""
    return mlflow.search_runs(experiment_ids, filter_string, order_by=order_by, output_format="list")


def process_alive(run) -> bool:
    """Whether the process that runs `run` still lives."""
    return processes.alive(run.data.tags.get(PROCESS_TAG, ":"))


def end_failed(run_id: str, reason: str, only_if_running: bool = False) -> None:
    """Tag `failure_reason` and end the run FAILED: the one way a run is ended badly from outside it."""
    client = MlflowClient()
    if only_if_running and client.get_run(run_id).info.status != "RUNNING":
        return
    client.set_tag(run_id, "failure_reason", reason)
    client.set_terminated(run_id, "FAILED")


def end_stale_runs(runs) -> list:
    """End FAILED the RUNNING runs among `runs` whose process is gone (an orphaned step, whose driver is
    gone, is stopped first); returns the runs still truly running."""
    alive = []
    for run in runs:
        if run.info.status != "RUNNING":
            continue
        process, driver = run.data.tags.get(PROCESS_TAG, ":"), run.data.tags.get(DRIVER_TAG)
        if processes.orphaned(process, driver):
            # its driver is gone and its watchdog stops it within a second: stopped now, so a rerun never waits on it
            processes.stop(process)
            end_failed(run.info.run_id, STALE_REASON)
        elif process_alive(run):
            alive.append(run)
        else:
            end_failed(run.info.run_id, STALE_REASON)
    return alive


def sweep_stale_runs(step: str, tags: dict | None = None, experiment_ids: list[str] | None = None) -> list:
    """The one sweep of stale runs, called where a step or driver starts: the RUNNING runs of `step` with
    these tags (every experiment when `experiment_ids` is None) whose process is gone end FAILED;
    returns those still running. Lookups never do this."""
    return end_stale_runs(_runs_of(experiment_ids, step, tags, "RUNNING"))


def newest_finished(step: str, tags: dict, experiment_ids: list[str] | None = None):
    """The newest FINISHED run of `step` with these tags (every experiment when `experiment_ids` is None), or None."""
    runs = finished_runs(step, tags, experiment_ids)
    return runs[0] if runs else None


def finished_runs(step: str, tags: dict | None = None, experiment_ids: list[str] | None = None) -> list:
    """Every FINISHED run of `step` with these tags, newest first (every experiment when `experiment_ids` is None)."""
    return _runs_of(experiment_ids, step, tags, "FINISHED")


def _runs_of(experiment_ids: list[str] | None, step: str, tags: dict | None, status: str) -> list:
    match = " and ".join(
        [
            f"tags.`{STEP_TAG}` = '{step}'",
            *(f"tags.`{k}` = '{v}'" for k, v in (tags or {}).items()),
            f"attributes.status = '{status}'",
        ]
    )
    order = ["attributes.start_time DESC"]
    if experiment_ids is None:
        return mlflow.search_runs(
            search_all_experiments=True, filter_string=match, order_by=order, output_format="list"
        )
    return search_all_runs(experiment_ids, match, order_by=order)


def children(parent_run_id: str, step: str, experiment_id: str, status: str = "FINISHED") -> list:
    """The runs of `step` under `parent_run_id` with this status."""
    return _runs_of([experiment_id], step, {PARENT_TAG: parent_run_id}, status)


def children_of(parents: list, step: str) -> dict[str, list]:
    """The runs of `step` under each of `parents` (runs), by parent run id, in one search: MLflow's filter
    has no IN for tags, so it asks for `step`'s runs started since the first parent, in their experiments."""
    if not parents:
        return {}
    wanted = {run.info.run_id: [] for run in parents}
    since = min(run.info.start_time for run in parents)
    match = f"tags.`{STEP_TAG}` = '{step}' and attributes.start_time >= {since}"
    for run in search_all_runs(sorted({run.info.experiment_id for run in parents}), match):
        found = wanted.get(run.data.tags.get(PARENT_TAG, ""))
        if found is not None:
            found.append(run)
    return wanted


def process_tags() -> dict[str, str]:
    """The tag that names this process, so `sweep_stale_runs` can close a run whose process was
    killed (step runs get it through `reuse_tags`)."""
    return {PROCESS_TAG: processes.this_process()}


class OpenRun:
    """A run `child_run` opened: its id, and how it is to end (FINISHED unless `end_as` says otherwise)."""

    def __init__(self, run_id: str):
        self.run_id, self.status, self.tags = run_id, "FINISHED", {}

    def end_as(self, status: str, **tags: str) -> None:
        self.status, self.tags = status, tags

    def log(self, metrics: dict[str, float], tags: dict[str, str] | None = None) -> None:
        """Log metrics (step 0) and tags into this run by its id, in one batch."""
        now = int(time.time() * 1000)
        MlflowClient().log_batch(
            self.run_id,
            metrics=[Metric(key, float(value), now, 0) for key, value in metrics.items()],
            tags=[RunTag(key, str(value)) for key, value in (tags or {}).items()],
        )


@contextmanager
def child_run(step: str, name: str, parent_run_id: str, experiment_id: str, tags: dict | None = None):
    """A run of `step` under `parent_run_id`, named at creation and tagged with this process (a rerun
    fails it if the process is killed), logged into by id (it never becomes the active run, so one
    process can hold it beside its own), ended when the block ends: as `end_as` said, or FAILED
    with the exception as `failure_reason` when the block raises."""
    client = MlflowClient()
    mark_training_experiment(experiment_id)
    run_tags = {STEP_TAG: step, PARENT_TAG: parent_run_id, **process_tags(), **(tags or {})}
    run = OpenRun(client.create_run(experiment_id, run_name=name, tags=run_tags).info.run_id)
    try:
        yield run
    except BaseException as error:
        end_failed(run.run_id, f"{type(error).__name__}: {error}"[:500])
        raise
    for key, value in run.tags.items():
        client.set_tag(run.run_id, key, value)
    client.set_terminated(run.run_id, run.status)
