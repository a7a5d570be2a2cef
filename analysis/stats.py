"""Which way is better per metric, and which rows of a metrics table are best (the ★ marks).

Plain Python, no MLflow, so the marks can be tested on hand-made numbers. A ★ marks a best mean, not a
verdict: whether a difference over seeds counts is the findings' interval rule (pipeline/core/findings).
"""

from __future__ import annotations

import math

from pipeline.core.scores.catalogue import CATALOGUE, REAL
from pipeline.core.scores.spread import Summary

# Which way is better, per metric (pipeline/core/scores/catalogue.py). "closer:<reference>" means: closer
# to the real data's value of that reference metric (logged by the same evaluation), so a sampler cannot
# win by being noisier or more peaked than real digits; None: a property of the model, never marked.
DIRECTIONS = {m.name: m.direction for m in CATALOGUE.values() if m.kind != REAL}


def best_rows(column: dict[str, Summary], direction: str | None, targets: dict[str, float] | None = None) -> set[str]:
    """The row names whose mean is best in this column (ties all marked); `targets[row]` is the real
    value a 'closer:' column is compared to."""
    if direction is None:
        return set()
    scores = {}
    for row, summary in column.items():
        if summary.n == 0:
            continue
        if direction == "lower":
            scores[row] = summary.mean
        elif direction == "higher":
            scores[row] = -summary.mean
        else:
            target = (targets or {}).get(row, math.nan)
            if not math.isfinite(target):
                continue
            scores[row] = abs(summary.mean - target)
    if not scores:
        return set()
    best = min(scores.values())
    return {row for row, score in scores.items() if math.isclose(score, best, rel_tol=1e-12, abs_tol=1e-12)}
