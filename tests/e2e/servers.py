"""Real servers for end-to-end tests: started in their own process group on 127.0.0.1, always stopped.

Also the team's setup (docs/team.md), rehearsed on 127.0.0.1: a PostgreSQL server of its own (Debian's
postgresql package, initdb in a temporary folder, run as a non-root user) and an `mlflow server` on it
that proxies artifacts. Not skipped when PostgreSQL is missing: the fixture fails and says what to install.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from contextlib import contextmanager
from pathlib import Path

START_LIMIT_S = 300  # a generous bound on start-up under a loaded machine, not a measurement


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def serve_command(model_uri: str, port: int) -> list[str]:
    """`mlflow models serve -m MODEL --env-manager local -h 127.0.0.1 -p PORT`, as a user types it."""
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    return [mlflow, "models", "serve", "-m", model_uri, "--env-manager", "local", "-h", "127.0.0.1", "-p", str(port)]


def start_server(
    command: list[str], ready_url: str, log: Path, env: dict | None = None, cwd: Path | None = None
) -> subprocess.Popen:
    """Start `command` in a process group of its own and return once `ready_url` answers 200."""
    with open(log, "w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True
        )
    try:
        deadline = time.monotonic() + START_LIMIT_S
        while True:
            try:
                with urllib.request.urlopen(ready_url, timeout=5) as response:
                    if response.status == 200:
                        return process
            except OSError:
                pass
            assert process.poll() is None, f"{command[0]} exited:\n{log.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"{ready_url} did not answer:\n{log.read_text()[-4000:]}"
            time.sleep(0.5)
    except BaseException:
        stop_server(process)
        raise


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM the server's whole process group, SIGKILL if it has not gone within 30 s."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(process.pid, sig)
            process.wait(timeout=30)
            break
        except ProcessLookupError:
            break
        except subprocess.TimeoutExpired:
            continue


@contextmanager
def server(command: list[str], ready_url: str, log: Path, env: dict | None = None, cwd: Path | None = None):
    """Run `command` until `ready_url` answers 200; yield the process; then kill its whole process group."""
    process = start_server(command, ready_url, log, env, cwd)
    try:
        yield process
    finally:
        stop_server(process)


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=60) as response:
        return json.loads(response.read())


def post_json(url: str, body) -> tuple[int, dict]:
    """(HTTP status, decoded JSON body), for error statuses too."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def postgres_bin(name: str) -> str:
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)), None)
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed: apt-get install -y postgresql (Debian) and rerun")
    return found


def start_postgres(databases: tuple[str, ...]) -> tuple[str, list[list[str]]]:
    """A PostgreSQL server on a free port of 127.0.0.1 with these databases, trust auth: its URL
    (`postgresql://postgres@127.0.0.1:PORT`) and the commands that stop it and remove its files. As root it
    runs as the `postgres` user the Debian package creates (the server refuses root)."""
    initdb, pg_ctl = postgres_bin("initdb"), postgres_bin("pg_ctl")
    as_user: list[str] = []
    base = Path(tempfile.mkdtemp(prefix="vae-postgres-"))
    if os.geteuid() == 0:
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres", "postgres")
    base.chmod(0o755)
    port, data = free_port(), base / "data"
    cleanup = [[*as_user, pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"], ["rm", "-rf", str(base)]]

    def run(*command):
        result = subprocess.run([*as_user, *command], check=False, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"{' '.join(command)}:\n{result.stdout}\n{result.stderr}"

    try:
        run(initdb, "-D", str(data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        options = f"-p {port} -k {base} -c listen_addresses=127.0.0.1 -c max_connections=100"
        run(pg_ctl, "-D", str(data), "-l", str(base / "server.log"), "-w", "-t", "60", "-o", options, "start")
        import sqlalchemy

        engine = sqlalchemy.create_engine(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", isolation_level="AUTOCOMMIT"
        )
        with engine.connect() as connection:
            for database in databases:
                connection.execute(sqlalchemy.text(f"CREATE DATABASE {database}"))
        engine.dispose()
    except BaseException:
        run_all(cleanup)
        raise
    return f"postgresql://postgres@127.0.0.1:{port}", cleanup


def run_all(commands: list[list[str]]) -> None:
    for command in commands:
        subprocess.run(command, check=False, capture_output=True, timeout=120)


@contextmanager
def postgres(databases: tuple[str, ...]):
    """start_postgres's server, stopped and removed at the end; yields its URL."""
    url, cleanup = start_postgres(databases)
    try:
        yield url
    finally:
        run_all(cleanup)


def mlflow_server_command(backend_store_uri: str, artifacts: Path, port: int) -> list[str]:
    """`mlflow server` on `backend_store_uri`, proxying artifacts to the folder `artifacts` (clients see
    `mlflow-artifacts:` URIs), on 127.0.0.1:`port`."""
    mlflow = os.path.join(os.path.dirname(sys.executable), "mlflow")
    return [
        *(mlflow, "server", "--backend-store-uri", backend_store_uri, "--artifacts-destination", artifacts.as_uri()),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", "1"),
    ]


def start_mlflow_server(backend_store_uri: str, artifacts: Path, log: Path) -> tuple[str, subprocess.Popen]:
    """(URL, process) of a started `mlflow server` (mlflow_server_command)."""
    port = free_port()
    command = mlflow_server_command(backend_store_uri, artifacts, port)
    return f"http://127.0.0.1:{port}", start_server(
        command, f"http://127.0.0.1:{port}/health", log, cwd=artifacts.parent
    )


@contextmanager
def mlflow_server(backend_store_uri: str, artifacts: Path, log: Path):
    """start_mlflow_server's server, stopped at the end; yields its URL."""
    url, process = start_mlflow_server(backend_store_uri, artifacts, log)
    try:
        yield url
    finally:
        stop_server(process)
