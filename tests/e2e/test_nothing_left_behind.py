"""pipeline/tracking/runs.py, pipeline/process/watchdog.py:
Nothing left behind by a kill, with real processes killed by SIGKILL: a classifier run killed while
training is failed by the sweep the next classifier lookup runs first, a launched step that dies before naming itself
keeps the name it was created with, and resuming a killed training ends the killed run FAILED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import torch

from pipeline.core.data import datasets
from pipeline.core.judges import cnn
from pipeline.tracking import classifier_run
from tests.conftest import REPO, write_idx_folder

pytestmark = pytest.mark.slow

PAUSED_CLASSIFIER = """
import sys, time, torch
from pipeline.tracking import classifier_run
from pipeline.core.judges import cnn
from pipeline.core.data import datasets

def paused(*args, **kwargs):  # the classifier's run is open: wait here to be killed
    print("training", flush=True)
    time.sleep(600)

cnn.fit = paused
classifier_run.classifier_for(datasets.prepare(sys.argv[1]), torch.device("cpu"), sys.argv[2], sys.argv[3])
"""


def classifier_runs(tracking, digest: str) -> list:
    return tracking.client.search_runs(
        [tracking.experiment_id], f"tags.source_digest = '{digest}' and tags.`pipeline.step` = 'classifier'"
    )


def test_a_classifier_killed_while_training_is_swept_by_the_next_lookup(tracking, tmp_path, monkeypatch):
    folder = write_idx_folder(tmp_path / "idx-killed-classifier", n_train=200, n_test=20, seed=5)
    prepared = datasets.prepare(f"idx:{folder}")
    needing = tracking.client.create_run(tracking.experiment_id, run_name="evaluation that needs it").info.run_id
    process = subprocess.Popen(
        [sys.executable, "-c", PAUSED_CLASSIFIER, f"idx:{folder}", tracking.experiment_id, needing],
        env=tracking.env(),
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout.readline().strip() == "training"
        [killed] = classifier_runs(tracking, prepared.source_digest)
        assert killed.info.status == "RUNNING"
        assert killed.info.run_name == f"classifier {prepared.source_digest[:8]}"  # named when created
        assert killed.data.tags["mlflow.parentRunId"] == needing  # under the run that needed it
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    monkeypatch.setattr(cnn, "EPOCHS", 1)
    monkeypatch.setattr(cnn, "MIN_STEPS", 0)
    _, run_id = classifier_run.classifier_for(prepared, torch.device("cpu"), tracking.experiment_id, needing)
    runs = {run.info.run_id: run for run in classifier_runs(tracking, prepared.source_digest)}
    assert set(runs) == {killed.info.run_id, run_id}  # the killed one and exactly one new one
    assert runs[killed.info.run_id].info.status == "FAILED"
    assert "killed" in runs[killed.info.run_id].data.tags["failure_reason"]
    assert runs[run_id].info.status == "FINISHED"
    assert classifier_run.find_classifier_run(prepared.source_digest).info.run_id == run_id


LAUNCH = """
import sys
from pipeline.configs import TrainConfig
from pipeline.tracking.reuse import StepFailed, launch_step

try:
    launch_step("train", TrainConfig(data="0" * 32, epochs=1), sys.argv[1], sys.argv[2], name="train as launched")
except StepFailed as error:
    print("failed:", error)
"""


def test_a_launched_step_that_dies_before_naming_itself_keeps_its_launch_name(tracking):
    """The step refuses its input (an unknown data run) and exits before its own run opens: the run
    the driver created for it is FAILED and named, not given one of MLflow's random names."""
    parent = tracking.client.create_run(tracking.experiment_id, run_name="driver").info.run_id
    result = subprocess.run(
        [sys.executable, "-c", LAUNCH, parent, tracking.experiment_id],
        env=tracking.env(),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert "failed:" in result.stdout, result.stderr[-3000:]
    [run] = tracking.client.search_runs([tracking.experiment_id], f"tags.`mlflow.parentRunId` = '{parent}'")
    assert run.info.status == "FAILED" and run.info.run_name == "train as launched"
    assert run.data.tags["pipeline.step"] == "train"


def test_resuming_a_killed_training_ends_the_killed_run_failed(tracking):
    args = [
        "train",
        "--epochs",
        "4",
        "--checkpoint_every",
        "2",
        "--sample_every",
        "0",
        "--n_images",
        "1",
        "--latent_size",
        "8",
        "--hidden_size",
        "16",
        "--seed",
        "21",
    ]
    tracking.kill_when_paused([sys.executable, "-m", "pipeline", *args], epoch=2)
    [killed] = tracking.client.search_runs(
        [tracking.experiment_id], "attributes.status = 'RUNNING' and params.seed = '21' and params.latent_size = '8'"
    )
    before = len(tracking.client.search_runs([tracking.experiment_id]))

    resumed = tracking.python_step(*args, "--resume", killed.info.run_id)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    run = tracking.client.get_run(killed.info.run_id)
    assert run.info.status == "FAILED" and "killed" in run.data.tags["failure_reason"]
    runs = tracking.client.search_runs([tracking.experiment_id])
    assert len(runs) == before + 1  # the resumed run, nothing else
    [new] = [r for r in runs if r.data.tags.get("resumed_from") == killed.info.run_id]
    assert new.info.status == "FINISHED"
