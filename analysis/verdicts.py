"""Measured verdicts on the write-up's findings F1–F6 (docs/study.md).

Each finding is split into parts that a metric can test (e.g. "N(1,2) is less realistic than
N(0,1)": FID higher, precision lower); each part compares two scores over seeds with the spread
rule of pipeline/core/scores/spread.py, and the finding's word follows from its parts
(spread.overall). Parts about class identity or coverage are asked of both judges (the CNN and the
k-NN of pipeline/core/judges/knn.py) and hold or are contradicted only when both say so; realism
and clarity stay on the CNN's features.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analysis.dispute_panels import both_unreliable, judges_text
from analysis.tables import Row, Table
from pipeline.core.judges.knn import SUFFIX
from pipeline.core.scores.spread import (
    CLASSIFIER_DEPENDENT,
    CONTRADICTED,
    DISAGREE,
    HOLDS,
    JUDGES_UNRELIABLE,
    NO_DIFFERENCE,
    NO_SPREAD,
    NOT_MEASURED,
    Summary,
    both_judges,
    claim_outcome,
    number,
    overall,
    spread_text,
)

MOST_DIGITS = 7.5  # "covers most digits": at least 8 of the 10 classes covered
FINDING_CLASS = 3  # the digit F6 names
PRELIMINARY = "preliminary: models still improving"
MARKS = {HOLDS: "✓", CONTRADICTED: "✗", DISAGREE: "~", CLASSIFIER_DEPENDENT: "?", JUDGES_UNRELIABLE: "!"}  # else "·"

CLAIMS = {
    "F1": "N(0,1) samples cover most digits but are noisy and blurry.",
    "F2": "N(1,2) samples are noisier and less realistic than N(0,1)'s; both are diverse.",
    "F3": "Beta(0.25,0.25) with BCE: unclear, noisy, worse correspondence to real digits than F1/F2.",
    "F4": "MSE gives sharper digits than BCE, with the same loss of realism under Beta.",
    "F5": "The sampled-params forward makes generations extremely unclear.",
    "F6": "The Beta and modified runs lack diversity: the digit 3 comes up more often than the others.",
}


# The write-up's claims in a few words, for the verdict table (the full claims: CLAIMS)
SHORT_CLAIMS = {
    "F1": "N(0,1): most digits, noisy and blurry",
    "F2": "N(1,2): noisier, less realistic; still diverse",
    "F3": "Beta(0.25,0.25): unclear, further from real digits",
    "F4": "MSE sharper than BCE; loses realism under Beta too",
    "F5": "sampled-params forward: extremely unclear",
    "F6": "Beta and sampled-params: less diverse, digit 3 frequent",
}


@dataclass
class Part:
    """One measurable piece of a finding: what is tested, the outcome, the numbers behind it.

    `subject` names the metric and the experiments ("fid E2 vs E1"), `numbers` their values
    ("220 ± 40 vs 142 ± 5"); `margin` is how many spreads apart the two sides are (|Δmean| /
    (std A + std B)), so the verdict table can show the part that decides a finding."""

    text: str
    outcome: str
    evidence: str
    margin: float = math.inf
    subject: str = ""
    numbers: str = ""
    rows: tuple = ()  # an identity part's experiments, the one it is about first (its disputed digits)


def _margin(a: Summary, b: Summary) -> float:
    if a.n == 0 or b.n == 0:
        return math.nan
    spread = a.std + b.std
    if not math.isfinite(spread):
        return math.nan
    return abs(a.mean - b.mean) / spread if spread > 0 else math.inf


def _part(text: str, outcome: str, subject: str, numbers: str, margin: float) -> Part:
    return Part(text, outcome, f"{subject}: {numbers}", margin, subject, numbers)


# which parts decide a finding whose word is not "holds": the first of these outcomes present
DECIDING_ORDER = (CONTRADICTED, CLASSIFIER_DEPENDENT, JUDGES_UNRELIABLE, DISAGREE, NO_SPREAD, NO_DIFFERENCE)


@dataclass
class Verdict:
    finding: str
    claim: str
    parts: list[Part] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)  # the experiments behind it
    preliminary: bool = False  # a model behind it was still improving fast when its training stopped

    @property
    def short_claim(self) -> str:
        return SHORT_CLAIMS.get(self.finding, self.claim)

    @property
    def outcome(self) -> str:
        return overall([p.outcome for p in self.parts])

    @property
    def word(self) -> str:
        """The outcome, and beside it whether the models behind it had converged."""
        return f"{self.outcome} — {PRELIMINARY}" if self.preliminary and self.outcome != NOT_MEASURED else self.outcome

    def lines(self) -> list[tuple[str, str]]:
        """(mark, 'part: numbers') per measured part, for the part-by-part table."""
        return [
            (
                MARKS.get(p.outcome, "·"),
                f"{p.text}: {p.evidence}" if p.outcome != NOT_MEASURED else f"{p.text}: not measured",
            )
            for p in self.parts
        ]

    def deciding(self) -> Part | None:
        """The part that decides the word: a contradicted one, else (all holding) the one closest to
        the spread, else the first that keeps the finding open; None when nothing was measured."""
        measured = [p for p in self.parts if p.outcome != NOT_MEASURED]
        if not measured:
            return None
        for outcome in DECIDING_ORDER[:1]:
            found = [p for p in measured if p.outcome == outcome]
            if found:
                return found[0]
        if all(p.outcome == HOLDS for p in measured):
            return min(measured, key=lambda p: math.inf if math.isnan(p.margin) else p.margin)
        for outcome in DECIDING_ORDER[1:]:
            found = [p for p in measured if p.outcome == outcome]
            if found:
                return found[0]
        return measured[0]

    def deciding_text(self) -> str:
        """The numbers that decide the word, for the verdict table ("" when nothing was measured)."""
        part = self.deciding()
        if part is None:
            return "no evaluation of the experiments it compares in this study"
        unmeasured = sum(p.outcome == NOT_MEASURED for p in self.parts)
        text = part.evidence
        if unmeasured:
            text += f" ({unmeasured} of {len(self.parts)} parts not measured)"
        return text


def _label(row: Row | None, fallback: str) -> str:
    return (row.study_id or row.name) if row is not None else fallback


def compare_part(
    text: str,
    a_row: Row | None,
    b_row: Row | None,
    metric: str,
    expected: str,
    a_label: str = "",
    b_label: str = "",
    b_metric: str | None = None,
) -> Part:
    """`a_row`'s metric is expected to be `expected` ('greater'/'less') than `b_row`'s (or than
    `b_row`'s `b_metric`, e.g. the real data's reference on the same evaluations)."""
    a = a_row.score(metric) if a_row is not None else Summary(())
    b = b_row.score(b_metric or metric) if b_row is not None else Summary(())
    subject = f"{metric} {a_label or _label(a_row, '?')} vs {b_label or _label(b_row, '?')}"
    return _part(text, claim_outcome(a, b, expected), subject, f"{spread_text(a)} vs {spread_text(b)}", _margin(a, b))


def threshold_part(text: str, row: Row | None, metric: str, threshold: float, expected: str) -> Part:
    a = row.score(metric) if row is not None else Summary(())
    sign = ">" if expected == "greater" else "<"
    return _part(
        text,
        claim_outcome(a, Summary.constant(threshold), expected),
        f"{metric} {_label(row, '?')} ({sign} {number(threshold)} expected)",
        spread_text(a),
        _margin(a, Summary.constant(threshold)),
    )


def identity_part(make: Callable[[str], Part], rows: tuple = ()) -> Part:
    """A part about class identity or coverage, made once per judge (`make(metric suffix)`): it holds
    or is contradicted only when both judges say so, with both judges' numbers and, beside them, each
    judge's accuracy on real digits as blurry as the samples of `rows`. When both judges are
    unreliable there (analysis/dispute_panels.py), the part says so instead of holding or being contradicted."""
    rows = tuple(row for row in rows if row is not None)
    cnn, second = make(""), make(SUFFIX)
    if second.outcome == NOT_MEASURED and cnn.outcome != NOT_MEASURED:
        return Part(
            cnn.text,
            cnn.outcome,
            f"{cnn.evidence} (CNN only: these evaluations have no second judge)",
            cnn.margin,
            cnn.subject,
            cnn.numbers,
            rows,
        )
    margins = [m for m in (cnn.margin, second.margin) if not math.isnan(m)]
    outcome = both_judges(cnn.outcome, second.outcome)
    numbers = f"CNN {cnn.numbers}; k-NN {second.numbers}"
    if outcome != NOT_MEASURED and (weighed := judges_text(list(rows))):
        numbers += f" ({weighed})"
        if both_unreliable(list(rows)) and outcome in (HOLDS, CONTRADICTED, CLASSIFIER_DEPENDENT):
            outcome = JUDGES_UNRELIABLE
    part = _part(cnn.text, outcome, cnn.subject, numbers, min(margins, default=math.nan))
    part.rows = rows
    return part


def class_share_part(
    name: str, row: Row | None, reference: Row | None, shares_of, digit: int = FINDING_CLASS, suffix: str = ""
) -> Part:
    """Digit `digit`'s share of all samples under `row` (experiment `name`) against the reference's,
    by one judge (`suffix`)."""
    text = f"Digit {digit} more frequent under {name} than under E1"
    if row is None or reference is None:
        return Part(text, NOT_MEASURED, "")
    a = Summary.of([s[digit] for s in shares_of(row, suffix).values()])
    b = Summary.of([s[digit] for s in shares_of(reference, suffix).values()])
    return _part(
        text,
        claim_outcome(a, b, "greater"),
        f"share of digit {digit} {_label(row, row.name)} vs {_label(reference, reference.name)}",
        f"{spread_text(a)} vs {spread_text(b)}",
        _margin(a, b),
    )


def finding_verdicts(table: Table, shares_of: Callable[..., dict[int, np.ndarray]]) -> list[Verdict]:
    """F1–F6 on the scores of one evaluation setting. `shares_of(row, suffix)` gives the class shares
    per seed by the CNN (suffix "") or the second judge (knn.SUFFIX)."""
    e1, e2, e3, e4, e5, mse_normal = _measured_rows(table)
    found = (
        (f1_parts(e1), (e1,)),
        (f2_parts(e1, e2), (e1, e2)),
        (f3_parts(e1, e2, e3), (e1, e2, e3)),
        (f4_parts(e3, e4, mse_normal), (e3, e4, mse_normal)),
        (f5_parts(e1, e5), (e1, e5)),
        (f6_parts(e1, e3, e4, e5, shares_of), (e1, e3, e4, e5)),
    )
    return [
        Verdict(f"F{i}", CLAIMS[f"F{i}"], parts, [row for row in rows if row is not None])
        for i, (parts, rows) in enumerate(found, 1)
    ]


def _measured_rows(table: Table) -> list[Row | None]:
    """E1–E5 and the MSE cell under N(0,1); a row with no evaluation under this setting counts as
    absent, so that its parts say "not measured"."""
    rows = [table.row(study_id=f"E{i}") for i in range(1, 6)]
    rows.append(table.row(cell="mse-standard", sampler="normal:0,1"))
    return [row if row and row.evaluations else None for row in rows]


def f1_parts(e1: Row | None) -> list[Part]:
    return [
        identity_part(
            lambda s: threshold_part(
                "E1 covers most digits (at least 8 of 10 classes)", e1, f"classes_covered{s}", MOST_DIGITS, "greater"
            ),
            (e1,),
        ),
        compare_part(
            "E1 blurrier than real digits",
            e1,
            e1,
            "sharpness",
            "less",
            b_label="real test digits",
            b_metric="sharpness_real",
        ),
        compare_part(
            "E1 less realistic than real digits",
            e1,
            e1,
            "fid",
            "greater",
            b_label="real train subset",
            b_metric="fid_floor",
        ),
    ]


def f2_parts(e1: Row | None, e2: Row | None) -> list[Part]:
    return [
        compare_part("E2 less realistic than E1 (FID higher)", e2, e1, "fid", "greater"),
        compare_part("E2 less realistic than E1 (precision lower)", e2, e1, "precision", "less"),
        identity_part(
            lambda s: threshold_part(
                "E2 diverse (at least 8 of 10 classes)", e2, f"classes_covered{s}", MOST_DIGITS, "greater"
            ),
            (e2,),
        ),
    ]


def f3_parts(e1: Row | None, e2: Row | None, e3: Row | None) -> list[Part]:
    return [
        compare_part("E3 further from real digits than E1 (FID)", e3, e1, "fid", "greater"),
        compare_part("E3 further from real digits than E2 (FID)", e3, e2, "fid", "greater"),
        compare_part("E3 less clear than E1 (classifier confidence)", e3, e1, "confidence", "less"),
    ]


def f4_parts(e3: Row | None, e4: Row | None, mse_normal: Row | None) -> list[Part]:
    return [
        compare_part("E4 (MSE) sharper than E3 (BCE), both under Beta(0.25,0.25)", e4, e3, "sharpness", "greater"),
        compare_part(
            "MSE loses realism under Beta too (FID of E4 above MSE with N(0,1))",
            e4,
            mse_normal,
            "fid",
            "greater",
            b_label="mse-standard N(0,1)",
        ),
    ]


def f5_parts(e1: Row | None, e5: Row | None) -> list[Part]:
    return [
        compare_part("E5 less realistic than E1 (FID)", e5, e1, "fid", "greater"),
        compare_part("E5 less clear than E1 (classifier confidence)", e5, e1, "confidence", "less"),
        compare_part("E5 blurrier than E1 (sharpness)", e5, e1, "sharpness", "less"),
    ]


def f6_parts(e1: Row | None, e3: Row | None, e4: Row | None, e5: Row | None, shares_of) -> list[Part]:
    parts = []
    for name, row in (("E3", e3), ("E4", e4), ("E5", e5)):
        parts.append(
            identity_part(
                lambda s, name=name, row=row: compare_part(
                    f"{name} less diverse than E1 (class entropy)", row, e1, f"class_entropy{s}", "less"
                ),
                (row, e1),
            )
        )
        parts.append(
            identity_part(lambda s, name=name, row=row: class_share_part(name, row, e1, shares_of, suffix=s), (row, e1))
        )
    return parts
