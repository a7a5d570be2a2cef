"""The report's matplotlib figures that need no model: loss curves, the samples layout, and figures as PNG bytes."""

from __future__ import annotations

import io
from dataclasses import dataclass

import matplotlib
import numpy as np

matplotlib.use("Agg")  # no screen on servers; must precede pyplot (the report step is no train/evaluate hot path)
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from pipeline.core.plots import class_histogram_figure  # noqa: E402

DPI = 100
SAMPLE_COLUMNS = 5  # experiments side by side before the layout wraps: more would shrink the digits
COLUMN_INCHES = 3.4  # at DPI 100, wider than the 8x8 grid's native 242 px, so no digit loses pixels
GRID_INCHES = 3.8  # the square grid plus its two-line title
HISTOGRAM_INCHES = 2.6


def png_bytes(figure) -> bytes:
    """A figure as PNG bytes (closed afterwards): the page embeds them, the Markdown writes them beside it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def loss_curves_figure(histories: dict[tuple[str, int], dict[str, list[tuple[int, float]]]], improving=frozenset()):
    """Every training's train and validation loss per epoch, overlaid: one colour per cell, one line
    style per seed, so a diverging seed or an over-fitting cell stands out. The trainings in
    `improving` (still improving fast when they stopped) end in a red triangle and say so in the legend."""
    figure, axes = plt.subplots(1, 2, figsize=(12, 4.2), sharey=True)
    cells = sorted({cell for cell, _ in histories})
    seeds = sorted({seed for _, seed in histories})
    colours = {cell: plt.get_cmap("tab10")(i % 10) for i, cell in enumerate(cells)}
    styles = {seed: ("-", "--", ":", "-.")[i % 4] for i, seed in enumerate(seeds)}
    for axis, key, title in zip(axes, ("train_loss", "val_loss"), ("train −ELBO", "validation −ELBO")):
        for (cell, seed), history in sorted(histories.items()):
            points = history.get(key, [])
            if points:
                steps, values = zip(*points)
                still = (cell, seed) in improving
                axis.plot(
                    steps,
                    values,
                    color=colours[cell],
                    linestyle=styles[seed],
                    marker="o",
                    markersize=3,
                    label=f"{cell} seed {seed}{' ▲ still improving' if still else ''}",
                )
                if still:
                    axis.plot(steps[-1], values[-1], marker="^", markersize=11, color="#c33", zorder=5)
        axis.set_title(f"{title} (nats/image)")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    axes[1].legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    return figure


@dataclass
class SamplePanel:
    """One experiment's column of the samples figure, as read from its evaluate run."""

    title: str
    grid: np.ndarray | None = None  # evaluation/<key>/grid.png
    counts: np.ndarray | None = None  # evaluation/<key>/class_histogram.json
    reference: np.ndarray | None = None  # its test_share column
    fallback: np.ndarray | None = None  # an evaluate run without grid.png: its samples_and_classes.png
    missing: str = "not evaluated"


def samples_figure(panels: list[SamplePanel]):
    """The experiments' sample grids side by side, each class histogram directly under its grid, so
    the grids compare at a glance and each histogram reads against its own samples."""
    columns = min(len(panels), SAMPLE_COLUMNS)
    rows = -(-len(panels) // columns)
    size = (columns * COLUMN_INCHES, rows * (GRID_INCHES + HISTOGRAM_INCHES))
    figure = plt.figure(figsize=size, layout="constrained")
    layout = figure.add_gridspec(2 * rows, columns, height_ratios=[GRID_INCHES, HISTOGRAM_INCHES] * rows)
    histograms = []
    for index, panel in enumerate(panels):
        row, column = divmod(index, columns)
        if panel.grid is None:  # one picture (or a note) fills the column
            axis = figure.add_subplot(layout[2 * row : 2 * row + 2, column])
            if panel.fallback is not None:
                axis.imshow(panel.fallback)
            else:
                axis.text(0.5, 0.5, panel.missing, ha="center", va="center", color="#a33", wrap=True)
            axis.set_axis_off()
            axis.set_title(panel.title, fontsize=10)
            continue
        top = figure.add_subplot(layout[2 * row, column])
        top.imshow(panel.grid, cmap="gray", vmin=0, vmax=1 if panel.grid.dtype.kind == "f" else 255)
        top.set_axis_off()
        top.set_title(panel.title, fontsize=10)
        bottom = figure.add_subplot(layout[2 * row + 1, column])
        if panel.counts is not None:
            class_histogram_figure(panel.counts, "predicted classes", panel.reference, axis=bottom)
            bottom.title.set_fontsize(9)
            histograms.append(bottom)
        else:
            bottom.text(0.5, 0.5, "no class histogram logged", ha="center", va="center", color="#a33")
            bottom.set_axis_off()
    top_share = max((axis.get_ylim()[1] for axis in histograms), default=None)
    for axis in histograms:  # one share scale, so bar heights compare across columns
        axis.set_ylim(0, top_share)
    return figure
