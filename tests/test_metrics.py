"""Tests of course_lib.metrics, each against an independent computation (scipy, brute force,
closed forms) or a property the metric must have."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
import scipy.linalg
import torch
from scipy.stats import multivariate_normal

from course_lib import metrics
from course_lib.data import load_digits, ring_of_gaussians


def random_spd(d, rng, rank=None):
    """A random symmetric positive (semi-)definite matrix of the given rank."""
    rank = d if rank is None else rank
    A = rng.standard_normal((d, rank))
    S = A @ A.T
    return S + 0.1 * np.eye(d) if rank == d else S


# ---------------------------------------------------------------- Gaussian log-likelihood


def test_gaussian_log_likelihood_matches_scipy():
    rng = np.random.default_rng(0)
    d = 5
    mean, cov = rng.standard_normal(d), random_spd(d, rng)
    X = rng.standard_normal((20, d))
    got = metrics.gaussian_log_likelihood(X, mean, cov)
    expected = multivariate_normal(mean, cov).logpdf(X)
    assert got.shape == (20,)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


def test_gaussian_log_likelihood_flattens_images_and_accepts_tensors():
    rng = np.random.default_rng(1)
    X = rng.random((7, 1, 2, 2))
    mean, cov = rng.random(4), random_spd(4, rng)
    expected = multivariate_normal(mean, cov).logpdf(X.reshape(7, 4))
    got = metrics.gaussian_log_likelihood(torch.from_numpy(X), torch.from_numpy(mean), cov)
    np.testing.assert_allclose(got, expected, rtol=1e-10)


def test_gaussian_log_likelihood_singular_cov_raises_naming_cov():
    cov = np.diag([1.0, 0.0])  # a zero variance: no jitter may be added silently
    with pytest.raises(ValueError, match="cov"):
        metrics.gaussian_log_likelihood(np.zeros((3, 2)), np.zeros(2), cov)


# ---------------------------------------------------------------- bits per pixel


def test_bits_per_pixel_uniform_density_is_log2_17():
    # Uniform density on [0,1]^64: log p = 0 for every sample.
    assert metrics.bits_per_pixel(np.zeros(10), 64) == pytest.approx(math.log2(17), abs=1e-12)
    assert metrics.bits_per_pixel(0.0, 64) == pytest.approx(4.0874628412503395, abs=1e-12)


def test_bits_per_pixel_gaussian_by_hand():
    # D independent pixels with density N(y | 0.5, s^2), evaluated at their mean:
    # log p = D * (-log s - 0.5 log 2 pi), so bpp = log2(s * sqrt(2 pi)) + log2(17).
    s, D = 0.05, 64
    ll = D * (-math.log(s) - 0.5 * math.log(2 * math.pi))
    expected = math.log2(s * math.sqrt(2 * math.pi)) + math.log2(17)
    assert metrics.bits_per_pixel(ll, D) == pytest.approx(expected, rel=1e-12)
    # An array is averaged; other numbers of levels follow the same formula.
    assert metrics.bits_per_pixel([ll - 3.0, ll + 3.0], D) == pytest.approx(expected, rel=1e-12)
    assert metrics.bits_per_pixel(ll, D, n_levels=256) == pytest.approx(
        expected - math.log2(17) + 8.0, rel=1e-12
    )


def test_bits_per_pixel_is_an_upper_bound_on_discrete_bits():
    # A 1-pixel model with 3 levels, density p(y) = 2y on [0,1]. Exact discrete probabilities
    # P(k) = integral over [k/3, (k+1)/3] of 2y dy = ((k+1)^2 - k^2)/9. The dequantised bound
    # must be >= the exact bits of the discrete data (Jensen). Its expected value, by hand:
    # E_u log p((k+u)/3) = log(2/3) + (k+1) log(k+1) - k log k - 1.
    rng = np.random.default_rng(0)
    k = rng.integers(0, 3, size=200_000)
    y = (k + rng.random(k.shape)) / 3
    bound = metrics.bits_per_pixel(np.log(2 * y), 1, n_levels=3)
    exact = np.mean(-np.log2(((k + 1) ** 2 - k**2) / 9))
    xlogx = np.where(k > 0, k * np.log(np.maximum(k, 1)), 0.0)
    e_log_p = np.log(2 / 3) + (k + 1) * np.log(k + 1) - xlogx - 1
    expected = np.mean(-e_log_p) / math.log(2) + math.log2(3)
    assert exact < bound
    assert bound == pytest.approx(expected, abs=0.01)


# ---------------------------------------------------------------- Fréchet distance


def frechet_reference(mu1, s1, mu2, s2):
    """The textbook formula with scipy's general matrix square root."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(covmean)))


def test_frechet_distance_matches_sqrtm_reference():
    rng = np.random.default_rng(0)
    d = 6
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(d, rng), random_spd(d, rng)
    expected = frechet_reference(mu1, s1, mu2, s2)
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-8)


