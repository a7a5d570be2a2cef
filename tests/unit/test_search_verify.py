"""pipeline/search/verify.py:
The search's verification over seeds: its samplers (the matched normal, the temperatures), and its
verdicts (F7, F8, G, H by the findings' evaluator) on hand-made numbers, as verdicts.txt and the report show them."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from pipeline.core import search_space
from pipeline.core.findings.evaluator import holm
from pipeline.core.model.samplers import BetaSampler
from pipeline.search import verify


def results_of(table: dict[str, dict[str, list[float]]]) -> dict:
    """{sampler: {metric: [value per seed]}} -> {sampler: {seed: {metric: value}}}."""
    out: dict = {}
    for name, metrics in table.items():
        for metric, values in metrics.items():
            for seed, value in enumerate(values):
                out.setdefault(name, {}).setdefault(str(seed), {})[metric] = value
    return out


TABLE = {  # three seeds, one model per seed: every pair of samplers is paired by seed
    "best_beta": {
        "fid": [130, 131, 129],
        "precision": [0.50, 0.52, 0.51],
        "density": [0.42, 0.44, 0.43],
        "recall": [0.40, 0.41, 0.42],
        "coverage": [0.27, 0.29, 0.28],
        "classes_covered": [10, 10, 10],
        "classes_covered_judge2": [9, 10, 10],
    },
    "normal_0_1": {
        "fid": [213, 210, 216],
        "precision": [0.70, 0.71, 0.69],
        "density": [0.74, 0.75, 0.73],
        "recall": [0.20, 0.22, 0.21],
        "coverage": [0.335, 0.345, 0.325],
        "classes_covered": [10, 10, 10],
        "classes_covered_judge2": [10, 10, 9],
    },
    "study_beta": {
        "fid": [400, 420, 410],
        "precision": [0.2, 0.21, 0.19],
        "density": [0.1, 0.12, 0.11],
        "recall": [0.01, 0.02, 0.0],
        "coverage": [0.05, 0.06, 0.04],
        "classes_covered": [3, 4, 3],
        "classes_covered_judge2": [2, 3, 2],
    },
    "gmm_10": {
        "fid": [60, 61, 59],
        "precision": [0.8, 0.81, 0.79],
        "density": [0.9, 0.92, 0.91],
        "recall": [0.5, 0.51, 0.49],
        "coverage": [0.6, 0.61, 0.59],
        "classes_covered": [10, 10, 10],
        "classes_covered_judge2": [10, 10, 10],
    },
    "matched_normal": {  # the searched Beta's twin within the seeds' noise
        "fid": [131, 129, 132],
        "precision": [0.51, 0.50, 0.52],
        "density": [0.43, 0.41, 0.44],
        "recall": [0.41, 0.42, 0.40],
        "coverage": [0.28, 0.27, 0.29],
        "classes_covered": [10, 10, 10],
        "classes_covered_judge2": [10, 9, 10],
    },
}


def test_the_samplers_place_the_betas_as_the_search_does():
    samplers = verify.samplers_of({"latent_size": 10, "a": 15.3969, "b": 2.19178, "mean": 0.3, "sd": 0.8})
    assert list(samplers) == [
        "best_beta",
        "normal_like_beta",
        "normal_0_1",
        "study_beta",
        "gmm_10",
        "matched_normal",
        "temperature_0.8",
        "temperature_1.2",
        "temperature_1.5",
        "temperature_2.0",
    ]
    best = samplers["best_beta"]
    assert (best.loc, best.scale) == pytest.approx(search_space.placement(15.3969, 2.19178, 0.3, 0.8))
    assert best.mean() == pytest.approx(0.3) and math.sqrt(best.variance()) == pytest.approx(0.8)
    like = samplers["normal_like_beta"]
    assert (like.a, like.b) == (20, 20) and like.mean() == pytest.approx(0) and like.variance() == pytest.approx(1)
    assert samplers["study_beta"].spec == "beta:0.25,0.25" and samplers["gmm_10"].spec == "gmm:10"


def test_the_matched_normal_has_the_placed_betas_mean_and_sd():
    # Beta(2,2) at loc -1, scale 2: mean -1 + 2 * 1/2 = 0, sd 2 * sqrt(1/20) = 0.447214 (to six digits)
    assert verify.matched_normal(BetaSampler(2, 2, -1, 2)).spec == "normal:0,0.447214"
    # Beta(1,3) at loc 1, scale 4: mean 1 + 4/4 = 2, sd 4 * sqrt(3/80) = 0.774597
    assert verify.matched_normal(BetaSampler(1, 3, 1, 4)).spec == "normal:2,0.774597"
    searched = verify.samplers_of({"latent_size": 10, "a": 15.3969, "b": 2.19178, "mean": 0.3, "sd": 0.8})
    assert searched["matched_normal"].spec == "normal:0.3,0.8"  # the search placed it at mean 0.3, sd 0.8


def test_the_temperature_samplers_are_n_0_sigma_with_n_0_1_on_the_curve():
    samplers = verify.samplers_of({"latent_size": 10, "a": 2.0, "b": 3.0, "mean": 0.0, "sd": 1.0})
    assert [samplers[f"temperature_{s}"].spec for s in (0.8, 1.2, 1.5, 2.0)] == [
        "normal:0,0.8",
        "normal:0,1.2",
        "normal:0,1.5",
        "normal:0,2",
    ]
    assert verify.LABELS["temperature_0.8"] == "N(0, 0.8²)" and verify.LABELS["temperature_2.0"] == "N(0, 2²)"
    assert verify.temperature_curve() == {
        0.8: "temperature_0.8",
        1.0: "normal_0_1",
        1.2: "temperature_1.2",
        1.5: "temperature_1.5",
        2.0: "temperature_2.0",
    }
    assert set(verify.LABELS) == set(samplers)


def test_the_verdicts_are_the_findings_evaluators_on_their_primaries():
    found = {v.finding: v for v in verify.verdicts(results_of(TABLE))}
    assert list(found) == ["F7", "F8", "G", "H"]
    # F7 is decided by FID alone (the search's objective); density and coverage point the other way beside it
    assert {name: v.word for name, v in found.items()} == {"F7": "holds", "F8": "holds", "G": "holds", "H": "holds"}
    f7 = found["F7"].to_dict()
    assert [(p["metric"], p["role"], p["outcome"]) for p in f7["parts"]] == [
        ("fid", "primary", "holds"),
        ("density", "secondary", "contradicted"),
        ("coverage", "secondary", "contradicted"),
    ]
    # FID, paired: d = (-83, -79, -87), mean -83, sd 4; 95 %: -83 ± t(0.975, 2) 4.3027 * 4/sqrt(3) = ± 9.937
    fid = f7["parts"][0]["judges"][0]
    assert (fid["test"], fid["df"], fid["difference"]) == ("paired t", 2, pytest.approx(-83))
    assert (fid["low"], fid["high"]) == (pytest.approx(-92.937, abs=1e-3), pytest.approx(-73.063, abs=1e-3))
    assert fid["p_value"] == pytest.approx(stats.ttest_rel([130, 131, 129], [213, 210, 216]).pvalue)
    # H: FID differences (-1, 2, -3) lie within ±10 by two one-sided paired t tests
    d = [-1, 2, -3]
    tost = max(
        stats.ttest_1samp(d, -10, alternative="greater").pvalue, stats.ttest_1samp(d, 10, alternative="less").pvalue
    )
    h = found["H"].clauses[0]
    assert (h.side, h.p_raw) == ("within", pytest.approx(tost))
    # Holm over the search's five primary tests
    family = [c.p_raw for v in found.values() for c in v.clauses]
    assert [c.p_adjusted for v in found.values() for c in v.clauses] == pytest.approx(holm(family))


def test_the_verdict_text_states_the_rules_and_every_part():
    text = verify.verdict_text(verify.verdicts(results_of(TABLE)), "header line")
    lines = text.splitlines()
    assert lines[0] == "header line" and lines[1].startswith("The unit is the training seed.")
    assert "F7: The searched Beta gives better samples than N(0,1) at the searched latent size. -> holds" in lines
    assert "H: The searched Beta is a temperature, not a shape" in text
    assert (
        sum(line.startswith("  ✓ searched Beta nearer the real digits than N(0,1) — “better samples") for line in lines)
        == 1
    )
    assert "within ±10: TOST p" in text


def test_the_report_shows_each_part_with_its_difference_and_interval():
    from analysis import search_verdicts

    shown = search_verdicts.view(verify.verdicts(results_of(TABLE))[0].to_dict())
    assert (shown.finding, shown.word, shown.outcome) == ("F7", "holds", "holds")
    clause, lines = shown.clauses[0]
    assert clause.startswith(
        "searched Beta nearer the real digits than N(0,1) (the sample distribution) — “better samples (the "
        "search's objective)”; primary: the claim is about the whole sample distribution"
    )
    assert lines[0].startswith(
        "FID (LeNet features) (searched Beta − N(0,1)), primary: -83.0 [95 % CI -92.9, -73.1], paired t, df 2, p 0.00077"
    )
    assert search_verdicts.interval_text(
        {"low": -0.5, "high": 1.5, "difference": 0.5, "test": "paired t", "df": 1, "a_values": [1, 2],
         "b_values": [0.5, 1.5], "seeds_needed": 7, "p_greater": 0.21, "p_less": 0.79}, "greater"
    ) == "+0.5 [95 % CI -0.5, +1.5], paired t, df 1, p 0.42: unsettled; about 7 seeds would settle it"  # fmt: skip


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
            {"finding": "F7", "claim": "The searched Beta is better.", "outcome": "mixed", "word": "mixed | x"},
            {"finding": "F8", "claim": "Beta(0.25,0.25) is worse.", "outcome": "holds", "word": "holds; FID unsettled"},
        ],
    }
    text = search_description("c" * 32, "3", record, "report/report.html")
    lines = text.splitlines()
    assert lines[0].startswith("**Does a Beta sampler beat N(0,1)?** Best trial 4 at latent size 10 (beta:2,3,-1,2)")
    assert lines[2:6] == [
        "| finding | claim | verdict |",
        "|---|---|---|",
        "| F7 | The searched Beta is better. | **mixed \\| x** |",
        "| F8 | Beta(0.25,0.25) is worse. | **holds; FID unsettled** |",
    ]
    assert lines[-1] == (
        f"Details: [report/report.html](#/experiments/3/runs/{'c' * 32}/artifacts/report/report.html"
        "?workflowType=machine_learning)"
    )


def test_the_report_draws_the_temperature_curve_and_marks_the_searched_beta_at_its_sd():
    from analysis import search_report

    sigmas = {"0.8": "temperature_0.8", "1": "normal_0_1", "1.2": "temperature_1.2"}
    fid = {"temperature_0.8": [150, 154], "normal_0_1": [140, 144], "temperature_1.2": [160, 170]}
    fid |= {"best_beta": [130, 131], "matched_normal": [133, 135]}
    results = {name: {str(seed): {"fid": v} for seed, v in enumerate(values)} for name, values in fid.items()}
    record = {
        "results": results,
        "temperatures": sigmas,
        "labels": verify.LABELS,
        "samplers": {"best_beta": "beta:2,2,-1,4", "normal_0_1": "normal:0,1", "matched_normal": "normal:1,0.894427"},
        "moments": {
            "best_beta": search_space.placed_beta_moments(2, 2, -1, 4),
            "normal_0_1": search_space.STANDARD_NORMAL_MOMENTS,
        },
    }
    assert search_report.moments_table(record) == [
        ["distribution", "spec", "mean", "standard deviation", "skewness", "excess kurtosis"],
        ["searched Beta", "beta:2,2,-1,4", "1", "0.8944", "0", "-0.8571"],
        ["N(0,1)", "normal:0,1", "0", "1", "0", "0"],
    ]
    assert search_report.matched_text(record).startswith("Matched normal: normal:1,0.894427, the normal with")
    record["moments"]["normal_0_1"] = {"mean": -1e-17, "sd": 1.0, "skewness": -0.0, "excess_kurtosis": 2e-16}
    assert search_report.moments_table(record)[2] == ["N(0,1)", "normal:0,1", "0", "1", "0", "0"]  # rounding noise
    figure = search_report.temperature_figure_of(record)
    fid_panel = figure.axes[0]
    assert fid_panel.get_title().startswith("realism: FID")
    drawn = {bars.get_label(): bars.lines[0].get_xydata().tolist() for bars in fid_panel.containers}
    curve, beta, matched = drawn["N(0, σ²)"], drawn["searched Beta"], drawn["matched normal"]
    assert curve == [[0.8, 152], [1.0, 142], [1.2, 165]]  # N(0, sigma²) by sigma, mean over the two seeds
    assert beta[0] == pytest.approx([0.894427, 130.5]) and matched[0] == pytest.approx([0.894427, 134])  # at the sd
    assert [axis.get_title().split(":")[0] for axis in figure.axes] == ["realism"] * 3 + ["diversity"] * 3


def test_a_difference_without_spread_is_written_as_one_number():
    from analysis import search_verdicts

    same = {"low": -70.0, "high": -70.0, "difference": -70.0, "test": "paired t", "df": 1, "a_values": [60, 61],
            "b_values": [130, 131], "p_greater": 1.0, "p_less": 0.0}  # fmt: skip
    written = search_verdicts.interval_text(same, "less")
    assert written == "-70.0 on every seed (no spread), paired t, df 1, p < 0.0001: holds"
    one = {"low": math.nan, "high": math.nan, "difference": 3.0, "test": "paired t", "df": 0, "a_values": [60],
           "b_values": [57], "p_greater": None, "p_less": None}  # fmt: skip
    assert search_verdicts.interval_text(one, "less") == "one seed: no test"


def test_the_search_pages_setup_names_no_folder_of_the_machine(tmp_path, monkeypatch):
    """A data folder beside the working directory is shown relative to it, one elsewhere by its last parts."""
    from mlflow.entities import Param, Run, RunData, RunInfo

    from analysis import search_report

    def setup(data: str) -> str:
        params = [Param("data", data), Param("latent_sizes", "2,10"), Param("epochs", "40")]
        return search_report.setup_line(
            Run(RunInfo("ab" * 16, "7", "u", "FINISHED", 0, 1, "active"), RunData(params=params))
        )

    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    assert setup(f"idx:{tmp_path}/shared/data/MNIST/raw").startswith(
        "Data idx:../shared/data/MNIST/raw, latent sizes 2,10"
    )
    assert setup("idx:/elsewhere/far/away/MNIST/raw").startswith("Data idx:…/MNIST/raw, ")
    assert setup("mnist-5k").startswith("Data mnist-5k, ")
