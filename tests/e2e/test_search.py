"""The search entry point end to end on the bundled digits with tiny models: `mlflow run -e search`,
a rerun that continues the study, two objectives, a worker killed mid-search (journal storage) and a
whole search killed and resumed (SQLite heartbeats). Results are read back through MlflowClient and
optuna.load_study."""

from __future__ import annotations

import math
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest

from pipeline.core.scores.spread import Summary, spread_text
from pipeline.process.pause import PAUSE_ENV
from pipeline.search import verify
from tests.helpers import TINY_SEARCH, artifact_paths

pytestmark = pytest.mark.slow

TINY = TINY_SEARCH
FINISHED = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)


def as_args(params: dict) -> list[str]:
    return [item for key, value in params.items() for item in (f"--{key}", str(value))]


def last_run_id(output: str) -> str:
    """The search run's id: `mlflow run` reports the trainings it launched first, the search last."""
    return re.findall(r"=== Run \(ID '([0-9a-f]{32})'\) succeeded ===", output)[-1]


def children(tracking, parent: str, step: str) -> list:
    return tracking.client.search_runs(
        [tracking.experiment_id],
        f"tags.`mlflow.parentRunId` = '{parent}' and tags.`pipeline.step` = '{step}'",
        max_results=1000,
    )


def sqlite_study(tracking, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tracking.root / 'optuna.db'}")


def check_trial_runs(tracking, study: optuna.Study, parent: str) -> list:
    """Every trial of this invocation has exactly one child run of the search run, whose status and
    params match the trial; returns the invocation's trials."""
    mine = [t for t in study.trials if t.user_attrs.get("invocation") == parent]
    runs = {r.info.run_id: r for r in children(tracking, parent, "search_trial")}
    assert sorted(t.user_attrs["mlflow_run_id"] for t in mine) == sorted(runs)
    expected = {
        optuna.trial.TrialState.COMPLETE: "FINISHED",
        optuna.trial.TrialState.PRUNED: "KILLED",
        optuna.trial.TrialState.FAIL: "FAILED",
    }
    for trial in mine:
        run = runs[trial.user_attrs["mlflow_run_id"]]
        assert run.info.status == expected[trial.state], trial.number
        assert run.data.params["trial_number"] == str(trial.number)
        assert run.data.params["latent_size"] == str(trial.params["latent_size"])
        assert (run.data.tags.get("pruned") == "true") == (trial.state == optuna.trial.TrialState.PRUNED)
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert run.data.metrics["fid"] == pytest.approx(trial.values[0])
        if trial.state in FINISHED:
            assert "samples/grid.png" in artifact_paths(tracking.client, run.info.run_id)
    return mine


