"""A step process starts with the garbage collector off and resumes it, with its start-up frozen, once
its run opens (pipeline/collector.py); any other process keeps its collector as it was."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_a_paused_collector_resumes_with_what_is_alive_frozen():
    code = ("import gc\n"
            "from pipeline.process import collector\n"
            "collector.pause()\n"
            "kept = [[index] for index in range(1000)]\n"
            "assert not gc.isenabled() and gc.get_freeze_count() == 0\n"
            "collector.resume_frozen()\n"
            "assert gc.isenabled() and gc.get_freeze_count() >= 1000\n"
            "frozen = gc.get_freeze_count()\n"
            "collector.resume_frozen()\n"
            "print(gc.get_freeze_count() == frozen)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"  # frozen once: a second run opening in the process freezes nothing


def test_a_process_that_never_paused_it_keeps_its_collector():
    code = ("import gc\n"
            "from pipeline.process import collector\n"
            "collector.resume_frozen()\n"
            "print(gc.isenabled(), gc.get_freeze_count())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True 0"


@pytest.mark.slow
def test_a_step_process_runs_its_step_with_the_collector_on_and_its_start_up_frozen(tracking):
    """`python -m pipeline prepare_data`, with a hook that records the collector while the step's run is open."""
    hook = ("import gc, runpy, sys\n"
            "import mlflow\n"
            "from pipeline.tracking import step\n"
            "opened = step.step_run\n"
            "import contextlib\n"
            "@contextlib.contextmanager\n"
            "def watched(*args, **kwargs):\n"
            "    with opened(*args, **kwargs) as run:\n"
            "        mlflow.set_tag('collector', f'{gc.isenabled()} {gc.get_freeze_count() > 100000}')\n"
            "        yield run\n"
            "import pipeline.tracking\n"
            "pipeline.tracking.step_run = watched\n"
            "sys.argv = ['pipeline', 'prepare_data']\n"
            "runpy.run_module('pipeline', run_name='__main__')\n")
    result = subprocess.run([sys.executable, "-c", hook], capture_output=True, text=True, env=tracking.env(),
                            cwd=tracking.root)
    assert result.returncode == 0, result.stderr[-3000:]
    run_id = result.stdout.strip().splitlines()[-1].removeprefix("run id: ")
    assert tracking.client.get_run(run_id).data.tags["collector"] == "True True"
