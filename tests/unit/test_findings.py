"""The findings' evaluator on hand-made numbers: the intervals against scipy.stats and closed forms,
the combining rule on each outcome pattern, and every declared finding on a table written by hand
where it holds and on one where it is contradicted (pipeline/core/findings)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from pipeline.core.findings import SEARCH_FINDINGS, STUDY_FINDINGS, SamplerResults, evaluate_findings, intervals
from pipeline.core.findings.declarations import DIVERSITY, LEVEL, MSE_NORMAL, REALISM, Clause, Finding
from pipeline.core.findings.evaluator import combine, evaluate

SEEDS = (0, 1, 2)

# --- the intervals -----------------------------------------------------------------------------------


def test_the_paired_interval_is_the_t_interval_of_the_per_seed_differences():
    # differences 1, 1.5, 3: mean 11/6, sd 1.0408, se 0.6009, t(0.975, 2) = 4.3027
    interval = intervals.paired({0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.0, 1: 0.5, 2: 1.0})
    assert interval.kind == "paired t" and interval.df == 2
    assert interval.difference == pytest.approx(11 / 6)
    half = 4.302653 * math.sqrt(((1 - 11 / 6) ** 2 + (1.5 - 11 / 6) ** 2 + (3 - 11 / 6) ** 2) / 2 / 3)
    assert (interval.low, interval.high) == pytest.approx((11 / 6 - half, 11 / 6 + half), rel=1e-6)
    scipy_low, scipy_high = stats.ttest_rel([1, 2, 4], [0, 0.5, 1]).confidence_interval(0.95)
    assert (interval.low, interval.high) == pytest.approx((scipy_low, scipy_high))
    assert interval.outcome("greater") == "unsettled"  # the interval (-0.75, 4.42) holds 0
    assert interval.seeds_needed == 4  # t(0.975, 3) * 1.0408 / 2 = 1.656 < 1.833; at 3 seeds 2.585 is not


def test_the_welch_interval_uses_the_welch_satterthwaite_degrees_of_freedom():
    a, b = {0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.0, 1: 0.5, 2: 1.0}
    interval = intervals.welch(a, b)
    va, vb = 7 / 3, 0.25  # sample variances of (1, 2, 4) and (0, 0.5, 1)
    df = (va / 3 + vb / 3) ** 2 / ((va / 3) ** 2 / 2 + (vb / 3) ** 2 / 2)
    assert interval.kind == "Welch t" and interval.df == pytest.approx(df)
    half = stats.t.ppf(0.975, df) * math.sqrt(va / 3 + vb / 3)
    assert (interval.low, interval.high) == pytest.approx((11 / 6 - half, 11 / 6 + half))
    assert interval.outcome("greater") == "unsettled"


def test_a_welch_interval_against_a_constant_side_is_the_other_sides_t_interval_without_a_warning():
    """4, 5, 6 classes covered against 10 on every seed: Welch's df is the varying side's n - 1 and the
    interval its one-sample t interval, shifted; scipy's precision-loss warning would be a false alarm."""
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interval = intervals.welch({0: 4.0, 1: 5.0, 2: 6.0}, {0: 10.0, 1: 10.0, 2: 10.0})
    half = 4.302653 / math.sqrt(3)  # t(0.975, 2) * sd 1 / sqrt(3) = 2.484137
    assert interval.df == pytest.approx(2) and interval.difference == pytest.approx(-5)
    assert (interval.low, interval.high) == pytest.approx((-5 - half, -5 + half), abs=1e-6)
    assert interval.outcome("less") == "holds"


def test_a_one_sample_interval_against_a_fixed_level():
    interval = intervals.threshold({0: 9.0, 1: 10.0, 2: 11.0}, 7.5)
    # mean 10, sd 1, se 1/sqrt(3): 2.5 ± 4.302653 / 1.732051 = 2.5 ± 2.484137
    assert (interval.low, interval.high) == pytest.approx((2.5 - 2.484137, 2.5 + 2.484137), abs=1e-6)
    assert interval.outcome("greater") == "holds" and interval.outcome("less") == "contradicted"


def test_values_identical_over_seeds_have_no_spread_and_one_seed_no_interval():
    exact = intervals.threshold({0: 10.0, 1: 10.0, 2: 10.0}, 7.5)
    assert (exact.low, exact.high, exact.outcome("greater")) == (2.5, 2.5, "holds")
    same = intervals.paired({0: 0.3, 1: 0.3}, {0: 0.3, 1: 0.3})
    assert (same.difference, same.outcome("greater"), same.seeds_needed) == (0.0, "unsettled", None)
    single = intervals.paired({0: 5.0}, {0: 1.0})
    assert not single.measured and single.outcome("greater") == "unsettled"
    assert intervals.paired({}, {0: 1.0}).outcome("greater") == "not measured"


