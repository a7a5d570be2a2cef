"""The pipeline's one test hook: `pause_point(name)` holds the process at a named point until it is killed.

Kill tests need a process stopped at a known point, with its MLflow run open, on a fast machine or a slow
one. With the environment variable `VAE_PIPELINE_PAUSE_AT` equal to a point's name, the process that
reaches the point prints `paused at NAME (pid PID)` on stdout and sleeps until it is killed; unset, or set
to another name, `pause_point` returns at once. The points:

- `train.epoch.N`: the train step, right after the checkpoint of epoch N is logged;
- `search.trial.N`: a search worker, in trial N after its first report to the pruner, the trial's run open.
"""

from __future__ import annotations

import os
import time

PAUSE_ENV = "VAE_PIPELINE_PAUSE_AT"


def pause_point(name: str) -> None:
    """Wait here to be killed when `VAE_PIPELINE_PAUSE_AT` names this point; otherwise return at once."""
    if os.environ.get(PAUSE_ENV) != name:
        return
    print(f"paused at {name} (pid {os.getpid()})", flush=True)
    while True:
        time.sleep(60)
