"""tests/rebuild.py: on freshly rendered pages, every primary test of a study page and of a search page,
redone with scipy.stats from the page's own per-seed table, gives the raw and Holm p the page prints
(the committed reports get the same check in test_published.py)."""

from __future__ import annotations

from analysis import page_markdown, search_report, search_verdicts
from pipeline.core.findings import SEARCH_FINDINGS, STUDY_FINDINGS
from pipeline.search import verify
from tests import rebuild
from tests.unit.test_report_page import _content
from tests.unit.test_search_verify import TABLE, results_of

STUDY_VALUES = "| clause | metric | test | A, per seed | B, per seed |"


def check(done: list[dict]) -> None:
    assert done
    for d in done:
        assert rebuild.same(d["printed"], d["p"]), (d["clause"].text, d["printed"], d["p"])
        if d["clause"].decides:
            assert rebuild.same(d["printed_holm"], d["holm"]), (d["clause"].text, d["printed_holm"], d["holm"])
        else:
            assert d["printed_holm"] is None


def study_evidence(markdown: str) -> dict[str, str]:
    rows = rebuild.table_rows(markdown, "| finding | the write-up says | verdict | the numbers, clause by clause |")
    return {row[0].strip("*"): row[3] for row in rows}


def test_every_primary_test_of_a_study_page_is_redone_from_its_own_values():
    markdown = page_markdown.render_markdown(_content())
    done = rebuild.rebuild(STUDY_FINDINGS, study_evidence(markdown), rebuild.table_rows(markdown, STUDY_VALUES))
    check(done)
    assert {d["clause"].text for d in done} >= {"E1 covers most digits", "E1 blurrier than real digits"}


def search_markdown() -> str:
    found = verify.verdicts(results_of(TABLE))
    record = {"seeds": [0, 1, 2], "verdicts": [v.to_dict() for v in found]}
    content = search_report.SearchContent(
        "search", "setup", [search_verdicts.view(v) for v in record["verdicts"]], None, [["sampler"]], [],
        [["latent size"]], "", values=search_verdicts.value_table(record),
    )  # fmt: skip
    return search_report.render_markdown(content)


def test_every_primary_test_of_a_search_page_is_redone_from_its_own_values():
    markdown = search_markdown()
    evidence = {row[0]: row[3] for row in rebuild.table_rows(markdown, search_header(markdown))}
    done = rebuild.rebuild(
        SEARCH_FINDINGS,
        evidence,
        rebuild.table_rows(markdown, "| clause | metric | test | A, per seed | B, per seed |"),
    )
    check(done)
    assert [d["clause"].claim for d in done].count("alike") == 1  # H's equivalence, redone by TOST


def search_header(markdown: str) -> str:
    return next(line for line in markdown.splitlines() if line.startswith("| finding | claim | verdict |"))
