"""The `search` step: an Optuna study over the latent size and a placed Beta sampler.

Each trial picks a latent size and a Beta(a, b) shape plus the sampler's own mean and standard
deviation (the placement z = loc + scale * Beta(a, b) is derived: pipeline/core/search_space.py),
and scores the sampler's FID against the VALIDATION split on growing sample counts, so the pruner
stops hopeless trials early. The test split is kept for the end: the best trial's sampler is
measured there beside the same model's N(0, 1) and gmm:10 samplers.

Tracking: the search is a parent run; every training is a child `train` run (launched as a real
MLflow project step, reused by training configuration and data digest across trials, workers and
reruns, trained once under a lock); every trial is a nested child run with its params, its Optuna
trial number as a param, its metrics and its sample grid. Pruned trials end KILLED with a
`pruned` tag. The parent logs the counts, the best trial, Optuna's plots (PNG and one offline
HTML page) and the test-split reference figures.

Storage and workers: one worker uses SQLite beside the MLflow database (heartbeats fail the trials
of a killed process and retry them once); several workers on one machine share a journal file,
watched by this process, which fails a dead worker's trials, ends their runs FAILED, re-enqueues
each once and starts a replacement; workers on several machines share a PostgreSQL database (each
machine runs its own `search` on the same study; heartbeats and an advisory lock per model).
`n_trials` counts the trials this invocation adds, pruned ones included, exactly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from contextlib import contextmanager, nullcontext
from pathlib import Path

import mlflow
import numpy as np
import optuna
import torch
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from pipeline import tracking
from pipeline.configs import SearchConfig, TrainConfig
from pipeline.core import plots, search_space
from pipeline.core.devices import resolve_device
from pipeline.core.evaluation import SAMPLER_METRICS, EvaluationContext
from pipeline.core.samplers import BetaSampler, parse_sampler
from pipeline.errors import InputError, bad_parameter

TRIAL_STEP = "search_trial"
FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
INVOCATION_ATTR = "invocation"  # the search run that added the trial: n_trials counts per invocation
WORKER_ATTR = "worker"  # host:pid of the process that runs the trial
RUN_ATTR = "mlflow_run_id"
MODEL_ATTR = "model_run_id"
RETRY_ATTR = "retry_of"
PAUSE_ENV = "VAE_PIPELINE_SEARCH_PAUSE_TRIAL"  # tests: the worker running this trial number stops after its first report
HEARTBEAT_ENV = "VAE_PIPELINE_SEARCH_HEARTBEAT"  # "INTERVAL,GRACE" seconds for RDB storages (default 10,60)
MEDIAN_STARTUP_TRIALS = 4
REFERENCE_SAMPLERS = (("normal_0_1", "normal:0,1"), ("gmm_10", "gmm:10"))
REPORTED_METRICS = ("fid", "precision", "recall", "density", "coverage", "confidence", "class_entropy",
                    "classes_covered", "max_class_share", "sharpness")


# --- storage --------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Storage:
    """An Optuna storage: kind (sqlite | postgresql | journal) and its URL or journal file path."""

    kind: str
    url: str

    @property
    def shown(self) -> str:
        """The storage as logged and printed: a PostgreSQL password is hidden."""
        if self.kind == "journal":
            return f"journal:{self.url}"
        if self.kind == "postgresql":
            from sqlalchemy.engine import make_url

            return make_url(self.url).render_as_string(hide_password=True)
        return self.url

    @property
    def dashboard(self) -> str:
        """What optuna-dashboard takes to show this storage."""
        return self.url


def parse_storage(text: str) -> Storage:
    if text.startswith("journal:"):
        return Storage("journal", str(Path(text[len("journal:"):]).expanduser()))
    if text.startswith("sqlite:///"):
        return Storage("sqlite", text)
    return Storage("postgresql", text)


def _storage_folder() -> Path:
    """Beside the MLflow database when tracking goes to SQLite, else the working directory."""
    uri = mlflow.get_tracking_uri()
    if uri.startswith("sqlite:///"):
        return Path(uri[len("sqlite:///"):]).expanduser().parent
    return Path.cwd()


def resolve_storage(config: SearchConfig) -> Storage:
    """The storage the study lives in, checked reachable (an InputError naming `storage` if not).

    auto: a study of this name already in the journal file or the SQLite file beside the MLflow
    database is continued there; a new one goes to SQLite for one worker, to the journal for
    several (SQLite serves one writer at a time).
    """
    if config.storage != "auto":
        storage = parse_storage(config.storage)
    else:
        folder = _storage_folder()
        journal, sqlite = folder / "optuna-journal.log", folder / "optuna.db"
        storage = Storage("journal", str(journal)) if config.n_workers > 1 else Storage("sqlite", f"sqlite:///{sqlite}")
        for kind, path, candidate in (("journal", journal, Storage("journal", str(journal))),
                                      ("sqlite", sqlite, Storage("sqlite", f"sqlite:///{sqlite}"))):
            if path.exists() and config.study_name in _study_names(candidate):
                storage = candidate
                break
    check_reachable(storage)
    return storage


def check_reachable(storage: Storage) -> None:
    if storage.kind in ("journal", "sqlite"):
        path = Path(storage.url if storage.kind == "journal" else storage.url[len("sqlite:///"):])
        folder = path.expanduser().resolve().parent
        if not folder.is_dir() or not os.access(folder, os.W_OK):
            raise InputError(f"parameter 'storage': got {storage.shown!r}; its folder {folder} does not exist or is "
                             "not writable; allowed: a file in an existing, writable folder")
        return
    import sqlalchemy

    try:
        engine = sqlalchemy.create_engine(storage.url, poolclass=sqlalchemy.pool.NullPool,
                                          connect_args={"connect_timeout": 5})
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT 1"))
        engine.dispose()
    except ModuleNotFoundError as error:
        raise InputError(f"parameter 'storage': {storage.shown} needs a PostgreSQL driver ({error}); "
                         "install it with `pip install 'psycopg[binary]'` (SQLAlchemy's default driver for postgresql://)") from None
    except Exception as error:  # OperationalError: refused, unknown host, no such database, bad password
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise InputError(f"parameter 'storage': cannot connect to {storage.shown} ({first_line}); allowed: a "
                         "reachable PostgreSQL database (postgresql://USER@HOST:PORT/DB)") from None


def _study_names(storage: Storage) -> list[str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.study.get_all_study_names(open_storage(storage, heartbeat=False))


def _heartbeat_settings() -> tuple[int, int]:
    interval, _, grace = os.environ.get(HEARTBEAT_ENV, "10,60").partition(",")
    return int(interval), int(grace)


def open_storage(storage: Storage, heartbeat: bool = True):
    """Optuna's storage object; RDB storages send heartbeats, and a trial whose worker stopped
    sending them is failed, its MLflow run ended FAILED and the trial retried once."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if storage.kind == "journal":
            from optuna.storages.journal import JournalFileBackend, JournalStorage

            return JournalStorage(JournalFileBackend(storage.url))
        options = {}
        if heartbeat:
            interval, grace = _heartbeat_settings()
            options = {"heartbeat_interval": interval, "grace_period": grace,
                       "heartbeat_stale_trial_callback": on_stale_trial}
        if storage.kind == "sqlite":
            return optuna.storages.RDBStorage(storage.url, engine_kwargs={"connect_args": {"timeout": 60}}, **options)
        with advisory_lock(storage, "optuna-schema"):  # several machines creating the tables at once
            return optuna.storages.RDBStorage(storage.url, engine_kwargs={"pool_pre_ping": True}, **options)


