"""The report step: unit tests of its rules on hand-made numbers, and end-to-end tests on a tiny
real study (real train and evaluate runs, a main run written to main/steps.json's contract)."""

from __future__ import annotations

import base64
import io
import json
import math
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from analysis import browser
from analysis.stats import (CONTRADICTED, DISAGREE, HOLDS, NO_DIFFERENCE, NO_SPREAD, NOT_MEASURED, Summary,
                            best_rows, claim_outcome, compare, overall)
from analysis.tables import Row
from analysis.verdicts import Verdict, compare_part
from tests.conftest import REPO

CELLS = (("bce", "standard"), ("mse", "standard"))
SEEDS = (0, 1)
EXPERIMENTS = "bce-standard,mse-standard"
SAMPLERS = "normal:0,1+normal:1,2+beta:0.25,0.25+gmm:10"
TINY_TRAIN = ("--latent_size", "8", "--hidden_size", "32", "--epochs", "2", "--sample_every", "0", "--n_images", "1",
              "--samplers", "normal:0,1+normal:1,2+beta:0.25,0.25", "--device", "cpu")
SETTINGS = {"n_samples": 200, "iwae_k": 3}
OTHER_SETTINGS = {"n_samples": 100, "iwae_k": 2}
FINDINGS = ("F1", "F2", "F3", "F4", "F5", "F6")


# --- the rules, on hand-made numbers ------------------------------------------------------------

def test_summary_is_mean_and_sample_std_over_seeds():
    summary = Summary.of([1.0, 2.0, 4.0, float("nan")], [0, 1, 2, 3])
    assert summary.n == 3 and summary.seeds == (0, 1, 2)  # NaN (not measured) is dropped with its seed
    assert summary.mean == pytest.approx(7 / 3)
    assert summary.std == pytest.approx(float(np.std([1, 2, 4], ddof=1)))
    assert math.isnan(Summary.of([3.0]).std) and not Summary.of([3.0]).has_spread


@pytest.mark.parametrize("a, b, expected, outcome", [
    ([10.0, 11.0], [20.0, 21.0], "less", HOLDS),  # |diff| 10 > 0.71 + 0.71
    ([10.0, 11.0], [20.0, 21.0], "greater", CONTRADICTED),
    ([10.0, 14.0], [12.0, 16.0], "less", DISAGREE),  # |diff| 2 < 2.83 + 2.83: the seeds overlap
    ([10.0], [20.0, 21.0], "less", NO_SPREAD),  # one seed: no spread, no verdict
    ([], [20.0, 21.0], "less", NOT_MEASURED),
])
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
    experiment = {"name": name, "study_id": study_id, "cell": "bce-standard", "sampler": "normal:0,1",
                  "sampler_key": "normal_0_1"}
    return Row(experiment, [], {k: Summary.of(v) for k, v in scores.items()}, {})


def test_verdict_wording_follows_the_spread_rule():
    e1 = _row("E1", "E1", fid=[100.0, 102.0], sharpness=[0.05, 0.06])
    e2_clear = _row("E2", "E2", fid=[150.0, 151.0], sharpness=[0.05, 0.07])
    e2_overlap = _row("E2", "E2", fid=[95.0, 110.0])
    e2_single = _row("E2", "E2", fid=[150.0])

    clear = Verdict("F2", "N(1,2) is less realistic.", [compare_part("E2 less realistic", e2_clear, e1, "fid", "greater")])
    assert clear.outcome == HOLDS
    assert clear.sentences().startswith("Holds.") and "fid E2 150.5 ± 0.7 vs E1 101.0 ± 1.4" in clear.sentences()

    reversed_ = Verdict("F2", "claim", [compare_part("E1 less realistic", e1, e2_clear, "fid", "greater")])
    assert reversed_.outcome == CONTRADICTED
    assert "contradicts the write-up here: E1 less realistic" in reversed_.sentences()

    overlap = Verdict("F2", "claim", [compare_part("E2 less realistic", e2_overlap, e1, "fid", "greater")])
    assert overlap.outcome == "inconclusive (seeds disagree)" and "seeds disagree" in overlap.sentences()

    single = Verdict("F2", "claim", [compare_part("E2 less realistic", e2_single, e1, "fid", "greater")])
    assert "no spread available" in single.sentences() and "(1 seed)" in single.sentences()

    absent = Verdict("F5", "claim", [compare_part("E5 less realistic", None, e1, "fid", "greater")])
    assert absent.outcome == NOT_MEASURED and absent.sentences().startswith("Not measured in this run")


