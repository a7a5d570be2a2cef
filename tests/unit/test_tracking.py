"""Tracking owns every run's life: child runs opened and ended, runs ended FAILED with a reason, stale
runs failed before a lookup, and one reuse-or-launch for main and search. Against a real SQLite store."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from pipeline import tracking as pipeline_tracking
from pipeline.configs import TrainConfig
from pipeline.tracking import code


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
    with pipeline_tracking.child_run("search_trial", "trial 0", parent, experiment_id, {"x": "1"}) as run:
        assert client.get_run(run.run_id).info.status == "RUNNING"
        client.log_metric(run.run_id, "fid", 3.5)
    finished = client.get_run(run.run_id)
    assert finished.info.status == "FINISHED" and finished.info.run_name == "trial 0"
    assert finished.data.tags["mlflow.parentRunId"] == parent and finished.data.tags["pipeline.step"] == "search_trial"
    assert finished.data.tags["x"] == "1" and finished.data.tags[pipeline_tracking.PROCESS_TAG]
    assert finished.data.metrics == {"fid": 3.5}

    with pipeline_tracking.child_run("search_trial", "trial 1", parent, experiment_id) as run:
        run.end_as("KILLED", pruned="true")
    pruned = client.get_run(run.run_id)
    assert (pruned.info.status, pruned.data.tags["pruned"]) == ("KILLED", "true")


def test_a_child_run_whose_block_raises_ends_failed_with_the_reason(store):
    client, experiment_id = store
    parent = client.create_run(experiment_id).info.run_id
    with pytest.raises(ValueError, match="boom"):
        with pipeline_tracking.child_run("search_trial", "trial 2", parent, experiment_id) as run:
            raise ValueError("boom")
    failed = client.get_run(run.run_id)
    assert failed.info.status == "FAILED" and failed.data.tags["failure_reason"] == "ValueError: boom"


def test_end_failed_can_leave_an_ended_run_alone(store):
    client, experiment_id = store
    done = client.create_run(experiment_id).info.run_id
    client.set_terminated(done, "FINISHED")
    pipeline_tracking.end_failed(done, "late", only_if_running=True)
    assert client.get_run(done).info.status == "FINISHED" and "failure_reason" not in client.get_run(done).data.tags
    running = client.create_run(experiment_id).info.run_id
    pipeline_tracking.end_failed(running, "its worker died", only_if_running=True)
    assert client.get_run(running).info.status == "FAILED"
    assert client.get_run(running).data.tags["failure_reason"] == "its worker died"


def test_newest_finished_fails_stale_runs_first_and_finds_by_tags_in_any_experiment(store):
    client, experiment_id = store
    tags = {"pipeline.step": "classifier", "source_digest": "d" * 64}
    assert pipeline_tracking.newest_finished("classifier", {"source_digest": "d" * 64}) is None
    stale = client.create_run(experiment_id, tags={**tags, pipeline_tracking.PROCESS_TAG: gone_process()}).info.run_id
    alive = client.create_run(experiment_id, tags={**tags, **pipeline_tracking.process_tags()}).info.run_id
    # a second apart: runs that start in the same millisecond are ordered by MLflow's random run id
    now = int(time.time() * 1000)
    older, newer = (client.create_run(experiment_id, start_time=now + ms, tags=tags).info.run_id for ms in (0, 1000))
    for run_id in (older, newer):
        client.set_terminated(run_id, "FINISHED")
    other = client.create_run(experiment_id, tags={**tags, "source_digest": "e" * 64}).info.run_id
    client.set_terminated(other, "FINISHED")

    found = pipeline_tracking.newest_finished("classifier", {"source_digest": "d" * 64})  # every experiment
    assert found.info.run_id == newer
    assert client.get_run(stale).info.status == "FAILED"
    assert client.get_run(stale).data.tags["failure_reason"] == pipeline_tracking.STALE_REASON
    assert client.get_run(alive).info.status == "RUNNING"  # this process: left alone
    assert (
        pipeline_tracking.newest_finished("classifier", {"source_digest": "d" * 64}, [experiment_id]).info.run_id
        == newer
    )
    assert [r.info.run_id for r in pipeline_tracking.children("x" * 32, "classifier", experiment_id)] == []


def test_reuse_or_launch_reuses_resumes_or_launches(store, monkeypatch, tmp_path):
    client, experiment_id = store
    pinned = code.CodeVersion("code:abc", False, "c" * 40)
    monkeypatch.setattr(code, "_VERSIONS", {code.CODE_PATHS: pinned, code.REPORT_PATHS: pinned})
    config = TrainConfig(epochs=2, seed=31)
    launched = []

    def launch(resume):
        launched.append(resume)
        run = client.create_run(experiment_id, tags=pipeline_tracking.reuse_tags("train", config))
        client.set_terminated(run.info.run_id, "FINISHED")
        return run.info.run_id

    failed = client.create_run(experiment_id, tags=pipeline_tracking.reuse_tags("train", config)).info.run_id
    checkpoint = tmp_path / "epoch_0001.pt"
    checkpoint.write_bytes(b"state")
    client.log_artifact(failed, str(checkpoint), "checkpoints")
    client.set_terminated(failed, "FAILED")

    run_id, how = pipeline_tracking.reuse_or_launch("train", config, experiment_id, "clean", launch)
    assert (how, launched) == (f"resumed from {failed}", [failed])  # an unfinished training with checkpoints
    assert pipeline_tracking.reuse_or_launch("train", config, experiment_id, "clean", launch) == (run_id, "reused")
    assert launched == [failed]  # reused: nothing launched
    again, how = pipeline_tracking.reuse_or_launch(
        "train", config, experiment_id, "clean", launch, accept=lambda run: False
    )
    assert how == f"resumed from {failed}" and again != run_id and len(launched) == 2  # refused: launched anew
    _, how = pipeline_tracking.reuse_or_launch("train", config, experiment_id, "never", launch)
    assert how == "ran" and launched[-1] is None  # reuse=never: neither reused nor resumed


def test_main_checks_every_step_setting_without_loading_torch():
    """main only finds and launches runs: torch (about 3 s to import) stays out of its process."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from pipeline.configs import MainConfig\n"
        "from pipeline.core import study\n"
        "from pipeline.steps import main\n"
        "for preset in ('quick', 'study'):\n"
        "    config = MainConfig(preset=preset, experiments='grid')\n"
        "    settings = main.resolve_settings(config)\n"
        "    cells = main.cells_of(study.select(settings['experiments']))\n"
        "    main.check_step_settings(config, settings, cells, settings['data'])\n"
        "print(len(cells), sorted(m for m in ('torch', 'matplotlib', 'torchvision', 'sklearn') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "4 []"


