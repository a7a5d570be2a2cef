"""The report as a page: one self-contained HTML file (images as data: URIs, inline CSS, no script,
nothing fetched) and a Markdown file with the same content (images as PNG files beside it), both
laid out by the Jinja2 templates under analysis/templates/ from one `Content`.

Both open with the answer: the title (preset, date, code version), one setup line, one convergence
line and the verdict table, the first table of the page; then the samples picture; then the details,
and an appendix with every score.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field

import jinja2

from analysis.dispute_panels import PANELS_NOTE
from analysis.stats import DIRECTIONS
from analysis.tables import HEADLINE, MODEL_METRICS, REAL_METRICS, SAMPLER_METRICS, Row, Table
from analysis.verdicts import Verdict
from pipeline.core.scores.spread import NUMBERS_RULE, Summary, spread_text

IMAGE_FOLDER = "images"


@dataclass
class Image:
    """A picture of the report: embedded in the HTML, a file beside the Markdown."""

    name: str  # file name under images/
    alt: str
    png: bytes
    caption: str = ""

    def data_uri(self) -> str:
        return "data:image/png;base64," + base64.b64encode(self.png).decode("ascii")


@dataclass
class Link:
    label: str
    href: str


@dataclass
class Content:
    """Everything the page shows, already measured: the renderers only lay it out."""

    title: str
    setup: str  # one line: data, epochs, seeds, samples per sampler, judges
    convergence: str  # one line: all trainings converged, or which did not
    converged: bool
    verdicts: list[Verdict]
    disputes: list[str]  # dominant digits and the judges' disagreement: said once, under the verdict table
    verdict_key: str  # one line under the verdict table: what the words mean, where the rules are
    samples: Image | None  # every experiment's grid, its class histogram under it, in one figure
    sample_headings: list[str]  # per experiment: which run and seed its column shows
    samples_note: str
    experiments: list[tuple[str, str, str, str]]  # the write-up's E1-E5: (id, loss, forward, sampler)
    tables: list[Table]
    table_labels: list[str]  # per table: "" when there is one evaluation setting, else "settings 1", ...
    loss_curves: Image | None
    latent: Image | None
    interpolation: Image | None
    latent_note: str
    rules: str  # how a verdict is decided, in full
    provenance: list[tuple[str, str]]  # (label, value)
    runs: list[tuple[str, str, str, str, str, Link]]  # (step, what, code version or "", status, convergence, link)
    settings_json: dict = field(default_factory=dict)
    dispute_panels: list[Image] = field(default_factory=list)  # the disputed digits, one per disputed experiment

    def images(self) -> list[Image]:
        shown = (self.samples, self.loss_curves, self.latent, self.interpolation, *self.dispute_panels)
        return [i for i in shown if i is not None]


def direction_text(column: str) -> str:
    direction = DIRECTIONS.get(column)
    if direction is None:
        return "not ranked"
    if direction.startswith("closer:"):
        return f"best: closest to {direction.split(':', 1)[1]}; not starred"
    return f"best: {direction}"


SEPARATE_SETTINGS = (
    "These evaluations were made under different settings (sample count, importance samples, "
    "evaluation seed or classifier run; listed under Provenance): their scores are never averaged "
    "or ranked together, so each setting has its own table and the best marks hold within a table "
    "only."
)
TABLE_NOTE = (
    "★ marks the best mean of a column where best is a direction: lower fid and max_class_share; higher "
    "precision, recall, classes_covered and confidence. sharpness and class_entropy carry no ★: their "
    "best is closest to the real test digits (below the table), and noise is sharp too. nll is the model's "
    "(one value per model cell, importance-sampled) and is not ranked: the BCE cells' continuous-Bernoulli "
    "and the MSE cell's Gaussian likelihood are different quantities. Rows E1–E5 are the write-up's own "
    "experiments; every score: appendix."
)
APPENDIX_NOTE = (
    "Every score the evaluate step logs, per sampler; then the model's own, once per model cell "
    "(neg_elbo and nll per image in nats, active_units: latent dimensions the encoder uses)."
)
COLUMN_NAMES = {"classes_covered": "classes covered", "max_class_share": "max class share"}


def experiment_cells(row: Row) -> tuple[str, str, str]:
    experiment = row.experiment
    return experiment["name"], experiment["cell"], experiment["sampler"]


def model_value(group: list[Row], metric: str) -> str:
    return spread_text(group[0].scores.get(metric) or Summary(()))


def real_line(table: Table) -> str:
    """The real data's yardsticks, measured by the same code in the same evaluations."""
    parts = []
    for metric in REAL_METRICS:  # one value per evaluate run (rows of one cell share their runs)
        by_run = {
            e.run_id: e.metric(metric) for row in table.rows for e in row.evaluations if e.metric(metric) is not None
        }
        if by_run:
            parts.append(f"{metric} {spread_text(Summary.of(list(by_run.values())))}")
    return ", ".join(parts)


