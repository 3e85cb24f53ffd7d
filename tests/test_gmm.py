"""Tests of course_lib.gmm: parity with scikit-learn, the EM formulas against a naive
implementation, sampling, numerical trouble and bad input."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from _shared import CPU
from scipy.stats import multivariate_normal
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from course_lib.data import load_digits
from course_lib.gmm import (
    COVARIANCE_TYPES,
    GaussianMixture,
    NumericalTroubleWarning,
    compute_precision_cholesky,
    e_step,
    estimate_log_gaussian_prob,
    m_step,
    n_parameters,
)

# --------------------------------------------------------------------------- data


def _blobs_2d(seed=0, n_per=150):
    rng = np.random.RandomState(seed)
    centres = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 5.0]])
    parts = [c + rng.randn(n_per, 2) @ rng.randn(2, 2) * 0.6 for c in centres]
    return np.concatenate(parts)


def _random_8d(seed=1, n=400):
    rng = np.random.RandomState(seed)
    centres = rng.randn(4, 8) * 2.0
    X = centres[rng.randint(4, size=n)] + rng.randn(n, 8) @ rng.randn(8, 8) * 0.5
    return X


def _digits_64():
    X, _ = load_digits("train")
    return X.reshape(len(X), -1).astype(np.float64)


DATASETS = {"blobs2d": (_blobs_2d, 3), "random8d": (_random_8d, 4), "digits64": (_digits_64, 4)}
_CACHE: dict = {}


def dataset(name):
    if name not in _CACHE:
        make, k = DATASETS[name]
        _CACHE[name] = (make(), k)
    return _CACHE[name]


def broad_init(X, K, covariance_type, seed=0):
    """Initial parameters: K random data points as means, equal weights, and every covariance
    equal to the data's mean variance times I (a broad, poor start: EM needs many steps)."""
    rng = np.random.RandomState(seed)
    N, D = X.shape
    precision = 1.0 / X.var(0).mean()
    precisions = {
        "full": np.tile(np.eye(D) * precision, (K, 1, 1)),
        "tied": np.eye(D) * precision,
        "diag": np.full((K, D), precision),
        "spherical": np.full(K, precision),
    }[covariance_type]
    return dict(
        weights_init=np.full(K, 1.0 / K),
        means_init=X[rng.choice(N, K, replace=False)],
        precisions_init=precisions,
    )


def random_parameters(K, D, covariance_type, seed=0):
    """Random weights, means, covariances (numpy) for the formula tests."""
    rng = np.random.RandomState(seed)
    weights = rng.dirichlet(np.ones(K))
    means = rng.randn(K, D)
    A = rng.randn(K, D, D) * 0.5
    full = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(D)
    cov = {
        "full": full,
        "tied": full[0],
        "diag": rng.uniform(0.3, 2.0, size=(K, D)),
        "spherical": rng.uniform(0.3, 2.0, size=K),
    }[covariance_type]
    return weights, means, cov


def full_covariances(cov, K, D, covariance_type):
    """Any covariance parametrisation as a (K, D, D) stack of matrices (naive reference)."""
    if covariance_type == "full":
        return np.asarray(cov)
    if covariance_type == "tied":
        return np.repeat(np.asarray(cov)[None], K, axis=0)
    if covariance_type == "diag":
        return np.stack([np.diag(c) for c in cov])
    return np.stack([c * np.eye(D) for c in cov])


def t(a):
    return torch.as_tensor(np.asarray(a), dtype=torch.float64)


def quiet(device, **kw):
    """A GaussianMixture on ``device`` (the fixture: the CPU unless COURSE_DEVICE=cuda)."""
    return GaussianMixture(device=device, **kw)


