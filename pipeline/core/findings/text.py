"""How a part's numbers are written: both sides of a comparison rounded alike, differences signed."""

from __future__ import annotations

import math

from pipeline.core.scores.spread import Summary, decimals_for, number


def _shared_decimals(*groups) -> int | None:
    """The finest decimals any group's spread needs (None: no group has a spread)."""
    found = [decimals_for(float(Summary.of(g).std)) for g in groups if len(g) > 1 and Summary.of(g).std > 0]
    return max(found) if found else None


def _side(values, decimals: int | None, spread: bool = True) -> str:
    """One side: mean ± sd to the shared decimals; a side with no spread (a level, a real-data value
    identical on every seed) to its own four significant digits, never rounded to the other side's."""
    summary = Summary.of(values)
    if summary.n == 0:
        return "–"
    if decimals is None or not summary.std > 0:
        return number(summary.mean)
    places = max(decimals, 0)
    mean = f"{round(summary.mean, decimals):.{places}f}"
    return mean if not (spread and summary.std > 0) else f"{mean} ± {round(summary.std, decimals):.{places}f}"


def pair_text(a, b, spread: bool = True) -> str:
    """'mean ± sd vs mean ± sd' over seeds, both sides to the same decimals (a level: one value);
    `spread=False`: the means alone, still rounded to what the spreads support."""
    decimals = _shared_decimals(a, b)
    return f"{_side(a, decimals, spread)} vs {_side(b, decimals, spread)}"


def signed(value: float, interval) -> str:
    """A difference with its sign, to the decimals of the interval's sides."""
    decimals = _shared_decimals(interval.a, interval.b)
    if not math.isfinite(value):
        return "–"
    if decimals is None:
        return f"{value:+.4g}"
    return f"{round(value, decimals):+.{max(decimals, 0)}f}"


def count_text(values) -> str:
    """A count over seeds as the whole numbers it is: '10 on all 5 seeds', or each seed's value."""
    shown = [f"{float(v):g}" for v in values]
    if len(shown) > 1 and len(set(shown)) == 1:
        return f"{shown[0]} on all {len(shown)} seeds"
    return ", ".join(shown) if shown else "–"


def p_text(p: float) -> str:
    """A p-value to two significant digits ('< 0.0001' below that)."""
    if p is None or not math.isfinite(p):
        return "–"
    return "< 0.0001" if p < 1e-4 else f"{p:.2g}"