@contextmanager
def advisory_lock(storage: Storage, name: str):
    """A PostgreSQL advisory lock (every machine that reaches the database), held while in the block
    and released by the server if this process dies. A no-op for other storages."""
    if storage.kind != "postgresql":
        yield
        return
    import sqlalchemy

    key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big", signed=True)
    engine = sqlalchemy.create_engine(storage.url, poolclass=sqlalchemy.pool.NullPool, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as connection:
            connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": key})
            try:
                yield
            finally:
                connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": key})
    finally:
        engine.dispose()


# --- the study ------------------------------------------------------------------------------------

def directions(config: SearchConfig) -> list[str]:
    return ["minimize"] if config.objective == "fid" else ["minimize", "maximize"]


def space_of(config: SearchConfig) -> dict:
    """What makes trials of one study comparable: the searched space and the models' settings."""
    return {"latent_sizes": config.latent_sizes, "ab_min": config.ab_min, "ab_max": config.ab_max,
            "mean_min": config.mean_min, "mean_max": config.mean_max, "sd_min": config.sd_min,
            "sd_max": config.sd_max, "data": config.data, "hidden_size": config.hidden_size, "epochs": config.epochs,
            "seed": config.seed}


def check_study(config: SearchConfig, storage: Storage) -> None:
    """A study continued under the same name must have the same objective, space and models."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            study = optuna.load_study(study_name=config.study_name, storage=open_storage(storage, heartbeat=False))
        except KeyError:
            return
    held = [d.name.lower() for d in study.directions]
    if held != directions(config):
        shown = "fid" if len(held) == 1 else "fid,class_entropy"
        raise InputError(f"parameter 'objective': got {config.objective!r}, but study {config.study_name!r} in "
                         f"{storage.shown} optimizes {shown}; allowed: {shown}, or another study_name")
    space = study.user_attrs.get("search_space") or {}
    for name, value in space_of(config).items():
        if name in space and str(space[name]) != str(value):
            raise InputError(f"parameter '{name}': got {value!r}, but study {config.study_name!r} was searched with "
                             f"{name}={space[name]!r} (its trials would not compare); allowed: {space[name]!r}, or "
                             "another study_name")


def sampler_seed(config: SearchConfig, trials_before: int, worker_index: int, storage: Storage) -> int:
    """seed + worker index, moved on by the trials the study held when this invocation started, so
    a continued study does not replay the first invocation's random start-up draws (a fresh study
    with the same seed replays them exactly). On PostgreSQL the process id is added too: `search`
    processes on several machines start alike and must not propose the same trials."""
    seed = config.seed + worker_index + 1000 * trials_before
    if storage.kind == "postgresql":
        seed += 7919 * os.getpid()
    return seed % 2**32


def make_sampler(config: SearchConfig, seed: int, storage: Storage) -> optuna.samplers.TPESampler:
    """Multivariate TPE; the constant liar when trials run side by side (several workers, or a
    PostgreSQL study that other machines share)."""
    concurrent = config.n_workers > 1 or storage.kind == "postgresql"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.TPESampler(seed=seed, multivariate=True, constant_liar=concurrent)


def make_pruner(config: SearchConfig) -> optuna.pruners.BasePruner:
    if config.pruner == "none" or config.objective != "fid":
        return optuna.pruners.NopPruner()
    return optuna.pruners.MedianPruner(n_startup_trials=MEDIAN_STARTUP_TRIALS)


def create_or_load(config: SearchConfig, storage: Storage) -> tuple[optuna.Study, list[str]]:
    """The study; a new one gets its space recorded and the baselines enqueued as its first trials.
    Returns (study, notes for the log)."""
    optuna_storage = open_storage(storage)
    notes = []
    try:
        study = optuna.create_study(study_name=config.study_name, storage=optuna_storage,
                                    sampler=make_sampler(config, config.seed, storage), pruner=make_pruner(config),
                                    directions=directions(config))
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(study_name=config.study_name, storage=optuna_storage,
                                  sampler=make_sampler(config, config.seed, storage), pruner=make_pruner(config))
        return study, [f"continuing study {config.study_name!r} ({len(study.trials)} trials so far)"]
    study.set_user_attr("search_space", space_of(config))
    kept, left_out = search_space.baselines(ranges_of(config))
    for params in kept:
        study.enqueue_trial(params, user_attrs={"baseline": _baseline_name(params)})
    notes.append(f"new study {config.study_name!r}; baselines enqueued first: "
                 f"{', '.join(_baseline_name(p) for p in kept) or 'none'}")
    if left_out:
        notes.append(f"baselines outside the ranges, not enqueued: {', '.join(left_out)}")
    return study, notes


def _baseline_name(params: dict) -> str:
    return "study_beta" if params["a"] == search_space.STUDY_BETA[0] else "normal_like_beta"


def ranges_of(config: SearchConfig) -> search_space.Ranges:
    return search_space.Ranges(config.ab_min, config.ab_max, config.mean_min, config.mean_max, config.sd_min,
                               config.sd_max)


def suggest(trial: optuna.Trial, config: SearchConfig) -> tuple[int, BetaSampler]:
    latent_size = trial.suggest_categorical("latent_size", [int(s) for s in config.latent_sizes.split(",")])
    a = trial.suggest_float("a", config.ab_min, config.ab_max, log=True)
    b = trial.suggest_float("b", config.ab_min, config.ab_max, log=True)
    mean = trial.suggest_float("mean", config.mean_min, config.mean_max)
    sd = trial.suggest_float("sd", config.sd_min, config.sd_max, log=True)
    loc, scale = search_space.placement(a, b, mean, sd)
    return latent_size, BetaSampler(a, b, loc, scale)


def is_mine(trial, invocation: str) -> bool:
    return trial.user_attrs.get(INVOCATION_ATTR) == invocation


def counted(study: optuna.Study, invocation: str) -> int:
    """Trials this invocation holds: finished (complete or pruned) or still running."""
    return sum(is_mine(t, invocation) for t in study.get_trials(deepcopy=False, states=(*FINISHED, TrialState.RUNNING)))


# --- trials ending badly --------------------------------------------------------------------------

def end_trial_run(trial, reason: str) -> None:
    """End the MLflow run of a trial whose worker is gone, FAILED with the reason (if still RUNNING)."""
    run_id = trial.user_attrs.get(RUN_ATTR)
    if not run_id:
        return
    client = MlflowClient()
    try:
        if client.get_run(run_id).info.status == "RUNNING":
            client.set_tag(run_id, "failure_reason", reason)
            client.set_terminated(run_id, "FAILED")
    except Exception as error:  # the tracking server may be unreachable: the trial is failed all the same
        print(f"search: could not end run {run_id} of trial {trial.number}: {error}", file=sys.stderr)


def retry_once(study: optuna.Study, trial) -> bool:
    """Enqueue a failed trial's params again, unless it is itself a retry."""
    if RETRY_ATTR in trial.user_attrs or "failed_trial" in trial.system_attrs:
        return False
    study.enqueue_trial(dict(trial.params), user_attrs={RETRY_ATTR: trial.number})
    return True