def test_search_through_mlflow_run_then_a_rerun_adds_trials(tracking):
    parent = last_run_id(tracking.mlflow_run("search", {**TINY, "n_trials": 7, "study_name": "e2e"})[1])
    run = tracking.client.get_run(parent)
    assert run.info.status == "FINISHED"
    study = sqlite_study(tracking, "e2e")  # beside the MLflow database by default
    mine = check_trial_runs(tracking, study, parent)
    assert len(mine) == 7 and all(t.state in FINISHED for t in mine)
    assert run.data.metrics["trials"] == 7
    assert run.data.metrics["trials_pruned"] == sum(t.state == optuna.trial.TrialState.PRUNED for t in mine)

    # the baselines come first: the study's Beta(0.25,0.25) unplaced, and the N(0,1)-like Beta(20,20)
    first = {t.number: t for t in mine}
    assert first[0].params["a"] == first[0].params["b"] == 0.25 and first[0].params["mean"] == 0.5
    assert first[0].params["sd"] == pytest.approx(math.sqrt(1 / 6))
    assert (first[1].params["a"], first[1].params["b"], first[1].params["mean"], first[1].params["sd"]) == (
        20,
        20,
        0,
        1,
    )
    baseline = tracking.client.get_run(first[0].user_attrs["mlflow_run_id"])
    assert float(baseline.data.params["loc"]) == pytest.approx(0) and float(
        baseline.data.params["scale"]
    ) == pytest.approx(1)

    # one training per latent size, each a FINISHED child of the search run tagged with its size
    sizes = {t.params["latent_size"] for t in mine}
    trainings = children(tracking, parent, "train")
    assert run.data.metrics["trainings"] == len(trainings) == len(sizes)
    assert sorted(int(r.data.tags["pipeline.latent_size"]) for r in trainings) == sorted(sizes)
    assert all(r.info.status == "FINISHED" for r in trainings)
    assert {t.user_attrs["model_run_id"] for t in mine} == {r.info.run_id for r in trainings}

    # the best trial, its run, the test-split reference lines, the plots
    best = study.best_trial
    assert run.data.tags["best_run"] == best.user_attrs["mlflow_run_id"]
    assert run.data.metrics["best_fid"] == pytest.approx(best.value)
    assert run.data.params["best_latent_size"] == str(best.params["latent_size"])
    for name in ("best_beta", "normal_0_1", "gmm_10"):
        assert math.isfinite(run.data.metrics[f"test_fid/{name}"])
    artifacts = artifact_paths(tracking.client, parent)
    for plot in ("optimization_history", "param_importances", "contour_a_b", "slices"):
        assert artifacts.get(f"optuna/{plot}.png", 0) > 1000, plot
    page = Path(tracking.client.download_artifacts(parent, "optuna/study.html")).read_text()
    assert not re.search(r"<script[^>]+src=", page) and len(page) > 3_000_000  # opens offline: plotly.js is inside
    assert page.count("Plotly.newPlot") == 4

    # a rerun continues the study: 3 more trials, the models are reused
    again = last_run_id(tracking.mlflow_run("search", {**TINY, "n_trials": 3, "study_name": "e2e"})[1])
    study = sqlite_study(tracking, "e2e")
    assert len([t for t in study.trials if t.state in FINISHED]) == 10
    later = check_trial_runs(tracking, study, again)
    assert len(later) == 3 and {t.number for t in later} == {7, 8, 9}
    earlier = [t.params for t in study.trials if t.number < 7]
    assert not [t.number for t in later if t.params in earlier]  # the rerun does not replay the first run's draws
    rerun = tracking.client.get_run(again)
    new_sizes = {t.params["latent_size"] for t in later} - sizes
    assert rerun.data.metrics["trainings"] == len(new_sizes)
    assert rerun.data.metrics["study_trials"] == 10

    # continuing the study with another objective or space is refused before any run
    for args, parameter in (
        (["--objective", "fid,class_entropy"], "objective"),
        (["--latent_sizes", "2,8"], "latent_sizes"),
    ):
        result = tracking.python_step("search", *as_args({**TINY, "study_name": "e2e", "n_trials": 1}), *args)
        assert result.returncode == 2 and f"parameter '{parameter}'" in result.stderr, result.stderr[-2000:]


def test_two_objectives_make_a_pareto_front_without_pruning(tracking):
    result = run_search(tracking, {**TINY, "n_trials": 4, "study_name": "pareto", "objective": "fid,class_entropy"})
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Optuna cannot prune multi-objective studies" in result.stdout
    parent = re.findall(r"run id: ([0-9a-f]{32})", result.stdout)[-1]
    study = sqlite_study(tracking, "pareto")
    assert [d.name for d in study.directions] == ["MINIMIZE", "MAXIMIZE"]
    mine = check_trial_runs(tracking, study, parent)
    assert len(mine) == 4 and all(t.state == optuna.trial.TrialState.COMPLETE for t in mine)
    run = tracking.client.get_run(parent)
    best = [t for t in study.best_trials if t.user_attrs["mlflow_run_id"] == run.data.tags["best_run"]]
    assert len(best) == 1 and "Pareto" in run.data.tags["best_rule"]
    assert run.data.metrics["best_class_entropy"] == pytest.approx(best[0].values[1])
    assert "optuna/pareto_front.png" in artifact_paths(tracking.client, parent)


