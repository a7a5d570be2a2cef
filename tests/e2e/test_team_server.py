"""docs/team.md:
The team's setup (docs/team.md), its examples run on 127.0.0.1 with the real commands (tests/docs_examples.py):
one PostgreSQL and one `mlflow server` that proxies artifacts (`mlflow-artifacts:` URIs), the session's
(tests/conftest.py), shared by: the team-search example typed on three machines at once (three workers on one
Optuna study in PostgreSQL), the search-report example on one of them (docs/search.md), the team-run example
from an empty folder (main, then the study preset reusing every step), the serving example's server of the
generator main registered (docs/serving.md), and the MLflow UI in headless Chromium.

What each test changes in an example, and only that: placeholders (`USER`, `DBHOST:5432`, the server's URL,
`<search run id>`, port 5001) become the real values; `mlflow run .` names the project folder, run from an
empty folder; `-P` values that make the step tiny are added (or replace the example's, e.g. `n_trials=20`);
an output folder becomes a temporary one."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlsplit

import mlflow
import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from pipeline.tracking.runs import mark_training_experiment
from tests.conftest import REPO, VENV_BIN
from tests.docs_examples import command_lines, example, run_block, substituted, words
from tests.e2e.servers import free_port, post_json, server
from tests.helpers import TINY_SEARCH

pytestmark = pytest.mark.slow

FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
MACHINES, TRIALS_EACH = 3, 2
# One cell, one seed, one epoch: what main does over HTTP, not what it learns. The data and batch size are
# the quick preset's, given to both mains so that the study preset reuses the quick one's steps.
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
    "data": "mnist-5k",
    "batch_size": 64,
}
CELL = "bce-standard"
STEPS = ("prepare_data", "judges", "train", "evaluate", "report")  # main's children
TRACKING_FILES = ("mlruns", "mlflow.db")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
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


# --- the team-search example on three machines -------------------------------------------------------


@pytest.fixture(scope="module")
def team_search(postgres, mlflow_server, tmp_path_factory):
    """The team-search example typed on three machines at once, against the team server and its PostgreSQL
    (USER: the server's own role, trust auth here), at TINY_SEARCH's settings and 2 trials each; returns
    (client, experiment id, the three search run ids, the Optuna storage URL, the study name)."""
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("team-search")
    address = urlsplit(postgres)
    body = example("docs/team.md", "team-search")
    done = run_block(
        body,
        {"USER": address.username, "DBHOST:5432": address.netloc.split("@")[1]},
        server_env(mlflow_server, MLFLOW_EXPERIMENT_ID=experiment),
        tmp_path_factory.mktemp("team-search"),
        {**TINY_SEARCH, "n_trials": TRIALS_EACH},
        machines=MACHINES,
    )
    study_name = next(w.split("=", 1)[1] for w in words(command_lines(body)[-1]) if w.startswith("study_name="))
    return client, experiment, [run_id for run_id, _ in done], f"{postgres}/optuna", study_name


def test_three_machines_on_postgresql_share_one_study(team_search):
    client, experiment_id, search_ids, storage, study_name = team_search
    study = optuna.load_study(study_name=study_name, storage=storage)
    assert len(study.trials) == MACHINES * TRIALS_EACH
    assert all(t.state in FINISHED for t in study.trials), [t.state for t in study.trials]
    parents = client.search_runs([experiment_id], "tags.`pipeline.step` = 'search'")
    assert sorted(p.info.run_id for p in parents) == sorted(search_ids)
    assert all(p.info.status == "FINISHED" and p.data.params["storage"] == storage for p in parents)
    assert all(p.data.metrics["trials"] == TRIALS_EACH for p in parents)
    assert sorted(t.user_attrs["invocation"] for t in study.trials) == sorted(search_ids * TRIALS_EACH)

    # each trial has exactly one MLflow child run, under the search run that ran it
    trial_runs = client.search_runs([experiment_id], "tags.`pipeline.step` = 'search_trial'")
    assert len(trial_runs) == MACHINES * TRIALS_EACH
    by_id = {r.info.run_id: r for r in trial_runs}
    for trial in study.trials:
        run = by_id[trial.user_attrs["mlflow_run_id"]]
        assert run.data.params["trial_number"] == str(trial.number)
        assert run.data.tags["mlflow.parentRunId"] == trial.user_attrs["invocation"] in search_ids
        assert run.info.status == ("FINISHED" if trial.state == optuna.trial.TrialState.COMPLETE else "KILLED")

    # one training per distinct latent size across the three searches (advisory lock per model)
    sizes = {t.params["latent_size"] for t in study.trials}
    trainings = client.search_runs([experiment_id], "tags.`pipeline.step` = 'train'")
    assert sum(p.data.metrics["trainings"] for p in parents) == len(trainings) == len(sizes)
    assert sorted(int(r.data.tags["pipeline.latent_size"]) for r in trainings) == sorted(sizes)
    assert {t.user_attrs["model_run_id"] for t in study.trials} == {r.info.run_id for r in trainings}
    # no two machines proposed the same trial; the two baselines ran once, whichever machine took them
    assert len({tuple(sorted(t.params.items())) for t in study.trials}) == MACHINES * TRIALS_EACH
    assert sorted(t.user_attrs["baseline"] for t in study.trials if "baseline" in t.user_attrs) == [
        "normal_like_beta",
        "study_beta",
    ]
    assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"


def test_steps_that_start_together_all_mark_one_new_experiment(mlflow_server):
    """Three machines' searches start within a second: each sees the kind tag missing and writes it; the
    server's PostgreSQL refuses all writes but the first, and no step may fail for it (CI saw it fail)."""
    client, starters, before = MlflowClient(mlflow_server), 8, mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(mlflow_server)
    try:
        for attempt in range(5):  # each try a fresh experiment: a race, so a few chances to lose it
            experiment_id = client.create_experiment(f"marked-together-{attempt}")
            ready = threading.Barrier(starters)

            def mark(experiment_id: str = experiment_id, ready: threading.Barrier = ready) -> None:
                ready.wait()
                mark_training_experiment(experiment_id)

            with ThreadPoolExecutor(starters) as pool:
                for future in [pool.submit(mark) for _ in range(starters)]:
                    future.result()  # re-raises a refused write
            assert client.get_experiment(experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    finally:
        mlflow.set_tracking_uri(before)


def test_the_search_report_example_writes_the_report_of_that_search(team_search, mlflow_server, tmp_path):
    client, _, (search_id, *_), _, _ = team_search
    output = tmp_path / "search-report"
    (report_id, _), *_ = run_block(
        example("docs/search.md", "search-report"),
        {"<search run id>": search_id, "search-report": str(output)},
        server_env(mlflow_server),
        tmp_path,
    )
    assert client.get_run(report_id).info.status == "FINISHED"
    assert (output / "report.html").stat().st_size > 1000
    assert (output / "report.md").read_text().startswith("# Search")


# --- the team-run example: main, then the study preset ----------------------------------------------


class TeamRun:
    """The team-run example typed in an empty folder against the server: its two mains, and what they left."""

    def __init__(self, uri: str, root: Path):
        self.client = MlflowClient(uri)
        self.experiment_id = self.client.create_experiment("team-run")
        self.work, self.temp = root / "work", root / "tmp"  # the user's folder; TMPDIR of the mains
        self.work.mkdir()
        self.temp.mkdir()
        self.project_files_before = {name: _stat(REPO / name) for name in TRACKING_FILES}
        done = run_block(
            example("docs/team.md", "team-run"),
            {"http://mlflow.example.org:5000": uri},
            server_env("unset", MLFLOW_EXPERIMENT_ID=self.experiment_id, TMPDIR=str(self.temp)),
            self.work,
            {**MAIN_TINY, "report_dir": root / "report"},
        )
        self.run_ids = [run_id for run_id, _ in done]
        self.project_files_after = {name: _stat(REPO / name) for name in TRACKING_FILES}

    def steps(self, parent: str | None = None) -> list:
        """The step runs in the experiment (under `parent` when given)."""
        where = f"tags.`mlflow.parentRunId` = '{parent}'" if parent else ""
        runs = self.client.search_runs([self.experiment_id], where, max_results=1000)
        return [run for run in runs if run.data.tags.get("pipeline.step") in STEPS]


def _stat(path: Path) -> tuple | None:
    return (path.stat().st_mtime_ns, path.stat().st_size) if path.exists() else None


@pytest.fixture(scope="module")
def team(mlflow_server, tmp_path_factory) -> TeamRun:
    return TeamRun(mlflow_server, tmp_path_factory.mktemp("team-run"))


def test_main_then_the_study_preset_over_http_finishes_then_reuses_every_step(team, tmp_path):
    client, (quick, study) = team.client, team.run_ids
    for run_id, preset in ((quick, "quick"), (study, "study")):
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.info.experiment_id == team.experiment_id
        assert run.data.params["preset"] == preset and run.info.artifact_uri.startswith("mlflow-artifacts:/")
    ran = team.steps(quick)
    assert sorted(r.data.tags["pipeline.step"] for r in ran) == sorted(STEPS)
    assert all(r.info.status == "FINISHED" for r in ran)
    # the second main ran no step: no child run, every step reused, the same step runs in the experiment
    assert team.steps(study) == []
    metrics = client.get_run(study).data.metrics
    assert (metrics["steps_ran"], metrics["steps_resumed"], metrics["steps_reused"]) == (0, 0, len(STEPS) - 1)
    assert len(team.steps()) == len(STEPS)
    plans = [
        json.loads(Path(client.download_artifacts(r, "main/steps.json", str(tmp_path))).read_text())
        for r in (quick, study)
    ]
    assert [s["run_id"] for s in plans[0]["steps"]] == [s["run_id"] for s in plans[1]["steps"]]
    # the report is among both mains' artifacts on the server
    for run_id in (quick, study):
        assert {Path(f.path).name for f in client.list_artifacts(run_id, "report")} >= {"report.html", "report.md"}
    assert client.get_experiment(team.experiment_id).tags["mlflow.experimentKind"] == "custom_model_development"
    version = client.get_model_version_by_alias(f"vae-generator-{CELL}", "main")
    assert version.run_id in {r.info.run_id for r in ran if r.data.tags["pipeline.step"] == "evaluate"}


def test_main_runs_the_judges_as_a_step_and_its_evaluation_uses_them(team):
    """The judges step trains the classifier unless the server has it for this source already (the team-search
    example, on the same server, may have trained it first): never the evaluation."""
    quick = team.client.get_run(team.run_ids[0])
    [judges] = [r for r in team.steps(quick.info.run_id) if r.data.tags["pipeline.step"] == "judges"]
    [evaluate] = [r for r in team.steps(quick.info.run_id) if r.data.tags["pipeline.step"] == "evaluate"]
    classifier = team.client.get_run(judges.data.tags["classifier_run_id"])
    assert classifier.data.tags["source_digest"] == judges.data.tags["source_digest"]
    assert evaluate.data.tags["classifier_run_id"] == classifier.info.run_id
    trained_before = classifier.info.end_time < quick.info.start_time
    assert classifier.data.tags["mlflow.parentRunId"] == judges.info.run_id or trained_before


def test_the_train_runs_dataset_inputs_load_back_over_http_with_their_digest(team, tmp_path):
    import mlflow.data

    train = next(r for r in team.steps(team.run_ids[0]) if r.data.tags["pipeline.step"] == "train")
    inputs = train.inputs.dataset_inputs
    assert sorted(i.dataset.name.rsplit("-", 1)[1] for i in inputs) == ["test", "train", "val"]
    assert {i.dataset.digest for i in inputs} == {train.data.params["data_digest"][:16]}
    assert {i.dataset.source_type for i in inputs} == {"http"}
    with np.load(mlflow.data.get_source(inputs[0]).load(dst_path=str(tmp_path))) as npz:
        assert json.loads(str(npz["meta"]))["digest"] == train.data.params["data_digest"]


def test_nothing_is_written_to_the_working_folder_or_left_in_temp(team):
    assert list(team.work.iterdir()) == []
    assert team.project_files_after == team.project_files_before  # no local store beside the project either
    # all that is left in TMPDIR: the empty folder that `mlflow run` itself makes for `path` parameters
    left = [p for p in team.temp.rglob("*") if not (p.is_dir() and not any(p.iterdir()))]
    assert left == []


def test_the_mlflow_ui_shows_main_with_its_steps_nested(team, mlflow_server, tmp_path):
    """MLflow 3.17's UI opens every experiment in its GenAI view unless its "Model training" switch is on
    (remembered per browser) or the link says `workflowType=machine_learning`; a fresh browser here."""
    from tests.e2e.mlflow_ui import runs_table

    screenshot = Path(os.environ.get(SCREENSHOT_ENV) or tmp_path / "ui.png")
    seen = runs_table(
        f"{mlflow_server}/#/experiments/{team.experiment_id}?workflowType=machine_learning", "main quick", screenshot
    )
    assert sorted(seen.collapsed) == ["main quick", "main study"], seen  # both mains, their steps folded under them
    assert sorted(name.split(" ")[0] for name in seen.children) == sorted(STEPS), seen
    assert screenshot.stat().st_size > 10_000


# --- the serving example, on the generator the team-run main registered -------------------------------


@pytest.fixture(scope="module")
def served(team, mlflow_server, tmp_path_factory):
    """The serving example's first command (port 5001 made a free one), typed in an empty folder against the
    team server, where the team-run main registered the model it names; yields (the example's request
    lines, the server's URL, the folder)."""
    port = str(free_port())
    lines = [substituted(line, {"5001": port}) for line in command_lines(example("docs/serving.md", "serve"))]
    serve = words(lines[0])
    assert serve[:3] == ["mlflow", "models", "serve"] and f"models:/vae-generator-{CELL}@main" in serve, lines[0]
    command = [os.path.join(VENV_BIN, "mlflow"), *serve[1:]]
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("serve")
    (folder / "work").mkdir()
    env = server_env(mlflow_server)
    with server(command, f"{url}/ping", folder / "serve.log", env=env, cwd=folder / "work"):
        yield lines[1:], url, folder / "work"


def test_the_serving_example_request_gets_the_images_it_promises(served):
    """The example's curl line, sent by curl as written (its port the served one), and its answer read
    against the answer the example shows."""
    (curl,), url, work = served
    argv = words(curl)
    assert argv[0] == "curl"
    target = next(word for word in argv if word.startswith("http://"))
    body = json.loads(argv[argv.index("-d") + 1])
    assert urlsplit(target).netloc == urlsplit(url).netloc and urlsplit(target).path == "/invocations"
    sent = subprocess.run(argv, capture_output=True, text=True, timeout=120, cwd=work, check=False)
    assert sent.returncode == 0, sent.stderr
    answer = json.loads(sent.stdout)
    shown = example("docs/serving.md", "serve").splitlines()[-1].removeprefix("# ")  # the answer it shows
    first = json.loads(shown.replace('"iVBORw0KGgo..."', '""').replace(", ...]", "]"))["predictions"][0]
    assert list(answer) == ["predictions"] and list(answer["predictions"][0]) == list(first)
    assert {k: answer["predictions"][0][k] for k in ("sampler", "index", "seed")} == {
        k: first[k] for k in ("sampler", "index", "seed")
    }
    assert answer["predictions"][0]["png"].startswith("iVBORw0KGgo")  # a PNG's signature, base64
    rows, asked = answer["predictions"], body["dataframe_records"]
    assert len(rows) == sum(row["n"] for row in asked)
    start = 0
    for row in asked:
        mine = rows[start : start + row["n"]]
        start += row["n"]
        assert [(r["index"], r["seed"]) for r in mine] == [(i, row["seed"]) for i in range(row["n"])]
        assert len({r["sampler"] for r in mine}) == 1 and mine[0]["sampler"] == row.get("sampler", mine[0]["sampler"])
    for row in rows:
        png = base64.b64decode(row["png"])
        image = np.asarray(Image.open(io.BytesIO(png)))
        assert png.startswith(PNG_SIGNATURE) and image.shape == (28, 28) and image.dtype == np.uint8
        assert image.max() > image.min()  # a digit's strokes, not a blank square
    assert list(work.iterdir()) == []  # serving writes nothing where it was typed


@pytest.mark.parametrize(
    "row, column",
    [
        ({"n": 2.5, "seed": 0}, "n"),
        ({"n": 2, "seed": 0.5}, "seed"),
        ({"n": True, "seed": 0}, "n"),
        ({"n": 2, "seed": 0}, None),
    ],
)
def test_a_count_or_seed_that_is_not_a_whole_number_gets_400_naming_the_column(served, row, column):
    _, url, _ = served
    status, answer = post_json(f"{url}/invocations", {"dataframe_records": [row]})
    if column is None:  # the same request with whole numbers is served: 2 images
        assert status == 200 and len(answer["predictions"]) == 2, answer
        return
    assert status == 400 and answer["error_code"] == "INVALID_PARAMETER_VALUE", answer
    assert f"column '{column}': got " in answer["message"] and "allowed: a whole number" in answer["message"]
