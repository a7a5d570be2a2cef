"""The search report's temperature figure: realism and diversity of N(0, sigma) against sigma, with the
searched Beta and its matched normal drawn at their own standard deviation, so that a searched sampler
that is only a temperature shows as a point on the curve."""

from __future__ import annotations

from analysis.figures import plt
from pipeline.core.scores.spread import Summary

JUDGE2 = "_judge2"  # the k-NN judge's copy of a class metric (pipeline/core/judges/knn.py SUFFIX)
# (construct, panel title, metrics drawn in it): realism and diversity, each on every one of its metrics
PANELS = (
    ("realism", "FID (LeNet features), lower is better", ("fid",)),
    ("realism", "precision", ("precision",)),
    ("realism", "density", ("density",)),
    ("diversity", "recall", ("recall",)),
    ("diversity", "coverage", ("coverage",)),
    ("diversity", "classes covered (solid: CNN, dashed: k-NN)", ("classes_covered", "classes_covered" + JUDGE2)),
)
MARKS = (("*", "C3", 11), ("D", "C2", 7))  # (marker, colour, size) of the searched Beta, then its matched normal


def mean_and_sd(points: list[Summary]) -> tuple[list[float], list[float]]:
    """Means and standard deviations over seeds; a single seed's spread is drawn as none."""
    return [p.mean for p in points], [p.std if p.n > 1 else 0.0 for p in points]


def temperature_figure(sigmas: list[float], curve: dict[str, list[Summary]], marks: dict[str, dict], at: float):
    """`curve[metric]`: N(0, sigma)'s scores over seeds at each of `sigmas`; `marks`: {label: {metric: scores}}
    of the searched Beta and its matched normal, both drawn at sigma = `at` (their standard deviation)."""
    figure, axes = plt.subplots(2, 3, figsize=(13, 7.6))
    for axis, (construct, title, metrics) in zip(axes.flat, PANELS):
        for metric, style in zip(metrics, ("-", "--")):
            judge = " (k-NN)" if metric.endswith(JUDGE2) else ""
            means, spreads = mean_and_sd(curve[metric])
            hollow = "none" if judge else "C0"  # the k-NN's points open, the CNN's filled
            axis.errorbar(
                sigmas,
                means,
                yerr=spreads,
                fmt="o",
                linestyle=style,
                color="C0",
                mfc=hollow,
                capsize=3,
                label=f"N(0, σ²){judge}",
            )
            for (label, scores), (marker, colour, size) in zip(marks.items(), MARKS):
                mean, spread = mean_and_sd([scores[metric]])
                face = "none" if judge else colour
                axis.errorbar(
                    [at],
                    mean,
                    yerr=spread,
                    fmt=marker,
                    markersize=size,
                    color=colour,
                    mfc=face,
                    capsize=3,
                    label=f"{label}{judge}",
                )
        axis.axvline(at, color="grey", linestyle=":", linewidth=1)
        axis.set_title(f"{construct}: {title}", fontsize=9)
        axis.set_xlabel("σ: the sampler's standard deviation")
        axis.grid(alpha=0.3)
    handles, labels = axes.flat[-1].get_legend_handles_labels()
    figure.legend(handles, labels, loc="lower center", ncol=len(labels), fontsize=8)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure
