"""pipeline/tracking/reuse.py:
Step reuse survives the README's own commands, in a temporary clone: a `git init` copy of the
project's tracked files, run with `mlflow run .` and MLflow's default tracking (mlflow.db in the clone), as a
new user would. After a tiny search, a second tiny main reuses every step; an untracked notes.txt and a
README-only commit change nothing; a committed change under pipeline/ reruns every step. Nothing the pipeline
writes shows in `git status`, and a main started from another folder writes its files there."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import REPO, RUN_ID_IN_OUTPUT, VENV_BIN, mlflow_run_command
from tests.helpers import TINY_SEARCH, git

pytestmark = pytest.mark.slow

SEARCH = {**TINY_SEARCH, "n_trials": 2, "latent_sizes": 2, "n_samples": 200}
MAIN = {
    "experiments": "E1",
    "seeds": 0,
    "epochs": 1,
    "latent_size": 8,
    "hidden_size": 32,
    "n_samples": 200,
    "iwae_k": 3,
    "max_parallel": 1,
}  # reuse: the default, clean
STEPS = 4  # prepare_data, judges, train, evaluate (the report is reused or built apart from these)
DONE = re.compile(r"main: done: (\d+) steps ran, (\d+) reused, (\d+) resumed")


def clone_of_the_project(root: Path) -> Path:
    """The project's tracked files (as they are in this checkout) committed in a fresh repository."""
    root.mkdir()
    for name in git(REPO, "ls-files", "-z").split("\0"):
        if name and (REPO / name).is_file():
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, root / name)
    git(root, "init", "-q")
    git(root, "add", "-A")
    git(root, "commit", "-q", "-m", "the project")
    return root


def user_env() -> dict[str, str]:
    """A user's shell: MLflow's default tracking (nothing set), the project's code only from the clone."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_ID", "MLFLOW_RUN_ID", "PYTHONPATH")
    }
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    return env


def mlflow_run(cwd: Path, project: str, entry_point: str, params: dict) -> tuple[str, str]:
    """`mlflow run PROJECT -e ENTRY --env-manager local -P ...` typed in `cwd`; (its run id, its output)."""
    command = mlflow_run_command(entry_point, params, project=project)
    result = subprocess.run(command, cwd=cwd, env=user_env(), capture_output=True, text=True, timeout=900, check=False)
    output = result.stdout + result.stderr
    matches = RUN_ID_IN_OUTPUT.findall(output)
    assert result.returncode == 0 and matches, f"{' '.join(command)} in {cwd}:\n{output[-6000:]}"
    return matches[-1][0], output


def main_in(cwd: Path, project: str = ".") -> tuple[int, int, dict]:
    """A tiny main: (steps ran, steps reused) as it printed them, checked against its run's metrics; and
    the code version tags of its train run."""
    run_id, output = mlflow_run(cwd, project, "main", MAIN)
    ran, reused, resumed = map(int, DONE.search(output).groups())
    client = MlflowClient(f"sqlite:///{cwd / 'mlflow.db'}")
    metrics = client.get_run(run_id).data.metrics
    assert (metrics["steps_ran"], metrics["steps_reused"], metrics["steps_resumed"]) == (ran, reused, resumed)
    steps = json.loads(Path(client.download_artifacts(run_id, "main/steps.json")).read_text())["steps"]
    assert ran + reused == len(steps) == STEPS and resumed == 0
    [train] = [step["run_id"] for step in steps if step["step"] == "train"]
    return ran, reused, client.get_run(train).data.tags


def untracked_or_changed(clone: Path) -> str:
    return git(clone, "status", "--porcelain", "--untracked-files=all")


def test_reuse_survives_a_search_notes_and_docs_commits_but_not_a_code_commit(tmp_path):
    clone = clone_of_the_project(tmp_path / "project")
    commit = git(clone, "rev-parse", "HEAD")

    mlflow_run(clone, ".", "search", SEARCH)
    assert (clone / "optuna.db").is_file() and (clone / "optuna-artifacts").is_dir()
    assert untracked_or_changed(clone) == ""  # the study's files are ignored, not untracked
    ran, reused, tags = main_in(clone)
    assert (ran, reused) == (STEPS, 0) and untracked_or_changed(clone) == ""
    assert (clone / "report" / "report.html").is_file()  # beside mlflow.db: here, where `mlflow run .` was typed
    assert tags["pipeline.code_dirty"] == "false" and tags["pipeline.code_commit"] == commit
    first_version = tags["pipeline.code_version"]
    assert main_in(clone)[:2] == (0, STEPS)  # the second main reuses every step

    (clone / "notes.txt").write_text("ideas for the next study\n")
    with (clone / "README.md").open("a") as readme:
        readme.write("\nA line of documentation.\n")
    git(clone, "commit", "-q", "-am", "README only")
    assert main_in(clone)[:2] == (0, STEPS)  # a notes file and a docs-only commit change nothing

    with (clone / "pipeline" / "core" / "model" / "training.py").open("a") as code:
        code.write("# a changed line\n")
    git(clone, "commit", "-q", "-am", "a change under pipeline/")
    ran, reused, tags = main_in(clone)
    assert (ran, reused) == (STEPS, 0)  # the code changed: every step runs again
    assert tags["pipeline.code_version"] != first_version and tags["pipeline.code_dirty"] == "false"
    assert tags["pipeline.code_commit"] == git(clone, "rev-parse", "HEAD")

    # Started from another folder, with MLflow's default tracking there: the tracking database and the
    # report land where the user typed the command, not in the project.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy2(clone / "mlflow.db", elsewhere / "mlflow.db")  # the same runs (their artifacts stay where they are)
    assert main_in(elsewhere, str(clone))[:2] == (0, STEPS)
    assert (elsewhere / "report" / "report.html").is_file()
    assert untracked_or_changed(clone) == "?? notes.txt"
