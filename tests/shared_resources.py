"""What one test session builds once for all its pytest-xdist workers: the tiny study, PostgreSQL and the
`mlflow server` on it. Each is built by the first worker that needs it, under a file lock, in a folder the
controlling process makes (`SHARED_ENV`), and read back by the others from the JSON it left; the servers
outlive the worker that started them and are stopped by the controlling process when the session ends."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock

SHARED_ENV = "VAE_TESTS_SHARED"  # the session's shared folder, inherited by the workers
CLEANUP = "cleanup.jsonl"  # what the controlling process undoes at the end, one JSON object a line


def start_session() -> None:
    """In the controlling process, before the workers start: the shared folder."""
    os.environ[SHARED_ENV] = tempfile.mkdtemp(prefix="vae-tests-shared-")


def folder() -> Path:
    return Path(os.environ[SHARED_ENV])


def once(name: str, build: Callable[[Path], dict]) -> dict:
    """The JSON record of `name`: built now by `build(its own folder)` unless a worker built it already."""
    record = folder() / f"{name}.json"
    with FileLock(folder() / f"{name}.lock"):
        if not record.exists():
            (folder() / name).mkdir(exist_ok=True)
            written = record.with_suffix(".partial")
            written.write_text(json.dumps(build(folder() / name)))
            written.rename(record)  # readers never see half a record
    return json.loads(record.read_text())


def stop_at_end(process_group: int | None = None, commands: list[list[str]] = ()) -> None:
    """Have the controlling process kill this process group, or run these commands in order, when the
    session ends."""
    with FileLock(folder() / f"{CLEANUP}.lock"), open(folder() / CLEANUP, "a") as out:
        out.write(json.dumps({"process_group": process_group, "commands": list(commands)}) + "\n")


def end_session() -> None:
    """In the controlling process, after every worker: stop what the workers left running (newest first),
    then remove the shared folder."""
    shared = os.environ.pop(SHARED_ENV, None)
    if shared is None:
        return
    cleanup = Path(shared) / CLEANUP
    entries = [json.loads(line) for line in cleanup.read_text().splitlines()] if cleanup.exists() else []
    for entry in reversed(entries):
        for command in entry["commands"]:
            subprocess.run(command, check=False, capture_output=True, timeout=120)
        if entry["process_group"]:
            try:
                os.killpg(entry["process_group"], signal.SIGKILL)
            except ProcessLookupError:
                pass
    shutil.rmtree(shared, ignore_errors=True)
