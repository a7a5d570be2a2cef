"""Pictures: image grids, single digits, reconstructions and loss curves, as arrays or figures.

Grids are plain NumPy (torchvision's `make_grid` drags in torchvision.models and torch's dynamo compiler,
2-3 s per step); matplotlib is imported only by the functions that draw figures.
"""

from __future__ import annotations

import numpy as np
import torch

UPSCALE = 4  # single digits are 28x28: show them at 112x112 so they can be seen
GRID_UPSCALE = 2  # an 8x8 grid is 242 px at native size: too small to judge a digit by eye
GRID_SIZE = 64  # images in a logged sample grid (8x8), the same in every step


def as_images(flat: torch.Tensor) -> torch.Tensor:
    """(N, 784) in [0, 1] -> (N, 1, 28, 28) on the CPU."""
    return flat.detach().float().cpu().clamp(0, 1).reshape(-1, 1, 28, 28)


def pyplot():
    """matplotlib.pyplot on the Agg backend (no screen on servers), imported on first use."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def tile(images: np.ndarray, nrow: int, padding: int = 2, pad_value: float = 0.5) -> np.ndarray:
    """(N, H, W) images laid out nrow per row with `padding` pixels of `pad_value` around each,
    exactly as torchvision.utils.make_grid lays out single-channel images."""
    count, height, width = images.shape
    if count == 1:  # make_grid returns a lone image as it is
        return images[0]
    ncol = min(nrow, count)
    rows = -(-count // ncol)
    cell_h, cell_w = height + padding, width + padding
    grid = np.full((rows * cell_h + padding, ncol * cell_w + padding), pad_value, dtype=images.dtype)
    for index, image in enumerate(images):
        top, left = (index // ncol) * cell_h + padding, (index % ncol) * cell_w + padding
        grid[top : top + height, left : left + width] = image
    return grid


def grid_array(flat: torch.Tensor, nrow: int | None = None) -> np.ndarray:
    """A uint8 (H, W) grid of digits, white on black, with a thin border."""
    images = as_images(flat)[:, 0].numpy()
    nrow = nrow or max(1, int(np.ceil(np.sqrt(len(images)))))
    return upscale(tile(images, nrow), GRID_UPSCALE)


def upscale(image: np.ndarray, factor: int) -> np.ndarray:
    """A [0, 1] float image as uint8, each pixel repeated factor x factor times."""
    return (np.kron(image, np.ones((factor, factor))) * 255).round().astype(np.uint8)


def single_arrays(flat: torch.Tensor) -> list[np.ndarray]:
    """Each digit as a uint8 (112, 112) array, upscaled by pixel repetition."""
    images = as_images(flat)[:, 0].numpy()
    return [upscale(image, UPSCALE) for image in images]


def reconstruction_array(inputs: torch.Tensor, outputs: torch.Tensor) -> np.ndarray:
    """Inputs in the top row, their reconstructions below."""
    return grid_array(torch.cat([inputs, outputs]), nrow=len(inputs))


def loss_curve_figure(history: list[dict[str, float]]):
    """Train and validation loss, reconstruction and KL per epoch, one panel each."""
    epochs = [row["epoch"] for row in history]
    figure, axes = pyplot().subplots(1, 3, figsize=(13, 3.6))
    for axis, term, title in zip(axes, ("loss", "recon", "kl"), ("-ELBO (nats/image)", "reconstruction", "KL")):
        axis.plot(epochs, [row[f"train_{term}"] for row in history], label="train")
        axis.plot(epochs, [row[f"val_{term}"] for row in history], label="validation")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    return figure


DIGITS = [str(d) for d in range(10)]


def class_histogram_figure(counts, title: str, reference_shares=None, axis=None):
    """Shares of the predicted classes as bars, the data's own label shares as a dashed outline."""
    figure = None
    if axis is None:
        figure, axis = pyplot().subplots(figsize=(5, 3.4))
    class_histogram(axis, counts, title, reference_shares)
    if figure is not None:
        figure.tight_layout()
    return figure if figure is not None else axis.figure


def class_shares(counts) -> np.ndarray:
    counts = np.asarray(counts, dtype=float)
    return counts / max(counts.sum(), 1)


def share_limit(shares: np.ndarray) -> float:
    """The histogram's top: a quarter at least, so that a uniform share (0.1) looks small, and a third
    above the tallest bar, so that the legend in the upper right corner never hides a bar's top."""
    return max(0.25, float(shares.max()) * 1.35)


