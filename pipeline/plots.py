"""Pictures: image grids, single digits, reconstructions and loss curves, as arrays or figures."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no screen on servers; must precede pyplot

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchvision.utils import make_grid  # noqa: E402

UPSCALE = 4  # single digits are 28x28: show them at 112x112 so they can be seen


def as_images(flat: torch.Tensor) -> torch.Tensor:
    """(N, 784) in [0, 1] -> (N, 1, 28, 28) on the CPU."""
    return flat.detach().float().cpu().clamp(0, 1).reshape(-1, 1, 28, 28)


def grid_array(flat: torch.Tensor, nrow: int | None = None) -> np.ndarray:
    """A uint8 (H, W) grid of digits, white on black, with a thin border."""
    images = as_images(flat)
    nrow = nrow or max(1, int(np.ceil(np.sqrt(len(images)))))
    grid = make_grid(images, nrow=nrow, padding=2, pad_value=0.5)[0]
    return (grid.numpy() * 255).round().astype(np.uint8)


def single_arrays(flat: torch.Tensor) -> list[np.ndarray]:
    """Each digit as a uint8 (112, 112) array, upscaled by pixel repetition."""
    images = as_images(flat)[:, 0].numpy()
    return [(np.kron(image, np.ones((UPSCALE, UPSCALE))) * 255).round().astype(np.uint8) for image in images]


def reconstruction_array(inputs: torch.Tensor, outputs: torch.Tensor) -> np.ndarray:
    """Inputs in the top row, their reconstructions below."""
    return grid_array(torch.cat([inputs, outputs]), nrow=len(inputs))


def loss_curve_figure(history: list[dict[str, float]]):
    """Train and validation loss, reconstruction and KL per epoch, one panel each."""
    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 3, figsize=(13, 3.6))
    for axis, term, title in zip(axes, ("loss", "recon", "kl"), ("-ELBO (nats/image)", "reconstruction", "KL")):
        axis.plot(epochs, [row[f"train_{term}"] for row in history], label="train")
        axis.plot(epochs, [row[f"val_{term}"] for row in history], label="validation")
        axis.set_title(title)
        axis.set_xlabel("epoch")
        axis.grid(alpha=0.3)
    axes[0].legend()
    figure.tight_layout()
    return figure
