"""The digits the two judges of class identity dispute, put in front of the reader.

One panel per experiment with evaluations: the CNN x k-NN confusion matrix of its samples summed
over seeds, then, at the training seed with the most samples in dispute, the samples of that seed's
most frequent disagreement (the CNN says a, the k-NN says b) beside 32 random samples labelled by
both judges. Both judges' accuracy on real digits as blurry as the samples stays beside the parts of
a finding that rest on them (`judges_text`).
"""

from __future__ import annotations

from pathlib import Path

from analysis import figures
from analysis.dominance import seeds_text
from analysis.judges import JUDGES, accuracy_text, disputes_of, name, summed, unreliable
from analysis.sources import Evaluation
from analysis.tables import Row, Table
from pipeline.core.evaluation.two_judges import IN_DISPUTE, KAPPA
from pipeline.core.judges import disagreement
from pipeline.core.scores.spread import spread_text


def judges_text(rows: list[Row]) -> str:
    """Both judges' accuracy on real test digits as blurry as each row's samples, the unreliable ones marked."""
    texts = [f"{name(row)}: {shown}" for row in rows if (shown := accuracy_text(row))]
    if not texts:
        return ""
    return "judges' accuracy on real test digits as blurry as the samples: " + "; ".join(texts)


def both_unreliable(rows: list[Row]) -> bool:
    """Both judges measured and under UNRELIABLE_BELOW on the samples of some row: no judge can be
    trusted with those samples' classes."""
    return any(all(unreliable(row.score(metric)) for metric, _ in JUDGES) for row in rows)


def most_disputed(row: Row) -> Evaluation | None:
    """The evaluation (training seed) of this row with the largest share of samples in dispute
    (ties: the lowest seed)."""
    key = row.experiment["sampler_key"]
    scored = [(e.sampler_metric(key, IN_DISPUTE), e.seed, e) for e in row.evaluations]
    scored = [item for item in scored if item[0] is not None]
    if not scored:
        return None
    return max(scored, key=lambda item: (item[0], -item[1]))[2]


def panel(row: Row, folder: Path):
    """(PNG bytes, caption) of the row's panel: the confusion matrix summed over seeds, and the most
    disputed seed's disagreement and random samples; None when its evaluations kept none."""
    evaluation = most_disputed(row)
    disputes = disputes_of(row, folder)
    if evaluation is None or evaluation.seed not in disputes:
        return None
    disputed = disputes[evaluation.seed]
    title = (
        f"{name(row)} ({row.experiment['sampler']}), training seed {evaluation.seed}: "
        f"{disputed.share_in_dispute:.0%} of {disputed.total} samples classified differently by the two judges"
    )
    kappa = row.score(KAPPA)
    summed_title = f"CNN × k-NN, {seeds_text(disputes)} summed; κ {spread_text(kappa)}"
    caption = (
        f"{title}. Left: the CNN's class (rows) against the k-NN's (columns) of every scored sample, "
        f"{seeds_text(disputes)} summed, the most frequent disagreement framed in red. Middle: the samples of "
        f"seed {evaluation.seed}'s most frequent disagreement ({disputed.caption()}). Right: {len(disputed.random_images)} random "
        f"samples of that seed, each labelled CNN/k-NN. The seed of the {len(row.evaluations)} with the most "
        f"samples in dispute (evaluate run {evaluation.run_id[:8]})."
    )
    figure = disagreement.panel_figure(disputed, title, summed(disputes), summed_title)
    return figures.png_bytes(figure), caption


def disputed_rows(table: Table) -> list[Row]:
    """The rows to draw a panel for: every experiment with evaluations, in the table's order."""
    return [row for row in table.rows if row.evaluations]


def file_name(row: Row) -> str:
    return "disputed_" + "".join(c if c.isalnum() else "_" for c in name(row)) + ".png"


PANELS_NOTE = (
    "The two judges of class identity on the same samples, one panel per experiment. Left: the CNN × k-NN "
    "confusion matrix, every scored sample of every seed summed, with κ (Cohen's kappa) over seeds. Middle: the samples of "
    "the most frequent disagreement (the CNN says a, the k-NN says b) at the training seed with the most "
    "samples the two classify differently. Right: 32 random samples of that seed, each labelled CNN/k-NN, "
    "red where they differ."
)
