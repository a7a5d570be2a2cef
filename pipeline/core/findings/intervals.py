"""One difference over training seeds, its 95 % confidence interval, its p-values, and what they say.

The unit is the training seed. Two samplers of one model cell are drawn from the same model per seed,
so they are compared paired (scipy.stats.ttest_rel on the seeds both have); two cells are compared
unpaired with Welch's t (scipy.stats.ttest_ind, equal_var=False); a claim against a fixed level (a
threshold) with a one-sample t (scipy.stats.ttest_1samp). A count (a whole number per seed, such as
the classes covered) is never given a t interval: it is tested exactly, by the sign test
(scipy.stats.binomtest) paired or against a level, and by an exact permutation test of the mean
difference (scipy.stats.permutation_test) between cells. Each test gives its two one-sided p-values;
the two-sided one (twice the smaller) decides at 5 %, which for a t test is the 95 % interval's
verdict: it holds when the whole interval lies on the claimed side of zero, is contradicted when it
lies on the other side, and is unsettled when it contains zero; then `seeds_needed` says about how
many seeds the observed effect and spread would need to settle it. With a `margin` the same test also
gives the equivalence p-values: two one-sided tests (TOST) that the difference lies within ±margin,
and the two-sided p that it lies beyond it.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from scipy import stats

CONFIDENCE = 0.95
HOLDS, CONTRADICTED, UNSETTLED, NOT_MEASURED = "holds", "contradicted", "unsettled", "not measured"
PAIRED, WELCH, ONE_SAMPLE = "paired t", "Welch t", "one-sample t"
SIGN, PERMUTATION = "sign test", "exact permutation test"
ALIKE = "alike"  # the expectation of an equivalence: A − B within ±margin
MOST_SEEDS = 1000  # beyond this, "more than 1000 seeds"

INTERVAL_RULE = (
    "The unit is the training seed. Samplers of one model cell are compared paired, seed by seed "
    "(scipy.stats.ttest_rel); different cells unpaired with Welch's t (scipy.stats.ttest_ind, "
    "equal_var=False); a fixed level with a one-sample t (scipy.stats.ttest_1samp). Each part gives the "
    "difference A − B, its 95 % confidence interval (t, with the test's degrees of freedom) and an "
    "outcome from the interval alone: holds when the whole interval lies on the claimed side of zero, "
    "contradicted when it lies on the other side, unsettled when it contains zero (then: about how many "
    "seeds the observed difference and spread would need to settle it). Values identical over every "
    "seed have no spread: their interval is the difference itself. A count (classes covered) gets no t "
    "interval: it is tested exactly, by the sign test (scipy.stats.binomtest) paired or against a level "
    "and by an exact permutation test of the mean difference (scipy.stats.permutation_test) between "
    "cells, and a count identical on every seed is written as such."
)


@dataclass(frozen=True)
class Interval:
    """A − B over seeds: the test that made it, the difference, its interval and its degrees of freedom."""

    kind: str
    a: tuple[float, ...]
    b: tuple[float, ...]  # one value for a fixed level
    difference: float
    low: float
    high: float
    df: float
    seeds_needed: int | None = None  # for an unsettled interval: seeds that would settle it (None: no effect)
    p_greater: float = math.nan  # one-sided p of A − B > 0
    p_less: float = math.nan  # one-sided p of A − B < 0
    margin: float | None = None  # with a margin: the equivalence p-values below
    p_within: float = math.nan  # TOST: the larger of the one-sided p's of A − B > −margin and A − B < margin
    p_beyond: float = math.nan  # two-sided p of |A − B| > margin (twice the smaller one-sided one)

    @property
    def measured(self) -> bool:
        return math.isfinite(self.p_greater) and math.isfinite(self.p_less)

    @property
    def p_value(self) -> float:
        """Two-sided: twice the smaller one-sided p (at most 1)."""
        return min(1.0, 2 * min(self.p_greater, self.p_less)) if self.measured else math.nan

    @property
    def direction(self) -> str:
        """The side the estimate lies on: 'greater' or 'less' ('' when it is exactly 0)."""
        return "greater" if self.difference > 0 else "less" if self.difference < 0 else ""

    def outcome(self, expected: str, alpha: float = 1 - CONFIDENCE) -> str:
        """`expected` is 'greater' (A above B), 'less', or ALIKE: within the margin (TOST) when there is
        one, and without one contradicted only by a difference (the evidence beside an equivalence)."""
        if not self.measured:
            return NOT_MEASURED if not (self.a and self.b) else UNSETTLED
        if expected == ALIKE:
            if self.margin is not None and self.p_within <= alpha:
                return HOLDS
            beyond = self.p_beyond if self.margin is not None else self.p_value
            return CONTRADICTED if beyond <= alpha else UNSETTLED
        if not (self.p_value <= alpha and self.direction):
            return UNSETTLED
        return HOLDS if self.direction == expected else CONTRADICTED


def _values(values) -> np.ndarray:
    """The finite values, as floats."""
    return np.array([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=float)


def paired(a: dict, b: dict, margin: float | None = None, count: bool = False) -> Interval:
    """A − B seed by seed on the seeds both have ({seed: value} each)."""
    seeds = sorted(set(a) & set(b), key=str)
    kept = [s for s in seeds if _finite(a[s]) and _finite(b[s])]  # a non-finite value on one side: drop that seed
    x, y = _values(a[s] for s in kept), _values(b[s] for s in kept)
    test = _sign_test if count else _one_sample
    return test(PAIRED, x - y, tuple(x.tolist()), tuple(y.tolist()), margin)


def threshold(a: dict, level: float, margin: float | None = None, count: bool = False) -> Interval:
    """A − a fixed level."""
    x = _values(a.values())
    test = _sign_test if count else _one_sample
    return test(ONE_SAMPLE, x - level, tuple(x.tolist()), (float(level),), margin)


def _finite(value) -> bool:
    return value is not None and math.isfinite(float(value))


def _one_sided(p_of, margin: float | None) -> dict:
    """The one-sided p-values at shift 0 and, with a margin, the equivalence ones; `p_of(shift, side)` is
    the test's p of (A − B − shift) on `side` ('greater' or 'less')."""
    found = {"p_greater": p_of(0.0, "greater"), "p_less": p_of(0.0, "less")}
    if margin is not None:
        found["margin"] = float(margin)
        found["p_within"] = max(p_of(-margin, "greater"), p_of(margin, "less"))
        found["p_beyond"] = min(1.0, 2 * min(p_of(margin, "greater"), p_of(-margin, "less")))
    return found