# --- the combining rule -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "outcomes, word",
    [
        (["holds", "holds", "unsettled"], "holds"),
        (["contradicted", "unsettled"], "contradicted"),
        (["holds", "contradicted", "unsettled"], "mixed"),
        (["unsettled", "unsettled"], "unsettled"),
        (["not measured", "holds"], "holds"),
        (["not measured"], "not measured"),
    ],
)
def test_one_combining_rule(outcomes, word):
    assert combine(outcomes) == word


class Hand:
    """Measurements written by hand: {subject: {metric: (seed 0, seed 1, seed 2)}}; `cells` says which
    subjects share a model (paired) and which do not (Welch)."""

    def __init__(self, table: dict, cells: dict | None = None):
        self.table, self.cells = table, cells or {}

    def values(self, subject, metric):
        return dict(zip(SEEDS, self.table.get(subject, {}).get(metric, ())))

    def same_model(self, a, b):
        return self.cells.get(a, a) == self.cells.get(b, b)

    def label(self, subject):
        return subject


COVERS = Finding("X", "A covers most digits.", "", (Clause("A covers most digits", DIVERSITY, "A", "better", LEVEL),))


def test_judge_dependent_only_when_the_judges_decide_a_part_differently():
    split = evaluate(COVERS, Hand({"A": {"classes_covered": (9, 10, 10), "classes_covered_judge2": (5, 6, 5)}}))
    assert split.outcome == "judge-dependent" and split.word == "judge-dependent (CNN: holds; k-NN: contradicted)"
    half = evaluate(COVERS, Hand({"A": {"classes_covered": (9, 10, 10), "classes_covered_judge2": (5, 10, 9)}}))
    assert half.outcome == "unsettled" and half.parts[-1].note == "CNN holds, k-NN unsettled"
    assert "classes covered unsettled: CNN holds, k-NN unsettled (" in half.evidence()
    # recall and coverage have no absolute level of "most": listed as not tested, not dropped
    assert [p.untested for p in half.parts[:2]] == [
        "recall has no absolute level of 'diverse'",
        "coverage has no absolute level of 'diverse'",
    ]


def test_a_holding_finding_names_its_undecided_parts_and_its_cell_gives_each_metric_once():
    finding = Finding(
        "Y", "A more realistic than B.", "", (Clause("A more realistic than B", REALISM, "A", "better", "B"),)
    )
    table = {
        "A": {"fid": (100, 104, 102), "precision": (0.80, 0.81, 0.79), "density": (0.5, 0.7, 0.4)},
        "B": {"fid": (140, 146, 143), "precision": (0.60, 0.62, 0.61), "density": (0.45, 0.5, 0.6)},
    }
    verdict = evaluate(finding, Hand(table))
    assert verdict.word == "holds; density unsettled"
    # precision's spread 0.010 starts with a 1: two significant digits, so three decimals on both sides
    assert verdict.evidence() == (
        "A more realistic than B: FID (LeNet features) better (102 vs 143), precision better (0.800 vs 0.610), "
        "density unsettled (0.53 ± 0.15 vs 0.52 ± 0.08)"
    )
    flipped = evaluate(finding, Hand({"A": table["B"], "B": table["A"]}))
    assert flipped.word == "contradicted; density unsettled"
    assert flipped.parts[0].intervals[0][1].kind == "Welch t"  # A and B are different models here
    assert evaluate(finding, Hand(table, {"A": "cell", "B": "cell"})).parts[0].intervals[0][1].kind == "paired t"


# --- every declared finding, on tables written by hand -----------------------------------------------


def _seeds(mean: float, step: float) -> tuple[float, float, float]:
    return (mean - step, mean, mean + step)


def _share_3(share: float) -> tuple:
    return _seeds(share, 0.005)


def _subject(fid, precision, density, recall, coverage, covered, sharpness, confidence, share3, lead3):
    judged = {
        "classes_covered": _seeds(covered, 0.3),
        "share_of_digit_3": _share_3(share3),
        "lead_of_digit_3": _seeds(lead3, 0.005),
    }
    return {
        "fid": _seeds(fid, 3),
        "precision": _seeds(precision, 0.01),
        "density": _seeds(density, 0.01),
        "recall": _seeds(recall, 0.01),
        "coverage": _seeds(coverage, 0.01),
        "sharpness": _seeds(sharpness, 0.001),
        "sharpness_real": (0.158, 0.158, 0.158),
        "confidence": _seeds(confidence, 0.005),
        **judged,
        **{f"{name}_judge2": values for name, values in judged.items()},
    }


