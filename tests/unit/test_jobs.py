"""Jobs a few at a time, a job leaving jobs behind the waiting ones, failures reported by label."""

import threading

from pipeline.process.jobs import run_concurrently


def test_a_job_left_by_another_runs_after_the_jobs_already_waiting():
    order = []

    def job(name, leaves=None):
        def run():
            order.append(name)
            return {f"{name}'s": job(f"{name}'s")} if leaves else {}

        return run

    jobs = {name: job(name, leaves=name != "judges") for name in ("judges", "train a", "train b")}
    assert run_concurrently(1, jobs) == []
    assert order == ["judges", "train a", "train b", "train a's", "train b's"]


def test_failures_are_reported_by_label_and_a_failed_job_leaves_nothing():
    ran = []

    def fails():
        raise RuntimeError("no data")

    jobs = {"bad": fails, "good": lambda: ran.append("good") or {"after": lambda: ran.append("after") or {}}}
    assert run_concurrently(2, jobs) == ["bad: no data"]
    assert sorted(ran) == ["after", "good"]


def test_slots_run_at_once():
    both_started = threading.Barrier(2, timeout=30)  # each job waits for the other: only two slots get both going

    def job():
        both_started.wait()
        return {}

    assert run_concurrently(2, {"a": job, "b": job}) == []