def test_best_marks_follow_each_metrics_direction():
    column = {"a": Summary.of([1.0, 1.2]), "b": Summary.of([3.0, 3.2]), "c": Summary.of([2.0]), "d": Summary(())}
    assert best_rows(column, "lower") == {"a"}
    assert best_rows(column, "higher") == {"b"}
    assert best_rows(column, "closer:x", {"a": 2.2, "b": 2.2, "c": 2.2}) == {"c"}
    assert best_rows(column, None) == set()


def test_run_links_are_absolute_under_an_http_server_and_relative_otherwise():
    from mlflow.entities import Run, RunData, RunInfo

    from analysis.sources import run_link

    run = Run(RunInfo("ab" * 16, "7", "user", "FINISHED", 0, 1, "active"), RunData())
    assert run_link(run, "https://mlflow.example.org/") == f"https://mlflow.example.org/#/experiments/7/runs/{'ab' * 16}"
    assert run_link(run, "sqlite:///mlflow.db") == f"#/experiments/7/runs/{'ab' * 16}"


def test_the_browser_check_catches_a_broken_image_and_a_console_error(tmp_path):
    good = tmp_path / "good.html"
    good.write_text("<html><body><img src='data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
                    "2mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=='></body></html>")
    bad = tmp_path / "bad.html"
    bad.write_text("<html><body><img src='data:image/png;base64,AAAA'><script>console.error('boom')</script></body></html>")
    checked = browser.check(good)
    assert not checked.skipped, f"{checked.skipped}: CI must install Debian's chromium and chromium-driver"
    assert checked.passed and checked.images == 1 and checked.screenshot.startswith(b"\x89PNG")
    failed = browser.check(bad)
    assert not failed.passed and len(failed.undecoded) == 1
    assert any("boom" in message for message in failed.console_errors)
    assert failed.summary().startswith("failed:")


def _png_size(png: bytes) -> tuple[int, int]:
    from PIL import Image

    return Image.open(io.BytesIO(png)).size


MIN_COLUMN_PX = 242  # an 8x8 grid of 28x28 digits at native size: a narrower column would drop pixels


def test_the_samples_figure_puts_grids_side_by_side_and_each_histogram_under_its_grid():
    from analysis import figures

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
    first_row = [axis.get_position() for axis in grids[:figures.SAMPLE_COLUMNS]]
    assert all(a.x1 <= b.x0 for a, b in zip(first_row, first_row[1:]))  # side by side, left to right
    assert grids[5].get_position().y1 < histograms[0].get_position().y0  # the sixth wraps into a second row
    assert {tuple(axis.get_ylim()) for axis in histograms} == {(0, 0.25)}  # one share scale
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
    logged = {("new", "evaluation/normal_0_1/grid.png"): tmp_path / "grid.png",
              ("old", "evaluation/normal_0_1/samples_and_classes.png"): tmp_path / "old.png"}
    monkeypatch.setattr(sources, "download", lambda run_id, path, folder: logged.get((run_id, path)))
    monkeypatch.setattr(sources, "class_histogram", lambda *args: (np.arange(10.0), np.full(10, 0.1)))
    rows = [Row({"name": name, "cell": "bce-standard", "sampler": "normal:0,1", "sampler_key": "normal_0_1"},
                [SimpleNamespace(run_id=run_id, seed=seed) for run_id, seed in evaluations], {}, {})
            for name, evaluations in (("E1", [("new", 0)]), ("E2", [("old", 0), ("new", 1)]), ("E3", [("new", 1)]))]
    builder = report.Builder(SimpleNamespace(), tmp_path, "r" * 32)
    image, headings, note = builder.samples(Table("s", rows))
    width, height = _png_size(image.png)
    assert width >= 3 * MIN_COLUMN_PX and height >= width / 3
    assert headings[0] == "E1: bce-standard, sampler normal:0,1, training seed 0 (evaluate run new)"
    assert "grid-beside-histogram" in headings[1] and "not evaluated" in headings[2]  # E3 has no seed-0 run
    assert "Training seed 0" in note and "1 evaluate run(s) logged no plain grid" in note