def class_histogram(axis, counts, title: str, reference_shares=None):
    """`class_histogram_figure` on a given axis; returns the bars (SamplerPanels sets their heights)."""
    shares = class_shares(counts)
    bars = axis.bar(DIGITS, shares, color="tab:blue", label="generated")
    if reference_shares is not None:
        axis.step(
            np.arange(len(shares) + 1) - 0.5,
            np.append(reference_shares, reference_shares[-1]),
            where="post",
            color="black",
            linestyle="--",
            linewidth=1,
            label="test labels",
        )
        axis.legend(fontsize=8, loc="upper right")
    axis.axhline(0.05, color="grey", linewidth=0.6, linestyle=":")  # half a uniform share: 'covered'
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("share")
    axis.set_ylim(0, share_limit(shares))
    axis.set_title(title)
    return bars


def set_class_shares(axis, bars, counts) -> None:
    """A drawn `class_histogram`'s bars and scale, set to other counts."""
    shares = class_shares(counts)
    for bar, share in zip(bars, shares):
        bar.set_height(share)
    axis.set_ylim(0, share_limit(shares))


class SamplerPanels:
    """An evaluation's three pictures per sampler: its sample grid beside the classifier's class
    histogram, that histogram alone, and the second judge's. Each sampler's are drawn as one figure
    and cut apart. The figure is made and laid out for the first sampler only; each later sampler
    changes its data and titles in place and is drawn again, which costs under half of a new figure
    (making the axes and laying them out cost more than drawing them)."""

    PICTURES = {"samples_and_classes": (0, 1), "classes": (1, 1), "classes_second_judge": (2, 2)}  # panel spans

    def __init__(self, judge_name: str, reference_shares=None, margin: int = 4):
        self.judge_name, self.reference_shares, self.margin = judge_name, reference_shares, margin
        self.figure = None

    def titles(self, key: str, samples: int) -> tuple[str, str, str]:
        return f"{key}: {samples} samples", f"{key}: predicted classes", f"{key}: classes by\n{self.judge_name}"

    def draw(self, grid: np.ndarray, samples: int, counts, counts_judge2, key: str) -> dict:
        """RGB uint8 arrays of one sampler's pictures (`grid` is `grid_array` of its first `samples`
        images), under the keys of PICTURES."""
        if self.figure is None or self.image.get_array().shape != grid.shape:
            self.close()
            self.lay_out(grid, samples, counts, counts_judge2, key)
        else:
            self.image.set_data(grid)
            for axis, title in zip(self.axes, self.titles(key, samples)):
                axis.set_title(title)
            for axis, bars, histogram in zip(self.axes[1:], self.bars, (counts, counts_judge2)):
                set_class_shares(axis, bars, histogram)
        self.figure.canvas.draw()
        pixels = np.asarray(self.figure.canvas.buffer_rgba())[:, :, :3]
        inked = (pixels != 255).any(axis=2)
        rows, columns = np.flatnonzero(inked.any(axis=1)), inked.any(axis=0)
        cuts = self.cuts(columns)
        return {
            name: self.cut(pixels, rows, columns, cuts[first], cuts[last + 1])
            for name, (first, last) in self.PICTURES.items()
        }

    def lay_out(self, grid: np.ndarray, samples: int, counts, counts_judge2, key: str) -> None:
        self.figure, self.axes = pyplot().subplots(
            1, 3, figsize=(15.5, 4.4), gridspec_kw={"width_ratios": [1, 1.15, 1.15]}
        )
        panel_title, first_title, second_title = self.titles(key, samples)
        self.image = self.axes[0].imshow(grid, cmap="gray", vmin=0, vmax=255)
        self.axes[0].set_axis_off()
        self.axes[0].set_title(panel_title)
        self.bars = (
            class_histogram(self.axes[1], counts, first_title, self.reference_shares),
            class_histogram(self.axes[2], counts_judge2, second_title, self.reference_shares),
        )
        self.figure.tight_layout()

    def cuts(self, inked_columns: np.ndarray) -> list[int]:
        """Where panels are cut apart: in the middle of the white gap right of each panel (nothing of a
        panel lies right of its axes; the next one's labels lie left of its own), and the edges."""
        width = len(inked_columns)
        cuts = [0]
        for axis in self.axes[:-1]:
            edge = int(np.ceil(width * axis.get_position().x1)) + 2  # past the right spine
            cuts.append(edge + int(np.argmax(inked_columns[edge:])) // 2)
        return cuts + [width]

    def cut(self, pixels: np.ndarray, inked_rows: np.ndarray, inked_columns: np.ndarray, start: int, stop: int):
        """Columns start..stop of the drawing, trimmed to what is drawn there and `margin` white pixels
        around it; every picture has the height of everything drawn."""
        height = pixels.shape[0]
        columns = np.flatnonzero(inked_columns[start:stop]) + start
        top, bottom = max(0, inked_rows[0] - self.margin), min(height, inked_rows[-1] + 1 + self.margin)
        left, right = max(start, columns[0] - self.margin), min(stop, columns[-1] + 1 + self.margin)
        return np.ascontiguousarray(pixels[top:bottom, left:right])

    def close(self) -> None:
        if self.figure is not None:
            pyplot().close(self.figure)
            self.figure = None
