"""The search report's verdicts as the page shows them, from verify/results.json: per finding its word,
per clause its primary test (raw and Holm-adjusted p) and each metric's difference A − B over the verify
seeds with its 95 % interval, the test, its degrees of freedom and p, and the clauses the pipeline cannot
test. The numbers are the record's, unchanged."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from pipeline.core.findings.intervals import Interval
from pipeline.core.findings.parts import test_line


@dataclass
class VerdictView:
    finding: str
    claim: str
    word: str  # the finding's word with what qualifies it ("holds; precision (...) unsettled")
    outcome: str  # the bare word, for the page's colour
    evidence: str = ""  # per clause, each metric's way and numbers (the summary after its word)
    clauses: list[tuple[str, list[str]]] = field(default_factory=list)  # (clause, one line per part and judge)
    untested: list[str] = field(default_factory=list)


def interval_of(judge: dict) -> Interval:
    """One judge's test as results.json records it (`parts.interval_record`), back as the core's Interval."""

    def number(key: str) -> float:
        value = judge.get(key)
        return math.nan if value is None else float(value)

    return Interval(
        judge["test"], tuple(judge.get("a_values", ())), tuple(judge.get("b_values", ())), number("difference"),
        number("low"), number("high"), number("df"), judge.get("seeds_needed"), number("p_greater"),
        number("p_less"), judge.get("margin"), number("p_within"), number("p_beyond"),
    )  # fmt: skip


def interval_text(judge: dict, expected: str) -> str:
    """One judge's test of one part, written as the study report writes it (`parts.test_line`); a record
    from before the one-sided p's were kept, as its interval and recorded outcome."""
    if "p_greater" not in judge:
        return f"{judge['difference']:+.4g} [95 % CI {judge['low']:+.4g}, {judge['high']:+.4g}], {judge['test']}: {judge['outcome']}"
    return test_line(interval_of(judge), expected)


def part_lines(part: dict) -> list[str]:
    """One line per judge of a part (one line for a metric not judged by class identity)."""
    role = ", primary" if part.get("role") == "primary" else ""
    head = f"{part['label']} ({part['a']} − {part['b']}){role}"
    if part["untested"]:
        return [f"{part['label']}: not tested ({part['untested']})"]
    return [
        f"{head}{', ' + judge['judge'] if judge['judge'] else ''}: {interval_text(judge, part.get('expected', ''))}"
        for judge in part["judges"]
    ]


def view(verdict: dict) -> VerdictView:
    """One finding of the record; an older record's parts (text and evidence, no intervals) as they were."""
    word = verdict.get("word", verdict["outcome"])
    summary = verdict.get("summary", "")
    evidence = summary.removeprefix(f"{verdict['outcome']}: ") if summary != verdict["outcome"] else ""
    shown = VerdictView(verdict["finding"], verdict["claim"], word, verdict["outcome"], evidence)
    clauses: dict[str, list[str]] = {}
    declared = {c["clause"]: c for c in verdict.get("clauses", [])}  # the quote and reason of each clause
    for part in verdict.get("parts", []):
        if "judges" in part:
            found = declared.get(part["clause"])
            said = f" — “{found['quote']}”; primary: {found['reason']}" if found else ""
            clauses.setdefault(f"{part['clause']} ({part['construct']}){said}", []).extend(part_lines(part))
        else:
            clauses.setdefault(part.get("text", ""), []).append(f"{part.get('evidence', '')}: {part['outcome']}")
    shown.clauses = list(clauses.items())
    shown.untested = [f"{u['text']}: not tested ({u['reason']})" for u in verdict.get("untested", [])]
    shown.untested += verdict.get("notes", [])
    return shown


def evidence_cell(shown: VerdictView) -> str:
    """A verdict's evidence, then its clauses and parts, in one Markdown table cell (the word has its own)."""
    clauses = [f"*{clause}*: {'; '.join(lines)}." for clause, lines in shown.clauses]
    return " ".join([*([f"{shown.evidence}."] if shown.evidence else []), *clauses, *shown.untested])


def value_table(record: dict) -> list[list[str]]:
    """Every value each verdict's tests read, per verify seed and judge: enough to redo every test."""
    seeds = [str(seed) for seed in record["seeds"]]
    table = [["clause", "metric", "test", "A, per seed", "B, per seed"]]
    for verdict in record["verdicts"]:
        for part in verdict.get("parts", []):
            for judge in part.get("judges", []):
                role = ", ".join(filter(None, (part.get("role", ""), judge["judge"])))
                margin = f", margin ±{judge['margin']:g}" if judge.get("margin") is not None else ""
                table.append(
                    [
                        part["clause"],
                        f"{part['label']} ({role})" if role else part["label"],
                        judge["test"] + margin,
                        f"{part['a']}: {_per_seed(seeds, judge['a_values'])}",
                        f"{part['b']}: {_per_seed(seeds, judge['b_values'])}",
                    ]
                )
    return table if len(table) > 1 else []


def _per_seed(seeds: list[str], values: list) -> str:
    """'3: 0.812345, 4: …' when there is one value per verify seed (sorted as the tests pair them)."""
    if len(values) != len(seeds):
        return ", ".join(f"{float(v):.6g}" for v in values)
    return ", ".join(f"{seed}: {float(v):.6g}" for seed, v in zip(sorted(seeds, key=str), values))
