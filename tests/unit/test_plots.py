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

    code = (
        "import sys, pipeline.steps.train, pipeline.steps.evaluate; "
        "print(sorted(m for m in ('torchvision', 'sklearn', 'matplotlib.pyplot', 'torchmetrics', 'scipy.stats') "
        "if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def draw_panels(panels, counts, counts_judge2, key):
    images = torch.rand(64, 784, generator=torch.Generator().manual_seed(len(key)))
    return panels.draw(plots.grid_array(images), len(images), counts, counts_judge2, key)


def blue_pixels(picture) -> int:
    """Pixels of the histogram bars' colour (matplotlib's tab:blue)."""
    return int((np.abs(picture.astype(int) - (31, 119, 180)).sum(axis=2) < 30).sum())


def test_sampler_panels_are_cut_from_one_drawing_without_overlap():
    """The histogram alone is the very pixels of the right half of the grid-and-histogram picture, and
    the second judge's histogram lies beside it, sharing no column with it."""
    from pipeline.core.judges import knn

    panels = plots.SamplerPanels(knn.NAME, np.full(10, 0.1))
    pictures = draw_panels(panels, np.arange(10) * 7 + 1, np.full(10, 10), "beta_0.25_0.25")
    panels.close()
    both, alone, second = pictures["samples_and_classes"], pictures["classes"], pictures["classes_second_judge"]
    for picture in pictures.values():
        assert picture.dtype == np.uint8 and picture.ndim == 3 and picture.shape[2] == 3
        assert picture.shape[0] > 300 and picture.shape[1] > 300
        assert (picture[:2] == 255).all() and (picture[-2:] == 255).all()  # nothing cut off at the top or bottom
    assert alone.shape[0] == both.shape[0]  # one row of panels (the second judge's title has two lines)
    assert both.shape[1] > alone.shape[1] + 300  # the grid is left of the histogram
    assert np.array_equal(both[:, -alone.shape[1] :], alone)  # the same pixels, not a second drawing
    assert (alone[:, :2] == 255).all() and (second[:, :2] == 255).all()  # white margins: nothing of a neighbour
    assert (alone[:, -2:] == 255).all() and (second[:, -2:] == 255).all()
    assert abs(alone.shape[1] - second.shape[1]) <= 40  # two histograms of one size


def test_sampler_panels_redraw_a_later_sampler_as_a_new_figure_would():
    """The figure is laid out for the first sampler only: a later one drawn into it gives the very pixels
    of its own new figure, and a later histogram with another scale shows its own bars."""
    from pipeline.core.judges import knn

    shares = np.full(10, 0.1)
    first, later = (np.arange(10) * 7 + 1, np.full(10, 10)), (np.arange(10)[::-1] * 5 + 3, np.arange(10) + 20)
    reused = plots.SamplerPanels(knn.NAME, shares)
    draw_panels(reused, *first, "normal_0_1")
    again = draw_panels(reused, *later, "normal_1_2")  # the same key length and the same scale (shares < 0.25)
    new = plots.SamplerPanels(knn.NAME, shares)
    fresh = draw_panels(new, *later, "normal_1_2")
    for name in plots.SamplerPanels.PICTURES:
        assert np.array_equal(again[name], fresh[name]), name

    collapsed = np.array([0, 0, 0, 990, 0, 0, 6, 0, 0, 4])  # one class: the scale goes up to 1.34
    reused_collapsed = draw_panels(reused, collapsed, collapsed, "gmm_10")["classes"]  # third into one figure
    second_collapsed = draw_panels(new, collapsed, collapsed, "gmm_10")["classes"]  # second into another
    new_collapsed = plots.SamplerPanels(knn.NAME, shares)
    own_collapsed = draw_panels(new_collapsed, collapsed, collapsed, "gmm_10")["classes"]  # a figure of its own
    for panels in (reused, new, new_collapsed):
        panels.close()
    assert np.array_equal(reused_collapsed, second_collapsed)  # what was drawn before leaves no trace
    assert abs(blue_pixels(reused_collapsed) - blue_pixels(own_collapsed)) <= 0.03 * blue_pixels(own_collapsed)
    # the bars' area is their total share over the scale's top: 1/0.25 before, 1/1.34 now
    assert 0.16 < blue_pixels(reused_collapsed) / blue_pixels(again["classes"]) < 0.21
    assert (reused_collapsed[:, :2] == 255).all() and (reused_collapsed[:, -2:] == 255).all()


def test_the_legend_never_hides_the_tallest_bar():
    """Whatever the tallest bar's share, the legend in the upper right corner lies above its top."""
    from pipeline.core.judges import knn

    panels = plots.SamplerPanels(knn.NAME, np.full(10, 0.1))
    for tallest in (0.2, 0.5, 1.0):
        counts = np.full(10, (1 - tallest) / 9 * 1000)
        counts[9] = tallest * 1000  # the bar under the legend
        draw_panels(panels, counts, counts, f"k{tallest}")
        axis = panels.axes[1]
        renderer = panels.figure.canvas.get_renderer()
        legend, bar = axis.get_legend().get_window_extent(renderer), panels.bars[0][9].get_window_extent(renderer)
        assert bar.y1 < legend.y0, tallest
    panels.close()
