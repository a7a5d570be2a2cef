"""analysis/results/, README.md, docs/results.md:
The published results (analysis/results/) and the README's answer agree: every verdict the README
states is the verdict of the committed report it comes from, those reports were written by committed
code, and they hold what a reader needs to redo each test. Nothing in the README's answer is read by hand."""

from __future__ import annotations

import re

from tests.conftest import REPO

RESULTS = REPO / "analysis" / "results"
STUDY = RESULTS / "study" / "report.md"
SEARCH = RESULTS / "search" / "report.md"
STUDY_BF16 = RESULTS / "study-bf16" / "report.md"
WORDS = ("holds", "contradicted", "mixed", "unsettled", "judge-dependent")


def readme_verdicts(findings: tuple[str, ...]) -> dict[str, str]:
    """{finding: verdict} from the README's tables (`| F1 | **holds** | ... |`)."""
    rows = re.findall(r"^\| (F\d|G|H) \| \*\*([^*]+)\*\* \|", (REPO / "README.md").read_text(), flags=re.M)
    return {finding: word for finding, word in rows if finding in findings}


def study_verdicts(report=STUDY) -> dict[str, str]:
    """{finding: verdict} from a study report's opening table (`| **F1** | claim | **holds** | ... |`)."""
    rows = re.findall(r"^\| \*\*(F\d)\*\* \| [^|]+ \| \*\*([^*]+)\*\* \|", report.read_text(), flags=re.M)
    return dict(rows)


def search_verdicts() -> dict[str, str]:
    """{finding: verdict} from the search report's verdict table (`| F7 | claim | **mixed** | parts |`)."""
    return dict(re.findall(r"^\| (F7|F8|G|H) \| [^|]+ \| \*\*([^*]+)\*\* \|", SEARCH.read_text(), flags=re.M))


def study_part_rows() -> list[list[str]]:
    """The cells of every row of the study report's part-by-part table."""
    text = STUDY.read_text()
    table = text[text.index("| finding | clause | metric |") :].split("\n\n")[0].splitlines()[2:]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in table]


def test_the_readme_states_the_published_study_verdicts():
    published = study_verdicts()
    assert sorted(published) == [f"F{i}" for i in range(1, 7)]
    assert readme_verdicts(tuple(published)) == published
    assert all(word.split(";")[0].split(" (")[0] in WORDS for word in published.values()), published


def test_the_readme_states_the_published_search_verdicts_over_seeds():
    published = search_verdicts()
    assert sorted(published) == ["F7", "F8", "G", "H"]
    assert readme_verdicts(tuple(published)) == published
    assert re.search(r"over training seeds 0, 1, 2 on the TEST split", SEARCH.read_text())


def test_the_precision_comparison_in_speed_md_is_the_two_study_reports():
    """docs/speed.md's table of verdicts in float32 and bf16-mixed is read from nowhere but the two reports,
    which name their training precision and come from one commit."""
    rows = re.findall(
        r"^\| (F\d) \| \*\*([^*]+)\*\* \| \*\*([^*]+)\*\* \|$", (REPO / "docs" / "speed.md").read_text(), re.M
    )
    fp32, bf16 = study_verdicts(), study_verdicts(STUDY_BF16)
    assert {f: (a, b) for f, a, b in rows} == {f: (word, bf16[f]) for f, word in fp32.items()}
    fp32_text, bf16_text = STUDY.read_text(), STUDY_BF16.read_text()
    assert "; training precision 32;" in fp32_text and "; training precision bf16-mixed;" in bf16_text
    assert fp32_text.splitlines()[0] == bf16_text.splitlines()[0]  # same preset, day, code


def test_the_published_reports_come_from_committed_code():
    title = STUDY.read_text().splitlines()[0]
    assert re.search(r"code [0-9a-f]{7} at [0-9a-f]{7}$", title), title  # `+dirty` would follow an edited tree
    row = re.search(r"^\| code version \| (.+) \|$", SEARCH.read_text(), flags=re.M)
    assert row and re.fullmatch(r"[0-9a-f]{7} at [0-9a-f]{7}", row.group(1)), row


def test_every_published_study_part_has_its_interval_or_says_why_not():
    rows = study_part_rows()
    assert len(rows) > 40
    for row in rows:
        test = row[-1]
        assert re.match(r"[+−-]?[\d.]+ \[95 % CI [+−-]?[\d.]+, [+−-]?[\d.]+\], (paired|Welch|one-sample) t", test) or (
            test.startswith("not tested: ")
        ), row
    clauses = {row[1][2:] for row in rows}
    assert {"MSE clearer than BCE under N(0,1)", "MSE clearer than BCE under Beta(0.25,0.25)"} <= clauses


def test_the_published_study_weighs_the_judges_on_every_experiment_and_gives_every_seed():
    text = STUDY.read_text()
    for experiment in ("E1", "E2", "E3", "E4", "E5"):
        image = RESULTS / "study" / "images" / f"disputed_{experiment}.png"
        assert f"(images/disputed_{experiment}.png)" in text and image.read_bytes().startswith(b"\x89PNG")
        assert re.search(rf"^- {experiment}: κ ", text, flags=re.M), experiment
    assert "FID (LeNet features)" in text and "not comparable with" in text
    assert "Per training seed" in text


def test_the_published_search_answers_what_it_found():
    text = SEARCH.read_text()
    assert "| searched Beta | beta:" in text and "skewness" in text and "excess kurtosis" in text
    assert "Matched normal: normal:" in text
    for image in ("search_temperatures.png", "search_samples.png"):
        assert f"(images/{image})" in text and (RESULTS / "search" / "images" / image).read_bytes()[:4] == b"\x89PNG"
