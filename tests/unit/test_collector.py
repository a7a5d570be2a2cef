"""A step process starts with the garbage collector off and resumes it, with its start-up frozen, once the
step's modules are imported (pipeline/__main__.py, pipeline/process/collector.py); any other process keeps
its collector as it was. The step process still runs every exit handler and exits with the step's status."""

from __future__ import annotations

import subprocess
import sys

import pytest


def test_a_paused_collector_resumes_with_what_is_alive_frozen():
    code = (
        "import gc\n"
        "from pipeline.process import collector\n"
        "collector.pause()\n"
        "kept = [[index] for index in range(1000)]\n"
        "assert not gc.isenabled() and gc.get_freeze_count() == 0\n"
        "collector.resume_frozen()\n"
        "assert gc.isenabled() and gc.get_freeze_count() >= 1000\n"
        "frozen = gc.get_freeze_count()\n"
        "collector.resume_frozen()\n"
        "print(gc.get_freeze_count() == frozen)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True"  # frozen once: a second run opening in the process freezes nothing


def test_a_process_that_never_paused_it_keeps_its_collector():
    code = (
        "import gc\n"
        "from pipeline.process import collector\n"
        "collector.resume_frozen()\n"
        "print(gc.isenabled(), gc.get_freeze_count())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "True 0"


@pytest.mark.slow
def test_a_step_process_runs_its_step_with_the_collector_on_and_its_start_up_frozen(tracking):
    """`python -m pipeline prepare_data`, watched where the entry hands the loaded step to the CLI."""
    hook = (
        "import gc, runpy, sys\n"
        "from pipeline import cli\n"
        "run = cli.run\n"
        "def watched(function, config):\n"
        "    print('collector', gc.isenabled(), gc.get_freeze_count() > 100000, flush=True)\n"
        "    return run(function, config)\n"
        "cli.run = watched\n"
        "sys.argv = ['pipeline', 'prepare_data']\n"
        "runpy.run_module('pipeline', run_name='__main__')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", hook], capture_output=True, text=True, env=tracking.env(), cwd=tracking.root
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.strip().splitlines()
    assert "collector True True" in lines
    run = tracking.client.get_run(lines[-1].removeprefix("run id: "))
    assert run.info.status == "FINISHED" and run.data.tags["pipeline.step"] == "prepare_data"


def test_a_step_process_exits_with_its_status_after_its_exit_handlers():
    """Bad input exits 2 with its message; an exit handler the step registered still runs."""
    code = (
        "import atexit, runpy, sys\n"
        "from pipeline import cli\n"
        "from pipeline.errors import InputError\n"
        "def refusing(function, config):\n"
        "    atexit.register(print, 'exit handler ran', flush=True)\n"
        "    return cli.refuse(InputError('parameter x: refused'))\n"
        "cli.run = refusing\n"
        "cli.load_step = lambda step: None\n"
        "sys.argv = ['pipeline', 'prepare_data']\n"
        "runpy.run_module('pipeline', run_name='__main__')\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stdout.strip() == "exit handler ran" and "error: parameter x: refused" in result.stderr
