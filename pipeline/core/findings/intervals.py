"""One difference over training seeds, its 95 % confidence interval, and what the interval says.

The unit is the training seed. Two samplers of one model cell are drawn from the same model per seed,
so they are compared paired (scipy.stats.ttest_rel on the seeds both have); two cells are compared
unpaired with Welch's t (scipy.stats.ttest_ind, equal_var=False); a claim against a fixed level (a
threshold) with a one-sample t (scipy.stats.ttest_1samp). The interval alone gives the outcome: it
holds when the whole interval lies on the claimed side of zero, is contradicted when it lies on the
other side, and is unsettled when it contains zero; then `seeds_needed` says about how many seeds
the observed effect and spread would need to settle it.
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
MOST_SEEDS = 1000  # beyond this, "more than 1000 seeds"

INTERVAL_RULE = (
    "The unit is the training seed. Samplers of one model cell are compared paired, seed by seed "
    "(scipy.stats.ttest_rel); different cells unpaired with Welch's t (scipy.stats.ttest_ind, "
    "equal_var=False); a fixed level with a one-sample t (scipy.stats.ttest_1samp). Each part gives the "
    "difference A − B, its 95 % confidence interval (t, with the test's degrees of freedom) and an "
    "outcome from the interval alone: holds when the whole interval lies on the claimed side of zero, "
    "contradicted when it lies on the other side, unsettled when it contains zero (then: about how many "
    "seeds the observed difference and spread would need to settle it). Values identical over every "
    "seed have no spread: their interval is the difference itself."
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

    @property
    def measured(self) -> bool:
        return math.isfinite(self.low) and math.isfinite(self.high)

    def outcome(self, expected: str) -> str:
        """`expected` is 'greater' (A above B) or 'less'."""
        if not self.measured:
            return NOT_MEASURED if not (self.a and self.b) else UNSETTLED
        above, below = self.low > 0, self.high < 0
        if not (above or below):
            return UNSETTLED
        return HOLDS if above == (expected == "greater") else CONTRADICTED


def _values(values) -> np.ndarray:
    """The finite values, as floats."""
    return np.array([float(v) for v in values if v is not None and math.isfinite(float(v))], dtype=float)


def paired(a: dict, b: dict) -> Interval:
    """A − B seed by seed on the seeds both have ({seed: value} each)."""
    seeds = sorted(set(a) & set(b), key=str)
    x, y = _values(a[s] for s in seeds), _values(b[s] for s in seeds)
    if len(x) != len(y):  # a non-finite value on one side: drop that seed on both
        kept = [s for s in seeds if math.isfinite(float(a[s])) and math.isfinite(float(b[s]))]
        x, y = _values(a[s] for s in kept), _values(b[s] for s in kept)
    return _one_sample(PAIRED, x - y, tuple(x.tolist()), tuple(y.tolist()))


def threshold(a: dict, level: float) -> Interval:
    """A − a fixed level."""
    x = _values(a.values())
    return _one_sample(ONE_SAMPLE, x - level, tuple(x.tolist()), (float(level),))


def _one_sample(kind: str, differences: np.ndarray, a: tuple, b: tuple) -> Interval:
    n = len(differences)
    if n < 2:
        return Interval(kind, a, b, float(differences.mean()) if n else math.nan, math.nan, math.nan, 0.0)
    mean, spread = float(differences.mean()), float(differences.std(ddof=1))
    if np.ptp(differences) <= 1e-12 * max(1.0, abs(mean)):  # no spread (bar rounding): the difference itself
        return Interval(kind, a, b, float(differences[0]), float(differences[0]), float(differences[0]), n - 1)
    low, high = stats.ttest_1samp(differences, 0.0).confidence_interval(CONFIDENCE)
    interval = Interval(kind, a, b, mean, float(low), float(high), n - 1)
    if low <= 0 <= high:
        interval = _with_seeds(interval, lambda m: (spread**2 / m, m - 1))
    return interval


def welch(a: dict, b: dict) -> Interval:
    """A − B between two model cells: unpaired, Welch's t."""
    x, y = _values(a.values()), _values(b.values())
    mean = float(x.mean() - y.mean()) if len(x) and len(y) else math.nan
    if len(x) < 2 or len(y) < 2:
        return Interval(WELCH, tuple(x.tolist()), tuple(y.tolist()), mean, math.nan, math.nan, 0.0)
    va, vb = float(x.var(ddof=1)), float(y.var(ddof=1))
    if va == 0 and vb == 0:
        return Interval(WELCH, tuple(x.tolist()), tuple(y.tolist()), mean, mean, mean, len(x) + len(y) - 2)
    with warnings.catch_warnings():
        if va == 0 or vb == 0:  # one side exactly constant (e.g. 10 classes on every seed): no precision was lost
            warnings.filterwarnings("ignore", "Precision loss occurred in moment calculation", RuntimeWarning)
        test = stats.ttest_ind(x, y, equal_var=False)
    low, high = test.confidence_interval(CONFIDENCE)
    interval = Interval(WELCH, tuple(x.tolist()), tuple(y.tolist()), mean, float(low), float(high), float(test.df))
    if low <= 0 <= high:
        interval = _with_seeds(interval, lambda m: ((va + vb) / m, _welch_df(va / m, vb / m, m)))
    return interval


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
