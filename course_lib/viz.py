"""Plots used by every chapter: image grids, 2D points and densities, training curves.

All functions draw on a matplotlib ``Axes`` (a new figure when ``ax`` is None) and return it,
so that a notebook can compose them and a widget can redraw them.
"""

from __future__ import annotations

import math

import numpy as np

from ._core import as_numpy, check_bool, check_int, check_real

__all__ = [
    "image_grid",
    "show_images",
    "plot_points",
    "plot_density",
    "plot_gaussian_ellipses",
    "plot_history",
]


def _new_ax(ax, figsize=(4, 4)):
    if ax is not None:
        return ax
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=figsize)
    return ax


def image_grid(X, nrow: int | None = None, padding: int = 1, pad_value: float = 0.5) -> np.ndarray:
    """Tile images ``(N, C, H, W)`` or ``(N, H, W)`` into one array ``(rows*H', cols*W')``.

    ``nrow`` is the number of images per row (default: about square). Only single-channel
    images are supported (the course's data are grey or binary).
    """
    arr = as_numpy(X, "X", ndim=(3, 4))
    if arr.ndim == 4:
        if arr.shape[1] != 1:
            raise ValueError(f"X must have one channel, got shape {arr.shape}")
        arr = arr[:, 0]
    n, h, w = arr.shape
    ncol = check_int(nrow, "nrow", minimum=1) if nrow is not None else math.ceil(math.sqrt(n))
    nrows = math.ceil(n / ncol)
    padding = check_int(padding, "padding", minimum=0)
    grid = np.full(
        (nrows * (h + padding) + padding, ncol * (w + padding) + padding), pad_value, dtype=float
    )
    for i in range(n):
        r, c = divmod(i, ncol)
        top, left = padding + r * (h + padding), padding + c * (w + padding)
        grid[top : top + h, left : left + w] = arr[i]
    return grid


def show_images(
    X, nrow=None, ax=None, title=None, cmap="gray_r", vmin=0.0, vmax=1.0, padding=1
):
    """Show images as a grid. Digits are drawn as dark ink on light paper (``gray_r``)."""
    ax = _new_ax(ax)
    ax.imshow(image_grid(X, nrow, padding=padding), cmap=cmap, vmin=vmin, vmax=vmax,
              interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title)
    return ax


def plot_points(X, ax=None, centres=None, s=2.0, alpha=0.4, title=None, color="C0", label=None,
                xlabel="$x_1$", ylabel="$x_2$"):
    """Scatter 2D points ``(N, 2)``; ``centres`` (the true modes) are drawn as red crosses.

    The axes are the two coordinates, labelled ``xlabel`` and ``ylabel`` (``None``: unchanged).
    """
    X = as_numpy(X, "X", ndim=2)
    if X.shape[1] != 2:
        raise ValueError(f"X must have 2 columns, got shape {X.shape}")
    ax = _new_ax(ax)
    ax.scatter(X[:, 0], X[:, 1], s=s, alpha=alpha, color=color, label=label, linewidths=0)
    if centres is not None:
        c = as_numpy(centres, "centres", ndim=2)
        ax.scatter(c[:, 0], c[:, 1], marker="x", color="red", s=40, label="modes")
    ax.set_aspect("equal")
    _label_axes(ax, xlabel, ylabel)
    if title:
        ax.set_title(title)
    return ax


def _label_axes(ax, xlabel, ylabel):
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if ylabel is not None:
        ax.set_ylabel(ylabel)


def plot_density(log_density, xlim, ylim, ax=None, n=150, points=None, title=None, cmap="viridis",
                 xlabel="$x_1$", ylabel="$x_2$"):
    """Draw ``exp(log_density(grid))`` over a rectangle; ``log_density`` maps ``(M, 2) -> (M,)``.

    ``points`` (optional, ``(N, 2)``) are overlaid as small white dots. The colour is the
    density relative to its maximum on the grid; the axes are the two coordinates, labelled
    ``xlabel`` and ``ylabel`` (``None``: unchanged).
    """
    n = check_int(n, "n", minimum=2)
    xs = np.linspace(*xlim, n)
    ys = np.linspace(*ylim, n)
    gx, gy = np.meshgrid(xs, ys)
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    values = as_numpy(log_density(grid), "log_density(grid)", dtype=np.float64)
    if values.shape not in ((n * n,), (n * n, 1)):
        raise ValueError(
            f"log_density must map the (M, 2) grid to M values, got shape {values.shape} for "
            f"M = {n * n}"
        )
    values = values.reshape(n, n)
    ax = _new_ax(ax)
    ax.imshow(np.exp(values - values.max()), origin="lower", extent=(*xlim, *ylim), cmap=cmap,
              aspect="auto")
    if points is not None:
        p = as_numpy(points, "points", ndim=2)
        ax.scatter(p[:, 0], p[:, 1], s=1, color="white", alpha=0.5)
    _label_axes(ax, xlabel, ylabel)
    if title:
        ax.set_title(title)
    return ax


def plot_gaussian_ellipses(means, covariances, ax=None, weights=None, n_std=2.0, color="C3"):
    """Draw the ``n_std``-standard-deviation ellipse of each 2D Gaussian component.

    ``means`` is ``(K, 2)``, ``covariances`` ``(K, 2, 2)``; line width follows ``weights``.
    """
    from matplotlib.patches import Ellipse

    means = as_numpy(means, "means", ndim=2)
    covs = as_numpy(covariances, "covariances", ndim=3)
    if means.shape[1] != 2 or covs.shape[1:] != (2, 2) or len(covs) != len(means):
        raise ValueError(
            f"means must be (K, 2) and covariances (K, 2, 2), got {means.shape} and {covs.shape}"
        )
    n_std = check_real(n_std, "n_std", minimum=0.0, strict_min=True)
    w = np.full(len(means), 1 / len(means)) if weights is None else as_numpy(weights, "weights")
    ax = _new_ax(ax)
    for mu, cov, wk in zip(means, covs, w):
        vals, vecs = np.linalg.eigh(cov)
        angle = np.degrees(np.arctan2(vecs[1, -1], vecs[0, -1]))
        width, height = 2 * n_std * np.sqrt(np.maximum(vals[::-1], 0))
        ax.add_patch(Ellipse(mu, width, height, angle=angle, fill=False, color=color,
                             lw=0.5 + 4 * wk))
        ax.plot(*mu, "+", color=color)
    return ax


def plot_history(history, keys=None, ax=None, logy=False, title=None, xlabel="iteration",
                 ylabel=None):
    """Plot training curves from a dict of equal-length lists (or a list of numbers).

    ``ylabel`` names the quantity (with its unit); by default the names of the curves drawn.
    """
    if not isinstance(history, dict):
        history = {"value": list(history)}
    keys = list(history) if keys is None else list(keys)
    missing = [k for k in keys if k not in history]
    if missing:
        raise ValueError(f"keys {missing} are not in history (it has {list(history)})")
    logy = check_bool(logy, "logy")
    curves = {k: as_numpy(history[k], f"history[{k!r}]", ndim=1) for k in keys}
    ax = _new_ax(ax, figsize=(5, 3))
    for k, curve in curves.items():
        ax.plot(curve, label=k)
    if logy:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(", ".join(keys) if ylabel is None else ylabel)
    if len(keys) > 1:
        ax.legend()
    if title:
        ax.set_title(title)
    return ax
