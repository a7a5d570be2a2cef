"""Everything that speaks MLflow: step runs and their parents, normalized params, references between
runs, models, checkpoints and the evaluation classifier as artifacts, and system metrics.

The core (pipeline/core) never imports mlflow; the steps call this module for all tracking.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import re
import shlex
import time
import warnings
from contextlib import contextmanager
from pathlib import Path

import mlflow
import torch
from mlflow.entities import Metric
from mlflow.tracking import MlflowClient

from pipeline import processes
from pipeline.core import checkpoints, datasets, plots
from pipeline.errors import InputError

RUN_ID_PATTERN = re.compile(r"^[0-9a-f]{32}$")
STEP_TAG = "pipeline.step"
PARENT_TAG = "mlflow.parentRunId"
CHECKPOINT_DIR = "checkpoints"
SYSTEM_METRICS_INTERVAL_S = 2


# --- runs ------------------------------------------------------------------------------------

@contextmanager
def step_run(step: str, name: str, config=None, parent_run_id: str | None = None, experiment_id: str | None = None,
             tags: dict | None = None, log_system_metrics: bool = False, adopt_launched_run: bool = True):
    """Open the step's run, named `name` and tagged with the step; yields the active run.

    Under `mlflow run` the launcher already created the run (MLFLOW_RUN_ID): it is taken over
    (unless `adopt_launched_run` is False: a side run such as the classifier's). Otherwise, or
    when a driver calls a step in-process inside its own active run, a new run is
    created in `experiment_id` (default: the active experiment), as a child of
    `parent_run_id` when given. System metrics, when asked for, get a last sample as the run ends,
    so even a run shorter than the sampling interval records them. With `config`, the run carries
    what step reuse looks for: its configuration key, the code version, and its process.
    """
    launched = os.environ.get("MLFLOW_RUN_ID")
    client = MlflowClient()
    run_tags = {STEP_TAG: step, "mlflow.runName": name, **(tags or {})}
    if config is not None:
        run_tags.update(reuse_tags(step, config))
    driver = os.environ.get(DRIVER_ENV)
    if driver:  # launched by main or search: record the driver, and die with it
        run_tags[DRIVER_TAG] = driver
        _watch_driver(driver)
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
            try:
                yield run
            finally:
                if log_system_metrics:
                    log_system_metrics_sample(run.info.run_id)
    finally:
        if launched:  # mlflow.end_run() drops MLFLOW_RUN_ID; the launcher's run stays this process's own
            os.environ["MLFLOW_RUN_ID"] = launched


def current_experiment_id() -> str:
    from mlflow.tracking.fluent import _get_experiment_id

    return _get_experiment_id()


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


def get_run(run_id: str, parameter: str):
    """The run with this id, or an InputError naming the parameter."""
    try:
        return MlflowClient().get_run(run_id)
    except Exception as error:  # MlflowException for an unknown id
        raise InputError(f"parameter '{parameter}': no run {run_id!r} in {mlflow.get_tracking_uri()} ({error})") from None


def launched_run_id() -> str | None:
    """The run `mlflow run` created for this step's process, if it was launched that way."""
    return os.environ.get("MLFLOW_RUN_ID")


def use_experiment_of(run) -> str | None:
    """The experiment of `run`, unless the user chose one (or `mlflow run` did): sample and evaluate
    runs then sit beside their train run."""
    chosen = ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME")
    return None if any(os.environ.get(name) for name in chosen) else run.info.experiment_id


# --- step reuse: configuration key, code version, stale runs ----------------------------------

KEY_TAG = "pipeline.config_key"
CODE_TAG = "pipeline.code_version"
DIRTY_TAG = "pipeline.code_dirty"
PROCESS_TAG = "pipeline.process"  # host:pid:start time of the process that ran the step
DRIVER_TAG = "pipeline.driver"  # host:pid:start time of the main or search process that launched it
DRIVER_ENV = processes.DRIVER_ENV
_watch_driver = processes.watch_driver  # step_run's name for it
NOT_IN_KEY = {"resume", "copy_scores"}  # settings that do not change a step's result
PROJECT_ROOT = Path(__file__).resolve().parents[1]
SOURCE_GLOBS = ("pipeline/**/*.py", "analysis/**/*.py", "MLproject")


def config_key(step: str, config) -> str:
    """sha256 of the step and its canonical params (inputs included: the data and model references)."""
    import json

    values = {k: str(v) for k, v in dataclasses.asdict(config).items() if k not in NOT_IN_KEY}
    return hashlib.sha256(json.dumps({"step": step, **values}, sort_keys=True).encode()).hexdigest()[:32]


_CODE_VERSION: tuple[str, bool] | None = None


def code_version() -> tuple[str, bool]:
    """(version, dirty): `git:<commit>` when the project's tree is clean, else a hash of its source.

    A dirty tree's hash changes with every edit, so runs made by edited code are never taken for
    runs of a commit; `reuse=dirty` reuses runs of the very same source.
    """
    global _CODE_VERSION
    if _CODE_VERSION is None:
        import subprocess

        def git(*args):
            return subprocess.run(["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=30)

        try:
            head, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
            clean = head.returncode == 0 and status.returncode == 0 and not status.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            clean = False
        if clean:
            _CODE_VERSION = (f"git:{head.stdout.strip()}", False)
        else:
            sha = hashlib.sha256()
            for pattern in SOURCE_GLOBS:
                for path in sorted(PROJECT_ROOT.glob(pattern)):
                    sha.update(str(path.relative_to(PROJECT_ROOT)).encode() + b"\0" + path.read_bytes())
            _CODE_VERSION = (f"src:{sha.hexdigest()[:16]}", True)
    return _CODE_VERSION


def reuse_tags(step: str, config) -> dict[str, str]:
    version, dirty = code_version()
    return {KEY_TAG: config_key(step, config), CODE_TAG: version, DIRTY_TAG: str(dirty).lower(),
            PROCESS_TAG: processes.this_process()}


def process_alive(run) -> bool:
    """Whether the process that runs `run` still lives (an orphaned step is killed: see processes.alive)."""
    return processes.alive(run.data.tags.get(PROCESS_TAG, ":"), run.data.tags.get(DRIVER_TAG))


def search_all_runs(experiment_ids: list[str], filter_string: str, order_by: list[str] | None = None) -> list:
    """Every run that matches, page by page (MLflow's multistep example stops at the newest 1,000)."""
    client, runs, token = MlflowClient(), [], None
    while True:
        page = client.search_runs(experiment_ids, filter_string, max_results=1000, order_by=order_by,
                                  page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def runs_with_key(step: str, config, experiment_ids: list[str]) -> list:
    """Runs of this step, configuration and code version, newest first (any status)."""
    version, _ = code_version()
    return search_all_runs(experiment_ids, f"tags.`{KEY_TAG}` = '{config_key(step, config)}' "
                                           f"and tags.`{CODE_TAG}` = '{version}'",
                           order_by=["attributes.start_time DESC"])


STALE_REASON = "its process ended without closing the run (killed?)"


def end_failed(run_id: str, reason: str, only_if_running: bool = False) -> None:
    """Tag `failure_reason` and end the run FAILED: the one way a run is ended badly from outside it."""
    client = MlflowClient()
    if only_if_running and client.get_run(run_id).info.status != "RUNNING":
        return
    client.set_tag(run_id, "failure_reason", reason)
    client.set_terminated(run_id, "FAILED")


def fail_stale_runs(runs) -> list:
    """Mark RUNNING runs whose process is gone as FAILED; returns the runs still truly running."""
    alive = []
    for run in runs:
        if run.info.status != "RUNNING":
            continue
        if process_alive(run):
            alive.append(run)
        else:
            end_failed(run.info.run_id, STALE_REASON)
    return alive


def fail_stale_runs_of(experiment_ids: list[str] | None, step: str, tags: dict | None = None) -> None:
    """Fail the RUNNING runs of `step` (with these tags; every experiment when `experiment_ids` is None)
    whose process is gone."""
    fail_stale_runs(_runs_of(experiment_ids, step, tags, "RUNNING"))


def newest_finished(step: str, tags: dict, experiment_ids: list[str] | None = None):
    """The newest FINISHED run of `step` with these tags (every experiment when `experiment_ids` is None),
    or None; runs of it left RUNNING by a process that is gone are failed first."""
    fail_stale_runs_of(experiment_ids, step, tags)
    runs = _runs_of(experiment_ids, step, tags, "FINISHED")
    return runs[0] if runs else None


def _runs_of(experiment_ids: list[str] | None, step: str, tags: dict | None, status: str) -> list:
    match = " and ".join([f"tags.`{STEP_TAG}` = '{step}'", *(f"tags.`{k}` = '{v}'" for k, v in (tags or {}).items()),
                          f"attributes.status = '{status}'"])
    if experiment_ids is None:
        return mlflow.search_runs(search_all_experiments=True, filter_string=match,
                                  order_by=["attributes.start_time DESC"], output_format="list")
    return search_all_runs(experiment_ids, match, order_by=["attributes.start_time DESC"])


def children(parent_run_id: str, step: str, experiment_id: str, status: str = "FINISHED") -> list:
    """The runs of `step` under `parent_run_id` with this status."""
    return _runs_of([experiment_id], step, {PARENT_TAG: parent_run_id}, status)


def store_key() -> str:
    """A short hash of the tracking store, for locks that hold per store."""
    return hashlib.sha256(mlflow.get_tracking_uri().encode()).hexdigest()[:12]


def reuse_or_launch(step: str, config, experiment_id: str, reuse: str, launch, accept=None,
                    shared_lock=None) -> tuple[str, str]:
    """(run id, how) of a finished `step` with this configuration: lock -> find finished -> resume or launch.

    Under a lock per step key on this machine (and `shared_lock(name)`, e.g. across machines) two
    drivers never launch one step twice. A finished run of the same key and code is `reused` (if
    `accept(run)` agrees); a training whose run ended unfinished with checkpoints is `resumed from
    <id>`; otherwise the step `ran`. `launch(resume_run_id or None)` runs it and returns its run id.
    """
    from contextlib import nullcontext

    name = f"step-{store_key()}-{config_key(step, config)}"
    with processes.machine_lock(name), (shared_lock(name) if shared_lock else nullcontext()):
        finished, unfinished = reusable_run(step, config, [experiment_id], reuse)
        if finished is not None and (accept is None or accept(finished)):
            return finished.info.run_id, "reused"
        resume = None
        if step == "train" and unfinished is not None and has_checkpoints(unfinished.info.run_id):
            resume = unfinished.info.run_id
        return launch(resume), (f"resumed from {resume}" if resume else "ran")


def reuse_allowed(reuse: str) -> bool:
    """`reuse=clean` reuses runs only when this code is a clean commit, `dirty` also uncommitted source."""
    return reuse == "dirty" or (reuse == "clean" and not code_version()[1])


def reusable_run(step: str, config, experiment_ids: list[str], reuse: str):
    """(finished run or None, newest unfinished run or None) for a step about to be launched.

    `reuse`: `clean` reuses runs made by a clean commit only, `dirty` also runs of the same
    uncommitted source, `never` nothing. RUNNING runs whose process is gone are failed first.
    """
    runs = runs_with_key(step, config, experiment_ids)
    fail_stale_runs(runs)
    runs = [MlflowClient().get_run(run.info.run_id) for run in runs]
    finished = [r for r in runs if r.info.status == "FINISHED"]
    allowed = reuse_allowed(reuse)
    unfinished = [r for r in runs if r.info.status in ("FAILED", "KILLED")]
    return (finished[0] if finished and allowed else None), (unfinished[0] if unfinished and allowed else None)


def launch_step(entry_point: str, config, parent_run_id: str, experiment_id: str, name: str, env_manager: str = "local",
                backend: str = "local", backend_config: dict | None = None, extra: dict | None = None,
                env: dict | None = None, tags: dict | None = None) -> str:
    """Run one entry point of this project with `mlflow.run` as a child of `parent_run_id`; returns
    its run id once it has finished, or raises StepFailed.

    The child run is created first (named `name` until the step names itself, parent, step tag), so
    it shows under its parent from the start; the local backend then takes it over, other backends
    get the tags when it ends.
    `env` is exported for the step's process (each step's share of the cores), `extra` adds params
    that are no part of the configuration (e.g. `resume`).
    """
    import mlflow.projects
    from mlflow.exceptions import ExecutionException

    params = {k: str(v) for k, v in dataclasses.asdict(config).items()}
    params.update({k: str(v) for k, v in (extra or {}).items()})
    # The key tags go on from the start (with this driver's process until the step's own takes
    # over), so a rerun finds a run whose process died before it began and fails it.
    tags = {STEP_TAG: entry_point, PARENT_TAG: parent_run_id, **reuse_tags(entry_point, config), **(tags or {})}
    client = MlflowClient()
    run_id = None
    if backend == "local":
        run_id = client.create_run(experiment_id, tags=tags, run_name=name).info.run_id
    processes.export({**(env or {}), DRIVER_ENV: processes.this_process()})
    try:  # synchronous: the step runs as this process's child, without an `mlflow run` process between
        submitted = mlflow.projects.run(str(PROJECT_ROOT), entry_point=entry_point, parameters=params,
                                        experiment_id=experiment_id, backend=backend, backend_config=backend_config,
                                        env_manager=env_manager, run_id=run_id, synchronous=True)
    except ExecutionException as error:
        raise StepFailed(f"{entry_point} run {run_id or ''} failed: {error} (see its output above and the run "
                         "in MLflow)") from None
    except Exception as error:
        if run_id:
            end_failed(run_id, f"could not be launched: {error}"[:500])
        raise StepFailed(f"{entry_point}: could not be launched ({error})") from error
    for key, value in tags.items():
        client.set_tag(submitted.run_id, key, value)
    return submitted.run_id


class StepFailed(RuntimeError):
    """A step launched by a driver did not finish."""


# --- params ----------------------------------------------------------------------------------

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
    from pipeline.configs import STEP_CONFIGS

    params = {name: _unquoted(value) for name, value in run.data.params.items()}
    config_class = STEP_CONFIGS.get(run.data.tags.get(STEP_TAG, ""))
    if config_class is not None:
        names = {f.name for f in dataclasses.fields(config_class)}
        try:
            config = config_class(**{k: v for k, v in params.items() if k in names})
            params.update({k: str(v) for k, v in dataclasses.asdict(config).items()})
        except InputError:
            pass  # a run of an older version: its params stay as logged
    return params


# --- references between runs -------------------------------------------------------------------

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
    raise InputError(f"parameter '{parameter}': got {reference!r}; allowed: a train run id or a model URI (runs:/..., models:/...)")


def _registered_model_run_id(uri: str) -> str | None:
    """The train run behind a models:/ URI (name/version, name@alias or a logged model id), if known."""
    from mlflow.store.artifact.utils.models import _parse_model_uri, get_model_name_and_version

    client = MlflowClient()
    try:
        name, version = get_model_name_and_version(client, uri)
        return client.get_model_version(name, version).run_id
    except Exception:
        pass
    try:
        parsed = _parse_model_uri(uri)
        model_id = getattr(parsed, "model_id", None)
        return mlflow.get_logged_model(model_id).source_run_id if model_id else None
    except Exception:
        return None


def resolve_data(reference: str, val_fraction: float = 0.1, seed: int = 0, data_root: str = "data") -> datasets.Prepared:
    """The prepared data a step's `data` parameter names: a dataset name, a prepare_data run id,
    an artifact URI, or a local prepared file."""
    if datasets.is_dataset_name(reference) or not (RUN_ID_PATTERN.match(reference) or "://" in reference
                                                    or reference.startswith("runs:/")):
        return datasets.resolve_local(reference, val_fraction, seed, data_root)
    try:
        if RUN_ID_PATTERN.match(reference):
            local = mlflow.artifacts.download_artifacts(run_id=reference, artifact_path=datasets.PREPARED_ARTIFACT)
        else:
            local = mlflow.artifacts.download_artifacts(artifact_uri=reference)
    except Exception as error:  # MlflowException, OSError
        raise InputError(f"parameter 'data': cannot fetch prepared data from {reference!r} ({error})") from None
    return datasets.load_prepared(Path(local))


def data_source(reference: str, prepared: datasets.Prepared) -> str:
    """Where the data of a run came from, as a path or an artifact-store URI MLflow can resolve."""
    from mlflow.store.artifact.runs_artifact_repo import RunsArtifactRepository
    from mlflow.tracking.artifact_utils import get_artifact_uri

    if datasets.is_dataset_name(reference):
        return str(datasets.cached_path(prepared.digest))
    if RUN_ID_PATTERN.match(reference):
        return get_artifact_uri(reference, datasets.PREPARED_ARTIFACT)
    if reference.startswith("runs:/"):
        return RunsArtifactRepository.get_underlying_uri(reference)
    return reference


def log_dataset_inputs(prepared: datasets.Prepared, name: str, source: str) -> None:
    """Record the train/val/test splits of prepared data as MLflow dataset inputs, with its digest.

    Two runs that log the same new dataset at the same moment race in MLflow's store (both insert
    it: a UNIQUE constraint error for one); the loser tries again and then finds the dataset.
    """
    from mlflow.exceptions import MlflowException

    for split, context in (("train", "training"), ("val", "validation"), ("test", "testing")):
        images, labels = prepared.splits[split]
        with warnings.catch_warnings():  # a local path matches MLflow's file source twice; either is right
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted")
            dataset = mlflow.data.from_numpy(images, targets=labels, source=source, name=f"{name}-{split}",
                                             digest=prepared.digest[:16])
        for attempt in range(3):
            try:
                mlflow.log_input(dataset, context=context)
                break
            except MlflowException as error:
                if "UNIQUE" not in str(error) or attempt == 2:
                    raise
                time.sleep(0.2 * (attempt + 1))


# --- images ------------------------------------------------------------------------------------

def log_samples(images: torch.Tensor, key: str, n_singles: int, folder: str = "samples") -> None:
    """A grid of up to plots.GRID_SIZE images and `n_singles` single images under `{folder}/{key}/`."""
    mlflow.log_image(plots.grid_array(images[:plots.GRID_SIZE]), artifact_file=f"{folder}/{key}/grid.png")
    for index, single in enumerate(plots.single_arrays(images[:n_singles])):
        mlflow.log_image(single, artifact_file=f"{folder}/{key}/image_{index}.png")


def log_figure(figure, artifact_file: str) -> None:
    mlflow.log_figure(figure, artifact_file)
    plots.pyplot().close(figure)


# --- models ------------------------------------------------------------------------------------

def log_model(model: torch.nn.Module) -> None:
    """A model as an MLflow pytorch model, on the CPU, with this package's code beside it.

    Pickle format: pt2 keeps only forward(); sampling needs decode(), the classifier features().
    """
    import mlflow.pytorch

    skip_installed_package_scan()
    mlflow.pytorch.log_model(
        model.to("cpu").eval(),
        name="model",
        serialization_format="pickle",
        code_paths=[str(Path(__file__).resolve().parent)],
        pip_requirements=[f"torch=={torch.__version__.split('+')[0]}", f"mlflow=={mlflow.__version__}"],
    )


def skip_installed_package_scan() -> None:
    """Spare logging a model MLflow's scan of every installed distribution (2-3 s a step).

    Models are logged with pinned `pip_requirements`; MLflow still checks them against the
    environment, and to do so first maps every installed package to its modules
    (`importlib.metadata.packages_distributions()`, which reads the file list of each of the
    hundreds of distributions, torch's CUDA wheels among them). That map is only the fallback for
    a package whose version metadata is missing, so a small one for the pinned packages gives the
    same check. Private to MLflow: where it is gone, nothing changes but the speed.
    """
    from mlflow.utils import requirements_utils

    if getattr(requirements_utils, "_MODULES_TO_PACKAGES", ()) is None:
        requirements_utils._MODULES_TO_PACKAGES = {"torch": ["torch"], "mlflow": ["mlflow"], "numpy": ["numpy"],
                                                   "pandas": ["pandas"], "cloudpickle": ["cloudpickle"],
                                                   "PIL": ["pillow"]}


def load_model(uri: str, device: torch.device, parameter: str = "model"):
    """A logged model on `device`, whichever device it was trained on."""
    import mlflow.pytorch

    try:
        return mlflow.pytorch.load_model(uri, map_location=device).to(device).eval()
    except Exception as error:  # MlflowException, OSError for a missing model
        raise InputError(f"parameter '{parameter}': cannot load a model from {uri!r} ({error})") from None


# --- checkpoints -------------------------------------------------------------------------------

def log_checkpoint(state: dict, folder: Path) -> Path:
    """Write the checkpoint for state['epoch'] locally and log it to the active run."""
    path = checkpoints.save_atomically(state, folder / checkpoints.checkpoint_name(state["epoch"]))
    mlflow.log_artifact(str(path), artifact_path=CHECKPOINT_DIR)
    return path


def load_latest_checkpoint(reference: str) -> dict:
    """The newest loadable checkpoint of a train run (by id), or the one a URI or path names.

    A checkpoint cut short by an interruption fails to load and the one before it is taken. A run
    left RUNNING by a process that is gone (killed) is ended FAILED, as main's rerun does.
    """
    if RUN_ID_PATTERN.match(reference):
        fail_stale_runs([get_run(reference, "resume")])
        listed = [Path(f.path).name for f in MlflowClient().list_artifacts(reference, CHECKPOINT_DIR)]
        names = sorted((n for n in listed if checkpoints.NAME_PATTERN.search(n)), reverse=True)
        if not names:
            raise InputError(f"parameter 'resume': run {reference} has no checkpoints under {CHECKPOINT_DIR}/")
        for name in names:
            try:
                local = mlflow.artifacts.download_artifacts(run_id=reference, artifact_path=f"{CHECKPOINT_DIR}/{name}")
                return checkpoints.load(local)
            except Exception:  # truncated or unreadable: take the one before
                continue
        raise InputError(f"parameter 'resume': none of the checkpoints of run {reference} can be loaded")
    try:
        local = reference if Path(reference).is_file() else mlflow.artifacts.download_artifacts(artifact_uri=reference)
        return checkpoints.load(local)
    except Exception as error:
        raise InputError(f"parameter 'resume': cannot load a checkpoint from {reference!r} ({error})") from None


def has_checkpoints(run_id: str) -> bool:
    return any(MlflowClient().list_artifacts(run_id, CHECKPOINT_DIR))


def copy_artifacts(source_run_id: str, path: str, target_run_id: str, folder: Path) -> None:
    """Copy a folder of artifacts from one run to another (same path), and into a local folder."""
    import shutil
    import tempfile

    client = MlflowClient()
    with tempfile.TemporaryDirectory(prefix="vae-artifacts-") as tmp:
        local = Path(client.download_artifacts(source_run_id, path, tmp))
        client.log_artifacts(target_run_id, str(local), path)
        shutil.copytree(local, folder, dirs_exist_ok=True)


# --- scores copied onto the train run ----------------------------------------------------------

SETTINGS_TAG = "scores.settings"


def copy_scores(train_run_id: str, scores: dict[str, float], tags: dict[str, str], settings: str,
                evaluation_run_id: str, mode: str, score_key) -> str:
    """Put an evaluation's scores on its train run too, so train runs line up in the compare view.

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
        return (f"not copied: the train run holds scores measured with {held} "
                f"(evaluation {train.data.tags.get('scores.evaluation_run_id')}); copy_scores=replace replaces them")
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
    for key, value in {**tags, SETTINGS_TAG: settings, "scores.evaluation_run_id": evaluation_run_id,
                       "evaluation_run_id": evaluation_run_id}.items():
        client.set_tag(train_run_id, key, value)
    return "copied" if held in (None, settings) else f"copied, replacing scores measured with {held}"


# --- runs that a step creates without making them active (search trials) ------------------------

def process_tags() -> dict[str, str]:
    """The tag that names this process, so `fail_stale_runs` can close a run whose process was
    killed (step runs get it through `reuse_tags`)."""
    return {PROCESS_TAG: processes.this_process()}


class OpenRun:
    """A run `child_run` opened: its id, and how it is to end (FINISHED unless `end_as` says otherwise)."""

    def __init__(self, run_id: str):
        self.run_id, self.status, self.tags = run_id, "FINISHED", {}

    def end_as(self, status: str, **tags: str) -> None:
        self.status, self.tags = status, tags


@contextmanager
def child_run(step: str, name: str, parent_run_id: str, experiment_id: str, tags: dict | None = None):
    """A run of `step` under `parent_run_id`, named at creation and tagged with this process (a rerun
    fails it if the process is killed), logged into by id (it never becomes the active run, so one
    process can hold it beside its own), ended when the block ends: as `end_as` said, or FAILED
    with the exception as `failure_reason` when the block raises."""
    client = MlflowClient()
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
