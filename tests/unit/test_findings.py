"""The findings' evaluator on hand-made numbers: the intervals against scipy.stats and closed forms,
the combining rule on each outcome pattern, and every declared finding on a table written by hand
where it holds and on one where it is contradicted (pipeline/core/findings)."""

from __future__ import annotations

import math

import pytest
from scipy import stats

from pipeline.core.findings import SEARCH_FINDINGS, STUDY_FINDINGS, SamplerResults, evaluate_findings, intervals
from pipeline.core.findings.declarations import (
    DENSITY,
    DIVERSITY,
    E5_BETA,
    LEVEL,
    MOST_DIGITS_SHARE,
    MSE_NORMAL,
    REALISM,
    SUBJECT_LABELS,
    VARIANCE_TWO,
    Clause,
    Construct,
    Finding,
)
from pipeline.core.findings.evaluator import holm
from pipeline.core.findings.text import count_text

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


def test_p_values_are_scipys_and_the_two_sided_one_decides_as_the_interval_does():
    a, b = {0: 1.0, 1: 2.0, 2: 4.0}, {0: 0.0, 1: 0.5, 2: 1.0}
    paired = intervals.paired(a, b)
    assert paired.p_greater == pytest.approx(stats.ttest_rel([1, 2, 4], [0, 0.5, 1], alternative="greater").pvalue)
    assert paired.p_value == pytest.approx(stats.ttest_rel([1, 2, 4], [0, 0.5, 1]).pvalue)
    welch = intervals.welch(a, b)
    assert welch.p_value == pytest.approx(stats.ttest_ind([1, 2, 4], [0, 0.5, 1], equal_var=False).pvalue)
    assert (paired.p_value > 0.05) == (paired.low <= 0 <= paired.high)


def test_a_count_gets_an_exact_test_not_a_t_interval():
    """10 classes on all 5 seeds against 7.5: the sign test's two-sided p is 2 / 2^5 = 0.0625, so a count
    tied on every seed cannot decide at 5 % on 5 seeds; between cells, the permutation test of 5 against
    5 values all above the others has one-sided p 1 / C(10, 5) = 1 / 252."""
    tied = intervals.threshold({s: 10.0 for s in range(5)}, 7.5, count=True)
    assert tied.kind == "sign test" and tied.p_value == pytest.approx(0.0625)
    assert tied.outcome("greater") == "unsettled" and (tied.low, tied.high) == (2.5, 2.5)
    apart = intervals.welch({s: 10.0 for s in range(5)}, dict(enumerate([5.0, 6, 7, 6, 5])), count=True)
    assert apart.kind == "exact permutation test" and apart.p_greater == pytest.approx(1 / 252)
    assert apart.outcome("greater") == "holds"
    assert count_text([10.0] * 5) == "10 on all 5 seeds" and count_text([9.0, 10.0]) == "9, 10"


def test_an_equivalence_is_two_one_sided_tests_at_its_margin():
    """Paired differences −1, 0, 1, 0.5, −0.5 (mean 0, sd 0.79): within ±2 by TOST, as scipy's shifted
    one-sided tests give; within ±0.1 unsettled; 5, 6, 7, 5.5, 6.5 lie beyond ±2."""
    a = {s: 10.0 + d for s, d in enumerate([-1.0, 0.0, 1.0, 0.5, -0.5])}
    b = {s: 10.0 for s in range(5)}
    near = intervals.paired(a, b, margin=2.0)
    d = [-1.0, 0.0, 1.0, 0.5, -0.5]
    tost = max(
        stats.ttest_1samp(d, -2.0, alternative="greater").pvalue, stats.ttest_1samp(d, 2.0, alternative="less").pvalue
    )
    assert near.p_within == pytest.approx(tost) and near.outcome("alike") == "holds"
    assert intervals.paired(a, b, margin=0.1).outcome("alike") == "unsettled"
    far = intervals.paired({s: 10.0 + d for s, d in enumerate([5.0, 6, 7, 5.5, 6.5])}, b, margin=2.0)
    assert far.outcome("alike") == "contradicted"


def test_holm_on_a_hand_computed_case():
    """p = 0.01, 0.04, 0.03, 0.005 (m = 4): sorted 0.005, 0.01, 0.03, 0.04 times 4, 3, 2, 1 is 0.02, 0.03,
    0.06, 0.04, made monotone 0.02, 0.03, 0.06, 0.06; NaN (not measured) takes no place in the family."""
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    adjusted = holm([0.01, math.nan, 0.02])
    assert adjusted[0] == pytest.approx(0.02) and math.isnan(adjusted[1]) and adjusted[2] == pytest.approx(0.02)
    assert holm([0.6, 0.9]) == pytest.approx([1.0, 1.0])


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