# --- a tiny real study --------------------------------------------------------------------------

def _run_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1].removeprefix("run id: ")


def _experiments() -> list[dict]:
    from pipeline.core.samplers import parse_sampler
    from pipeline.core.study import select

    return [{"name": e.name, "study_id": e.study_id, "cell": e.cell, "loss": e.loss, "forward": e.forward,
             "sampler": e.sampler, "sampler_key": parse_sampler(e.sampler).key} for e in select(EXPERIMENTS)]


def write_main_run(client, experiment_id: str, steps: list[dict], name: str = "main quick") -> str:
    """A finished main run holding main/steps.json exactly as the main step writes it."""
    from pipeline.configs import MainConfig

    config = MainConfig(experiments=EXPERIMENTS, seeds=",".join(map(str, SEEDS)), epochs="2", latent_size="8",
                        hidden_size="32", n_samples=str(SETTINGS["n_samples"]), iwae_k=str(SETTINGS["iwae_k"]))
    run = client.create_run(experiment_id, tags={"pipeline.step": "main", "pipeline.preset": "quick"}, run_name=name)
    run_id = run.info.run_id
    for key, value in vars(config).items():
        client.log_param(run_id, key, value)
    plan = {"preset": "quick",
            "settings": {"data": "mnist-5k", "epochs": 2, "seeds": list(SEEDS), "latent_size": 8, "hidden_size": 32,
                         "batch_size": 128, "lr": 0.001, **SETTINGS, "experiments": EXPERIMENTS},
            "experiments": _experiments(), "steps": steps}
    client.log_dict(run_id, plan, "main/steps.json")
    client.set_terminated(run_id, "FINISHED")
    return run_id


@pytest.fixture(scope="module")
def study(tracking):
    """prepare_data, then 2 cells x 2 seeds of train (2 epochs, latent 8) and evaluate, and the main run."""
    prepare = _run_id(tracking.python_step("prepare_data"))
    steps = [{"step": "prepare_data", "run_id": prepare, "reused": False}]
    evaluations = {}
    for loss, forward in CELLS:
        cell = f"{loss}-{forward}"
        for seed in SEEDS:
            train = _run_id(tracking.python_step("train", "--data", prepare, "--loss", loss, "--forward", forward,
                                                 "--seed", str(seed), *TINY_TRAIN))
            evaluate = _run_id(tracking.python_step(
                "evaluate", "--model", train, "--samplers", SAMPLERS, "--n_samples", str(SETTINGS["n_samples"]),
                "--iwae_k", str(SETTINGS["iwae_k"]), "--seed", "0", "--device", "cpu"))
            steps.append({"step": "train", "cell": cell, "seed": seed, "run_id": train, "reused": False})
            evaluations[(cell, seed)] = (evaluate, train)
    for (cell, seed), (evaluate, train) in evaluations.items():
        steps.append({"step": "evaluate", "cell": cell, "seed": seed, "run_id": evaluate, "train_run_id": train,
                      "reused": False})
    main = write_main_run(tracking.client, tracking.experiment_id, steps)
    return {"main": main, "steps": steps, "evaluations": evaluations, "prepare": prepare}