def run_search(tracking, params: dict, **env_extra) -> subprocess.CompletedProcess:
    """`python -m pipeline search` against the test store, with extra environment variables."""
    env = {**tracking.env(), "OMP_NUM_THREADS": "1", **env_extra}
    return subprocess.run(
        [sys.executable, "-m", "pipeline", "search", *as_args(params)],
        cwd=tracking.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )


class Output:
    """A background process's output, read line by line on a thread as it comes."""

    def __init__(self, process: subprocess.Popen):
        self.process, self.lines, self._new = process, [], queue.Queue()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in iter(self.process.stdout.readline, ""):
            self._new.put(line)
        self._new.put(None)  # the process closed its output

    def wait_for(self, pattern: str, limit_s: float = 400) -> re.Match:
        """The first line (from here on) matching `pattern`; fails when the process ends or `limit_s` passes first."""
        deadline = time.monotonic() + limit_s
        while True:
            try:
                line = self._new.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.process.kill()
                raise AssertionError(f"no line matching {pattern!r}:\n" + self.text()[-4000:]) from None
            assert line is not None, f"ended before {pattern!r}:\n" + self.text()[-4000:]
            self.lines.append(line)
            match = re.search(pattern, line)
            if match:
                return match

    def text(self) -> str:
        """Everything it printed so far; all of it once the process has ended (the reader is joined)."""
        if self.process.poll() is not None:
            self._reader.join(timeout=60)
        while not self._new.empty():
            line = self._new.get()
            self.lines += [line] if line is not None else []
        return "".join(self.lines)


def start_search(tracking, params: dict, pause_trial: int | None = None, **env_extra) -> Output:
    """`python -m pipeline search` in the background; its output lines are collected as they come."""
    env = tracking.env()
    env.update({"OMP_NUM_THREADS": "1", **env_extra})
    if pause_trial is not None:
        env[PAUSE_ENV] = f"search.trial.{pause_trial}"
    process = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "search", *as_args(params)],
        cwd=tracking.root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    return Output(process)


def wait_for_pause(output: Output, trial: int) -> int:
    """The pid of the process paused in `trial` (it says so and waits to be killed)."""
    return int(output.wait_for(rf"paused at search\.trial\.{trial} \(pid (\d+)\)").group(1))


def test_a_worker_killed_mid_search_is_recovered_exactly(tracking, tmp_path):
    journal = tmp_path / "journal.log"
    params = {**TINY, "n_trials": 4, "n_workers": 2, "study_name": "kill", "storage": f"journal:{journal}"}
    search = start_search(tracking, params, pause_trial=2)
    os.kill(wait_for_pause(search, 2), signal.SIGKILL)
    assert search.process.wait(timeout=400) == 0, search.text()[-4000:]
    output = search.text()
    parent = re.findall(r"run id: ([0-9a-f]{32})", output)[-1]
    assert re.search(r"worker \d \(pid \d+\) ended with status -9; its running trials \[2\] failed", output)

    from optuna.storages.journal import JournalFileBackend, JournalStorage

    study = optuna.load_study(study_name="kill", storage=JournalStorage(JournalFileBackend(str(journal))))
    mine = check_trial_runs(tracking, study, parent)
    states = {t.number: t.state for t in mine}
    assert sum(s in FINISHED for s in states.values()) == 4  # exactly n_trials, none counted twice
    assert states[2] == optuna.trial.TrialState.FAIL
    retries = [t for t in mine if t.user_attrs.get("retry_of") == 2]
    assert len(retries) == 1 and retries[0].state in FINISHED  # re-enqueued once, run by a replacement worker
    assert {k: v for k, v in retries[0].params.items()} == study.trials[2].params
    assert not [
        t for t in study.trials if t.state in (optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)
    ]
    killed_run = tracking.client.get_run(study.trials[2].user_attrs["mlflow_run_id"])
    assert killed_run.info.status == "FAILED" and "status -9" in killed_run.data.tags["failure_reason"]
    assert not tracking.client.search_runs(
        [tracking.experiment_id], "attributes.status = 'RUNNING' and tags.`optuna.study_name` = 'kill'"
    )
    run = tracking.client.get_run(parent)
    assert (run.data.metrics["trials"], run.data.metrics["trials_failed"]) == (4, 1)