def test_frechet_distance_1d_closed_form():
    # In 1D: (m1 - m2)^2 + (sd1 - sd2)^2.
    m1, sd1, m2, sd2 = 0.3, 2.0, -1.2, 0.5
    got = metrics.frechet_distance([m1], [[sd1**2]], [m2], [[sd2**2]])
    assert got == pytest.approx((m1 - m2) ** 2 + (sd1 - sd2) ** 2, rel=1e-12)


def test_frechet_distance_rank_deficient_covariances():
    rng = np.random.default_rng(3)
    d = 12
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    s1, s2 = random_spd(d, rng, rank=3), random_spd(d, rng, rank=5)
    got = metrics.frechet_distance(mu1, s1, mu2, s2)
    assert np.isfinite(got) and got >= 0
    assert got == pytest.approx(frechet_reference(mu1, s1, mu2, s2), rel=1e-5)
    # Covariance estimated from fewer samples than dimensions (the FID situation).
    a, b = rng.standard_normal((5, 30)), rng.standard_normal((8, 30)) + 0.5
    c1, c2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    got = metrics.frechet_distance(a.mean(0), c1, b.mean(0), c2)
    assert np.isfinite(got) and got >= 0
    assert got == pytest.approx(frechet_reference(a.mean(0), c1, b.mean(0), c2), rel=1e-4)


@pytest.mark.parametrize("rank", [None, 2])
def test_frechet_distance_identical_is_zero_and_symmetric(rank):
    rng = np.random.default_rng(4)
    d = 8
    mu, s = rng.standard_normal(d), random_spd(d, rng, rank=rank)
    assert metrics.frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-6)
    mu2, s2 = rng.standard_normal(d), random_spd(d, rng, rank=rank)
    assert metrics.frechet_distance(mu, s, mu2, s2) == pytest.approx(
        metrics.frechet_distance(mu2, s2, mu, s), rel=1e-8
    )


# ---------------------------------------------------------------- KID


def mmd2_unbiased_loops(x, y):
    """Unbiased MMD^2 with the cubic polynomial kernel, by explicit loops."""
    d = x.shape[1]

    def k(a, b):
        return (np.dot(a, b) / d + 1.0) ** 3

    m, n = len(x), len(y)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return xx + yy - 2 * xy


