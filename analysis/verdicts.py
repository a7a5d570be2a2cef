"""Measured verdicts on the write-up's findings F1–F6 (../shared/EXPERIMENTS.md).

Each finding is split into parts that a metric can test (e.g. "N(1,2) is less realistic than
N(0,1)": FID higher, precision lower); each part compares two scores over seeds with the spread
rule of analysis/stats.py, and the finding's word follows from its parts (stats.overall). Parts
about class identity or coverage are asked of both judges (the CNN and the k-NN of
pipeline/core/judge.py) and hold or are contradicted only when both say so; realism and clarity
stay on the CNN's features.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analysis.stats import (
    CLASSIFIER_DEPENDENT,
    CONTRADICTED,
    DISAGREE,
    HOLDS,
    NOT_MEASURED,
    Summary,
    both_judges,
    claim_outcome,
    number,
    overall,
    spread_text,
)
from analysis.tables import Row, Table, real_value
from pipeline.core.judge import SUFFIX

MOST_DIGITS = 7.5  # "covers most digits": at least 8 of the 10 classes covered
FINDING_CLASS = 3  # the digit F6 names
PRELIMINARY = "preliminary: models still improving"
MARKS = {HOLDS: "✓", CONTRADICTED: "✗", DISAGREE: "~", CLASSIFIER_DEPENDENT: "?"}  # anything else: "·"

CLAIMS = {
    "F1": "N(0,1) samples cover most digits but are noisy and blurry.",
    "F2": "N(1,2) samples are noisier and less realistic than N(0,1)'s; both are diverse.",
    "F3": "Beta(0.25,0.25) with BCE: unclear, noisy, worse correspondence to real digits than F1/F2.",
    "F4": "MSE gives sharper digits than BCE, with the same loss of realism under Beta.",
    "F5": "The sampled-params forward makes generations extremely unclear.",
    "F6": "The Beta and modified runs lack diversity: the digit 3 comes up more often than the others.",
}


@dataclass
class Part:
    """One measurable piece of a finding: what is tested, the outcome, the numbers behind it."""

    text: str
    outcome: str
    evidence: str


@dataclass
class Verdict:
    finding: str
    claim: str
    parts: list[Part] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: list[Row] = field(default_factory=list)  # the experiments behind it
    preliminary: bool = False  # a model behind it was still improving fast when its training stopped

    @property
    def outcome(self) -> str:
        return overall([p.outcome for p in self.parts])

    @property
    def word(self) -> str:
        """The outcome, and beside it whether the models behind it had converged."""
        return f"{self.outcome} — {PRELIMINARY}" if self.preliminary and self.outcome != NOT_MEASURED else self.outcome

    def lines(self) -> list[tuple[str, str]]:
        """(mark, 'part: numbers') per measured part, for the verdicts table."""
        return [(MARKS.get(p.outcome, "·"), f"{p.text}: {p.evidence}" if p.outcome != NOT_MEASURED
                 else f"{p.text}: not measured") for p in self.parts]

    def sentences(self) -> str:
        """The verdict as prose: the word, each part with its numbers, the notes, and a plain
        statement where the measurement contradicts the write-up."""
        if self.outcome == NOT_MEASURED:
            missing = "; ".join(p.text for p in self.parts)
            return f"Not measured in this run ({missing})."
        text = [f"{self.outcome.capitalize()}."]
        for part in self.parts:
            if part.outcome == NOT_MEASURED:
                text.append(f"{part.text}: not measured in this run.")
            else:
                text.append(f"{part.text}: {part.evidence}: {part.outcome}.")
        text += self.notes
        contradicted = [p.text for p in self.parts if p.outcome == CONTRADICTED]
        if contradicted:
            text.append(f"The measurement contradicts the write-up here: {'; '.join(contradicted)}.")
        return " ".join(text)


def _label(row: Row | None, fallback: str) -> str:
    return (row.study_id or row.name) if row is not None else fallback


def compare_part(text: str, a_row: Row | None, b_row: Row | None, metric: str, expected: str,
                 a_label: str = "", b_label: str = "", b_metric: str | None = None) -> Part:
    """`a_row`'s metric is expected to be `expected` ('greater'/'less') than `b_row`'s (or than
    `b_row`'s `b_metric`, e.g. the real data's reference on the same evaluations)."""
    a = a_row.score(metric) if a_row is not None else Summary(())
    b = b_row.score(b_metric or metric) if b_row is not None else Summary(())
    outcome = claim_outcome(a, b, expected)
    evidence = (f"{metric} {a_label or _label(a_row, '?')} {spread_text(a)} vs "
                f"{b_label or _label(b_row, '?')} {spread_text(b)}")
    return Part(text, outcome, evidence)


def threshold_part(text: str, row: Row | None, metric: str, threshold: float, expected: str) -> Part:
    a = row.score(metric) if row is not None else Summary(())
    outcome = claim_outcome(a, Summary.constant(threshold), expected)
    sign = ">" if expected == "greater" else "<"
    return Part(text, outcome, f"{metric} {_label(row, '?')} {spread_text(a)} ({sign} {number(threshold)} expected)")


def _mean_text(values: list[float]) -> str:
    return spread_text(Summary.of(values))


def identity_part(make: Callable[[str], Part]) -> Part:
    """A part about class identity or coverage, made once per judge (`make(metric suffix)`): it holds
    or is contradicted only when both judges say so, with both judges' numbers."""
    cnn, second = make(""), make(SUFFIX)
    if second.outcome == NOT_MEASURED and cnn.outcome != NOT_MEASURED:
        return Part(cnn.text, cnn.outcome, f"{cnn.evidence} (CNN only: these evaluations have no second judge)")
    return Part(cnn.text, both_judges(cnn.outcome, second.outcome), f"CNN {cnn.evidence}; k-NN {second.evidence}")


