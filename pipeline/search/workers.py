"""Workers: each asks the study for trials until this invocation holds n_trials, runs them (a child run
per trial) and tells the study; several on one machine are separate processes watched by the search."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import os
import subprocess
import sys
import time
import warnings

import mlflow
import optuna
import torch
from mlflow.entities import Param
from mlflow.tracking import MlflowClient
from optuna.trial import TrialState

from pipeline import tracking
from pipeline.configs import SearchConfig
from pipeline.core import plots
from pipeline.core.devices import resolve_device
from pipeline.core.evaluation.scoring import EvaluationContext
from pipeline.core.model.generation import png_bytes
from pipeline.process import processes
from pipeline.process.pause import pause_point
from pipeline.search.artifacts import artifact_folder, upload_grid
from pipeline.search.models import Models, train_config
from pipeline.search.policy import (
    INVOCATION_ATTR,
    MODEL_ATTR,
    RETRY_ATTR,
    RUN_ATTR,
    WORKER_ATTR,
    counted,
    make_pruner,
    make_sampler,
    sample_counts,
    sampler_seed,
    suggest,
)
from pipeline.search.recovery import on_stale_trial, recover_worker
from pipeline.search.storage import Storage, open_storage
from pipeline.tracking.classifier_run import classifier_for
from pipeline.tracking.code import PROJECT_ROOT
from pipeline.tracking.runs import child_run

TRIAL_STEP = "search_trial"
REPORTED_METRICS = (
    "fid",
    "precision",
    "recall",
    "density",
    "coverage",
    "confidence",
    "class_entropy",
    "classes_covered",
    "max_class_share",
    "sharpness",
)


@dataclasses.dataclass(frozen=True)
class Job:
    """What a worker needs: the config, the study's storage, the search run (the invocation whose
    trials it adds, and the parent of their runs and of trainings), its index, the deadline and threads."""

    config: dict
    storage: Storage
    search_run_id: str
    experiment_id: str
    trials_before: int  # trials the study held when this invocation started (moves the samplers' seeds on)
    deadline: float | None
    threads: int
    worker_index: int = 0

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self))

    @classmethod
    def from_json(cls, text: str) -> Job:
        values = json.loads(text)
        values["storage"] = Storage(**values["storage"])
        return cls(**values)


class Worker:
    """Asks the study for trials until this invocation holds n_trials (or the deadline), runs them."""

    def __init__(self, job: Job, classifier=None, prepared=None):
        self.job = job
        self.config = config = SearchConfig(**job.config)
        self.client = MlflowClient()
        self.device = resolve_device(config.device)
        self.storage = open_storage(job.storage, heartbeat=config.heartbeat, on_stale_trial=on_stale_trial)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            self.study = optuna.load_study(
                study_name=config.study_name,
                storage=self.storage,
                sampler=make_sampler(
                    config, sampler_seed(config, job.trials_before, job.worker_index, job.storage), job.storage
                ),
                pruner=make_pruner(config),
            )
        train = train_config(config, 1)
        self.prepared = prepared or tracking.resolve_data(config.data, train.val_fraction, config.seed, train.data_root)
        if classifier is None:  # a worker process: the search trained the classifier before starting it
            classifier, _ = classifier_for(self.prepared, self.device, job.experiment_id, job.search_run_id)
        self.counts = sample_counts(config, self.prepared)
        if config.objective != "fid":
            self.counts = self.counts[-1:]  # no pruning for two objectives: score once, at the largest count
        self.context = EvaluationContext.build(
            classifier, self.prepared, self.device, self.counts[-1], config.seed, reference_split="val"
        )
        self.models = Models(config, job, self.prepared.digest, self.device)
        self.artifacts = artifact_folder(config, job.storage)

    def run(self) -> None:
        """One trial at a time through `study.optimize`, which keeps Optuna's heartbeats on RDB storages and
        fails stale trials before each one. Counting this invocation's trials and asking for the next happen
        under one lock, released once the trial carries this invocation, so workers never overshoot n_trials."""
        while self.job.deadline is None or time.time() < self.job.deadline:
            with contextlib.ExitStack() as reservation:
                reservation.enter_context(processes.machine_lock(f"search-{self.job.search_run_id}"))
                if counted(self.study, self.job.search_run_id) >= self.config.n_trials:
                    return
                self.reservation, self.trial = reservation, None
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                        self.study.optimize(self.run_trial, n_trials=1)
                except SystemExit:  # SIGTERM (processes.exit_on_sigterm): Optuna leaves the trial RUNNING
                    if self.trial is not None:
                        self.study.tell(self.trial.number, state=TrialState.FAIL, skip_if_finished=True)
                    raise

    def run_trial(self, trial: optuna.Trial) -> float | list[float]:
        """The objective: one trial in its own child run of the search run, FINISHED; KILLED when pruned
        (optuna.TrialPruned), FAILED when the objective is not finite (Optuna fails the trial) or it raises."""
        self.trial = trial
        trial.set_user_attr(INVOCATION_ATTR, self.job.search_run_id)
        trial.set_user_attr(WORKER_ATTR, processes.this_worker())
        trial.set_user_attr(RUN_ATTR, "")
        self.reservation.close()  # the trial counts now: the next worker may ask
        config = self.config
        latent_size, sampler = suggest(trial, config)
        tags = {
            "optuna.study_name": config.study_name,
            "optuna.trial_number": str(trial.number),
            "pipeline.latent_size": str(latent_size),
        }
        for name in (RETRY_ATTR, "baseline"):
            if name in trial.user_attrs:
                tags[name] = str(trial.user_attrs[name])
        with child_run(
            TRIAL_STEP, f"trial {trial.number}", self.job.search_run_id, self.job.experiment_id, tags
        ) as run:
            trial.set_user_attr(RUN_ATTR, run.run_id)
            params = {
                "trial_number": trial.number,
                "latent_size": latent_size,
                "a": sampler.a,
                "b": sampler.b,
                "mean": trial.params["mean"],
                "sd": trial.params["sd"],
                "loc": sampler.loc,
                "scale": sampler.scale,
                "sampler": sampler.spec,
                "study_name": config.study_name,
                "reference_split": "val",
            }
            self.client.log_batch(run.run_id, params=[Param(k, str(v)) for k, v in params.items()])
            metrics, count, pruned = self.score(trial, run.run_id, latent_size, sampler)
            values = [metrics["fid"]] if config.objective == "fid" else [metrics["fid"], metrics["class_entropy"]]
            if pruned:
                run.end_as("KILLED", pruned="true")
            elif not all(math.isfinite(v) for v in values):
                run.end_as("FAILED", failure_reason=f"objective not finite: {values}")
                values = [math.nan] * len(values)  # Optuna fails a trial whose objective is NaN
        state = "pruned" if pruned else "done"
        print(
            f"search: trial {trial.number} {state}: latent {latent_size} {sampler.spec} fid {metrics['fid']:.4g} "
            f"at n={count}",
            flush=True,
        )
        if pruned:
            raise optuna.TrialPruned()
        return values[0] if len(values) == 1 else values

    def score(self, trial: optuna.Trial, run_id: str, latent_size: int, sampler) -> tuple[dict, int, bool]:
        """(metrics, sample count, pruned): FID on growing sample counts, reported to the pruner, then
        the last count's metrics, a sample grid and where the time went, logged on the trial's run."""
        config, client = self.config, self.client
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
            pause_point(f"search.trial.{trial.number}")  # kill tests (pipeline/process/pause.py)
            if config.objective == "fid" and count != self.counts[-1] and trial.should_prune():
                pruned = True
                break
        started = time.perf_counter()
        now = int(time.time() * 1000)
        logged = {name: float(metrics[name]) for name in REPORTED_METRICS}
        logged["n_samples"] = count
        mlflow.log_metrics(logged, run_id=run_id, timestamp=now)
        grid = plots.grid_array(images[: plots.GRID_SIZE])
        client.log_image(run_id, grid, artifact_file="samples/grid.png")
        upload_grid(trial, png_bytes(grid), self.artifacts)  # for optuna-dashboard, beside the trial's FID
        seconds["seconds_logging"] = time.perf_counter() - started
        mlflow.log_metrics(seconds, run_id=run_id, timestamp=now)
        return metrics, count, pruned


def worker_main(argv: list[str]) -> int:
    """Entry of a worker process: `python -m pipeline.search --worker JOB_JSON` (pipeline/search/__main__.py)."""
    processes.exit_on_sigterm()
    job = Job.from_json(argv[argv.index("--worker") + 1])
    torch.set_num_threads(job.threads)
    Worker(job).run()
    return 0


def worker_env(job: Job) -> dict[str, str]:
    """A worker process's environment: this one's, outside the search run, with the job's threads and this
    checkout importable."""
    env = dict(os.environ)
    env.pop("MLFLOW_RUN_ID", None)
    env["OMP_NUM_THREADS"] = str(job.threads)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH")) if p)
    return env


def start_worker(job: Job, index: int, env: dict[str, str], workers: dict[int, tuple[int, subprocess.Popen]]) -> None:
    """Start worker `index` as a process that dies with this one, and add it to `workers` by its pid."""
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline.search", "--worker", dataclasses.replace(job, worker_index=index).to_json()],
        env=env,
        preexec_fn=processes.die_with_parent,
    )
    workers[process.pid] = (index, process)


def stop_workers(study: optuna.Study, workers: dict[int, tuple[int, subprocess.Popen]]) -> None:
    """Terminate the workers still running (killed after 30 s) and fail what they were running."""
    for _, process in workers.values():
        process.terminate()
    for pid, (_, process) in workers.items():
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        recover_worker(study, processes.worker_identity(pid), "the search stopped its worker")


def run_workers(job: Job, study: optuna.Study) -> list[str]:
    """Start n_workers processes and watch them: a worker that dies has its RUNNING trials failed,
    their runs ended FAILED and each re-enqueued once, and a replacement takes its place while this
    invocation still needs trials (at most n_workers replacements). Returns notes for the log."""
    config = SearchConfig(**job.config)
    env = worker_env(job)
    workers: dict[int, tuple[int, subprocess.Popen]] = {}  # pid: (worker index, process)
    for index in range(config.n_workers):
        start_worker(job, index, env, workers)
    next_index, replacements, notes = config.n_workers, 0, []
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
                worker = processes.worker_identity(pid)
                recovered = recover_worker(study, worker, f"its worker (pid {pid}) ended with status {status}")
                note = (
                    f"worker {index} (pid {pid}) ended with status {status}; its running trials "
                    f"{recovered or 'none'} failed, runs ended FAILED, re-enqueued once"
                )
                timed_out = job.deadline is not None and time.time() >= job.deadline
                needed = counted(study, job.search_run_id) < config.n_trials and not timed_out
                if needed and replacements < config.n_workers:
                    replacements += 1
                    start_worker(job, next_index, env, workers)
                    next_index += 1
                    note += "; a replacement worker started"
                print(f"search: {note}", flush=True)
                notes.append(note)
    finally:
        stop_workers(study, workers)  # the search itself is stopping: stop the workers
    return notes
