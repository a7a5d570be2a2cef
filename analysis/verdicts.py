"""The study's verdicts on F1–F6: the findings declared in pipeline/core/findings, measured on one
metrics table.

The declarations and the one evaluator live in the core (the search's verification uses the same);
this module only says where a subject's numbers come from: an experiment's row of the metrics table
(E1–E5, and the MSE model with N(0,1) for F4), its values per training seed, and the class shares
of each judge for the identity clauses (a digit's share, and its lead over the largest other digit).
Rows of one model cell are compared paired by seed; rows of different cells unpaired.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from analysis.tables import Row, Table
from pipeline.core.findings import STUDY_FINDINGS, FindingVerdict, evaluate_findings
from pipeline.core.findings.declarations import LEVEL, REAL, SUBJECT_LABELS
from pipeline.core.findings.evaluator import COMBINING_RULE, MARKS, NOT_MEASURED
from pipeline.core.findings.intervals import INTERVAL_RULE
from pipeline.core.findings.parts import JUDGES
from pipeline.core.findings.text import pair_text

PRELIMINARY = "preliminary: models still improving"
SHARE, LEAD = "share_of_digit_", "lead_of_digit_"


class TableMeasurements:
    """The evaluator's view of one metrics table: {seed: value} per experiment and metric."""

    def __init__(self, table: Table, shares_of: Callable[..., dict[int, np.ndarray]]):
        self.table, self.shares_of = table, shares_of

    def row(self, subject: str) -> Row | None:
        if " " in subject:  # "cell sampler": a sampler of a model beyond E1–E5 (declarations.SUBJECT_LABELS)
            cell, sampler = subject.split(" ", 1)
            row = self.table.row(cell=cell, sampler=sampler)
        else:
            row = self.table.row(study_id=subject)
        return row if row is not None and row.evaluations else None

    def values(self, subject: str, metric: str) -> dict:
        row = self.row(subject)
        if row is None:
            return {}
        if metric.startswith((SHARE, LEAD)):
            return self._digit_values(row, metric)
        return row.values_by_seed(metric)

    def _digit_values(self, row: Row, metric: str) -> dict:
        """A digit's share per seed by one judge, or its lead over the largest other digit's share."""
        suffix = "_judge2" if metric.endswith("_judge2") else ""
        digit = int(metric.removesuffix(suffix).rsplit("_", 1)[1])
        found = {}
        for seed, shares in self.shares_of(row, suffix).items():
            others = np.delete(np.asarray(shares, dtype=float), digit)
            found[seed] = float(shares[digit]) if metric.startswith(SHARE) else float(shares[digit] - others.max())
        return found

    def same_model(self, a: str, b: str) -> bool:
        first, second = self.row(a), self.row(b)
        return first is not None and second is not None and first.experiment["cell"] == second.experiment["cell"]

    def label(self, subject: str) -> str:
        return SUBJECT_LABELS.get(subject, subject)


