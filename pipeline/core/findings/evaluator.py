"""The one evaluator: a finding's clauses, tested metric by metric, judge by judge, and one word for it.

Each clause becomes one part per metric of its construct (findings/declarations.py); a metric logged
per judge of class identity is tested once per judge. A part's outcome comes from its 95 % interval
(intervals.py). One combining rule for every finding, the study's and the search's alike:

- a part judged by both judges: their common outcome; `judge-dependent` when the two reach different
  decided outcomes; unsettled when one decides and the other does not (said beside it);
- a finding **holds** when some parts hold and none is contradicted, is **contradicted** when some
  are contradicted and none holds, is **mixed** when some hold and some are contradicted, and is
  **unsettled** when no part is decided; when a part is judge-dependent and the word differs with the
  judge, the finding is **judge-dependent** (both words beside it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol

from pipeline.core.findings import intervals
from pipeline.core.findings.declarations import BETTER, LABELS, LEVEL, REAL, Clause, Finding, Metric, Untested
from pipeline.core.findings.intervals import CONTRADICTED, HOLDS, NOT_MEASURED, UNSETTLED, Interval
from pipeline.core.findings.text import pair_text, signed
from pipeline.core.judges.knn import SUFFIX

JUDGE_DEPENDENT, MIXED = "judge-dependent", "mixed"
JUDGES = (("", "CNN"), (SUFFIX, "k-NN"))
MARKS = {HOLDS: "✓", CONTRADICTED: "✗", UNSETTLED: "~", JUDGE_DEPENDENT: "?", NOT_MEASURED: "·"}
COMBINING_RULE = (
    "A finding holds when some of its parts hold and none is contradicted, is contradicted when some are "
    "contradicted and none holds, is mixed when some hold and some are contradicted, and is unsettled when "
    "no part is decided; the undecided parts of a finding that holds or is contradicted are named beside "
    "its word. A part about class identity or coverage is tested once per judge (the CNN and the k-NN): "
    "it is judge-dependent when the two reach different decided outcomes (the finding then reads "
    "judge-dependent when its word differs with the judge), and unsettled when one decides and the other "
    "does not."
)


class Measurements(Protocol):
    """What the evaluator reads: per subject and metric, {training seed: value} ({} when not measured)."""

    def values(self, subject: str, metric: str) -> dict: ...

    def same_model(self, a: str, b: str) -> bool: ...

    def label(self, subject: str) -> str: ...


@dataclass
class Part:
    """One clause on one metric: per judge (or once, judge ""), the interval of A − B and its outcome."""

    clause: Clause
    metric: Metric
    a: str  # the subject's label
    b: str  # what it is held against: a subject's label, "real digits" or the level
    expected: str  # 'greater' or 'less'
    intervals: list[tuple[str, Interval]] = field(default_factory=list)
    untested: str = ""  # why this metric cannot test the clause

    def outcomes(self) -> dict[str, str]:
        return {judge: interval.outcome(self.expected) for judge, interval in self.intervals}

    @property
    def outcome(self) -> str:
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
        """'A vs B' per judge, rounded alike (`spread=False`: the means alone)."""
        shown = [(judge, pair_text(i.a, i.b, spread)) for judge, i in self.intervals if i.a]
        if not shown:
            return "not measured"
        if len(shown) == 1 and not shown[0][0]:
            return shown[0][1]
        return ", ".join(f"{judge} {text}" for judge, text in shown)

    def snippet(self) -> str:
        """One clause of the verdict cell: the metric, which way it went, and its numbers."""
        if self.untested:
            return f"{self.metric.label} not tested ({self.untested})"
        outcome = self.outcome
        if outcome == NOT_MEASURED:
            return f"{self.metric.label} not measured"
        decided = outcome in (HOLDS, CONTRADICTED)
        if decided:
            went = self.clause.claim if outcome == HOLDS else _opposite(self.clause.claim)
        else:
            went = outcome if not self.note else f"{outcome}: {self.note}"
        return f"{self.metric.label} {went} ({self.numbers(spread=not decided)})"

    def detail(self) -> list[str]:
        """One line per judge: the difference, its interval, the test, and the outcome."""
        lines = []
        for judge, i in self.intervals:
            who = f"{judge}: " if judge else ""
            if not i.measured:
                lines.append(f"{who}{'one seed: no interval' if i.a else 'not measured'}")
                continue
            settle = ""
            if i.outcome(self.expected) == UNSETTLED:
                settle = (
                    f"; about {i.seeds_needed} seeds would settle it"
                    if i.seeds_needed and i.seeds_needed <= intervals.MOST_SEEDS
                    else ("; no difference observed" if not i.seeds_needed else "; over 1000 seeds would be needed")
                )
            lines.append(
                f"{who}{signed(i.difference, i)} [95 % CI {signed(i.low, i)}, {signed(i.high, i)}], {i.kind}, "
                f"df {i.df:.3g}: {i.outcome(self.expected)}{settle}"
            )
        return lines

    def to_dict(self) -> dict:
        return {
            "clause": self.clause.text,
            "construct": self.clause.construct.name,
            "metric": self.metric.name,
            "label": self.metric.label,
            "a": self.a,
            "b": self.b,
            "expected": self.expected,
            "outcome": self.outcome,
            "note": self.note,
            "untested": self.untested,
            "judges": [
                {
                    "judge": judge,
                    "test": i.kind,
                    "a_values": list(i.a),
                    "b_values": list(i.b),
                    "difference": i.difference,
                    "low": i.low,
                    "high": i.high,
                    "df": i.df,
                    "outcome": i.outcome(self.expected),
                    "seeds_needed": i.seeds_needed,
                }
                for judge, i in self.intervals
            ],
        }


def _verb(outcome: str) -> str:
    return {HOLDS: "holds", CONTRADICTED: "contradicts", UNSETTLED: "unsettled"}.get(outcome, outcome)


def _opposite(claim: str) -> str:
    return "worse" if claim == BETTER else "better"


def combine(outcomes: list[str]) -> str:
    """One word from the parts' outcomes (judge-dependent parts resolved before: see `word`)."""
    decided = [o for o in outcomes if o != NOT_MEASURED]
    if not decided:
        return NOT_MEASURED
    held, contradicted = HOLDS in decided, CONTRADICTED in decided
    if held and contradicted:
        return MIXED
    return HOLDS if held else CONTRADICTED if contradicted else UNSETTLED


