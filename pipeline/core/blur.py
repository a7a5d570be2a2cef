"""Real digits blurred until they are as blurry as a sampler's samples.

A judge's test accuracy is measured on crisp real digits, while VAE samples are blurry: how far a
judge can be trusted on them is its accuracy on real digits of the same sharpness. The blur is a
Gaussian whose σ is found by bisection on the project's sharpness measure
(`quality.sharpness`, the mean variance of the Laplacian), which falls monotonically as σ grows.

The kernel is torchvision's (`transforms.functional.gaussian_blur`: a sampled, normalised Gaussian
of 2·ceil(3σ)+1 taps, reflected border), written as two 1-d convolutions in plain torch: importing
torchvision.transforms costs every evaluation a second or more. tests/unit/test_blur.py checks
the two agree.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from pipeline.core.quality import sharpness

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


@torch.no_grad()
def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Flat (N, 784) or (N, 28, 28) images blurred with a Gaussian of standard deviation σ pixels
    (σ = 0: unchanged); same shape and dtype as given."""
    if sigma <= 0:
        return images
    if not sigma <= MAX_SIGMA:
        raise ValueError(f"sigma must be in [0, {MAX_SIGMA}], got {sigma}")
    x = images.reshape(-1, 1, 28, 28).float()
    kernel = gaussian_kernel(sigma, x.device)
    pad = len(kernel) // 2
    x = torch.nn.functional.pad(x, (pad, pad, 0, 0), mode="reflect")
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, 1, -1))
    x = torch.nn.functional.pad(x, (0, 0, pad, pad), mode="reflect")
    x = torch.nn.functional.conv2d(x, kernel.view(1, 1, -1, 1))
    return x.reshape(images.shape).to(images.dtype)


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
