"""Tracking owns every run's life: child runs opened and ended, runs ended FAILED with a reason, lookups
that only look, one explicit sweep of stale runs, and one reuse-or-launch for main and search. Against a
real SQLite store."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline import tracking as pipeline_tracking
from pipeline.configs import TrainConfig
from pipeline.tracking import code
from pipeline.tracking.launch import LaunchContext
from pipeline.tracking.reuse import reuse_or_launch, reuse_tags
from pipeline.tracking.runs import (
    PROCESS_TAG,
    STALE_REASON,
    child_run,
    end_failed,
    finished_runs,
    newest_finished,
    process_tags,
)
from pipeline.tracking.step import side_run


@pytest.fixture()
def store(tracking, tmp_path):
    """(client, a fresh experiment id) in the session's tracking store."""
    return tracking.client, tracking.client.create_experiment(
        f"tracking-{tmp_path.name}", artifact_location=(tmp_path / "artifacts").as_uri()
    )


def gone_process() -> str:
    """The identity of a process that has exited."""
    return subprocess.run(
        [sys.executable, "-c", "from pipeline.process import processes; print(processes.this_process())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()


def test_a_child_run_is_named_tagged_and_ended_as_told(store):
    client, experiment_id = store
    parent = client.create_run(experiment_id, run_name="parent").info.run_id
    with child_run("search_trial", "trial 0", parent, experiment_id, {"x": "1"}) as run:
        assert client.get_run(run.run_id).info.status == "RUNNING"
        client.log_metric(run.run_id, "fid", 3.5)
    finished = client.get_run(run.run_id)
    assert finished.info.status == "FINISHED" and finished.info.run_name == "trial 0"
    assert finished.data.tags["mlflow.parentRunId"] == parent and finished.data.tags["pipeline.step"] == "search_trial"
    assert finished.data.tags["x"] == "1" and finished.data.tags[PROCESS_TAG]
    assert finished.data.metrics == {"fid": 3.5}

    with child_run("search_trial", "trial 1", parent, experiment_id) as run:
        run.end_as("KILLED", pruned="true")
    pruned = client.get_run(run.run_id)
    assert (pruned.info.status, pruned.data.tags["pruned"]) == ("KILLED", "true")


def test_a_child_run_whose_block_raises_ends_failed_with_the_reason(store):
    client, experiment_id = store
    parent = client.create_run(experiment_id).info.run_id
    with pytest.raises(ValueError, match="boom"):
        with child_run("search_trial", "trial 2", parent, experiment_id) as run:
            raise ValueError("boom")
    failed = client.get_run(run.run_id)
    assert failed.info.status == "FAILED" and failed.data.tags["failure_reason"] == "ValueError: boom"


def test_end_failed_can_leave_an_ended_run_alone(store):
    client, experiment_id = store
    done = client.create_run(experiment_id).info.run_id
    client.set_terminated(done, "FINISHED")
    end_failed(done, "late", only_if_running=True)
    assert client.get_run(done).info.status == "FINISHED" and "failure_reason" not in client.get_run(done).data.tags
    running = client.create_run(experiment_id).info.run_id
    end_failed(running, "its worker died", only_if_running=True)
    assert client.get_run(running).info.status == "FAILED"
    assert client.get_run(running).data.tags["failure_reason"] == "its worker died"


def classifier_runs_with_a_stale_one(client, experiment_id):
    """(stale, alive, older, newer) classifier runs of one digest: a RUNNING run whose process is gone, a
    RUNNING one of this process, and two FINISHED ones started a second apart."""
    tags = {"pipeline.step": "classifier", "source_digest": "d" * 64}
    stale = client.create_run(experiment_id, start_time=1_000, tags={**tags, PROCESS_TAG: gone_process()})
    alive = client.create_run(experiment_id, start_time=2_000, tags={**tags, **process_tags()})
    older, newer = (client.create_run(experiment_id, start_time=t, tags=tags) for t in (3_000, 4_000))
    for run in (older, newer):
        client.set_terminated(run.info.run_id, "FINISHED")
    other = client.create_run(experiment_id, start_time=5_000, tags={**tags, "source_digest": "e" * 64})
    client.set_terminated(other.info.run_id, "FINISHED")
    return (run.info.run_id for run in (stale, alive, older, newer))


def test_lookups_find_by_tags_and_leave_a_stale_run_as_it_is(store):
    client, experiment_id = store
    assert newest_finished("classifier", {"source_digest": "d" * 64}) is None
    stale, alive, older, newer = classifier_runs_with_a_stale_one(client, experiment_id)
    before = client.get_run(stale)

    assert newest_finished("classifier", {"source_digest": "d" * 64}).info.run_id == newer  # every experiment
    assert newest_finished("classifier", {"source_digest": "d" * 64}, [experiment_id]).info.run_id == newer
    assert [r.info.run_id for r in finished_runs("classifier", {"source_digest": "d" * 64})] == [newer, older]
    assert [r.info.run_id for r in pipeline_tracking.children("x" * 32, "classifier", experiment_id)] == []
    after = client.get_run(stale)
    assert (after.info.status, after.info.end_time) == ("RUNNING", None)
    assert after.data.tags == before.data.tags and "failure_reason" not in after.data.tags


def test_the_sweep_ends_stale_runs_failed_and_leaves_live_ones_running(store):
    client, experiment_id = store
    stale, alive, older, newer = classifier_runs_with_a_stale_one(client, experiment_id)
    running = pipeline_tracking.sweep_stale_runs("classifier", {"source_digest": "d" * 64}, [experiment_id])
    assert [run.info.run_id for run in running] == [alive]
    assert client.get_run(stale).info.status == "FAILED"
    assert client.get_run(stale).data.tags["failure_reason"] == STALE_REASON
    assert client.get_run(alive).info.status == "RUNNING"  # this process: left alone
    assert {client.get_run(run_id).info.status for run_id in (older, newer)} == {"FINISHED"}


def test_reuse_or_launch_reuses_resumes_or_launches(store, monkeypatch, tmp_path):
    client, experiment_id = store
    pinned = code.CodeVersion("code:abc", False, "c" * 40)
    monkeypatch.setattr(code, "_VERSIONS", {code.CODE_PATHS: pinned, code.REPORT_PATHS: pinned})
    config = TrainConfig(epochs=2, seed=31)
    launched = []

    def launch(resume):
        launched.append(resume)
        run = client.create_run(experiment_id, tags=reuse_tags("train", config))
        client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    failed = client.create_run(experiment_id, tags=reuse_tags("train", config)).info.run_id
    checkpoint = tmp_path / "epoch_0001.pt"
    checkpoint.write_bytes(b"state")
    client.log_artifact(failed, str(checkpoint), "checkpoints")
    client.set_terminated(failed, "FAILED")

    run_id, how = reuse_or_launch("train", config, experiment_id, "clean", launch)
    assert (how, launched) == (f"resumed from {failed}", [failed])  # an unfinished training with checkpoints
    assert reuse_or_launch("train", config, experiment_id, "clean", launch) == (run_id, "reused")
    assert launched == [failed]  # reused: nothing launched
    again, how = reuse_or_launch("train", config, experiment_id, "clean", launch, accept=lambda run: False)
    assert how == f"resumed from {failed}" and again != run_id and len(launched) == 2  # refused: launched anew
    _, how = reuse_or_launch("train", config, experiment_id, "never", launch)
    assert how == "ran" and launched[-1] is None  # reuse=never: neither reused nor resumed


def test_main_checks_every_step_setting_without_loading_torch():
    """main only finds and launches runs: torch (about 3 s to import) stays out of its process."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipeline.configs import MainConfig\n"
        "from pipeline.core import experiments\n"
        "from pipeline.steps import main\n"
        "for preset in ('quick', 'study'):\n"
        "    config = MainConfig(preset=preset, experiments='grid')\n"
        "    cells = main.make_plan(config, experiments.PRESETS[preset]).cells\n"
        "print(len(cells), sorted(m for m in ('torch', 'matplotlib', 'torchvision', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "4 []"


def test_an_artifact_batch_writes_the_pixels_mlflow_writes_and_logs_tables_as_mlflow_does(store):
    """The same PNG pixels as `mlflow.log_image` (grey, RGB), the files in one folder, and tables that
    MLflow lists in its `mlflow.loggedArtifacts` tag and reads back as its own."""
    import json
    from pathlib import Path

    import mlflow
    import numpy as np
    from PIL import Image

    client, experiment_id = store
    rng = np.random.default_rng(0)
    images = {
        "grey.png": rng.integers(0, 256, (28, 56), dtype=np.uint8),
        "rgb.png": rng.integers(0, 256, (30, 40, 3), dtype=np.uint8),
    }
    with mlflow.start_run(experiment_id=experiment_id) as run:
        for name, array in images.items():
            mlflow.log_image(array, artifact_file=f"theirs/{name}")
        with pipeline_tracking.artifact_batch("mine") as batch:
            batch.table("a.json", {"class": [0, 1, 2], "count": [5, 0, 7]})
            for name, array in images.items():
                batch.image(name, array)
            batch.file("raw.bin", b"\x00\x01")
            with pytest.raises(ValueError, match="uint8"):
                batch.image("float.png", rng.random((4, 4)))
    folder = Path(client.download_artifacts(run.info.run_id, ""))
    assert sorted(p.name for p in (folder / "mine").iterdir()) == ["a.json", "grey.png", "raw.bin", "rgb.png"]
    for name, array in images.items():
        assert np.array_equal(np.asarray(Image.open(folder / "mine" / name)), array)
        assert np.array_equal(
            np.asarray(Image.open(folder / "mine" / name)), np.asarray(Image.open(folder / "theirs" / name))
        )
    assert (folder / "mine" / "raw.bin").read_bytes() == b"\x00\x01"
    listed = json.loads(client.get_run(run.info.run_id).data.tags["mlflow.loggedArtifacts"])
    assert listed == [{"path": "mine/a.json", "type": "table"}]
    loaded = client.load_table(experiment_id, "mine/a.json", run_ids=[run.info.run_id])
    assert loaded["count"].tolist() == [5, 0, 7]


def test_a_step_adopts_the_run_it_was_launched_with_after_a_side_run_has_ended(tracking, monkeypatch):
    """As evaluate under `mlflow run`: the classifier's side run ends first, and MLflow then clears
    MLFLOW_RUN_ID; the launch context read at the step's start still names the step's own run."""
    import os

    client, experiment_id = tracking.client, tracking.experiment_id  # the active experiment, as `mlflow run` sets it
    launched = client.create_run(experiment_id).info.run_id
    monkeypatch.setenv("MLFLOW_RUN_ID", launched)
    monkeypatch.setenv("VAE_PIPELINE_DRIVER", "elsewhere:1:2.000")
    launch = pipeline_tracking.launch_context()
    assert launch == LaunchContext(run_id=launched, driver="elsewhere:1:2.000", experiment_chosen=True)
    with side_run("classifier", "classifier 0123", experiment_id, parent_run_id=launched) as side:
        assert side.info.run_id != launched
    assert "MLFLOW_RUN_ID" not in os.environ
    with pipeline_tracking.step_run("evaluate", "evaluate x", launch=launch) as run:
        assert run.info.run_id == launched
    own, classifier = client.get_run(launched), client.get_run(side.info.run_id)
    assert (own.info.status, own.info.run_name, own.data.tags["pipeline.step"]) == (
        "FINISHED",
        "evaluate x",
        "evaluate",
    )
    assert classifier.data.tags["mlflow.parentRunId"] == launched and classifier.info.status == "FINISHED"
    assert own.data.tags["pipeline.driver"] == classifier.data.tags["pipeline.driver"] == "elsewhere:1:2.000"
    assert LaunchContext.of({}) == LaunchContext(run_id=None, driver=None, experiment_chosen=False)
    assert LaunchContext.of({"MLFLOW_EXPERIMENT_NAME": "mine"}).experiment_chosen