def test_kid_matches_loop_implementation():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((7, 3)), rng.standard_normal((7, 3)) + 0.7
    # subset_size = all rows: every subset is a permutation of the full set -> same value.
    mean, std = metrics.kid(x, y, n_subsets=3, subset_size=7)
    assert mean == pytest.approx(mmd2_unbiased_loops(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-10)
    # With smaller subsets: the mean of the loop implementation over the same subsets.
    mean, _ = metrics.kid(x, y, n_subsets=5, subset_size=4, seed=3)
    rng = np.random.default_rng(3)  # kid draws subsets with default_rng(seed), real then fake
    values = []
    for _ in range(5):
        xs = x[rng.choice(7, 4, replace=False)]
        ys = y[rng.choice(7, 4, replace=False)]
        values.append(mmd2_unbiased_loops(xs, ys))
    assert mean == pytest.approx(np.mean(values), rel=1e-10)


def test_kid_large_sets_path_gives_the_same_value(monkeypatch):
    rng = np.random.default_rng(2)
    x, y = rng.standard_normal((40, 5)), rng.standard_normal((30, 5)) + 0.3
    expected = metrics.kid(x, y, n_subsets=7, subset_size=10, seed=1)
    monkeypatch.setattr(metrics.formulas, "_KID_PRECOMPUTE_MAX", 0)  # kernels per subset instead
    got = metrics.kid(x, y, n_subsets=7, subset_size=10, seed=1)
    assert got == pytest.approx(expected, rel=1e-10)


def test_kid_is_unbiased_for_the_same_distribution():
    rng = np.random.default_rng(1)
    n_pairs, n, d = 400, 20, 4
    kids, biased = [], []
    for _ in range(n_pairs):
        x, y = rng.standard_normal((n, d)), rng.standard_normal((n, d))
        kids.append(metrics.kid(x, y, n_subsets=1, subset_size=n)[0])
        # The biased (V-statistic) estimate keeps the diagonal terms k(x_i, x_i).
        kxx, kyy, kxy = ((a @ b.T / d + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    kids, biased = np.array(kids), np.array(biased)
    se = kids.std(ddof=1) / math.sqrt(n_pairs)
    assert abs(kids.mean()) < 3 * se
    # ... whereas the biased estimator is clearly positive: this test can tell them apart.
    assert biased.mean() > 10 * biased.std(ddof=1) / math.sqrt(n_pairs)
    # And a real difference between the distributions is detected.
    x, y = rng.standard_normal((200, d)), rng.standard_normal((200, d)) + 0.5
    mean, std = metrics.kid(x, y, n_subsets=20, subset_size=100)
    assert mean > 5 * std > 0


# ---------------------------------------------------------------- precision / recall


def precision_recall_loops(real, fake, k):
    def radii(points):
        out = []
        for i in range(len(points)):
            dists = sorted(
                np.linalg.norm(points[i] - points[j]) for j in range(len(points)) if j != i
            )
            out.append(dists[k - 1])
        return out

    def coverage(queries, centres, r):
        hits = 0
        for q in queries:
            hits += any(np.linalg.norm(q - c) <= rc for c, rc in zip(centres, r))
        return hits / len(queries)

    return coverage(fake, real, radii(real)), coverage(real, fake, radii(fake))


@pytest.mark.parametrize("k", [1, 3])
def test_precision_recall_matches_loops(k):
    rng = np.random.default_rng(k)
    real = rng.standard_normal((25, 3))
    fake = 1.3 * rng.standard_normal((20, 3)) + 0.4
    got = metrics.precision_recall(real, fake, k=k)
    expected = precision_recall_loops(real, fake, k)
    assert got == pytest.approx(expected, abs=1e-12)
    assert 0 < got[0] < 1 and 0 < got[1] < 1  # a case where the answer is not trivial


def test_precision_recall_extremes():
    rng = np.random.default_rng(0)
    real = rng.standard_normal((30, 4))
    assert metrics.precision_recall(real, real.copy()) == (1.0, 1.0)
    assert metrics.precision_recall(real, real + 100.0) == (0.0, 0.0)


# ---------------------------------------------------------------- mode coverage


def test_mode_coverage_constructed_samples():
    _, centres = ring_of_gaussians(1)
    std = 0.01
    # All samples on mode 0.
    out = metrics.mode_coverage(np.repeat(centres[:1], 50, axis=0), centres, std)
    assert out["modes"] == 1 and out["high_quality"] == 1.0
    assert out["counts"].tolist() == [50] + [0] * 7
    # The ring's own samples hit all 8 modes.
    X, centres = ring_of_gaussians(2500, seed=1)
    out = metrics.mode_coverage(X, centres, std)
    assert out["modes"] == 8 and out["counts"].sum() == round(out["high_quality"] * 2500)
    # 10 samples just inside 3 std of modes 0..4, 5 just outside, 5 far away.
    inside = centres[[0, 1, 2, 3, 4] * 2] + [2.9 * std, 0.0]
    outside = centres[[5, 6, 7, 5, 6]] + [0.0, 3.1 * std]
    far = np.full((5, 2), 10.0)
    out = metrics.mode_coverage(np.concatenate([inside, outside, far]), centres, std)
    assert out["high_quality"] == pytest.approx(10 / 20, abs=1e-15)
    assert out["modes"] == 5
    assert out["counts"].tolist() == [2, 2, 2, 2, 2, 0, 0, 0]
    # n_std changes the radius: with 4 std the "outside" ones count too.
    assert metrics.mode_coverage(outside, centres, std, n_std=4.0)["modes"] == 3


# ---------------------------------------------------------------- memorisation (pixel space)


def test_nearest_neighbour_distance_brute_force():
    rng = np.random.default_rng(0)
    s, r = rng.random((6, 1, 2, 2)), rng.random((9, 1, 2, 2))
    expected = [min(np.linalg.norm(a.ravel() - b.ravel()) for b in r) for a in s]
    np.testing.assert_allclose(metrics.nearest_neighbour_distance(s, r), expected, rtol=1e-12)


def test_memorisation_ratio():
    Xtr, _ = load_digits("train")
    Xte, _ = load_digits("test")
    assert metrics.memorisation_ratio(Xte, Xtr, Xte) == 1.0
    copies = Xtr[np.random.default_rng(0).choice(len(Xtr), 300)]
    assert metrics.memorisation_ratio(copies, Xtr, Xte) < 0.05
    # Copies with a little noise are still far closer to the training set than test images.
    noisy = np.clip(copies + 0.02 * np.random.default_rng(1).standard_normal(copies.shape), 0, 1)
    assert metrics.memorisation_ratio(noisy, Xtr, Xte) < 0.5


# ---------------------------------------------------------------- the digit classifier


SHIPPED_ASSETS = metrics.features._ASSETS


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory, device):
    """A fresh cache folder for this module, and no shipped weights: the classifier is trained
    once, here, as on a machine without ``course_lib/assets``."""
    path = tmp_path_factory.mktemp("course_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_CACHE_DIR", str(path))
        mp.setattr(metrics.features, "_ASSETS", tmp_path_factory.mktemp("no_assets"))
        metrics.features._CLASSIFIER_MEMO.clear()
        metrics.digit_classifier(device)
        yield path
    metrics.features._CLASSIFIER_MEMO.clear()


def test_classifier_accuracy(cache_dir):
    assert metrics.classifier_accuracy("test") >= 0.97
    assert metrics.classifier_accuracy("train") >= 0.97


def test_classifier_cached_and_deterministic(cache_dir, tmp_path, monkeypatch, device):
    files = list(cache_dir.glob("digit_cnn_*.pt"))
    assert len(files) == 1 and not list(cache_dir.glob("*.tmp"))
    mtime = os.stat(files[0]).st_mtime_ns
    first = metrics.digit_classifier(device)

    # Second call with the memo cleared: loaded from disk, not retrained.
    metrics.features._CLASSIFIER_MEMO.clear()

    def no_training():
        raise AssertionError("the classifier was retrained instead of loaded from the cache")

    with monkeypatch.context() as mp:
        mp.setattr(metrics.features, "_train_classifier", no_training)
        loaded = metrics.digit_classifier(device)
    assert os.stat(files[0]).st_mtime_ns == mtime
    assert loaded is not first

    # Training again from scratch in another folder gives bit-identical weights.
    metrics.features._CLASSIFIER_MEMO.clear()
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    retrained = metrics.digit_classifier(device)
    assert len(list(tmp_path.glob("digit_cnn_*.pt"))) == 1
    a, b = first.state_dict(), retrained.state_dict()
    assert a.keys() == b.keys()
    for name in a:
        assert torch.equal(a[name], b[name]), name
    for name, value in loaded.state_dict().items():
        assert torch.equal(a[name], value), name
    metrics.features._CLASSIFIER_MEMO.clear()


def test_digit_features_deterministic(cache_dir):
    X, _ = load_digits("test")
    f1 = metrics.digit_features(X[:50])
    f2 = metrics.digit_features(torch.from_numpy(X[:50]))
    assert f1.shape == (50, metrics.DigitCNN.n_features)
    np.testing.assert_array_equal(f1, f2)
    # Batch composition does not change a row's features (no batch statistics).
    np.testing.assert_allclose(metrics.digit_features(X[:10]), f1[:10], rtol=1e-5, atol=1e-6)


# ---------------------------------------------------------------- floors: real vs real


@pytest.fixture(scope="module")
def digit_sets(cache_dir):
    Xtr, _ = load_digits("train")
    Xte, _ = load_digits("test")
    rng = np.random.default_rng(0)
    flat = Xte.reshape(len(Xte), -1)
    shuffled = flat[:, rng.permutation(64)].reshape(Xte.shape)  # same pixels, no digit shape
    noise = rng.random(Xte.shape).astype(np.float32)
    sets = {"train": Xtr, "test": Xte, "shuffled": shuffled, "noise": noise}
    return {name: metrics.digit_features(X) for name, X in sets.items()}


def test_fid_floor(digit_sets, cache_dir):
    f = digit_sets
    floor = metrics.fid(f["test"], f["train"])
    # Measured 2.78 on CPU (torch 2.13); the bound 4.0 leaves room for other platforms.
    # Crude models measured: pixel-shuffled 529, uniform noise 310.
    assert 0 < floor < 4.0
    assert metrics.fid(f["test"], f["shuffled"]) > 30 * floor
    assert metrics.fid(f["test"], f["noise"]) > 30 * floor
    # Images and precomputed features give the same number.
    Xte, _ = load_digits("test")
    Xtr, _ = load_digits("train")
    assert metrics.fid(Xte, Xtr) == pytest.approx(floor, rel=1e-9)


def test_kid_floor(digit_sets):
    f = digit_sets
    mean, std = metrics.kid(f["test"], f["train"])
    # Measured -4.20 (+/- 3.31 over subsets) on CPU; unbiased, so it can be negative. The bound
    # is |measured| plus about one subset standard deviation. Crude models: 658 and 423.
    assert abs(mean) < 8.0
    crude = min(metrics.kid(f["test"], f["shuffled"])[0], metrics.kid(f["test"], f["noise"])[0])
    assert crude > 30 * 8.0


def test_precision_recall_floor(digit_sets):
    f = digit_sets
    precision, recall = metrics.precision_recall(f["test"], f["train"])
    # Measured (0.889, 0.889) for test vs train on CPU; (0.40, 0.003) for pixel-shuffled.
    assert precision > 0.8 and recall > 0.8
    precision, recall = metrics.precision_recall(f["test"], f["shuffled"])
    assert precision < 0.6 and recall < 0.1


# ---------------------------------------------------------------- bad input


_X = np.random.default_rng(0).standard_normal((10, 3))
_NAN = _X.copy()
_NAN[0, 0] = np.nan
_COV = np.eye(3)
_IMG = np.zeros((4, 1, 8, 8), dtype=np.float32)

BAD_INPUT = [
    ("ll_nan", lambda: metrics.gaussian_log_likelihood(_NAN, np.zeros(3), _COV), "X"),
    (
        "ll_rank",
        lambda: metrics.gaussian_log_likelihood(np.zeros((2, 3, 4)), np.zeros(12), _COV),
        "X",
    ),
    ("ll_mean", lambda: metrics.gaussian_log_likelihood(_X, np.zeros(2), _COV), "mean"),
    ("ll_cov_shape", lambda: metrics.gaussian_log_likelihood(_X, np.zeros(3), np.eye(2)), "cov"),
    (
        "ll_cov_asym",
        lambda: metrics.gaussian_log_likelihood(_X, np.zeros(3), np.triu(np.ones((3, 3)))),
        "cov",
    ),
    ("ll_cov_neg", lambda: metrics.gaussian_log_likelihood(_X, np.zeros(3), -_COV), "cov"),
    ("bpp_nan", lambda: metrics.bits_per_pixel([1.0, np.nan], 64), "log_likelihood"),
    ("bpp_pixels", lambda: metrics.bits_per_pixel(0.0, 0), "n_pixels"),
    ("bpp_levels", lambda: metrics.bits_per_pixel(0.0, 64, n_levels=1), "n_levels"),
    ("fd_mu1", lambda: metrics.frechet_distance([np.inf, 0, 0], _COV, np.zeros(3), _COV), "mu1"),
    ("fd_mu2", lambda: metrics.frechet_distance(np.zeros(3), _COV, np.zeros(2), _COV), "mu2"),
    (
        "fd_sigma1",
        lambda: metrics.frechet_distance(np.zeros(3), np.eye(2), np.zeros(3), _COV),
        "sigma1",
    ),
    (
        "fd_sigma2_neg",
        lambda: metrics.frechet_distance(np.zeros(3), _COV, np.zeros(3), -_COV),
        "sigma2",
    ),
    (
        "fd_sigma2_asym",
        lambda: metrics.frechet_distance(np.zeros(3), _COV, np.zeros(3), np.triu(np.ones((3, 3)))),
        "sigma2",
    ),
    ("feat_shape", lambda: metrics.digit_features(np.zeros((4, 1, 7, 7))), "X"),
    ("feat_range", lambda: metrics.digit_features(_IMG + 2.0), "X"),
    ("feat_rank", lambda: metrics.digit_features(np.zeros((4, 64))), "X"),
    ("acc_split", lambda: metrics.classifier_accuracy("validation"), "split"),
    ("fid_rank", lambda: metrics.fid(np.zeros((4, 8, 8)), _X), "real"),
    ("fid_dims", lambda: metrics.fid(_X, np.zeros((10, 4))), "fake"),
    ("fid_rows", lambda: metrics.fid(_X, _X[:1]), "fake"),
    ("fid_nan", lambda: metrics.fid(_X, _NAN), "fake"),
    ("kid_subsets", lambda: metrics.kid(_X, _X, n_subsets=0), "n_subsets"),
    ("kid_size_big", lambda: metrics.kid(_X, _X, subset_size=11), "subset_size"),
    ("kid_size_small", lambda: metrics.kid(_X, _X, subset_size=1), "subset_size"),
    ("kid_nan", lambda: metrics.kid(_NAN, _X), "real"),
    ("pr_k0", lambda: metrics.precision_recall(_X, _X, k=0), "k"),
    ("pr_k_big", lambda: metrics.precision_recall(_X, _X[:3], k=3), "k"),
    ("pr_dims", lambda: metrics.precision_recall(_X, np.zeros((10, 2))), "fake"),
    ("pr_nan", lambda: metrics.precision_recall(_NAN, _X), "real"),
    ("mc_std", lambda: metrics.mode_coverage(_X[:, :2], np.zeros((8, 2)), 0.0), "std"),
    (
        "mc_nstd",
        lambda: metrics.mode_coverage(_X[:, :2], np.zeros((8, 2)), 0.1, n_std=-1.0),
        "n_std",
    ),
    ("mc_dims", lambda: metrics.mode_coverage(_X, np.zeros((8, 2)), 0.1), "centres"),
    ("mc_nan", lambda: metrics.mode_coverage(_NAN, np.zeros((8, 3)), 0.1), "samples"),
    ("nn_dims", lambda: metrics.nearest_neighbour_distance(_X, np.zeros((5, 2))), "reference"),
    ("nn_nan", lambda: metrics.nearest_neighbour_distance(_NAN, _X), "samples"),
    ("nn_rank", lambda: metrics.nearest_neighbour_distance(_X[0], _X), "samples"),
    ("mem_copy", lambda: metrics.memorisation_ratio(_X, _X, _X), "test"),
    ("mem_dims", lambda: metrics.memorisation_ratio(np.zeros((5, 2)), _X, _X + 1), "samples"),
    ("mem_nan", lambda: metrics.memorisation_ratio(_X, _NAN, _X), "train"),
]


@pytest.mark.parametrize("call, name", [c[1:] for c in BAD_INPUT], ids=[c[0] for c in BAD_INPUT])
def test_bad_input_raises_naming_the_argument(call, name):
    with pytest.raises(ValueError, match=rf"\b{name}\b"):
        call()


def test_fid_of_features_is_frechet_of_fitted_gaussians():
    rng = np.random.default_rng(5)
    a, b = rng.normal(1.0, 2.0, (40, 1)), rng.normal(-0.5, 0.7, (30, 1))
    # One feature: (mean difference)^2 + (difference of unbiased standard deviations)^2.
    expected = (a.mean() - b.mean()) ** 2 + (a.std(ddof=1) - b.std(ddof=1)) ** 2
    assert metrics.fid(a, b) == pytest.approx(expected, rel=1e-10)


# ---------------------------------------------------------------- the shipped classifier


def test_the_shipped_classifier_is_what_training_gives(cache_dir, device):
    """The weights in course_lib/assets are those tools/ship_classifier.py gets from
    _train_classifier(): on the machine that made them, bit for bit; on another CPU (other
    float kernels) the same network up to rounding, which after 20 epochs shows as a few
    different labels at most."""
    shipped_path = SHIPPED_ASSETS / metrics.features._classifier_file_name()
    assert shipped_path.exists(), f"{shipped_path} is missing: run tools/ship_classifier.py"
    shipped = metrics.DigitCNN()
    shipped.load_state_dict(torch.load(shipped_path, weights_only=True))
    assert metrics.features._classifier_problem(shipped) is None
    trained = metrics.digit_classifier(device)  # trained in this module's fixture
    X, y = load_digits("all")
    with torch.no_grad():
        a = shipped.eval()(torch.from_numpy(X)).argmax(1).numpy()
        b = trained(torch.from_numpy(X).to(device)).argmax(1).cpu().numpy()
    assert (a == b).mean() >= 0.98
    assert abs((a == y).mean() - (b == y).mean()) <= 0.01
    info = json.loads((SHIPPED_ASSETS / "digit_cnn.json").read_text())
    assert info["sha256"] == metrics.features._file_digest(shipped_path)
    assert info["config"] == metrics.features._CLASSIFIER_CONFIG


@pytest.fixture
def shipped_only(tmp_path, monkeypatch):
    """An empty cache folder, a copy of the shipped weights, and training forbidden."""
    assets = tmp_path / "assets"
    assets.mkdir()
    for f in SHIPPED_ASSETS.glob("digit_cnn_*"):
        (assets / f.name).write_bytes(f.read_bytes())
    cache = tmp_path / "cache"
    monkeypatch.setenv("COURSE_CACHE_DIR", str(cache))
    monkeypatch.setattr(metrics.features, "_ASSETS", assets)
    trained = []
    monkeypatch.setattr(metrics.features, "_train_classifier", lambda: trained.append(True) or metrics.DigitCNN())
    metrics.features._CLASSIFIER_MEMO.clear()
    yield assets / metrics.features._classifier_file_name(), cache, trained
    metrics.features._CLASSIFIER_MEMO.clear()


def test_the_shipped_classifier_is_used_without_training(shipped_only, recwarn, device):
    path, cache, trained = shipped_only
    model = metrics.digit_classifier(device)
    assert trained == [] and not list(cache.glob("digit_cnn_*"))
    assert not [w for w in recwarn if "classifier" in str(w.message)]
    expected = torch.load(path, weights_only=True)
    assert all(torch.equal(v, expected[k]) for k, v in model.state_dict().items())


def test_a_damaged_shipped_classifier_is_reported_and_not_used(shipped_only, device):
    path, cache, trained = shipped_only
    path.write_bytes(_flip_byte(path.read_bytes()))
    # falls back to training (here a fake that returns an untrained network, which fails the
    # sanity check: the error says so instead of scoring with it)
    with pytest.warns(UserWarning, match="shipped digit classifier .* not usable.*checksum"):
        with pytest.raises(RuntimeError, match="sanity check after training"):
            metrics.digit_classifier(device)
    assert trained == [True]


# ---------------------------------------------------------------- the cached classifier's integrity


@pytest.fixture
def fresh_cache(cache_dir, tmp_path, monkeypatch):
    """A cache folder holding a copy of the good classifier; retraining returns that copy."""
    good_path = next(cache_dir.glob("digit_cnn_*.pt"))
    for f in cache_dir.glob("digit_cnn_*"):
        (tmp_path / f.name).write_bytes(f.read_bytes())
    good = metrics.DigitCNN()
    good.load_state_dict(torch.load(good_path, weights_only=True))
    trained = []

    def fake_training():
        trained.append(True)
        model = metrics.DigitCNN()
        model.load_state_dict(good.state_dict())
        return model

    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(metrics.features, "_ASSETS", tmp_path / "no_assets")
    monkeypatch.setattr(metrics.features, "_train_classifier", fake_training)
    metrics.features._CLASSIFIER_MEMO.clear()
    yield tmp_path / good_path.name, trained
    metrics.features._CLASSIFIER_MEMO.clear()


def _nan_weights(path):
    state = torch.load(path, weights_only=True)
    state["fc1.weight"][0, 0] = float("nan")
    return state


def _other_architecture(path):
    return {"weight": torch.zeros(3, 3)}


def _flip_byte(data: bytes) -> bytes:
    i = len(data) // 2
    return data[:i] + bytes([data[i] ^ 0x01]) + data[i + 1 :]


@pytest.mark.parametrize(
    "damage",
    ["truncated", "flipped byte", "missing checksum", "nan weights", "other architecture",
     "useless network"],
)
def test_a_damaged_classifier_cache_is_detected_and_rebuilt(fresh_cache, damage, device):
    path, trained = fresh_cache
    digest = path.with_name(path.name + ".sha256")
    if damage == "truncated":
        path.write_bytes(path.read_bytes()[:1000])
    elif damage == "flipped byte":
        path.write_bytes(_flip_byte(path.read_bytes()))
    elif damage == "missing checksum":
        digest.unlink()
    else:  # a well-formed file with a valid checksum, holding a broken network
        if damage == "nan weights":
            state = _nan_weights(path)
        elif damage == "other architecture":
            state = _other_architecture(path)
        else:
            state = {k: torch.zeros_like(v) for k, v in torch.load(path, weights_only=True).items()}
        torch.save(state, path)
        digest.write_text(metrics.features._file_digest(path))
    with pytest.warns(UserWarning, match="not usable.*retraining"):
        model = metrics.digit_classifier(device)
    assert trained == [True]
    assert metrics.features._classifier_problem(model) is None
    assert digest.read_text().strip() == metrics.features._file_digest(path)  # rewritten, and intact
    # and the repaired cache is then used without retraining
    metrics.features._CLASSIFIER_MEMO.clear()
    metrics.digit_classifier(device)
    assert trained == [True]


def test_an_intact_cache_is_loaded_without_warning(fresh_cache, recwarn, device):
    path, trained = fresh_cache
    metrics.digit_classifier(device)
    assert trained == [] and not [w for w in recwarn if "classifier" in str(w.message)]


def test_classifier_lives_in_the_course_cache_folder(tmp_path, monkeypatch):
    # the folder itself (env, repository, home, temporary fallback) is tested in
    # tests/test_robustness.py; here: the classifier's file goes where cache_dir() says
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path))
    assert metrics.features._classifier_path().parent == tmp_path