def test_a_killed_search_is_resumed_through_heartbeats(tracking):
    """One worker on SQLite: the whole search is SIGKILLed inside a trial; the rerun's heartbeat check
    fails that trial, ends its MLflow run FAILED and retries it once; the dead search run ends FAILED."""
    params = {**TINY, "n_trials": 2, "study_name": "heartbeat", "heartbeat": "1,2"}
    search = start_search(tracking, params, pause_trial=1)
    assert wait_for_pause(search, 1) == search.process.pid
    search.process.send_signal(signal.SIGKILL)
    search.process.wait(timeout=60)
    dead_parent = tracking.client.search_runs([tracking.experiment_id], "tags.`optuna.study_name` = 'heartbeat'")[0]
    assert dead_parent.info.status == "RUNNING"
    time.sleep(3)  # past the grace period (2 s) of the last heartbeat

    result = run_search(tracking, {**params, "n_trials": 1})
    assert result.returncode == 0, result.stderr[-3000:]
    parent = re.findall(r"run id: ([0-9a-f]{32})", result.stdout)[-1]
    study = sqlite_study(tracking, "heartbeat")
    stale = study.trials[1]
    assert stale.state == optuna.trial.TrialState.FAIL
    stale_run = tracking.client.get_run(stale.user_attrs["mlflow_run_id"])
    # whichever comes first closes it: the stale-run check of the search (its process is gone) or the heartbeat
    assert stale_run.info.status == "FAILED" and re.search("killed|heartbeat", stale_run.data.tags["failure_reason"])
    retried = [t for t in study.trials if t.user_attrs.get("retry_of") == 1]
    assert len(retried) == 1 and retried[0].user_attrs["invocation"] == parent and retried[0].state in FINISHED
    assert retried[0].params == stale.params
    assert tracking.client.get_run(dead_parent.info.run_id).info.status == "FAILED"
    assert not tracking.client.search_runs(
        [tracking.experiment_id], "attributes.status = 'RUNNING' and tags.`optuna.study_name` = 'heartbeat'"
    )


