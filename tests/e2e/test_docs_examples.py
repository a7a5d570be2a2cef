"""The docs' examples, read from the pages (tests/docs_examples.py) and run at tiny scale with the real
commands: the session by hand, the team server's run and search, the search's report, and the serving
request, sent as written, to the model the example names.

What each test changes in an example, and only that: placeholders (`<prepare run id>`, `<train run id>`,
`<search run id>`, `USER`, `DBHOST:5432`, the server's URL, port 5001) become the real values; `mlflow run
.` names the project folder, run from an empty folder; `-P` values that make the step tiny are added (or
replace the example's, e.g. `n_trials=20`); an output folder becomes a temporary one."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import optuna
import pytest
from mlflow.tracking import MlflowClient
from PIL import Image

from tests.conftest import REPO, RUN_ID_IN_OUTPUT, VENV_BIN
from tests.docs_examples import command_lines, example, words
from tests.e2e.servers import free_port, post_json, server
from tests.e2e.test_team_server import MAIN_TINY, server_env
from tests.helpers import TINY_SEARCH

pytestmark = pytest.mark.slow

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def substituted(line: str, values: dict[str, str]) -> str:
    """`line` with each placeholder (a whole word, or a `<...>` phrase) replaced by its value."""
    for placeholder, value in values.items():
        line = re.sub(rf"(?<![\w.-]){re.escape(placeholder)}(?![\w-])", value, line)
    return line


def with_params(argv: list[str], params: dict) -> list[str]:
    """`mlflow run` argv with these -P values: an example's own value of the same key is replaced."""
    out, given = [], {str(k): str(v) for k, v in params.items()}
    pairs = iter(range(len(argv)))
    for i in pairs:
        if argv[i] == "-P" and argv[i + 1].split("=", 1)[0] in given:
            next(pairs)
            continue
        out.append(argv[i])
    return out + [item for key, value in given.items() for item in ("-P", f"{key}={value}")]


def run_block(
    body: str, values: dict[str, str], env: dict, cwd: Path, tiny: list[dict] | dict = ()
) -> list[tuple[str, str]]:
    """Run a shell block's commands in order: `export NAME=VALUE` sets the environment, each `mlflow run`
    runs (with the project folder for `.`, and `tiny`'s -P values: one dict for all, or one per command);
    `<... run id>` placeholders take the run ids printed so far, in order. Returns (run id, output) each."""
    env, done = dict(env), []
    commands = [substituted(line, values) for line in command_lines(body)]
    runs = [line for line in commands if not line.startswith("export ")]
    tiny = tiny if isinstance(tiny, list) else [dict(tiny)] * len(runs)
    for line in commands:
        for placeholder, (run_id, _) in zip(re.findall(r"<[\w ]+ run id>", line), done[-1:]):
            line = line.replace(placeholder, run_id)
        argv = words(line)
        if argv[0] == "export":
            name, _, value = argv[1].partition("=")
            env[name] = value
            continue
        assert argv[:3] == ["mlflow", "run", "."], line
        argv = [os.path.join(VENV_BIN, "mlflow"), "run", str(REPO), *argv[3:]]
        argv = with_params(argv, tiny[len(done)])
        result = subprocess.run(argv, capture_output=True, text=True, env=env, cwd=cwd, timeout=900)
        output = result.stdout + result.stderr
        matches = RUN_ID_IN_OUTPUT.findall(output)
        assert result.returncode == 0 and matches, f"{line}: status {result.returncode}\n{output[-6000:]}"
        done.append((matches[-1][0], output))
    return done


def test_the_session_by_hand_runs_prepare_train_evaluate_on_each_others_run_ids(tracking, tmp_path):
    body = example("README.md", "session-by-hand")
    # evaluate at 200 samples and 3 importance samples instead of 10,000 and 100
    tiny = [{}, {}, {"n_samples": 200, "iwae_k": 3}]
    (prepare, _), (train, _), (evaluate, _) = run_block(body, {}, tracking.env(), tmp_path, tiny)
    client = tracking.client
    runs = {name: client.get_run(run_id) for name, run_id in (("p", prepare), ("t", train), ("e", evaluate))}
    assert all(run.info.status == "FINISHED" for run in runs.values())
    assert [run.data.tags["pipeline.step"] for run in runs.values()] == ["prepare_data", "train", "evaluate"]
    assert runs["t"].data.params["data"] == prepare and runs["t"].data.params["epochs"] == "2"
    assert runs["e"].data.params["model"] == train