def dominance(row: Row, shares_of: Callable[..., dict[int, np.ndarray]], reference: Row | None,
              suffix: str = "") -> tuple[str, int | None]:
    """Which class one judge finds dominant under `row` over its seeds, with its share against the
    reference sampler's share of that class (F3, F6)."""
    key = row.experiment["sampler_key"]
    dominant = Counter(e.run.data.tags.get(f"max_class{suffix}/{key}") for e in row.evaluations)
    dominant.pop(None, None)
    if not dominant:
        return "", None
    digit, times = dominant.most_common(1)[0]
    digit = int(digit)
    own = [s[digit] for s in shares_of(row, suffix).values()]
    text = (f"{'the k-NN' if suffix else 'the CNN'} finds digit {digit} dominant in {times} of "
            f"{len(row.evaluations)} seeds with {_mean_text(own)} of all samples")
    if reference is not None:
        against = [s[digit] for s in shares_of(reference, suffix).values()]
        text += f" ({_label(reference, reference.name)}: {_mean_text(against)} of that digit)"
    return text, digit


def dominance_note(row: Row, shares_of: Callable[..., dict[int, np.ndarray]], reference: Row | None) -> str:
    """Both judges' dominant digit under `row`, whether they agree, and how much of the CNN's
    histogram rests on confident predictions."""
    cnn, _ = dominance(row, shares_of, reference)
    if not cnn:
        return ""
    text = f"Under {_label(row, row.name)} {cnn}"
    second, _ = dominance(row, shares_of, reference, SUFFIX)
    agree = row.score("judges_agree")
    if second:
        text += (f"; {second}; the two judges name the same dominant digit in {int(sum(agree.values))} of "
                 f"{agree.n} seeds")
    else:
        text += "; no second judge was logged for these evaluations"
    confident, among = row.score("confident_share"), row.score("max_class_share_confident")
    text += f". {spread_text(confident)} of the samples are classified confidently by the CNN (top probability ≥ 0.9)"
    if among.n:
        text += (f", and among those the dominant class holds {spread_text(among)}: the rest of its histogram "
                 "rests on the CNN's less certain guesses.")
    else:
        text += ": no confident prediction at all, so its histogram rests entirely on the CNN's guesses."
    return text


def class_share_part(name: str, row: Row | None, reference: Row | None, shares_of, digit: int = FINDING_CLASS,
                     suffix: str = "") -> Part:
    """Digit `digit`'s share of all samples under `row` (experiment `name`) against the reference's,
    by one judge (`suffix`)."""
    text = f"Digit {digit} more frequent under {name} than under E1"
    if row is None or reference is None:
        return Part(text, NOT_MEASURED, "")
    a = Summary.of([s[digit] for s in shares_of(row, suffix).values()])
    b = Summary.of([s[digit] for s in shares_of(reference, suffix).values()])
    return Part(text, claim_outcome(a, b, "greater"),
                f"share of digit {digit} {_label(row, row.name)} {spread_text(a)} vs "
                f"{_label(reference, reference.name)} {spread_text(b)}")


