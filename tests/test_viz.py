"""course_lib.viz: grids have the right layout; plots accept good input and reject bad."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from course_lib import viz  # noqa: E402


def test_image_grid_layout():
    X = np.arange(6 * 2 * 2, dtype=float).reshape(6, 1, 2, 2) / 24
    g = viz.image_grid(X, nrow=3, padding=1, pad_value=-1)
    assert g.shape == (2 * 3 + 1, 3 * 3 + 1)
    # image 4 (row 1, col 1) sits at rows 4..5, cols 4..5
    np.testing.assert_array_equal(g[4:6, 4:6], X[4, 0])
    assert g[0, 0] == -1


def test_image_grid_rejects_colour_and_bad_rank():
    with pytest.raises(ValueError, match="one channel"):
        viz.image_grid(np.zeros((2, 3, 4, 4)))
    with pytest.raises(ValueError, match="X must have 3 or 4 dimensions"):
        viz.image_grid(np.zeros((4, 4)))


def test_plots_draw():
    fig, axes = plt.subplots(1, 5)
    viz.show_images(np.random.rand(4, 1, 8, 8), ax=axes[0], title="t")
    viz.plot_points(np.random.randn(10, 2), ax=axes[1], centres=np.zeros((1, 2)))
    viz.plot_density(lambda p: -0.5 * (p**2).sum(1), (-2, 2), (-2, 2), ax=axes[2], n=20)
    viz.plot_gaussian_ellipses(np.zeros((2, 2)), np.stack([np.eye(2)] * 2), ax=axes[3])
    viz.plot_history({"a": [1, 2, 3], "b": [3, 2, 1]}, ax=axes[4])
    assert len(axes[3].patches) == 2
    assert len(axes[4].lines) == 2
    plt.close(fig)


def test_plot_bad_input():
    with pytest.raises(ValueError, match="2 columns"):
        viz.plot_points(np.zeros((3, 3)))
    with pytest.raises(ValueError, match="covariances"):
        viz.plot_gaussian_ellipses(np.zeros((2, 2)), np.zeros((3, 2, 2)))
    with pytest.raises(ValueError, match="keys"):
        viz.plot_history({"a": [1]}, keys=["b"])


def test_plots_label_their_axes():
    fig, axes = plt.subplots(1, 3)
    viz.plot_points(np.random.randn(10, 2), ax=axes[0])
    viz.plot_density(lambda p: -0.5 * (p**2).sum(1), (-2, 2), (-2, 2), ax=axes[1], n=5,
                     xlabel="z₁", ylabel="z₂")
    viz.plot_history({"loss_d": [1, 2], "loss_g": [2, 1]}, ax=axes[2])
    assert (axes[0].get_xlabel(), axes[0].get_ylabel()) == ("$x_1$", "$x_2$")
    assert (axes[1].get_xlabel(), axes[1].get_ylabel()) == ("z₁", "z₂")
    assert (axes[2].get_xlabel(), axes[2].get_ylabel()) == ("iteration", "loss_d, loss_g")
    ax = viz.plot_history([3.0, 2.0], ylabel="loss (nats)")
    assert ax.get_ylabel() == "loss (nats)"
    plt.close("all")
