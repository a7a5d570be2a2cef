"""pipeline/tracking/reuse.py, pipeline/tracking/code.py:
Step reuse: configuration keys, code versions (in temporary git projects), where local files go, stale runs,
and lookups past MLflow's 1,000-run page."""

from __future__ import annotations

import shutil
import socket
import subprocess
import sys

import mlflow
import pytest

from pipeline import tracking
from pipeline.configs import EvaluateConfig, TrainConfig
from pipeline.process import processes
from pipeline.tracking import code
from pipeline.tracking.code import CODE_TAG, COMMIT_TAG, DIRTY_TAG
from pipeline.tracking.local_files import local_folder
from pipeline.tracking.reuse import config_key, key_tags, reusable_run, reuse_tags
from pipeline.tracking.runs import DRIVER_TAG, PROCESS_TAG, STEP_TAG, search_all_runs, sweep_stale_runs
from tests.conftest import REPO
from tests.helpers import git


def test_the_key_is_the_normalized_configuration():
    base = TrainConfig(data="0" * 32, epochs=3)
    assert config_key("train", TrainConfig(data="0" * 32, epochs="3", lr="1e-3")) == config_key("train", base)
    assert config_key(
        "train", TrainConfig(data="0" * 32, epochs=3, samplers="normal:0,1;normal:1,2;beta:0.25,0.25")
    ) == config_key("train", base)  # ';' or '+', one canonical list
    assert config_key("train", TrainConfig(data="0" * 32, epochs=3, resume="1" * 32)) == config_key(
        "train", base
    )  # a resumed training is the same step
    assert config_key("train", TrainConfig(data="1" * 32, epochs=3)) != config_key("train", base)
    assert config_key("train", TrainConfig(data="0" * 32, epochs=4)) != config_key("train", base)
    evaluate = EvaluateConfig(model="2" * 32)
    assert config_key("evaluate", EvaluateConfig(model="2" * 32, copy_scores="skip")) == config_key(
        "evaluate", evaluate
    )
    assert config_key("evaluate", EvaluateConfig(model="3" * 32)) != config_key("evaluate", evaluate)


def commit_all(root, message="c"):
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", message)
    return git(root, "rev-parse", "HEAD")


