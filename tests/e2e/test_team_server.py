"""The team's setup (docs/team.md), rehearsed on 127.0.0.1: one PostgreSQL and one `mlflow server` that
proxies artifacts (`mlflow-artifacts:` URIs), started once for the session (tests/conftest.py), shared by:
search workers on one study in PostgreSQL, `mlflow run . -e main` twice from an empty folder (the second
reuses every step), the served generator of a registered cell, and the MLflow UI in headless Chromium."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from tests.conftest import REPO, RUN_ID_IN_OUTPUT, VENV_BIN, mlflow_run_command
from tests.e2e.servers import free_port, post_json, serve_command, server
from tests.helpers import TINY_SEARCH

pytestmark = pytest.mark.slow

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
WORKERS, TRIALS_EACH = 3, 2
# One cell, one seed, one epoch: what main does over HTTP, not what it learns.
MAIN_TINY = {
    "experiments": "E1",
    "seeds": "0",
    "epochs": 1,
    "latent_size": 8,
    "hidden_size": 32,
    "n_samples": 200,
    "iwae_k": 3,
    "reuse": "dirty",
    "max_parallel": 1,
}
CELL = "bce-standard"
STEPS = ("prepare_data", "train", "evaluate", "report")
TRACKING_FILES = ("mlruns", "mlflow.db")
SCREENSHOT_ENV = "VAE_TEAM_UI_SCREENSHOT"  # where the UI check saves its screenshot (docs/images/ in the docs)


def server_env(uri: str, **extra: str) -> dict[str, str]:
    env = {
        **os.environ,
        "MLFLOW_TRACKING_URI": uri,
        "OMP_NUM_THREADS": "1",
        "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", ""),
    }
    for name in ("MLFLOW_RUN_ID", "MLFLOW_EXPERIMENT_ID", "MLFLOW_EXPERIMENT_NAME"):
        env.pop(name, None)
    return {**env, **extra}


def test_three_workers_on_postgresql_share_one_study(postgres, mlflow_server, tmp_path):
    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment("search-on-postgres")
    storage = f"{postgres}/optuna"
    env = server_env(mlflow_server, MLFLOW_EXPERIMENT_ID=experiment_id)
    args = [
        f"--{k}={v}"
        for k, v in {**TINY_SEARCH, "n_trials": TRIALS_EACH, "study_name": "shared", "storage": storage}.items()
    ]
    with ExitStack() as stack:
        logs = [stack.enter_context(open(tmp_path / f"worker{i}.log", "w+")) for i in range(WORKERS)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "pipeline", "search", *args],
                cwd=tmp_path,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        statuses = [worker.wait(timeout=900) for worker in workers]
        outputs = [(log.seek(0), log.read())[1] for log in logs]
    assert statuses == [0] * WORKERS, "\n".join(o[-3000:] for o in outputs)

    study = optuna.load_study(study_name="shared", storage=storage)
    assert len(study.trials) == WORKERS * TRIALS_EACH
    assert all(t.state in FINISHED for t in study.trials), [t.state for t in study.trials]
    parents = client.search_runs([experiment_id], "tags.`pipeline.step` = 'search'")
    assert len(parents) == WORKERS and all(p.info.status == "FINISHED" for p in parents)
    assert all(p.data.metrics["trials"] == TRIALS_EACH for p in parents)
    parent_ids = {p.info.run_id for p in parents}

    # each trial has exactly one MLflow child run, under the search run that ran it
    trial_runs = client.search_runs([experiment_id], "tags.`pipeline.step` = 'search_trial'")
    assert len(trial_runs) == WORKERS * TRIALS_EACH
    by_id = {r.info.run_id: r for r in trial_runs}
    for trial in study.trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.data.params["trial_number"] == str(trial.number)
        assert run.data.tags["mlflow.parentRunId"] == trial.user_attrs["invocation"] in parent_ids
        assert run.info.status == ("FINISHED" if trial.state == optuna.trial.TrialState.COMPLETE else "KILLED")

    # one training per distinct latent size across the three searches (advisory lock per model)
    sizes = {t.params["latent_size"] for t in study.trials}
    trainings = client.search_runs([experiment_id], "tags.`pipeline.step` = 'train'")
    assert sum(p.data.metrics["trainings"] for p in parents) == len(trainings) == len(sizes)
    assert sorted(int(r.data.tags["pipeline.latent_size"]) for r in trainings) == sorted(sizes)
    assert {t.user_attrs["model_run_id"] for t in study.trials} == {r.info.run_id for r in trainings}
    # no two machines proposed the same trial; the two baselines ran once, whichever worker took them
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == WORKERS * TRIALS_EACH
    assert sorted(t.user_attrs["baseline"] for t in study.trials if "baseline" in t.user_attrs) == [
        "normal_like_beta",
        "study_beta",
    ]
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


class Mains:
    """Two `mlflow run . -e main` with the same settings, typed in an empty folder, against the server."""

    def __init__(self, uri: str, root: Path):
        self.client = MlflowClient(uri)
        self.experiment_id = self.client.create_experiment("team-main")
        self.work, self.temp = root / "work", root / "tmp"  # the user's folder; TMPDIR of the mains
        self.work.mkdir()
        self.temp.mkdir()
        project_files = {name: _stat(REPO / name) for name in TRACKING_FILES}
        self.run_ids = [self.run(uri, root / "report") for _ in range(2)]
        self.project_files_after = {name: _stat(REPO / name) for name in TRACKING_FILES}
        self.project_files_before = project_files

    def run(self, uri: str, report_dir: Path) -> str:
        command = mlflow_run_command("main", {**MAIN_TINY, "report_dir": report_dir}, self.experiment_id)
        result = subprocess.run(
            command,
            check=False,
            capture_output=True,
            text=True,
            cwd=self.work,
            timeout=900,
            env=server_env(uri, TMPDIR=str(self.temp)),
        )
        output = result.stdout + result.stderr
        matches = list(RUN_ID_IN_OUTPUT.finditer(output))
        assert result.returncode == 0 and matches, f"{' '.join(command)}: status {result.returncode}\n{output[-6000:]}"
        return matches[-1].group(1)

    def steps(self, parent: str | None = None) -> list:
        """The step runs in the experiment (under `parent` when given)."""
        where = f"tags.`mlflow.parentRunId` = '{parent}'" if parent else ""
        runs = self.client.search_runs([self.experiment_id], where, max_results=1000)
        return [run for run in runs if run.data.tags.get("pipeline.step") in STEPS]


def _stat(path: Path) -> tuple | None:
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None


@pytest.fixture(scope="module")
def mains(mlflow_server, tmp_path_factory) -> Mains:
    return Mains(mlflow_server, tmp_path_factory.mktemp("team-main"))


def test_main_twice_over_http_finishes_then_reuses_every_step(mains, tmp_path):
    client, (first, second) = mains.client, mains.run_ids
    assert [client.get_run(r).info.status for r in (first, second)] == ["FINISHED", "FINISHED"]
    assert client.get_run(first).info.artifact_uri.startswith("mlflow-artifacts:/")
    ran = mains.steps(first)
    assert sorted(r.data.tags["pipeline.step"] for r in ran) == sorted(STEPS)
    assert all(r.info.status == "FINISHED" for r in ran)
    # the second main ran no step: no child run, every step reused, the same step runs in the experiment
    assert mains.steps(second) == []
    metrics = client.get_run(second).data.metrics
    assert (metrics["steps_ran"], metrics["steps_resumed"], metrics["steps_reused"]) == (0, 0, 3)
    assert len(mains.steps()) == len(STEPS)
    plans = [
        json.loads(Path(client.download_artifacts(r, "main/steps.json", str(tmp_path))).read_text())
        for r in (first, second)
    ]
    assert [s["run_id"] for s in plans[0]["steps"]] == [s["run_id"] for s in plans[1]["steps"]]
    # the report is among both mains' artifacts on the server
    for run_id in (first, second):
        assert {Path(f.path).name for f in client.list_artifacts(run_id, "report")} >= {"report.html", "report.md"}
    assert client.get_experiment(mains.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    version = client.get_model_version_by_alias(f"vae-generator-{CELL}", "main")
    assert version.run_id in {r.info.run_id for r in ran if r.data.tags["pipeline.step"] == "evaluate"}


def test_the_train_runs_dataset_inputs_load_back_over_http_with_their_digest(mains, tmp_path):
    import mlflow.data

    train = next(r for r in mains.steps(mains.run_ids[0]) if r.data.tags["pipeline.step"] == "train")
    inputs = train.inputs.dataset_inputs
    assert sorted(i.dataset.name.rsplit("-", 1)[1] for i in inputs) == ["test", "train", "val"]
    assert {i.dataset.digest for i in inputs} == {train.data.params["data_digest"][:16]}
    assert {i.dataset.source_type for i in inputs} == {"http"}
    with np.load(mlflow.data.get_source(inputs[0]).load(dst_path=str(tmp_path))) as npz:
        assert json.loads(str(npz["meta"]))["digest"] == train.data.params["data_digest"]


def test_nothing_is_written_to_the_working_folder_or_left_in_temp(mains):
    assert list(mains.work.iterdir()) == []
    assert mains.project_files_after == mains.project_files_before  # no local store beside the project either
    # all that is left in TMPDIR: the empty folder that `mlflow run` itself makes for `path` parameters
    left = [p for p in mains.temp.rglob("*") if not (p.is_dir() and not any(p.iterdir()))]
    assert left == []


@pytest.fixture(scope="module")
def served(mains, mlflow_server, tmp_path_factory):
    """`mlflow models serve` of the cell's registered generator, from an empty folder; yields its URL."""
    folder = tmp_path_factory.mktemp("serve")
    (folder / "work").mkdir()
    port = free_port()
    command = serve_command(f"models:/vae-generator-{CELL}@main", port)
    url = f"http://127.0.0.1:{port}"
    with server(command, f"{url}/ping", folder / "serve.log", env=server_env(mlflow_server), cwd=folder / "work"):
        yield url, folder / "work"


