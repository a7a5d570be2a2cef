"""pipeline/search/recovery.py:
The search survives its processes' deaths: a worker killed mid-search (journal storage) is replaced and its
trial retried exactly once; a whole search killed inside a trial (SQLite) is resumed by the next run through
Optuna's heartbeats. Results read back through MlflowClient and optuna.load_study."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time

import optuna
import pytest

from pipeline.process.pause import PAUSE_ENV
from tests.e2e.search_runs import FINISHED, TINY, as_args, check_trial_runs, run_search, sqlite_study

pytestmark = pytest.mark.slow


class Output:
    """A background process's output, read line by line on a thread as it comes."""

    def __init__(self, process: subprocess.Popen):
        self.process, self.lines, self._new = process, [], queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in iter(self.process.stdout.readline, ""):
            self._new.put(line)
        self._new.put(None)  # the process closed its output

    def wait_for(self, pattern: str, limit_s: float = 400) -> re.Match:
        """The first line (from here on) matching `pattern`; fails when the process ends or `limit_s` passes first."""
        deadline = time.monotonic() + limit_s
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"no line matching {pattern!r}:\n" + self.text()[-4000:]) from None
            assert line is not None, f"ended before {pattern!r}:\n" + self.text()[-4000:]
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def text(self) -> str:
        """Everything it printed so far; all of it once the process has ended (the reader is joined)."""
        if self.process.poll() is not None:
            self._reader.join(timeout=60)
        while not self._new.empty():
            line = self._new.get()
            self.lines += [line] if line is not None else []
        return "".join(self.lines)


def start_search(tracking, params: dict, pause_trial: int | None = None, **env_extra) -> Output:
    """`python -m pipeline search` in the background; its output lines are collected as they come."""
    env = tracking.env()
    env.update({"OMP_NUM_THREADS": "1", **env_extra})
    if pause_trial is not None:
        env[PAUSE_ENV] = f"search.trial.{pause_trial}"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "search", *as_args(params)],
        cwd=tracking.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Output(process)


def wait_for_pause(output: Output, trial: int) -> int:
    """The pid of the process paused in `trial` (it says so and waits to be killed)."""
    return int(output.wait_for(rf"paused at search\.trial\.{trial} \(pid (\d+)\)").group(1))


def test_a_worker_killed_mid_search_is_recovered_exactly(tracking, tmp_path):
    journal = tmp_path / "journal.log"
    params = {**TINY, "n_trials": 4, "n_workers": 2, "study_name": "kill", "storage": f"journal:{journal}"}
    search = start_search(tracking, params, pause_trial=2)
    os.kill(wait_for_pause(search, 2), signal.SIGKILL)
    assert search.process.wait(timeout=400) == 0, search.text()[-4000:]
    output = search.text()
    parent = re.findall(r"run id: ([0-9a-f]{32})", output)[-1]
    assert re.search(r"worker \d \(pid \d+\) ended with status -9; its running trials \[2\] failed", output)

    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.load_study(study_name="kill", storage=JournalStorage(JournalFileBackend(str(journal))))
    mine = check_trial_runs(tracking, study, parent)
    states = {t.number: t.state for t in mine}
    assert sum(s in FINISHED for s in states.values()) == 4  # exactly n_trials, none counted twice
    assert states[2] == optuna.trial.TrialState.FAIL
    retries = [t for t in mine if t.user_attrs.get("retry_of") == 2]
    assert len(retries) == 1 and retries[0].state in FINISHED  # re-enqueued once, run by a replacement worker
    assert {k: v for k, v in retries[0].params.items()} == study.trials[2].params
    assert not [
        t for t in study.trials if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    ]
    killed_run = tracking.client.get_run(study.trials[2].user_attrs["mlflow_run_id"])
    assert killed_run.info.status == "FAILED" and "status -9" in killed_run.data.tags["failure_reason"]
    assert not tracking.client.search_runs(
        [tracking.experiment_id], "attributes.status = 'RUNNING' and tags.`optuna.study_name` = 'kill'"
    )
    run = tracking.client.get_run(parent)
    assert (run.data.metrics["trials"], run.data.metrics["trials_failed"]) == (4, 1)


def test_a_killed_search_is_resumed_through_heartbeats(tracking):
    """One worker on SQLite: the whole search is SIGKILLed inside a trial; the rerun's heartbeat check
    fails that trial, ends its MLflow run FAILED and retries it once; the dead search run ends FAILED."""
    params = {**TINY, "n_trials": 2, "study_name": "heartbeat", "heartbeat": "1,2"}
    search = start_search(tracking, params, pause_trial=1)
    assert wait_for_pause(search, 1) == search.process.pid
    search.process.send_signal(signal.SIGKILL)
    search.process.wait(timeout=60)
    dead_parent = tracking.client.search_runs([tracking.experiment_id], "tags.`optuna.study_name` = 'heartbeat'")[0]
    assert dead_parent.info.status == "RUNNING"
    time.sleep(3)  # past the grace period (2 s) of the last heartbeat

    result = run_search(tracking, {**params, "n_trials": 1})
    assert result.returncode == 0, result.stderr[-3000:]
    parent = re.findall(r"run id: ([0-9a-f]{32})", result.stdout)[-1]
    study = sqlite_study(tracking, "heartbeat")
    stale = study.trials[1]
    assert stale.state == optuna.trial.TrialState.FAIL
    stale_run = tracking.client.get_run(stale.user_attrs["mlflow_run_id"])
    # whichever comes first closes it: the stale-run check of the search (its process is gone) or the heartbeat
    assert stale_run.info.status == "FAILED" and re.search("killed|heartbeat", stale_run.data.tags["failure_reason"])
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == 1]
    assert len(retried) == 1 and retried[0].user_attrs["invocation"] == parent and retried[0].state in FINISHED
    assert retried[0].params == stale.params
    assert tracking.client.get_run(dead_parent.info.run_id).info.status == "FAILED"
    assert not tracking.client.search_runs(
        [tracking.experiment_id], "attributes.status = 'RUNNING' and tags.`optuna.study_name` = 'heartbeat'"
    )
