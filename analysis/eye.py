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
import numpy as np

from analysis import figures, judges, sources
from analysis.page import Image
from analysis.tables import Table
from pipeline.core.judges import eye
from pipeline.tracking.sessions import EYE_IMAGES, EYE_TABLE, eye_sessions

SHOWN = 32  # disputed images drawn per experiment: 4 rows of 8

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
    image: Image | None = None  # the images the classifiers dispute, labelled CNN/k-NN/eye


@dataclass
class Answers:
    """Every answer of the sessions under a main run (one row per image and rater), and the images by id."""

    rows: list[dict] = field(default_factory=list)
    pixels: dict[str, np.ndarray] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.rows)


@dataclass
class EyeSection:
    """The by-eye part of the page: a hint alone when no session exists."""

    hint: str = ""
    note: str = NOTE
    header: tuple[str, ...] = HEADER
    tables: list[EyeTable] = field(default_factory=list)
    raters: list[str] = field(default_factory=list)  # per rater: sessions, accuracy and false alarms on real digits


def session_answers(main_run_id: str, folder: Path) -> Answers:
    """Every answer of the sessions under the main run, and the images they were given (downloads into `folder`)."""
    answers = Answers()
    for run in eye_sessions(main_run_id):
        answers.rows += mlflow.load_table(EYE_TABLE, run_ids=[run.info.run_id]).to_dict("records")
        local = sources.download(run.info.run_id, EYE_IMAGES, folder)
        if local is not None:
            with np.load(local) as kept:
                answers.pixels.update(zip(kept["image_id"].tolist(), kept["pixels"]))
    return answers


def disputed_image(experiment: str, rows: list[dict], pixels: dict[str, np.ndarray]) -> Image | None:
    """The first SHOWN images of the experiment the CNN and the k-NN dispute, each labelled "CNN/k-NN/eye"
    (every rater's answer, "–" for no digit), red where the eye names neither classifier's digit."""
    disputed = [r for r in unique_images(rows) if int(r["cnn"]) != int(r["knn"]) and r["image_id"] in pixels]
    disputed = sorted(disputed, key=lambda r: int(r["position"]))[:SHOWN]
    if not disputed:
        return None
    from pipeline.core.plots import tile

    padding, columns = 12, min(8, len(disputed))
    figure, axis = figures.plt.subplots(figsize=(1.0 * columns + 0.4, 1.15 * (-(-len(disputed) // columns)) + 0.4))
    shown = np.stack([pixels[r["image_id"]] for r in disputed]).astype(np.float32) / 255
    axis.imshow(tile(shown, 8, padding, 1.0), cmap="gray", vmin=0, vmax=1, interpolation="nearest")
    cell = 28 + padding
    for index, first in enumerate(disputed):
        said = [int(r["eye_digit"]) for r in rows if r["image_id"] == first["image_id"]]
        sided = all(d in (int(first["cnn"]), int(first["knn"])) for d in said)
        text = f"{first['cnn']}/{first['knn']}/" + ",".join("–" if d == eye.NO_DIGIT else str(d) for d in said)
        x, y = (index % columns) * cell + padding + 14, (index // columns) * cell + padding / 2
        axis.text(x, y, text, ha="center", va="center", fontsize=7, color="black" if sided else "red")
    axis.set_axis_off()
    figure.tight_layout()
    caption = (
        f"{experiment}: the images of the set the CNN and the k-NN dispute ({len(disputed)} shown), labelled "
        "CNN/k-NN/eye (every rater's answer; – no digit; red: the eye named neither classifier's digit)"
    )
    alt = f"{experiment}: the disputed images of the set, labelled CNN/k-NN/eye"
    return Image(f"eye_disputed_{eye.metric_key(experiment)}.png", alt, figures.png_bytes(figure), caption)


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


def section(main_run_id: str, answers: Answers) -> EyeSection:
    if not answers:
        return EyeSection(hint=HINT.format(main=main_run_id))
    rows = answers.rows
    tables = []
    for experiment, own in eye.by_experiment(rows).items():
        images = unique_images(own)
        table_rows = [classifier_row("CNN", images, "cnn"), classifier_row("k-NN", images, "knn"), eye_row("eye", own)]
        raters = sorted({r["rater"] for r in own})
        if len(raters) > 1:
            table_rows += [eye_row(f"eye: {rater}", [r for r in own if r["rater"] == rater]) for rater in raters]
        image = disputed_image(experiment, own, answers.pixels)
        tables.append(EyeTable(experiment, f"{experiment}: {disputed_text(own)}", table_rows, image))
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


def judge_lines(table: Table, folder: Path, answers: Answers) -> list[str]:
    """The judges' line of every experiment (analysis/judges.py), the eye's part added where it answered."""
    if not answers:
        return judges.lines(table, folder)
    return [
        text + third_judge(judges.name(row), answers.rows)
        for row in table.rows
        if row.evaluations and (text := judges.line(row, folder))
    ]
