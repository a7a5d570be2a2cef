"""The dominant digit each judge sees under an experiment, and whether the two agree: one line per
experiment F3 and F6 look at (E3, E4, E5), said once under the verdict table.

Each judge's class histogram of the samples gives its dominant digit per seed (the evaluate step's
`max_class` tags) and that digit's share, set against the reference sampler E1's share of the same
digit; beside it, how much of the CNN's histogram rests on confident predictions.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import numpy as np

from analysis.tables import Row, Table
from pipeline.core.judges.knn import SUFFIX
from pipeline.core.scores.spread import Summary, spread_text


def _name(row: Row) -> str:
    return row.study_id or row.name


def _spread_of(values: list[float]) -> str:
    return spread_text(Summary.of(values))


def dominance(
    row: Row, shares_of: Callable[..., dict[int, np.ndarray]], reference: Row | None, suffix: str = ""
) -> tuple[str, int | None]:
    """Which class one judge finds dominant under `row` over its seeds, with its share against the
    reference sampler's share of that class (F3, F6)."""
    key = row.experiment["sampler_key"]
    dominant = Counter(e.sampler_tag(key, f"max_class{suffix}") for e in row.evaluations)
    dominant.pop(None, None)
    if not dominant:
        return "", None
    digit, times = dominant.most_common(1)[0]
    digit = int(digit)
    own = [s[digit] for s in shares_of(row, suffix).values()]
    text = (
        f"{'the k-NN' if suffix else 'the CNN'}'s dominant digit is {digit} ({times} of {len(row.evaluations)} "
        f"seeds), {_spread_of(own)} of the samples"
    )
    if reference is not None:
        against = [s[digit] for s in shares_of(reference, suffix).values()]
        text += f" ({_name(reference)}: {_spread_of(against)})"
    return text, digit


def dominance_note(row: Row, shares_of: Callable[..., dict[int, np.ndarray]], reference: Row | None) -> str:
    """Both judges' dominant digit under `row`, whether they agree, and how much of the CNN's
    histogram rests on confident predictions: one line, said once on the page."""
    cnn, _ = dominance(row, shares_of, reference)
    if not cnn:
        return ""
    text = f"{_name(row)}: {cnn}"
    second, _ = dominance(row, shares_of, reference, SUFFIX)
    agree = row.score("judges_agree")
    if second:
        text += f"; {second}; same digit in {int(sum(agree.values))} of {agree.n} seeds"
    else:
        text += "; no second judge was logged for these evaluations"
    confident, among = row.score("confident_share"), row.score("max_class_share_confident")
    if not confident.n:  # no confident share logged for these evaluations
        return text + "."
    text += f". The CNN is confident (top probability ≥ 0.9) on {spread_text(confident)} of them"
    if among.n:
        text += f", and its dominant class holds {spread_text(among)} of those."
    else:
        text += ": its histogram rests entirely on guesses."
    return text


def dominant_digits(table: Table, shares_of: Callable[..., dict[int, np.ndarray]]) -> list[str]:
    """The dominant-digit line of every experiment F3 and F6 look at (E3, E4, E5), each once."""
    reference = table.row(study_id="E1")
    reference = reference if reference is not None and reference.evaluations else None
    lines = []
    for study_id in ("E3", "E4", "E5"):
        row = table.row(study_id=study_id)
        if row is not None and row.evaluations and (text := dominance_note(row, shares_of, reference)):
            lines.append(text)
    return lines
