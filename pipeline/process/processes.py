"""Processes on this machine: who a process is, whether it still lives, and locks every process shares.

No MLflow here: tracking records these identities on runs (tag `pipeline.process`) and asks this module
whether the process behind a RUNNING run is gone. Lookups only answer: stopping a process is `stop`,
called by whoever decides to.
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from contextlib import contextmanager

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
    import socket

    import psutil

    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.3f}"


def this_process() -> str:
    return identity(os.getpid())


def worker_identity(pid: int) -> str:
    """`host:pid`, the identity a search worker writes on its trials."""
    import socket

    return f"{socket.gethostname()}:{pid}"


def this_worker() -> str:
    return worker_identity(os.getpid())


def local_process(identity: str):
    """(known, psutil.Process or None) for a `host:pid:start time` identity; unknown on another host."""
    import socket

    import psutil

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
    import psutil

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
    import psutil

    _, process = local_process(identity)
    if process is not None:
        try:
            process.kill()
        except psutil.Error:  # gone in between
            pass


@contextmanager
def machine_lock(name: str):
    """An exclusive lock shared by every process on this machine (released if the holder dies)."""
    folder = datasets.cache_dir() / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{name}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


_ENVIRONMENT_LOCK = threading.Lock()


def export(values: dict[str, str]) -> None:
    """Set environment variables that every process this driver starts inherits (each step's share of
    the cores, the driver's identity): the same values for all of a driver's steps."""
    with _ENVIRONMENT_LOCK:
        os.environ.update(values)


def exit_on_sigterm() -> None:
    """SIGTERM (also sent when the parent dies) unwinds like Ctrl-C: `finally` blocks end runs FAILED."""

    def handler(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, handler)


def die_with_parent() -> None:
    """preexec_fn of worker processes (Linux): SIGTERM when the parent dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except OSError:
        pass
