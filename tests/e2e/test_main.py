"""End to end: `mlflow run . -e main` runs the study, reuses every step the second time, and
recovers from a SIGKILL mid-training with exactly one finished run per step."""

from __future__ import annotations

import json
import os
import signal
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO, VENV_BIN

pytestmark = pytest.mark.slow

TINY = {"experiments": "bce-standard,E4", "seeds": "0,1", "epochs": 2, "latent_size": 8, "hidden_size": 32,
        "n_samples": 200, "iwae_k": 3, "reuse": "dirty", "max_parallel": 2}
VERDICTS = ("F1", "F2", "F3", "F4", "F5", "F6")


def children(client, experiment_id, step=None):
    runs = client.search_runs([experiment_id], "" if step is None else f"tags.`pipeline.step` = '{step}'",
                              max_results=1000)
    return runs


def steps_json(client, main_run_id) -> dict:
    return json.loads(Path(client.download_artifacts(main_run_id, "main/steps.json")).read_text())


@pytest.fixture(scope="module")
def study_experiment(tracking):
    return tracking.client.create_experiment("main-e2e", artifact_location=(tracking.root / "main-e2e").as_uri())


@pytest.fixture(scope="module")
def first_main(tracking, study_experiment, tmp_path_factory):
    report_dir = tmp_path_factory.mktemp("report")
    run_id, output = tracking.mlflow_run("main", {**TINY, "report_dir": report_dir}, experiment_id=study_experiment)
    return run_id, output, report_dir


def test_main_runs_every_step_as_a_finished_child_and_writes_the_report(tracking, study_experiment, first_main):
    main_id, output, report_dir = first_main
    client = tracking.client
    main = client.get_run(main_id)
    assert main.info.status == "FINISHED" and main.data.tags["pipeline.step"] == "main"
    kids = [r for r in children(client, study_experiment) if r.data.tags.get("mlflow.parentRunId") == main_id]
    by_step = {}
    for run in kids:
        by_step.setdefault(run.data.tags["pipeline.step"], []).append(run)
        assert run.info.status == "FINISHED", (run.data.tags["pipeline.step"], run.info.run_name)
    assert {step: len(runs) for step, runs in by_step.items()} == {"prepare_data": 1, "train": 4, "evaluate": 4,
                                                                     "report": 1}
    names = sorted(run.info.run_name for run in by_step["train"])
    assert names == ["train bce standard z8 s0", "train bce standard z8 s1", "train mse standard z8 s0",
                     "train mse standard z8 s1"]
    plan = steps_json(client, main_id)
    assert [r["step"] for r in plan["steps"]].count("evaluate") == 4 and not any(r["reused"] for r in plan["steps"])
    assert {e["name"] for e in plan["experiments"]} == {"E1", "E2", "E3", "bce-standard gmm:10", "E4"}
    for run in by_step["evaluate"]:  # each cell is evaluated with its experiments' samplers
        cell = client.get_run(run.data.tags["source_run_id"]).data.tags["pipeline.cell"]
        keys = {k.split("/")[1] for k in run.data.metrics if k.startswith("fid/")}
        assert keys == ({"normal_0_1", "normal_1_2", "beta_0.25_0.25", "gmm_10"} if cell == "bce-standard"
                        else {"beta_0.25_0.25"})
    assert main.data.metrics["steps_ran"] == 9 and main.data.metrics["steps_reused"] == 0

    artifacts = {a.path for a in client.list_artifacts(main_id, "report")}
    assert {"report/report.html", "report/report.md", "report/report.png"} <= artifacts
    html = (Path(report_dir) / "report.html").read_text()
    for name in ("E1", "E2", "E3", "E4", "bce-standard gmm:10", *VERDICTS):
        assert name in html, name


def test_a_second_main_starts_no_step(tracking, study_experiment, first_main, tmp_path):
    client = tracking.client
    before = {step: len(children(client, study_experiment, step)) for step in ("prepare_data", "train", "evaluate")}
    run_id, output = tracking.mlflow_run("main", {**TINY, "report_dir": tmp_path}, experiment_id=study_experiment)
    after = {step: len(children(client, study_experiment, step)) for step in ("prepare_data", "train", "evaluate")}
    assert after == before
    plan = steps_json(client, run_id)
    assert all(r["reused"] for r in plan["steps"]) and len(plan["steps"]) == 9
    assert client.get_run(run_id).data.metrics["steps_reused"] == 9
    assert (tmp_path / "report.html").read_text() == (Path(first_main[2]) / "report.html").read_text()
    assert "report/report.html" in {a.path for a in client.list_artifacts(run_id, "report")}


def test_main_killed_during_a_training_redoes_only_what_did_not_finish(tracking, tmp_path):
    client = tracking.client
    experiment = client.create_experiment("main-kill", artifact_location=(tmp_path / "artifacts").as_uri())
    params = {**TINY, "experiments": "E1", "epochs": 12, "max_parallel": 1, "report_dir": tmp_path / "report"}
    command = [os.path.join(VENV_BIN, "mlflow"), "run", str(REPO), "-e", "main", "--env-manager", "local",
               "--experiment-id", experiment] + [arg for k, v in params.items() for arg in ("-P", f"{k}={v}")]
    # Every training pauses after its checkpoint of epoch 10 (the hook waits to be killed); with one
    # step at a time, the first training is the one the SIGKILL lands in, whatever the machine's speed.
    env = {**tracking.env(), "VAE_PIPELINE_PAUSE_AFTER_EPOCH": "10"}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
                               start_new_session=True)
    for line in process.stdout:
        if "paused after epoch 10" in line:
            break
    os.killpg(process.pid, signal.SIGKILL)
    process.wait()
    killed = children(client, experiment, "train")
    # Left RUNNING by the killed main, or already FAILED: the training saw its driver die and stopped
    # itself, and its own `mlflow run` closed the run (steps run in process sessions of their own).
    assert [r.info.status for r in killed] in (["RUNNING"], ["FAILED"])

    run_id, output = tracking.mlflow_run("main", {k: v for k, v in params.items()}, experiment_id=experiment)
    assert client.get_run(killed[0].info.run_id).info.status == "FAILED"
    trains = children(client, experiment, "train")
    finished = [r for r in trains if r.info.status == "FINISHED"]
    assert len(finished) == 2  # seeds 0 and 1, one finished run each
    resumed = [r for r in finished if r.data.tags.get("resumed_from") == killed[0].info.run_id]
    assert len(resumed) == 1
    history = client.get_metric_history(resumed[0].info.run_id, "train_loss")
    assert sorted(m.step for m in history) == list(range(1, 13))
    for step in ("prepare_data", "evaluate"):
        runs = children(client, experiment, step)
        keys = [r.data.tags["pipeline.config_key"] for r in runs if r.info.status == "FINISHED"]
        assert len(keys) == len(set(keys)) and len(keys) == (1 if step == "prepare_data" else 2)
    assert not [r for r in children(client, experiment) if r.info.status == "RUNNING"]
