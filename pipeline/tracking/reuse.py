"""Step reuse: the configuration key and code version a run carries, finding a finished run of a step,
and reuse-or-launch (lock -> find finished -> resume or launch), with launching a step by `mlflow.run`."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import tempfile
from contextlib import nullcontext

import mlflow
import mlflow.projects
from mlflow.exceptions import ExecutionException
from mlflow.tracking import MlflowClient

from pipeline.process import processes
from pipeline.tracking.artifacts import has_checkpoints
from pipeline.tracking.code import CODE_TAG, DIRTY_TAG, PROJECT_ROOT, code_version
from pipeline.tracking.runs import PARENT_TAG, PROCESS_TAG, STEP_TAG, end_failed, search_all_runs, sweep_stale_runs

KEY_TAG = "pipeline.config_key"
NOT_IN_KEY = {"resume", "copy_scores"}  # settings that do not change a step's result


def config_key(step: str, config) -> str:
    """sha256 of the step and its canonical params (inputs included: the data and model references)."""
    values = {k: str(v) for k, v in dataclasses.asdict(config).items() if k not in NOT_IN_KEY}
    return hashlib.sha256(json.dumps({"step": step, **values}, sort_keys=True).encode()).hexdigest()[:32]


def reuse_tags(step: str, config) -> dict[str, str]:
    """The tags a step's run carries: its configuration key, code version (content hash, dirty, git commit)
    and process."""
    return {KEY_TAG: config_key(step, config), **code_version(step).tags(), PROCESS_TAG: processes.this_process()}


def key_tags(step: str, config) -> dict[str, str]:
    """The tags that say a run is of this step's configuration and code version."""
    return {KEY_TAG: config_key(step, config), CODE_TAG: code_version(step).version}


def runs_with_key(step: str, config, experiment_ids: list[str]) -> list:
    """Runs of this step, configuration and code version, newest first (any status)."""
    match = " and ".join(f"tags.`{name}` = '{value}'" for name, value in key_tags(step, config).items())
    return search_all_runs(experiment_ids, match, order_by=["attributes.start_time DESC"])


def store_key() -> str:
    """A short hash of the tracking store, for locks that hold per store."""
    return hashlib.sha256(mlflow.get_tracking_uri().encode()).hexdigest()[:12]


def reuse_allowed(reuse: str, step: str | None = None) -> bool:
    """`reuse=clean` reuses runs only when this code is committed, `dirty` also uncommitted source."""
    return reuse == "dirty" or (reuse == "clean" and not code_version(step).dirty)


def reusable_by(reuse: str, run) -> bool:
    """Whether a run of this key and code version may be reused: `clean` takes only runs made by committed
    code (a run made by the same files before they were committed stays out), `dirty` any."""
    return reuse == "dirty" or (reuse == "clean" and run.data.tags.get(DIRTY_TAG) == "false")


def reusable_run(step: str, config, experiment_ids: list[str], reuse: str):
    """(finished run or None, newest unfinished run or None) for a step about to be launched; only looks.

    `reuse`: `clean` reuses runs made by committed code only, and only while this code is committed,
    `dirty` also runs of the same uncommitted files, `never` nothing. A RUNNING run is neither: its
    process lives, or `sweep_stale_runs` has not ended it yet.
    """
    runs = [run for run in runs_with_key(step, config, experiment_ids) if reusable_by(reuse, run)]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    allowed = reuse_allowed(reuse, step)
    unfinished = [r for r in runs if r.info.status in ("FAILED", "KILLED")]
    return (finished[0] if finished and allowed else None), (unfinished[0] if unfinished and allowed else None)


def reuse_or_launch(
    step: str, config, experiment_id: str, reuse: str, launch, accept=None, shared_lock=None
) -> tuple[str, str]:
    """(run id, how) of a finished `step` with this configuration: lock -> sweep -> find finished -> resume
    or launch.

    Under a lock per step key on this machine (and `shared_lock(name)`, e.g. across machines) two
    drivers never launch one step twice. Runs of the key left RUNNING by a process that is gone are
    ended FAILED first. A finished run of the same key and code is `reused` (if `accept(run)` agrees);
    a training whose run ended unfinished with checkpoints is `resumed from <id>`; otherwise the step
    `ran`. `launch(resume_run_id or None)` runs it and returns its run id.
    """
    name = f"step-{store_key()}-{config_key(step, config)}"
    with processes.machine_lock(name), shared_lock(name) if shared_lock else nullcontext():
        sweep_stale_runs(step, key_tags(step, config), [experiment_id])
        finished, unfinished = reusable_run(step, config, [experiment_id], reuse)
        if finished is not None and (accept is None or accept(finished)):
            return finished.info.run_id, "reused"
        resume = None
        if step == "train" and unfinished is not None and has_checkpoints(unfinished.info.run_id):
            resume = unfinished.info.run_id
        return launch(resume), (f"resumed from {resume}" if resume else "ran")


def launch_step(
    entry_point: str,
    config,
    parent_run_id: str,
    experiment_id: str,
    name: str,
    env_manager: str = "local",
    backend: str = "local",
    backend_config: dict | None = None,
    extra: dict | None = None,
    tags: dict | None = None,
) -> str:
    """Run one entry point of this project with `mlflow.run` as a child of `parent_run_id`; returns
    its run id once it has finished, or raises StepFailed.

    The child run is created first (named `name` until the step names itself, parent, step tag), so
    it shows under its parent from the start; the local backend then takes it over, other backends
    get the tags when it ends. `extra` adds params that are no part of the configuration (e.g.
    `resume`). The step's process inherits this process's environment: `mlflow.run` takes no other,
    so a driver exports what its steps need once, before it launches any (processes.export_for_steps).
    """
    params = {k: str(v) for k, v in {**dataclasses.asdict(config), **(extra or {})}.items()}
    # The key tags go on from the start (with this driver's process until the step's own takes
    # over), so a rerun finds a run whose process died before it began and fails it.
    tags = {STEP_TAG: entry_point, PARENT_TAG: parent_run_id, **reuse_tags(entry_point, config), **(tags or {})}
    client = MlflowClient()
    run_id = client.create_run(experiment_id, tags=tags, run_name=name).info.run_id if backend == "local" else None
    try:
        submitted = _run_project(entry_point, params, experiment_id, backend, backend_config, env_manager, run_id)
    except ExecutionException as error:
        raise StepFailed(
            f"{entry_point} run {run_id or ''} failed: {error} (see its output above and the run in MLflow)"
        ) from None
    except Exception as error:
        if run_id:
            end_failed(run_id, f"could not be launched: {error}"[:500])
        raise StepFailed(f"{entry_point}: could not be launched ({error})") from error
    for key, value in tags.items():
        client.set_tag(submitted.run_id, key, value)
    return submitted.run_id


def _run_project(entry_point, params, experiment_id, backend, backend_config, env_manager, run_id):
    """`mlflow.projects.run`, synchronous: the step runs as this process's child, without an `mlflow run`
    process between. MLflow makes a folder per launch in `storage_dir` (for `path` params) and leaves
    it: ours goes."""
    with tempfile.TemporaryDirectory(prefix="vae-launch-") as storage_dir:
        return mlflow.projects.run(
            str(PROJECT_ROOT),
            entry_point=entry_point,
            parameters=params,
            experiment_id=experiment_id,
            backend=backend,
            backend_config=backend_config,
            env_manager=env_manager,
            run_id=run_id,
            synchronous=True,
            storage_dir=storage_dir,
        )


class StepFailed(RuntimeError):
    """A step launched by a driver did not finish."""