def _clause(text, construct, claim, versus, primary, **more):
    return Clause(text, "as written", construct, "A", claim, versus, primary, "by hand", **more)


def test_a_clause_is_decided_by_its_primary_alone_and_the_others_are_evidence():
    """Density holds and decides; FID and precision point the other way and are shown, deciding nothing."""
    finding = Finding(
        "Y", "A more realistic than B.", "", (_clause("A more realistic than B", REALISM, "better", "B", DENSITY),)
    )
    table = {
        "A": {"fid": (150, 154, 152), "precision": (0.50, 0.51, 0.49), "density": (0.80, 0.81, 0.79)},
        "B": {"fid": (100, 104, 102), "precision": (0.80, 0.82, 0.81), "density": (0.40, 0.42, 0.41)},
    }
    verdict = evaluate_findings([finding], Hand(table, {"A": "cell", "B": "cell"}))[0]
    assert verdict.word == "holds"
    assert [(p.metric.name, p.primary, p.outcome) for p in verdict.parts] == [
        ("density", True, "holds"),
        ("precision", False, "contradicted"),
        ("fid", False, "contradicted"),
    ]
    assert verdict.evidence().startswith("A more realistic than B: holds (density 0.800 vs 0.410, p ")


def test_holm_changes_a_word_that_the_raw_p_would_give():
    """Two clauses with raw p 0.03 and 0.04: each holds alone at 5 %, but Holm adjusts them to 0.06 and
    0.06; the finding is then unsettled, and a sensitivity row keeps its raw p and decides nothing."""
    one = _clause("A above the level", Construct("c", (MOST_DIGITS_SHARE,)), "better", LEVEL, MOST_DIGITS_SHARE)
    two = Clause("B above the level", "as written", Construct("c", (MOST_DIGITS_SHARE,)), "B", "better", LEVEL,
                 MOST_DIGITS_SHARE, "by hand")  # fmt: skip
    side = Clause("C above the level", "beyond", Construct("c", (MOST_DIGITS_SHARE,)), "C", "better", LEVEL,
                  MOST_DIGITS_SHARE, "by hand", decides=False)  # fmt: skip
    values = {"A": (0.057, 0.06, 0.063), "B": (0.0565, 0.06, 0.0635), "C": (0.057, 0.06, 0.063)}
    table = {k: {"most_digits_share": v, "most_digits_share_judge2": v} for k, v in values.items()}
    verdict = evaluate_findings([Finding("Z", "", "", (one, two, side))], Hand(table))[0]
    raw = [c.p_raw for c in verdict.clauses]
    assert raw[:2] == pytest.approx([0.029, 0.038], abs=0.001) and raw[2] == raw[0]
    assert [c.p_adjusted for c in verdict.clauses[:2]] == pytest.approx(holm(raw[:2]))
    assert all(p > 0.05 for p in holm(raw[:2])) and verdict.outcome == "unsettled"
    assert verdict.clauses[2].outcome == "holds" and math.isnan(verdict.clauses[2].p_adjusted)


def test_a_judged_primary_must_hold_by_both_judges():
    finding = Finding("X", "", "", (_clause("A covers most digits", DIVERSITY, "better", LEVEL, MOST_DIGITS_SHARE),))
    both = evaluate_findings([finding], Hand({"A": {"most_digits_share": (0.08, 0.081, 0.082),
                                                    "most_digits_share_judge2": (0.07, 0.072, 0.071)}}))[0]  # fmt: skip
    assert both.word == "holds"
    split = evaluate_findings([finding], Hand({"A": {"most_digits_share": (0.08, 0.081, 0.082),
                                                     "most_digits_share_judge2": (0.02, 0.021, 0.022)}}))[0]  # fmt: skip
    assert split.clauses[0].outcome == "judge-dependent" and split.outcome == "unsettled"
    assert split.clauses[0].note == "the judges point opposite ways"