# --------------------------------------------------------------------------- parity


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("name", list(DATASETS))
def test_parity_with_sklearn_same_init(name, covariance_type, device):
    X, K = dataset(name)
    init = broad_init(X, K, covariance_type)
    kw = dict(covariance_type=covariance_type, tol=1e-4, max_iter=300, **init)
    sk = SkGaussianMixture(K, **kw).fit(X)
    ours = quiet(device, n_components=K, **kw).fit(X)
    assert sk.converged_ and ours.converged_
    assert ours.n_iter_ == sk.n_iter_
    assert ours.n_iter_ > 2  # a real run, not an immediate stop
    assert math.isclose(ours.lower_bound_, sk.lower_bound_, rel_tol=1e-6, abs_tol=1e-9)
    np.testing.assert_allclose(ours.history_, sk.lower_bounds_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(ours.weights_, sk.weights_, rtol=1e-5, atol=1e-8)
    np.testing.assert_allclose(ours.means_, sk.means_, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(ours.covariances_, sk.covariances_, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("covariance_type", ["full", "spherical"])
def test_parity_with_sklearn_max_iter_reached(covariance_type, device):
    X, K = dataset("random8d")
    init = broad_init(X, K, covariance_type, seed=3)
    kw = dict(covariance_type=covariance_type, tol=0.0, max_iter=7, **init)
    with pytest.warns(ConvergenceWarning):
        sk = SkGaussianMixture(K, **kw).fit(X)
    with pytest.warns(ConvergenceWarning):
        ours = quiet(device, n_components=K, **kw).fit(X)
    assert ours.n_iter_ == sk.n_iter_ == 7
    assert not ours.converged_
    assert math.isclose(ours.lower_bound_, sk.lower_bound_, rel_tol=1e-9)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_parity_with_sklearn_same_random_state(init_params, device):
    """Same random_state -> same initial responsibilities as scikit-learn -> same fit."""
    X, K = dataset("random8d")
    kw = dict(covariance_type="diag", init_params=init_params, random_state=5, n_init=2)
    sk = SkGaussianMixture(K, **kw).fit(X)
    ours = quiet(device, n_components=K, **kw).fit(X)
    assert ours.n_iter_ == sk.n_iter_
    assert math.isclose(ours.lower_bound_, sk.lower_bound_, rel_tol=1e-6)


def test_warm_start_matches_sklearn(device):
    X, K = dataset("random8d")
    init = broad_init(X, K, "full", seed=2)
    kw = dict(covariance_type="full", tol=1e-5, max_iter=5, warm_start=True, **init)
    sk = SkGaussianMixture(K, **kw)
    ours = quiet(device, n_components=K, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        for _ in range(3):
            sk.fit(X)
            ours.fit(X)
            assert ours.n_iter_ == sk.n_iter_
            assert math.isclose(ours.lower_bound_, sk.lower_bound_, rel_tol=1e-8)


# --------------------------------------------------------------------------- EM behaviour


def _dequantised_digits():
    if "deq" not in _CACHE:
        X, _ = load_digits("train", dequantize=True)
        _CACHE["deq"] = X.reshape(len(X), -1).astype(np.float64)
    return _CACHE["deq"]


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_lower_bound_is_monotone_without_regularisation(covariance_type, device):
    """EM's guarantee: with reg_covar=0 (and no repair) the log-likelihood never decreases."""
    X = _dequantised_digits()
    gm = GaussianMixture(6, covariance_type=covariance_type, tol=1e-6, max_iter=60,
                         init_params="random", random_state=0, reg_covar=0.0, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("error", NumericalTroubleWarning)  # no repair may happen here
        gm.fit(X)
    h = np.array(gm.history_)
    assert len(h) == gm.n_iter_ >= 10
    steps = np.diff(h)
    assert np.all(steps >= -1e-10 * np.abs(h[1:])), steps.min()
    assert h[-1] > h[0] + 1.0  # EM really climbed
    assert gm.lower_bound_ == h[-1]


def test_regularised_em_can_lower_the_likelihood(device):
    """With reg_covar > 0 the M-step is not the maximiser of the bound: the log-likelihood can
    drop (the book and the history_ docstring say so; this run shows it)."""
    X = _dequantised_digits()
    drops = []
    for seed in range(3):
        gm = GaussianMixture(10, covariance_type="diag", reg_covar=1e-3, tol=1e-10, max_iter=100,
                             random_state=seed, device=device)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            warnings.simplefilter("error", NumericalTroubleWarning)
            gm.fit(X)
        drops.append(np.diff(gm.history_).min())
    assert min(drops) < -1e-5, drops  # far beyond rounding (about 1e-13 here)


@pytest.mark.parametrize("init_params", ["random_from_data", "k-means++"])
def test_initial_covariances_of_point_initialisations(init_params, device):
    """random_from_data and k-means++ start from K single points: means on data points, weights
    1/K, covariances exactly reg_covar * I; after one EM iteration every component is fitted to
    the Voronoi cell of its seed (nearest seed in Euclidean distance)."""
    from sklearn.utils import check_random_state

    X = _blobs_2d()
    reg = 1e-4
    gm = GaussianMixture(3, init_params=init_params, reg_covar=reg, random_state=0, device=device)
    gm._dtype, gm._device = gm._check_hyperparameters()
    Xt = torch.as_tensor(X, device=device)
    w, mu, cov, _ = gm._initial_parameters(Xt, check_random_state(0), (None, None, None))
    w, mu, cov = w.cpu(), mu.cpu().numpy(), cov.cpu()
    nearest = np.min(np.abs(X[None] - mu[:, None]).max(-1), axis=1)
    assert np.all(nearest < 1e-12 * (1 + np.abs(mu).max()))  # each mean is a data point
    np.testing.assert_allclose(w.numpy(), np.full(3, 1 / 3), rtol=1e-12)
    np.testing.assert_allclose(cov.numpy(), np.stack([reg * np.eye(2)] * 3), rtol=1e-9,
                               atol=1e-20)
    # one iteration: the components are the nearest-seed cells
    one = GaussianMixture(3, init_params=init_params, reg_covar=reg, random_state=0,
                          max_iter=1, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        one.fit(X)
    cell = np.argmin(((X[:, None, :] - mu[None]) ** 2).sum(-1), axis=1)
    for k in range(3):
        np.testing.assert_allclose(one.means_[k], X[cell == k].mean(0), rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(one.covariances_[k],
                                   np.cov(X[cell == k], rowvar=False, bias=True)
                                   + reg * np.eye(2), rtol=1e-5, atol=1e-9)
    assert one.history_[0] < -100  # the narrow spheres explain the data very badly


def test_fit_predict_equals_fit_then_predict(device):
    X, K = dataset("blobs2d")
    a = quiet(device, n_components=K, random_state=0).fit_predict(X)
    b = quiet(device, n_components=K, random_state=0).fit(X).predict(X)
    np.testing.assert_array_equal(a, b)


@pytest.mark.cpu_only("same seed, same result is promised bit for bit on the CPU only")
def test_same_seed_same_result_and_n_init():
    X, K = dataset("random8d")
    kw = dict(n_components=K, init_params="random", random_state=7, n_init=3)
    a, b = quiet(CPU, **kw).fit(X), quiet(CPU, **kw).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bound_ == b.lower_bound_
    np.testing.assert_array_equal(a.sample(50)[0], b.sample(50)[0])
    # n_init keeps the best start: at least as good as any single start drawn from the same seeds
    single = quiet(CPU, n_components=K, init_params="random", random_state=7).fit(X)
    assert a.lower_bound_ >= single.lower_bound_ - 1e-12


def test_float32_close_to_float64(device):
    X, K = dataset("digits64")
    init = broad_init(X, K, "full")
    kw = dict(n_components=K, covariance_type="full", tol=0.0, max_iter=15, **init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g64 = quiet(device, **kw).fit(X)
        g32 = quiet(device, dtype=torch.float32, **kw).fit(X)
    assert g32.means_.dtype == np.float32
    assert abs(g32.lower_bound_ - g64.lower_bound_) <= 1e-4 * abs(g64.lower_bound_)


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_float32_and_float64_start_from_the_same_kmeans_partition(covariance_type, device):
    """k-means runs in float64 whatever the working dtype, so the same random_state gives the
    same start (before, float32 k-means found another partition and another local maximum:
    0.1 nats per sample apart on near-duplicate digits)."""
    X = _dequantised_digits()
    rng = np.random.default_rng(0)
    X = np.concatenate([X] * 20) + rng.normal(size=(20 * len(X), X.shape[1])) * 0.01
    kw = dict(n_components=10 if covariance_type == "diag" else 8,
              covariance_type=covariance_type, random_state=0, tol=0.0, max_iter=2, device=device)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        g64 = GaussianMixture(**kw).fit(X)
        g32 = GaussianMixture(dtype="float32", **kw).fit(X)
    np.testing.assert_allclose(g32.history_, g64.history_, rtol=1e-5)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_gpu_matches_cpu():
    X, K = dataset("digits64")
    init = broad_init(X, K, "full")
    kw = dict(n_components=K, covariance_type="full", tol=1e-4, max_iter=200, **init)
    cpu = GaussianMixture(device="cpu", **kw).fit(X)
    gpu = GaussianMixture(device="cuda", **kw).fit(X)
    assert gpu.n_iter_ == cpu.n_iter_
    assert math.isclose(gpu.lower_bound_, cpu.lower_bound_, rel_tol=1e-6)


# --------------------------------------------------------------------------- formulas vs naive
# On the CPU: float64 against SciPy/NumPy to 1e-10 (the estimator tests run them on the device).


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_estimate_log_gaussian_prob_and_e_step_against_scipy(covariance_type):
    K, D, N = 4, 3, 25
    rng = np.random.RandomState(3)
    X = rng.randn(N, D) * 1.5
    weights, means, cov = random_parameters(K, D, covariance_type)
    covs = full_covariances(cov, K, D, covariance_type)
    expected = np.stack(
        [multivariate_normal(means[k], covs[k]).logpdf(X) for k in range(K)], axis=1
    )
    P = compute_precision_cholesky(t(cov), covariance_type)
    got = estimate_log_gaussian_prob(t(X), t(means), P, covariance_type)
    assert got.shape == (N, K)
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-10, atol=1e-10)

    log_resp, log_prob = e_step(t(X), t(weights), t(means), P, covariance_type)
    joint = expected + np.log(weights)
    naive_log_prob = np.log(np.exp(joint).sum(1))
    np.testing.assert_allclose(log_prob.numpy(), naive_log_prob, rtol=1e-10)
    np.testing.assert_allclose(
        np.exp(log_resp.numpy()), np.exp(joint - naive_log_prob[:, None]), atol=1e-12
    )


def test_e_step_is_stable_far_from_the_data():
    """log-sum-exp: densities far below the smallest float give finite log-likelihoods."""
    X = torch.tensor([[1e3, 1e3], [0.0, 0.0]], dtype=torch.float64)
    means = torch.tensor([[0.0, 0.0], [1.0, 1.0]], dtype=torch.float64)
    P = compute_precision_cholesky(torch.tensor([0.01, 0.01], dtype=torch.float64), "spherical")
    log_resp, log_prob = e_step(
        X, torch.tensor([0.5, 0.5], dtype=torch.float64), means, P, "spherical"
    )
    assert torch.isfinite(log_resp).all() and torch.isfinite(log_prob).all()
    assert log_prob[0] < -1e6
    np.testing.assert_allclose(log_resp.exp().sum(1).numpy(), 1.0, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_m_step_against_naive(covariance_type):
    K, D, N, reg = 3, 4, 40, 1e-3
    rng = np.random.RandomState(4)
    X = rng.randn(N, D) + 2.0
    resp = rng.dirichlet(np.ones(K), size=N)
    weights, means, covs = m_step(t(X), t(resp), covariance_type, reg)

    nk = resp.sum(0)
    exp_means = np.stack([(resp[:, k, None] * X).sum(0) / nk[k] for k in range(K)])
    scatter = [
        sum(resp[n, k] * np.outer(X[n] - exp_means[k], X[n] - exp_means[k]) for n in range(N))
        for k in range(K)
    ]
    exp_full = np.stack([scatter[k] / nk[k] + reg * np.eye(D) for k in range(K)])
    exp_cov = {
        "full": exp_full,
        "tied": sum(scatter) / N + reg * np.eye(D),
        "diag": np.stack([np.diag(c) for c in exp_full]),
        "spherical": np.array([np.diag(c).mean() for c in exp_full]),
    }[covariance_type]
    np.testing.assert_allclose(weights.numpy(), nk / N, rtol=1e-10)
    np.testing.assert_allclose(means.numpy(), exp_means, rtol=1e-10)
    np.testing.assert_allclose(covs.numpy(), exp_cov, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_compute_precision_cholesky(covariance_type):
    K, D = 3, 4
    _, _, cov = random_parameters(K, D, covariance_type, seed=5)
    P = compute_precision_cholesky(t(cov), covariance_type).numpy()
    if covariance_type in ("full", "tied"):
        np.testing.assert_allclose(
            P @ np.swapaxes(P, -1, -2), np.linalg.inv(cov), rtol=1e-9, atol=1e-12
        )
        np.testing.assert_allclose(np.tril(P, -1), 0.0)  # upper triangular
    else:
        np.testing.assert_allclose(P, 1.0 / np.sqrt(cov), rtol=1e-12)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_compute_precision_cholesky_raises_on_singular(covariance_type):
    K, D = 2, 3
    singular = {
        "full": np.zeros((K, D, D)),
        "tied": np.ones((D, D)),
        "diag": np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]]),
        "spherical": np.array([1.0, -1.0]),
    }[covariance_type]
    with pytest.raises(ValueError, match="positive definite"):
        compute_precision_cholesky(t(singular), covariance_type)


def test_n_parameters_by_hand():
    K, D = 3, 5
    assert n_parameters(K, D, "full") == 2 + 15 + 3 * 15
    assert n_parameters(K, D, "tied") == 2 + 15 + 15
    assert n_parameters(K, D, "diag") == 2 + 15 + 15
    assert n_parameters(K, D, "spherical") == 2 + 15 + 3


# --------------------------------------------------------------------------- using a fitted model


def _sklearn_with_params_of(ours):
    sk = SkGaussianMixture(ours.n_components, covariance_type=ours.covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"):
        setattr(sk, name, getattr(ours, name).copy())
    sk.n_features_in_ = ours.n_features_in_
    sk.converged_, sk.n_iter_, sk.lower_bound_ = True, ours.n_iter_, ours.lower_bound_
    return sk


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_scores_agree_with_sklearn_given_same_parameters(covariance_type, device):
    X, K = dataset("random8d")
    ours = quiet(device, n_components=K, covariance_type=covariance_type, random_state=0).fit(X)
    sk = _sklearn_with_params_of(ours)
    X_new = _random_8d(seed=9, n=100)
    np.testing.assert_allclose(ours.score_samples(X_new), sk.score_samples(X_new), rtol=1e-10)
    assert math.isclose(ours.score(X_new), sk.score(X_new), rel_tol=1e-10)
    np.testing.assert_array_equal(ours.predict(X_new), sk.predict(X_new))
    np.testing.assert_allclose(ours.predict_proba(X_new), sk.predict_proba(X_new), atol=1e-10)
    assert math.isclose(ours.bic(X_new), sk.bic(X_new), rel_tol=1e-10)
    assert math.isclose(ours.aic(X_new), sk.aic(X_new), rel_tol=1e-10)
    np.testing.assert_allclose(ours.precisions_, sk.precisions_, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_sample_shapes_and_moments(covariance_type, device):
    X, K = dataset("blobs2d")
    gm = quiet(device, n_components=K, covariance_type=covariance_type, random_state=0).fit(X)
    Xs, ys = gm.sample(7)
    assert Xs.shape == (7, 2) and ys.shape == (7,) and ys.dtype == np.int64
    assert np.all(np.diff(ys) >= 0)  # sorted by component, as scikit-learn

    n = 200_000
    Xs, ys = gm.sample(n)
    D = X.shape[1]
    covs = full_covariances(gm.covariances_, K, D, covariance_type)
    w, mu = gm.weights_, gm.means_
    mean = w @ mu
    second = sum(w[k] * (covs[k] + np.outer(mu[k], mu[k])) for k in range(K))
    cov = second - np.outer(mean, mean)
    # standard errors of a mean of n draws: sqrt(var / n); allow 5 of them
    np.testing.assert_allclose(Xs.mean(0), mean, atol=5 * np.sqrt(np.diag(cov) / n).max())
    np.testing.assert_allclose(np.cov(Xs.T), cov, atol=0.02 * np.abs(cov).max())
    np.testing.assert_allclose(np.bincount(ys, minlength=K) / n, w, atol=5 * np.sqrt(0.25 / n))
    for k in range(K):  # each component on its own
        np.testing.assert_allclose(Xs[ys == k].mean(0), mu[k], atol=0.03)
        np.testing.assert_allclose(
            np.cov(Xs[ys == k].T), covs[k], atol=0.03 * np.abs(covs[k]).max()
        )


def test_images_in_images_out(device):
    images, _ = load_digits("train")
    gm = quiet(device, n_components=3, covariance_type="diag", random_state=0).fit(images)
    assert gm.image_shape_ == (1, 8, 8) and gm.n_features_in_ == 64
    assert gm.means_.shape == (3, 64)
    samples, labels = gm.sample(5)
    assert samples.shape == (5, 1, 8, 8) and labels.shape == (5,)
    flat = images.reshape(len(images), -1)
    np.testing.assert_allclose(gm.score_samples(images), gm.score_samples(flat))
    np.testing.assert_array_equal(gm.predict(images[:10]), gm.predict(flat[:10]))
    with pytest.raises(ValueError, match="shape"):
        gm.predict(images.reshape(-1, 1, 4, 16))
    point = quiet(device, n_components=2, random_state=0).fit(dataset("blobs2d")[0])
    assert point.image_shape_ is None and point.sample(3)[0].shape == (3, 2)


def test_numpy_and_torch_inputs_identical(device):
    X, K = dataset("random8d")
    a = quiet(device, n_components=K, random_state=1).fit(X)
    b = quiet(device, n_components=K, random_state=1).fit(torch.from_numpy(X))
    c = quiet(device, n_components=K, random_state=1).fit(X.astype(np.float32).tolist())
    np.testing.assert_array_equal(a.means_, b.means_)
    assert a.lower_bound_ == b.lower_bound_
    assert math.isclose(a.lower_bound_, c.lower_bound_, rel_tol=1e-5)
    np.testing.assert_array_equal(a.score_samples(X), b.score_samples(torch.from_numpy(X)))


def test_progress_bar_does_not_change_the_result(capsys, device):
    X, K = dataset("blobs2d")
    a = quiet(device, n_components=K, random_state=0).fit(X)
    b = quiet(device, n_components=K, random_state=0, progress=True, verbose=2).fit(X)
    assert a.lower_bound_ == b.lower_bound_
    assert "Initialization" in capsys.readouterr().out


# --------------------------------------------------------------------------- numerical trouble


def _assert_finite(gm):
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(gm, name))), name
    assert np.isfinite(gm.lower_bound_)
    assert np.all(np.isfinite(gm.history_))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_duplicate_points_fewer_distinct_than_components(covariance_type, device):
    """3 distinct points, K = 5: k-means leaves clusters empty; they are re-seeded."""
    X = np.repeat(np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]]), 10, axis=0)
    gm = quiet(device, n_components=5, covariance_type=covariance_type, random_state=0)
    with pytest.warns(NumericalTroubleWarning, match="lost all"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)  # from k-means itself
            gm.fit(X)
    _assert_finite(gm)
    assert math.isclose(gm.weights_.sum(), 1.0)
    assert np.all(np.isfinite(gm.score_samples(X)))


def test_component_far_from_the_data_is_reseeded(device):
    X, _ = dataset("blobs2d")
    means = np.array([[0.0, 0.0], [4.0, 1.0], [1e4, 1e4]])  # third one explains nothing
    precisions = np.array([1.0, 1.0, 1.0])
    gm = quiet(
        device,
        n_components=3,
        covariance_type="spherical",
        means_init=means,
        precisions_init=precisions,
        weights_init=np.array([0.4, 0.4, 0.2]),
    )
    with pytest.warns(NumericalTroubleWarning, match=r"component\(s\) \[2\] lost all"):
        gm.fit(X)
    _assert_finite(gm)
    assert np.abs(gm.means_[2]).max() < 50  # moved onto the data
    assert gm.weights_[2] > 0.05  # and took over a share of it
    # scikit-learn keeps the dead component (weight ~ 1e-16)
    sk = SkGaussianMixture(
        3,
        covariance_type="spherical",
        means_init=means,
        precisions_init=precisions,
        weights_init=np.array([0.4, 0.4, 0.2]),
    ).fit(X)
    assert sk.weights_.min() < 1e-10
    assert gm.lower_bound_ > sk.lower_bound_


def test_k_close_to_n(device):
    X = _random_8d(seed=3, n=12)
    gm = quiet(device, n_components=12, covariance_type="full", random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        gm.fit(X)
    _assert_finite(gm)
    assert np.all(np.isfinite(gm.score_samples(X)))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_zero_variance_feature(covariance_type, device):
    X = _random_8d(seed=4, n=200)
    X[:, 3] = 0.5  # a constant feature
    # reg_covar > 0: as scikit-learn, no warning needed
    with warnings.catch_warnings():
        warnings.simplefilter("error", NumericalTroubleWarning)
        gm = quiet(device, n_components=3, covariance_type=covariance_type, random_state=0).fit(X)
    _assert_finite(gm)
    if covariance_type == "spherical":
        return  # one variance averaged over all features: not singular
    # reg_covar = 0: scikit-learn raises, we regularise and warn
    with pytest.raises(ValueError):
        SkGaussianMixture(3, covariance_type=covariance_type, reg_covar=0.0, random_state=0).fit(X)
    gm0 = quiet(device, n_components=3, covariance_type=covariance_type, reg_covar=0.0, random_state=0)
    with pytest.warns(NumericalTroubleWarning, match="not\\s+positive definite"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            gm0.fit(X)
    _assert_finite(gm0)
    assert np.all(np.isfinite(gm0.score_samples(X)))
    # the regularised covariance is the one kept, consistent with the precisions
    covs = full_covariances(gm0.covariances_, 3, X.shape[1], covariance_type)
    assert np.all(np.linalg.eigvalsh(covs) > 0)
    precisions = full_covariances(gm0.precisions_, 3, X.shape[1], covariance_type)
    np.testing.assert_allclose(
        precisions @ covs, np.broadcast_to(np.eye(X.shape[1]), covs.shape), atol=1e-6
    )


def test_max_iter_warns(device):
    X, K = dataset("random8d")
    with pytest.warns(ConvergenceWarning):
        gm = quiet(device, n_components=K, max_iter=2, tol=0.0, random_state=0).fit(X)
    assert gm.n_iter_ == 2 and not gm.converged_


# --------------------------------------------------------------------------- bad input

X_OK = _blobs_2d()


@pytest.mark.parametrize(
    "kwargs, X, exc, match",
    [
        (dict(n_components=0), X_OK, ValueError, "n_components"),
        (dict(n_components=2.5), X_OK, TypeError, "n_components"),
        (dict(n_components=10), X_OK[:5], ValueError, "n_components"),
        (dict(covariance_type="banana"), X_OK, ValueError, "covariance_type"),
        (dict(init_params="magic"), X_OK, ValueError, "init_params"),
        (dict(reg_covar=-1.0), X_OK, ValueError, "reg_covar"),
        (dict(tol=-1e-3), X_OK, ValueError, "tol"),
        (dict(max_iter=0), X_OK, ValueError, "max_iter"),
        (dict(n_init=0), X_OK, ValueError, "n_init"),
        (dict(dtype=torch.int64), X_OK, ValueError, "dtype"),
        (dict(warm_start="yes"), X_OK, TypeError, "warm_start"),
        (dict(random_state=-3), X_OK, ValueError, "random_state"),
        (dict(), X_OK[:, 0], ValueError, "Expected a 2D array"),
        (dict(), np.where(np.arange(len(X_OK))[:, None] == 3, np.nan, X_OK), ValueError, "NaN"),
        (dict(), np.where(np.arange(len(X_OK))[:, None] == 3, np.inf, X_OK), ValueError, "X"),
        (dict(), [["a", "b"]], TypeError, "X"),
        (dict(n_components=1), X_OK[:1], ValueError, "at least 2 samples"),
        (dict(n_components=2, weights_init=[0.5, 0.2, 0.3]), X_OK, ValueError, "weights_init"),
        (dict(n_components=2, weights_init=[0.5, 0.2]), X_OK, ValueError, "weights_init"),
        (dict(n_components=2, weights_init=[1.5, -0.5]), X_OK, ValueError, "weights_init"),
        (dict(n_components=2, means_init=np.zeros((2, 3))), X_OK, ValueError, "means_init"),
        (
            dict(n_components=2, precisions_init=np.ones((2, 3, 3))),
            X_OK,
            ValueError,
            "precisions_init",
        ),
        (
            dict(n_components=2, precisions_init=-np.ones((2, 2, 2)) * np.eye(2)),
            X_OK,
            ValueError,
            "precisions_init",
        ),
        (
            dict(n_components=2, covariance_type="diag", precisions_init=np.zeros((2, 2))),
            X_OK,
            ValueError,
            "precisions_init",
        ),
        (
            dict(n_components=2, covariance_type="spherical", precisions_init=np.ones((2, 2))),
            X_OK,
            ValueError,
            "precisions_init",
        ),
    ],
)
def test_bad_input(kwargs, X, exc, match, device):
    kwargs = {"n_components": 2, **kwargs}
    with pytest.raises(exc, match=match):
        quiet(device, **kwargs).fit(X)


def test_use_before_fit_and_wrong_features(device):
    gm = quiet(device, n_components=2)
    for method in ("predict", "predict_proba", "score_samples", "score", "bic", "aic"):
        with pytest.raises(NotFittedError):
            getattr(gm, method)(X_OK)
    with pytest.raises(NotFittedError):
        gm.sample(3)
    gm.fit(X_OK)
    with pytest.raises(ValueError, match="3 features"):
        gm.predict(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="n_samples"):
        gm.sample(0)
    with pytest.raises(ValueError, match="NaN"):
        gm.score_samples(np.array([[np.nan, 0.0]]))


def test_public_functions_validate_covariance_type():
    X = torch.zeros(3, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="covariance_type"):
        m_step(X, torch.ones(3, 1, dtype=torch.float64), "wrong", 1e-6)
    with pytest.raises(ValueError, match="covariance_type"):
        n_parameters(2, 2, "wrong")


# --------------------------------------------------------------------------- issue 12: robustness


@pytest.mark.cpu_only("scikit-learn's estimator checks expect CPU reproducibility across refits")
def test_passes_sklearn_check_estimator():
    """Every scikit-learn estimator check passes (sparse input is refused with a message that
    says so, as the default tags declare)."""
    from sklearn.utils.estimator_checks import check_estimator

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = check_estimator(GaussianMixture(device=CPU), on_fail=None)
    failed = [(r["check_name"], str(r["exception"])[:200]) for r in results
              if r["status"] == "failed"]
    assert not failed, failed
    assert sum(r["status"] == "passed" for r in results) >= 40


def _state(gm):
    """The fitted state: everything on the estimator but its hyperparameters."""
    params = gm.get_params()
    return {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in vars(gm).items()
            if k not in params}


def _same_state(a, b):
    assert a.keys() == b.keys()
    for k in a:
        if isinstance(a[k], np.ndarray):
            assert np.array_equal(a[k], b[k]), k
        else:
            assert a[k] == b[k] or (a[k] is b[k]), k


@pytest.mark.parametrize(
    "change, X_new, exc",
    [
        (dict(), "nan", ValueError),
        (dict(), "1d", ValueError),
        (dict(n_components=500), "ok", ValueError),  # K > N
        (dict(reg_covar=-1.0), "ok", ValueError),
        (dict(), "huge", ValueError),
        (dict(), "complex", ValueError),
        (dict(), "images", None),  # a successful refit on other data changes the model
    ],
)
def test_failed_refit_leaves_the_model_as_it_was(change, X_new, exc, device):
    X = _blobs_2d()
    gm = GaussianMixture(3, random_state=0, device=device).fit(X)
    before = _state(gm)
    data = {"nan": np.where(np.arange(X.size).reshape(X.shape) == 5, np.nan, X),
            "1d": X[:, 0], "ok": X, "huge": X * 1e200, "complex": X + 1j,
            "images": np.random.default_rng(0).random((40, 1, 2, 2))}[X_new]
    gm.set_params(**change)
    if exc is None:
        gm.fit(data)
        assert gm.image_shape_ == (1, 2, 2) and gm.n_features_in_ == 4
        return
    with pytest.raises(exc):
        gm.fit(data)
    _same_state(before, _state(gm))
    gm.set_params(n_components=3, reg_covar=1e-6)
    assert np.isfinite(gm.score(X))  # still usable


def test_refit_starts_clean_unless_warm_start(device):
    X, Y = _blobs_2d(0), _blobs_2d(1) + 0.5
    fresh = GaussianMixture(3, random_state=0, device=device).fit(Y)
    refit = GaussianMixture(3, random_state=0, device=device).fit(X).fit(Y)
    np.testing.assert_array_equal(fresh.means_, refit.means_)
    assert fresh.history_ == refit.history_ and fresh.n_iter_ == refit.n_iter_
    warm = GaussianMixture(3, random_state=0, warm_start=True, device=device).fit(X).fit(Y)
    assert warm.history_[0] != fresh.history_[0]  # continued from the first solution


@pytest.mark.parametrize(
    "change, X2, match",
    [
        (dict(n_components=4), None, "n_components changed from 3"),
        (dict(covariance_type="diag"), None, "covariance_type changed from 'full'"),
        (dict(), "more_features", "features"),
    ],
)
def test_warm_start_with_incompatible_changes_is_an_error(change, X2, match, device):
    X = _blobs_2d()
    gm = GaussianMixture(3, random_state=0, warm_start=True, device=device).fit(X)
    before = _state(gm)
    gm.set_params(**change)
    data = np.hstack([X, X[:, :1]]) if X2 == "more_features" else X
    with pytest.raises(ValueError, match=match):
        gm.fit(data)
    gm.set_params(n_components=3, covariance_type="full")
    _same_state(before, _state(gm))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scale", [1e-200, 1e-100, 1e-30, 1.0, 1e30, 1e100, 1e150, 1e200, 1e300])
def test_huge_or_tiny_inputs_never_give_nan(scale, dtype, device):
    """Finite data at any scale: a finite fit, or a ValueError that says to rescale."""
    X = _blobs_2d() * scale
    gm = GaussianMixture(3, random_state=0, dtype=dtype, device=device)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            gm.fit(X)
    except ValueError as exc:
        assert "escale" in str(exc), exc
        assert scale >= 1e17  # only where squares overflow (float32 near 1e18, float64 1e150)
        return
    assert scale <= 1e150
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        assert np.all(np.isfinite(getattr(gm, name))), name
    assert np.isfinite(gm.lower_bound_)
    assert np.all(np.isfinite(gm.predict_proba(X)))


def test_scoring_far_away_points_is_an_error_not_nan(device):
    X = _blobs_2d()
    gm = GaussianMixture(3, random_state=0, device=device).fit(X)
    with pytest.raises(ValueError, match="rescale"):
        gm.score_samples(np.array([[1e200, 1e200]]))


def _tiny_problem():
    rng = np.random.default_rng(0)
    X = torch.as_tensor(rng.normal(size=(20, 3)))
    means = torch.as_tensor(rng.normal(size=(2, 3)))
    P = compute_precision_cholesky(torch.eye(3, dtype=torch.float64).expand(2, 3, 3).clone(),
                                   "full")
    w = torch.tensor([0.3, 0.7], dtype=torch.float64)
    resp = torch.full((20, 2), 0.5, dtype=torch.float64)
    return X, w, means, P, resp


def _with_nan(t):
    t = t.clone()
    t.view(-1)[0] = float("nan")
    return t


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda X, w, m, P, r: e_step(_with_nan(X), w, m, P, "full"), "X contains NaN"),
        (lambda X, w, m, P, r: e_step(X, w * 2, m, P, "full"), "sum to 1"),
        (lambda X, w, m, P, r: e_step(X, torch.tensor([1.5, -0.5], dtype=torch.float64), m, P,
                                      "full"), ">= 0"),
        (lambda X, w, m, P, r: e_step(X, w[:1] / w[:1], m, P, "full"), "shape"),
        (lambda X, w, m, P, r: e_step(X, w, _with_nan(m), P, "full"), "means contains NaN"),
        (lambda X, w, m, P, r: e_step(X, w, m[:, :2], P, "full"), "means must have shape"),
        (lambda X, w, m, P, r: e_step(X, w, m, -P, "full"), "positive diagonal"),
        (lambda X, w, m, P, r: e_step(X, w, m, P[0], "full"), "precisions_cholesky"),
        (lambda X, w, m, P, r: e_step(X + 1j, w, m, P, "full"), "real"),
        (lambda X, w, m, P, r: estimate_log_gaussian_prob(_with_nan(X), m, P, "full"), "NaN"),
        (lambda X, w, m, P, r: m_step(X, r, "full", -1e-3), "reg_covar"),
        (lambda X, w, m, P, r: m_step(X, r, "full", float("nan")), "reg_covar"),
        (lambda X, w, m, P, r: m_step(X, r * 2, "full", 1e-6), "sum to 1"),
        (lambda X, w, m, P, r: m_step(X, r - 1, "full", 1e-6), ">= 0"),
        (lambda X, w, m, P, r: m_step(X, _with_nan(r), "full", 1e-6), "resp contains NaN"),
        (lambda X, w, m, P, r: m_step(X, r[:5], "full", 1e-6), "resp must have shape"),
        (lambda X, w, m, P, r: m_step(_with_nan(X), r, "full", 1e-6), "X contains NaN"),
        (lambda X, w, m, P, r: compute_precision_cholesky(_with_nan(torch.eye(3)[None]),
                                                          "full"), "NaN"),
    ],
)
def test_equation_functions_validate_their_inputs(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call(*_tiny_problem())


def test_equation_functions_accept_numpy_inputs():
    X, w, m, P, r = _tiny_problem()
    a = e_step(X, w, m, P, "full")
    b = e_step(X.numpy(), w.numpy(), m.numpy(), P.numpy(), "full")
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    assert all(torch.equal(u, v) for u, v in zip(m_step(X, r, "diag", 1e-6),
                                                 m_step(X.numpy(), r.numpy(), "diag", 1e-6)))


@pytest.mark.parametrize("dtype, rtol_lb, tol_params",
                         [("float64", 1e-12, 1e-10), ("float32", 1e-6, 1e-4)])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.cpu_only("it is about the number of CPU threads")
def test_thread_count_changes_results_only_by_rounding(dtype, rtol_lb, tol_params,
                                                       covariance_type):
    """The promise of the ``dtype`` docstring: 1 and 2 threads agree within rounding bounds."""
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(size=(10_000, 16)) + 3 * rng.normal(size=16)
                        for _ in range(3)])
    threads = torch.get_num_threads()
    results = {}
    try:
        for n in (1, 2):
            torch.set_num_threads(n)
            gm = GaussianMixture(3, covariance_type=covariance_type, dtype=dtype, tol=0.0,
                                 max_iter=8, random_state=0, device=CPU)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ConvergenceWarning)
                gm.fit(X)
            results[n] = gm
    finally:
        torch.set_num_threads(threads)
    a, b = results[1], results[2]
    assert abs(a.lower_bound_ - b.lower_bound_) <= rtol_lb * abs(a.lower_bound_)
    np.testing.assert_allclose(a.means_, b.means_, rtol=tol_params, atol=tol_params)
    np.testing.assert_allclose(a.covariances_, b.covariances_, rtol=tol_params, atol=tol_params)


