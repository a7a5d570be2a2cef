"""The eye in the report: a person as the third judge (pipeline/steps/eye.py, docs/eye.md).

Where eye runs sit under the main run (sessions no newer session of the same rater replaced), the page
adds the eye to each experiment's line on the judges, and a section "By eye": per experiment, the CNN,
the k-NN and the eye on the same images (the dominant digit and its share, "no digit", the share taken
for real, kappa), how the eye answered on the images the two classifiers dispute, and each rater's
accuracy and false alarms on the real digits. Intervals are exact binomial 95 % intervals over images and
raters (one answer of one rater on one image is the unit), not over training seeds. Without a session,
one line says how to run one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import mlflow

from analysis import judges
from analysis.tables import Table
from pipeline.core.judges import eye
from pipeline.tracking.sessions import EYE_TABLE, eye_sessions

HINT = (
    "By eye: no session on this study yet. A person can judge a blind, shuffled set of its samples and real "
    "test digits in the browser (about 10 minutes for the default 240 images): "
    "mlflow run . -e eye -P source={main} (docs/eye.md)."
)
HEADER = (
    "judge",
    "images",
    "dominant digit",
    "its share [95 % CI]",
    "no digit [95 % CI]",
    "taken for real [95 % CI]",
    "κ with the CNN",
    "κ with the k-NN",
)
NOTE = (
    "A person's answers on a blind set: per experiment, images drawn from the samples its evaluate runs kept "
    "with both classifiers' labels, shuffled with as many real test digits; the page showed one image at a "
    "time and never what it was. The CNN and the k-NN are shown on the same images. Taken for real is "
    "HYPE∞ (Zhou et al. 2019): 50 % means the person could not tell the samples from real digits. κ: "
    "Cohen's kappa (1 identical labels, 0 chance; the eye's “no digit” is a class of its own). Intervals: "
    "exact binomial 95 % intervals over images and raters (one answer of one rater on one image is the "
    "unit), not over training seeds."
)


@dataclass
class EyeTable:
    experiment: str
    caption: str
    rows: list[list[str]]


@dataclass
class EyeSection:
    """The by-eye part of the page: a hint alone when no session exists."""

    hint: str = ""
    note: str = NOTE
    header: tuple[str, ...] = HEADER
    tables: list[EyeTable] = field(default_factory=list)
    raters: list[str] = field(default_factory=list)  # per rater: sessions, accuracy and false alarms on real digits


def session_rows(main_run_id: str) -> list[dict]:
    """Every answer of the sessions under the main run (one row per image and rater)."""
    rows = []
    for run in eye_sessions(main_run_id):
        rows += mlflow.load_table(EYE_TABLE, run_ids=[run.info.run_id]).to_dict("records")
    return rows


def kappa_text(value: float) -> str:
    return "–" if math.isnan(value) else f"{value:.2f}"


def unique_images(rows: list[dict]) -> list[dict]:
    return list({row["image_id"]: row for row in rows}.values())


def classifier_row(name: str, images: list[dict], column: str) -> list[str]:
    """A classifier on the eye's images: its dominant digit and share; its kappa with the other classifier."""
    classes = [int(r[column]) for r in images]
    dominant = max(eye.DIGITS, key=lambda d: (classes.count(d), -d))
    other = "knn" if column == "cnn" else "cnn"
    agreement = kappa_text(eye.kappa(classes, [int(r[other]) for r in images]))
    return [
        name,
        str(len(images)),
        str(dominant),
        eye.share(classes.count(dominant), len(images)).text(),
        "–",
        "–",
        *(("–", agreement) if column == "cnn" else (agreement, "–")),
    ]


def eye_row(name: str, rows: list[dict]) -> list[str]:
    judged = eye.judge_experiment(rows)
    dominant = judged.dominant_share
    return [
        name,
        f"{judged.images} ({judged.raters} rater{'s' if judged.raters > 1 else ''})",
        "–" if judged.dominant is None else str(judged.dominant),
        "–" if dominant is None else dominant.text(),
        judged.no_digit.text(),
        judged.real.text(),
        kappa_text(judged.kappa_cnn),
        kappa_text(judged.kappa_knn),
    ]


def disputed_text(rows: list[dict]) -> str:
    """How the eye answered on the images the two classifiers dispute."""
    disputed = [r for r in rows if int(r["cnn"]) != int(r["knn"])]
    if not disputed:
        return "the CNN and the k-NN agree on every image shown"
    sided = {
        "the CNN": sum(int(r["eye_digit"]) == int(r["cnn"]) for r in disputed),
        "the k-NN": sum(int(r["eye_digit"]) == int(r["knn"]) for r in disputed),
        "neither": sum(int(r["eye_digit"]) not in (int(r["cnn"]), int(r["knn"])) for r in disputed),
    }
    none = sum(int(r["eye_digit"]) == eye.NO_DIGIT for r in disputed)
    return (
        f"on the {len(unique_images(disputed))} images the CNN and the k-NN dispute ({len(disputed)} answers), the "
        "eye named the CNN's digit " + eye.share(sided["the CNN"], len(disputed)).text() + ", the k-NN's "
        f"{eye.share(sided['the k-NN'], len(disputed)).text()}, neither {eye.share(sided['neither'], len(disputed)).text()}"
        f" (“no digit” {none})"
    )


def section(main_run_id: str, rows: list[dict]) -> EyeSection:
    if not rows:
        return EyeSection(hint=HINT.format(main=main_run_id))
    tables = []
    for experiment, own in eye.by_experiment(rows).items():
        images = unique_images(own)
        table_rows = [classifier_row("CNN", images, "cnn"), classifier_row("k-NN", images, "knn"), eye_row("eye", own)]
        raters = sorted({r["rater"] for r in own})
        if len(raters) > 1:
            table_rows += [eye_row(f"eye: {rater}", [r for r in own if r["rater"] == rater]) for rater in raters]
        tables.append(EyeTable(experiment, f"{experiment}: {disputed_text(own)}", table_rows))
    raters = []
    for rater in sorted({r["rater"] for r in rows}):
        real = eye.judge_real([r for r in rows if r["rater"] == rater and r["kind"] == eye.REAL])
        raters.append(
            f"{rater}: named the true digit of {real.accuracy.text()} real test digits, called "
            f"{real.false_alarm.text()} of them generated"
        )
    return EyeSection(tables=tables, raters=raters)


def third_judge(experiment: str, rows: list[dict]) -> str:
    """The eye's part of an experiment's line on the judges ("" without answers on it)."""
    own = eye.by_experiment(rows).get(experiment)
    if not own:
        return ""
    judged = eye.judge_experiment(own)
    dominant = (
        "no digit named"
        if judged.dominant is None
        else f"dominant digit {judged.dominant} {judged.dominant_share.text()}"
    )
    return (
        f"; by eye ({judged.images} images, {judged.raters} rater{'s' if judged.raters > 1 else ''}): {dominant}, "
        f"no digit {judged.no_digit.text()}, κ with the CNN {kappa_text(judged.kappa_cnn)}, with the k-NN "
        f"{kappa_text(judged.kappa_knn)}"
    )


def judge_lines(table: Table, folder: Path, rows: list[dict]) -> list[str]:
    """The judges' line of every experiment (analysis/judges.py), the eye's part added where it answered."""
    if not rows:
        return judges.lines(table, folder)
    return [
        text + third_judge(judges.name(row), rows)
        for row in table.rows
        if row.evaluations and (text := judges.line(row, folder))
    ]
