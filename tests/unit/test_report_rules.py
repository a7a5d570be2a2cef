"""The report's rules on hand-made numbers and figures: the spread rule, verdict wording, best marks,
run links, the browser check and the samples layout (the tiny real study: tests/e2e/test_report.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import browser
from analysis.stats import best_rows
from analysis.tables import Row
from analysis.verdicts import Verdict, compare_part
from pipeline.core.scores.spread import (
    CONTRADICTED,
    DISAGREE,
    HOLDS,
    NO_DIFFERENCE,
    NO_SPREAD,
    NOT_MEASURED,
    Summary,
    claim_outcome,
    compare,
    overall,
)
from tests.e2e.report_study import MIN_COLUMN_PX
from tests.e2e.report_study import png_size as _png_size

# --- the rules, on hand-made numbers ------------------------------------------------------------


def test_summary_is_mean_and_sample_std_over_seeds():
    summary = Summary.of([1.0, 2.0, 4.0, float("nan")], [0, 1, 2, 3])
    assert summary.n == 3 and summary.seeds == (0, 1, 2)  # NaN (not measured) is dropped with its seed
    assert summary.mean == pytest.approx(7 / 3)
    assert summary.std == pytest.approx(float(np.std([1, 2, 4], ddof=1)))
    assert math.isnan(Summary.of([3.0]).std) and not Summary.of([3.0]).has_spread


@pytest.mark.parametrize(
    "a, b, expected, outcome",
    [
        ([10.0, 11.0], [20.0, 21.0], "less", HOLDS),  # |diff| 10 > 0.71 + 0.71
        ([10.0, 11.0], [20.0, 21.0], "greater", CONTRADICTED),
        ([10.0, 14.0], [12.0, 16.0], "less", DISAGREE),  # |diff| 2 < 2.83 + 2.83: the seeds overlap
        ([10.0], [20.0, 21.0], "less", NO_SPREAD),  # one seed: no spread, no verdict
        ([], [20.0, 21.0], "less", NOT_MEASURED),
    ],
)
def test_a_difference_counts_only_beyond_the_spread_over_seeds(a, b, expected, outcome):
    assert claim_outcome(Summary.of(a), Summary.of(b), expected) == outcome


def test_the_spread_rule_compares_the_mean_difference_with_the_sum_of_the_stds():
    # two seeds 2 apart have std sqrt(2): a difference must exceed 2 sqrt(2) = 2.83
    assert compare(Summary.of([0.0, 2.0]), Summary.of([3.0, 5.0])) == "less"  # 3 > 2.83
    assert compare(Summary.of([0.0, 2.0]), Summary.of([2.5, 4.5])) == "disagree"  # 2.5 < 2.83
    assert compare(Summary.of([5.0, 5.0]), Summary.constant(7.5)) == "less"  # a fixed threshold has no spread
    assert compare(Summary.of([5.0]), Summary.constant(7.5)) == "no spread"
    assert compare(Summary.of([1.0, 1.0]), Summary.of([1.0, 1.0])) == "equal"
    assert claim_outcome(Summary.of([1.0, 1.0]), Summary.of([1.0, 1.0]), "less") == NO_DIFFERENCE


def test_a_finding_holds_only_when_every_measured_part_holds():
    assert overall([HOLDS, HOLDS]) == HOLDS
    assert overall([HOLDS, CONTRADICTED, DISAGREE]) == CONTRADICTED
    assert overall([HOLDS, DISAGREE]) == "inconclusive (seeds disagree)"
    assert overall([NO_SPREAD, HOLDS]) == "inconclusive (one seed: no spread available)"
    assert overall([HOLDS, NOT_MEASURED]) == "holds where measured"
    assert overall([NOT_MEASURED, NOT_MEASURED]) == NOT_MEASURED
    assert overall([HOLDS, NO_DIFFERENCE]) == "inconclusive (no difference)"
    assert overall([NO_SPREAD, DISAGREE]) == "inconclusive (seeds disagree)"


def _row(name: str, study_id: str | None, **scores) -> Row:
    experiment = {
        "name": name,
        "study_id": study_id,
        "cell": "bce-standard",
        "sampler": "normal:0,1",
        "sampler_key": "normal_0_1",
    }
    return Row(experiment, [], {k: Summary.of(v) for k, v in scores.items()}, {})


def test_verdict_wording_follows_the_spread_rule():
    e1 = _row("E1", "E1", fid=[100.0, 102.0], sharpness=[0.05, 0.06])
    e2_clear = _row("E2", "E2", fid=[150.0, 151.0], sharpness=[0.05, 0.07])
    e2_overlap = _row("E2", "E2", fid=[95.0, 110.0])
    e2_single = _row("E2", "E2", fid=[150.0])

    clear = Verdict(
        "F2", "N(1,2) is less realistic.", [compare_part("E2 less realistic", e2_clear, e1, "fid", "greater")]
    )
    assert clear.outcome == HOLDS
    assert clear.deciding_text() == "fid E2 vs E1: 150.5 ± 0.7 vs 101.0 ± 1.4"

    reversed_ = Verdict(
        "F2",
        "claim",
        [
            compare_part("E2 less realistic", e2_clear, e1, "fid", "greater"),
            compare_part("E1 less realistic", e1, e2_clear, "fid", "greater"),
        ],
    )
    assert reversed_.outcome == CONTRADICTED
    assert reversed_.deciding() is reversed_.parts[1]  # the contradicted part decides, not the holding one
    assert reversed_.lines()[1] == ("✗", "E1 less realistic: fid E1 vs E2: 101.0 ± 1.4 vs 150.5 ± 0.7")

    overlap = Verdict(
        "F2",
        "claim",
        [
            compare_part("E2 less realistic", e2_clear, e1, "fid", "greater"),
            compare_part("E2 less realistic", e2_overlap, e1, "fid", "greater"),
        ],
    )
    assert overlap.outcome == "inconclusive (seeds disagree)" and overlap.deciding() is overlap.parts[1]

    single = Verdict("F2", "claim", [compare_part("E2 less realistic", e2_single, e1, "fid", "greater")])
    assert single.outcome.endswith("no spread available)") and "(1 seed)" in single.deciding_text()

    absent = Verdict("F5", "claim", [compare_part("E5 less realistic", None, e1, "fid", "greater")])
    assert absent.outcome == NOT_MEASURED and absent.deciding() is None
    assert absent.deciding_text() == "no evaluation of the experiments it compares in this study"

    half = Verdict("F4", "claim", [compare_part("E2 less realistic", e2_clear, e1, "fid", "greater"), absent.parts[0]])
    assert half.outcome == "holds where measured" and half.deciding_text().endswith("(1 of 2 parts not measured)")


def test_a_holding_finding_is_decided_by_its_part_closest_to_the_spread():
    e1 = _row("E1", "E1", fid=[100.0, 102.0], precision=[0.70, 0.72])
    e2 = _row("E2", "E2", fid=[150.0, 151.0], precision=[0.60, 0.64])
    verdict = Verdict(
        "F2",
        "claim",
        [
            compare_part("fid higher", e2, e1, "fid", "greater"),
            compare_part("precision lower", e2, e1, "precision", "less"),
        ],
    )
    # fid: 49.5 apart with spreads 0.7 + 1.4; precision: 0.09 apart with 0.028 + 0.014: the closer call
    assert verdict.outcome == HOLDS and verdict.deciding() is verdict.parts[1]


def test_best_marks_follow_each_metrics_direction():
    column = {"a": Summary.of([1.0, 1.2]), "b": Summary.of([3.0, 3.2]), "c": Summary.of([2.0]), "d": Summary(())}
    assert best_rows(column, "lower") == {"a"}
    assert best_rows(column, "higher") == {"b"}
    assert best_rows(column, "closer:x", {"a": 2.2, "b": 2.2, "c": 2.2}) == {"c"}
    assert best_rows(column, None) == set()


def test_run_links_open_the_training_view_absolute_under_an_http_server_and_relative_otherwise():
    """MLflow 3's UI reads `workflowType=machine_learning` after the route and opens its model-training view."""
    from mlflow.entities import Run, RunData, RunInfo

    from analysis.sources import run_link

    run = Run(RunInfo("ab" * 16, "7", "user", "FINISHED", 0, 1, "active"), RunData())
    assert (
        run_link(run, "https://mlflow.example.org/")
        == f"https://mlflow.example.org/#/experiments/7/runs/{'ab' * 16}?workflowType=machine_learning"
    )
    assert run_link(run, "sqlite:///mlflow.db") == f"#/experiments/7/runs/{'ab' * 16}?workflowType=machine_learning"


