"""tests/rebuild.py: on freshly rendered pages, every primary test of a study page and of a search page,
redone with scipy.stats from the page's own per-seed table, gives the raw and Holm p the page prints
(the committed reports get the same check in test_published.py)."""

from __future__ import annotations

from analysis import page_markdown, search_report, search_verdicts
from pipeline.search import verify
from tests import rebuild
from tests.unit.test_report_page import _content
from tests.unit.test_search_verify import TABLE, results_of


def test_every_primary_test_of_a_study_page_is_redone_from_its_own_values():
    markdown = page_markdown.render_markdown(_content())
    done = rebuild.study_page(markdown)
    rebuild.check(done)
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
    done = rebuild.search_page(search_markdown())
    rebuild.check(done)
    assert [d["clause"].claim for d in done].count("alike") == 1  # H's equivalence, redone by TOST
