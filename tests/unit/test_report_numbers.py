"""pipeline/core/scores/spread.py:
The report's numbers carry the precision their spread supports, and its page names no machine path."""

from __future__ import annotations

import pytest

from pipeline.core.scores.spread import Summary, number, spread_text


@pytest.mark.parametrize(
    "values, text",
    [
        ((0.0576, 0.0570, 0.0582), "0.0576 ± 0.0006"),  # std 0.0006: four decimals, not 0.05761 ± 0.0006119
        ((690.3, 700.1, 680.2), "690 ± 10"),  # std 9.95 rounds to 10: a leading 1 keeps two digits
        ((1234.5, 1290.1), "1260 ± 40"),
        ((117.43, 117.50), "117.47 ± 0.05"),
        ((9.0, 10.0, 10.0), "9.7 ± 0.6"),
        ((8.0, 10.0, 11.0), "9.7 ± 1.5"),  # std 1.53 starts with a 1: two digits, not "10 ± 2"
        ((0.00096, 0.0012, 0.0021), "0.0014 ± 0.0006"),
        ((0.5, 0.51), "0.505 ± 0.007"),
        ((-3.2, -3.3), "-3.25 ± 0.07"),
        ((0.25, 0.25), "0.25"),  # identical seeds: no spread, no "± 0": the value alone, four significant digits
        ((10.0, 10.0, 10.0), "10"),
        ((0.974, 0.974, 0.974), "0.974"),  # np.mean gives 0.97399999999999987 and np.std 1.4e-16: not a spread
        ((0.123456,), "0.1235 (1 seed)"),
    ],
)
def test_mean_and_spread_are_rounded_to_the_spreads_first_digit(values, text):
    assert spread_text(Summary.of(values)) == text


@pytest.mark.parametrize(
    "value, text",
    [
        (0.057612345, "0.05761"),
        (12345.6, "12346"),
        (1234.56, "1235"),
        (2.302585, "2.303"),
        (9.0, "9"),
        (float("nan"), "–"),
    ],
)
def test_a_value_without_spread_keeps_four_significant_digits(value, text):
    assert number(value) == text
