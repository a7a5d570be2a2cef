"""The dominant digit each judge sees under an experiment, seed by seed.

Each judge's class histogram of the samples gives its dominant digit per seed (the evaluate step's
`max_class` tags, ties to the lowest digit). A sampler that collapses onto a different digit in each
seed has no single dominant digit: the digits are listed per seed, never summarised as one.
"""

from __future__ import annotations

from analysis.tables import Row
from pipeline.core.judges.knn import SUFFIX


def seeds_text(seeds) -> str:
    """The seeds named: seed 0, or seeds 0, 1, 2."""
    seeds = list(seeds)
    return f"seed{'s' if len(seeds) > 1 else ''} {', '.join(str(s) for s in seeds)}"


def per_seed(row: Row, suffix: str = "") -> list[tuple[int, int]]:
    """(seed, dominant digit) of one judge (suffix "" the CNN, "_judge2" the k-NN), by seed; seeds
    without the tag are left out."""
    key = row.experiment["sampler_key"]
    found = [(e.seed, e.sampler_tag(key, f"max_class{suffix}")) for e in row.evaluations]
    return sorted((seed, int(digit)) for seed, digit in found if digit is not None)


def dominant_text(row: Row) -> str:
    """Both judges' dominant digit per seed, e.g. "CNN 3, 8, 3 (seeds 0, 1, 2); k-NN 8, 8, 2"; the
    k-NN's seeds are named too when they are not the CNN's. Empty when no digit was logged."""
    cnn, second = per_seed(row), per_seed(row, SUFFIX)
    if not cnn:
        return ""
    seeds = [seed for seed, _ in cnn]
    text = f"CNN {', '.join(str(d) for _, d in cnn)} ({seeds_text(seeds)})"
    if not second:
        return text + "; no second judge was logged"
    text += f"; k-NN {', '.join(str(d) for _, d in second)}"
    if [seed for seed, _ in second] != seeds:
        text += f" ({seeds_text(seed for seed, _ in second)})"
    return text
