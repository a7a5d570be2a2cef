"""One score over training seeds: its values, mean and sample standard deviation, and how it is written.

Plain Python and NumPy, shared by the report's tables (analysis/) and the verdicts' numbers
(pipeline/core/findings); whether a difference counts is the findings' interval rule, not this module's.
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


def decimals_for(std: float) -> int:
    """Decimal places that keep one significant digit of the spread (two when it starts with a 1:
    0.0014 rounded to 0.001 would understate it by a third, 1.53 rounded to 2 overstate it by a third)."""
    exponent = math.floor(math.log10(abs(std)))
    leading = int(abs(std) / 10**exponent + 1e-9)  # the first significant digit of the spread itself
    rounded = float(f"{std:.1g}")
    if leading != 1 and math.floor(math.log10(rounded)) > exponent:  # 0.96 rounds up to 1: one more place
        return -exponent
    return -exponent + (1 if leading == 1 else 0)


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
    decimals = decimals_for(summary.std)
    return f"{_fixed(summary.mean, decimals)} ± {_fixed(summary.std, decimals)}"
