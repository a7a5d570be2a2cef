"""analysis/results/, README.md, docs/results.md:
The published results (analysis/results/) and the README's answer agree: every verdict the README
states is the verdict of the confirmation's committed report, those reports were written by committed
code after the declarations they test, on seeds no earlier publication used, and a reader can redo every
primary test from their own pages. Nothing in the README's answer is read by hand. The exploratory
publications (seeds 0, 1, 2) stay as they were published."""

from __future__ import annotations

import re
import subprocess

from tests import rebuild
from tests.conftest import REPO

RESULTS = REPO / "analysis" / "results"
STUDY = RESULTS / "study-confirmation" / "report.md"
SEARCH = RESULTS / "search-confirmation" / "report.md"
EXPLORATORY_STUDY = RESULTS / "study" / "report.md"
EXPLORATORY_SEARCH = RESULTS / "search" / "report.md"
STUDY_BF16 = RESULTS / "study-bf16" / "report.md"
WORDS = ("holds", "contradicted", "in part", "unsettled")  # the confirmatory words
EXPLORATORY_WORDS = ("holds", "contradicted", "mixed", "unsettled", "judge-dependent")


def readme_verdicts(findings: tuple[str, ...]) -> dict[str, str]:
    """{finding: verdict} from the README's tables (`| F1 | **holds** | ... |`)."""
    rows = re.findall(r"^\| (F\d|G|H) \| \*\*([^*]+)\*\* \|", (REPO / "README.md").read_text(), flags=re.M)
    return {finding: word for finding, word in rows if finding in findings}


def study_verdicts(report=STUDY) -> dict[str, str]:
    """{finding: verdict} from a study report's opening table (`| **F1** | claim | **holds** | ... |`)."""
    rows = re.findall(r"^\| \*\*(F\d)\*\* \| [^|]+ \| \*\*([^*]+)\*\* \|", report.read_text(), flags=re.M)
    return dict(rows)


def search_verdicts(report=SEARCH) -> dict[str, str]:
    """{finding: verdict} from a search report's verdict table (`| F7 | claim | **holds** | parts |`)."""
    return dict(re.findall(r"^\| (F7|F8|G|H) \| [^|]+ \| \*\*([^*]+)\*\* \|", report.read_text(), flags=re.M))


def study_part_rows(report=EXPLORATORY_STUDY) -> list[list[str]]:
    """The cells of every row of a study report's part-by-part table."""
    text = report.read_text()
    table = text[text.index("| finding | clause | metric |") :].split("\n\n")[0].splitlines()[2:]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in table]


def test_the_readme_states_the_confirmation_study_verdicts():
    published = study_verdicts()
    assert sorted(published) == [f"F{i}" for i in range(1, 7)]
    assert readme_verdicts(tuple(published)) == published
    assert all(word.startswith(WORDS) for word in published.values()), published


def test_the_readme_states_the_confirmation_search_verdicts():
    published = search_verdicts()
    assert sorted(published) == ["F7", "F8", "G", "H"]
    assert readme_verdicts(tuple(published)) == published
    assert all(word.startswith(WORDS) for word in published.values()), published


def test_the_confirmation_ran_on_seeds_no_exploratory_publication_used():
    assert "training seeds 3, 4, 5, 6, 7;" in STUDY.read_text().split("\n\n")[1]
    verified = re.search(r"over training seeds ([\d, ]+) on the TEST split", SEARCH.read_text())
    assert verified and "0" not in verified.group(1).split(", "), verified
    for exploratory in (EXPLORATORY_STUDY, STUDY_BF16):
        assert "training seeds 0, 1, 2;" in exploratory.read_text().split("\n\n")[1]
    assert re.search(r"over training seeds 0, 1, 2 on the TEST split", EXPLORATORY_SEARCH.read_text())


def test_the_confirmation_was_declared_before_its_runs():
    """The report names the commit that last declared the findings before the trainings' code; git agrees
    that it is an ancestor of that code, and nothing under the findings' declarations changed between."""
    row = re.search(
        r"^\| findings declared \| ([0-9a-f]{7}) \(.+?\), .+ \(([0-9a-f]{7})\) \|$", STUDY.read_text(), re.M
    )
    assert row, "no 'findings declared' row"
    declared, trained = row.groups()
    git = lambda *args: subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True)  # noqa: E731
    shallow = git("rev-parse", "--is-shallow-repository").stdout.strip() == "true"
    assert not shallow, "a shallow clone lacks the commits this test compares: clone with full history"
    assert git("merge-base", "--is-ancestor", declared, trained).returncode == 0
    assert git("diff", "--quiet", declared, trained, "--", "pipeline/core/findings/").returncode == 0
    title = STUDY.read_text().splitlines()[0]
    assert title.endswith(f" at {trained}"), title  # the study's own code, clean (no +dirty)