def on_stale_trial(study: optuna.Study, trial) -> None:
    """RDB heartbeat: a RUNNING trial whose worker stopped beating was set FAIL by Optuna."""
    end_trial_run(trial, "its worker stopped sending Optuna heartbeats (killed or cut off)")
    retry_once(study, trial)


def recover_worker(study: optuna.Study, worker: str, reason: str) -> list[int]:
    """Fail the RUNNING trials of a dead worker, end their runs FAILED, re-enqueue each once."""
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(WORKER_ATTR) != worker:
            continue
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        end_trial_run(trial, reason)
        retry_once(study, trial)
        recovered.append(trial.number)
    return recovered


# --- models ---------------------------------------------------------------------------------------

def train_config(config: SearchConfig, latent_size: int) -> TrainConfig:
    """The training configuration of a trial's model: the cache key (with the data digest)."""
    return TrainConfig(data=config.data, latent_size=latent_size, hidden_size=config.hidden_size, epochs=config.epochs,
                       seed=config.seed, device=config.device, sample_every=0, checkpoint_every=config.epochs)


class Models:
    """Trained models by latent size: a finished train run of the same configuration, code and data
    digest is reused; otherwise one is trained once, under a lock, as a child of the search run."""

    def __init__(self, config: SearchConfig, job: "Job", digest: str, device: torch.device):
        self.config, self.job, self.digest, self.device = config, job, digest, device
        self.loaded: dict[int, tuple[str, torch.nn.Module]] = {}

    def _finished(self, train: TrainConfig):
        run, _ = tracking.reusable_run("train", train, [self.job.experiment_id], reuse="dirty")
        if run is not None and tracking.run_param(run, "data_digest") == self.digest:
            return run.info.run_id
        return None

    def run_id(self, latent_size: int) -> str:
        train = train_config(self.config, latent_size)
        found = self._finished(train)
        if found:
            return found
        store = hashlib.sha256(mlflow.get_tracking_uri().encode()).hexdigest()[:12]
        key = f"search-train-{store}-{tracking.config_key('train', train)}-{self.digest[:16]}"
        with tracking.machine_lock(key), advisory_lock(self.job.storage, key):
            found = self._finished(train)  # trained by another worker while this one waited
            if found:
                return found
            print(f"search: training the model for latent size {latent_size} ({self.config.epochs} epochs)", flush=True)
            return tracking.launch_step("train", train, parent_run_id=self.job.parent_run_id,
                                        experiment_id=self.job.experiment_id, env_manager="local",
                                        env={"OMP_NUM_THREADS": str(self.job.threads)})

    def get(self, latent_size: int) -> tuple[str, torch.nn.Module]:
        if latent_size not in self.loaded:
            run_id = self.run_id(latent_size)
            self.loaded[latent_size] = (run_id, tracking.load_model(f"runs:/{run_id}/model", self.device))
        return self.loaded[latent_size]


