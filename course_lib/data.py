"""Data sets of the course; every one ships inside an installed package (no download).

- ``load_digits``: scikit-learn's 8×8 handwritten digits (1,797 images, 17 grey levels) with a
  fixed, stratified 80/20 train/test split.
- ``ring_of_gaussians`` / ``grid_of_gaussians``: the 2D mixtures used to study mode collapse.
- ``load_binary_image`` and ``flip_noise``: binary images from scikit-image for MRF denoising.
"""

from __future__ import annotations

import numpy as np

from ._core import as_numpy, check_binary, check_choice, check_int, check_real

__all__ = [
    "DIGIT_LEVELS",
    "load_digits",
    "dequantize",
    "ring_of_gaussians",
    "grid_of_gaussians",
    "BINARY_IMAGES",
    "load_binary_image",
    "flip_noise",
]

#: Number of grey levels in scikit-learn's digits (integers 0..16).
DIGIT_LEVELS = 17

_SPLIT_SEED = 20240501  # fixed forever: changing it changes every number in the book
_TEST_FRACTION = 0.2


def _digit_split(y: np.ndarray) -> np.ndarray:
    """Boolean mask of the test split: per class, a fixed 20% chosen by a legacy RandomState.

    ``np.random.RandomState`` is frozen by NumPy's compatibility policy, so the split is the
    same on every machine and every NumPy version.
    """
    rng = np.random.RandomState(_SPLIT_SEED)
    test = np.zeros(len(y), dtype=bool)
    for label in np.unique(y):
        idx = np.flatnonzero(y == label)
        n_test = int(round(_TEST_FRACTION * len(idx)))
        test[idx[rng.permutation(len(idx))[:n_test]]] = True
    return test


def load_digits(split: str = "train", *, raw: bool = False, dequantize: bool = False, seed=0):
    """scikit-learn's 8×8 digits as images ``(N, 1, 8, 8)`` and labels ``(N,)``.

    Parameters
    ----------
    split : {"train", "test", "all"}
        A fixed, stratified split: 1,438 training and 359 test images (80/20 in every class).
    raw : bool
        Return the integer grey levels 0..16 (as float32) instead of values in [0, 1].
    dequantize : bool
        Add uniform noise inside each grey level's bin: ``(level + u) / 17`` with
        ``u ~ U[0, 1)``. A continuous density fitted to dequantised data gives a lower bound
        on the discrete log-likelihood, which :func:`course_lib.metrics.bits_per_pixel` turns
        into bits per pixel of the 17-level digits: the one likelihood scale of the course.
    seed : int
        Seed of the dequantisation noise (ignored otherwise).

    Returns
    -------
    X : np.ndarray, float32, shape (N, 1, 8, 8)
        ``level / 16`` in [0, 1] by default; ``level`` with ``raw=True``; ``(level + u) / 17``
        with ``dequantize=True``.
    y : np.ndarray, int64, shape (N,)
    """
    check_choice(split, "split", ("train", "test", "all"))
    if raw and dequantize:
        raise ValueError("raw and dequantize cannot both be True: choose one representation")
    from sklearn.datasets import load_digits as _sk_load

    bunch = _sk_load()
    levels = bunch.images.astype(np.float32)  # (1797, 8, 8), integers 0..16
    y = bunch.target.astype(np.int64)
    if split != "all":
        test = _digit_split(y)
        keep = test if split == "test" else ~test
        levels, y = levels[keep], y[keep]
    levels = levels[:, None, :, :]
    if raw:
        X = levels
    elif dequantize:
        X = globals()["dequantize"](levels, seed=seed)
    else:
        X = levels / (DIGIT_LEVELS - 1)
    return np.ascontiguousarray(X, dtype=np.float32), y


def dequantize(levels, *, n_levels: int = DIGIT_LEVELS, seed=0) -> np.ndarray:
    """Map integer levels ``0..n_levels-1`` to ``(level + u) / n_levels``, ``u ~ U[0, 1)``."""
    n_levels = check_int(n_levels, "n_levels", minimum=2)
    arr = as_numpy(levels, "levels", dtype=np.float64)
    if np.any(arr != np.round(arr)) or arr.min() < 0 or arr.max() > n_levels - 1:
        raise ValueError(f"levels must be integers in [0, {n_levels - 1}]")
    rng = np.random.default_rng(check_int(seed, "seed", minimum=0))
    return ((arr + rng.random(arr.shape)) / n_levels).astype(np.float32)


