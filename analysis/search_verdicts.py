"""The search report's verdicts as the page shows them, from verify/results.json: per finding its word,
per clause its primary test (raw and Holm-adjusted p) and each metric's difference A − B over the verify
seeds with its 95 % interval, the test, its degrees of freedom and p, and the clauses the pipeline cannot
test. The numbers are the record's, unchanged."""

from __future__ import annotations

import math
from dataclasses import dataclass, field


@dataclass
class VerdictView:
    finding: str
    claim: str
    word: str  # the finding's word with what qualifies it ("holds; precision (...) unsettled")
    outcome: str  # the bare word, for the page's colour
    evidence: str = ""  # per clause, each metric's way and numbers (the summary after its word)
    clauses: list[tuple[str, list[str]]] = field(default_factory=list)  # (clause, one line per part and judge)
    untested: list[str] = field(default_factory=list)


def decimals(low: float, high: float) -> int:
    """Decimals that keep two significant digits of the interval's half-width (> 0)."""
    return max(0, 1 - math.floor(math.log10((high - low) / 2)))


def p_text(p) -> str:
    """A p-value to two significant digits, as the verdicts print it."""
    if p is None or not math.isfinite(p):
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.2g}"


def interval_text(judge: dict) -> str:
    """'−12.3 [95 % CI −20.1, −4.5], paired t, df 2, p 0.004: holds' for one judge's test of one part."""
    low, high, difference = judge["low"], judge["high"], judge["difference"]
    if not (math.isfinite(low) and math.isfinite(high)):
        return f"{'one seed: no interval' if judge['a_values'] else 'not measured'}: {judge['outcome']}"
    if low == high:  # the same difference on every seed: no interval around it
        return f"{difference:+.4g} on every seed (no spread), {judge['test']}: {judge['outcome']}".replace("-", "−")
    places = decimals(low, high)
    signed = lambda value: f"{value:+.{places}f}".replace("-", "−")  # noqa: E731
    text = f"{signed(difference)} [95 % CI {signed(low)}, {signed(high)}], {judge['test']}, df {judge['df']:.3g}"
    if "p_value" in judge:
        text += f", p {p_text(judge['p_value'])}"
    if judge.get("margin") is not None:
        text += f"; within ±{judge['margin']:g}: TOST p {p_text(judge['p_within'])}, beyond it p {p_text(judge['p_beyond'])}"
    needed = judge.get("seeds_needed")
    settle = f" (about {needed} seeds would settle it)" if judge["outcome"] == "unsettled" and needed else ""
    return f"{text}: {judge['outcome']}{settle}"


def part_lines(part: dict) -> list[str]:
    """One line per judge of a part (one line for a metric not judged by class identity)."""
    role = ", primary" if part.get("role") == "primary" else ""
    head = f"{part['label']} ({part['a']} − {part['b']}){role}"
    if part["untested"]:
        return [f"{part['label']}: not tested ({part['untested']})"]
    return [
        f"{head}{', ' + judge['judge'] if judge['judge'] else ''}: {interval_text(judge)}" for judge in part["judges"]
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
