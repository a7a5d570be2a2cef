"""The search entry point end to end on the bundled digits with tiny models: `mlflow run -e search`, a
rerun that continues the study, two objectives, and the best trial verified over seeds on the test split.
Results are read back through MlflowClient and optuna.load_study; killed searches: test_search_recovery.py."""

from __future__ import annotations

import math
import re
from pathlib import Path

import optuna
import pytest

from pipeline.core.scores.spread import Summary, spread_text
from pipeline.search import verify
from tests.e2e.search_runs import (
    FINISHED,
    TINY,
    as_args,
    check_trial_runs,
    children,
    last_run_id,
    run_search,
    sqlite_study,
)
from tests.helpers import artifact_paths

pytestmark = pytest.mark.slow


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
        distribution = [
            ("the sample distribution", m, r)
            for m, r in (("fid", "primary"), ("density", "secondary"), ("coverage", "secondary"))
        ]
        realism = [
            ("realism", m, r) for m, r in (("density", "primary"), ("precision", "secondary"), ("fid", "secondary"))
        ]
        diversity = [("diversity", m, "primary" if m == "coverage" else "secondary")
                     for m in ("coverage", "recall", "classes_covered", "most_digits_share")]  # fmt: skip
        expected = distribution if finding in ("F7", "H") else realism + diversity
        assert [(p["construct"], p["metric"], p["role"]) for p in verdict["parts"]] == expected
        assert [c["decides"] for c in verdict["clauses"]] == [True] * (1 if finding in ("F7", "H") else 2)
        tests = {j["test"] for p in verdict["parts"] for j in p["judges"]}
        assert tests <= {"paired t", "sign test"} and all(  # a count (classes covered) by the exact sign test
            j["df"] == 1 for p in verdict["parts"] for j in p["judges"] if j["test"] == "paired t"
        )
    # every trial the search ran is accounted for, with its state and why
    assert sorted(t["number"] for t in record["trials"]) == sorted(
        t.number for t in study.get_trials() if t.user_attrs.get("invocation") == parent
    )
    assert all(t["why"] and t["state"] in ("complete", "pruned", "fail") for t in record["trials"])
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
    assert f"], {fid_part['test']}, df 1, p " in page
    assert "Every trial of this search" in page and "Every value the tests read" in page
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
