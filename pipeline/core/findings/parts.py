"""One clause on one metric: per judge, the test of A − B over seeds, its outcome and how it is written."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.core.findings import intervals
from pipeline.core.findings.declarations import ALIKE, BETTER, Clause, Metric
from pipeline.core.findings.intervals import CONTRADICTED, HOLDS, NOT_MEASURED, SIGN, UNSETTLED, Interval
from pipeline.core.findings.text import count_text, p_text, pair_text, signed
from pipeline.core.judges.knn import SUFFIX

JUDGE_DEPENDENT = "judge-dependent"
JUDGES = (("", "CNN"), (SUFFIX, "k-NN"))


@dataclass
class Part:
    """One clause on one metric: per judge (or once, judge ""), the test of A − B and its outcome."""

    clause: Clause
    metric: Metric
    a: str  # the subject's label
    b: str  # what it is held against: a subject's label, "real digits" or the level
    expected: str  # 'greater', 'less' or 'alike'
    intervals: list[tuple[str, Interval]] = field(default_factory=list)
    untested: str = ""  # why this metric cannot test the clause
    primary: bool = False  # the clause's primary test (the others are evidence beside it)

    def outcomes(self) -> dict[str, str]:
        return {judge: interval.outcome(self.expected) for judge, interval in self.intervals}

    @property
    def outcome(self) -> str:
        """The raw outcome at 5 % (the judges' common one); a primary's decided word is its clause's."""
        found = {judge: o for judge, o in self.outcomes().items() if o != NOT_MEASURED}
        if self.untested or not found:
            return NOT_MEASURED
        if len(set(found.values())) == 1:
            return next(iter(found.values()))
        decided = {o for o in found.values() if o in (HOLDS, CONTRADICTED)}
        return JUDGE_DEPENDENT if len(decided) == 2 else UNSETTLED

    @property
    def note(self) -> str:
        """Beside an unsettled part whose judges differ: which judge decided what."""
        found = self.outcomes()
        if self.outcome != UNSETTLED or len(set(found.values())) < 2:
            return ""
        return ", ".join(f"{judge} {_verb(o)}" for judge, o in found.items())

    @property
    def name(self) -> str:
        return f"{self.metric.label} ({self.a} vs {self.b})"

    def numbers(self, spread: bool = True) -> str:
        """'A vs B' per judge, rounded alike (`spread=False`: the means alone); a count tied on every seed
        as such ('10 of 10 on all 5 seeds')."""
        shown = [(judge, _side_text(i, spread, self.metric.count)) for judge, i in self.intervals if i.a]
        if not shown:
            return "not measured"
        if len(shown) == 1 and not shown[0][0]:
            return shown[0][1]
        return ", ".join(f"{judge} {text}" for judge, text in shown)

    def snippet(self) -> str:
        """One metric of a clause's evidence: which way it went, and its numbers."""
        if self.untested:
            return f"{self.metric.label} not tested ({self.untested})"
        outcome = self.outcome
        if outcome == NOT_MEASURED:
            return f"{self.metric.label} not measured"
        decided = outcome in (HOLDS, CONTRADICTED)
        if self.expected == ALIKE:
            went = {HOLDS: "alike", CONTRADICTED: "different"}.get(outcome, outcome)
        elif decided:
            went = self.clause.claim if outcome == HOLDS else _opposite(self.clause.claim)
        else:
            went = outcome if not self.note else f"{outcome}: {self.note}"
        return f"{self.metric.label} {went} ({self.numbers(spread=not decided)})"

    def detail(self) -> list[str]:
        """One line per judge: the difference, its interval (a count: its range), the test, its raw
        p-values and the raw outcome."""
        return [("" if not judge else f"{judge}: ") + test_line(i, self.expected) for judge, i in self.intervals]

    def to_dict(self) -> dict:
        return {
            "clause": self.clause.text,
            "construct": self.clause.construct.name,
            "metric": self.metric.name,
            "label": self.metric.label,
            "role": "primary" if self.primary else "secondary",
            "a": self.a,
            "b": self.b,
            "expected": self.expected,
            "outcome": self.outcome,
            "note": self.note,
            "untested": self.untested,
            "judges": [interval_record(judge, i, self.expected) for judge, i in self.intervals],
        }


def interval_record(judge: str, i: Interval, expected: str) -> dict:
    """Everything a reader needs to redo one judge's test: the values, the test and its results."""
    return {
        "judge": judge,
        "test": i.kind,
        "a_values": list(i.a),
        "b_values": list(i.b),
        "difference": i.difference,
        "low": i.low,
        "high": i.high,
        "df": i.df,
        "p_greater": i.p_greater,
        "p_less": i.p_less,
        "p_value": i.p_value,
        "margin": i.margin,
        "p_within": i.p_within,
        "p_beyond": i.p_beyond,
        "outcome": i.outcome(expected),
        "seeds_needed": i.seeds_needed,
    }


def test_line(i: Interval, expected: str) -> str:
    """'−0.12 [95 % CI −0.20, −0.05], Welch t, df 7.1, p 0.004: holds' (a count: its range, the exact
    test); an equivalence adds the TOST p at its margin."""
    if not i.measured:
        return "one seed: no test" if i.a else "not measured"
    if i.kind == intervals.PERMUTATION:
        where = f"{signed(i.difference, i)} (difference of the means)"
    elif i.kind == SIGN:
        where = (
            f"{signed(i.difference, i)} on every seed"
            if i.low == i.high
            else f"{signed(i.difference, i)} (range {signed(i.low, i)} to {signed(i.high, i)})"
        )
    elif i.low == i.high:
        where = f"{signed(i.difference, i)} on every seed (no spread)"
    else:
        where = f"{signed(i.difference, i)} [95 % CI {signed(i.low, i)}, {signed(i.high, i)}]"
    df = f", df {i.df:.3g}" if i.kind not in (SIGN, intervals.PERMUTATION) else ""
    tost = ""
    if i.margin is not None:
        tost = f"; within ±{i.margin:g}: TOST p {p_text(i.p_within)}, beyond it p {p_text(i.p_beyond)}"
    settle = ""
    outcome = i.outcome(expected)
    if outcome == UNSETTLED and i.kind not in (SIGN, intervals.PERMUTATION) and expected != ALIKE:
        settle = (
            f"; about {i.seeds_needed} seeds would settle it"
            if i.seeds_needed and i.seeds_needed <= intervals.MOST_SEEDS
            else ("; no difference observed" if not i.seeds_needed else "; over 1000 seeds would be needed")
        )
    return f"{where}, {i.kind}{df}, p {p_text(i.p_value)}{tost}: {outcome}{settle}"


def _side_text(i: Interval, spread: bool, count: bool) -> str:
    return f"{count_text(i.a)} vs {count_text(i.b)}" if count else pair_text(i.a, i.b, spread)


def _verb(outcome: str) -> str:
    return {HOLDS: "holds", CONTRADICTED: "contradicts", UNSETTLED: "unsettled"}.get(outcome, outcome)


def _opposite(claim: str) -> str:
    return "worse" if claim == BETTER else "better"


def finite(value) -> bool:
    return value is not None and math.isfinite(float(value))