def test_sample_seed_overrides_random_state(device):
    gm = GaussianMixture(3, random_state=0, device=device).fit(_blobs_2d())
    a, b, c = gm.sample(50, seed=1)[0], gm.sample(50, seed=1)[0], gm.sample(50, seed=2)[0]
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(gm.sample(50)[0], gm.sample(50, seed=0)[0])
    with pytest.raises(ValueError, match="seed"):
        gm.sample(5, seed=-1)


def test_property_any_finite_data_gives_a_finite_fit_or_a_clear_error(device):
    """Property (hypothesis): finite data of any shape and scale, any covariance type and
    dtype: fit either succeeds with finite parameters and scores, or raises ValueError with a
    message that names the problem. Never NaN, never another exception."""
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st

    @settings(max_examples=40, deadline=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(n=st.integers(2, 30), d=st.integers(1, 4), k=st.integers(1, 3),
           exponent=st.integers(-300, 300), covariance_type=st.sampled_from(COVARIANCE_TYPES),
           dtype=st.sampled_from(["float64", "float32"]), seed=st.integers(0, 2**16),
           duplicates=st.booleans())
    def check(n, d, k, exponent, covariance_type, dtype, seed, duplicates):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, d))
        if duplicates:
            X[: n // 2] = X[0]
        X = X * 10.0**exponent
        gm = GaussianMixture(k, covariance_type=covariance_type, dtype=dtype, random_state=0,
                             device=device)
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                gm.fit(X)
                scores = gm.score_samples(X)
        except ValueError as exc:
            message = str(exc)
            assert any(w in message for w in ("escale", "n_components", "too large",
                                              "singular", "overflow")), message
            return
        for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
            assert np.all(np.isfinite(getattr(gm, name))), name
        assert np.isfinite(gm.lower_bound_) and np.all(np.isfinite(scores))

    check()


@pytest.mark.parametrize("seed, exc", [(2**40, None), (2**64 - 1, None), (2**64, ValueError),
                                       (-1, ValueError), (1.5, TypeError), (True, TypeError)])
def test_seeds_are_checked_in_one_place(seed, exc, device):
    """random_state and sample(seed=) take the course's seed range [0, 2**64) (checked by
    _core.check_seed), with the same clear errors as every other seeded function."""
    X = _blobs_2d()
    if exc is None:
        a = GaussianMixture(3, random_state=seed, device=device).fit(X)
        b = GaussianMixture(3, random_state=seed, device=device).fit(X)
        assert np.array_equal(a.means_, b.means_)
        assert np.array_equal(a.sample(5, seed=seed)[0], b.sample(5, seed=seed)[0])
        return
    with pytest.raises(exc, match="random_state"):
        GaussianMixture(3, random_state=seed, device=device).fit(X)
    gm = GaussianMixture(3, random_state=0, device=device).fit(X)
    with pytest.raises(exc, match="seed"):
        gm.sample(5, seed=seed)


def _fitted_on_levels(covariance_type, n_levels=4, seed=0):
    rng = np.random.default_rng(seed)
    levels = np.stack([rng.integers(0, n_levels, 300), rng.binomial(n_levels - 1, 0.3, 300)], 1)
    from course_lib.data import dequantize

    Y = dequantize(levels, n_levels=n_levels, seed=seed)
    return GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(Y), levels


@pytest.mark.parametrize("covariance_type", ["diag", "spherical"])
def test_score_levels_is_the_mass_on_the_cells(covariance_type):
    """The exact discrete log-probability: each cell's mass by scipy's normal CDF; over all
    cells it adds up to the mixture's mass on [0, 1)^2; and the dequantised score's expectation
    over the noise (a log-density averaged over the cell, less log of the cell's volume) lies
    below it for every image (Jensen)."""
    from scipy.stats import norm

    n = 4
    gm, levels = _fitted_on_levels(covariance_type, n)
    var = np.asarray(gm.covariances_, dtype=np.float64)
    sd = np.sqrt(var if var.ndim == 2 else np.repeat(var[:, None], 2, 1))
    cells = np.array([(i, j) for i in range(n) for j in range(n)])
    mass = sum(w * np.prod(norm.cdf((cells + 1) / n, m, s) - norm.cdf(cells / n, m, s), axis=1)
               for w, m, s in zip(gm.weights_, gm.means_, sd))
    assert np.allclose(np.exp(gm.score_levels(cells, n_levels=n)), mass, rtol=1e-10, atol=0)
    inside = sum(w * np.prod(norm.cdf(1, m, s) - norm.cdf(0, m, s))
                 for w, m, s in zip(gm.weights_, gm.means_, sd))
    assert abs(mass.sum() - inside) < 1e-10 and inside < 1
    # E_u log p(x + u) over each cell by the midpoint rule on a 60 x 60 grid (no sampling noise)
    u = (np.arange(60) + 0.5) / 60
    grid = np.stack(np.meshgrid(u, u, indexing="ij"), -1).reshape(-1, 2)
    dequantised = np.array([gm.score_samples((c + grid) / n).mean() for c in cells]) - 2 * np.log(n)
    assert (dequantised < gm.score_levels(cells, n_levels=n)).all()


def test_score_levels_is_finite_far_in_both_tails():
    gm, _ = _fitted_on_levels("diag")
    gm.means_ = np.array([[-30.0, 0.5], [0.5, 40.0], [0.5, 0.5]])  # cells 30 and 40 sds away
    gm.covariances_ = np.full((3, 2), 1e-3)
    out = gm.score_levels(np.array([[3, 0], [0, 3]]), n_levels=4)
    assert np.isfinite(out).all()
    from scipy.stats import norm  # the far component contributes exp(-~450); the near one decides

    sd = np.sqrt(1e-3)  # the cells [0.75, 1) and [0, 0.25) are 7.9 sds from the near mean
    near = np.log(gm.weights_[2]) + np.log(norm.sf(0.75, 0.5, sd) - norm.sf(1.0, 0.5, sd)) \
        + np.log(norm.cdf(0.25, 0.5, sd) - norm.cdf(0.0, 0.5, sd))
    assert abs(out[0] - near) < 1e-6 * abs(near)


def test_score_levels_refuses_what_it_cannot_compute():
    gm, levels = _fitted_on_levels("diag")
    with pytest.raises(ValueError, match="levels must lie in"):
        gm.score_levels(levels + 1, n_levels=4)
    with pytest.raises(ValueError, match="integer grey levels"):
        gm.score_levels(levels + 0.5, n_levels=4)
    with pytest.raises(ValueError, match="integer grey levels"):
        gm.score_levels(np.full((2, 2), np.nan), n_levels=4)
    with pytest.raises(ValueError, match="pixels per image"):
        gm.score_levels(levels[:, :1], n_levels=4)
    with pytest.raises(ValueError, match="n_levels"):
        gm.score_levels(levels, n_levels=1)
    with pytest.raises(ValueError, match="N >= 1"):
        gm.score_levels(np.zeros((0, 2), dtype=int), n_levels=4)
    full, _ = _fitted_on_levels("full")
    with pytest.raises(ValueError, match="covariance_type 'diag' or 'spherical'"):
        full.score_levels(levels, n_levels=4)
    with pytest.raises(NotFittedError):
        GaussianMixture(2, covariance_type="diag").score_levels(levels, n_levels=4)