# ---------------------------------------------------------------- the evaluation protocol


@pytest.fixture(scope="module")
def floor(cache_dir, device):
    return metrics.evaluate_floor(n_draws=4, device=device)


def _gaussian_sampler():
    Xtr, _ = load_digits("train")
    flat = Xtr.reshape(len(Xtr), -1)
    mean, cov = flat.mean(0), np.cov(flat, rowvar=False)

    def sample(n, seed):
        rng = np.random.default_rng(seed)
        x = rng.multivariate_normal(mean, cov, n)
        return np.clip(x, 0, 1).reshape(n, 1, 8, 8).astype(np.float32)

    return sample


def test_protocol_floor_is_real_vs_real(floor):
    assert floor.n_draws == 4 and floor.size == metrics.EVAL_SIZE
    assert set(floor.keys()) == set(metrics.EVAL_METRICS)
    assert all(len(v) == 4 for v in floor.draws.values())
    fid_mean, fid_std = floor["fid"]
    # Measured 5.6 ± 0.8 (10 draws of 359, CPU): larger than the 2.8 of the full splits,
    # because FID is biased upwards at small sizes.
    assert 2.0 < fid_mean < 10.0 and fid_std > 0
    assert abs(floor.mean("kid")) < 3 * floor.std("kid") + 3.0  # unbiased: 0 within noise
    assert floor.mean("classes") == 10
    assert floor.mean("memorisation") == 0.0  # training images are at distance 0 from train
    assert floor.mean("precision") > 0.8 and floor.mean("recall") > 0.8


