"""The tiny real study the report's end-to-end tests read (real train and evaluate runs, a main run
written to main/steps.json's contract), and how the tests read the page back."""

from __future__ import annotations

import io
import math
import re
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np

CELLS = (("bce", "standard"), ("mse", "standard"))
SEEDS = (0, 1)
EXPERIMENTS = "bce-standard,mse-standard"
SAMPLERS = "normal:0,1+normal:1,2+beta:0.25,0.25+gmm:10"
TINY_TRAIN = (
    "--latent_size",
    "8",
    "--hidden_size",
    "32",
    "--epochs",
    "2",
    "--sample_every",
    "0",
    "--n_images",
    "1",
    "--samplers",
    "normal:0,1+normal:1,2+beta:0.25,0.25",
    "--device",
    "cpu",
)
SETTINGS = {"n_samples": 200, "iwae_k": 3}
OTHER_SETTINGS = {"n_samples": 100, "iwae_k": 2}
FINDINGS = ("F1", "F2", "F3", "F4", "F5", "F6")


def png_size(png: bytes) -> tuple[int, int]:
    """(width, height) of a PNG."""
    from PIL import Image

    return Image.open(io.BytesIO(png)).size


MIN_COLUMN_PX = 242  # an 8x8 grid of 28x28 digits at native size: a narrower column would drop pixels


