"""The search's verification over seeds: its samplers, and its verdicts (F7, F8, gmm:10) by the
report's seed-spread rule on hand-made numbers, a trade of precision for recall shown as a trade."""

from __future__ import annotations

import math

import pytest

from pipeline.core import search_space
from pipeline.core.scores.spread import CONTRADICTED, DISAGREE, HOLDS, NO_SPREAD
from pipeline.search import verify


def results_of(table: dict[str, dict[str, list[float]]]) -> dict:
    """{sampler: {metric: [value per seed]}} -> {sampler: {seed: {metric: value}}}."""
    out: dict = {}
    for name, metrics in table.items():
        for metric, values in metrics.items():
            for seed, value in enumerate(values):
                out.setdefault(name, {}).setdefault(str(seed), {})[metric] = value
    return out


TABLE = {  # three seeds; N(0,1) the middle, the searched Beta trades precision for recall
    "best_beta": {"fid": [129, 131, 130], "precision": [0.50, 0.52, 0.51], "recall": [0.40, 0.41, 0.42]},
    "normal_0_1": {"fid": [216, 210, 213], "precision": [0.70, 0.71, 0.69], "recall": [0.20, 0.22, 0.21]},
    "normal_like_beta": {"fid": [214, 212, 215], "precision": [0.70, 0.70, 0.70], "recall": [0.21, 0.21, 0.2]},
    "study_beta": {"fid": [400, 420, 410], "precision": [0.2, 0.21, 0.19], "recall": [0.01, 0.02, 0.0]},
    "gmm_10": {"fid": [60, 61, 59], "precision": [0.8, 0.81, 0.79], "recall": [0.5, 0.51, 0.49]},
}


def test_the_five_samplers_place_the_betas_as_the_search_does():
    samplers = verify.samplers_of({"latent_size": 10, "a": 15.3969, "b": 2.19178, "mean": 0.3, "sd": 0.8})
    assert list(samplers) == ["best_beta", "normal_like_beta", "normal_0_1", "study_beta", "gmm_10"]
    best = samplers["best_beta"]
    assert (best.loc, best.scale) == pytest.approx(search_space.placement(15.3969, 2.19178, 0.3, 0.8))
    assert best.mean() == pytest.approx(0.3) and math.sqrt(best.variance()) == pytest.approx(0.8)
    like = samplers["normal_like_beta"]
    assert (like.a, like.b) == (20, 20) and like.mean() == pytest.approx(0) and like.variance() == pytest.approx(1)
    assert samplers["study_beta"].spec == "beta:0.25,0.25" and samplers["gmm_10"].spec == "gmm:10"


def test_a_trade_of_precision_for_recall_is_called_a_trade_and_each_part_keeps_its_outcome():
    found = {v["finding"]: v for v in verify.verdicts(results_of(TABLE))}
    f7 = found["F7"]
    assert [p["outcome"] for p in f7["parts"]] == [HOLDS, CONTRADICTED, HOLDS]
    assert f7["outcome"].startswith(verify.TRADE) and "precision higher contradicted" in f7["outcome"]
    assert f7["parts"][0]["evidence"] == "fid searched Beta 130.0 ± 1.0 vs N(0,1) 213 ± 3"
    assert "Beta(20,20) placed like N(0,1) 214 ± 2 vs N(0,1) 213 ± 3 (disagree)" in f7["notes"][0]
    assert found["F8"]["outcome"] == HOLDS  # Beta(0.25,0.25) worse than N(0,1) on all three counts
    assert found["G"]["outcome"] == HOLDS and found["G"]["notes"] == [
        "The searched Beta's mean FID is +70 from gmm:10's."
    ]


def test_differences_within_the_spread_and_single_seeds_draw_no_verdict():
    close = {
        name: {metric: [v + 40 * (i % 2) for i, v in enumerate(values)] for metric, values in metrics.items()}
        for name, metrics in TABLE.items()
    }
    close["best_beta"]["fid"] = [180, 260, 220]  # N(0,1)'s 213 lies within this spread
    part = verify.verdicts(results_of(close))[0]["parts"][0]
    assert part["outcome"] == DISAGREE
    one_seed = {name: {metric: values[:1] for metric, values in metrics.items()} for name, metrics in TABLE.items()}
    assert {v["outcome"] for v in verify.verdicts(results_of(one_seed))} == {
        "inconclusive (one seed: no spread available)"
    }
    assert all(p["outcome"] == NO_SPREAD for v in verify.verdicts(results_of(one_seed)) for p in v["parts"])


def test_the_verdict_text_states_the_rule_and_every_part():
    text = verify.verdict_text(verify.verdicts(results_of(TABLE)), "header line")
    assert text.startswith("header line\nA difference between two means counts only when")
    assert text.count("  - ") == 9 and "F8: The study's Beta(0.25,0.25) is worse than N(0,1)" in text


def test_verify_seeds_none_means_no_verification():
    from pipeline.configs import SearchConfig

    assert verify.seeds_of(SearchConfig(verify_seeds="none")) == []
    assert verify.seeds_of(SearchConfig(verify_seeds="2,0")) == [2, 0]


def test_links_open_the_run_or_its_artifact_in_the_model_training_view():
    from pipeline.tracking import descriptions

    run = "ab" * 16
    assert descriptions.run_page("7", run, tracking_uri="sqlite:///mlflow.db") == (
        f"#/experiments/7/runs/{run}?workflowType=machine_learning"
    )
    assert descriptions.run_page("7", run, "https://mlflow.example.org/", artifact="verify/verdicts.txt") == (
        f"https://mlflow.example.org/#/experiments/7/runs/{run}/artifacts/verify/verdicts.txt"
        "?workflowType=machine_learning"
    )


def test_the_search_runs_description_is_its_verdict_table_with_a_link():
    from pipeline.tracking.verification import search_description

    record = {
        "best_trial": 4,
        "latent_size": 10,
        "seeds": [0, 1],
        "samplers": {"best_beta": "beta:2,3,-1,2"},
        "verdicts": [
            {"finding": "F7", "claim": "The searched Beta is better.", "outcome": "a trade: FID | lower holds"},
            {"finding": "F8", "claim": "Beta(0.25,0.25) is worse.", "outcome": HOLDS},
        ],
    }
    text = search_description("c" * 32, "3", record, "report/report.html")
    lines = text.splitlines()
    assert lines[0].startswith("**Does a Beta sampler beat N(0,1)?** Best trial 4 at latent size 10 (beta:2,3,-1,2)")
    assert lines[2:6] == [
        "| finding | claim | verdict |",
        "|---|---|---|",
        "| F7 | The searched Beta is better. | **a trade: FID \\| lower holds** |",
        f"| F8 | Beta(0.25,0.25) is worse. | **{HOLDS}** |",
    ]
    assert lines[-1] == (
        f"Details: [report/report.html](#/experiments/3/runs/{'c' * 32}/artifacts/report/report.html"
        "?workflowType=machine_learning)"
    )