def test_the_combining_rule_on_each_pattern():
    make = lambda *values: {
        f"S{i}": {"most_digits_share": v, "most_digits_share_judge2": v} for i, v in enumerate(values)
    }  # noqa: E731
    up, down, flat = (0.09, 0.091, 0.092), (0.01, 0.011, 0.012), (0.04, 0.05, 0.06)
    clauses = tuple(
        Clause(f"S{i} above", "", Construct("c", (MOST_DIGITS_SHARE,)), f"S{i}", "better", LEVEL, MOST_DIGITS_SHARE, "")
        for i in range(3)
    )
    word = lambda *v: evaluate_findings([Finding("W", "", "", clauses[: len(v)])], Hand(make(*v)))[0].word  # noqa: E731
    assert word(up, up, up) == "holds"
    assert word(down, down) == "contradicted"
    assert word(down, flat) == "contradicted: S1 above unsettled"
    assert word(up, flat) == "in part: S0 above holds; S1 above unsettled"
    assert word(up, down, flat) == "in part: S0 above holds; S1 above contradicted; S2 above unsettled"
    assert word(flat, flat) == "unsettled"


# --- every declared finding, on tables written by hand -----------------------------------------------


def _seeds(mean: float, step: float) -> tuple[float, float, float]:
    return (mean - step, mean, mean + step)


def _share_3(share: float) -> tuple:
    return _seeds(share, 0.005)


def _subject(fid, precision, density, recall, coverage, covered, most, sharpness, confidence, digit_like, lead3):
    judged = {
        "classes_covered": _seeds(covered, 0.3),
        "most_digits_share": _seeds(most, 0.001),
        "share_of_digit_3": _share_3(0.1 + lead3),
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
        "confident_share": _seeds(digit_like, 0.005),
        "confident_share_real": (0.9, 0.9, 0.9),
        **judged,
        **{f"{name}_judge2": values for name, values in judged.items()},
    }


CELLS = {"E1": "bce", "E2": "bce", "E3": "bce", "E4": "mse", MSE_NORMAL: "mse", "E5": "sampled"}
CELLS |= {VARIANCE_TWO: "bce", E5_BETA: "sampled"}
# the write-up's world: every clause as the write-up says it
#          fid  prec  dens  recall cov  covered most  sharp  conf  digit-like lead3
AS_WRITTEN = {
    "E1": _subject(140, 0.74, 0.70, 0.63, 0.34, 10, 0.08, 0.066, 0.815, 0.70, -0.02),
    "E2": _subject(220, 0.45, 0.30, 0.70, 0.30, 9, 0.07, 0.150, 0.820, 0.50, -0.02),
    "E3": _subject(480, 0.30, 0.20, 0.01, 0.05, 5, 0.02, 0.032, 0.750, 0.40, 0.10),
    "E4": _subject(500, 0.25, 0.18, 0.01, 0.04, 4, 0.01, 0.040, 0.780, 0.40, 0.15),
    MSE_NORMAL: _subject(127, 0.85, 0.80, 0.44, 0.30, 10, 0.08, 0.080, 0.853, 0.80, -0.02),
    "E5": _subject(546, 0.20, 0.10, 0.02, 0.03, 7, 0.03, 0.006, 0.500, 0.30, 0.05),
    # the sensitivity rows the other way: they decide no word
    VARIANCE_TWO: _subject(140, 0.74, 0.90, 0.63, 0.34, 10, 0.08, 0.066, 0.815, 0.90, -0.02),
    E5_BETA: _subject(140, 0.74, 0.70, 0.63, 0.50, 10, 0.08, 0.066, 0.815, 0.90, -0.20),
}
# the opposite world: every clause the other way
OPPOSITE = {
    "E1": _subject(400, 0.30, 0.20, 0.10, 0.05, 5, 0.02, 0.200, 0.600, 0.95, -0.02),
    "E2": _subject(300, 0.50, 0.40, 0.70, 0.30, 6, 0.03, 0.150, 0.820, 0.97, -0.02),
    "E3": _subject(200, 0.70, 0.60, 0.40, 0.30, 9, 0.07, 0.250, 0.750, 0.95, -0.10),
    "E4": _subject(100, 0.90, 0.80, 0.40, 0.30, 9, 0.07, 0.100, 0.700, 0.95, -0.10),
    MSE_NORMAL: _subject(300, 0.50, 0.40, 0.44, 0.30, 10, 0.08, 0.050, 0.500, 0.95, -0.02),
    "E5": _subject(546, 0.20, 0.10, 0.30, 0.20, 8, 0.06, 0.300, 0.900, 0.95, -0.20),
}


