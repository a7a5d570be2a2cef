"""The two judges of class identity weighed on each experiment's samples, in one line per experiment.

Every evaluation kept, per sampler, the CNN x k-NN confusion matrix of its scored samples and logged
Cohen's kappa and the share in dispute (pipeline/core/judges/disagreement.py). Here, per experiment:
kappa and the share over seeds, the confusion matrix summed over seeds and its largest off-diagonal
cell, each judge's dominant digit per seed, and both judges' accuracy on real digits as blurry as the
samples. The line says what these numbers are and nothing they do not show.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from analysis import sources
from analysis.dominance import dominant_text, seeds_text
from analysis.tables import Row, Table
from pipeline.core.evaluation.two_judges import CNN_ACCURACY, IN_DISPUTE, KAPPA, KNN_ACCURACY, UNRELIABLE_BELOW
from pipeline.core.judges import disagreement
from pipeline.core.scores.spread import Summary, spread_text

JUDGES = ((CNN_ACCURACY, "CNN"), (KNN_ACCURACY, "k-NN"))


def name(row: Row) -> str:
    return row.study_id or row.name


def unreliable(summary: Summary) -> bool:
    return summary.n > 0 and summary.mean < UNRELIABLE_BELOW


def accuracy_text(row: Row) -> str:
    """Both judges' accuracy on real digits as blurry as the row's samples, the unreliable ones marked."""
    shown = []
    for metric, judge in JUDGES:
        summary = row.score(metric)
        if summary.n:
            mark = f" unreliable (under {UNRELIABLE_BELOW})" if unreliable(summary) else ""
            shown.append(f"{judge} {spread_text(summary)}{mark}")
    return ", ".join(shown)


def disputes_of(row: Row, folder: Path) -> dict[int, disagreement.Dispute]:
    """The kept dispute of each seed of the row, by seed (seeds whose evaluation kept none, or one in
    another layout, are left out); each artifact is downloaded into `folder` once and read from there."""
    key = row.experiment["sampler_key"]
    path = f"evaluation/{key}/{disagreement.ARTIFACT}"
    found = {}
    for evaluation in row.evaluations:
        local = folder / evaluation.run_id / path
        if not local.exists():
            local = sources.download(evaluation.run_id, path, folder)
        if local is None or not local.exists():
            continue
        try:
            found[evaluation.seed] = disagreement.Dispute.from_bytes(local.read_bytes())
        except ValueError:  # an evaluation that kept another layout: no matrix to add up
            continue
    return dict(sorted(found.items()))


def summed(disputes: dict[int, disagreement.Dispute]) -> np.ndarray | None:
    """The confusion matrices of the seeds added up, or None when there are none."""
    return sum(d.confusion for d in disputes.values()) if disputes else None


def cell_text(disputes: dict[int, disagreement.Dispute]) -> str:
    """The largest off-diagonal cell of the summed confusion matrix, with its count."""
    confusion = summed(disputes)
    if confusion is None:
        return ""
    total, where = int(confusion.sum()), seeds_text(disputes)
    if np.trace(confusion) == total:
        return f"the judges agree on all {total} samples ({where})"
    a, b = disagreement.most_frequent_disagreement(confusion)
    return f"most frequent disagreement CNN {a}, k-NN {b}: {int(confusion[a, b])} of {total} samples ({where})"


def line(row: Row, folder: Path) -> str:
    """One experiment's judges: kappa, the share in dispute, the largest disagreement, the dominant
    digits per seed, the judges' accuracy at the samples' sharpness; empty when nothing was logged."""
    parts = []
    kappa, share = row.score(KAPPA), row.score(IN_DISPUTE)
    if kappa.n:
        parts.append(f"κ {spread_text(kappa)}")
    if share.n:
        parts.append(f"{spread_text(share)} of the samples in dispute")
    if cell := cell_text(disputes_of(row, folder)):
        parts.append(cell)
    if dominant := dominant_text(row):
        parts.append(f"dominant digit {dominant}")
    if accuracy := accuracy_text(row):
        parts.append(f"accuracy on real test digits as blurry as the samples: {accuracy}")
    return f"{name(row)}: {'; '.join(parts)}" if parts else ""


def lines(table: Table, folder: Path) -> list[str]:
    """The judges' line of every experiment with evaluations, in the table's order."""
    return [text for row in table.rows if row.evaluations and (text := line(row, folder))]
