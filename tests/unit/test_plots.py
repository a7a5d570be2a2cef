"""Image grids are laid out exactly as torchvision's make_grid lays them out (the step no longer
imports torchvision for them), and figures need no screen."""

import numpy as np
import pytest
import torch

from pipeline.core import plots


@pytest.mark.parametrize("count, nrow", [(64, 8), (5, 3), (20, 10), (1, 1), (7, 3), (10, 10)])
def test_tile_matches_torchvision_make_grid(count, nrow):
    from torchvision.utils import make_grid

    images = plots.as_images(torch.rand(count, 784, generator=torch.Generator().manual_seed(count)))
    expected = make_grid(images, nrow=nrow, padding=2, pad_value=0.5)[0].numpy()
    assert np.array_equal(plots.tile(images[:, 0].numpy(), nrow), expected)


def test_grid_array_is_uint8_upscaled_with_digits_in_place():
    flat = torch.zeros(4, 784)
    flat[1, :] = 1.0  # the second digit all white
    grid = plots.grid_array(flat)
    assert grid.dtype == np.uint8
    assert grid.shape == ((2 * 30 + 2) * plots.GRID_UPSCALE,) * 2
    scale = plots.GRID_UPSCALE
    second = grid[2 * scale : 30 * scale, 32 * scale : 60 * scale]  # row 0, column 1
    first = grid[2 * scale : 30 * scale, 2 * scale : 30 * scale]
    assert (second == 255).all() and (first == 0).all()
    assert grid[0, 0] == 128  # the border is mid grey


def test_step_modules_do_not_import_torchvision_or_sklearn():
    import subprocess
    import sys

    code = ("import sys, pipeline.steps.train, pipeline.steps.evaluate; "
            "print(sorted(m for m in ('torchvision', 'sklearn', 'matplotlib.pyplot', 'torchmetrics', 'scipy.stats') "
            "if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