def _degenerate(value: float, shift: float, side: str) -> float:
    """The p of a difference with no spread: certain on the side it lies, impossible on the other."""
    return 0.0 if (value - shift > 0 if side == "greater" else value - shift < 0) else 1.0


def _one_sample(kind: str, differences: np.ndarray, a: tuple, b: tuple, margin: float | None = None) -> Interval:
    n = len(differences)
    if n < 2:
        return Interval(kind, a, b, float(differences.mean()) if n else math.nan, math.nan, math.nan, 0.0)
    mean, spread = float(differences.mean()), float(differences.std(ddof=1))
    if np.ptp(differences) <= 1e-12 * max(1.0, abs(mean)):  # no spread (bar rounding): the difference itself
        value = float(differences[0])
        ps = _one_sided(lambda shift, side: _degenerate(value, shift, side), margin)
        return Interval(kind, a, b, value, value, value, n - 1, **ps)
    low, high = stats.ttest_1samp(differences, 0.0).confidence_interval(CONFIDENCE)
    ps = _one_sided(lambda shift, side: float(stats.ttest_1samp(differences, shift, alternative=side).pvalue), margin)
    interval = Interval(kind, a, b, mean, float(low), float(high), n - 1, **ps)
    if low <= 0 <= high:
        interval = _with_seeds(interval, lambda m: (spread**2 / m, m - 1))
    return interval


