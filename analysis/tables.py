"""The metrics tables: one row per experiment (model cell x sampler), one table per evaluation setting.

Scores measured with different settings (sample count, importance samples, evaluation seed,
classifier run: the evaluate step's `scores.settings` tag, compared exactly) are never averaged
or ranked together: each setting gets its own table.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from analysis.sources import Evaluation, StudyRuns
from analysis.stats import DIRECTIONS, best_rows
from pipeline.core.evaluation import two_judges
from pipeline.core.evaluation.scoring import MODEL_METRICS, REAL_METRICS, SAMPLER_METRICS
from pipeline.core.judges import knn
from pipeline.core.scores.spread import Summary

COLUMNS = (*SAMPLER_METRICS, *MODEL_METRICS)
# the metrics table's columns (the rest: the appendix); nll is the model's, shown once per model cell
HEADLINE = (
    "fid",
    "precision",
    "recall",
    "classes_covered",
    "max_class_share",
    "confidence",
    "sharpness",
    "class_entropy",
    "nll",
)
# ★ marks only a best that is a quality: not sharpness or class entropy (best is closest to the real
# digits, and noise beats them), not the model's likelihoods (Bernoulli and Gaussian cells are
# different quantities), not active_units
STARRED = tuple(c for c in SAMPLER_METRICS if DIRECTIONS.get(c) in ("lower", "higher"))
# the second judge's, and both judges' accuracy at each sampler's sharpness: read by the verdicts, not tabulated
PER_SAMPLER = (*SAMPLER_METRICS, *knn.SAMPLER_METRICS, *two_judges.METRICS)
# the appendix's per-seed values, one table per group: every per-sampler metric in one row would be too wide to read
SEED_GROUPS = (
    ("realism and clarity", ("fid", "precision", "density", "confidence", "sharpness")),
    (
        "diversity, by each judge",
        (
            "recall",
            "coverage",
            "classes_covered",
            "classes_covered_judge2",
            "class_entropy",
            "class_entropy_judge2",
            "class_kl",
        ),
    ),
    (
        "identity, by each judge",
        (
            "max_class_share",
            "max_class_share_judge2",
            "max_class_share_confident",
            "judges_agree",
            two_judges.IN_DISPUTE,
        ),
    ),
    (
        "the judges on these samples: the CNN's confidence, both judges on real digits as blurry",
        ("confident_share", two_judges.CNN_ACCURACY, two_judges.KNN_ACCURACY, two_judges.BLUR_SIGMA),
    ),
)
# what a reader sees: the FID is on the pipeline's own LeNet-style CNN's features, not Inception's
FID_LABEL = "FID (LeNet)"
FID_NAME = "FID (LeNet features)"
FID_NOTE = (
    f"{FID_LABEL} is short for {FID_NAME}: the Fréchet distance on the penultimate features of the "
    "pipeline's own MNIST CNN classifier (the LeNet-style judge), not on Inception's, so it is not comparable "
    "with the Inception-based FIDs of the literature."
)


def seed_groups() -> list[tuple[str, tuple[str, ...]]]:
    """SEED_GROUPS, and any per-sampler metric they do not name as a last group: the appendix leaves none out."""
    grouped = {metric for _, metrics in SEED_GROUPS for metric in metrics}
    rest = tuple(metric for metric in PER_SAMPLER if metric not in grouped)
    return [*SEED_GROUPS, *([("other", rest)] if rest else [])]


@dataclass(frozen=True)
class Training:
    """One trained model: its cell, loss and seed, and the train run's `test_loss` (the test split's loss
    through the model's own forward pass, in the training loss's units; None when not logged)."""

    cell: str
    loss: str
    seed: int
    test_loss: float | None
    forward: str = "standard"


def trained_models(study: StudyRuns) -> list[Training]:
    """Every training of the study, in (cell, seed) order, read from its train run."""
    planned = {experiment["cell"]: experiment for experiment in study.experiments}
    found = []
    for (cell, seed), run in sorted(study.train.items()):
        value = run.data.metrics.get("test_loss")
        config = {**run.data.params, **planned.get(cell, {})}
        loss, forward = config.get("loss", "?"), config.get("forward", "standard")
        found.append(Training(cell, loss, seed, value if value is not None and math.isfinite(value) else None, forward))
    return found


@dataclass
class Row:
    """One experiment under one setting: its scores over the seeds evaluated that way."""

    experiment: dict
    evaluations: list[Evaluation]
    scores: dict[str, Summary]
    real: dict[str, Summary]

    @property
    def name(self) -> str:
        return self.experiment["name"]

    @property
    def study_id(self) -> str | None:
        return self.experiment.get("study_id")

    @property
    def seeds(self) -> list[int]:
        return sorted({e.seed for e in self.evaluations})

    def score(self, metric: str) -> Summary:
        return self.scores.get(metric) or self.real.get(metric) or Summary(())

    def values_by_seed(self, metric: str) -> dict[int, float]:
        return {
            e.seed: v for e in self.evaluations if (v := _value(e, metric, self.experiment["sampler_key"])) is not None
        }


@dataclass
class Table:
    settings: str
    rows: list[Row]
    best: dict[str, set[str]] = field(default_factory=dict)  # column -> names of the best rows

    def row(self, study_id: str | None = None, cell: str | None = None, sampler: str | None = None) -> Row | None:
        """The row of a study experiment (E1..E5) or of a cell and sampler; None when absent."""
        for row in self.rows:
            experiment = row.experiment
            if study_id is not None and experiment.get("study_id") == study_id:
                return row
            if study_id is None and experiment["cell"] == cell and experiment["sampler"] == sampler:
                return row
        return None

    def by_cell(self) -> list[list[Row]]:
        """The rows grouped by model cell, cells in order of first appearance: a model's own metrics
        (neg_elbo, nll, active_units) are shown once per group."""
        groups: dict[str, list[Row]] = {}
        for row in self.rows:
            groups.setdefault(row.experiment["cell"], []).append(row)
        return list(groups.values())

    @property
    def measured(self) -> int:
        return len({e.run_id for row in self.rows for e in row.evaluations})


def _value(evaluation: Evaluation, metric: str, sampler_key: str) -> float | None:
    return evaluation.sampler_metric(sampler_key, metric) if metric in PER_SAMPLER else evaluation.metric(metric)


def _summary(evaluations: list[Evaluation], metric: str, sampler_key: str) -> Summary:
    pairs = [(value, e.seed) for e in evaluations if (value := _value(e, metric, sampler_key)) is not None]
    return Summary.of([v for v, _ in pairs], [s for _, s in pairs])


def build_tables(study: StudyRuns) -> list[Table]:
    """One table per evaluation setting: the plan's own setting first (main's n_samples and iwae_k),
    then the one with the most evaluations."""
    groups: dict[str, list[Evaluation]] = defaultdict(list)
    for evaluation in study.evaluations:
        groups[evaluation.settings].append(evaluation)
    planned = study.plan.get("settings", {})
    prefix = f"n_samples={planned.get('n_samples')} iwae_k={planned.get('iwae_k')} "
    ordered = sorted(groups.items(), key=lambda item: (not item[0].startswith(prefix), -len(item[1]), item[0]))
    tables = []
    for settings, evaluations in ordered:
        rows = []
        for experiment in study.experiments:
            key = experiment["sampler_key"]
            # an evaluation that did not score this sampler (other sampler list) is not part of the row
            own = [e for e in evaluations if e.cell == experiment["cell"] and _value(e, "fid", key) is not None]
            scores = {metric: _summary(own, metric, key) for metric in (*COLUMNS, *PER_SAMPLER)}
            real = {metric: _summary(own, metric, key) for metric in REAL_METRICS}
            rows.append(Row(experiment, own, scores, real))
        table = Table(settings, rows)
        for column in STARRED:
            table.best[column] = best_rows({row.name: row.scores[column] for row in rows}, DIRECTIONS[column])
        tables.append(table)
    return tables


def real_value(table: Table, metric: str) -> float:
    """The real data's value of a reference metric (the same in every evaluation of one dataset)."""
    values = [row.real[metric].mean for row in table.rows if row.real[metric].n]
    return float(sum(values) / len(values)) if values else math.nan