def test_protocol_separates_a_gaussian_from_the_floor_by_more_than_the_spread(floor, device):
    gauss = metrics.evaluate(_gaussian_sampler(), name="Gaussian", n_draws=4, device=device)
    gap = gauss.mean("fid") - floor.mean("fid")
    assert gap > 5 * (gauss.std("fid") + floor.std("fid"))
    assert gauss.mean("memorisation") > 1.0  # samples unlike any training image
    table = metrics.comparison_table({"floor": floor, "Gaussian": gauss})
    text = str(table)
    assert text.count("\n") == 3 and "Gaussian" in text and "±" in text
    assert table._repr_html_().count("<tr>") == 3
    assert gauss.format("fid") == f"{gauss.mean('fid'):.1f} ± {gauss.std('fid'):.1f}"


def test_comparison_table_in_groups_fits_a_column_and_keeps_every_cell():
    """groups=EVAL_GROUPS shows the seven scores as two tables (four, then three), each with
    the row labels; the cells are the same "mean ± std" strings as in the one wide table."""
    rng = np.random.default_rng(0)
    evs = {name: metrics.Evaluation({m: rng.random(3) for m in metrics.EVAL_METRICS}, name=name)
           for name in ("floor", "model")}
    one = metrics.comparison_table(evs, title="T")
    two = metrics.comparison_table(evs, title="T", groups=metrics.EVAL_GROUPS)
    assert one._repr_html_().count("<table>") == 1
    html = two._repr_html_()
    assert html.count("<table>") == 2 and html.count("<caption>T</caption>") == 1
    first, second = html.split("</table>")[:2]
    assert "<th>fid</th>" in first and "<th>recall</th>" in first and "classes" not in first
    assert "<th>memorisation</th>" in second and "fid" not in second
    for name, ev in evs.items():
        for m in metrics.EVAL_METRICS:
            assert f"<td>{ev.format(m)}</td>" in html
        assert first.count(f"<th>{name}</th>") == second.count(f"<th>{name}</th>") == 1
    text = str(two)
    assert text.startswith("T\n\n|  | fid | kid | precision | recall |")
    assert text.count("\n\n") == 2 and "|  | classes | diversity | memorisation |" in text
    # An Evaluation displays as its one-row table.
    assert evs["model"]._repr_html_().count("<tr>") == 2
    for bad in ([["fid"]], [["fid", "kid"], []], [list(metrics.EVAL_METRICS), ["fid"]],
                [[*metrics.EVAL_METRICS[:-1], "nope"]]):
        with pytest.raises(ValueError, match="groups must split the columns"):
            metrics.comparison_table(evs, groups=bad)