@pytest.fixture()
def project(tmp_path):
    """A git project of its own, shaped like this one, so clean and dirty trees can be made."""
    root = tmp_path / "project"
    files = {
        "pipeline/step.py": "x = 1\n",
        "pipeline/core/model/vae.py": "layers = 2\n",
        "MLproject": "name: p\n",
        "conda.yaml": "dependencies: [torch>=2.4]\n",
        "pyproject.toml": "[tool.ruff]\n",
        "analysis/report.py": "title = 'r'\n",
        "README.md": "# p\n",
        "tests/test_step.py": "pass\n",
        ".gitignore": "__pycache__/\n",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git(root, "init", "-q")
    commit_all(root)
    return root


def test_a_committed_tree_is_clean_with_its_commit(project):
    version = code.version_of(project)
    assert version.commit == git(project, "rev-parse", "HEAD") and not version.dirty
    assert version.version.startswith("code:") and len(version.version) == len("code:") + 16
    assert version.tags() == {
        CODE_TAG: version.version,
        DIRTY_TAG: "false",
        COMMIT_TAG: version.commit,
    }


def test_a_readme_docs_or_tests_commit_keeps_the_version(project):
    before = code.version_of(project)
    (project / "README.md").write_text("# p\n\nMore words.\n")
    (project / "docs").mkdir()
    (project / "docs" / "reuse.md").write_text("notes\n")
    (project / "tests" / "test_step.py").write_text("assert True\n")
    (project / "pyproject.toml").write_text("[tool.ruff]\nline-length = 120\n")
    assert code.version_of(project) == before  # uncommitted, but none of them decides a result
    after = commit_all(project, "docs only")
    assert code.version_of(project) == code.CodeVersion(before.version, False, after)


def test_untracked_files_beside_the_code_keep_the_version_and_the_tree_clean(project):
    before = code.version_of(project)
    (project / "notes.txt").write_text("ideas\n")
    (project / "optuna.db").write_bytes(b"SQLite format 3\0")
    (project / "optuna-artifacts" / "ab").mkdir(parents=True)
    (project / "optuna-artifacts" / "ab" / "grid.png").write_bytes(b"png")
    (project / "report").mkdir()
    (project / "report" / "report.html").write_text("<html>")
    (project / "pipeline" / "__pycache__").mkdir()
    (project / "pipeline" / "__pycache__" / "step.cpython-311.pyc").write_bytes(b"bytecode")  # ignored by git
    assert code.version_of(project) == before and not before.dirty


def test_the_project_gitignore_lists_every_file_the_pipeline_writes_by_default(project):
    shutil.copy2(REPO / ".gitignore", project / ".gitignore")
    written = [
        "mlflow.db",
        "mlruns/0/meta.yaml",
        "optuna.db",
        "optuna-journal.log",
        "optuna-journal.log.lock",
        "optuna-artifacts/ab/grid.png",
        "report/report.html",
        "data/MNIST/raw/t10k-images-idx3-ubyte",
    ]
    for name in written:
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_bytes(b"x")
    before = code.version_of(project)
    assert git(project, "status", "--porcelain", "--untracked-files=all") == " M .gitignore"
    assert code.version_of(project) == before and not before.dirty


def test_an_edit_under_pipeline_changes_the_version_and_is_dirty_until_committed(project):
    before = code.version_of(project)
    (project / "pipeline" / "core" / "model" / "vae.py").write_text("layers = 3\n")
    edited = code.version_of(project)
    assert edited.version != before.version and edited.dirty and edited.commit == before.commit
    assert edited.changed == ("pipeline/core/model/vae.py",)
    assert edited.described() == f"{edited.version} (commit {before.commit[:12]}, changed: pipeline/core/model/vae.py)"
    (project / "pipeline" / "core" / "model" / "vae.py").write_text("layers = 4\n")
    assert code.version_of(project).version not in (before.version, edited.version)  # every edit is another
    git(project, "add", "pipeline/core/model/vae.py")
    staged = code.version_of(project)
    assert staged.dirty and staged.version != edited.version  # staged, not committed: still dirty
    commit = commit_all(project, "four layers")
    committed = code.version_of(project)
    assert committed == code.CodeVersion(staged.version, False, commit)  # the same files: the same version
    assert committed.version != before.version


def test_a_new_file_under_pipeline_makes_the_tree_dirty_and_mlproject_or_pins_change_the_version(project):
    before = code.version_of(project)
    (project / "pipeline" / "extra.py").write_text("y = 1\n")
    untracked = code.version_of(project)
    assert untracked.dirty and untracked.version != before.version and "pipeline/extra.py" in untracked.changed
    (project / "pipeline" / "extra.py").unlink()
    assert code.version_of(project) == before
    for name, text in (("MLproject", "name: q\n"), ("conda.yaml", "dependencies: [torch>=2.5]\n")):
        old = (project / name).read_text()
        (project / name).write_text(text)
        assert code.version_of(project).version != before.version, name
        (project / name).write_text(old)
    (project / "pipeline" / "step.py").unlink()  # a deleted file is a change too
    assert code.version_of(project).dirty and code.version_of(project).version != before.version


def test_the_report_version_also_covers_analysis(project):
    steps, report = code.version_of(project), code.version_of(project, code.REPORT_PATHS)
    (project / "analysis" / "report.py").write_text("title = 'a new layout'\n")
    assert code.version_of(project) == steps  # a new report layout retrains nothing
    changed = code.version_of(project, code.REPORT_PATHS)
    assert changed.dirty and changed.version != report.version


def test_the_published_reports_are_output_not_code(project, tmp_path):
    """A report written into analysis/results (the published one), then committed, changes no version."""
    report = code.version_of(project, code.REPORT_PATHS)
    results = project / "analysis" / "results" / "study"
    results.mkdir(parents=True)
    (results / "report.md").write_text("# a regenerated report\n")
    assert code.version_of(project, code.REPORT_PATHS) == report  # untracked output: still clean, same version
    commit_all(project)
    published = code.version_of(project, code.REPORT_PATHS)
    assert (published.version, published.dirty) == (report.version, False)
    (project / "analysis" / "report.py").write_text("title = 'a new layout'\n")  # the code beside it still counts
    assert code.version_of(project, code.REPORT_PATHS).dirty
    copy = tmp_path / "copy"  # outside git, the output is left out of the hash as well
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".git"))
    bare = tmp_path / "bare"
    shutil.copytree(copy, bare, ignore=shutil.ignore_patterns("results"))
    assert code.version_of(copy, code.REPORT_PATHS).version == code.version_of(bare, code.REPORT_PATHS).version


