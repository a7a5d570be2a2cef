"""The report's matplotlib figures that need no model: loss curves, and figures as PNG bytes."""

from __future__ import annotations

import io

from matplotlib.ticker import MaxNLocator

from pipeline.core.plots import plt  # Agg backend chosen there

DPI = 100


def png_bytes(figure) -> bytes:
    """A figure as PNG bytes (closed afterwards): the page embeds them, the Markdown writes them beside it."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI)
    plt.close(figure)
    return buffer.getvalue()


def loss_curves_figure(histories: dict[tuple[str, int], dict[str, list[tuple[int, float]]]]):
    """Every training's train and validation loss per epoch, overlaid: one colour per cell, one line
    style per seed, so a diverging seed or an over-fitting cell stands out."""
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
                axis.plot(steps, values, color=colours[cell], linestyle=styles[seed], marker="o", markersize=3,
                          label=f"{cell} seed {seed}")
        axis.set_title(f"{title} (nats/image)")
        axis.set_xlabel("epoch")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.grid(alpha=0.3)
    axes[0].set_ylabel("loss")
    axes[1].legend(fontsize=8, loc="upper right")
    figure.tight_layout()
    return figure
