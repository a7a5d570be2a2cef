"""The published results (analysis/results/) and the README's answer agree: every verdict the README
states is the verdict of the committed report it comes from, and those reports were written by
committed code. Nothing in the README's answer is read by hand."""

from __future__ import annotations

import re

from tests.conftest import REPO

RESULTS = REPO / "analysis" / "results"
STUDY = RESULTS / "study" / "report.md"
SEARCH = RESULTS / "search" / "report.md"


def readme_verdicts(findings: tuple[str, ...]) -> dict[str, str]:
    """{finding: verdict} from the README's tables (`| F1 | **holds** | ... |`)."""
    rows = re.findall(r"^\| (F\d|G) \| \*\*([^*]+)\*\* \|", (REPO / "README.md").read_text(), flags=re.M)
    return {finding: word for finding, word in rows if finding in findings}


def study_verdicts() -> dict[str, str]:
    """{finding: verdict} from the study report's opening table (`| **F1** | claim | **holds** | ... |`)."""
    rows = re.findall(r"^\| \*\*(F\d)\*\* \| [^|]+ \| \*\*([^*]+)\*\* \|", STUDY.read_text(), flags=re.M)
    return dict(rows)


def study_parts() -> dict[str, str]:
    """{finding: its parts, `<br>`-separated} from the study report's part-by-part table
    (`| **F1** | holds | ✓ part<br>? part |`; the opening table's rows come first and are replaced)."""
    return dict(re.findall(r"^\| \*\*(F\d)\*\* \| [^*|]+ \| (.+) \|$", STUDY.read_text(), flags=re.M))


def test_the_readme_states_the_published_study_verdicts():
    published = study_verdicts()
    assert sorted(published) == [f"F{i}" for i in range(1, 7)]
    assert readme_verdicts(tuple(published)) == published


def search_verdicts() -> dict[str, str]:
    """{finding: verdict} from the search report's verdict table (`| F7 | claim | **a trade: ...** | parts |`)."""
    return dict(re.findall(r"^\| (F7|F8|G) \| [^|]+ \| \*\*([^*]+)\*\* \|", SEARCH.read_text(), flags=re.M))


def test_the_readme_states_the_published_search_verdicts_over_seeds():
    published = search_verdicts()
    assert sorted(published) == ["F7", "F8", "G"]
    assert readme_verdicts(tuple(published)) == published
    assert re.search(r"over training seeds 0, 1, 2 on the TEST split", SEARCH.read_text())


def test_the_published_reports_come_from_committed_code():
    title = STUDY.read_text().splitlines()[0]
    assert re.search(r"code [0-9a-f]{7} at [0-9a-f]{7}$", title), title  # `+dirty` would follow an edited tree
    row = re.search(r"^\| code version \| (.+) \|$", SEARCH.read_text(), flags=re.M)
    assert row and re.fullmatch(r"[0-9a-f]{7} at [0-9a-f]{7}", row.group(1)), row


def test_the_published_study_measures_f4_in_full_and_weighs_both_judges():
    parts = study_parts()
    assert "MSE loses realism under Beta too" in parts["F4"] and "not measured" not in parts["F4"]
    assert "judges' accuracy on real test digits as blurry as the samples" in parts["F2"]


def test_every_classifier_dependent_part_has_its_disputed_digits_in_front_of_the_reader():
    text, parts = STUDY.read_text(), study_parts()
    disputed = [line for row in parts.values() for line in row.split("<br>") if line.startswith("? ")]
    assert disputed  # F2 and F6 are classifier-dependent in the published study
    for line in disputed:
        for experiment in set(re.findall(r"\bE\d\b", line.split(":")[0])):
            image = RESULTS / "study" / "images" / f"disputed_{experiment}.png"
            assert f"(images/disputed_{experiment}.png)" in text and image.read_bytes().startswith(b"\x89PNG"), line
