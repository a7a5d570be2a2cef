"""pipeline/core/scores/catalogue.py:
Every metric declared once: scoring logs the catalogue's sampler metrics, the k-NN judge the judged
ones again, the findings and the report's ★ marks read its directions, and docs/evaluation.md's
metric table is the catalogue's own."""

from __future__ import annotations

import re

from pipeline.core.evaluation import scoring
from pipeline.core.findings import declarations
from pipeline.core.judges import knn
from pipeline.core.scores.catalogue import CATALOGUE, MODEL, REAL, SAMPLER, MetricInfo
from pipeline.search.workers import REPORTED_METRICS
from tests.conftest import REPO

DOC = REPO / "docs" / "evaluation.md"
TABLE = re.compile(r"<!-- metrics table: generated from pipeline/core/scores/catalogue.py -->\n(.*?)\n<!-- end", re.S)
PER = {SAMPLER: "sampler (a child run)", MODEL: "trained model", REAL: "evaluation (the real data)"}


def better_text(info: MetricInfo) -> str:
    if info.closest_is_best:
        return f"higher in a finding's clause; the report ranks it by closeness to `{info.real}`"
    return {True: "higher", False: "lower", None: "not ranked"}[info.higher_is_better]


def metrics_table() -> str:
    rows = ["| metric | label | one value per | better | second judge |", "|---|---|---|---|---|"]
    for info in CATALOGUE.values():
        judged = f"`{info.name}{knn.SUFFIX}`" if info.judged else ""
        rows.append(f"| `{info.name}` | {info.label} | {PER[info.kind]} | {better_text(info)} | {judged} |")
    return "\n".join(rows)


def test_the_docs_metric_table_is_the_catalogue():
    found = TABLE.search(DOC.read_text())
    assert found, f"{DOC}: no generated metrics table"
    assert found.group(1) == metrics_table(), (
        f"docs/evaluation.md's table is out of date; it should read:\n{metrics_table()}"
    )


def test_scoring_and_the_second_judge_log_the_catalogues_names_in_its_order():
    assert scoring.SAMPLER_METRICS[:2] == ("fid", "precision") and len(scoring.SAMPLER_METRICS) == 14
    assert scoring.MODEL_METRICS == ("neg_elbo", "nll", "active_units")
    assert knn.JUDGED == ("class_entropy", "classes_covered", "most_digits_share", "max_class_share")
    assert set(REPORTED_METRICS) <= set(scoring.SAMPLER_METRICS)


def test_a_direction_is_declared_once_and_read_by_the_findings_and_the_stars():
    from analysis.stats import DIRECTIONS

    assert DIRECTIONS["fid"] == "lower" and DIRECTIONS["precision"] == "higher"
    assert DIRECTIONS["sharpness"] == "closer:sharpness_real" and DIRECTIONS["active_units"] is None
    assert "fid_floor" not in DIRECTIONS  # a yardstick, not a column
    for metric in (declarations.FID, declarations.RECALL, declarations.CLASSES_COVERED, declarations.SHARPNESS):
        info = CATALOGUE[metric.name]
        assert (metric.label, metric.higher_is_better, metric.judged, metric.real) == (
            info.label,
            info.higher_is_better,
            info.judged,
            info.real,
        )
    assert declarations.FID.real == "fid_floor" and not declarations.FID.higher_is_better
