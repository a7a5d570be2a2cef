"""analysis/eye.py:
The eye in the report (analysis/eye.py): without a session the page differs from one without the eye by
its one hint line; with answers, the third judge's part of a judges' line and the by-eye tables, counted by hand."""

from __future__ import annotations

import dataclasses
import difflib

import numpy as np

from analysis import eye
from analysis.page_html import render_html
from analysis.page_markdown import render_markdown
from tests.unit.test_report_page import _content

MAIN = "a" * 32


def added_lines(before: str, after: str) -> list[str]:
    diff = list(difflib.ndiff(before.splitlines(), after.splitlines()))
    assert not [line for line in diff if line.startswith("- ")], "a line of the page changed or went"
    return [line[2:] for line in diff if line.startswith("+ ")]


def test_without_a_session_the_page_only_gains_the_hint_line():
    plain = _content()
    hinted = dataclasses.replace(plain, eye=eye.section(MAIN, eye.Answers()))
    hint = eye.HINT.format(main=MAIN)
    assert added_lines(render_html(plain), render_html(hinted)) == [f"<p class='note' id='eye-hint'>{hint}</p>"]
    assert sorted(added_lines(render_markdown(plain), render_markdown(hinted))) == ["", hint]  # and its blank line
    assert f"mlflow run . -e eye -P source={MAIN}" in hint


def row(image, cnn, knn, digit, says, rater="ann", kind="generated", experiment="E5", label=-1):
    return {
        "image_id": image,
        "position": ord(image),
        "kind": kind,
        "experiment": experiment,
        "cnn": cnn,
        "knn": knn,
        "label": label,
        "eye_digit": digit,
        "eye_says": says,
        "rater": rater,
    }


ROWS = [
    row("a", 3, 8, 8, "generated"),
    row("b", 3, 3, 3, "real"),
    row("c", 3, 5, -1, "generated"),
    row("d", 1, 1, 1, "real"),
    row("a", 3, 8, 3, "generated", rater="bob"),
    row("b", 3, 3, 3, "generated", rater="bob"),
    row("c", 3, 5, -1, "generated", rater="bob"),
    row("d", 1, 1, 7, "real", rater="bob"),
    row("r", -1, -1, 4, "real", kind="real", experiment="", label=4),
    row("r", -1, -1, 9, "generated", rater="bob", kind="real", experiment="", label=4),
]


PIXELS = {image: np.full((28, 28), 40 * index, np.uint8) for index, image in enumerate("abcdr")}


def test_the_by_eye_table_puts_the_eye_beside_the_classifiers_on_the_same_images():
    section = eye.section(MAIN, eye.Answers(ROWS, PIXELS))
    assert not section.hint and [t.experiment for t in section.tables] == ["E5"]
    table = {r[0]: r for r in section.tables[0].rows}
    assert list(table) == ["CNN", "k-NN", "eye", "eye: ann", "eye: bob"]
    # the CNN names 3 on 3 of the 4 images; the eye 3 in 3 of 8 answers, "no digit" in 2 of 8, real in 3 of 8
    assert table["CNN"][1:4] == ["4", "3", "75% [19%, 99%] (3 of 4)"]
    assert table["eye"][1:6] == [
        "4 (2 raters)",
        "3",
        "38% [9%, 76%] (3 of 8)",
        "25% [3%, 65%] (2 of 8)",
        "38% [9%, 76%] (3 of 8)",
    ]
    # disputed images a and c (4 answers): the CNN's digit once (bob on a), the k-NN's once (ann on a), neither twice
    caption = section.tables[0].caption
    assert "on the 2 images the CNN and the k-NN dispute (4 answers)" in caption
    assert "the CNN's digit 25% [1%, 81%] (1 of 4), the k-NN's 25% [1%, 81%] (1 of 4), neither 50%" in caption
    assert section.raters == [
        "ann: named the true digit of 100% [3%, 100%] (1 of 1) real test digits, called 0% [0%, 98%] (0 of 1) of them generated",
        "bob: named the true digit of 0% [0%, 98%] (0 of 1) real test digits, called 100% [3%, 100%] (1 of 1) of them generated",
    ]
    assert eye.third_judge("E5", ROWS).startswith(
        "; by eye (4 images, 2 raters): dominant digit 3 38% [9%, 76%] (3 of 8)"
    )
    assert eye.third_judge("E1", ROWS) == ""
    image = section.tables[0].image  # the two disputed images, a and c, with both raters' answers
    assert image.name == "eye_disputed_E5.png" and image.png.startswith(b"\x89PNG")
    assert "(2 shown), labelled CNN/k-NN/eye" in image.caption


def test_the_section_renders_on_both_pages():
    content = dataclasses.replace(_content(), eye=eye.section(MAIN, eye.Answers(ROWS, PIXELS)))
    html, markdown = render_html(content), render_markdown(content)
    assert "<h3 id='by-eye'>By eye: a person as the third judge</h3>" in html
    assert "<table class='eye' data-experiment='E5'>" in html and html.count("<td class='name'>eye: bob</td>") == 1
    assert "### By eye: a person as the third judge" in markdown
    assert "| eye | 4 (2 raters) | 3 | 38% [9%, 76%] (3 of 8) |" in markdown
    assert "eye_disputed_E5.png" in markdown and "eye_disputed_E5.png" in [i.name for i in content.images()]