@dataclass
class Score:
    """One cell of a metrics table."""

    metric: str
    text: str
    best: bool = False


@dataclass
class MetricsRow:
    """One experiment's row of a metrics table; the model's own scores are shown once per model cell."""

    name: str
    study: bool  # one of the write-up's experiments E1-E5
    labels: tuple[str, str, str]  # experiment, cell, sampler
    scores: list[Score]
    model: list[Score]
    first: bool  # the first row of its model cell: the one that shows `model`
    span: int  # the rows of its model cell


@dataclass
class TableView:
    """One evaluation setting's tables as the templates lay them out: headline, appendix, models."""

    label: str
    settings: str
    real: str
    headline: list[MetricsRow]
    appendix: list[MetricsRow]
    models: list[tuple[str, int, list[Score]]]  # (model cell, trainings, its scores)

    @classmethod
    def of(cls, table: Table, label: str) -> TableView:
        models = [
            (group[0].experiment["cell"], len(group[0].seeds), [Score(c, model_value(group, c)) for c in MODEL_METRICS])
            for group in table.by_cell()
        ]
        return cls(
            label,
            table.settings,
            real_line(table),
            metrics_rows(table, HEADLINE[:-1], HEADLINE[-1:]),
            metrics_rows(table, SAMPLER_METRICS, ()),
            models,
        )


def metrics_rows(table: Table, columns: tuple[str, ...], model_columns: tuple[str, ...]) -> list[MetricsRow]:
    """The rows grouped by model cell, so that a model's own scores can span its cell's rows."""
    rows = []
    for group in table.by_cell():
        model = [Score(column, model_value(group, column)) for column in model_columns]
        for index, row in enumerate(group):
            scores = [Score(c, spread_text(row.scores[c]), row.name in table.best.get(c, set())) for c in columns]
            rows.append(
                MetricsRow(row.name, bool(row.study_id), experiment_cells(row), scores, model, index == 0, len(group))
            )
    return rows


def headers(columns: tuple[str, ...]) -> list[tuple[str, str]]:
    """(heading, which way is best) per metric column."""
    return [(COLUMN_NAMES.get(c, c), direction_text(c)) for c in columns]


def word_class(word: str) -> str:
    """The CSS class of a verdict's word."""
    if word.startswith("holds"):
        return "holds"
    if word.startswith("contradicted"):
        return "contradicted"
    return "trade" if word.startswith("mixed") else "inconclusive"


def markdown_cell(text) -> str:
    """Text kept on one line of a Markdown table or list, its pipes escaped (the `cell` filter)."""
    return str(text).replace("|", "\\|").replace("\n", " ")


# HTML templates are autoescaped, Markdown ones are not (their table cells go through `cell`)
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("analysis", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
TEMPLATES.filters.update(cell=markdown_cell, word_class=word_class)
TEMPLATES.globals.update(IMAGE_FOLDER=IMAGE_FOLDER)


def render(template: str, **context) -> str:
    """One page from a template under analysis/templates/."""
    return TEMPLATES.get_template(template).render(**context)


def study_context(content: Content) -> dict:
    """What report.html and report.md lay out: the content, its tables as rows of cells, the notes."""
    return {
        "c": content,
        "title": content.title,
        "tables": [TableView.of(table, label) for table, label in zip(content.tables, content.table_labels)],
        "headline": headers(HEADLINE),
        "appendix": headers(SAMPLER_METRICS),
        "model_metrics": MODEL_METRICS,
        "versions": any(version for _, _, version, _, _, _ in content.runs),
        "settings_json": json.dumps(content.settings_json, indent=2),
        "notes": {
            "panels": PANELS_NOTE,
            "numbers": NUMBERS_RULE,
            "table": TABLE_NOTE,
            "separate": SEPARATE_SETTINGS,
            "appendix": APPENDIX_NOTE,
        },
    }