@dataclass
class FindingVerdict:
    """A finding's parts and the clauses it cannot test; its word follows from COMBINING_RULE."""

    finding: str
    claim: str
    short: str
    parts: list[Part]
    untested: list[Untested]

    def _word_by(self, judge: str | None) -> str:
        outcomes = []
        for part in self.parts:
            if judge is not None and part.outcome == JUDGE_DEPENDENT:
                outcomes.append(part.outcomes().get(judge, NOT_MEASURED))
            else:
                outcomes.append(part.outcome)
        return combine(outcomes)

    @property
    def outcome(self) -> str:
        """holds, contradicted, mixed, unsettled, judge-dependent (or not measured)."""
        if any(p.outcome == JUDGE_DEPENDENT for p in self.parts):
            words = {self._word_by(name) for _, name in JUDGES}
            if len(words) > 1:
                return JUDGE_DEPENDENT
            return words.pop()
        return combine([p.outcome for p in self.parts])

    @property
    def word(self) -> str:
        """The outcome with what qualifies it: each judge's word, or the undecided parts beside it."""
        outcome = self.outcome
        if outcome == JUDGE_DEPENDENT:
            return f"{outcome} ({'; '.join(f'{name}: {self._word_by(name)}' for _, name in JUDGES)})"
        if outcome in (HOLDS, CONTRADICTED):
            said = []
            for state in (UNSETTLED, JUDGE_DEPENDENT):
                labels = dict.fromkeys(p.metric.label for p in self.parts if p.outcome == state)
                if labels:
                    said.append(f"{', '.join(labels)} {state}")
            if said:
                return f"{outcome}; " + "; ".join(said)
        return outcome

    def evidence(self) -> str:
        """Per clause, one snippet per metric with its numbers: what the word rests on."""
        clauses: dict[str, list[str]] = {}
        for part in self.parts:
            if not part.untested:  # the part-by-part table lists those
                clauses.setdefault(part.clause.text, []).append(part.snippet())
        return "; ".join(f"{text}: {', '.join(snippets)}" for text, snippets in clauses.items())

    def summary(self) -> str:
        """The verdict cell: the word, then the evidence."""
        evidence = self.evidence()
        return f"{self.outcome}: {evidence}" if evidence else self.outcome

    def lines(self) -> list[str]:
        """Every part (marked, with its interval per judge) and every clause not tested, for text files."""
        lines = []
        for part in self.parts:
            mark = MARKS.get(part.outcome, "·")
            if part.untested:
                lines.append(f"{mark} {part.clause.text}, {part.metric.label}: not tested ({part.untested})")
                continue
            lines.append(f"{mark} {part.clause.text}, {part.metric.label}: {part.numbers()}")
            lines += [f"    {line}" for line in part.detail()]
        lines += [f"· {u.text}: not tested ({u.reason})" for u in self.untested]
        return lines

    def to_dict(self) -> dict:
        return {
            "finding": self.finding,
            "claim": self.claim,
            "outcome": self.outcome,
            "word": self.word,
            "summary": self.summary(),
            "parts": [p.to_dict() for p in self.parts],
            "untested": [{"text": u.text, "reason": u.reason} for u in self.untested],
        }


