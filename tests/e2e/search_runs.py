"""What the search's end-to-end tests share: running `python -m pipeline search`, finding its runs and its
study, and checking that every trial has exactly its one MLflow run."""

from __future__ import annotations

import re
import subprocess
import sys

import optuna
import pytest

from tests.helpers import TINY_SEARCH, artifact_paths

TINY = TINY_SEARCH
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def as_args(params: dict) -> list[str]:
    return [item for key, value in params.items() for item in (f"--{key}", str(value))]


def last_run_id(output: str) -> str:
    """The search run's id: `mlflow run` reports the trainings it launched first, the search last."""
    return re.findall(r"=== Run \(ID '([0-9a-f]{32})'\) succeeded ===", output)[-1]


def children(tracking, parent: str, step: str) -> list:
    return tracking.client.search_runs(
        [tracking.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent}' and tags.`pipeline.step` = '{step}'",
        max_results=1000,
    )


def sqlite_study(tracking, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tracking.root / 'optuna.db'}")


def check_trial_runs(tracking, study: optuna.Study, parent: str) -> list:
    """Every trial of this invocation has exactly one child run of the search run, whose status and
    params match the trial; returns the invocation's trials."""
    mine = [t for t in study.trials if t.user_attrs.get("invocation") == parent]
    runs = {r.info.run_id: r for r in children(tracking, parent, "search_trial")}
    assert sorted(t.user_attrs["mlflow_run_id"] for t in mine) == sorted(runs)
    expected = {
        optuna.trial.TrialState.COMPLETE: "FINISHED",
        optuna.trial.TrialState.PRUNED: "KILLED",
        optuna.trial.TrialState.FAIL: "FAILED",
    }
    for trial in mine:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.info.status == expected[trial.state], trial.number
        assert run.data.params["trial_number"] == str(trial.number)
        assert run.data.params["latent_size"] == str(trial.params["latent_size"])
        assert (run.data.tags.get("pruned") == "true") == (trial.state == optuna.trial.TrialState.PRUNED)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert run.data.metrics["fid"] == pytest.approx(trial.values[0])
        if trial.state in FINISHED:
            assert "samples/grid.png" in artifact_paths(tracking.client, run.info.run_id)
    return mine


def run_search(tracking, params: dict, **env_extra) -> subprocess.CompletedProcess:
    """`python -m pipeline search` against the test store, with extra environment variables."""
    env = {**tracking.env(), "OMP_NUM_THREADS": "1", **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "search", *as_args(params)],
        cwd=tracking.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