def test_protocol_accepts_arrays_cut_into_disjoint_draws(floor, device):
    X, _ = load_digits("train")
    a = metrics.evaluate(X, n_draws=2, size=300, device=device)
    b = metrics.evaluate(lambda n, s: X[s * 300 : (s + 1) * 300], n_draws=2, size=300,
                         device=device)
    for k in metrics.EVAL_METRICS:
        np.testing.assert_allclose(a.draws[k], b.draws[k])


def test_protocol_refuses_what_would_make_its_numbers_lie(cache_dir, device):
    X, _ = load_digits("train")
    with pytest.raises(ValueError, match="identical images for two seeds"):
        metrics.evaluate(lambda n, s: X[:n], n_draws=2, device=device)
    with pytest.raises(ValueError, match=r"must be <= 1"):
        metrics.evaluate(lambda n, s: X[:n] * 2 + s, n_draws=2, device=device)
    with pytest.raises(ValueError, match="expected 359"):
        metrics.evaluate(lambda n, s: X[s : s + 10], n_draws=2, device=device)
    with pytest.raises(ValueError, match="at least n_draws"):
        metrics.evaluate(X[:100], device=device)
    with pytest.raises(ValueError, match="n_draws"):
        metrics.evaluate(X, n_draws=1, device=device)


def test_class_accuracy(cache_dir):
    X, y = load_digits("test")
    assert metrics.class_accuracy(X, y) > 0.95
    assert metrics.class_accuracy(X, (y + 1) % 10) < 0.05
    with pytest.raises(ValueError, match="labels"):
        metrics.class_accuracy(X, y[:-1])


def test_mean_pairwise_distance_brute_force():
    rng = np.random.default_rng(0)
    X = rng.random((7, 3))
    brute = np.mean([np.linalg.norm(X[i] - X[j]) for i in range(7) for j in range(7) if i != j])
    assert metrics.mean_pairwise_distance(X) == pytest.approx(brute)


def test_separated_uses_the_spread_of_both():
    a = metrics.Evaluation({"fid": [10.0, 12.0]})
    b = metrics.Evaluation({"fid": [14.0, 16.0]})
    c = metrics.Evaluation({"fid": [30.0, 32.0]})
    # stds sqrt(2) each: spread 2; |10+... means 11 vs 15: diff 4 = 2 spreads exactly -> not more
    assert not metrics.separated(a, b, "fid")
    assert metrics.separated(a, b, "fid", n_sigma=1.5)
    assert metrics.separated(a, c, "fid")