def test_outside_git_the_files_are_hashed_as_git_does_and_the_tree_is_dirty(project, tmp_path):
    committed = code.version_of(project)
    copy = tmp_path / "copy"  # the commit's files without .git, as a tarball of it unpacks
    shutil.copytree(project, copy, ignore=shutil.ignore_patterns(".git"))
    (copy / "pipeline" / "__pycache__").mkdir()
    (copy / "pipeline" / "__pycache__" / "step.cpython-311.pyc").write_bytes(b"bytecode")
    outside = code.version_of(copy)
    assert outside == code.CodeVersion(committed.version, True, "", (code.UNCOMMITTED,))
    assert outside.tags()[COMMIT_TAG] == "none"
    assert outside.described() == f"{committed.version} (not a git checkout)"


def test_this_project_has_a_version_and_keeps_it_per_process():
    version = tracking.code_version()
    assert version.version.startswith("code:") and tracking.code_version() is version
    assert tracking.code_version("report") is tracking.code_version("report")


@pytest.fixture()
def tracking_uri():
    """Set the tracking URI for a test, the session's restored after."""
    previous = mlflow.get_tracking_uri()
    yield mlflow.set_tracking_uri
    mlflow.set_tracking_uri(previous)


def test_local_files_go_beside_the_local_tracking_database(tmp_path, monkeypatch, tracking_uri):
    monkeypatch.chdir(tmp_path)
    for uri in (
        f"sqlite:///{tmp_path}/db/mlflow.db",
        f"sqlite:///{tmp_path}/db/mlflow.db?timeout=5",
        (tmp_path / "db" / "mlruns").as_uri(),
        str(tmp_path / "db" / "mlruns"),
    ):
        tracking_uri(uri)
        assert local_folder() == tmp_path / "db", uri
        assert tracking.local_path("report") == tmp_path / "db" / "report"
    tracking_uri("sqlite:///relative/mlflow.db")
    assert local_folder() == tmp_path / "relative"
    tracking_uri("http://127.0.0.1:5000")  # a tracking server: the working directory
    assert local_folder() == tmp_path
    assert tracking.local_path(tmp_path / "elsewhere") == tmp_path / "elsewhere"


def pin_code_version(monkeypatch, version: str, dirty: bool) -> None:
    pinned = code.CodeVersion(version, dirty, "c" * 40)
    monkeypatch.setattr(code, "_VERSIONS", {code.CODE_PATHS: pinned, code.REPORT_PATHS: pinned})


def finished_run(client, experiment_id, step, config, **tags):
    run = client.create_run(experiment_id, tags={**reuse_tags(step, config), **tags})
    client.set_terminated(run.info.run_id, "FINISHED")
    return run.info.run_id


@pytest.mark.parametrize(
    "dirty, reuse, expected",
    [
        (False, "clean", True),
        (False, "dirty", True),
        (False, "never", False),
        (True, "clean", False),
        (True, "dirty", True),
        (True, "never", False),
    ],
)
def test_which_finished_runs_are_reused(tracking_store, monkeypatch, dirty, reuse, expected):
    client, experiment_id = tracking_store
    pin_code_version(monkeypatch, "code:abc", dirty)
    config = TrainConfig(epochs=2, seed=11)
    run_id = finished_run(client, experiment_id, "train", config)
    finished, unfinished = reusable_run("train", config, [experiment_id], reuse)
    assert (finished is not None and finished.info.run_id == run_id) is expected
    assert unfinished is None
    pin_code_version(monkeypatch, "code:other", False)  # other files: never the same step
    assert reusable_run("train", config, [experiment_id], reuse) == (None, None)


