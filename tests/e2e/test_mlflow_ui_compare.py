"""The MLflow UI compares what the study compares: grouping the runs table by the `experiment` tag shows
E1–E5, each with its seeds, and the group's aggregated FID (table row, chart bar and its tooltip) is the mean
over seeds. A synthetic store laid out as the study lays out its runs (one evaluate run per model cell and
seed, one child run per sampler with the same metric names), behind a real `mlflow server`, read back in
headless Chromium."""

from __future__ import annotations

import os
import statistics
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.e2e.mlflow_ui import grouped_runs
from tests.e2e.servers import mlflow_server

pytestmark = pytest.mark.slow

SCREENSHOTS_ENV = "VAE_UI_COMPARE_SCREENSHOTS"  # a folder for the two screenshots (docs/images/ in the docs)
TABLE_PNG, CHART_PNG = "mlflow-ui-grouped-by-experiment.png", "mlflow-ui-fid-by-experiment.png"
SEEDS = (0, 1, 2)
# experiment: (model cell, sampler, FID of seeds 0, 1, 2)
STUDY = {
    "E1": ("bce-standard", "normal:0,1", (10.0, 12.0, 14.5)),
    "E2": ("bce-standard", "normal:1,2", (20.0, 21.0, 23.0)),
    "E3": ("bce-standard", "beta:0.25,0.25", (30.123, 31.456, 32.789)),
    "E4": ("mse-standard", "normal:0,1", (5.5, 6.25, 7.0)),
    "E5": ("bce-wide", "normal:0,1", (40.0, 41.0, 42.0)),
}
# the bar labels, by hand: the mean over seeds to two decimals
BAR_LABELS = {"E1": "12.17", "E2": "21.33", "E3": "31.46", "E4": "6.25", "E5": "41.00"}
CELLS = sorted({cell for cell, _, _ in STUDY.values()})


def log_study(client: MlflowClient) -> str:
    """One evaluate run per (cell, seed) with a model-level metric; under it one run per sampler with `fid`
    and `precision` and the tags experiment, cell, sampler and seed."""
    experiment_id = client.create_experiment("study")
    for cell in CELLS:
        for seed in SEEDS:
            parent = client.create_run(experiment_id, run_name=f"evaluate {cell} seed {seed}", tags={"cell": cell})
            client.log_metric(parent.info.run_id, "log_likelihood", -100.0 - seed)
            for experiment, (experiment_cell, sampler, fids) in STUDY.items():
                if experiment_cell != cell:
                    continue
                tags = {"mlflow.parentRunId": parent.info.run_id, "experiment": experiment, "cell": cell}
                child = client.create_run(
                    experiment_id,
                    run_name=f"{sampler} seed {seed}",
                    tags={**tags, "sampler": sampler, "seed": str(seed)},
                )
                client.log_metric(child.info.run_id, "fid", fids[seed])
                client.log_metric(child.info.run_id, "precision", 0.5 + seed / 10)
                client.set_terminated(child.info.run_id)
            client.set_terminated(parent.info.run_id)
    return experiment_id


@pytest.fixture(scope="module")
def seen(tmp_path_factory):
    """The study's store behind an `mlflow server` on SQLite, grouped by experiment in the UI."""
    folder = tmp_path_factory.mktemp("ui-compare")
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or folder)
    with mlflow_server(f"sqlite:///{folder / 'mlflow.db'}", folder / "artifacts", folder / "server.log") as url:
        experiment_id = log_study(MlflowClient(url))
        groups = grouped_runs(
            f"{url}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"
            "&orderByKey=tags.%60experiment%60&orderByAsc=true",  # sorted by the tag: groups in order E1, E2, ...
            "experiment",
            "fid",
            shots / TABLE_PNG,
            shots / CHART_PNG,
        )
    return groups, shots


def test_grouping_by_experiment_shows_e1_to_e5_each_with_its_seeds(seen):
    groups, _ = seen
    assert sorted(groups) == ["Additional runs", "E1", "E2", "E3", "E4", "E5"]
    for experiment, (_, sampler, _) in STUDY.items():
        assert groups[experiment].runs == len(SEEDS)
        assert sorted(groups[experiment].run_names) == [f"{sampler} seed {seed}" for seed in SEEDS]


def test_the_evaluate_runs_without_the_tag_fall_into_additional_runs(seen):
    """Grouping by a tag flattens the nesting: a child run sits in its tag's group, and its parent evaluate
    run (no experiment tag) in the UI's "Additional runs" group, collapsed and with no FID."""
    groups, _ = seen
    assert groups["Additional runs"].runs == len(CELLS) * len(SEEDS)
    assert groups["Additional runs"].table_value == "-"


def test_the_aggregated_fid_per_group_is_the_mean_over_seeds(seen):
    """The table's group row and the bar's tooltip print every digit of the UI's mean (JavaScript sums in
    table order, so it may differ from Python's in the last bit); the bar's label has two decimals."""
    groups, _ = seen
    for experiment, (_, _, fids) in STUDY.items():
        group = groups[experiment]
        assert float(group.table_value) == pytest.approx(statistics.fmean(fids), rel=1e-12, abs=0)
        assert group.tooltip_value == group.table_value
        assert group.bar_label == BAR_LABELS[experiment]
        assert group.bar_label == f"{statistics.fmean(fids):.2f}"


def test_the_screenshots_are_saved(seen):
    _, shots = seen
    assert (shots / TABLE_PNG).stat().st_size > 10_000
    assert (shots / CHART_PNG).stat().st_size > 10_000
