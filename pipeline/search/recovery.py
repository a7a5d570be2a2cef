"""Trials whose worker is gone: failed in the study, their runs ended FAILED, each retried once."""

from __future__ import annotations

import sys

import optuna
from optuna.trial import TrialState

from pipeline.search.policy import RETRY_ATTR, RUN_ATTR, WORKER_ATTR
from pipeline.tracking.runs import end_failed


def end_trial_run(trial, reason: str) -> None:
    """End the MLflow run of a trial whose worker is gone, FAILED with the reason (if still RUNNING)."""
    run_id = trial.user_attrs.get(RUN_ATTR)
    if not run_id:
        return
    try:
        end_failed(run_id, reason, only_if_running=True)
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
    """Fail the RUNNING trials of a dead worker, end their runs FAILED, re-enqueue each once.

    The retry is enqueued before the trial is failed: a live worker that counts this invocation's
    trials in between then finds the retry waiting, instead of asking for a new trial in its place.
    """
    recovered = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if trial.user_attrs.get(WORKER_ATTR) != worker:
            continue
        retry_once(study, trial)
        study.tell(trial.number, state=TrialState.FAIL, skip_if_finished=True)
        end_trial_run(trial, reason)
        recovered.append(trial.number)
    return recovered
