"""Evaluate's pictures of one sampler: three figures drawn apart (as before) against one drawing cut
into the same three PNGs (`plots.sampler_panels`, as now), interleaved in one process, as JSON.

Both sides draw what evaluate logs per sampler: its 64-sample grid beside the classifier's class
histogram, that histogram alone and the second judge's, each saved as a PNG in memory. The reference
draws them as evaluate did before: three figures, each laid out and saved on its own.

    python benchmarks/evaluate_figures.py [--repeats 5] [--samplers 3]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import time

import numpy as np
import torch
from PIL import Image

from pipeline.core import judge, plots


def save(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    plots.pyplot().close(figure)
    return buffer.getvalue()


def three_figures(images, counts, counts_judge2, key: str, shares) -> list[bytes]:
    """The reference: each picture a figure of its own, the histogram drawn twice."""
    figure, (left, right) = plots.pyplot().subplots(1, 2, figsize=(10, 4.4), gridspec_kw={"width_ratios": [1, 1.15]})
    left.imshow(plots.grid_array(images), cmap="gray", vmin=0, vmax=255)
    left.set_axis_off()
    left.set_title(f"{key}: {len(images)} samples")
    plots.class_histogram_figure(counts, "predicted classes", shares, axis=right)
    figure.tight_layout()
    return [save(figure), save(plots.class_histogram_figure(counts, f"{key}: predicted classes", shares)),
            save(plots.class_histogram_figure(counts_judge2, f"{key}: classes by\n{judge.NAME}", shares))]


def one_drawing(images, counts, counts_judge2, key: str, shares) -> list[bytes]:
    """Now: one figure, cut into the three pictures."""
    pngs = []
    panels = plots.sampler_panels(plots.grid_array(images), len(images), counts, counts_judge2, key, judge.NAME, shares)
    for pixels in panels.values():
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="png")
        pngs.append(buffer.getvalue())
    return pngs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samplers", type=int, default=3, help="samplers per evaluation (the benchmark's: 3)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = torch.rand(plots.GRID_SIZE, 784, generator=torch.Generator().manual_seed(0))
    counts, counts_judge2, shares = rng.integers(0, 200, 10), rng.integers(0, 200, 10), np.full(10, 0.1)
    sides = {"three_figures_s": three_figures, "one_drawing_s": one_drawing}
    for draw in sides.values():  # warm-up: matplotlib's import and font cache
        draw(images, counts, counts_judge2, "warm_up", shares)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, draw in sides.items():
            started = time.perf_counter()
            for index in range(args.samplers):
                draw(images, counts, counts_judge2, f"sampler_{index}", shares)
            times[name].append(time.perf_counter() - started)
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    print(json.dumps({"samplers": args.samplers, "repeats": args.repeats, **medians,
                      "one_over_three": round(medians["one_drawing_s"] / medians["three_figures_s"], 3),
                      "all": {name: [round(v, 3) for v in values] for name, values in times.items()}}, indent=2))


if __name__ == "__main__":
    main()