class Page(HTMLParser):
    """The parts of the report page the tests read: metrics tables, images, links, text."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[dict] = []  # {"settings": str, "rows": {experiment: {metric: (text, best)}}}
        self.images: list[str] = []
        self.alts: list[str] = []
        self.hrefs: list[str] = []
        self.tags: set[str] = set()
        self._row = self._cell = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "table" and "metrics" in (attrs.get("class") or ""):
            self.tables.append({"settings": attrs["data-settings"], "rows": {}})
        elif tag == "tr" and "data-experiment" in attrs and self.tables:
            self._row = self.tables[-1]["rows"].setdefault(attrs["data-experiment"], {})
        elif tag == "td" and "data-metric" in attrs and self._row is not None:
            self._cell = (attrs["data-metric"], "best" in (attrs.get("class") or ""))
            self._row[self._cell[0]] = ("", self._cell[1])
        elif tag == "img":
            self.images.append(attrs.get("src", ""))
            self.alts.append(attrs.get("alt", ""))
        if tag != "img" and "src" in attrs:
            self.hrefs.append(attrs["src"])
        if "href" in attrs:
            self.hrefs.append(attrs["href"])

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._cell is not None and self._row is not None:
            text, best = self._row[self._cell[0]]
            self._row[self._cell[0]] = (text + data, best)


def _artifacts(client, run_id: str, path: str = "") -> set[str]:
    found = set()
    for item in client.list_artifacts(run_id, path):
        found |= _artifacts(client, run_id, item.path) if item.is_dir else {item.path}
    return found


@pytest.fixture(scope="module")
def reported(tracking, study, tmp_path_factory):
    """`mlflow run . -e report -P source=<main run id>` on the tiny study."""
    output = tmp_path_factory.mktemp("report-out")
    run_id, log = tracking.mlflow_run("report", {"source": study["main"], "output": output})
    html = (output / "report.html").read_text()
    return {"run_id": run_id, "output": output, "html": html, "page": Page(html), "log": log}


def _stats_text(values: list[float]) -> str:
    """mean ± sample std to the precision the spread supports, written the way a reader would check
    it (independently of analysis.stats); a NaN score (e.g. no confident prediction at all) is not measured."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4g} (1 seed)"
    std = np.std(values, ddof=1)
    if std == 0:
        return f"{values[0]:.4g} ± 0"
    first = f"{std:.0e}"  # the spread to one significant digit, e.g. '6e-04'; two digits when it is a 1
    decimals = -int(first.split("e")[1]) + (first[0] == "1")
    return f"{round(np.mean(values), decimals):.{max(decimals, 0)}f} ± {round(std, decimals):.{max(decimals, 0)}f}"


@pytest.mark.slow
def test_report_run_writes_and_logs_the_files_on_both_runs(tracking, study, reported):
    client = tracking.client
    run = client.get_run(reported["run_id"])
    assert run.info.status == "FINISHED"
    tags = run.data.tags
    assert tags["pipeline.step"] == "report" and tags["mlflow.parentRunId"] == study["main"]
    assert tags["report.browser_check"].startswith("passed:"), tags["report.browser_check"]
    assert run.data.params["source"] == study["main"]
    output = reported["output"]
    for name in ("report.html", "report.md", "report.png"):
        assert (output / name).stat().st_size > 0
    assert (output / "report.png").read_bytes().startswith(b"\x89PNG")
    for run_id in (reported["run_id"], study["main"]):
        logged = _artifacts(client, run_id, "report")
        assert {"report/report.html", "report/report.md", "report/report.png"} <= logged, run_id
        assert any(path.startswith("report/images/") for path in logged)
    logged_html = Path(client.download_artifacts(study["main"], "report/report.html")).read_text()
    assert logged_html == reported["html"]


@pytest.mark.slow
def test_the_table_holds_every_experiment_with_mean_and_std_from_the_evaluate_runs(tracking, study, reported):
    page = reported["page"]
    assert len(page.tables) == 1
    table = page.tables[0]
    names = [e["name"] for e in _experiments()]
    assert set(table["rows"]) == set(names) and len(names) == 8
    assert {"E1", "E2", "E3", "E4", "bce-standard gmm:10", "mse-standard normal:0,1"} <= set(table["rows"])
    client = tracking.client
    runs = {key: client.get_run(evaluate).data for key, (evaluate, _) in study["evaluations"].items()}
    assert table["settings"] == runs[("bce-standard", 0)].tags["scores.settings"]
    for experiment in _experiments():
        for metric in ("fid", "precision", "class_entropy", "sharpness", "max_class_share_confident"):
            values = [runs[(experiment["cell"], seed)].metrics[f"{metric}/{experiment['sampler_key']}"] for seed in SEEDS]
            text, _ = table["rows"][experiment["name"]][metric]
            assert text.removesuffix(" ★") == _stats_text(values), (experiment["name"], metric)
    nll = [runs[("mse-standard", seed)].metrics["nll"] for seed in SEEDS]
    assert table["rows"]["E4"]["nll"][0].removesuffix(" ★") == _stats_text(nll)


