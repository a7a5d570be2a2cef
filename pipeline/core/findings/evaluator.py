"""The one evaluator: each clause decided by its primary test after Holm's correction, one word per finding.

Each clause (findings/declarations.py) is tested on its primary metric, and on the construct's other
metrics as secondary evidence that decides nothing (parts.py). A metric logged per judge of class
identity is tested once per judge; as a primary, both judges must agree (an intersection-union test:
its p is the larger of the two, and judges pointing opposite ways decide nothing). The primary tests of
one family (the study's clauses, or the search's) are corrected together by Holm's step-down method; a
sensitivity clause (`decides=False`) is reported with its raw p and decides no word. One rule for every
finding, the study's and the search's alike (COMBINING_RULE).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Protocol

from pipeline.core.findings import intervals
from pipeline.core.findings.declarations import ALIKE, BETTER, LABELS, LEVEL, REAL, Clause, Metric, Untested
from pipeline.core.findings.intervals import CONTRADICTED, HOLDS, NOT_MEASURED, UNSETTLED
from pipeline.core.findings.parts import JUDGE_DEPENDENT, JUDGES, Part, finite
from pipeline.core.findings.text import p_text

IN_PART = "in part"
ALPHA = 0.05  # the family-wise error rate Holm's correction keeps
MARKS = {HOLDS: "✓", CONTRADICTED: "✗", UNSETTLED: "~", JUDGE_DEPENDENT: "?", NOT_MEASURED: "·"}
COMBINING_RULE = (
    "Each clause is decided by one primary test, declared with its reason before the confirmation's seeds "
    "were run; the construct's other metrics are shown beside it and decide nothing. A primary judged by "
    "class identity must hold by both judges (an intersection-union test: the larger of the two p-values; "
    "judges pointing opposite ways decide nothing). The primary tests of a family (the study's, or the "
    "search's) are corrected together with Holm's step-down method at a family-wise 5 %, and a clause's "
    "word comes from its adjusted p: it holds when that p is at most 0.05 on the claimed side, is "
    "contradicted when it is on the other side, and is unsettled otherwise. A clause that two things are "
    "alike is tested by two one-sided tests at its declared margin (TOST): it holds when the difference is "
    "shown within the margin and is contradicted when it is shown beyond it. A finding holds when every "
    "tested clause holds, is contradicted when every decided clause is contradicted, is unsettled when no "
    "clause is decided, and otherwise holds in part (its cell names each clause's word). Sensitivity "
    "clauses (readings beyond the write-up) are reported with their raw p and decide no word."
)


class Measurements(Protocol):
    """What the evaluator reads: per subject and metric, {training seed: value} ({} when not measured)."""

    def values(self, subject: str, metric: str) -> dict: ...

    def same_model(self, a: str, b: str) -> bool: ...

    def label(self, subject: str) -> str: ...


def holm(p_values: list[float]) -> list[float]:
    """Holm's step-down adjusted p-values (Holm 1979), in the order given: the i-th smallest times the
    number of p-values not smaller, never below an earlier one, at most 1. NaN stays NaN."""
    order = sorted((p, i) for i, p in enumerate(p_values) if finite(p))
    adjusted, running = [math.nan] * len(p_values), 0.0
    for rank, (p, i) in enumerate(order):
        running = max(running, min(1.0, (len(order) - rank) * p))
        adjusted[i] = running
    return adjusted


@dataclass
class ClauseVerdict:
    """A clause: its primary test (raw and Holm-adjusted p), the secondary evidence, and its word."""

    clause: Clause
    primary: Part
    secondary: list[Part]
    p_raw: float  # the primary test's two-sided p (both judges: the larger); NaN when not measured
    side: str  # where the estimate lies: 'greater'/'less', or for an equivalence 'within'/'beyond'
    note: str = ""  # e.g. the judges pointing opposite ways
    p_adjusted: float = math.nan  # Holm over the family's deciding clauses; NaN for a sensitivity row

    @property
    def p_decisive(self) -> float:
        return self.p_adjusted if self.clause.decides else self.p_raw

    @property
    def outcome(self) -> str:
        if self.primary.untested or self.primary.outcome == NOT_MEASURED:
            return NOT_MEASURED
        if self.note:
            return JUDGE_DEPENDENT if self.primary.outcome == JUDGE_DEPENDENT else UNSETTLED
        if not (finite(self.p_decisive) and self.p_decisive <= ALPHA):
            return UNSETTLED
        if self.clause.claim == ALIKE:
            return HOLDS if self.side == "within" else CONTRADICTED
        return HOLDS if self.side == self.primary.expected else CONTRADICTED

    def primary_text(self) -> str:
        """'density 0.42 vs 0.73, p 0.003 (Holm 0.02)': the number the clause's word rests on."""
        if self.outcome == NOT_MEASURED:
            return f"{self.primary.metric.label} not measured"
        adjusted = f" (Holm {p_text(self.p_adjusted)})" if self.clause.decides else " (raw: decides nothing)"
        test = "TOST p" if self.side == "within" else "p"
        return (
            f"{self.primary.metric.label} {self.primary.numbers(spread=False)}, {test} {p_text(self.p_raw)}{adjusted}"
        )

    def to_dict(self) -> dict:
        return {
            "clause": self.clause.text,
            "quote": self.clause.quote,
            "construct": self.clause.construct.name,
            "primary": self.primary.metric.name,
            "reason": self.clause.reason,
            "claim": self.clause.claim,
            "margin": self.clause.margin,
            "decides": self.clause.decides,
            "p_raw": self.p_raw,
            "p_adjusted": self.p_adjusted,
            "side": self.side,
            "note": self.note,
            "outcome": self.outcome,
        }


