"""Evaluate's pictures of an evaluation's samplers, drawn three ways, interleaved in one process, as JSON.

Each way draws what evaluate logs per sampler: its 64-sample grid beside the classifier's class
histogram, that histogram alone and the second judge's, each saved as a PNG in memory.
- `three_figures_s`: as evaluate first did, three figures per sampler, each laid out and saved alone;
- `one_drawing_each_s`: one figure per sampler, cut into the three pictures (a new
  `plots.SamplerPanels` for each sampler, as evaluate did next);
- `laid_out_once_s`: as now, one `plots.SamplerPanels` for the whole evaluation, laid out for the
  first sampler; each later sampler changes its data and titles in place and is drawn again.

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

from pipeline.core import plots
from pipeline.core.judges import knn


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
    return [
        save(figure),
        save(plots.class_histogram_figure(counts, f"{key}: predicted classes", shares)),
        save(plots.class_histogram_figure(counts_judge2, f"{key}: classes by\n{knn.NAME}", shares)),
    ]


def cut_pictures(panels: plots.SamplerPanels, images, counts, counts_judge2, key: str) -> list[bytes]:
    pngs = []
    for pixels in panels.draw(plots.grid_array(images), len(images), counts, counts_judge2, key).values():
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="png")
        pngs.append(buffer.getvalue())
    return pngs


def evaluation(draw_sampler, samplers: int, images, counts, counts_judge2, shares) -> None:
    """The pictures of `samplers` samplers, each drawn by `draw_sampler(panels, key)`."""
    panels = plots.SamplerPanels(knn.NAME, shares)
    for index in range(samplers):
        draw_sampler(panels, f"sampler_{index}")
    panels.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samplers", type=int, default=3, help="samplers per evaluation (the benchmark's: 3)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    images = torch.rand(plots.GRID_SIZE, 784, generator=torch.Generator().manual_seed(0))
    counts, counts_judge2, shares = rng.integers(0, 200, 10), rng.integers(0, 200, 10), np.full(10, 0.1)

    def one_drawing_each(panels, key):
        fresh = plots.SamplerPanels(knn.NAME, shares)
        cut_pictures(fresh, images, counts, counts_judge2, key)
        fresh.close()

    sides = {
        "three_figures_s": lambda panels, key: three_figures(images, counts, counts_judge2, key, shares),
        "one_drawing_each_s": one_drawing_each,
        "laid_out_once_s": lambda panels, key: cut_pictures(panels, images, counts, counts_judge2, key),
    }
    for draw in sides.values():  # warm-up: matplotlib's import and font cache
        evaluation(draw, 1, images, counts, counts_judge2, shares)
    times: dict[str, list[float]] = {name: [] for name in sides}
    for _ in range(args.repeats):
        for name, draw in sides.items():
            started = time.perf_counter()
            evaluation(draw, args.samplers, images, counts, counts_judge2, shares)
            times[name].append(time.perf_counter() - started)
    medians = {name: round(statistics.median(values), 3) for name, values in times.items()}
    print(
        json.dumps(
            {
                "samplers": args.samplers,
                "repeats": args.repeats,
                **medians,
                "one_each_over_three": round(medians["one_drawing_each_s"] / medians["three_figures_s"], 3),
                "once_over_one_each": round(medians["laid_out_once_s"] / medians["one_drawing_each_s"], 3),
                "all": {name: [round(v, 3) for v in values] for name, values in times.items()},
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