def test_every_study_finding_holds_where_the_write_up_is_right():
    found = evaluate_findings(STUDY_FINDINGS, Hand(AS_WRITTEN, CELLS))
    words = {v.finding: v.word for v in found}
    assert words == {"F1": "holds", "F2": "holds", "F3": "holds", "F4": "holds", "F5": "holds", "F6": "holds"}
    # the sensitivity rows are contradicted here, and change no word
    sensitivity = {c.clause.text: c.outcome for v in found for c in v.clauses if not c.clause.decides}
    assert sensitivity == {
        "E2 at variance 2 noisier than E1": "contradicted",
        "E2 at variance 2 less realistic than E1": "contradicted",
        "MSE sharper than BCE under N(0,1)": "holds",
        "E5 with Beta less clear than E3": "contradicted",
        "E5 with Beta less diverse than E1": "contradicted",
        "digit 3 leads under E5 with Beta": "contradicted",
    }


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


def test_f4_tests_the_write_ups_comparison_and_reports_mse_under_n01_as_a_sensitivity_row():
    f4 = next(v for v in evaluate_findings(STUDY_FINDINGS, Hand(AS_WRITTEN, CELLS)) if v.finding == "F4")
    primaries = [(c.primary.a, c.primary.b, c.primary.metric.name, c.clause.decides) for c in f4.clauses]
    assert primaries == [
        ("E4", "E3", "sharpness", True),
        ("E4", "E1", "density", True),
        ("E4", "E3", "density", True),
        (MSE_NORMAL, "E1", "sharpness", False),
    ]
    assert [c.clause.claim for c in f4.clauses] == ["better", "worse", "alike", "better"]
    assert {c.primary.intervals[0][1].kind for c in f4.clauses[:3]} == {"Welch t"}  # two model cells
    assert "(sensitivity)" in f4.evidence()


def test_every_clause_quotes_its_words_and_gives_the_reason_for_its_one_primary():
    for finding in (*STUDY_FINDINGS, *SEARCH_FINDINGS):
        for clause in finding.clauses:
            if isinstance(clause, Clause):
                assert clause.quote and clause.reason and clause.primary in clause.construct.metrics
                assert clause.primary not in clause.secondary
                assert (clause.margin is not None) == (clause.claim == "alike")
    assert not any(
        m.name == "fid" for f in STUDY_FINDINGS for c in f.clauses if isinstance(c, Clause) for m in [c.primary]
    )


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


def test_every_search_finding_holds_and_is_contradicted_as_declared():
    """F7 on FID (the search's objective), F8 and G on density and coverage, H an equivalence on FID:
    the matched normal within a few FID units of the searched Beta holds it, 20 units apart contradict it."""
    as_claimed = ["gmm_10", "best_beta", "matched_normal", "normal_0_1", "study_beta"]
    alike = _search(as_claimed)
    for seed, shift in zip(SEEDS, (1.0, -1.0, 0.5)):
        beta = alike.results["best_beta"][str(seed)]
        alike.results["matched_normal"][str(seed)] = {**beta, "fid": beta["fid"] + shift}
    words = {v.finding: v.word for v in evaluate_findings(SEARCH_FINDINGS, alike)}
    assert words == {"F7": "holds", "F8": "holds", "G": "holds", "H": "holds"}
    reversed_ = {v.finding: v.word for v in evaluate_findings(SEARCH_FINDINGS, _search(as_claimed[::-1]))}
    assert reversed_ == {"F7": "contradicted", "F8": "contradicted", "G": "contradicted", "H": "contradicted"}
    f7 = evaluate_findings(SEARCH_FINDINGS, alike)[0]
    assert [(p.metric.name, p.primary) for p in f7.parts] == [("fid", True), ("density", False), ("coverage", False)]
    record = f7.to_dict()
    assert record["parts"][0]["judges"][0]["test"] == "paired t" and record["clauses"][0]["primary"] == "fid"
    assert set(SAMPLERS) == {c.subject for f in SEARCH_FINDINGS for c in f.clauses} | {
        c.versus for f in SEARCH_FINDINGS for c in f.clauses
    }


def test_every_subject_beyond_e1_to_e5_is_a_sampler_the_study_evaluates():
    from pipeline.core import experiments

    planned = {f"{e.cell} {e.sampler}" for e in experiments.BASELINES}
    subjects = {c.subject for f in STUDY_FINDINGS for c in f.clauses if isinstance(c, Clause) and " " in c.subject}
    assert subjects == planned == set(SUBJECT_LABELS)