@pytest.fixture(scope="module")
def team(postgres, mlflow_server, tmp_path_factory):
    """The team-run example against the real `mlflow server` on PostgreSQL, in an experiment of its own:
    both mains at MAIN_TINY's settings (the study preset also on mnist-5k at batch 64, so that it can
    reuse the quick one's steps here); returns (client, experiment id, the two main run ids, server URL)."""
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("docs-team-run")
    root = tmp_path_factory.mktemp("docs-team")
    (root / "work").mkdir()
    tiny = {**MAIN_TINY, "data": "mnist-5k", "batch_size": 64, "report_dir": root / "report"}
    body = example("docs/team.md", "team-run")
    done = run_block(
        body,
        {"http://mlflow.example.org:5000": mlflow_server},
        server_env("unset", MLFLOW_EXPERIMENT_ID=experiment),
        root / "work",
        tiny,
    )
    return client, experiment, [run_id for run_id, _ in done], mlflow_server


def test_team_run_runs_main_on_the_server_and_the_study_preset_reuses_its_steps(team):
    client, experiment, (quick, study), _ = team
    for run_id, preset in ((quick, "quick"), (study, "study")):
        run = client.get_run(run_id)
        assert run.info.status == "FINISHED" and run.info.experiment_id == experiment
        assert run.data.params["preset"] == preset and run.info.artifact_uri.startswith("mlflow-artifacts:/")
    metrics = client.get_run(study).data.metrics
    assert (metrics["steps_ran"], metrics["steps_reused"]) == (0, 3)


@pytest.fixture(scope="module")
def served(team, tmp_path_factory):
    """The serve example's first command (port 5001 made a free one), against the team server where the
    team-run main registered the model it names; yields (the example's request lines, the server URL)."""
    _, _, _, tracking_uri = team
    port = str(free_port())
    lines = [substituted(line, {"5001": port}) for line in command_lines(example("docs/serving.md", "serve"))]
    serve = words(lines[0])
    assert serve[:3] == ["mlflow", "models", "serve"], lines[0]
    command = [os.path.join(VENV_BIN, "mlflow"), *serve[1:]]
    url = f"http://127.0.0.1:{port}"
    folder = tmp_path_factory.mktemp("docs-serve")
    with server(command, f"{url}/ping", folder / "serve.log", env=server_env(tracking_uri), cwd=folder):
        yield lines[1:], url


def test_the_serving_example_request_gets_the_images_it_promises(served):
    (curl,), url = served
    argv = words(curl)
    assert argv[0] == "curl"
    target = next(word for word in argv if word.startswith("http://"))
    body = json.loads(argv[argv.index("-d") + 1])
    assert urlsplit(target).netloc == urlsplit(url).netloc and urlsplit(target).path == "/invocations"
    status, answer = post_json(target, body)
    assert status == 200, answer
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
    _, url = served
    status, answer = post_json(f"{url}/invocations", {"dataframe_records": [row]})
    if column is None:  # the same request with whole numbers is served: 2 images
        assert status == 200 and len(answer["predictions"]) == 2, answer
        return
    assert status == 400 and answer["error_code"] == "INVALID_PARAMETER_VALUE", answer
    assert f"column '{column}': got " in answer["message"] and "allowed: a whole number" in answer["message"]


@pytest.fixture(scope="module")
def team_search(postgres, mlflow_server, tmp_path_factory):
    """The team-search example on the team server and its PostgreSQL (USER: the server's own role, trust
    auth here), at TINY_SEARCH's settings and 2 trials; returns (client, search run id, URL)."""
    client = MlflowClient(mlflow_server)
    experiment = client.create_experiment("docs-team-search")
    work = tmp_path_factory.mktemp("docs-search")
    address = urlsplit(postgres)
    (run_id, _), *_ = run_block(
        example("docs/team.md", "team-search"),
        {"USER": address.username, "DBHOST:5432": address.netloc.split("@")[1]},
        server_env(mlflow_server, MLFLOW_EXPERIMENT_ID=experiment),
        work,
        {**TINY_SEARCH, "n_trials": 2},
    )
    return client, run_id, mlflow_server


def test_team_search_runs_its_trials_into_the_postgresql_study(team_search, postgres):
    client, run_id, _ = team_search
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.data.params["storage"] == f"{postgres}/optuna"
    study = optuna.load_study(study_name=run.data.params["study_name"], storage=f"{postgres}/optuna")
    assert [t.user_attrs["invocation"] for t in study.trials].count(run_id) == 2


def test_the_search_report_example_writes_the_report_of_that_search(team_search, tmp_path):
    client, search_id, tracking_uri = team_search
    output = tmp_path / "search-report"
    (report_id, _), *_ = run_block(
        example("docs/search.md", "search-report"),
        {"<search run id>": search_id, "search-report": str(output)},
        server_env(tracking_uri),
        tmp_path,
    )
    assert client.get_run(report_id).info.status == "FINISHED"
    assert (output / "report.html").stat().st_size > 1000
    assert (output / "report.md").read_text().startswith("# Search")
