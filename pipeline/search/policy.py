"""The study's policy: its directions and space, the samplers and pruner, new studies with their baselines,
what a trial suggests, which trials are this invocation's, and the best trial."""

from __future__ import annotations

import os
import warnings

import optuna
from optuna.trial import TrialState

from pipeline.configs import SearchConfig
from pipeline.core import search_space
from pipeline.core.model.samplers import BetaSampler
from pipeline.errors import InputError
from pipeline.search.storage import Storage, open_storage

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)
INVOCATION_ATTR = "invocation"  # the search run that added the trial: n_trials counts per invocation
WORKER_ATTR = "worker"  # host:pid of the process that runs the trial
RUN_ATTR = "mlflow_run_id"
MODEL_ATTR = "model_run_id"
RETRY_ATTR = "retry_of"
MEDIAN_STARTUP_TRIALS = 4


def directions(config: SearchConfig) -> list[str]:
    return ["minimize"] if config.objective == "fid" else ["minimize", "maximize"]


def space_of(config: SearchConfig) -> dict:
    """What makes trials of one study comparable: the searched space and the models' settings."""
    return {
        "latent_sizes": config.latent_sizes,
        "ab_min": config.ab_min,
        "ab_max": config.ab_max,
        "mean_min": config.mean_min,
        "mean_max": config.mean_max,
        "sd_min": config.sd_min,
        "sd_max": config.sd_max,
        "data": config.data,
        "hidden_size": config.hidden_size,
        "epochs": config.epochs,
        "batch_size": config.batch_size,
        "precision": config.precision,
        "seed": config.seed,
    }


def check_study(config: SearchConfig, storage: Storage) -> None:
    """A study continued under the same name must have the same objective, space and models."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            study = optuna.load_study(study_name=config.study_name, storage=open_storage(storage))
        except KeyError:
            return
    held = [d.name.lower() for d in study.directions]
    if held != directions(config):
        shown = "fid" if len(held) == 1 else "fid,class_entropy"
        raise InputError(
            f"parameter 'objective': got {config.objective!r}, but study {config.study_name!r} in "
            f"{storage.shown} optimizes {shown}; allowed: {shown}, or another study_name"
        )
    space = study.user_attrs.get("search_space") or {}
    for name, value in space_of(config).items():
        if name in space and str(space[name]) != str(value):
            raise InputError(
                f"parameter '{name}': got {value!r}, but study {config.study_name!r} was searched with "
                f"{name}={space[name]!r} (its trials would not compare); allowed: {space[name]!r}, or "
                "another study_name"
            )


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
        study = optuna.create_study(
            study_name=config.study_name,
            storage=optuna_storage,
            sampler=make_sampler(config, config.seed, storage),
            pruner=make_pruner(config),
            directions=directions(config),
        )
    except optuna.exceptions.DuplicatedStudyError:
        study = optuna.load_study(
            study_name=config.study_name,
            storage=optuna_storage,
            sampler=make_sampler(config, config.seed, storage),
            pruner=make_pruner(config),
        )
        return study, [f"continuing study {config.study_name!r} ({len(study.trials)} trials so far)"]
    study.set_user_attr("search_space", space_of(config))
    kept, left_out = search_space.baselines(ranges_of(config))
    for params in kept:
        study.enqueue_trial(params, user_attrs={"baseline": _baseline_name(params)})
    notes.append(
        f"new study {config.study_name!r}; baselines enqueued first: "
        f"{', '.join(_baseline_name(p) for p in kept) or 'none'}"
    )
    if left_out:
        notes.append(f"baselines outside the ranges, not enqueued: {', '.join(left_out)}")
    return study, notes


def _baseline_name(params: dict) -> str:
    return "study_beta" if params["a"] == search_space.STUDY_BETA[0] else "normal_like_beta"


def ranges_of(config: SearchConfig) -> search_space.Ranges:
    return search_space.Ranges(
        config.ab_min, config.ab_max, config.mean_min, config.mean_max, config.sd_min, config.sd_max
    )


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
    return front[index], (
        f"of the {len(front)} Pareto trials, the one nearest the ideal point (lowest FID, highest "
        "class entropy), each objective scaled to [0, 1] over the front"
    )


def sample_counts(config: SearchConfig, prepared) -> list[int]:
    """The growing sample counts a trial is scored on, capped by the training images."""
    schedule = tuple(int(c) for c in config.n_samples.split(","))
    return search_space.sample_counts(schedule, prepared.counts()["train"])


def trial_accounts(study: optuna.Study, invocation: str, failure_of=lambda trial: "") -> list[dict]:
    """Every trial this invocation added, with its state and why it ended so: none left out of the
    record. `failure_of(trial)` gives a failed trial's reason (its run's failure_reason)."""
    accounts = []
    for trial in study.get_trials(deepcopy=False):
        if not is_mine(trial, invocation):
            continue
        state = trial.state.name.lower()
        if trial.state == TrialState.COMPLETE:
            why = "completed: scored on every sample count"
        elif trial.state == TrialState.PRUNED:
            step = max(trial.intermediate_values, default=None)
            where = f" after {step} samples (FID {trial.intermediate_values[step]:.4g})" if step is not None else ""
            why = f"pruned{where}: worse than the median of the earlier trials at that count (MedianPruner)"
        elif trial.state == TrialState.FAIL:
            why = "failed: " + (failure_of(trial) or "no reason recorded")
        else:
            why = f"{state} when the verification read the study"
        value = trial.values[0] if trial.values else None
        latent = trial.params.get("latent_size")
        accounts.append({"number": trial.number, "state": state, "latent_size": latent, "value": value, "why": why})
    return accounts