def test_the_best_trial_is_verified_over_seeds_on_the_test_split(tracking):
    """verify_seeds=0,1: the best latent size trained again with seed 1 (seed 0's model reused), the five
    samplers, the searched Beta's matched normal and N(0, sigma) at each temperature scored on the test
    split per seed, F7/F8/G/H verdicts by the findings' evaluator on the search run, and the report's
    moments, matched normal and temperature figure."""
    import json

    parent = last_run_id(
        tracking.mlflow_run(
            "search", {**TINY, "n_trials": 3, "study_name": "verify", "verify_seeds": "0,1", "pruner": "none"}
        )[1]
    )
    run = tracking.client.get_run(parent)
    study = sqlite_study(tracking, "verify")
    best = study.best_trial
    record = json.loads(Path(tracking.client.download_artifacts(parent, "verify/results.json")).read_text())
    assert (record["seeds"], record["split"], record["latent_size"]) == ([0, 1], "test", best.params["latent_size"])
    assert record["model_run_ids"]["0"] == best.user_attrs["model_run_id"]  # the search's own model, reused
    seed_1 = tracking.client.get_run(record["model_run_ids"]["1"])
    assert seed_1.info.status == "FINISHED" and seed_1.data.tags["mlflow.parentRunId"] == parent
    assert (seed_1.data.params["seed"], seed_1.data.params["latent_size"]) == ("1", str(best.params["latent_size"]))
    assert seed_1.data.params["epochs"] == "1" and seed_1.data.params["hidden_size"] == "32"
    temperatures = ["temperature_0.8", "temperature_1.2", "temperature_1.5", "temperature_2.0"]
    names = ["best_beta", "normal_like_beta", "normal_0_1", "study_beta", "gmm_10", "matched_normal", *temperatures]
    assert list(record["samplers"]) == names and record["samplers"]["study_beta"] == "beta:0.25,0.25"
    assert record["samplers"]["best_beta"] == run.data.tags["best_sampler"]
    assert [record["samplers"][name] for name in temperatures] == [
        "normal:0,0.8",
        "normal:0,1.2",
        "normal:0,1.5",
        "normal:0,2",
    ]
    # the searched Beta's moments (scipy.stats on the placed Beta) and its matched normal N(mean, sd)
    a, b, mean, sd = (best.params[key] for key in ("a", "b", "mean", "sd"))
    moments = record["moments"]["best_beta"]
    assert (moments["mean"], moments["sd"]) == (pytest.approx(mean, abs=1e-9), pytest.approx(sd))
    skewness = 2 * (b - a) * math.sqrt(a + b + 1) / ((a + b + 2) * math.sqrt(a * b))  # unchanged by placement
    assert moments["skewness"] == pytest.approx(skewness)
    assert record["moments"]["normal_0_1"] == {"mean": 0, "sd": 1, "skewness": 0, "excess_kurtosis": 0}
    assert record["samplers"]["matched_normal"] == f"normal:{mean:g},{sd:g}".replace("e+", "e")
    assert record["temperatures"] == {
        "0.8": "temperature_0.8",
        "1": "normal_0_1",
        "1.2": "temperature_1.2",
        "1.5": "temperature_1.5",
        "2": "temperature_2.0",
    }
    runs = children(tracking, parent, "verify")  # one child run per (sampler, seed), the one source of scores
    assert sorted((r.data.tags["sampler_name"], r.data.tags["seed"]) for r in runs) == sorted(
        (name, seed) for name in names for seed in ("0", "1")
    )
    assert len({frozenset(r.data.metrics) for r in runs}) == 1  # identical metric names
    assert {"fid", "precision", "recall", "class_entropy_judge2", "judge_acc_at_sample_sharpness"} <= set(
        runs[0].data.metrics
    )
    results = {}
    for r in runs:
        tags = r.data.tags
        assert r.info.status == "FINISHED" and tags["verification"] == "true"
        assert tags["sampler"] == record["samplers"][tags["sampler_name"]]
        assert tags["latent_size"] == str(best.params["latent_size"])
        assert tags["model_run_id"] == record["model_run_ids"][tags["seed"]]
        label = {"normal_0_1": "N(0,1)", "best_beta": "searched Beta"}.get(tags["sampler_name"])
        if label:
            assert r.info.run_name == f"verify {label} seed {tags['seed']}"
        results.setdefault(tags["sampler_name"], {})[tags["seed"]] = r.data.metrics
    assert not [key for key in run.data.metrics if key.startswith("verify_")]  # no second copy on the search run
    # the verdicts are the findings' evaluator's on the child runs' numbers
    assert record["verdicts"] == json.loads(json.dumps([v.to_dict() for v in verify.verdicts(results)]))
    # seed 0's best Beta on the test split is what the search's own test figures measured
    assert results["best_beta"]["0"]["fid"] == pytest.approx(run.data.metrics["test_fid/best_beta"])
    found = {v["finding"]: v for v in record["verdicts"]}
    assert list(found) == ["F7", "F8", "G", "H"]
    assert {p["b"] for p in found["H"]["parts"]} == {"matched normal"}
    for finding, verdict in found.items():
        assert run.data.tags[f"verdict_{finding}"] == verdict["word"]
        assert [(p["construct"], p["metric"]) for p in verdict["parts"]] == [
            ("realism", "fid"),
            ("realism", "precision"),
            ("realism", "density"),
            ("diversity", "recall"),
            ("diversity", "coverage"),
            ("diversity", "classes_covered"),
        ]
        assert all(j["test"] == "paired t" and j["df"] == 1 for p in verdict["parts"] for j in p["judges"])
    artifacts = artifact_paths(tracking.client, parent)
    assert all(artifacts.get(f"verify/{name}_grid.png", 0) > 1000 for name in names)
    text = Path(tracking.client.download_artifacts(parent, "verify/verdicts.txt")).read_text()
    assert "seeds 0,1; test split" in text and "F7: The searched Beta gives better samples than N(0,1)" in text
    assert f"H: {found['H']['claim']} -> {found['H']['word']}" in text
    assert record["latent_sizes"] and record["latent_sizes"][0]["best_validation_fid"] == pytest.approx(best.value)
    # the answer on the run page: the verdict table as the run's description, linking the verdicts file
    note = run.data.tags["mlflow.note.content"].splitlines()
    assert note[2] == "| finding | claim | verdict |"
    for finding, verdict in found.items():
        assert f"| {finding} | {verdict['claim']} | **{verdict['word']}** |" in note
    link = f"#/experiments/{tracking.experiment_id}/runs/{parent}/artifacts/verify/verdicts.txt"
    assert note[-1] == f"Details: [verify/verdicts.txt]({link}?workflowType=machine_learning)"

    # the search's report: verdicts first, the searched distribution, the grids, then Optuna's plots
    import html

    output = tracking.root / "search-report"
    tracking.mlflow_run("report", {"source": parent, "output": str(output)})
    page = (output / "report.html").read_text()
    order = ("id='verdicts'", "id='distribution'", "id='samples'", "id='optuna'")
    assert [page.index(anchor) for anchor in order] == sorted(page.index(anchor) for anchor in order)
    for finding, verdict in found.items():
        assert f"data-finding='{finding}'" in page and html.escape(verdict["word"], quote=True) in page
    fid_part = found["F7"]["parts"][0]["judges"][0]  # each part's difference and interval, as results.json has it
    assert f"], {fid_part['test']}, df 1: {fid_part['outcome']}" in page
    assert "excess kurtosis" in page and f"Matched normal: {record['samplers']['matched_normal']}" in page
    images = {path.name for path in (output / "images").iterdir()}
    assert {"search_samples.png", "optuna_optimization_history.png", "optuna_contour_a_b.png"} <= images
    assert {"search_temperatures.png", "search_temperature_samples.png"} <= images
    markdown = (output / "report.md").read_text()
    assert markdown.startswith("# Search verify: is there a Beta sampler better than N(0,1)?")
    assert "(images/search_samples.png)" in markdown and "seeds 0, 1 on the TEST split" in markdown
    assert "## 2. The searched distribution" in markdown and "(images/search_temperatures.png)" in markdown
    assert f"| searched Beta | {record['samplers']['best_beta']} | {moments['mean']:.3g} |" in markdown
    for text in (page, markdown):  # the storage and tracking URIs without the machine's folders
        assert str(tracking.root) not in text and "/tmp/" not in text and str(Path.home()) + "/" not in text
    assert "report/report.html" in artifact_paths(tracking.client, parent)
    table = page[page.index("class='samplers'") :]
    fid = re.search(r"<td[^>]*>searched Beta</td><td[^>]*>[^<]*</td><td[^>]*>([^<]*)</td>", table).group(1)
    values = [results["best_beta"][seed]["fid"] for seed in ("0", "1")]
    assert fid == spread_text(Summary.of(values, ["0", "1"]))  # the report's numbers: the child runs'
    note = tracking.client.get_run(parent).data.tags["mlflow.note.content"]  # the report step points it at the report
    link = f"#/experiments/{tracking.experiment_id}/runs/{parent}/artifacts/report/report.html"
    assert note.endswith(f"Details: [report/report.html]({link}?workflowType=machine_learning)")