# --- a worker -------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Job:
    """What a worker needs: the config, the study's storage, the invocation, where to log."""

    config: dict
    storage: Storage
    invocation: str  # the search run id
    parent_run_id: str
    experiment_id: str
    worker_index: int
    trials_before: int  # trials the study held when this invocation started (moves the samplers' seeds on)
    deadline: float | None
    threads: int

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Job":
        values = json.loads(text)
        values["storage"] = Storage(**values["storage"])
        return cls(**values)


def this_worker() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


@contextmanager
def heartbeat(storage, trial: optuna.Trial):
    """Record the trial's heartbeat every interval while it runs (RDB storages only)."""
    interval = storage.get_heartbeat_interval() if isinstance(storage, optuna.storages.RDBStorage) else None
    if not interval:
        yield
        return
    stop = threading.Event()

    def beat():
        while True:
            try:
                storage.record_heartbeat(trial._trial_id)
            except Exception as error:  # a lost connection: the trial may be failed as stale, the run goes on
                print(f"search: heartbeat of trial {trial.number} failed: {error}", file=sys.stderr)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"heartbeat-{trial.number}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Worker:
    """Asks the study for trials until this invocation holds n_trials (or the deadline), runs them."""

    def __init__(self, job: Job, classifier=None, prepared=None):
        self.job = job
        self.config = config = SearchConfig(**job.config)
        self.client = MlflowClient()
        self.device = resolve_device(config.device)
        self.storage = open_storage(job.storage)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.load_study(study_name=config.study_name, storage=self.storage,
                                           sampler=make_sampler(config, sampler_seed(config, job.trials_before,
                                                                                     job.worker_index, job.storage),
                                                                job.storage),
                                           pruner=make_pruner(config))
        train = train_config(config, 1)
        self.prepared = prepared or tracking.resolve_data(config.data, train.val_fraction, config.seed, train.data_root)
        if classifier is None:
            classifier, _ = tracking.classifier_for(self.prepared, self.device, job.experiment_id)
        schedule = tuple(int(c) for c in config.n_samples.split(","))
        self.counts = search_space.sample_counts(schedule, self.prepared.counts()["train"])
        if config.objective != "fid":
            self.counts = self.counts[-1:]  # no pruning for two objectives: score once, at the largest count
        self.context = EvaluationContext.build(classifier, self.prepared, self.device, self.counts[-1], config.seed,
                                               reference_split="val")
        self.models = Models(config, job, self.prepared.digest, self.device)

    def reserve(self) -> optuna.Trial | None:
        """The next trial, if this invocation still needs one: counting and asking under one lock, so
        several workers never overshoot n_trials."""
        with tracking.machine_lock(f"search-{self.job.invocation}"), warnings.catch_warnings():
            # ask/tell with heartbeats: this loop records them itself (see `heartbeat`)
            warnings.filterwarnings("ignore", message="Heartbeat of storage is supposed to be used")
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            if isinstance(self.storage, optuna.storages.RDBStorage):
                optuna.storages.fail_stale_trials(self.study)
            if counted(self.study, self.job.invocation) >= self.config.n_trials:
                return None
            trial = self.study.ask()
            trial.set_user_attr(INVOCATION_ATTR, self.job.invocation)
            trial.set_user_attr(WORKER_ATTR, this_worker())
            trial.set_user_attr(RUN_ATTR, "")
            return trial

    def run(self) -> None:
        while self.job.deadline is None or time.time() < self.job.deadline:
            trial = self.reserve()
            if trial is None:
                return
            with heartbeat(self.storage, trial):
                self.run_trial(trial)

    def run_trial(self, trial: optuna.Trial) -> None:
        config, client = self.config, self.client
        latent_size, sampler = suggest(trial, config)
        tags = {tracking.PARENT_TAG: self.job.parent_run_id, tracking.STEP_TAG: TRIAL_STEP,
                "optuna.study_name": config.study_name, "optuna.trial_number": str(trial.number),
                "pipeline.latent_size": str(latent_size), **tracking.process_tags()}
        for name in (RETRY_ATTR, "baseline"):
            if name in trial.user_attrs:
                tags[name] = str(trial.user_attrs[name])
        run_id = client.create_run(self.job.experiment_id, run_name=f"trial {trial.number}", tags=tags).info.run_id
        trial.set_user_attr(RUN_ATTR, run_id)
        params = {"trial_number": trial.number, "latent_size": latent_size, "a": sampler.a, "b": sampler.b,
                  "mean": trial.params["mean"], "sd": trial.params["sd"], "loc": sampler.loc, "scale": sampler.scale,
                  "sampler": sampler.spec, "study_name": config.study_name, "reference_split": "val"}
        client.log_batch(run_id, params=[Param(k, str(v)) for k, v in params.items()])
        try:
            started = time.perf_counter()
            model_run_id, model = self.models.get(latent_size)
            trial.set_user_attr(MODEL_ATTR, model_run_id)
            client.log_param(run_id, "model_run_id", model_run_id)
            seconds = {"seconds_model": time.perf_counter() - started, "seconds_scoring": 0.0}
            pruned = False
            for count in self.counts:
                started = time.perf_counter()
                _, images, metrics, _ = self.context.score(model, sampler, count)
                seconds["seconds_scoring"] += time.perf_counter() - started
                client.log_metric(run_id, "fid_at_n", metrics["fid"], step=count)
                if config.objective == "fid":
                    trial.report(metrics["fid"], step=count)
                _pause_for_tests(trial.number)
                if config.objective == "fid" and count != self.counts[-1] and trial.should_prune():
                    pruned = True
                    break
            started = time.perf_counter()
            values = [metrics["fid"]] if config.objective == "fid" else [metrics["fid"], metrics["class_entropy"]]
            now = int(time.time() * 1000)
            logged = {name: float(metrics[name]) for name in REPORTED_METRICS}
            logged["n_samples"] = count
            client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in logged.items()])
            client.log_image(run_id, plots.grid_array(images[:tracking.GRID_SIZE]), artifact_file="samples/grid.png")
            seconds["seconds_logging"] = time.perf_counter() - started
            client.log_batch(run_id, metrics=[Metric(k, v, now, 0) for k, v in seconds.items()])
        except BaseException as error:
            self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
            client.set_tag(run_id, "failure_reason", f"{type(error).__name__}: {error}"[:500])
            client.set_terminated(run_id, "FAILED")
            raise
        if pruned:
            self.study.tell(trial, state=TrialState.PRUNED)
            client.set_tag(run_id, "pruned", "true")
            client.set_terminated(run_id, "KILLED")
        elif not all(math.isfinite(v) for v in values):
            self.study.tell(trial, state=TrialState.FAIL)
            client.set_tag(run_id, "failure_reason", f"objective not finite: {values}")
            client.set_terminated(run_id, "FAILED")
        else:
            self.study.tell(trial, values)
            client.set_terminated(run_id, "FINISHED")
        state = "pruned" if pruned else "done"
        print(f"search: trial {trial.number} {state}: latent {latent_size} {sampler.spec} fid {metrics['fid']:.4g} "
              f"at n={count}", flush=True)