def test_the_browser_check_catches_a_broken_image_and_a_console_error(tmp_path):
    good = tmp_path / "good.html"
    good.write_text(
        "<html><body><img src='data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
        "2mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='></body></html>"
    )
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<html><body><img src='data:image/png;base64,AAAA'><script>console.error('boom')</script></body></html>"
    )
    checked = browser.check(good)
    assert not checked.skipped, f"{checked.skipped}: CI must install Debian's chromium and chromium-driver"
    assert checked.passed and checked.images == 1 and checked.screenshot.startswith(b"\x89PNG")
    failed = browser.check(bad)
    assert not failed.passed and len(failed.undecoded) == 1
    assert any("boom" in message for message in failed.console_errors)
    assert failed.summary().startswith("failed:")


def test_the_samples_figure_puts_grids_side_by_side_and_each_histogram_under_its_grid():
    from analysis import figures
    from pipeline.core import plots

    grid = np.zeros((484, 484), dtype=np.float32)
    old = np.ones((440, 1000, 4), dtype=np.float32)  # an older run's grid-beside-histogram figure
    counts, reference = np.arange(10, dtype=float), np.full(10, 0.1)
    panels = [figures.SamplePanel(f"E{i}\nsampler normal:0,1", grid, counts, reference) for i in range(6)]
    panels += [figures.SamplePanel("old\nsampler gmm:10", fallback=old), figures.SamplePanel("not run")]
    figure = figures.samples_figure(panels)
    grids = [axis for axis in figure.axes if axis.images and axis.images[0].get_array().shape == grid.shape]
    histograms = [axis for axis in figure.axes if axis.patches]
    assert len(grids) == len(histograms) == 6 and len(figure.axes) == 6 * 2 + 2
    figure.canvas.draw()
    for top, bottom in zip(grids, histograms):
        above, below = top.get_position(), bottom.get_position()
        assert below.y1 <= above.y0 and abs(below.x0 - above.x0) < below.width / 2  # under it, same column
    first_row = [axis.get_position() for axis in grids[: figures.SAMPLE_COLUMNS]]
    assert all(a.x1 <= b.x0 for a, b in zip(first_row, first_row[1:]))  # side by side, left to right
    assert grids[5].get_position().y1 < histograms[0].get_position().y0  # the sixth wraps into a second row
    one_scale = (0, plots.share_limit(counts / counts.sum()))
    assert {tuple(axis.get_ylim()) for axis in histograms} == {one_scale}
    width, height = _png_size(figures.png_bytes(figure))
    assert width >= figures.SAMPLE_COLUMNS * MIN_COLUMN_PX
    assert height >= 2 * width / figures.SAMPLE_COLUMNS  # each of the 2 rows is taller than a column is wide


