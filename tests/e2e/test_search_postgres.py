"""Workers on several machines, rehearsed on 127.0.0.1: a PostgreSQL server of its own (Debian's
postgresql package, initdb in a temporary folder, a free port, run as a non-root user), an
`mlflow server` backed by it with a local artifact folder, Optuna's RDB storage in the same
PostgreSQL, and three `search` processes on one study. Not skipped when PostgreSQL is missing:
the test fails and says what to install."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import optuna
import pytest

from tests.conftest import VENV_BIN

pytestmark = pytest.mark.slow

TINY = {"latent_sizes": "2,4", "hidden_size": 32, "epochs": 1, "n_samples": "100,200,400", "verify_seeds": "none"}
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
WORKERS, TRIALS_EACH = 3, 2


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        pytest.fail(f"PostgreSQL's {name} is not installed: apt-get install -y postgresql (Debian) and rerun")
    return found


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server on a free port of 127.0.0.1, trust auth, stopped and removed at the end.
    As root it runs as the `postgres` user the Debian package creates (the server refuses root)."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="vae-postgres-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o755)
    port = free_port()
    data = base / "data"

    def run(*command):
        result = subprocess.run([*as_user, *command], capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"

    run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
    run(pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o",
        f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=100", "start")
    try:
        import sqlalchemy

        engine = sqlalchemy.create_engine(f"postgresql://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as connection:
            for database in ("mlflow", "optuna"):
                connection.execute(sqlalchemy.text(f"CREATE DATABASE {database}"))
        engine.dispose()
        yield f"postgresql://postgres@127.0.0.1:{port}"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], capture_output=True, timeout=120)
        shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def mlflow_server(postgres, tmp_path_factory):
    """`mlflow server` on PostgreSQL, serving artifacts from a local folder."""
    artifacts = tmp_path_factory.mktemp("server-artifacts")
    port = free_port()
    log = open(artifacts.parent / "mlflow-server.log", "w")
    server = subprocess.Popen([os.path.join(VENV_BIN, "mlflow"), "server", "--backend-store-uri", f"{postgres}/mlflow",
                               "--artifacts-destination", artifacts.as_uri(), "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 180
        while True:
            try:
                with urllib.request.urlopen(f"{uri}/health", timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert server.poll() is None, (artifacts.parent / "mlflow-server.log").read_text()[-3000:]
            assert time.time() < deadline, "mlflow server did not start"
            time.sleep(1)
        yield uri
    finally:
        os.killpg(server.pid, 15)
        server.wait(timeout=60)
        log.close()


def test_three_workers_on_postgresql_share_one_study(postgres, mlflow_server, tmp_path):
    from mlflow.tracking import MlflowClient

    client = MlflowClient(mlflow_server)
    experiment_id = client.create_experiment("search-on-postgres")
    storage = f"{postgres}/optuna"
    env = {**os.environ, "MLFLOW_TRACKING_URI": mlflow_server, "MLFLOW_EXPERIMENT_ID": experiment_id,
           "OMP_NUM_THREADS": "1", "PATH": VENV_BIN + os.pathsep + os.environ.get("PATH", "")}
    env.pop("MLFLOW_RUN_ID", None)
    args = [f"--{k}={v}" for k, v in {**TINY, "n_trials": TRIALS_EACH, "study_name": "shared", "storage": storage}.items()]
    logs = [open(tmp_path / f"worker{i}.log", "w+") for i in range(WORKERS)]
    workers = [subprocess.Popen([sys.executable, "-m", "pipeline", "search", *args], cwd=tmp_path, env=env,
                                stdout=log, stderr=subprocess.STDOUT) for log in logs]
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
    assert sorted(t.user_attrs["baseline"] for t in study.trials if "baseline" in t.user_attrs) == \
        ["normal_like_beta", "study_beta"]