def test_the_registered_generator_served_from_the_server_answers(served):
    url, work = served
    request = {"dataframe_records": [{"sampler": "normal:0,1", "n": 3, "seed": 0}]}
    status, body = post_json(f"{url}/invocations", request)
    assert status == 200, body
    images = [np.asarray(Image.open(io.BytesIO(base64.b64decode(row["png"])))) for row in body["predictions"]]
    assert [image.shape for image in images] == [(28, 28)] * 3 and all(image.max() > image.min() for image in images)
    assert list(work.iterdir()) == []


def test_the_mlflow_ui_shows_main_with_its_steps_nested(mains, mlflow_server, tmp_path):
    """MLflow 3.17's UI opens every experiment in its GenAI view unless its "Model training" switch is on
    (remembered per browser) or the link says `workflowType=machine_learning`; a fresh browser here."""
    from tests.e2e.mlflow_ui import runs_table

    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "ui.png")
    seen = runs_table(
        f"{mlflow_server}/#/experiments/{mains.experiment_id}?workflowType=machine_learning", "main quick", screenshot
    )
    assert seen.collapsed == ["main quick", "main quick"], seen  # both mains, their steps folded under them
    assert sorted(name.split(" ")[0] for name in seen.children) == sorted(STEPS), seen
    assert screenshot.stat().st_size > 10_000
