"""Processes on this machine: who a process is, whether it still lives, and locks every process shares.

No MLflow here: tracking records these identities on runs (tag `pipeline.process`) and asks this module
whether the process behind a RUNNING run is gone. Lookups only answer: stopping a process is `stop`,
called by whoever decides to.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import sys
from contextlib import contextmanager

import filelock
import psutil

from pipeline.core.data import datasets

DRIVER_ENV = "VAE_PIPELINE_DRIVER"  # host:pid:start time of the main or search process that launched a step


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity (a container's or `taskset`'s share), not the
    machine's count, so steps sized from it never oversubscribe the cores they were given."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def identity(pid: int) -> str:
    """`host:pid:start time` of a running process: unique even when the pid is reused later."""
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.3f}"


def this_process() -> str:
    return identity(os.getpid())


def worker_identity(pid: int) -> str:
    """`host:pid`, the identity a search worker writes on its trials."""
    return f"{socket.gethostname()}:{pid}"


def this_worker() -> str:
    return worker_identity(os.getpid())


def local_process(identity: str):
    """(known, psutil.Process or None) for a `host:pid:start time` identity; unknown on another host."""
    host, _, rest = identity.partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname():
        return False, None
    try:
        process = psutil.Process(int(pid))
        same = f"{process.create_time():.3f}" == started
        return True, (process if same and running(process) else None)
    except (ValueError, psutil.Error):
        return True, None


def running(process) -> bool:
    """Alive and not a zombie (a killed process stays in the table until its parent reaps it)."""
    try:
        return process is not None and process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False


def alive(identity: str) -> bool:
    """Whether the process `identity` still lives (on another host it cannot be told: assumed so)."""
    known, process = local_process(identity)
    return process is not None or not known


def orphaned(identity: str, driver: str | None) -> bool:
    """Whether the process `identity` lives on while the driver (main or search) that launched it is gone:
    its watchdog stops it within a second (pipeline/process/watchdog.py). Only answers."""
    if not driver:
        return False
    known, process = local_process(identity)
    driver_known, driver_process = local_process(driver)
    return known and process is not None and driver_known and driver_process is None


def stop(identity: str) -> None:
    """SIGKILL the process `identity` if it runs on this machine (the same process: pid and start time)."""
    _, process = local_process(identity)
    if process is not None:
        try:
            process.kill()
        except psutil.Error:  # gone in between
            pass


@contextmanager
def machine_lock(name: str):
    """An exclusive lock shared by every process that uses the same prepared-data cache folder (one per user
    and machine by default: `VAE_PIPELINE_CACHE`, else ~/.cache/vae-pipeline), released if the holder
    dies; says on stderr what it waits for when another process holds it."""
    folder = datasets.cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(folder / f"{name}.lock")
    try:
        lock.acquire(blocking=False)
    except filelock.Timeout:
        print(f"waiting for {lock.lock_file}", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def export_for_steps(values: dict[str, str]) -> None:
    """Export, once, before a driver (main or search) launches any step, what every step it launches
    inherits: `values` (each step's share of the cores) and the driver's identity (`DRIVER_ENV`).
    `mlflow.projects.run` starts a step with this process's environment and takes no other, so this
    is where the driver's environment changes, in its own thread, before its thread pool starts."""
    os.environ.update({**values, DRIVER_ENV: this_process()})


def exit_on_sigterm() -> None:
    """SIGTERM (also sent when the parent dies) unwinds like Ctrl-C: `finally` blocks end runs FAILED."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def die_with_parent() -> None:
    """preexec_fn of worker processes (Linux): SIGTERM when the parent dies."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