CELLS = {"E1": "bce", "E2": "bce", "E3": "bce", "E4": "mse", MSE_NORMAL: "mse", "E5": "sampled"}
# the write-up's world: every clause as the write-up says it
#          fid  prec  dens  recall cov  covered sharp  conf  share3 lead3
AS_WRITTEN = {
    "E1": _subject(140, 0.74, 0.70, 0.63, 0.34, 10, 0.066, 0.815, 0.10, -0.02),
    "E2": _subject(220, 0.45, 0.30, 0.70, 0.30, 9, 0.150, 0.820, 0.10, -0.02),
    "E3": _subject(480, 0.30, 0.20, 0.01, 0.05, 5, 0.032, 0.750, 0.30, 0.10),
    "E4": _subject(500, 0.25, 0.15, 0.01, 0.04, 4, 0.040, 0.780, 0.35, 0.15),
    MSE_NORMAL: _subject(127, 0.85, 0.80, 0.44, 0.30, 10, 0.080, 0.853, 0.10, -0.02),
    "E5": _subject(546, 0.20, 0.10, 0.02, 0.03, 7, 0.006, 0.500, 0.20, 0.05),
}
# the opposite world: every clause the other way
OPPOSITE = {
    "E1": _subject(400, 0.30, 0.20, 0.10, 0.05, 5, 0.200, 0.600, 0.10, -0.02),
    "E2": _subject(300, 0.50, 0.40, 0.70, 0.30, 6, 0.150, 0.820, 0.10, -0.02),
    "E3": _subject(200, 0.70, 0.60, 0.40, 0.30, 9, 0.250, 0.750, 0.05, -0.10),
    "E4": _subject(100, 0.90, 0.80, 0.40, 0.30, 9, 0.100, 0.700, 0.04, -0.10),
    MSE_NORMAL: _subject(300, 0.50, 0.40, 0.44, 0.30, 10, 0.050, 0.500, 0.10, -0.02),
    "E5": _subject(546, 0.20, 0.10, 0.30, 0.20, 8, 0.300, 0.900, 0.02, -0.20),
}


def test_every_study_finding_holds_where_the_write_up_is_right():
    words = {v.finding: v.word for v in evaluate_findings(STUDY_FINDINGS, Hand(AS_WRITTEN, CELLS))}
    assert words == {"F1": "holds", "F2": "holds", "F3": "holds", "F4": "holds", "F5": "holds", "F6": "holds"}


def test_every_study_finding_is_contradicted_where_the_write_up_is_wrong():
    words = {v.finding: v.word for v in evaluate_findings(STUDY_FINDINGS, Hand(OPPOSITE, CELLS))}
    assert words == {
        "F1": "contradicted",
        "F2": "contradicted",
        "F3": "contradicted",
        "F4": "contradicted",
        "F5": "contradicted",
        "F6": "contradicted",
    }


def test_f4_tests_sharper_under_n01_as_well_as_under_beta():
    f4 = next(v for v in evaluate_findings(STUDY_FINDINGS, Hand(AS_WRITTEN, CELLS)) if v.finding == "F4")
    compared = {(p.a, p.b, p.metric.name) for p in f4.parts}
    assert {(MSE_NORMAL, "E1", "sharpness"), ("E4", "E3", "sharpness")} <= compared
    assert {p.intervals[0][1].kind for p in f4.parts if p.b == "E1"} == {"Welch t"}  # two model cells
    assert {p.intervals[0][1].kind for p in f4.parts if p.b == MSE_NORMAL} == {"paired t"}  # one cell


SAMPLERS = ("best_beta", "normal_0_1", "study_beta", "gmm_10", "matched_normal")


def _search(ranking: list[str]) -> SamplerResults:
    """Every metric of every sampler ordered by `ranking` (best first), with per-seed noise."""
    results = {}
    for place, name in enumerate(ranking):
        good = len(ranking) - place  # 5 for the best
        scores = {
            "fid": (200 - 20 * good, 100, 100),
            "precision": 0.5 + 0.05 * good,
            "density": 0.4 + 0.05 * good,
            "recall": 0.3 + 0.05 * good,
            "coverage": 0.2 + 0.03 * good,
            "classes_covered": 5 + good,
            "classes_covered_judge2": 5 + good,
        }
        results[name] = {
            str(seed): {m: (v[0] + seed if isinstance(v, tuple) else v + 0.002 * seed) for m, v in scores.items()}
            for seed in SEEDS
        }
    return SamplerResults(results)


def test_every_search_finding_holds_and_is_contradicted_by_construct():
    as_claimed = ["gmm_10", "best_beta", "matched_normal", "normal_0_1", "study_beta"]
    words = {v.finding: v.word for v in evaluate_findings(SEARCH_FINDINGS, _search(as_claimed))}
    assert words == {"F7": "holds", "F8": "holds", "G": "holds", "H": "holds"}
    reversed_ = {v.finding: v.word for v in evaluate_findings(SEARCH_FINDINGS, _search(as_claimed[::-1]))}
    assert reversed_ == {"F7": "contradicted", "F8": "contradicted", "G": "contradicted", "H": "contradicted"}
    verdict = evaluate_findings(SEARCH_FINDINGS, _search(as_claimed))[0]
    assert [p.metric.name for p in verdict.parts] == [
        "fid",
        "precision",
        "density",
        "recall",
        "coverage",
        "classes_covered",
    ]
    assert verdict.to_dict()["parts"][0]["judges"][0]["test"] == "paired t"
    assert set(SAMPLERS) == {c.subject for f in SEARCH_FINDINGS for c in f.clauses} | {
        c.versus for f in SEARCH_FINDINGS for c in f.clauses
    }