def expected_of(clause: Clause, metric: Metric) -> str:
    """'greater' when the claim wants the metric up (better and higher is better, or worse and lower)."""
    return "greater" if (clause.claim == BETTER) == metric.higher_is_better else "less"


def part_of(clause: Clause, metric: Metric, data: Measurements) -> Part:
    """`clause` on `metric`: once, or once per judge for a judged metric."""
    versus = {REAL: "real digits", LEVEL: "" if metric.level is None else f"{metric.level:g}"}
    against = versus.get(clause.versus) if clause.versus in versus else data.label(clause.versus)
    part = Part(clause, metric, data.label(clause.subject), against, expected_of(clause, metric))
    if clause.versus == LEVEL and metric.level is None:
        part.untested = metric.why_no_level
        return part
    if clause.versus == REAL and metric.real is None:
        part.untested = f"no real-digit {metric.label} is logged to compare with"
        return part
    for suffix, judge in JUDGES if metric.judged else (("", ""),):
        own = data.values(clause.subject, metric.name + suffix)
        if clause.versus == LEVEL:
            interval = intervals.threshold(own, metric.level)
        elif clause.versus == REAL:
            interval = intervals.paired(own, data.values(clause.subject, metric.real))
        elif data.same_model(clause.subject, clause.versus):
            interval = intervals.paired(own, data.values(clause.versus, metric.name + suffix))
        else:
            interval = intervals.welch(own, data.values(clause.versus, metric.name + suffix))
        if judge and not own and part.intervals:  # evaluations without a second judge: the CNN alone
            continue
        part.intervals.append((judge, interval))
    return part


def evaluate(finding: Finding, data: Measurements) -> FindingVerdict:
    parts, untested = [], []
    for clause in finding.clauses:
        if isinstance(clause, Untested):
            untested.append(clause)
            continue
        parts += [part_of(clause, metric, data) for metric in clause.construct.metrics]
    return FindingVerdict(finding.name, finding.claim, finding.short, parts, untested)


def evaluate_findings(findings, data: Measurements) -> list[FindingVerdict]:
    return [evaluate(finding, data) for finding in findings]


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