def test_every_primary_test_of_the_committed_confirmation_is_redone_from_its_pages():
    rebuild.check(rebuild.study_page(STUDY.read_text()))
    rebuild.check(rebuild.search_page(SEARCH.read_text()))


def test_the_precision_comparison_in_speed_md_is_the_two_exploratory_study_reports():
    """docs/speed.md's table of verdicts in float32 and bf16-mixed is read from nowhere but the two reports,
    which name their training precision and come from one commit."""
    rows = re.findall(
        r"^\| (F\d) \| \*\*([^*]+)\*\* \| \*\*([^*]+)\*\* \|$", (REPO / "docs" / "speed.md").read_text(), re.M
    )
    fp32, bf16 = study_verdicts(EXPLORATORY_STUDY), study_verdicts(STUDY_BF16)
    assert {f: (a, b) for f, a, b in rows} == {f: (word, bf16[f]) for f, word in fp32.items()}
    assert all(word.split(";")[0].split(" (")[0] in EXPLORATORY_WORDS for word in fp32.values()), fp32
    fp32_text, bf16_text = EXPLORATORY_STUDY.read_text(), STUDY_BF16.read_text()
    assert "; training precision 32;" in fp32_text and "; training precision bf16-mixed;" in bf16_text
    assert fp32_text.splitlines()[0] == bf16_text.splitlines()[0]  # same preset, day, code


def test_the_published_reports_come_from_committed_code():
    for study in (STUDY, EXPLORATORY_STUDY):
        title = study.read_text().splitlines()[0]
        assert re.search(r"code [0-9a-f]{7} at [0-9a-f]{7}$", title), title  # `+dirty` would follow an edited tree
    for search in (SEARCH, EXPLORATORY_SEARCH):
        row = re.search(r"^\| code version \| (.+) \|$", search.read_text(), flags=re.M)
        assert row and re.fullmatch(r"[0-9a-f]{7} at [0-9a-f]{7}", row.group(1)), row


def test_every_exploratory_study_part_has_its_interval_or_says_why_not():
    rows = study_part_rows()
    assert len(rows) > 40
    for row in rows:
        test = row[-1]
        assert re.match(r"[+−-]?[\d.]+ \[95 % CI [+−-]?[\d.]+, [+−-]?[\d.]+\], (paired|Welch|one-sample) t", test) or (
            test.startswith("not tested: ")
        ), row
    clauses = {row[1][2:] for row in rows}
    assert {"MSE clearer than BCE under N(0,1)", "MSE clearer than BCE under Beta(0.25,0.25)"} <= clauses


def test_the_published_studies_weigh_the_judges_on_every_experiment_and_give_every_seed():
    for study in (STUDY, EXPLORATORY_STUDY):
        text = study.read_text()
        for experiment in ("E1", "E2", "E3", "E4", "E5"):
            image = study.parent / "images" / f"disputed_{experiment}.png"
            assert f"(images/disputed_{experiment}.png)" in text and image.read_bytes().startswith(b"\x89PNG")
            assert re.search(rf"^- {experiment}: κ ", text, flags=re.M), experiment
        assert "FID (LeNet features)" in text and "not comparable with" in text
        assert "Per training seed" in text


def test_the_published_searches_answer_what_they_found():
    for search in (SEARCH, EXPLORATORY_SEARCH):
        text = search.read_text()
        assert "| searched Beta | beta:" in text and "skewness" in text and "excess kurtosis" in text
        assert "Matched normal: normal:" in text
        for image in ("search_temperatures.png", "search_samples.png"):
            assert f"(images/{image})" in text and (search.parent / "images" / image).read_bytes()[:4] == b"\x89PNG"


def test_the_confirmation_search_accounts_for_every_trial():
    text = SEARCH.read_text()
    rows = rebuild.table_rows(text, "| trial | state | latent size | validation FID (LeNet) | why |")
    assert [int(row[0]) for row in rows] == list(range(int(re.search(r"(\d+) trials this run", text).group(1))))
    assert all(row[1] in ("complete", "pruned", "failed") and row[4] for row in rows), rows
    pruned = [row for row in rows if row[1] == "pruned"]
    assert pruned and all(row[4].startswith("pruned after ") for row in pruned)