def _sign_test(kind: str, differences: np.ndarray, a: tuple, b: tuple, margin: float | None = None) -> Interval:
    """A count's difference (paired, or against a level) by the exact sign test; ties (difference 0) drop
    out. Its 'interval' is the range of the differences, not a confidence interval."""
    n = len(differences)
    if n == 0:
        return Interval(SIGN, a, b, math.nan, math.nan, math.nan, 0.0)

    def p_of(shift: float, side: str) -> float:
        above, below = int((differences > shift).sum()), int((differences < shift).sum())
        return float(stats.binomtest(above, above + below, 0.5, alternative=side).pvalue) if above + below else 1.0

    low, high = float(differences.min()), float(differences.max())
    return Interval(SIGN, a, b, float(differences.mean()), low, high, float(n), **_one_sided(p_of, margin))


def welch(a: dict, b: dict, margin: float | None = None, count: bool = False) -> Interval:
    """A − B between two model cells: unpaired, Welch's t (a count: the exact permutation test)."""
    x, y = _values(a.values()), _values(b.values())
    mean = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    if len(x) < 2 or len(y) < 2:
        return Interval(PERMUTATION if count else WELCH, tuple(x.tolist()), tuple(y.tolist()), mean, math.nan,
                        math.nan, 0.0)  # fmt: skip
    sides = (tuple(x.tolist()), tuple(y.tolist()))
    if count:
        return Interval(PERMUTATION, *sides, mean, mean, mean, float(len(x) + len(y)), **_one_sided(
            lambda shift, side: _permutation_p(x - shift, y, side), margin))  # fmt: skip
    va, vb = float(x.var(ddof=1)), float(y.var(ddof=1))
    if va == 0 and vb == 0:
        ps = _one_sided(lambda shift, side: _degenerate(mean, shift, side), margin)
        return Interval(WELCH, *sides, mean, mean, mean, len(x) + len(y) - 2, **ps)
    with warnings.catch_warnings():
        if va == 0 or vb == 0:  # one side exactly constant (e.g. 10 classes on every seed): no precision was lost
            warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        test = stats.ttest_ind(x, y, equal_var=False)
        ps = _one_sided(
            lambda shift, side: float(stats.ttest_ind(x - shift, y, equal_var=False, alternative=side).pvalue), margin
        )
    low, high = test.confidence_interval(CONFIDENCE)
    interval = Interval(WELCH, *sides, mean, float(low), float(high), float(test.df), **ps)
    if low <= 0 <= high:
        interval = _with_seeds(interval, lambda m: ((va + vb) / m, _welch_df(va / m, vb / m, m)))
    return interval


def _permutation_p(x: np.ndarray, y: np.ndarray, side: str) -> float:
    """The exact permutation p of mean(x) − mean(y) on `side`, over every split of the pooled values."""
    result = stats.permutation_test(
        (x, y), lambda u, v: np.mean(u) - np.mean(v), permutation_type="independent", alternative=side,
        n_resamples=math.inf,
    )  # fmt: skip
    return float(result.pvalue)


def _welch_df(sa: float, sb: float, m: int) -> float:
    """Welch–Satterthwaite degrees of freedom with m seeds a side (sa, sb: the squared standard errors)."""
    return (sa + sb) ** 2 / (sa**2 / (m - 1) + sb**2 / (m - 1))


def _with_seeds(interval: Interval, variance_and_df) -> Interval:
    """The smallest seed count (per side) whose interval, at the observed difference and spread, excludes 0."""
    effect = abs(interval.difference)
    if effect == 0:
        return interval
    for m in range(2, MOST_SEEDS + 1):
        variance, df = variance_and_df(m)
        if stats.t.ppf(0.5 + CONFIDENCE / 2, df) * math.sqrt(variance) < effect:
            return Interval(**{**interval.__dict__, "seeds_needed": m})
    return Interval(**{**interval.__dict__, "seeds_needed": MOST_SEEDS + 1})