# ---------------------------------------------------------------- 2D mixtures


def _sample_mixture(centres: np.ndarray, n: int, std: float, seed) -> np.ndarray:
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(centres), size=n)
    return (centres[which] + std * rng.standard_normal((n, 2))).astype(np.float32)


def ring_of_gaussians(n: int, n_modes: int = 8, radius: float = 1.0, std: float = 0.01, seed=0):
    """``n`` points from ``n_modes`` equal-weight isotropic Gaussians on a circle.

    Returns ``(X, centres)``: ``X`` float32 ``(n, 2)``, ``centres`` float64 ``(n_modes, 2)``.
    The course's default (8 modes, radius 1, std 0.01) is the benchmark of the VEEGAN and
    PacGAN papers.
    """
    n = check_int(n, "n", minimum=1)
    n_modes = check_int(n_modes, "n_modes", minimum=1)
    radius = check_real(radius, "radius", minimum=0.0, strict_min=True)
    std = check_real(std, "std", minimum=0.0, strict_min=True)
    angles = 2 * np.pi * np.arange(n_modes) / n_modes
    centres = radius * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    return _sample_mixture(centres, n, std, seed), centres


def grid_of_gaussians(n: int, side: int = 5, spacing: float = 2.0, std: float = 0.05, seed=0):
    """``n`` points from ``side**2`` equal-weight Gaussians on a square grid centred at 0.

    Returns ``(X, centres)``; the default (5×5, spacing 2, std 0.05) puts the modes at
    ``{-4, -2, 0, 2, 4}²``.
    """
    n = check_int(n, "n", minimum=1)
    side = check_int(side, "side", minimum=1)
    spacing = check_real(spacing, "spacing", minimum=0.0, strict_min=True)
    std = check_real(std, "std", minimum=0.0, strict_min=True)
    coords = (np.arange(side) - (side - 1) / 2) * spacing
    gx, gy = np.meshgrid(coords, coords, indexing="ij")
    centres = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return _sample_mixture(centres, n, std, seed), centres


# ---------------------------------------------------------------- binary images


def _horse():
    from skimage import data

    return ~data.horse()  # skimage's horse is black (False) on white: make the horse 1


def _threshold(name):
    def load():
        from skimage import data, filters

        img = getattr(data, name)()
        if img.ndim == 3:
            from skimage.color import rgb2gray

            img = rgb2gray(img)
        return img > filters.threshold_otsu(img)

    return load


#: Binary images available to :func:`load_binary_image` (all inside scikit-image's wheel).
BINARY_IMAGES = {
    "horse": _horse,
    "camera": _threshold("camera"),
    "coins": _threshold("coins"),
    "text": _threshold("text"),
}


def load_binary_image(name: str = "horse", *, size: int | None = None) -> np.ndarray:
    """A binary image from scikit-image as a ``uint8`` array of 0s and 1s, shape ``(H, W)``.

    ``horse`` is a binary silhouette (328×400, horse = 1); the others are grey photographs
    thresholded at Otsu's level. ``size`` crops the centre to a ``size × size`` square.
    """
    check_choice(name, "name", tuple(BINARY_IMAGES))
    img = np.asarray(BINARY_IMAGES[name](), dtype=np.uint8)
    if size is not None:
        size = check_int(size, "size", minimum=2, maximum=min(img.shape))
        top = (img.shape[0] - size) // 2
        left = (img.shape[1] - size) // 2
        img = img[top : top + size, left : left + size]
    return np.ascontiguousarray(img)


def flip_noise(image, p: float, seed=0):
    """Flip each pixel of a binary image independently with probability ``p``.

    ``image`` holds {0, 1} (or {-1, +1}); the result has the same values and dtype. This is
    the binary symmetric channel used as the noise model for MRF denoising.
    """
    p = check_real(p, "p", minimum=0.0, maximum=1.0)
    arr = np.asarray(image)
    if arr.ndim < 1 or arr.size == 0:
        raise ValueError(f"image must be a non-empty array, got shape {arr.shape}")
    if np.isin(arr, (0, 1)).all():
        zero, one = 0, 1
    else:
        check_binary(arr, "image", values=(-1, 1))
        zero, one = -1, 1
    rng = np.random.default_rng(seed)
    flip = rng.random(arr.shape) < p
    out = arr.copy()
    out[flip] = np.where(arr[flip] == one, zero, one).astype(arr.dtype)
    return out