@dataclass
class Verdict:
    """A finding's verdict on this study, with the rows behind it (for the convergence check)."""

    found: FindingVerdict
    rows: list[Row] = field(default_factory=list)
    preliminary: bool = False  # a model behind it was still improving fast when its training stopped
    data: TableMeasurements | None = None  # where its values came from: the per-seed rows of the appendix

    @property
    def finding(self) -> str:
        return self.found.finding

    @property
    def claim(self) -> str:
        return self.found.claim

    @property
    def short_claim(self) -> str:
        return self.found.short

    @property
    def outcome(self) -> str:
        return self.found.outcome

    @property
    def word(self) -> str:
        word = self.found.word
        return f"{word} — {PRELIMINARY}" if self.preliminary and self.outcome != NOT_MEASURED else word

    def evidence(self) -> str:
        return self.found.evidence() or "no evaluation of the experiments it compares in this study"

    def part_rows(self) -> list[dict]:
        """One row per clause's primary test (raw and Holm-adjusted) and per judge of each part beside it,
        and one per clause not tested: the part-by-part table."""
        rows = []
        for clause in self.found.clauses:
            sensitivity = "" if clause.clause.decides else " (sensitivity: decides nothing)"
            for part in (clause.primary, *clause.secondary):
                if part.untested:
                    rows.append(_row("·", clause.clause.text, part.metric.label, "", "not tested: " + part.untested))
                    continue
                role = "primary" if part.primary else "secondary"
                for (judge, interval), detail in zip(part.intervals, part.detail()):
                    test = detail.removeprefix(f"{judge}: ")
                    mark = MARKS.get(interval.outcome(part.expected), "·")
                    if part.primary:
                        test += f"; {clause.primary_text()}: {clause.outcome}{sensitivity}"
                        mark = MARKS.get(clause.outcome, "·")
                    rows.append(
                        _row(
                            mark,
                            clause.clause.text,
                            f"{part.metric.label} ({', '.join(filter(None, (role, judge)))})",
                            f"{part.a} vs {part.b}: {pair_text(interval.a, interval.b)}",
                            test,
                        )
                    )
        rows += [_row("·", clause.text, "", "", "not tested: " + clause.reason) for clause in self.found.untested]
        return rows

    def value_rows(self) -> list[dict]:
        """Every value each test of this finding reads, per seed and judge: enough to redo each test."""
        if self.data is None:
            return []
        rows = []
        for clause in self.found.clauses:
            for part in (clause.primary, *clause.secondary):
                if part.untested:
                    continue
                for (judge, interval), suffix in zip(part.intervals, _suffixes(part)):
                    own = self.data.values(clause.clause.subject, part.metric.name + suffix)
                    other = _other_values(self.data, clause.clause, part, suffix)
                    rows.append(
                        {
                            "clause": clause.clause.text,
                            "metric": f"{part.metric.label} ({', '.join(filter(None, ('primary' if part.primary else 'secondary', judge)))})",
                            "test": interval.kind
                            + (f", margin ±{interval.margin:g}" if interval.margin is not None else ""),
                            "a": f"{part.a}: {seed_text(own)}",
                            "b": f"{part.b}: {seed_text(other)}" if isinstance(other, dict) else f"the level {other:g}",
                        }
                    )
        return rows


def _suffixes(part) -> list[str]:
    """The metric-name suffix of each judge's interval of a part, in its order."""
    return [suffix for suffix, name in JUDGES if any(name == judge for judge, _ in part.intervals)] or [""]


def _other_values(data: TableMeasurements, clause, part, suffix: str):
    """What a part holds its subject against: a level, the real data's values, or another subject's."""
    if clause.versus == LEVEL:
        return part.metric.level
    if clause.versus == REAL:
        return data.values(clause.subject, part.metric.real)
    return data.values(clause.versus, part.metric.name + suffix)


def seed_text(values: dict) -> str:
    """'3: 0.812345, 4: 0.80912': each seed's value to six significant digits, as the tests read it."""
    return ", ".join(f"{seed}: {float(value):.6g}" for seed, value in sorted(values.items())) or "–"


def _row(mark: str, clause: str, metric: str, numbers: str, test: str) -> dict:
    return {"mark": mark, "clause": clause, "metric": metric, "numbers": numbers, "test": test}


def finding_verdicts(table: Table, shares_of: Callable[..., dict[int, np.ndarray]]) -> list[Verdict]:
    """F1–F6 on the scores of one evaluation setting. `shares_of(row, suffix)` gives the class shares
    per seed by the CNN (suffix "") or the second judge ("_judge2")."""
    data = TableMeasurements(table, shares_of)
    verdicts = []
    for found in evaluate_findings(STUDY_FINDINGS, data):
        subjects = {p.clause.subject for p in found.parts} | {p.clause.versus for p in found.parts}
        rows = [row for subject in sorted(subjects) if (row := data.row(subject)) is not None]
        verdicts.append(Verdict(found, rows, data=data))
    return verdicts


RULES = " ".join((INTERVAL_RULE, COMBINING_RULE))