@pytest.mark.slow
def test_the_best_mark_is_on_the_real_best_mean(tracking, study, reported):
    table = reported["page"].tables[0]
    client = tracking.client
    runs = {key: client.get_run(evaluate).data.metrics for key, (evaluate, _) in study["evaluations"].items()}

    def mean(experiment, metric):
        return np.mean([runs[(experiment["cell"], s)][f"{metric}/{experiment['sampler_key']}"] for s in SEEDS])

    experiments = _experiments()
    for metric, pick in (("fid", min), ("precision", max), ("coverage", max)):
        best = pick(mean(e, metric) for e in experiments)
        expected = {e["name"] for e in experiments if math.isclose(mean(e, metric), best, rel_tol=1e-12)}
        marked = {name for name, cells in table["rows"].items() if cells[metric][1]}
        assert marked == expected, metric
        assert all(table["rows"][name][metric][0].endswith("★") for name in marked)
    real_entropy = runs[("bce-standard", 0)]["class_entropy_real"]
    closest = min(experiments, key=lambda e: abs(mean(e, "class_entropy") - real_entropy))["name"]
    assert table["rows"][closest]["class_entropy"][1]


@pytest.mark.slow
def test_all_six_verdicts_are_on_the_page_with_their_numbers(tracking, study, reported):
    html = reported["html"]
    for finding in FINDINGS:
        assert f"id='{finding}'" in html, finding
    f5 = re.search(r"id='F5'>(.*?)</div>", html, flags=re.S).group(1)
    assert "not measured in this run" in f5.lower()  # no sampled-params cell in this study
    f6 = re.search(r"id='F6'>(.*?)</div>", html, flags=re.S).group(1)
    assert "E5 less diverse than E1 (class entropy): not measured in this run" in f6
    assert "classified confidently by the CNN (top probability ≥ 0.9)" in f6
    # the E3 share of each judge's dominant class in the verdict is that judge's logged class histogram's
    client = tracking.client
    for judge, suffix in (("the CNN", ""), ("the k-NN", "_judge2")):
        shares = []
        for seed in SEEDS:
            evaluate = study["evaluations"][("bce-standard", seed)][0]
            path = f"evaluation/beta_0.25_0.25/class_histogram{suffix}.json"
            table = json.loads(Path(client.download_artifacts(evaluate, path)).read_text())
            shares.append([row[table["columns"].index("share")] for row in table["data"]])
        dominant = re.search(rf"{judge} finds digit (\d) dominant in \d of 2 seeds with ([^ ]+ ± [^ ]+) of all", f6)
        assert dominant, (judge, f6)
        assert dominant.group(2) == _stats_text([s[int(dominant.group(1))] for s in shares])
    assert re.search(r"the two judges name the same dominant digit in [0-2] of 2 seeds", f6)
    f4 = re.search(r"id='F4'>(.*?)</div>", html, flags=re.S).group(1)
    e3 = [client.get_run(study["evaluations"][("bce-standard", s)][0]).data.metrics["sharpness/beta_0.25_0.25"] for s in SEEDS]
    assert _stats_text(e3) in f4
    assert "|mean(A) − mean(B)| &gt; std(A) + std(B)" in html  # the rule is written on the page