def _pause_for_tests(trial_number: int) -> None:
    """Kill tests: with VAE_PIPELINE_SEARCH_PAUSE_TRIAL=N the worker running trial N stops after its
    first report, its MLflow run open, and waits to be killed: a kill point that does not depend on
    the machine's speed."""
    if os.environ.get(PAUSE_ENV) == str(trial_number):
        print(f"paused in trial {trial_number} (pid {os.getpid()}) ({PAUSE_ENV})", flush=True)
        while True:
            time.sleep(60)


def _exit_on_sigterm() -> None:
    """SIGTERM (also sent when the parent dies) unwinds like Ctrl-C: trials and runs end FAILED."""
    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def _die_with_parent() -> None:  # preexec_fn of worker processes (Linux): SIGTERM when the parent dies
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass


def worker_main(argv: list[str]) -> int:
    """Entry of a worker process: `python -m pipeline.steps.search --worker JOB_JSON`."""
    _exit_on_sigterm()
    job = Job.from_json(argv[argv.index("--worker") + 1])
    torch.set_num_threads(job.threads)
    Worker(job).run()
    return 0


# --- several workers on this machine ----------------------------------------------------------------

def run_workers(job: Job, study: optuna.Study) -> list[str]:
    """Start n_workers processes and watch them: a worker that dies has its RUNNING trials failed,
    their runs ended FAILED and each re-enqueued once, and a replacement takes its place while this
    invocation still needs trials (at most n_workers replacements). Returns notes for the log."""
    config = SearchConfig(**job.config)
    env = dict(os.environ)
    env.pop("MLFLOW_RUN_ID", None)
    env["OMP_NUM_THREADS"] = str(job.threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(tracking.PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    workers: dict[int, tuple[int, subprocess.Popen]] = {}
    next_index, replacements, notes = 0, 0, []

    def start() -> None:
        nonlocal next_index
        worker_job = dataclasses.replace(job, worker_index=next_index)
        process = subprocess.Popen([sys.executable, "-m", "pipeline.steps.search", "--worker", worker_job.to_json()],
                                   env=env, preexec_fn=_die_with_parent)
        workers[process.pid] = (next_index, process)
        next_index += 1

    for _ in range(config.n_workers):
        start()
    try:
        while workers:
            time.sleep(0.5)
            for pid, (index, process) in list(workers.items()):
                status = process.poll()
                if status is None:
                    continue
                del workers[pid]
                if status == 0:
                    continue
                worker = f"{socket.gethostname()}:{pid}"
                recovered = recover_worker(study, worker, f"its worker (pid {pid}) ended with status {status}")
                note = (f"worker {index} (pid {pid}) ended with status {status}; its running trials "
                        f"{recovered or 'none'} failed, runs ended FAILED, re-enqueued once")
                timed_out = job.deadline is not None and time.time() >= job.deadline
                if counted(study, job.invocation) < config.n_trials and not timed_out and replacements < config.n_workers:
                    replacements += 1
                    start()
                    note += "; a replacement worker started"
                print(f"search: {note}", flush=True)
                notes.append(note)
    finally:
        for pid, (index, process) in workers.items():  # the search itself is stopping: stop the workers
            process.terminate()
        for pid, (index, process) in workers.items():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            recover_worker(study, f"{socket.gethostname()}:{pid}", "the search stopped its worker")
    return notes


# --- the step -------------------------------------------------------------------------------------

def search(config: SearchConfig, parent_run_id: str | None = None) -> str:
    """Run the `search` step; returns the search run's id. Every input check comes first."""
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one bar per model load otherwise
    storage = resolve_storage(config)
    check_study(config, storage)
    device = resolve_device(config.device)
    train = train_config(config, 1)
    prepared = tracking.resolve_data(config.data, train.val_fraction, config.seed, train.data_root)
    threads = max(1, (os.cpu_count() or 1) // config.n_workers)
    tags = {"optuna.study_name": config.study_name, "optuna.storage": storage.shown, "data_digest": prepared.digest}
    _exit_on_sigterm()
    with tracking.step_run("search", f"search {config.study_name}", config, parent_run_id=parent_run_id,
                           tags=tags) as run:
        tracking.log_config(config)
        run_id, experiment_id = run.info.run_id, run.info.experiment_id
        _fail_stale_search_runs(experiment_id)
        classifier, classifier_run_id = tracking.classifier_for(prepared, device, experiment_id)
        mlflow.set_tag("classifier_run_id", classifier_run_id)
        study, notes = create_or_load(config, storage)
        if config.objective != "fid":
            notes.append("pruning is off: Optuna cannot prune multi-objective studies (trial.report raises); each "
                         "trial is scored once, at the largest sample count")
            mlflow.set_tag("pruning", "off (two objectives: Optuna cannot prune multi-objective studies)")
        else:
            mlflow.set_tag("pruning", f"MedianPruner(n_startup_trials={MEDIAN_STARTUP_TRIALS})"
                           if config.pruner == "median" else "none")
        for note in notes:
            print(f"search: {note}", flush=True)
        trials_before = len([t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING])
        mlflow.log_param("sampler_seed", sampler_seed(config, trials_before, 0, storage))
        started = time.time()
        job = Job(dataclasses.asdict(config), storage, run_id, run_id, experiment_id, 0, trials_before,
                  started + config.timeout if config.timeout > 0 else None, threads)
        if config.n_workers == 1:
            Worker(job, classifier, prepared).run()
        else:
            notes += run_workers(job, study)
        elapsed = time.time() - started
        if notes:
            mlflow.log_text("\n".join(notes), "search_log.txt")
        summarize(study, config, storage, run_id, experiment_id, elapsed, classifier, prepared, device)
        finished = sum(is_mine(t, run_id) for t in study.get_trials(deepcopy=False, states=FINISHED))
        if finished < config.n_trials and (job.deadline is None or time.time() < job.deadline):
            mlflow.set_tag("failure_reason", f"{finished} of {config.n_trials} trials finished: workers failed")
            raise RuntimeError(f"search: only {finished} of n_trials={config.n_trials} trials finished; the workers "
                               f"failed (see their output above and search_log.txt on run {run_id})")
        return run_id


def _fail_stale_search_runs(experiment_id: str) -> None:
    """Search and trial runs left RUNNING by a process that is gone (killed) end FAILED."""
    for step in ("search", TRIAL_STEP):
        tracking.fail_stale_runs(tracking.search_all_runs(
            [experiment_id], f"attributes.status = 'RUNNING' and tags.`{tracking.STEP_TAG}` = '{step}'"))


def best_trial(study: optuna.Study, config: SearchConfig):
    """(best trial or None, how it was chosen). Two objectives: the Pareto trial nearest the ideal
    point (lowest FID, highest class entropy), each objective scaled over the front."""
    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if not complete:
        return None, "no complete trial"
    if config.objective == "fid":
        return study.best_trial, "lowest validation FID"
    front = study.best_trials
    index = search_space.pick_pareto([tuple(t.values) for t in front])
    return front[index], (f"of the {len(front)} Pareto trials, the one nearest the ideal point (lowest FID, highest "
                          "class entropy), each objective scaled to [0, 1] over the front")


def summarize(study, config, storage, run_id, experiment_id, elapsed, classifier, prepared, device) -> None:
    """Counts, the best trial, the test-split reference figures and Optuna's plots on the search run."""
    client = MlflowClient()
    trials = study.get_trials(deepcopy=False)
    mine = [t for t in trials if is_mine(t, run_id)]
    finished = [t for t in mine if t.state in FINISHED]
    trainings = tracking.search_all_runs([experiment_id], f"tags.`{tracking.PARENT_TAG}` = '{run_id}' and "
                                                          f"tags.`{tracking.STEP_TAG}` = 'train' and "
                                                          "attributes.status = 'FINISHED'")
    counts = {
        "trials": len(finished),
        "trials_complete": sum(t.state == TrialState.COMPLETE for t in mine),
        "trials_pruned": sum(t.state == TrialState.PRUNED for t in mine),
        "trials_failed": sum(t.state == TrialState.FAIL for t in mine),
        "trainings": len(trainings),
        "study_trials": sum(t.state in FINISHED for t in trials),
        "search_seconds": elapsed,
        "trials_per_minute": len(finished) / max(elapsed, 1e-9) * 60,
    }
    mlflow.log_metrics(counts)
    print(f"search: {counts['trials']} trials this run ({counts['trials_complete']} complete, {counts['trials_pruned']} "
          f"pruned, {counts['trials_failed']} failed), {counts['trainings']} trainings, {elapsed:.0f} s; the study "
          f"has {counts['study_trials']} finished trials in {storage.shown}", flush=True)
    best, rule = best_trial(study, config)
    if best is None:
        mlflow.set_tag("best_trial", "none: no complete trial")
        return
    mlflow.log_params({f"best_{name}": value for name, value in best.params.items()})
    mlflow.log_param("best_trial_number", best.number)
    names = ["fid"] if config.objective == "fid" else ["fid", "class_entropy"]
    mlflow.log_metrics({f"best_{name}": value for name, value in zip(names, best.values)})
    mlflow.set_tags({"best_run": best.user_attrs.get(RUN_ATTR, ""), "best_rule": rule})
    a, b, mean, sd = (best.params[k] for k in ("a", "b", "mean", "sd"))
    loc, scale = search_space.placement(a, b, mean, sd)
    best_sampler = BetaSampler(a, b, loc, scale)
    mlflow.set_tag("best_sampler", best_sampler.spec)
    print(f"search: best trial {best.number} ({rule}): latent {best.params['latent_size']} {best_sampler.spec}, "
          + ", ".join(f"{n} {v:.4g}" for n, v in zip(names, best.values)), flush=True)
    test_figures(best, best_sampler, config, classifier, prepared, device)
    log_plots(study, config)
    print(f"search: watch the study with `optuna-dashboard {storage.dashboard}`", flush=True)


def test_figures(best, best_sampler, config, classifier, prepared, device) -> None:
    """The best sampler on the TEST split beside the same model's N(0,1) and gmm:10: reference lines."""
    model_run_id = best.user_attrs.get(MODEL_ATTR)
    try:
        model = tracking.load_model(f"runs:/{model_run_id}/model", device)
    except InputError as error:
        mlflow.set_tag("test_figures", f"skipped: {error}")
        return
    schedule = tuple(int(c) for c in config.n_samples.split(","))
    count = search_space.sample_counts(schedule, prepared.counts()["train"])[-1]
    context = EvaluationContext.build(classifier, prepared, device, count, config.seed, reference_split="test")
    rows = {}
    for name, sampler in (("best_beta", best_sampler), *((n, parse_sampler(s)) for n, s in REFERENCE_SAMPLERS)):
        _, images, metrics, _ = context.score(model, sampler)
        rows[name] = metrics
        mlflow.log_metrics({f"test_{metric}/{name}": float(metrics[metric]) for metric in REPORTED_METRICS})
        mlflow.log_image(plots.grid_array(images[:tracking.GRID_SIZE]), artifact_file=f"best/{name}_grid.png")
    mlflow.log_metrics({f"test_{name}": value for name, value in context.real.items()})
    mlflow.log_params({"test_n_samples": count, "test_model_run_id": model_run_id})
    lines = [f"test split, {count} samples per sampler, model {model_run_id} (latent {best.params['latent_size']})",
             f"{'sampler':<12}{'fid':>10}{'precision':>11}{'recall':>9}{'class_entropy':>15}"]
    for name, metrics in rows.items():
        lines.append(f"{name:<12}{metrics['fid']:>10.4g}{metrics['precision']:>11.4g}{metrics['recall']:>9.4g}"
                     f"{metrics['class_entropy']:>15.4g}")
    lines.append(f"fid_floor (real train subset) {context.real['fid_floor']:.4g}")
    mlflow.log_text("\n".join(lines), "best/test_figures.txt")
    print("\n".join(lines), flush=True)


def plot_specs(study: optuna.Study, config: SearchConfig) -> list[tuple[str, str, dict]]:
    """(artifact name, optuna.visualization function name, keyword arguments) of each plot."""
    if config.objective == "fid":
        target = {}
    else:
        target = {"target": lambda t: t.values[0], "target_name": "fid"}
    specs = [("optimization_history", "plot_optimization_history", target),
             ("param_importances", "plot_param_importances", target),
             ("contour_a_b", "plot_contour", {"params": ["a", "b"], **target}),
             ("slices", "plot_slice", target)]
    if config.objective != "fid":
        specs.append(("pareto_front", "plot_pareto_front", {"target_names": ["fid", "class_entropy"]}))
    return specs


def log_plots(study: optuna.Study, config: SearchConfig) -> None:
    """Optuna's plots as PNG (matplotlib) and all of them on one interactive HTML page that opens
    offline (plotly.js inside the page, once; MLflow's log_figure of plotly loads it from a CDN)."""
    import matplotlib.pyplot as plt
    import optuna.visualization as interactive
    import optuna.visualization.matplotlib as static

    skipped, parts = [], []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, function, kwargs in plot_specs(study, config):
            try:
                axes = getattr(static, function)(study, **kwargs)
                figure = np.asarray(axes).flat[0].figure
                figure.set_size_inches(max(figure.get_size_inches()[0], 8), max(figure.get_size_inches()[1], 5))
                mlflow.log_figure(figure, f"optuna/{name}.png")
                plt.close(figure)
            except Exception as error:  # e.g. importances need two complete trials
                plt.close("all")
                skipped.append(f"{name}.png: {error}")
            try:
                figure = getattr(interactive, function)(study, **kwargs)
                parts.append(f"<h2>{name.replace('_', ' ')}</h2>"
                             + figure.to_html(full_html=False, include_plotlyjs=not parts))
            except Exception as error:
                skipped.append(f"{name} (html): {error}")
    if parts:
        page = ("<!DOCTYPE html><html><head><meta charset='utf-8'><title>Optuna study "
                f"{config.study_name}</title></head><body><h1>Optuna study {config.study_name}</h1>"
                + "".join(parts) + "</body></html>")
        with tempfile.TemporaryDirectory() as folder:
            path = Path(folder) / "study.html"
            path.write_text(page, encoding="utf-8")
            mlflow.log_artifact(str(path), "optuna")
    if skipped:
        mlflow.log_text("\n".join(skipped), "optuna/skipped_plots.txt")


if __name__ == "__main__":
    sys.exit(worker_main(sys.argv))
