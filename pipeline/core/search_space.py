"""The search space of the `search` step, as plain maths: Beta placement, baselines, sample counts.

A Beta(a, b) lives on [0, 1], while the model was trained against an N(0, I) prior. The search
therefore does not search a location and a scale directly but the sampler's own mean and standard
deviation, and derives the placement z = loc + scale * Beta(a, b) from them:

    var(Beta(a, b)) = ab / ((a + b)^2 (a + b + 1)),   scale = sd / sqrt(var),
    loc = mean - scale * a / (a + b).

So every (a, b) is tried where it can matter, on the prior's scale, and the shape (a, b) is
searched apart from the placement: a = b = 20 with mean 0 and sd 1 is a Beta that mimics N(0, 1).

A searched Beta may win by its location and spread alone (a temperature) rather than by its shape:
its moments, the normal with the same mean and sd, and N(0, sigma) at a few temperatures say which.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

# (a, b, mean, sd) of the baselines enqueued as a new study's first trials
STUDY_BETA = (0.25, 0.25, 0.5, math.sqrt(1 / 6))  # the write-up's Beta(0.25, 0.25), unplaced: loc 0, scale 1
NORMAL_LIKE_BETA = (20.0, 20.0, 0.0, 1.0)  # symmetric and concentrated: close to N(0, 1) once placed
TEMPERATURES = (0.8, 1.2, 1.5, 2.0)  # sigma of the N(0, sigma) scored beside N(0, 1) in the verification
MOMENTS = ("mean", "sd", "skewness", "excess_kurtosis")
STANDARD_NORMAL_MOMENTS = {"mean": 0.0, "sd": 1.0, "skewness": 0.0, "excess_kurtosis": 0.0}


def beta_moments(a: float, b: float) -> tuple[float, float]:
    """(mean, variance) of Beta(a, b)."""
    total = a + b
    return a / total, a * b / (total**2 * (total + 1))


def placement(a: float, b: float, mean: float, sd: float) -> tuple[float, float]:
    """(loc, scale) such that loc + scale * Beta(a, b) has this mean and standard deviation."""
    if not (a > 0 and b > 0 and sd > 0):
        raise ValueError(f"a, b and sd must be positive, got a={a}, b={b}, sd={sd}")
    beta_mean, beta_variance = beta_moments(a, b)
    scale = sd / math.sqrt(beta_variance)
    return mean - scale * beta_mean, scale


def placed_beta_moments(a: float, b: float, loc: float, scale: float) -> dict[str, float]:
    """MOMENTS of loc + scale * Beta(a, b), as scipy.stats states them ("mvsk"; kurtosis is Fisher's, excess)."""
    from scipy import stats  # seconds to import (core/scores/quality.py): only the verification and report need it

    mean, variance, skewness, kurtosis = stats.beta(a, b, loc=loc, scale=scale).stats(moments="mvsk")
    return dict(zip(MOMENTS, (float(mean), math.sqrt(float(variance)), float(skewness), float(kurtosis))))


@dataclass(frozen=True)
class Ranges:
    """The searched ranges: a and b (log-uniform), mean (uniform), sd (log-uniform)."""

    ab_min: float
    ab_max: float
    mean_min: float
    mean_max: float
    sd_min: float
    sd_max: float

    def contains(self, a: float, b: float, mean: float, sd: float) -> bool:
        inside = lambda value, low, high: low - 1e-12 <= value <= high + 1e-12  # noqa: E731
        return (
            inside(a, self.ab_min, self.ab_max)
            and inside(b, self.ab_min, self.ab_max)
            and inside(mean, self.mean_min, self.mean_max)
            and inside(sd, self.sd_min, self.sd_max)
        )


def baselines(ranges: Ranges) -> tuple[list[dict], list[str]]:
    """(params of the baselines inside the ranges, names of those left out because they are not)."""
    kept, left_out = [], []
    for name, (a, b, mean, sd) in (
        ("study Beta(0.25,0.25)", STUDY_BETA),
        ("N(0,1)-like Beta(20,20)", NORMAL_LIKE_BETA),
    ):
        if ranges.contains(a, b, mean, sd):
            kept.append({"a": a, "b": b, "mean": mean, "sd": sd})
        else:
            left_out.append(name)
    return kept, left_out


def sample_counts(schedule: tuple[int, ...], cap: int) -> list[int]:
    """The growing sample counts a trial is scored on, none above `cap`, without repeats."""
    counts: list[int] = []
    for count in schedule:
        count = min(count, cap)
        if not counts or count > counts[-1]:
            counts.append(count)
    return counts


def pick_pareto(values: list[tuple[float, float]]) -> int:
    """Index of the Pareto trial nearest the ideal point (lowest FID, highest class entropy),
    each objective scaled to [0, 1] over the front: the balanced 'knee' of the front."""
    points = np.asarray(values, dtype=float)
    fid, entropy = points[:, 0], points[:, 1]
    span = lambda x: (x.max() - x.min()) or 1.0  # noqa: E731
    distance = np.hypot((fid - fid.min()) / span(fid), (entropy.max() - entropy) / span(entropy))
    return int(np.argmin(distance))


def parse_int_list(text: str) -> tuple[int, ...]:
    """'2,5,10' -> (2, 5, 10): positive, distinct integers; ValueError otherwise."""
    parts = [part.strip() for part in text.split(",")]
    if not parts or not all(part.isdigit() and int(part) >= 1 for part in parts):
        raise ValueError(text)
    values = tuple(int(part) for part in parts)
    if len(set(values)) != len(values):
        raise ValueError(text)
    return values