@pytest.mark.slow
def test_evaluate_logs_the_second_judge_beside_the_cnn_for_every_sampler(tracking, study):
    client = tracking.client
    classifiers = set()
    for evaluate, _ in study["evaluations"].values():
        run = client.get_run(evaluate)
        metrics, tags = run.data.metrics, run.data.tags
        classifiers.add(tags["classifier_run_id"])
        keys = {name.split("/")[1] for name in metrics if name.startswith("fid/")}
        assert keys == {"normal_0_1", "normal_1_2", "beta_0.25_0.25", "gmm_10"}
        for key in keys:
            table = json.loads(Path(client.download_artifacts(
                evaluate, f"evaluation/{key}/class_histogram_judge2.json")).read_text())
            counts = np.array([row[table["columns"].index("count")] for row in table["data"]])
            shares = counts / counts.sum()
            assert counts.sum() == SETTINGS["n_samples"]
            assert tags[f"max_class_judge2/{key}"] == str(int(np.argmax(counts)))
            assert metrics[f"max_class_share_judge2/{key}"] == pytest.approx(shares.max())
            assert metrics[f"classes_covered_judge2/{key}"] == (shares >= 0.05).sum()
            covered = shares[shares > 0]
            assert metrics[f"class_entropy_judge2/{key}"] == pytest.approx(-(covered * np.log(covered)).sum())
            assert metrics[f"judges_agree/{key}"] == float(tags[f"max_class/{key}"] == tags[f"max_class_judge2/{key}"])
            assert f"evaluation/{key}/class_histogram_judge2.png" in _artifacts(client, evaluate, f"evaluation/{key}")
    assert len(classifiers) == 1  # one source, one classifier run: the judge lives in it, fitted once
    classifier = client.get_run(classifiers.pop())
    assert classifier.data.metrics["judge2_test_accuracy"] >= 0.93  # measured 0.945 on mnist-5k's test split
    assert classifier.data.params["judge2_components"] == "50" and "judge2/knn_pca.npz" in _artifacts(client, classifier.info.run_id)


@pytest.mark.slow
def test_the_verdicts_table_has_a_row_per_finding_and_a_marked_line_per_part(tracking, study, reported):
    from analysis.stats import Summary, both_judges, claim_outcome
    from analysis.verdicts import MARKS

    html = reported["html"]
    rows = dict(re.findall(r"<tr data-finding='(F\d)'>(.*?)</tr>", html, flags=re.S))
    assert sorted(rows) == list(FINDINGS)
    parts = {finding: re.search(r"<td class='name wrap'>(.*)</td>", row, flags=re.S).group(1).split("<br>")
             for finding, row in rows.items()}
    for finding, lines in parts.items():
        assert lines and all(line[0] in "✓✗~?·" for line in lines), (finding, lines)
    # F1's coverage part: both judges' numbers, and a mark only both judges' outcomes give
    client = tracking.client
    runs = [client.get_run(study["evaluations"][("bce-standard", seed)][0]).data.metrics for seed in SEEDS]
    cnn = [m["classes_covered/normal_0_1"] for m in runs]
    second = [m["classes_covered_judge2/normal_0_1"] for m in runs]
    line = next(line for line in parts["F1"] if "E1 covers most digits" in line)
    assert f"CNN classes_covered E1 {_stats_text(cnn)}" in line and f"k-NN classes_covered_judge2 E1 {_stats_text(second)}" in line
    outcome = both_judges(*(claim_outcome(Summary.of(v), Summary.constant(7.5), "greater") for v in (cnn, second)))
    assert line.lstrip().startswith(MARKS.get(outcome, "·")), (outcome, line)
    markdown = (reported["output"] / "report.md").read_text()
    assert "| finding | verdict | measured parts and the numbers that decide them |" in markdown
    assert sum(line.startswith(f"| **{f}** |") for f in FINDINGS for line in markdown.splitlines()) == 6


@pytest.mark.slow
def test_two_epoch_models_make_the_page_open_with_a_warning_and_every_verdict_preliminary(tracking, study, reported):
    html = reported["html"]
    body = html[html.index("<body>"):]
    assert body.index("id='convergence-warning'") < body.index("<h2")  # before any section
    warning = re.search(r"id='convergence-warning'><b>(.*?)</b>", html).group(1)
    assert warning.startswith("Warning: 4 of the trained models behind the verdicts were still improving fast")
    assert "The verdicts on F1, F2, F3, F4, F6 are preliminary" in warning
    for cell, seed in ((c, s) for c in ("bce-standard", "mse-standard") for s in SEEDS):
        assert f"{cell} seed {seed}: still improving (val loss" in warning
    words = dict(re.findall(r"<tr data-finding='(F\d)'>.*?<td class='name word [a-z]+'>(.*?)</td>", html, flags=re.S))
    for finding in ("F1", "F2", "F3", "F4", "F6"):  # F5 needs the sampled-params cell: not measured
        assert words[finding].endswith(" — preliminary: models still improving"), (finding, words[finding])
    assert "preliminary" not in words["F5"]
    assert html.count("<td class='name'>still improving (val loss") == 4  # the runs table's column, train runs