def judge(table: Table, shares_of: Callable[..., dict[int, np.ndarray]]) -> list[Verdict]:
    """F1–F6 on the scores of one evaluation setting. `shares_of(row, suffix)` gives the class shares
    per seed by the CNN (suffix "") or the second judge (judge.SUFFIX)."""
    e1, e2, e3, e4, e5 = (table.row(study_id=f"E{i}") for i in range(1, 6))
    mse_normal = table.row(cell="mse-standard", sampler="normal:0,1")
    # a row with no evaluation under this setting counts as absent: its parts say "not measured"
    e1, e2, e3, e4, e5, mse_normal = (row if row and row.evaluations else None
                                      for row in (e1, e2, e3, e4, e5, mse_normal))
    verdicts = [Verdict(f"F{i}", CLAIMS[f"F{i}"]) for i in range(1, 7)]
    f1, f2, f3, f4, f5, f6 = verdicts

    for verdict, rows in zip(verdicts, ((e1,), (e1, e2), (e1, e2, e3), (e3, e4, mse_normal), (e1, e5), (e1, e3, e4, e5))):
        verdict.rows = [row for row in rows if row is not None]
    f1.parts += [
        identity_part(lambda s: threshold_part("E1 covers most digits (at least 8 of 10 classes)", e1,
                                               f"classes_covered{s}", MOST_DIGITS, "greater")),
        compare_part("E1 blurrier than real digits", e1, e1, "sharpness", "less", b_label="real test digits",
                     b_metric="sharpness_real"),
        compare_part("E1 less realistic than real digits", e1, e1, "fid", "greater", b_label="real train subset",
                     b_metric="fid_floor"),
    ]
    f2.parts += [
        compare_part("E2 less realistic than E1 (FID higher)", e2, e1, "fid", "greater"),
        compare_part("E2 less realistic than E1 (precision lower)", e2, e1, "precision", "less"),
        identity_part(lambda s: threshold_part("E2 diverse (at least 8 of 10 classes)", e2, f"classes_covered{s}",
                                               MOST_DIGITS, "greater")),
    ]
    f3.parts += [
        compare_part("E3 further from real digits than E1 (FID)", e3, e1, "fid", "greater"),
        compare_part("E3 further from real digits than E2 (FID)", e3, e2, "fid", "greater"),
        compare_part("E3 less clear than E1 (classifier confidence)", e3, e1, "confidence", "less"),
    ]
    if e3 is not None and (text := dominance_note(e3, shares_of, e1)):
        f3.notes.append(text)
    f4.parts += [
        compare_part("E4 (MSE) sharper than E3 (BCE), both under Beta(0.25,0.25)", e4, e3, "sharpness", "greater"),
        compare_part("MSE loses realism under Beta too (FID of E4 above MSE with N(0,1))", e4, mse_normal, "fid",
                     "greater", b_label="mse-standard N(0,1)"),
    ]
    f5.parts += [
        compare_part("E5 less realistic than E1 (FID)", e5, e1, "fid", "greater"),
        compare_part("E5 less clear than E1 (classifier confidence)", e5, e1, "confidence", "less"),
        compare_part("E5 blurrier than E1 (sharpness)", e5, e1, "sharpness", "less"),
    ]
    for name, row in (("E3", e3), ("E4", e4), ("E5", e5)):
        f6.parts.append(identity_part(lambda s, name=name, row=row: compare_part(
            f"{name} less diverse than E1 (class entropy)", row, e1, f"class_entropy{s}", "less")))
        f6.parts.append(identity_part(lambda s, name=name, row=row: class_share_part(name, row, e1, shares_of,
                                                                                     suffix=s)))
        if row is not None and (text := dominance_note(row, shares_of, e1)):
            f6.notes.append(text)
    real_entropy = real_value(table, "class_entropy_real")
    if real_entropy == real_entropy:  # not NaN
        f6.notes.append(f"The test labels' class entropy is {number(real_entropy)} nats (ln 10 = 2.303 for uniform).")
    return verdicts

