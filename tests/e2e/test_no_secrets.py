"""pipeline/search/storage.py:
No secret in the tracking store: a search on PostgreSQL whose role needs a password gets it from
PGPASSWORD, and the password is in no param, tag, artifact or log line of any run; a password put in
`storage` itself is refused before the step opens anything."""

from __future__ import annotations

import os
import secrets
import subprocess
from pathlib import Path

import pytest
import sqlalchemy

from tests.conftest import mlflow_run_command
from tests.helpers import TINY_SEARCH as TINY
from tests.helpers import artifact_paths

pytestmark = pytest.mark.slow

SECRET = f"pw-{secrets.token_hex(12)}"  # random: found only where this test put it
ROLE, DATABASE = "searcher", "searchdb"


@pytest.fixture(scope="module")
def role_storage(postgres) -> str:
    """A role that must give its password (scram-sha-256 for it alone on 127.0.0.1), owning a database;
    yields the storage URL the search is given: no password in it."""
    engine = sqlalchemy.create_engine(f"{postgres}/postgres", isolation_level="AUTOCOMMIT")
    with engine.connect() as connection:
        connection.execute(sqlalchemy.text(f"CREATE ROLE {ROLE} LOGIN PASSWORD '{SECRET}'"))
        connection.execute(sqlalchemy.text(f"CREATE DATABASE {DATABASE} OWNER {ROLE}"))
        hba = Path(connection.execute(sqlalchemy.text("SHOW hba_file")).scalar_one())
        hba.write_text(f"host all {ROLE} 127.0.0.1/32 scram-sha-256\n{hba.read_text()}")  # first match wins
        connection.execute(sqlalchemy.text("SELECT pg_reload_conf()"))
    engine.dispose()
    return postgres.replace("postgres@", f"{ROLE}@") + f"/{DATABASE}"


def connects(url: str, password: str | None) -> bool:
    args = {"passfile": os.devnull} | ({"password": password} if password else {})
    engine = sqlalchemy.create_engine(url, poolclass=sqlalchemy.pool.NullPool, connect_args=args)
    try:
        with engine.connect():
            return True
    except sqlalchemy.exc.OperationalError:
        return False


@pytest.fixture(scope="module")
def searched(tracking, role_storage, tmp_path_factory):
    """A tiny `mlflow run -e search` on that role, PGPASSWORD in its environment, in an experiment of its
    own; yields (experiment id, the command's stdout and stderr)."""
    experiment = tracking.client.create_experiment(
        "no-secrets", artifact_location=(tmp_path_factory.mktemp("no-secrets") / "artifacts").as_uri()
    )
    params = {**TINY, "n_trials": 2, "study_name": "no-secrets", "storage": role_storage}
    command = mlflow_run_command("search", params, experiment)
    env = {**tracking.env(), "MLFLOW_EXPERIMENT_ID": experiment, "PGPASSWORD": SECRET}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=900)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return experiment, output


def test_the_role_needs_its_password(role_storage):
    assert not connects(role_storage, None)
    assert connects(role_storage, SECRET)


def test_the_password_is_in_no_param_tag_artifact_or_log_line(tracking, role_storage, searched, tmp_path):
    experiment, output = searched
    runs = tracking.client.search_runs([experiment], max_results=1000)
    (search,) = [run for run in runs if run.data.tags.get("pipeline.step") == "search"]
    judge = tracking.client.get_run(search.data.tags["classifier_run_id"])  # made here, or found by digest
    runs = [*runs, *([] if judge.info.experiment_id == experiment else [judge])]
    steps = sorted({run.data.tags.get("pipeline.step") for run in runs})
    assert steps == ["classifier", "search", "search_trial", "train"], steps  # its judge, trials and models
    assert SECRET not in output
    for run in runs:
        assert all(SECRET not in f"{k}={v}" for k, v in run.data.params.items()), run.info.run_id
        assert all(SECRET not in f"{k}={v}" for k, v in run.data.tags.items()), run.info.run_id
        folder = Path(tracking.client.download_artifacts(run.info.run_id, "", str(tmp_path / run.info.run_id)))
        files = [path for path in folder.rglob("*") if path.is_file()]
        assert len(files) == len(artifact_paths(tracking.client, run.info.run_id))
        assert not [path for path in files if SECRET.encode() in path.read_bytes()], run.info.run_id
    search = next(run for run in runs if run.data.tags.get("pipeline.step") == "search")
    assert search.data.params["storage"] == search.data.tags["optuna.storage"] == role_storage
    # the store's own files too: the SQLite database and every artifact beside it
    assert not [path for path in tracking.root.rglob("*") if path.is_file() and SECRET.encode() in path.read_bytes()]


def test_a_password_in_storage_through_mlflow_run_stops_the_step_before_it_opens_anything(tracking):
    """`mlflow run` itself logs every -P value as a param and prints the command before the step starts:
    that is why the docs pass the password through PGPASSWORD. The step refuses it, naming the parameter
    and the alternatives, with the password hidden, and opens no run, no trial and no storage."""
    experiment = tracking.client.create_experiment("password-in-storage")
    url = "postgresql://u:refused-pw@127.0.0.1:1/x"  # port 1: nothing listens, a connection attempt would say so
    run_id, output = tracking.mlflow_run("search", {"storage": url}, expect_success=False, experiment_id=experiment)
    refusal = next(line for line in output.splitlines() if line.startswith("error: "))
    assert refusal.startswith("error: parameter 'storage': got 'postgresql://u:***@127.0.0.1:1/x'; allowed: ")
    assert all(word in refusal for word in ("PGPASSWORD", "~/.pgpass", "service file")), refusal
    assert "refused-pw" not in refusal and "cannot connect" not in output
    runs = tracking.client.search_runs([experiment])
    assert [(run.info.run_id, run.info.status) for run in runs] == [(run_id, "FAILED")]  # MLflow's own, ended
    assert runs[0].data.params["storage"] == url  # logged by `mlflow run` before any project code runs
    assert "pipeline.step" not in runs[0].data.tags  # the step never opened it


def test_python_m_pipeline_search_exits_2_with_no_run_and_no_password_in_its_output(tracking):
    before = {run.info.run_id for run in tracking.client.search_runs([tracking.experiment_id])}
    result = tracking.python_step("search", "--storage", "postgresql://u:refused-pw@127.0.0.1:1/x")
    assert result.returncode == 2, result.stderr[-3000:]
    assert "parameter 'storage'" in result.stderr and "PGPASSWORD" in result.stderr
    assert "refused-pw" not in result.stdout + result.stderr and "Traceback" not in result.stderr
    assert {run.info.run_id for run in tracking.client.search_runs([tracking.experiment_id])} == before
