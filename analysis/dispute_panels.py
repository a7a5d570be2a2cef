"""Where the two judges of class identity disagree: how far each can be trusted there, and the digits.

Each evaluation measured both judges on real test digits blurred to the sharpness of each sampler's
samples (pipeline/core/evaluation/two_judges.py). A part of a finding about class identity or coverage shows
those accuracies beside it; a judge under UNRELIABLE_BELOW is marked unreliable with its number,
and a part whose judges are both unreliable on its samples says so instead of holding or being
contradicted. Where the judges dispute a row (different dominant digits, or a part they judge
differently), the report shows the disputed digits of the training seed with the most samples in
dispute: 32 the CNN puts in its dominant class beside 32 the k-NN puts in its own.
"""

from __future__ import annotations

from pathlib import Path

from analysis import figures, sources
from analysis.sources import Evaluation
from analysis.tables import Row
from pipeline.core.evaluation.two_judges import CNN_ACCURACY, IN_DISPUTE, KNN_ACCURACY, UNRELIABLE_BELOW
from pipeline.core.judges import disagreement, knn
from pipeline.core.scores.spread import Summary, spread_text

JUDGES = ((CNN_ACCURACY, "CNN"), (KNN_ACCURACY, "k-NN"))


def accuracy(row: Row, metric: str) -> Summary:
    return row.score(metric)


def unreliable(summary: Summary) -> bool:
    return summary.n > 0 and summary.mean < UNRELIABLE_BELOW


def judges_text(rows: list[Row]) -> str:
    """Both judges' accuracy on real digits as blurry as each row's samples, the unreliable ones marked."""
    texts = []
    for row in rows:
        shown = []
        for metric, name in JUDGES:
            summary = accuracy(row, metric)
            if summary.n:
                mark = f" unreliable (under {UNRELIABLE_BELOW})" if unreliable(summary) else ""
                shown.append(f"{name} {spread_text(summary)}{mark}")
        if shown:
            texts.append(f"{row.study_id or row.name}: {', '.join(shown)}")
    if not texts:
        return ""
    return "judges' accuracy on real test digits as blurry as the samples: " + "; ".join(texts)


def both_unreliable(rows: list[Row]) -> bool:
    """Both judges measured and under UNRELIABLE_BELOW on the samples of some row of the part: no
    judge can be trusted with those samples' classes."""
    return any(all(unreliable(accuracy(row, metric)) for metric, _ in JUDGES) for row in rows)


def judges_dispute(row: Row) -> bool:
    """The two judges name different dominant digits under this row in some seed."""
    key = row.experiment["sampler_key"]
    return any(
        e.sampler_tag(key, "max_class") != e.sampler_tag(key, f"max_class{knn.SUFFIX}")
        and e.sampler_tag(key, f"max_class{knn.SUFFIX}") is not None
        for e in row.evaluations
    )


def most_disputed(row: Row) -> Evaluation | None:
    """The evaluation (training seed) of this row with the largest share of samples in dispute."""
    key = row.experiment["sampler_key"]
    scored = [(e.sampler_metric(key, IN_DISPUTE), e.seed, e) for e in row.evaluations]
    scored = [item for item in scored if item[0] is not None]
    if not scored:
        return None
    return max(scored, key=lambda item: (item[0], -item[1]))[2]


def panel(row: Row, folder: Path):
    """(PNG bytes, caption) of the row's disputed digits at its most disputed seed, or None when its
    evaluations kept none."""
    evaluation = most_disputed(row)
    if evaluation is None:
        return None
    key = row.experiment["sampler_key"]
    local = sources.download(evaluation.run_id, f"evaluation/{key}/{disagreement.ARTIFACT}", folder)
    if local is None:
        return None
    disputed = disagreement.Dispute.from_bytes(local.read_bytes())
    name = row.study_id or row.name
    title = (
        f"{name} ({row.experiment['sampler']}), training seed {evaluation.seed}: "
        f"{disputed.share_in_dispute:.0%} of {disputed.total} samples classified differently by the two judges"
    )
    caption = (
        f"{title}. Left: samples the CNN puts in its dominant class; right: samples the k-NN puts in its own; "
        f"the seed of the {len(row.evaluations)} with the most samples in dispute (evaluate run "
        f"{evaluation.run_id[:8]})."
    )
    return figures.png_bytes(disagreement.panel_figure(disputed, title)), caption


def disputed_rows(table) -> list[Row]:
    """The rows to show disputed digits for: every study experiment whose judges name different
    dominant digits in some seed."""
    return [row for row in table.rows if row.study_id and row.evaluations and judges_dispute(row)]


def file_name(row: Row) -> str:
    return "disputed_" + "".join(c if c.isalnum() else "_" for c in (row.study_id or row.name)) + ".png"


PANELS_NOTE = (
    "Where the two judges disagree, the reader decides by eye: for each experiment whose judges name "
    "different dominant digits, or judge a part differently, 32 samples the CNN puts in its dominant "
    "class (left) beside 32 the k-NN puts in its own (right), from the training seed with the most "
    "samples the two classify differently."
)
