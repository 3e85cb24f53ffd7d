"""course_lib.data: the digits split, the 2D mixtures, binary images and noise."""

import hashlib

import numpy as np
import pytest
from sklearn.datasets import load_digits as sk_load_digits

from course_lib import data


def test_digits_shapes_and_range():
    X, y = data.load_digits("train")
    Xt, yt = data.load_digits("test")
    assert X.shape == (1438, 1, 8, 8) and Xt.shape == (359, 1, 8, 8)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0


def test_digits_split_is_a_stratified_partition():
    Xa, ya = data.load_digits("all")
    X, y = data.load_digits("train")
    Xt, yt = data.load_digits("test")
    assert len(X) + len(Xt) == len(Xa) == 1797
    # every image is in exactly one split: compare the multisets of rows
    rows = lambda A: sorted(map(bytes, (A.reshape(len(A), -1) * 16).astype(np.uint8)))  # noqa: E731
    assert rows(np.concatenate([X, Xt])) == rows(Xa)
    # stratified: each class is 20% ± 1 image in the test split
    for c in range(10):
        n_c = (ya == c).sum()
        assert abs((yt == c).sum() - 0.2 * n_c) <= 1


def test_digits_split_never_changes():
    """The split is part of every number in the book: it must not drift.

    The digest below was computed once when the split was defined; if this test fails, the
    split changed and every measured number in the book is stale.
    """
    _, y_all = sk_load_digits(return_X_y=True)
    test_mask = data._digit_split(y_all)
    digest = hashlib.sha256(np.flatnonzero(test_mask).astype(np.int64).tobytes()).hexdigest()
    assert digest[:16] == SPLIT_DIGEST


SPLIT_DIGEST = "c6cb2b0048f81b1c"  # sha256 of the test indices, first 16 hex digits


def test_digits_raw_and_dequantized():
    R, _ = data.load_digits("train", raw=True)
    assert set(np.unique(R)) <= set(range(17))
    D, _ = data.load_digits("train", dequantize=True, seed=1)
    assert 0.0 <= D.min() and D.max() < 1.0
    # dequantised values stay inside their level's bin [level/17, (level+1)/17)
    assert np.all(np.floor(D * 17) == R)
    D2, _ = data.load_digits("train", dequantize=True, seed=1)
    np.testing.assert_array_equal(D, D2)


@pytest.mark.parametrize("kwargs, match", [
    (dict(split="validation"), "split"),
    (dict(raw=True, dequantize=True), "raw and dequantize"),
])
def test_digits_bad_input(kwargs, match):
    with pytest.raises(ValueError, match=match):
        data.load_digits(**kwargs)


def test_dequantize_rejects_non_integer_levels():
    with pytest.raises(ValueError, match="levels"):
        data.dequantize(np.array([0.5, 1.0]))


def test_ring_of_gaussians():
    X, centres = data.ring_of_gaussians(2000, seed=3)
    assert X.shape == (2000, 2) and centres.shape == (8, 2)
    np.testing.assert_allclose(np.linalg.norm(centres, axis=1), 1.0)
    d = np.linalg.norm(X[:, None] - centres[None], axis=2)
    nearest = d.min(axis=1)
    assert np.all(nearest < 6 * 0.01)  # every point within 6 std of a mode
    counts = np.bincount(d.argmin(axis=1), minlength=8)
    assert counts.min() > 180  # roughly balanced (expected 250 each)
    X2, _ = data.ring_of_gaussians(2000, seed=3)
    np.testing.assert_array_equal(X, X2)


def test_grid_of_gaussians():
    X, centres = data.grid_of_gaussians(5000, seed=0)
    assert centres.shape == (25, 2)
    assert set(np.unique(centres)) == {-4.0, -2.0, 0.0, 2.0, 4.0}
    d = np.linalg.norm(X[:, None] - centres[None], axis=2)
    assert np.all(d.min(axis=1) < 6 * 0.05)
    assert abs(X.std(axis=0).mean() - np.sqrt(8 + 0.05**2)) < 0.2  # var of {-4..4} = 8


@pytest.mark.parametrize("fn, kwargs, match", [
    (data.ring_of_gaussians, dict(n=0), "n must be >= 1"),
    (data.ring_of_gaussians, dict(n=10, std=-1.0), "std"),
    (data.grid_of_gaussians, dict(n=10, side=0), "side"),
    (data.grid_of_gaussians, dict(n=10, spacing=float("nan")), "spacing"),
])
def test_mixtures_bad_input(fn, kwargs, match):
    with pytest.raises(ValueError, match=match):
        fn(**kwargs)


def test_binary_images():
    for name in data.BINARY_IMAGES:
        img = data.load_binary_image(name)
        assert img.dtype == np.uint8 and img.ndim == 2
        assert set(np.unique(img)) == {0, 1}
    horse = data.load_binary_image("horse")
    assert horse.shape == (328, 400)
    assert 0.2 < horse.mean() < 0.5  # the horse (1) is smaller than the background (0)
    assert data.load_binary_image("horse", size=64).shape == (64, 64)
    with pytest.raises(ValueError, match="name"):
        data.load_binary_image("zebra")
    with pytest.raises(ValueError, match="size"):
        data.load_binary_image("horse", size=1000)


def test_flip_noise_rate_and_values():
    img = data.load_binary_image("horse")
    noisy = data.flip_noise(img, 0.1, seed=0)
    assert noisy.dtype == img.dtype and set(np.unique(noisy)) <= {0, 1}
    rate = (noisy != img).mean()
    n = img.size
    assert abs(rate - 0.1) < 4 * np.sqrt(0.1 * 0.9 / n)
    spins = 2 * img.astype(np.int8) - 1
    noisy_spins = data.flip_noise(spins, 0.1, seed=0)
    np.testing.assert_array_equal(noisy_spins, 2 * noisy.astype(np.int8) - 1)
    np.testing.assert_array_equal(data.flip_noise(img, 0.0), img)
    np.testing.assert_array_equal(data.flip_noise(img, 1.0), 1 - img)


@pytest.mark.parametrize("image, p, match", [
    (np.array([[0, 2]]), 0.1, "image"),
    (np.array([[0, 1]]), 1.5, "p must be <= 1"),
    (np.array([[0, 1]]), -0.1, "p must be >= 0"),
    (np.zeros((0,)), 0.1, "image"),
])
def test_flip_noise_bad_input(image, p, match):
    with pytest.raises(ValueError, match=match):
        data.flip_noise(image, p)


def test_dequantized_to_images_maps_bin_centres_to_levels():
    from course_lib.data import dequantized_to_images

    levels = np.arange(17, dtype=np.float64)
    centres = (levels + 0.5) / 17
    out = dequantized_to_images(centres.reshape(1, 1, 1, 17))
    np.testing.assert_allclose(out.ravel(), levels / 16, atol=1e-6)
    rows = dequantized_to_images(np.full((3, 64), 2.0))  # beyond [0, 1]: clipped
    assert rows.shape == (3, 1, 8, 8) and rows.max() == 1.0
    with pytest.raises(ValueError, match="Y"):
        dequantized_to_images(np.zeros((3, 5)))