def run_id(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout.strip().splitlines()[-1].removeprefix("run id: ")


def experiments() -> list[dict]:
    from pipeline.core.experiments import select

    return [e.plan_entry() for e in select(EXPERIMENTS)]  # as main's plan records them


def main_plan(config, steps: list[dict]) -> dict:
    """main/steps.json for `config` and these step records, built by main's own plan (its settings resolved
    from the preset, its experiments' plan entries): the one place that follows how main records it."""
    from pipeline.core import experiments
    from pipeline.steps.main import make_plan

    return make_plan(config, experiments.PRESETS[config.preset]).record(steps)


def write_main_run(
    client, experiment_id: str, steps: list[dict], name: str = "main quick", planned: list[dict] | None = None
) -> str:
    """A finished main run holding main/steps.json exactly as the main step writes it."""
    from pipeline.configs import MainConfig

    config = MainConfig(
        experiments=EXPERIMENTS,
        seeds=",".join(map(str, SEEDS)),
        epochs="2",
        latent_size="8",
        hidden_size="32",
        batch_size="128",  # TINY_TRAIN leaves train's default, where preset quick would give 64
        n_samples=str(SETTINGS["n_samples"]),
        iwae_k=str(SETTINGS["iwae_k"]),
    )
    run = client.create_run(experiment_id, tags={"pipeline.step": "main", "pipeline.preset": "quick"}, run_name=name)
    run_id = run.info.run_id
    for key, value in vars(config).items():
        client.log_param(run_id, key, value)
    plan = main_plan(config, steps)
    if planned is not None:  # a study whose plan names other experiments than the tiny study's own
        plan["experiments"] = planned
    client.log_dict(run_id, plan["settings"], "main/settings.json")
    client.log_dict(run_id, plan, "main/steps.json")
    client.set_terminated(run_id, "FINISHED")
    return run_id


def step_record(step: str, run_id: str, **labels) -> dict:
    """One step as main's driver records it: a step that ran here, neither reused nor resumed."""
    return {"step": step, **labels, "run_id": run_id, "reused": False, "how": "ran"}


class Page(HTMLParser):
    """The parts of the report page the tests read: metrics tables, images, links, text."""

    def __init__(self, text: str):
        super().__init__()
        self.tables: list[dict] = []  # {"settings": str, "rows": {experiment: {metric: (text, best)}}}: headline
        self.appendix: list[dict] = []  # the same for the appendix's tables of every score
        self.images: list[str] = []
        self.alts: list[str] = []
        self.hrefs: list[str] = []
        self.tags: set[str] = set()
        self._row = self._cell = None
        self._tables: list[dict] = []
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.add(tag)
        if tag == "table" and attrs.get("class") in ("metrics", "all-metrics"):
            self._tables = self.tables if attrs["class"] == "metrics" else self.appendix
            self._tables.append({"settings": attrs["data-settings"], "rows": {}})
        elif tag == "tr" and "data-experiment" in attrs and self._tables:
            self._row = self._tables[-1]["rows"].setdefault(attrs["data-experiment"], {})
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


def stats_text(values: list[float]) -> str:
    """mean ± sample std to the precision the spread supports, written the way a reader would check
    it (independently of analysis.stats); a NaN score (e.g. no confident prediction at all) is not measured."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return "–"
    if len(values) == 1:
        return f"{values[0]:.4g} (1 seed)"
    std = np.std(values, ddof=1)
    if std == 0:  # identical over every seed: the value alone, no "± 0"
        return f"{values[0]:.4g}"
    decimals = decimals_of(values)  # one significant digit of the spread, two when its first digit is a 1
    # Python's round of the float itself: numpy's round scales by 10**decimals first, so a mean such as
    # 0.905 (stored as 0.90500000000000003) came out 0.90 where the exact value rounds to 0.91.
    mean = float(np.mean(values))
    return f"{round(mean, decimals):.{max(decimals, 0)}f} ± {round(float(std), decimals):.{max(decimals, 0)}f}"


def verdict_words(html: str) -> dict[str, str]:
    """Each finding's verdict word as the report's verdict table shows it."""
    return dict(re.findall(r"<tr data-finding='(F\d)'>.*?<td class='name word [a-z]+'>(.*?)</td>", html, flags=re.S))


def part_rows(html: str) -> tuple[str, list[list[str]]]:
    """The report's part-by-part table: its HTML and its rows' cells."""
    table = re.search(r"<table class='parts'>(.*?)</table>", html, flags=re.S).group(1)
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S) for row in re.findall(r"<tr.*?</tr>", table, re.S)]
    return table, [row for row in rows if row]


def part_interval(text: str) -> tuple[float, float, float]:
    """(difference, low, high) of a part's '±d [95 % CI ±l, ±h], …' line; a difference the same on every
    seed ('±d on every seed (no spread)') is its own interval."""
    constant = re.match(r"([+-][\d.]+) on every seed \(no spread\)", text)
    if constant:
        return (float(constant.group(1)),) * 3
    found = re.match(r"([+-][\d.]+) \[95 % CI ([+-][\d.]+), ([+-][\d.]+)\]", text)
    assert found, text
    return tuple(float(v) for v in found.groups())


def decimals_of(*groups: list[float]) -> int:
    """The decimals both sides of a part are printed to: the finest any side's spread needs, one
    significant digit of it (two when its first digit is a 1: 1.53 keeps 1.5), written independently of
    the report's code."""
    found = []
    for values in groups:
        std = float(np.std(values, ddof=1)) if len(values) > 1 else 0.0
        if std > 0:
            exponent = math.floor(math.log10(std))
            leading = int(std / 10**exponent + 1e-9)
            if leading != 1 and math.floor(math.log10(float(f"{std:.1g}"))) > exponent:  # 0.96 rounds to 1
                found.append(-exponent)
            else:
                found.append(-exponent + (leading == 1))
    return max(found) if found else 4


def means_text(a: list[float], b: list[float]) -> str:
    """'mean vs mean', both to the same decimals (a decided part's numbers in the verdict table)."""
    places = decimals_of(a, b)
    return " vs ".join(f"{round(float(np.mean(v)), places):.{max(places, 0)}f}" for v in (a, b))


def sampler_data(client, evaluate_run_id: str, sampler_key: str):
    """The metrics and tags (RunData) of one sampler's child run of an evaluate run."""
    experiment_id = client.get_run(evaluate_run_id).info.experiment_id
    found = client.search_runs(
        [experiment_id],
        f"tags.`mlflow.parentRunId` = '{evaluate_run_id}' and tags.sampler_key = '{sampler_key}'",
    )
    assert len(found) == 1, (evaluate_run_id, sampler_key, len(found))
    return found[0].data


def over_seeds(client, study: dict, cell: str, sampler_key: str) -> dict:
    """{training seed: the metrics and tags (RunData) of one sampler's child run} for a cell of `study`."""
    return {seed: sampler_data(client, study["evaluations"][(cell, seed)][0], sampler_key) for seed in SEEDS}


def evaluate(tracking, train: str, settings: dict, *extra: str) -> str:
    """An evaluate run of `train` under the study's samplers with `settings` (n_samples, iwae_k), seed 0, CPU."""
    args = ["--model", train, "--samplers", SAMPLERS, "--seed", "0", "--device", "cpu", *extra]
    args += ["--n_samples", str(settings["n_samples"]), "--iwae_k", str(settings["iwae_k"])]
    return run_id(tracking.python_step("evaluate", *args))


def shared_study():
    """(store, study): the tiny study of the test session, built by the first worker that asks
    (tests/shared_resources.py) in a store of its own; `store` runs steps into the study's experiment."""
    from tests import shared_resources
    from tests.conftest import Tracking

    def build(folder) -> dict:
        study = build_study(Tracking(folder, active=False))
        evaluations = [[cell, seed, *runs] for (cell, seed), runs in study["evaluations"].items()]
        return {**study, "evaluations": evaluations, "root": str(folder)}

    record = shared_resources.once("tiny-study", build)
    store = Tracking(Path(record.pop("root")), active=False)
    record["evaluations"] = {(cell, seed): tuple(runs) for cell, seed, *runs in record["evaluations"]}
    return store, record


def build_study(tracking) -> dict:
    """prepare_data, then 2 cells x 2 seeds of train (2 epochs, latent 8) and evaluate, and the main run."""
    prepare = run_id(tracking.python_step("prepare_data"))
    steps = [step_record("prepare_data", prepare, dataset="mnist-5k")]
    evaluations = {}
    for loss, forward in CELLS:
        cell = f"{loss}-{forward}"
        for seed in SEEDS:
            args = ("--data", prepare, "--loss", loss, "--forward", forward, "--seed", str(seed), *TINY_TRAIN)
            train = run_id(tracking.python_step("train", *args))
            steps.append(step_record("train", train, cell=cell, seed=seed))
            evaluations[(cell, seed)] = (evaluate(tracking, train, SETTINGS), train)
    for (cell, seed), (evaluation, train) in evaluations.items():
        steps.append(step_record("evaluate", evaluation, cell=cell, seed=seed, train_run_id=train))
    main = write_main_run(tracking.client, tracking.experiment_id, steps)
    return {"main": main, "steps": steps, "evaluations": evaluations, "prepare": prepare}
