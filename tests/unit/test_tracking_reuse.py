"""Step reuse: configuration keys, code versions, stale runs, and lookups past MLflow's 1,000-run page."""

from __future__ import annotations

import subprocess
import sys

import pytest

from pipeline import tracking
from pipeline.configs import EvaluateConfig, TrainConfig
from pipeline.process import processes
from pipeline.tracking import reuse as reuse_module


def test_the_key_is_the_normalized_configuration():
    base = TrainConfig(data="0" * 32, epochs=3)
    assert tracking.config_key("train", TrainConfig(data="0" * 32, epochs="3", lr="1e-3")) == tracking.config_key("train", base)
    assert tracking.config_key("train", TrainConfig(data="0" * 32, epochs=3,
                                                    samplers="normal:0,1;normal:1,2;beta:0.25,0.25")) \
        == tracking.config_key("train", base)  # ';' or '+', one canonical list
    assert tracking.config_key("train", TrainConfig(data="0" * 32, epochs=3, resume="1" * 32)) \
        == tracking.config_key("train", base)  # a resumed training is the same step
    assert tracking.config_key("train", TrainConfig(data="1" * 32, epochs=3)) != tracking.config_key("train", base)
    assert tracking.config_key("train", TrainConfig(data="0" * 32, epochs=4)) != tracking.config_key("train", base)
    evaluate = EvaluateConfig(model="2" * 32)
    assert tracking.config_key("evaluate", EvaluateConfig(model="2" * 32, copy_scores="skip")) \
        == tracking.config_key("evaluate", evaluate)
    assert tracking.config_key("evaluate", EvaluateConfig(model="3" * 32)) != tracking.config_key("evaluate", evaluate)


@pytest.fixture()
def project(tmp_path, monkeypatch):
    """A git project of its own, so clean and dirty trees can be made."""
    root = tmp_path / "project"
    (root / "pipeline").mkdir(parents=True)
    (root / "pipeline" / "step.py").write_text("x = 1\n")
    (root / "MLproject").write_text("name: p\n")
    for args in (["init", "-q"], ["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "c"]):
        subprocess.run(["git", *args], cwd=root, check=True)
    monkeypatch.setattr(reuse_module, "PROJECT_ROOT", root)
    monkeypatch.setattr(reuse_module, "_CODE_VERSION", None)
    return root


def test_a_clean_tree_is_its_commit_and_a_dirty_one_its_source(project, monkeypatch):
    commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=project, capture_output=True, text=True).stdout.strip()
    assert tracking.code_version() == (f"git:{commit}", False)
    (project / "pipeline" / "step.py").write_text("x = 2\n")
    monkeypatch.setattr(reuse_module, "_CODE_VERSION", None)
    dirty, is_dirty = tracking.code_version()
    assert is_dirty and dirty.startswith("src:")
    (project / "pipeline" / "step.py").write_text("x = 3\n")
    monkeypatch.setattr(reuse_module, "_CODE_VERSION", None)
    assert tracking.code_version()[0] != dirty  # every edit is another version


def finished_run(client, experiment_id, step, config, **tags):
    run = client.create_run(experiment_id, tags={**tracking.reuse_tags(step, config), **tags})
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


@pytest.mark.parametrize("dirty, reuse, expected", [
    (False, "clean", True), (False, "dirty", True), (False, "never", False),
    (True, "clean", False), (True, "dirty", True), (True, "never", False),
])
def test_which_finished_runs_are_reused(tracking_store, monkeypatch, dirty, reuse, expected):
    client, experiment_id = tracking_store
    monkeypatch.setattr(reuse_module, "_CODE_VERSION", ("src:abc" if dirty else "git:abc", dirty))
    config = TrainConfig(epochs=2, seed=11)
    run_id = finished_run(client, experiment_id, "train", config)
    finished, unfinished = tracking.reusable_run("train", config, [experiment_id], reuse)
    assert (finished is not None and finished.info.run_id == run_id) is expected
    assert unfinished is None
    monkeypatch.setattr(reuse_module, "_CODE_VERSION", ("git:other", False))  # another commit: never the same step
    assert tracking.reusable_run("train", config, [experiment_id], reuse) == (None, None)


def test_a_running_run_whose_process_is_gone_is_failed_and_offered_for_resume(tracking_store):
    client, experiment_id = tracking_store
    config = TrainConfig(epochs=2, seed=12)
    gone = subprocess.Popen([sys.executable, "-c", "import psutil, os; print(psutil.Process().create_time())"],
                            stdout=subprocess.PIPE, text=True)
    started = float(gone.communicate()[0])
    import socket

    tags = {**tracking.reuse_tags("train", config),
            tracking.PROCESS_TAG: f"{socket.gethostname()}:{gone.pid}:{started:.3f}"}
    dead = client.create_run(experiment_id, tags=tags).info.run_id
    alive = client.create_run(experiment_id, tags=tracking.reuse_tags("train", config)).info.run_id  # this process
    finished, unfinished = tracking.reusable_run("train", config, [experiment_id], "dirty")
    assert finished is None and unfinished.info.run_id == dead
    assert client.get_run(dead).info.status == "FAILED"
    assert "killed" in client.get_run(dead).data.tags["failure_reason"]
    assert client.get_run(alive).info.status == "RUNNING"  # its process lives: left alone


@pytest.mark.slow
def test_lookups_see_past_the_first_thousand_runs(tracking_store):
    client, experiment_id = tracking_store
    for _ in range(1001):
        client.create_run(experiment_id, tags={"page": "test"})
    assert len(tracking.search_all_runs([experiment_id], "tags.page = 'test'")) == 1001


@pytest.fixture()
def tracking_store(tracking, tmp_path):
    experiment_id = tracking.client.create_experiment(f"reuse-{tmp_path.name}")
    return tracking.client, experiment_id


def test_a_step_whose_driver_is_gone_is_killed_and_offered_for_resume(tracking_store):
    """main was killed but its training lives on (steps run in sessions of their own): the rerun kills it."""
    client, experiment_id = tracking_store
    config = TrainConfig(epochs=2, seed=13)
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        tags = {**tracking.reuse_tags("train", config), tracking.PROCESS_TAG: processes.identity(orphan.pid),
                tracking.DRIVER_TAG: processes.identity(driver.pid)}
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        assert tracking.reusable_run("train", config, [experiment_id], "dirty") == (None, None)  # both alive
        assert client.get_run(run_id).info.status == "RUNNING"
        driver.kill()
        driver.wait()
        finished, unfinished = tracking.reusable_run("train", config, [experiment_id], "dirty")
        assert unfinished.info.run_id == run_id and client.get_run(run_id).info.status == "FAILED"
        assert orphan.wait(timeout=60) == -9
    finally:
        for process in (driver, orphan):
            process.kill()

