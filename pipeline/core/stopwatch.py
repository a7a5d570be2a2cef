"""Wall time per named phase of a step, so a run can say where its time went (training against
fixed costs; benchmarks/step_overhead.py reads it back)."""

from __future__ import annotations

import time
from collections import defaultdict
from contextlib import contextmanager


class Stopwatch:
    """Adds up the seconds spent inside `with watch("phase"):` blocks, per phase."""

    def __init__(self):
        self.seconds: dict[str, float] = defaultdict(float)

    @contextmanager
    def __call__(self, phase: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[phase] += time.perf_counter() - started

    def metrics(self) -> dict[str, float]:
        """The totals as MLflow metric names: `time_<phase>_s`."""
        return {f"time_{phase}_s": round(value, 4) for phase, value in self.seconds.items()}
