"""The watchdog of a step launched by a driver (main or search): the step stops when its driver dies.

A `kill -9` of main must leave no step running on its own: the driver exports its identity in
`VAE_PIPELINE_DRIVER` to the steps it launches, and each step's process entry (pipeline/__main__.py)
starts this watchdog, a daemon thread that SIGKILLs the step's process once the driver is gone
(`mlflow run` then ends the step's run FAILED, and a rerun finds it stale).
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time

from pipeline.process.processes import DRIVER_ENV, local_process, running


def watch_driver(driver: str, interval_s: float = 1.0) -> None:
    """Kill this process when the process `driver` (`host:pid:start time`) dies; a no-op for a driver on
    another host, which cannot be watched from here."""
    known, process = local_process(driver)
    if not known:
        return

    def watch():
        while running(process):
            time.sleep(interval_s)
        print(f"the driver process {driver} is gone: stopping this step", file=sys.stderr, flush=True)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="driver-watchdog", daemon=True).start()


def watch_driver_from_environment() -> str | None:
    """Start the watchdog when a driver launched this process (`VAE_PIPELINE_DRIVER`); returns the driver."""
    driver = os.environ.get(DRIVER_ENV)
    if driver:
        watch_driver(driver)
    return driver
