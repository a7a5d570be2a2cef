"""Every primary test of a report, redone with scipy.stats from the report's own table of per-seed values,
as a reader would: the raw p of each clause and Holm's adjusted p over the family, to compare with the
numbers the verdict table prints. Only the declarations (which clause decides, what it claims, its
margin) come from the code; every value comes from the page."""

from __future__ import annotations

import math
import re

import numpy as np
from scipy import stats

from pipeline.core.findings import SEARCH_FINDINGS, STUDY_FINDINGS
from pipeline.core.findings.declarations import ALIKE, Clause

P = r"< 0\.0001|[0-9.]+(?:e-?\d+)?"
STUDY_HEADER = "| finding | the write-up says | verdict | the numbers, clause by clause |"
SEARCH_HEADER = "| finding | claim | verdict |"  # the rest of the search table's header names its parts
VALUES_HEADER = "| clause | metric | test | A, per seed | B, per seed |"
SEEDS = re.compile(r"^(?P<label>.*?): (?P<seeds>-?\d+: \S+(?:, -?\d+: \S+)*)$")


def table_rows(markdown: str, header: str) -> list[list[str]]:
    """The body rows of the Markdown table whose header row is `header`."""
    lines = markdown.splitlines()
    start = lines.index(header)
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip().replace("\\|", "|") for cell in line.strip("|").split(" | ")])
    return rows


def values_of(text: str) -> dict[int, float] | float:
    """'E1: 3: 0.81, 4: 0.80' as {3: 0.81, 4: 0.80}; 'the level 0.05' as 0.05."""
    if text.startswith("the level "):
        return float(text.removeprefix("the level "))
    found = SEEDS.match(text)
    assert found, text
    return {int(seed): float(value) for seed, value in (pair.split(": ") for pair in found["seeds"].split(", "))}


def printed(evidence: str, clause: Clause) -> tuple[str, str | None]:
    """The printed raw p and Holm p (None for a sensitivity row) of `clause` in a verdict cell."""
    head = re.escape(clause.text) + (r" \(sensitivity\)" if not clause.decides else "")
    found = re.search(
        head + rf": [a-z -]+ \(.*?, (?:TOST )?p ({P}) \((?:Holm ({P})|raw: decides nothing)\)\)", evidence
    )
    assert found, (clause.text, evidence)
    return found[1], found[2]


def _one_sided(a, b, kind: str, shift: float, side: str) -> float:
    """The one-sided p of (A − B − shift) on `side` by the page's test, straight from scipy."""
    if kind == "Welch t":
        return float(stats.ttest_ind(np.asarray(a) - shift, b, equal_var=False, alternative=side).pvalue)
    differences = np.asarray(a) - np.asarray(b) - shift
    if np.ptp(differences) == 0:  # no spread: certain on its side
        return 0.0 if (differences[0] > 0 if side == "greater" else differences[0] < 0) else 1.0
    return float(stats.ttest_1samp(differences, 0.0, alternative=side).pvalue)


def redo(row: list[str], clause: Clause) -> tuple[float, str]:
    """(p, side) of one judge's primary test from its page row: two-sided, or for an equivalence the
    smaller of its TOST p and its beyond-the-margin p."""
    _, _, test, a_text, b_text = row
    a, b = values_of(a_text), values_of(b_text)
    kind = test.split(",")[0]
    if isinstance(b, float):  # a fixed level
        seeds = sorted(a)
        x, y = [a[s] for s in seeds], [b] * len(seeds)
    elif kind == "Welch t":
        x, y = [a[s] for s in sorted(a)], [b[s] for s in sorted(b)]
    else:
        seeds = sorted(set(a) & set(b))
        x, y = [a[s] for s in seeds], [b[s] for s in seeds]
    if clause.claim == ALIKE:
        m = clause.margin
        within = max(_one_sided(x, y, kind, -m, "greater"), _one_sided(x, y, kind, m, "less"))
        beyond = min(1.0, 2 * min(_one_sided(x, y, kind, m, "greater"), _one_sided(x, y, kind, -m, "less")))
        return (within, "within") if within <= beyond else (beyond, "beyond")
    greater, less = _one_sided(x, y, kind, 0.0, "greater"), _one_sided(x, y, kind, 0.0, "less")
    return min(1.0, 2 * min(greater, less)), "greater" if greater < less else "less"


def holm(p_values: list[float]) -> list[float]:
    """Holm 1979, written out as a reader would: the i-th smallest times (m − i + 1), made monotone."""
    order = np.argsort(p_values)
    adjusted, running = [0.0] * len(p_values), 0.0
    for rank, index in enumerate(order):
        running = max(running, min(1.0, (len(p_values) - rank) * p_values[index]))
        adjusted[index] = running
    return adjusted


def rebuild(findings, evidence: dict[str, str], value_rows: list[list[str]]) -> list[dict]:
    """Per clause of `findings` (the page's evidence per finding, its value rows): the printed and the
    redone raw and Holm p. Clauses with no primary row on the page (not measured) are left out."""
    done = []
    for finding in findings:
        for clause in finding.clauses:
            if not isinstance(clause, Clause):
                continue
            rows = [r for r in value_rows if r[0] == clause.text and "(primary" in r[1]]
            rows = [r for r in rows if not (r[3].endswith(": –") or r[4].endswith(": –"))]  # not measured
            if not rows:
                continue
            tests = [redo(row, clause) for row in rows]
            sides = {side for _, side in tests}
            p = max(p for p, _ in tests) if len(sides) == 1 else 1.0  # both judges must agree
            raw, adjusted = printed(evidence[finding.name], clause)
            done.append({"clause": clause, "p": p, "printed": raw, "printed_holm": adjusted})
    family = [d for d in done if d["clause"].decides]
    for d, adjusted in zip(family, holm([d["p"] for d in family])):
        d["holm"] = adjusted
    return done


def same(printed_p: str, p: float) -> bool:
    """The printed p (two significant digits) is the redone one, allowing for the six digits the page keeps
    of each value (a last digit may round the other way)."""
    if printed_p == "< 0.0001":
        return p < 1.5e-4
    value = float(printed_p)
    return math.isclose(value, p, rel_tol=0.06) or (value == 0 and p < 1e-12)


def study_page(markdown: str) -> list[dict]:
    """`rebuild` on a study page: its verdict table's evidence and its table of every value."""
    evidence = {row[0].strip("*"): row[3] for row in table_rows(markdown, STUDY_HEADER)}
    return rebuild(STUDY_FINDINGS, evidence, table_rows(markdown, VALUES_HEADER))


def search_page(markdown: str) -> list[dict]:
    """`rebuild` on a search page: its verdict table's evidence and its table of every value."""
    header = next(line for line in markdown.splitlines() if line.startswith(SEARCH_HEADER))
    evidence = {row[0]: row[3] for row in table_rows(markdown, header)}
    return rebuild(SEARCH_FINDINGS, evidence, table_rows(markdown, VALUES_HEADER))


def check(done: list[dict]) -> None:
    """Every primary test redone gives the raw p the page prints, and Holm's p where it decides; a clause
    that decides nothing prints no Holm p."""
    assert done
    for d in done:
        assert same(d["printed"], d["p"]), (d["clause"].text, d["printed"], d["p"])
        if d["clause"].decides:
            assert same(d["printed_holm"], d["holm"]), (d["clause"].text, d["printed_holm"], d["holm"])
        else:
            assert d["printed_holm"] is None, (d["clause"].text, d["printed_holm"])