def test_clean_reuse_takes_runs_of_committed_code_only(tracking_store, monkeypatch):
    """A run made before its files were committed has their version, but `clean` leaves it to `dirty`."""
    client, experiment_id = tracking_store
    config = TrainConfig(epochs=2, seed=14)
    pin_code_version(monkeypatch, "code:same", True)
    before_commit = finished_run(client, experiment_id, "train", config)
    pin_code_version(monkeypatch, "code:same", False)
    assert reusable_run("train", config, [experiment_id], "clean") == (None, None)
    assert reusable_run("train", config, [experiment_id], "dirty")[0].info.run_id == before_commit
    committed = finished_run(client, experiment_id, "train", config)
    assert reusable_run("train", config, [experiment_id], "clean")[0].info.run_id == committed


def test_a_stale_run_is_left_by_the_lookup_then_swept_and_offered_for_resume(tracking_store):
    client, experiment_id = tracking_store
    config = TrainConfig(epochs=2, seed=12)
    gone = subprocess.Popen(
        [sys.executable, "-c", "import psutil, os; print(psutil.Process().create_time())"],
        stdout=subprocess.PIPE,
        text=True,
    )
    started = float(gone.communicate()[0])
    tags = {STEP_TAG: "train", **reuse_tags("train", config)}
    dead = client.create_run(
        experiment_id, tags={**tags, PROCESS_TAG: f"{socket.gethostname()}:{gone.pid}:{started:.3f}"}
    ).info.run_id
    alive = client.create_run(experiment_id, tags=tags).info.run_id  # this process
    assert reusable_run("train", config, [experiment_id], "dirty") == (None, None)  # RUNNING: neither
    assert client.get_run(dead).info.status == "RUNNING"  # the lookup only looked
    assert "failure_reason" not in client.get_run(dead).data.tags

    still_running = sweep_stale_runs("train", key_tags("train", config), [experiment_id])
    assert [run.info.run_id for run in still_running] == [alive]
    assert client.get_run(dead).info.status == "FAILED"
    assert "killed" in client.get_run(dead).data.tags["failure_reason"]
    assert client.get_run(alive).info.status == "RUNNING"  # its process lives: left alone
    finished, unfinished = reusable_run("train", config, [experiment_id], "dirty")
    assert finished is None and unfinished.info.run_id == dead


@pytest.mark.slow
def test_lookups_see_past_the_first_thousand_runs(tracking_store):
    client, experiment_id = tracking_store
    for _ in range(1001):
        client.create_run(experiment_id, tags={"page": "test"})
    assert len(search_all_runs([experiment_id], "tags.page = 'test'")) == 1001


@pytest.fixture()
def tracking_store(tracking, tmp_path):
    experiment_id = tracking.client.create_experiment(
        f"reuse-{tmp_path.name}", artifact_location=(tmp_path / "artifacts").as_uri()
    )
    return tracking.client, experiment_id


def test_a_step_whose_driver_is_gone_is_killed_by_the_sweep_and_offered_for_resume(tracking_store):
    """main was killed but its training lives on (steps run in sessions of their own): the rerun kills it."""
    client, experiment_id = tracking_store
    config = TrainConfig(epochs=2, seed=13)
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        tags = {
            STEP_TAG: "train",
            **reuse_tags("train", config),
            PROCESS_TAG: processes.identity(orphan.pid),
            DRIVER_TAG: processes.identity(driver.pid),
        }
        run_id = client.create_run(experiment_id, tags=tags).info.run_id
        assert sweep_stale_runs("train", key_tags("train", config), [experiment_id])[0].info.run_id == run_id
        assert client.get_run(run_id).info.status == "RUNNING"  # both alive
        driver.kill()
        driver.wait()
        assert reusable_run("train", config, [experiment_id], "dirty") == (None, None)  # a lookup kills nothing
        assert orphan.poll() is None and client.get_run(run_id).info.status == "RUNNING"
        assert sweep_stale_runs("train", key_tags("train", config), [experiment_id]) == []
        finished, unfinished = reusable_run("train", config, [experiment_id], "dirty")
        assert unfinished.info.run_id == run_id and client.get_run(run_id).info.status == "FAILED"
        assert orphan.wait(timeout=60) == -9
    finally:
        for process in (driver, orphan):
            process.kill()
