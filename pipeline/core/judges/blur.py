"""Real digits blurred until they are as blurry as a sampler's samples.

A judge's test accuracy is measured on crisp real digits, while VAE samples are blurry: how far a
judge can be trusted on them is its accuracy on real digits of the same sharpness. The blur is a
Gaussian whose σ is found by bisection on the project's sharpness measure
(`quality.sharpness`, the mean variance of the Laplacian), which falls monotonically as σ grows.

The kernel is torchvision's (`transforms.functional.gaussian_blur`: a sampled, normalised Gaussian
of 2·ceil(3σ)+1 taps, reflected border), applied as two 28x28 matrix products in plain torch:
importing torchvision.transforms costs every evaluation a second or more, and its 1-channel
convolutions are slower. tests/unit/test_blur.py checks the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pipeline.core.scores.quality import sharpness

MAX_SIGMA = 8.0  # the kernel's half-width 3σ must stay below the 28-pixel side for a reflected border
TOLERANCE = 0.01  # relative: the bisection stops within 1 % of the target sharpness
MAX_STEPS = 40


def kernel_size(sigma: float) -> int:
    """Taps of the Gaussian kernel: 2·ceil(3σ) + 1, at least 3."""
    return max(3, 2 * math.ceil(3 * sigma) + 1)


def gaussian_kernel(sigma: float, device=None) -> torch.Tensor:
    """The normalised 1-d Gaussian torchvision's gaussian_blur samples."""
    half = (kernel_size(sigma) - 1) / 2
    x = torch.linspace(-half, half, kernel_size(sigma), device=device)
    pdf = torch.exp(-0.5 * (x / sigma) ** 2)
    return pdf / pdf.sum()


def blur_matrix(sigma: float, size: int = 28, device=None) -> torch.Tensor:
    """The (size, size) matrix B with B @ column = the column convolved with the kernel over a
    reflected border (torchvision's padding mode "reflect": no edge pixel repeated)."""
    kernel = gaussian_kernel(sigma)
    half = len(kernel) // 2
    matrix = torch.zeros(size, size)
    for row in range(size):
        for tap, weight in enumerate(kernel):
            column = row + tap - half
            column = -column if column < 0 else 2 * (size - 1) - column if column >= size else column
            matrix[row, column] += weight
    return matrix.to(device)


@torch.no_grad()
def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Flat (N, 784) or (N, 28, 28) images blurred with a Gaussian of standard deviation σ pixels
    (σ = 0: unchanged); same shape and dtype as given. Separable and linear: B · image · Bᵀ, two
    small matrix products per image (a 1-channel conv2d is several times slower on CPU)."""
    if sigma <= 0:
        return images
    if not sigma <= MAX_SIGMA:
        raise ValueError(f"sigma must be in [0, {MAX_SIGMA}], got {sigma}")
    x = images.reshape(-1, 28, 28).float()
    matrix = blur_matrix(sigma, 28, x.device)
    return (matrix @ x @ matrix.T).reshape(images.shape).to(images.dtype)


@dataclass(frozen=True)
class Blurred:
    """The blurred images, the σ that made them, and the sharpness reached against the one asked for."""

    images: torch.Tensor
    sigma: float
    sharpness: float
    target: float

    @property
    def reached(self) -> bool:
        """Whether the target lay within reach: real digits blurred by at most MAX_SIGMA (a target
        above the digits' own sharpness is met by σ = 0 at the digits' sharpness, and counts as reached)."""
        return self.sigma == 0 or abs(self.sharpness - self.target) <= TOLERANCE * self.target


def blur_to_sharpness(images: torch.Tensor, target: float, tolerance: float = TOLERANCE) -> Blurred:
    """Blur `images` with the σ whose mean sharpness equals `target` within `tolerance` (relative).

    Samples sharper than the digits (noise is 'sharp') get σ = 0; a target below what MAX_SIGMA
    reaches gets MAX_SIGMA. Bisection: sharpness falls monotonically in σ.
    """
    unblurred = sharpness(images)
    if target >= unblurred:
        return Blurred(images, 0.0, unblurred, target)
    low, high = 0.0, MAX_SIGMA
    blurred = gaussian_blur(images, high)
    reached = sharpness(blurred)
    if reached >= target:
        return Blurred(blurred, high, reached, target)
    best = Blurred(blurred, high, reached, target)
    for _ in range(MAX_STEPS):
        sigma = (low + high) / 2
        blurred = gaussian_blur(images, sigma)
        reached = sharpness(blurred)
        if abs(reached - target) < abs(best.sharpness - target):
            best = Blurred(blurred, sigma, reached, target)
        if abs(reached - target) <= tolerance * target:
            break
        low, high = (sigma, high) if reached > target else (low, sigma)
    return best