@pytest.mark.slow
def test_the_page_names_no_path_of_the_machine(tracking, reported):
    markdown = (reported["output"] / "report.md").read_text()
    for text in (reported["html"], markdown):
        assert str(tracking.root) not in text and "/tmp/" not in text and str(Path.home()) + "/" not in text
        assert "sqlite:///mlflow.db" in text  # the tracking URI without its local folder


@pytest.mark.slow
def test_the_page_is_self_contained(reported):
    page = reported["page"]
    assert len(page.images) == 4  # the samples figure, loss curves, latent map, interpolations
    assert all(src.startswith("data:image/png;base64,") for src in page.images)
    assert not [h for h in page.hrefs if re.match(r"^(https?:)?//", h)], "no external fetch"
    assert "script" not in page.tags and "link" not in page.tags and "@import" not in reported["html"]
    assert all(h.startswith("#/experiments/") for h in page.hrefs)  # a local store: relative UI paths
    markdown = (reported["output"] / "report.md").read_text()
    for heading in ("1. Metrics", "2. Samples", "3. Loss curves", "4. The latent space", "5. Verdicts", "6. Provenance"):
        assert heading in markdown and heading in reported["html"]
    for finding in FINDINGS:
        assert f"**{finding}:" in markdown
    for target in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown):
        assert (reported["output"] / target).read_bytes().startswith(b"\x89PNG"), target


