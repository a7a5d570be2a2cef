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


def test_sampler_panels_are_cut_from_one_drawing_without_overlap():
    """The histogram alone is the very pixels of the right half of the grid-and-histogram picture, and
    the second judge's histogram lies beside it, sharing no column with it."""
    from pipeline.core import judge

    counts, counts_judge2 = np.arange(10) * 7 + 1, np.full(10, 10)
    images = torch.rand(64, 784, generator=torch.Generator().manual_seed(0))
    panels = plots.sampler_panels(plots.grid_array(images), len(images), counts, counts_judge2, "beta_0.25_0.25",
                                  judge.NAME, np.full(10, 0.1))
    both, alone, second = panels["samples_and_classes"], panels["classes"], panels["classes_second_judge"]
    for picture in panels.values():
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
        assert picture.shape[0] > 300 and picture.shape[1] > 300
    assert alone.shape[0] == both.shape[0]  # one row of panels (the second judge's title has two lines)
    assert both.shape[1] > alone.shape[1] + 300  # the grid is left of the histogram
    assert np.array_equal(both[:, -alone.shape[1]:], alone)  # the same pixels, not a second drawing
    assert (alone[:, :2] == 255).all() and (second[:, :2] == 255).all()  # white margins: nothing of a neighbour
    assert (alone[:, -2:] == 255).all() and (second[:, -2:] == 255).all()
    assert abs(alone.shape[1] - second.shape[1]) <= 40  # two histograms of one size
