"""Processes on this machine: identities that tell a live process from a gone one (or a reused pid), lookups
that only answer, and the watchdog that stops a step whose driver died. Real processes, no MLflow."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from pipeline.process import processes


def test_alive_tells_a_live_process_from_a_gone_one_a_reused_pid_and_another_host():
    assert processes.alive(processes.this_process())
    child = subprocess.run(
        [sys.executable, "-c", "from pipeline.process import processes; print(processes.this_process())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = child.stdout.strip()
    assert gone.count(":") == 2 and not processes.alive(gone)
    host, pid, started = processes.this_process().split(":")
    assert not processes.alive(f"{host}:{pid}:{float(started) - 60:.3f}")  # this pid, but another start time
    assert processes.alive(f"another-host-{host}:{pid}:{started}")  # cannot be told from here: assumed alive


def test_an_orphan_is_told_but_not_killed_by_the_lookups_and_stopped_only_when_asked():
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    orphan = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        identity, driver_identity = processes.identity(orphan.pid), processes.identity(driver.pid)
        assert processes.alive(identity) and not processes.orphaned(identity, driver_identity)
        assert not processes.orphaned(identity, None)
        driver.kill()
        driver.wait()
        assert processes.orphaned(identity, driver_identity)
        assert processes.alive(identity) and orphan.poll() is None  # asking twice killed nothing
        processes.stop(identity)
        assert orphan.wait(timeout=60) == -9
        assert not processes.alive(identity) and not processes.orphaned(identity, driver_identity)
    finally:
        for process in (driver, orphan):
            process.kill()


WATCHED = """
import sys, time
from pipeline.process import watchdog
watchdog.watch_driver(sys.argv[1], interval_s=0.2)
print("watching", flush=True)
time.sleep(600)
"""


def test_a_step_stops_itself_when_its_driver_dies():
    driver = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    step = subprocess.Popen(
        [sys.executable, "-c", WATCHED, processes.identity(driver.pid)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ},
    )
    try:
        assert step.stdout.readline().strip() == "watching"
        assert step.poll() is None
        driver.kill()
        assert step.wait(timeout=60) == -9
        assert "driver process" in step.stderr.read()
    finally:
        driver.kill()
        step.kill()


@pytest.mark.parametrize(
    "cores, expected",
    [
        # usable cores: (steps at once, threads each) for 6 independent steps, by default and with max_parallel=2
        (1, ((1, 1), (2, 1))),  # one core: one step at a time; two asked for share it, one thread each
        (2, ((2, 1), (2, 1))),
        (3, ((3, 1), (2, 1))),  # 3 cores // 2 steps: one thread each, the third core spare
        (8, ((6, 1), (2, 4))),  # no more steps than there are to run
    ],
)
def test_steps_are_sized_from_the_usable_cores(cores, expected):
    from pipeline.configs import MainConfig
    from pipeline.steps.main import parallel_slots

    assert (parallel_slots(MainConfig(), 6, cores), parallel_slots(MainConfig(max_parallel="2"), 6, cores)) == expected


def test_the_usable_cores_are_those_the_process_is_pinned_to():
    """Pinned to some cores (a container's cpuset, `taskset`), main counts those, whatever the machine has:
    never two processes on one core."""
    code = "from pipeline.process import processes\nprint(processes.usable_cores())"
    pinned = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}),
    )
    assert pinned.stdout.strip() == "1"
    free = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert free.stdout.strip() == str(len(os.sched_getaffinity(0)))


def test_a_machine_lock_says_what_it_waits_for_and_is_taken_once_released(tmp_path):
    holder = (
        "import sys\n"
        "from pipeline.process import processes\n"
        "with processes.machine_lock('held'):\n"
        "    print('held', flush=True)\n"
        "    sys.stdin.readline()\n"
    )
    waiter = (
        "from pipeline.process import processes\nwith processes.machine_lock('held'):\n    print('taken', flush=True)\n"
    )
    env = {**os.environ, "VAE_PIPELINE_CACHE": str(tmp_path)}
    first = subprocess.Popen(
        [sys.executable, "-c", holder], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert first.stdout.readline().strip() == "held"
        second = subprocess.Popen(
            [sys.executable, "-c", waiter], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        assert second.stderr.readline().strip() == f"waiting for {tmp_path / 'locks' / 'held.lock'}"
        first.stdin.write("release\n")
        first.stdin.flush()
        assert second.stdout.readline().strip() == "taken" and second.wait(timeout=60) == 0
        assert first.wait(timeout=60) == 0
    finally:
        first.kill()
