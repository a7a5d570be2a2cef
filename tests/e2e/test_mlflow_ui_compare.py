"""pipeline/steps/evaluate.py, pipeline/tracking/classifier_run.py:
The MLflow UI compares what the study compares: on the session's tiny real study that the report's tests
read (tests/conftest.py's `tiny_study`), plus the E5 cell, behind a real `mlflow server`, grouping the runs
table by the `experiment` tag in headless Chromium shows E1–E5, each with one run per training seed, and
the group's aggregated FID (table row, chart bar and its tooltip) is the report's mean of that row. Every
evaluation of it, BCE, MSE and sampled-params models of each seed, is judged by one classifier."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.e2e import report_study as rs
from tests.e2e.mlflow_ui import grouped_runs
from tests.e2e.servers import mlflow_server

pytestmark = pytest.mark.slow

SCREENSHOTS_ENV = "VAE_UI_COMPARE_SCREENSHOTS"  # a folder for the two screenshots (docs/images/ in the docs)
TABLE_PNG, CHART_PNG = "mlflow-ui-grouped-by-experiment.png", "mlflow-ui-fid-by-experiment.png"
SAMPLERS = {"E1": "normal:0,1", "E2": "normal:1,2", "E3": "beta:0.25,0.25", "E4": "beta:0.25,0.25", "E5": "normal:0,1"}


def add_e5(store, study: dict) -> tuple[str, str, list[str]]:
    """E5 (bce, sampled-params) for the tiny study's seeds, in its experiment, and a main run over all of it
    with its report; (main run id, report.md, every evaluate run id of it)."""
    from pipeline.core.experiments import STUDY_IDS

    steps, e5 = list(study["steps"]), STUDY_IDS["E5"]
    evaluations = [evaluation for evaluation, _ in study["evaluations"].values()]
    for seed in rs.SEEDS:
        args = ("--data", study["prepare"], "--loss", "bce", "--forward", "sampled-params", "--seed", str(seed))
        train = rs.run_id(store.python_step("train", *args, *rs.TINY_TRAIN))
        evaluation = rs.evaluate(store, train, rs.SETTINGS)
        evaluations.append(evaluation)
        steps.append({"step": "train", "cell": e5.cell, "seed": seed, "run_id": train, "reused": False})
        step = {"step": "evaluate", "cell": e5.cell, "seed": seed, "run_id": evaluation, "train_run_id": train}
        steps.append({**step, "reused": False})
    planned = [*rs.experiments(), e5.plan_entry()]
    main = rs.write_main_run(store.client, store.experiment_id, steps, name="main quick e1-e5", planned=planned)
    output = store.root / "ui-compare-report"
    rs.run_id(store.python_step("report", "--source", main, "--output", str(output)))
    return main, (output / "report.md").read_text(), evaluations


@pytest.fixture(scope="module")
def seen(tiny_study, tmp_path_factory):
    """The tiny study and E5 grouped by experiment in the UI, the report's Markdown, the screenshots' folder,
    the store and every evaluate run id."""
    store, study = tiny_study
    _, markdown, evaluations = add_e5(store, study)
    folder = tmp_path_factory.mktemp("ui-compare")
    shots = Path(os.environ.get(SCREENSHOTS_ENV) or folder)
    with mlflow_server(store.uri, folder / "artifacts", folder / "server.log") as url:
        groups = grouped_runs(
            f"{url}/#/experiments/{store.experiment_id}/runs?workflowType=machine_learning"
            "&orderByKey=tags.%60experiment%60&orderByAsc=true",  # sorted by the tag: groups in order E1, E2, ...
            "experiment",
            "fid",
            shots / TABLE_PNG,
            shots / CHART_PNG,
        )
    return groups, markdown, shots, store, evaluations


def report_fid(markdown: str, experiment: str) -> str:
    """The FID of an experiment's row of the report's metrics table, as printed: mean ± spread."""
    header = next(line for line in markdown.splitlines() if line.startswith("| experiment | cell | sampler | FID"))
    row = next(line for line in markdown.splitlines() if line.startswith(f"| **{experiment}** |"))
    assert header.split(" | ")[3] == "FID (LeNet)"  # the metric `fid`, named for the features it is computed on
    return row.split(" | ")[3].replace("**", "").removesuffix(" ★").strip()


def test_grouping_by_experiment_shows_e1_to_e5_each_with_one_run_per_seed(seen):
    groups, *_ = seen
    # the runs without the tag: the table's "Additional runs", the chart's "Unassigned" (those that have a FID)
    assert set(groups) == {"E1", "E2", "E3", "E4", "E5", "Additional runs", "Unassigned"}
    for experiment, sampler in SAMPLERS.items():
        assert groups[experiment].runs == len(rs.SEEDS)
        assert sorted(groups[experiment].run_names) == [f"{experiment} {sampler} seed {s}" for s in rs.SEEDS]


def printed_unit(printed: str) -> float:
    """The place the report rounded a `mean ± spread` to: its last decimal, or for a whole number the spread's
    first significant digit (two digits when it is a 1, as the report writes it)."""
    mean, _, spread = printed.partition(" ± ")
    if "." in mean:
        return 10.0 ** -len(mean.split(".")[1])
    return 10.0 ** (len(spread) - 1 - (spread[:1] == "1")) if spread else 1.0


def test_the_aggregated_fid_per_group_is_the_reports_mean_to_its_printed_precision(seen):
    """The table's group row and the bar's tooltip print every digit of the UI's mean; the report prints the
    mean to the precision its spread supports: the UI's mean rounded there is the report's number."""
    groups, markdown, *_ = seen
    for experiment in SAMPLERS:
        printed = report_fid(markdown, experiment)
        mean = float(printed.partition(" ± ")[0])
        group = groups[experiment]
        assert group.tooltip_value == group.table_value
        assert abs(float(group.table_value) - mean) <= printed_unit(printed) / 2 * (1 + 1e-9), (experiment, printed)


def test_the_screenshots_are_saved(seen):
    _, _, shots, *_ = seen
    assert (shots / TABLE_PNG).stat().st_size > 10_000
    assert (shots / CHART_PNG).stat().st_size > 10_000


def test_mse_and_sampled_params_models_of_every_seed_are_evaluated_with_one_classifier(seen):
    """Three cells x two seeds: six trainings, every evaluation by the one classifier of their source, each
    with a child run per sampler and a proper bound (IWAE below the ELBO's)."""
    *_, store, evaluations = seen
    runs = [store.client.get_run(run_id) for run_id in evaluations]
    assert len(runs) == 3 * len(rs.SEEDS) and {run.info.status for run in runs} == {"FINISHED"}
    assert len({run.data.tags["classifier_run_id"] for run in runs}) == 1
    assert all(run.data.metrics["nll"] < run.data.metrics["neg_elbo"] for run in runs)
    keys = {"normal_0_1", "normal_1_2", "beta_0.25_0.25", "gmm_10"}
    for run in runs:
        children = store.client.search_runs(
            [run.info.experiment_id], f"tags.`mlflow.parentRunId` = '{run.info.run_id}'"
        )
        assert {child.data.tags.get("sampler_key") for child in children} == keys
    trained = [store.client.get_run(run.data.tags["mlflow.parentRunId"]).data.params for run in runs]
    assert sorted((p["loss"], p["forward"], p["seed"]) for p in trained) == sorted(
        (loss, forward, str(seed)) for loss, forward in (*rs.CELLS, ("bce", "sampled-params")) for seed in rs.SEEDS
    )