def test_an_artifact_batch_writes_what_mlflows_own_calls_write(store):
    """The same table JSON, the same PNG pixels (arrays converted as mlflow.log_image converts them:
    grey, RGB, a float grid) and the same `mlflow.loggedArtifacts` tag, however many batches log
    tables; and MLflow reads the tables back as its own."""
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
        "float.png": rng.random((12, 12)),
    }
    tables = {
        "a.json": {"class": [0, 1, 2], "count": [5, 0, 7], "share": [0.41667, 0.0, 0.58333]},
        "b.json": {"class": [0, 1], "count": [1, 2], "share": [0.33333, 0.66667]},
    }
    runs = {}
    for way in ("mlflow", "batch"):
        with mlflow.start_run(experiment_id=experiment_id) as run:
            for folder in ("first", "second"):
                if way == "mlflow":
                    for name, table in tables.items():
                        mlflow.log_table(table, artifact_file=f"{folder}/{name}")
                    for name, array in images.items():
                        mlflow.log_image(array, artifact_file=f"{folder}/{name}")
                else:
                    with pipeline_tracking.artifact_batch(folder) as batch:
                        for name, table in tables.items():
                            batch.table(name, table)
                        for name, array in images.items():
                            batch.image(name, array)
        runs[way] = run.info.run_id
    mine, theirs = (Path(client.download_artifacts(runs[way], "")) for way in ("batch", "mlflow"))
    files = sorted(str(path.relative_to(theirs)) for path in theirs.rglob("*") if path.is_file())
    assert files == sorted(str(path.relative_to(mine)) for path in mine.rglob("*") if path.is_file())
    assert len(files) == 10
    for name in files:
        if name.endswith(".json"):
            assert (mine / name).read_bytes() == (theirs / name).read_bytes()
        else:
            assert np.array_equal(np.asarray(Image.open(mine / name)), np.asarray(Image.open(theirs / name)))
    tags = [json.loads(client.get_run(runs[way]).data.tags["mlflow.loggedArtifacts"]) for way in ("batch", "mlflow")]
    assert tags[0] == tags[1] and len(tags[0]) == 4
    loaded = client.load_table(experiment_id, "second/a.json", run_ids=[runs["batch"]])
    assert loaded["count"].tolist() == [5, 0, 7]
