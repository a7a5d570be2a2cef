"""Jobs run a few at a time on threads, where a job can leave further jobs (main's trainings leave their
evaluations): those queue behind the jobs already waiting, so every slot stays busy to the end."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

Jobs = dict[str, Callable[[], "Jobs"]]  # label -> a job, which returns the jobs it leaves (label -> job)


def run_concurrently(slots: int, jobs: Jobs) -> list[str]:
    """Run the jobs, `slots` at a time, each to its end, and the jobs each leaves after those already
    waiting; the failures as 'label: error' (a failed job leaves none)."""
    failures = []
    with ThreadPoolExecutor(max_workers=slots) as pool:
        running = {pool.submit(job): label for label, job in jobs.items()}
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in [f for f in running if f in done]:  # in the order they were queued
                label = running.pop(future)
                if future.exception() is not None:
                    failures.append(f"{label}: {future.exception()}")
                    continue
                running.update({pool.submit(job): next_label for next_label, job in future.result().items()})
    return failures