@dataclass
class FindingVerdict:
    """A finding's clauses and the clauses it cannot test; its word follows from COMBINING_RULE."""

    finding: str
    claim: str
    short: str
    clauses: list[ClauseVerdict]
    untested: list[Untested]

    @property
    def parts(self) -> list[Part]:
        """Every part: each clause's primary, then its secondary evidence."""
        return [part for c in self.clauses for part in (c.primary, *c.secondary)]

    @property
    def deciding(self) -> list[ClauseVerdict]:
        return [c for c in self.clauses if c.clause.decides]

    @property
    def outcome(self) -> str:
        """holds, contradicted, in part, unsettled (or not measured)."""
        tested = [c.outcome for c in self.deciding if c.outcome != NOT_MEASURED]
        decided = [o for o in tested if o in (HOLDS, CONTRADICTED)]
        if not tested:
            return NOT_MEASURED
        if all(o == HOLDS for o in tested):
            return HOLDS
        if not decided:
            return UNSETTLED
        return CONTRADICTED if all(o == CONTRADICTED for o in decided) else IN_PART

    @property
    def word(self) -> str:
        """The outcome with the clauses that qualify it: each clause's word when it holds in part, the
        undecided ones beside a finding contradicted."""
        outcome = self.outcome
        if outcome in (IN_PART, CONTRADICTED):
            shown = [c for c in self.deciding if c.outcome != HOLDS or outcome == IN_PART]
            shown = [c for c in shown if c.outcome != CONTRADICTED or outcome == IN_PART]
            if shown:
                return f"{outcome}: " + "; ".join(f"{c.clause.text} {_said(c.outcome)}" for c in shown)
        return outcome

    def evidence(self) -> str:
        """Per clause, its word and its primary number: what the finding's word rests on."""
        return "; ".join(
            f"{c.clause.text}{'' if c.clause.decides else ' (sensitivity)'}: {_said(c.outcome)} ({c.primary_text()})"
            for c in self.clauses
            if not c.primary.untested
        )

    def summary(self) -> str:
        """The verdict cell: the word, then the evidence."""
        evidence = self.evidence()
        return f"{self.outcome}: {evidence}" if evidence else self.outcome

    def lines(self) -> list[str]:
        """Every clause (marked, its quote, its primary test raw and adjusted, its evidence), for text files."""
        lines = []
        for c in self.clauses:
            role = "" if c.clause.decides else " [sensitivity: decides nothing]"
            lines.append(f"{MARKS.get(c.outcome, '·')} {c.clause.text}{role} — “{c.clause.quote}”: {c.primary_text()}")
            lines.append(f"    primary {c.primary.metric.label}, because {c.clause.reason}")
            lines += [f"    {line}" for line in c.primary.detail()]
            for part in c.secondary:
                if part.untested:
                    lines.append(f"    · {part.metric.label}: not tested ({part.untested})")
                    continue
                lines.append(f"    secondary {part.metric.label}: {part.numbers()}")
                lines += [f"      {line}" for line in part.detail()]
        lines += [f"· {u.text}: not tested ({u.reason})" for u in self.untested]
        return lines

    def to_dict(self) -> dict:
        return {
            "finding": self.finding,
            "claim": self.claim,
            "outcome": self.outcome,
            "word": self.word,
            "summary": self.summary(),
            "clauses": [c.to_dict() for c in self.clauses],
            "parts": [p.to_dict() for p in self.parts],
            "untested": [{"text": u.text, "reason": u.reason} for u in self.untested],
        }


