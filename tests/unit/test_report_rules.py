"""analysis/stats.py, analysis/browser.py:
The report's rules on hand-made numbers and figures: the mean and spread over seeds, best marks,
run links, the browser check and the samples layout (the tiny real study: tests/e2e/test_report.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from analysis import browser
from analysis.stats import best_rows
from analysis.tables import Row
from pipeline.core.scores.spread import Summary
from tests.e2e.report_study import MIN_COLUMN_PX
from tests.e2e.report_study import png_size as _png_size

# --- the rules, on hand-made numbers ------------------------------------------------------------


def test_summary_is_mean_and_sample_std_over_seeds():
    summary = Summary.of([1.0, 2.0, 4.0, float("nan")], [0, 1, 2, 3])
    assert summary.n == 3 and summary.seeds == (0, 1, 2)  # NaN (not measured) is dropped with its seed
    assert summary.mean == pytest.approx(7 / 3)
    assert summary.std == pytest.approx(float(np.std([1, 2, 4], ddof=1)))
    assert math.isnan(Summary.of([3.0]).std) and not Summary.of([3.0]).has_spread


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