def test_an_evaluate_run_without_grid_png_falls_back_to_its_own_figure(tmp_path, monkeypatch):
    """Older evaluate runs logged only samples_and_classes.png: that panel fills their column."""
    from types import SimpleNamespace

    from PIL import Image

    from analysis import report, sources
    from analysis.tables import Table

    Image.fromarray(np.zeros((484, 484), dtype=np.uint8)).save(tmp_path / "grid.png")
    Image.fromarray(np.zeros((440, 1000, 3), dtype=np.uint8)).save(tmp_path / "old.png")
    logged = {
        ("new", "evaluation/normal_0_1/grid.png"): tmp_path / "grid.png",
        ("old", "evaluation/normal_0_1/samples_and_classes.png"): tmp_path / "old.png",
    }
    monkeypatch.setattr(sources, "download", lambda run_id, path, folder: logged.get((run_id, path)))
    monkeypatch.setattr(sources, "class_histogram", lambda *args: (np.arange(10.0), np.full(10, 0.1)))
    rows = [
        Row(
            {"name": name, "cell": "bce-standard", "sampler": "normal:0,1", "sampler_key": "normal_0_1"},
            [SimpleNamespace(run_id=run_id, seed=seed) for run_id, seed in evaluations],
            {},
            {},
        )
        for name, evaluations in (("E1", [("new", 0)]), ("E2", [("old", 0), ("new", 1)]), ("E3", [("new", 1)]))
    ]
    builder = report.Builder(SimpleNamespace(), tmp_path, "r" * 32)
    image, headings, note = builder.samples(Table("s", rows))
    width, height = _png_size(image.png)
    assert width >= 3 * MIN_COLUMN_PX and height >= width / 3
    assert headings[0] == "E1: bce-standard, sampler normal:0,1, training seed 0 (evaluate run new)"
    assert "grid-beside-histogram" in headings[1] and "not evaluated" in headings[2]  # E3 has no seed-0 run
    assert "Training seed 0" in note and "1 evaluate run(s) logged no plain grid" in note
