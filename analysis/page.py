"""The report as a page: one self-contained HTML file (images as data: URIs, inline CSS, no script,
nothing fetched) and a Markdown file with the same content (images as PNG files beside it), both
laid out by the Jinja2 templates under analysis/templates/ from one `Content`.

Both open with the answer: the title (preset, date, code version), one setup line, one convergence
line and the verdict table, the first table of the page; then the samples picture; then the details,
and an appendix with every score, over seeds and per training seed.
"""

from __future__ import annotations

import base64
import json
import math
from dataclasses import dataclass, field

import jinja2

from analysis.dispute_panels import PANELS_NOTE
from analysis.stats import DIRECTIONS
from analysis.tables import (
    FID_LABEL,
    FID_NOTE,
    HEADLINE,
    MODEL_METRICS,
    REAL_METRICS,
    SAMPLER_METRICS,
    Row,
    Table,
    Training,
    seed_groups,
)
from analysis.verdicts import Verdict
from pipeline.core.scores.spread import NUMBERS_RULE, Summary, number, spread_text
from pipeline.tracking.descriptions import markdown_cell

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
    trainings: list[Training] = field(default_factory=list)  # every trained model with its train run's test_loss
    eye: object | None = None  # analysis.eye.EyeSection: a person as the third judge, or the hint to run one

    def images(self) -> list[Image]:
        shown = (self.samples, self.loss_curves, self.latent, self.interpolation, *self.dispute_panels)
        shown += tuple(t.image for t in getattr(self.eye, "tables", ()))
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
    f"★ marks the best mean of a column where best is a direction: lower {FID_LABEL} and max class share; higher "
    "precision, recall, classes_covered and confidence. sharpness and class_entropy carry no ★: their "
    "best is closest to the real test digits (below the table), and noise is sharp too. nll is the model's "
    "(one value per model cell, importance-sampled) and is not ranked: the BCE cells' continuous-Bernoulli "
    "and the MSE cell's Gaussian likelihood are different quantities. Rows E1–E5 are the write-up's own "
    "experiments; every score: appendix."
)
APPENDIX_NOTE = (
    "Every score the evaluate step logs, per sampler; then the model's own, once per model cell "
    "(neg_elbo and nll per image in nats, active_units: latent dimensions the encoder uses). Then every "
    "value per training seed, so that any paired or Welch test can be redone by hand: the per-sampler "
    "metrics one row per experiment and seed, in groups; the model's own one row per model cell and seed, "
    "with the train run's test_loss (the test split's −ELBO in the training loss's units). Four significant "
    "digits, more where the seeds differ by less (two significant digits of their spread); whole numbers exact."
)
ELBO_REFERENCE = (
    "≈ 106.7 nats at epoch 7 for the standard PyTorch VAE example (784-400-20, batch 128, Adam 1e-3; "
    "docs/study.md's reference figures)"
)
COLUMN_NAMES = {
    "fid": FID_LABEL,
    "fid_floor": f"{FID_LABEL} of a real training subset",
    "classes_covered": "classes covered",
    "max_class_share": "max class share",
    "test_loss": "test_loss (train run)",
}


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
            parts.append(f"{COLUMN_NAMES.get(metric, metric)} {spread_text(Summary.of(list(by_run.values())))}")
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
class SeedTable:
    """Values per training seed of one group of metrics: one row per experiment (or model cell) and seed."""

    title: str
    first: str  # the naming column's heading
    columns: list[tuple[str, str]]  # (heading, which way is best)
    rows: list[tuple[str, int, list[Score]]]  # (experiment or model cell, seed, one value per column)


def seed_text(value: float | None, spread: float) -> str:
    """One seed's value: four significant digits, more where the seeds differ by less (two significant
    digits of their spread), so that a test redone from the printed values finds the same differences;
    whole numbers exact; "–" where not measured."""
    text = number(value)
    if text == "–" or float(value).is_integer() or "e" in text or not spread > 0:
        return text
    decimals = 1 - math.floor(math.log10(spread))
    return f"{value:.{decimals}f}" if decimals > len(text.partition(".")[2]) else text


def seed_scores(values: dict[str, dict[int, float]], seed: int) -> list[Score]:
    """One seed's value of each metric (seed_text), its spread taken over the row's seeds."""
    spreads = {metric: Summary.of(list(by_seed.values())).std for metric, by_seed in values.items()}
    return [Score(metric, seed_text(by_seed.get(seed), spreads[metric])) for metric, by_seed in values.items()]


def sampler_seed_tables(table: Table) -> list[SeedTable]:
    """Every per-sampler metric per experiment and seed, one table per group of metrics."""
    found = []
    for title, metrics in seed_groups():
        rows = []
        for row in table.rows:
            values = {metric: row.values_by_seed(metric) for metric in metrics}
            rows += [(row.name, seed, seed_scores(values, seed)) for seed in row.seeds]
        found.append(SeedTable(title, "experiment", headers(metrics), rows))
    return found


