"""Pictures: image grids, single digits, reconstructions and loss curves, as arrays or figures.

Grids are plain NumPy (torchvision's `make_grid` drags in torchvision.models and torch._dynamo,
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
    counts = np.asarray(counts, dtype=float)
    shares = counts / max(counts.sum(), 1)
    figure = None
    if axis is None:
        figure, axis = pyplot().subplots(figsize=(5, 3.4))
    axis.bar(DIGITS, shares, color="tab:blue", label="generated")
    if reference_shares is not None:
        axis.step(np.arange(len(shares) + 1) - 0.5, np.append(reference_shares, reference_shares[-1]), where="post",
                  color="black", linestyle="--", linewidth=1, label="test labels")
        axis.legend(fontsize=8, loc="upper right")
    axis.axhline(0.05, color="grey", linewidth=0.6, linestyle=":")  # half a uniform share: 'covered'
    axis.set_xlabel("predicted digit")
    axis.set_ylabel("share")
    axis.set_ylim(0, max(0.25, shares.max() * 1.1))
    axis.set_title(title)
    if figure is not None:
        figure.tight_layout()
    return figure if figure is not None else axis.figure


def sampler_panels(grid: np.ndarray, samples: int, counts, counts_judge2, key: str, judge_name: str,
                   reference_shares=None) -> dict:
    """An evaluated sampler's three pictures, drawn once as one figure and cut apart (one drawing
    instead of three, about three quarters of their time): its sample grid (`grid_array` of its first
    `samples` images) beside the classifier's class histogram, that histogram alone, and the second
    judge's. Returns RGB uint8 arrays under `samples_and_classes`, `classes` and `classes_second_judge`."""
    figure, (panel, first, second) = pyplot().subplots(1, 3, figsize=(15.5, 4.4),
                                                       gridspec_kw={"width_ratios": [1, 1.15, 1.15]})
    panel.imshow(grid, cmap="gray", vmin=0, vmax=255)
    panel.set_axis_off()
    panel.set_title(f"{key}: {samples} samples")
    class_histogram_figure(counts, f"{key}: predicted classes", reference_shares, axis=first)
    class_histogram_figure(counts_judge2, f"{key}: classes by\n{judge_name}", reference_shares, axis=second)
    figure.tight_layout()
    figure.canvas.draw()
    pixels = np.asarray(figure.canvas.buffer_rgba())[:, :, :3]
    renderer = figure.canvas.get_renderer()
    panels = {"samples_and_classes": crop(pixels, renderer, [panel, first]),
              "classes": crop(pixels, renderer, [first]),
              "classes_second_judge": crop(pixels, renderer, [second])}
    pyplot().close(figure)
    return panels


def crop(pixels: np.ndarray, renderer, axes, margin: int = 4) -> np.ndarray:
    """The part of a drawn figure's pixels that holds `axes` with their titles, labels and legends, and
    `margin` pixels around (tight_layout leaves more than that between panels)."""
    boxes = [axis.get_tightbbox(renderer) for axis in axes]
    height, width = pixels.shape[:2]
    left = max(0, int(min(box.x0 for box in boxes)) - margin)
    right = min(width, int(np.ceil(max(box.x1 for box in boxes))) + margin)
    top = max(0, int(height - max(box.y1 for box in boxes)) - margin)  # display y grows upwards
    bottom = min(height, int(np.ceil(height - min(box.y0 for box in boxes))) + margin)
    return np.ascontiguousarray(pixels[top:bottom, left:right])
