"""The seed-spread rule: when a difference between two scores over seeds counts, and how it is said.

Plain Python and NumPy. The report (analysis/verdicts.py, analysis/tables.py) and the search's
verification of its best trial (pipeline/search/verify.py) apply the very same rule, so it lives
in the core, which both may import.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

NUMBERS_RULE = (
    "Each value: mean ± sample standard deviation (n − 1) over training seeds, both rounded to the "
    "spread's first significant digit (two when it starts with a 1). A value identical over every seed "
    "has no spread and is printed alone, to four significant digits (no “± 0”); “(1 seed)” marks a "
    "value measured on one seed only."
)
SPREAD_RULE = (
    "A difference between two means counts only when it exceeds the spread over seeds: "
    "|mean(A) − mean(B)| > std(A) + std(B), with the sample standard deviation (n − 1) over "
    "seeds and at least two seeds on each side (a fixed threshold has no spread). "
    "A smaller difference is reported as “seeds disagree” (or “no difference” when the values are "
    "identical); with one seed no spread is available and no verdict is drawn."
)


@dataclass(frozen=True)
class Summary:
    """One score over seeds: the values, their mean and sample standard deviation."""

    values: tuple[float, ...]
    seeds: tuple[int, ...] = ()

    @classmethod
    def of(cls, values, seeds=()) -> Summary:
        pairs = [
            (float(v), s)
            for v, s in zip(values, seeds or [None] * len(values))
            if v is not None and math.isfinite(float(v))
        ]
        return cls(tuple(v for v, _ in pairs), tuple(s for _, s in pairs if s is not None))

    @classmethod
    def constant(cls, value: float) -> Summary:
        """A fixed threshold: no spread, and any number of seeds' worth of certainty."""
        return cls((float(value),), ("fixed",))

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def fixed(self) -> bool:
        return self.seeds == ("fixed",)

    @property
    def identical(self) -> bool:
        """Every value the same: mean and spread are exact (np.mean of 3 x 0.974 is 0.97399999999999987,
        and np.std of them 1.4e-16, rounding noise, not a spread)."""
        return len(set(self.values)) == 1

    @property
    def mean(self) -> float:
        if self.identical:
            return self.values[0]
        return float(np.mean(self.values)) if self.values else math.nan

    @property
    def std(self) -> float:
        if self.fixed or (self.n > 1 and self.identical):
            return 0.0
        return float(np.std(self.values, ddof=1)) if self.n > 1 else math.nan

    @property
    def low(self) -> float:
        return min(self.values) if self.values else math.nan

    @property
    def high(self) -> float:
        return max(self.values) if self.values else math.nan

    @property
    def has_spread(self) -> bool:
        return self.fixed or self.n > 1


def number(value: float) -> str:
    """Four significant digits, plain (no exponent from 1000 on: whole units): what a reader compares by eye."""
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    if float(value).is_integer() and abs(value) < 1e6:
        return str(int(value))
    return f"{value:.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _decimals(std: float) -> int:
    """Decimal places that keep one significant digit of the spread (two when it starts with a 1:
    0.0014 rounded to 0.001 would understate it by a third)."""
    exponent = math.floor(math.log10(float(f"{std:.1g}")))
    leading = float(f"{std:.1g}") / 10**exponent
    return -exponent + (1 if round(leading) == 1 else 0)


def _fixed(value: float, decimals: int) -> str:
    """`value` rounded to `decimals` places (negative: to tens, hundreds, ...)."""
    return f"{round(value, decimals):.{max(decimals, 0)}f}"


def spread_text(summary: Summary) -> str:
    """'mean ± std' over seeds, both to the precision the spread supports (0.0576 ± 0.0006); a value
    identical over every seed alone, to four significant digits (NUMBERS_RULE); a single seed says
    so; nothing measured is a dash."""
    if summary.n == 0:
        return "–"
    if summary.fixed:
        return number(summary.mean)
    if summary.n == 1:
        return f"{number(summary.mean)} (1 seed)"
    if not summary.std > 0:  # identical over every seed: nothing to round to, no "± 0"
        return number(summary.mean)
    decimals = _decimals(summary.std)
    return f"{_fixed(summary.mean, decimals)} ± {_fixed(summary.std, decimals)}"


# --- comparisons and verdicts -------------------------------------------------------------------

HOLDS, CONTRADICTED, DISAGREE, NO_SPREAD, NOT_MEASURED, NO_DIFFERENCE = (
    "holds",
    "contradicted",
    "seeds disagree",
    "no spread available",
    "not measured in this run",
    "no difference",
)
CLASSIFIER_DEPENDENT = "classifier-dependent"  # the two judges of class identity reach different outcomes
JUDGES_UNRELIABLE = "judges unreliable at the samples' sharpness"  # both judges fail on real digits that blurry


def compare(a: Summary, b: Summary) -> str:
    """'greater', 'less', 'disagree' (difference within the spread), 'equal' (identical values, no
    spread), 'no spread' (a single seed) or 'missing'."""
    if a.n == 0 or b.n == 0:
        return "missing"
    if not (a.has_spread and b.has_spread):
        return "no spread"
    difference = a.mean - b.mean
    if abs(difference) > a.std + b.std:
        return "greater" if difference > 0 else "less"
    return "equal" if difference == 0 and a.std + b.std == 0 else "disagree"


def claim_outcome(a: Summary, b: Summary, expected: str) -> str:
    """The write-up expects `a` to be `expected` ('greater' or 'less') than `b`: does the measurement agree?"""
    found = compare(a, b)
    if found == "missing":
        return NOT_MEASURED
    if found == "no spread":
        return NO_SPREAD
    if found == "disagree":
        return DISAGREE
    if found == "equal":
        return NO_DIFFERENCE
    return HOLDS if found == expected else CONTRADICTED


def overall(outcomes: list[str]) -> str:
    """One word for a finding from the outcomes of its parts.

    Any contradicted part contradicts the finding; it holds only when every measured part holds;
    a part the two classifiers judge differently makes it classifier-dependent; parts that were not
    measured are said so rather than counted either way.
    """
    measured = [o for o in outcomes if o != NOT_MEASURED]
    if not measured:
        return NOT_MEASURED
    if CONTRADICTED in measured:
        return CONTRADICTED
    if all(o == HOLDS for o in measured):
        return HOLDS if len(measured) == len(outcomes) else "holds where measured"
    if CLASSIFIER_DEPENDENT in measured:
        return CLASSIFIER_DEPENDENT
    if JUDGES_UNRELIABLE in measured:
        return f"inconclusive ({JUDGES_UNRELIABLE})"
    if DISAGREE in measured:
        return "inconclusive (seeds disagree)"
    if NO_SPREAD in measured:
        return "inconclusive (one seed: no spread available)"
    return "inconclusive (no difference)"


def both_judges(cnn: str, second: str) -> str:
    """The outcome of a part about class identity or coverage, judged once per classifier: holds or
    contradicted only when both say so. Runs without the second judge (older evaluations) keep the
    CNN's outcome; the evidence says that only one judge was asked."""
    if cnn == NOT_MEASURED or second == NOT_MEASURED or cnn == second:
        return cnn
    if {cnn, second} & {HOLDS, CONTRADICTED}:
        return CLASSIFIER_DEPENDENT
    return cnn