def model_seed_table(table: Table, trainings: list[Training]) -> SeedTable:
    """The model's own metrics per model cell and seed, with its train run's test_loss."""
    rows = []
    for group in table.by_cell():
        cell = group[0].experiment["cell"]
        values: dict[str, dict[int, float]] = {metric: {} for metric in MODEL_METRICS}
        for row in group:  # the model's figures are the evaluate run's: the same for every sampler row
            for metric in MODEL_METRICS:
                values[metric].update(row.values_by_seed(metric))
        values["test_loss"] = {t.seed: t.test_loss for t in trainings if t.cell == cell and t.test_loss is not None}
        seeds = sorted({seed for row in group for seed in row.seeds} | {t.seed for t in trainings if t.cell == cell})
        rows += [(cell, seed, seed_scores(values, seed)) for seed in seeds]
    return SeedTable("the model's own", "model cell", headers((*MODEL_METRICS, "test_loss")), rows)


def elbo_line(trainings: list[Training]) -> str:
    """The test −ELBO of each BCE model in nats, over seeds, beside the reference; "" without trainings."""
    if not trainings:
        return ""
    cells: dict[tuple[str, str], list[Training]] = {}
    for training in trainings:
        cells.setdefault((training.cell, training.loss), []).append(training)
    measured = []
    for (cell, loss), group in cells.items():
        if loss == "bce":
            summary = Summary.of([t.test_loss for t in group], [t.seed for t in group])
            many = f" ({summary.n} seeds)" if summary.n > 1 else ""
            measured.append(f"{cell} {spread_text(summary) if summary.n else 'not logged'}{many}")
    text = (
        "Test −ELBO of each BCE model in nats per image (the train run's test_loss on the test split, mean ± sd "
        f"over seeds): {'; '.join(measured) or 'no BCE model in this study'}. Reference: {ELBO_REFERENCE}."
    )
    sampled = sorted({t.cell for t in trainings if t.loss == "bce" and t.forward != "standard"})
    if sampled:
        text += (
            f" {', '.join(sampled)}: the loss of its own forward pass, reconstruction at z drawn with perturbed "
            "posterior parameters beside the unperturbed posterior's KL term, so not a proper −ELBO."
        )
    other = sorted({cell for cell, loss in cells if loss != "bce"})
    if other:
        text += (
            f" Not listed: {', '.join(other)}, whose test_loss is a squared error plus KL (a Gaussian −ELBO "
            "without its normalizing constant), not a likelihood in these nats."
        )
    return text


@dataclass
class TableView:
    """One evaluation setting's tables as the templates lay them out: headline, appendix, models, per seed."""

    label: str
    settings: str
    real: str
    headline: list[MetricsRow]
    appendix: list[MetricsRow]
    models: list[tuple[str, int, list[Score]]]  # (model cell, trainings, its scores)
    seeds: list[SeedTable]  # the per-sampler groups, then the model's own

    @classmethod
    def of(cls, table: Table, label: str, trainings: list[Training]) -> TableView:
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
            [*sampler_seed_tables(table), model_seed_table(table, trainings)],
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


# HTML templates are autoescaped, Markdown ones are not (their table cells go through `cell`)
TEMPLATES = jinja2.Environment(
    loader=jinja2.PackageLoader("analysis", "templates"),
    autoescape=jinja2.select_autoescape(["html"]),
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
TEMPLATES.filters.update(cell=markdown_cell, word_class=word_class)  # cell: one line, pipes escaped
TEMPLATES.globals.update(IMAGE_FOLDER=IMAGE_FOLDER)


def render(template: str, **context) -> str:
    """One page from a template under analysis/templates/."""
    return TEMPLATES.get_template(template).render(**context)


def study_context(content: Content) -> dict:
    """What report.html and report.md lay out: the content, its tables as rows of cells, the notes."""
    return {
        "c": content,
        "title": content.title,
        "tables": [
            TableView.of(table, label, content.trainings) for table, label in zip(content.tables, content.table_labels)
        ],
        "elbo": elbo_line(content.trainings),
        "headline": headers(HEADLINE),
        "appendix": headers(SAMPLER_METRICS),
        "model_metrics": MODEL_METRICS,
        "versions": any(version for _, _, version, _, _, _ in content.runs),
        "settings_json": json.dumps(content.settings_json, indent=2),
        "notes": {
            "panels": PANELS_NOTE,
            "numbers": NUMBERS_RULE,
            "table": TABLE_NOTE,
            "fid": FID_NOTE,
            "separate": SEPARATE_SETTINGS,
            "appendix": APPENDIX_NOTE,
        },
    }