@pytest.mark.slow
def test_the_samples_are_one_figure_with_a_column_per_experiment(tracking, study, reported):
    from analysis import figures

    client = tracking.client
    for evaluate, _ in study["evaluations"].values():
        paths = _artifacts(client, evaluate, "evaluation")
        for experiment in _experiments():
            assert f"evaluation/{experiment['sampler_key']}/grid.png" in paths, (evaluate, experiment["sampler_key"])
    page = reported["page"]
    samples = [src for src, alt in zip(page.images, page.alts) if alt.startswith("sample grids")]
    assert len(samples) == 1
    assert samples[0].startswith("data:image/png;base64,")
    png = base64.b64decode(samples[0].removeprefix("data:image/png;base64,"))
    width, height = _png_size(png)
    experiments = len(_experiments())  # 8: 5 in the first row, 3 in the second
    columns = min(experiments, figures.SAMPLE_COLUMNS)
    rows = -(-experiments // columns)
    assert width >= columns * MIN_COLUMN_PX, width
    assert height >= rows * width / columns, (width, height)  # grid and histogram stacked in each column
    markdown = (reported["output"] / "report.md").read_text()
    assert markdown.count("(images/samples.png)") == 1
    assert (reported["output"] / "images" / "samples.png").read_bytes() == png
    evaluate = study["evaluations"][("bce-standard", 0)][0]
    assert f"E1: bce-standard, sampler normal:0,1, training seed 0 (evaluate run {evaluate[:8]})" in reported["html"]
    assert "Training seed 0" in reported["html"] and "older code" not in reported["html"]


@pytest.mark.slow
def test_provenance_names_code_version_data_and_runs(tracking, study, reported):
    html = reported["html"]
    client = tracking.client
    train = client.get_run(study["steps"][1]["run_id"])
    assert train.data.tags["pipeline.code_version"] in html
    assert train.data.params["data_digest"] in html
    for step in study["steps"]:
        assert f"#/experiments/{tracking.experiment_id}/runs/{step['run_id']}" in html
    assert "n_samples=200 iwae_k=3 seed=0" in html


@pytest.mark.slow
def test_unlike_settings_land_in_separate_tables_and_a_source_can_be_an_experiment(tracking, study, tmp_path):
    """A second main run whose seed-1 evaluations used other settings; found by experiment name,
    reported without a browser (REPORT_CHROMIUM names no file)."""
    client = tracking.client
    experiment = client.create_experiment("report-settings", artifact_location=(tracking.root / "settings").as_uri())
    steps = [s for s in study["steps"] if not (s["step"] == "evaluate" and s["seed"] == 1)]
    other = {}
    for loss, forward in CELLS:
        cell = f"{loss}-{forward}"
        train = study["evaluations"][(cell, 1)][1]
        other[cell] = _run_id(tracking.python_step(
            "evaluate", "--model", train, "--samplers", SAMPLERS, "--n_samples", str(OTHER_SETTINGS["n_samples"]),
            "--iwae_k", str(OTHER_SETTINGS["iwae_k"]), "--seed", "0", "--device", "cpu", "--copy_scores", "skip"))
        steps.append({"step": "evaluate", "cell": cell, "seed": 1, "run_id": other[cell], "train_run_id": train,
                      "reused": False})
    expected = write_main_run(client, experiment, steps)
    unfinished = client.create_run(experiment, tags={"pipeline.step": "main"}).info.run_id  # newer, but RUNNING
    client.log_dict(unfinished, {"steps": []}, "main/steps.json")
    planless = client.create_run(experiment, tags={"pipeline.step": "main"}).info.run_id  # newer, but no plan
    client.set_terminated(planless, "FINISHED")

    env = {**tracking.env(), "REPORT_CHROMIUM": str(tmp_path / "no-chromium")}
    env.pop("MLFLOW_EXPERIMENT_ID")  # no experiment chosen: the report run goes beside its main run
    result = subprocess.run([sys.executable, "-m", "analysis.report", "--source", "report-settings", "--output",
                             str(tmp_path / "out")], capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    report_id = _run_id(result)
    run = client.get_run(report_id)
    assert run.data.tags["mlflow.parentRunId"] == expected
    assert run.info.experiment_id == experiment
    assert run.data.tags["report.browser_check"].startswith("skipped:") and "browser check skipped" in result.stderr
    assert not (tmp_path / "out" / "report.png").exists() and (tmp_path / "out" / "report.md").exists()

    page = Page((tmp_path / "out" / "report.html").read_text())
    settings = [t["settings"] for t in page.tables]
    assert len(settings) == 2 and settings[0] != settings[1]
    assert settings[1].startswith(f"n_samples={OTHER_SETTINGS['n_samples']} iwae_k={OTHER_SETTINGS['iwae_k']} seed=0")
    assert settings[0].startswith(f"n_samples={SETTINGS['n_samples']} iwae_k={SETTINGS['iwae_k']} seed=0")
    seed0 = client.get_run(study["evaluations"][("bce-standard", 0)][0]).data.metrics["fid/normal_0_1"]
    seed1 = client.get_run(other["bce-standard"]).data.metrics["fid/normal_0_1"]
    assert page.tables[0]["rows"]["E1"]["fid"][0].removesuffix(" ★") == f"{seed0:.4g} (1 seed)"
    assert page.tables[1]["rows"]["E1"]["fid"][0].removesuffix(" ★") == f"{seed1:.4g} (1 seed)"
    html = (tmp_path / "out" / "report.html").read_text()
    assert "never averaged or ranked together" in html
    assert "no spread available" in html  # one seed per setting: no verdict is drawn
    assert "report/report.html" in _artifacts(client, expected, "report")


@pytest.mark.slow
@pytest.mark.parametrize("source", ["0" * 32, "no-such-experiment", "train-run"])
def test_a_bad_source_exits_2_naming_it_and_creates_no_run(tracking, study, tmp_path, source):
    if source == "train-run":
        source = study["steps"][1]["run_id"]
    before = len(tracking.client.search_runs([tracking.experiment_id], max_results=1000))
    result = tracking.python_step("report", "--source", source, "--output", str(tmp_path / "out"))
    assert result.returncode == 2, result.stderr[-3000:]
    assert "parameter 'source'" in result.stderr
    assert len(tracking.client.search_runs([tracking.experiment_id], max_results=1000)) == before
    assert not (tmp_path / "out").exists()