def _said(outcome: str) -> str:
    return {HOLDS: "holds", CONTRADICTED: "contradicted"}.get(outcome, outcome)


def expected_of(clause: Clause, metric: Metric) -> str:
    """'greater' when the claim wants the metric up (better and higher is better, or worse and lower),
    'less' the other way; ALIKE for an equivalence."""
    if clause.claim == ALIKE:
        return ALIKE
    return "greater" if (clause.claim == BETTER) == metric.higher_is_better else "less"


def part_of(clause: Clause, metric: Metric, data: Measurements, primary: bool = False) -> Part:
    """`clause` on `metric`: once, or once per judge for a judged metric (the margin: the primary's)."""
    versus = {REAL: "real digits", LEVEL: "" if metric.level is None else f"{metric.level:g}"}
    against = versus.get(clause.versus) if clause.versus in versus else data.label(clause.versus)
    part = Part(clause, metric, data.label(clause.subject), against, expected_of(clause, metric), primary=primary)
    if clause.versus == LEVEL and metric.level is None:
        part.untested = metric.why_no_level
        return part
    if clause.versus == REAL and metric.real is None:
        part.untested = f"no real-digit {metric.label} is logged to compare with"
        return part
    test = {"margin": clause.margin if primary else None, "count": metric.count}
    for suffix, judge in JUDGES if metric.judged else (("", ""),):
        own = data.values(clause.subject, metric.name + suffix)
        if clause.versus == LEVEL:
            interval = intervals.threshold(own, metric.level, **test)
        elif clause.versus == REAL:
            interval = intervals.paired(own, data.values(clause.subject, metric.real), **test)
        elif data.same_model(clause.subject, clause.versus):
            interval = intervals.paired(own, data.values(clause.versus, metric.name + suffix), **test)
        else:
            interval = intervals.welch(own, data.values(clause.versus, metric.name + suffix), **test)
        if judge and not own and part.intervals:  # evaluations without a second judge: the CNN alone
            continue
        part.intervals.append((judge, interval))
    return part


def clause_verdict(clause: Clause, data: Measurements) -> ClauseVerdict:
    """The clause's primary test (both judges' intersection-union for a judged metric) and its evidence."""
    primary = part_of(clause, clause.primary, data, primary=True)
    secondary = [part_of(clause, metric, data) for metric in clause.secondary]
    found = [i for _, i in primary.intervals if i.measured]
    if primary.untested or not found or len(found) < len(primary.intervals):
        return ClauseVerdict(clause, primary, secondary, math.nan, "")
    if clause.claim == ALIKE:
        within, beyond = max(i.p_within for i in found), max(i.p_beyond for i in found)
        return ClauseVerdict(
            clause, primary, secondary, min(within, beyond), "within" if within <= beyond else "beyond"
        )
    sides = {i.direction for i in found}
    if len(sides) > 1 or not next(iter(sides)):
        note = "the judges point opposite ways" if len(sides) > 1 else "no difference observed"
        return ClauseVerdict(clause, primary, secondary, 1.0, "", note if len(sides) > 1 else "")
    return ClauseVerdict(clause, primary, secondary, max(i.p_value for i in found), sides.pop())


def evaluate_findings(findings, data: Measurements) -> list[FindingVerdict]:
    """Every finding of one family, its deciding clauses' primary tests corrected together (Holm)."""
    verdicts = []
    for finding in findings:
        clauses = [clause_verdict(c, data) for c in finding.clauses if not isinstance(c, Untested)]
        untested = [c for c in finding.clauses if isinstance(c, Untested)]
        verdicts.append(FindingVerdict(finding.name, finding.claim, finding.short, clauses, untested))
    family = [c for v in verdicts for c in v.deciding]
    for c, adjusted in zip(family, holm([c.p_raw for c in family])):
        c.p_adjusted = adjusted
    return verdicts


class SamplerResults:
    """Measurements of samplers scored on one model per seed ({sampler: {seed: {metric: value}}}):
    every pair of samplers is paired by seed (the search's verification)."""

    def __init__(self, results: dict, labels: dict[str, str] | None = None):
        self.results, self.labels = results, {**LABELS, **(labels or {})}

    def values(self, subject: str, metric: str) -> dict:
        by_seed = self.results.get(subject, {})
        return {int(seed): scores[metric] for seed, scores in by_seed.items() if scores.get(metric) is not None}

    def same_model(self, a: str, b: str) -> bool:
        return True

    def label(self, subject: str) -> str:
        return self.labels.get(subject, subject)
