"""Silent wrong numbers (issue 25): results that depend on where the data sit, equation and
metric functions that return a number for what they cannot compute, images whose brightness
depends on their content, seeds at the end of the valid range."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from course_lib import _core, data, metrics, mrf
from course_lib.gmm import GaussianMixture

# ===================================================================== GaussianMixture offsets


def _two_clusters(n=400, d=3, seed=0):
    rng = np.random.default_rng(seed)
    Z = rng.standard_normal((n, d))
    Z[: n // 2] += 2.5
    return Z


def _covariances_full(g) -> np.ndarray:
    K, D = g.means_.shape
    c = np.asarray(g.covariances_, dtype=np.float64)
    if g.covariance_type == "full":
        return c
    if g.covariance_type == "tied":
        return np.broadcast_to(c, (K, D, D))
    if g.covariance_type == "diag":
        return np.stack([np.diag(v) for v in c])
    return np.stack([v * np.eye(D) for v in c])


def _exact_score(g, X) -> float:
    """The mean log-likelihood of the fitted parameters, by SciPy (differences x - mu taken
    directly in float64, no expanded squares)."""
    X = np.asarray(X, dtype=np.float64)
    cov = _covariances_full(g)
    logs = [np.log(float(w)) + multivariate_normal(np.asarray(m, np.float64), c).logpdf(X)
            for w, m, c in zip(g.weights_, g.means_, cov)]
    return float(logsumexp(np.stack(logs), axis=0).mean())


def _fit(X, covariance_type, dtype="float64"):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return GaussianMixture(2, covariance_type=covariance_type, random_state=0, dtype=dtype,
                               device="cpu").fit(X)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("offset", [1e4, 1e8])
def test_gmm_fit_and_score_do_not_depend_on_an_offset_float64(covariance_type, offset):
    Z = _two_clusters()
    base = _fit(Z, covariance_type)
    g = _fit(Z + offset, covariance_type)
    X = Z + offset
    # the data themselves are rounded at the offset (1.5e-8 at 1e8): that much may differ
    assert g.lower_bound_ == pytest.approx(base.lower_bound_, abs=1e-6)
    assert g.score(X) == pytest.approx(_exact_score(g, X), abs=1e-6)
    assert g.score(X) == pytest.approx(base.score(Z), abs=1e-6)
    np.testing.assert_allclose(g.means_ - offset, base.means_, atol=1e-6)  # original coordinates
    np.testing.assert_array_equal(g.predict(X), base.predict(Z))


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_gmm_float32_at_1e4(covariance_type):
    Z = _two_clusters()
    base = _fit(Z, covariance_type, "float32")
    for X in (Z + 1e4, (Z + 1e4).astype(np.float32)):  # float64 data, and float32 data
        g = _fit(X, covariance_type, "float32")
        assert g.lower_bound_ == pytest.approx(base.lower_bound_, abs=2e-3)
        assert g.score(X) == pytest.approx(_exact_score(g, X), abs=2e-3)
        assert g.means_.dtype == np.float32


@pytest.mark.parametrize("exponent", [12, 50, 100, 140])
def test_gmm_offsets_towards_the_float64_limit(exponent):
    """Offset 10**e with a spread of 2**-20 of it (20 significant bits): the fit is the
    origin's, in units of the spread (log-likelihood shifted by D log(spread))."""
    Z = _two_clusters(d=2)
    offset = 10.0**exponent
    spread = offset * 2.0**-20
    base = _fit(Z, "full")
    X = offset + spread * Z
    g = _fit(X, "full")
    shift = Z.shape[1] * np.log(spread)
    assert g.lower_bound_ + shift == pytest.approx(base.lower_bound_, abs=1e-5)
    assert g.score(X) + shift == pytest.approx(base.score(Z), abs=1e-5)


@pytest.mark.parametrize("offset, dtype", [(1e300, np.float64), (np.finfo(np.float64).max / 2,
                                                                   np.float64)])
def test_gmm_spread_too_large_for_squares_is_refused(offset, dtype):
    Z = _two_clusters(d=2)
    X = (offset + offset * 2.0**-20 * Z).astype(dtype)
    with pytest.raises(ValueError, match="rescale|Rescale"):
        _fit(X, "full")


@pytest.mark.parametrize("X", [
    _two_clusters(d=2) + 1e16,  # float64: the unit spread is rounded to steps of 2
    (_two_clusters(d=2) + 1e6).astype(np.float32),  # float32: steps of 0.06
], ids=["float64 at 1e16", "float32 at 1e6"])
def test_gmm_refuses_data_whose_spread_was_rounded_away(X):
    with pytest.raises(ValueError, match="rounded away"):
        _fit(X, "full", "float64")


def test_gmm_warm_start_and_means_init_far_from_the_origin():
    Z = _two_clusters()
    X = Z + 1e8
    base = _fit(Z, "diag")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = GaussianMixture(2, covariance_type="diag", means_init=base.means_ + 1e8,
                            random_state=0, device="cpu").fit(X)
        assert g.score(X) == pytest.approx(base.score(Z), abs=1e-6)
        g.set_params(warm_start=True, max_iter=2).fit(X)
    assert g.score(X) == pytest.approx(_exact_score(g, X), abs=1e-6)


# ===================================================================== equation and metric functions

_TRACE = np.random.default_rng(0).standard_normal((200, 3))
_POINTS = np.random.default_rng(1).standard_normal((30, 4))


def _bad_values():
    return {
        "None": (None, TypeError),
        "complex": (_TRACE + 0j, TypeError),
        "datetime": (np.arange(600).astype("datetime64[s]").reshape(200, 3), TypeError),
        "timedelta": (np.arange(600).astype("timedelta64[s]").reshape(200, 3), TypeError),
        "empty": (np.zeros((0, 3)), ValueError),
        "meta": (torch.zeros(200, 3, device="meta"), ValueError),
        "NaN": (np.full((200, 3), np.nan), ValueError),
        "string": (np.full((200, 3), "1"), TypeError),
    }


_EQUATIONS = {
    "mrf.integrated_autocorrelation_time": (mrf.integrated_autocorrelation_time, "x"),
    "mrf.effective_sample_size": (mrf.effective_sample_size, "x"),
    "mrf.gelman_rubin": (mrf.gelman_rubin, "x"),
    "mrf.ais_standard_error": (mrf.ais_standard_error, "log_w"),
    "metrics.kid": (lambda x: metrics.kid(x, _POINTS[:, :3], n_subsets=2), "real"),
    "metrics.nearest_neighbour_distance":
        (lambda x: metrics.nearest_neighbour_distance(x, _POINTS[:, :3]), "samples"),
    "metrics.memorisation_ratio":
        (lambda x: metrics.memorisation_ratio(x, _POINTS[:, :3], _POINTS[::-1, :3] + 0.1),
         "samples"),
    "metrics.mean_pairwise_distance": (metrics.mean_pairwise_distance, "X"),
}


@pytest.mark.parametrize("bad", list(_bad_values()))
@pytest.mark.parametrize("function", list(_EQUATIONS))
def test_equation_functions_refuse_what_they_cannot_compute(function, bad):
    fn, name = _EQUATIONS[function]
    value, error = _bad_values()[bad]
    with pytest.raises(error) as info:
        fn(value)
    assert name in str(info.value), str(info.value)


@pytest.mark.parametrize("function", list(_EQUATIONS))
def test_equation_functions_stay_finite_near_1e300(function):
    fn, name = _EQUATIONS[function]
    big = 1e300 * (_TRACE[:30] if "metrics" in function else _TRACE)
    if function == "metrics.kid":  # KID's cubic kernel is about 1e1800 here: no float64 holds it
        with pytest.raises(ValueError, match="real.*overflow"):
            fn(big)
        return
    result = fn(big)
    assert np.all(np.isfinite(result)), f"{function} returned {result}"


def test_scale_free_statistics_do_not_change_with_the_scale():
    for fn in (mrf.integrated_autocorrelation_time, mrf.effective_sample_size, mrf.gelman_rubin):
        assert fn(1e300 * _TRACE) == pytest.approx(fn(_TRACE), rel=1e-9)
        assert fn(1e-300 * _TRACE) == pytest.approx(fn(_TRACE), rel=1e-9)
    x = _POINTS[:, :3]
    assert metrics.mean_pairwise_distance(1e300 * x) == pytest.approx(
        1e300 * metrics.mean_pairwise_distance(x), rel=1e-12)
    np.testing.assert_allclose(metrics.nearest_neighbour_distance(1e300 * x[:5], 1e300 * x[5:]),
                               1e300 * metrics.nearest_neighbour_distance(x[:5], x[5:]),
                               rtol=1e-12)
    assert metrics.memorisation_ratio(1e300 * x[:10], 1e300 * x[10:20], 1e300 * x[20:]) == \
        pytest.approx(metrics.memorisation_ratio(x[:10], x[10:20], x[20:]), rel=1e-12)


def test_as_real_array():
    out = _core.as_real_array(torch.arange(4, dtype=torch.int32), "x")
    assert out.dtype == np.float64 and out.tolist() == [0, 1, 2, 3]
    source = np.ones(3)
    out = _core.as_real_array(source, "x")
    out[0] = 5
    assert source[0] == 1  # a copy
    with pytest.raises(ValueError, match="p must be >= 0"):
        _core.as_real_array([0.5, -0.1], "p", nonnegative=True)
    with pytest.raises(ValueError, match="p contains NaN"):
        _core.as_real_array([0.5, np.nan], "p", finite=False, nonnegative=True)
    with pytest.raises(ValueError, match="x needs at least 2 values"):
        _core.as_real_array([1.0], "x", min_size=2)
    with pytest.raises(ValueError, match="meta"):
        _core.as_tensor(torch.zeros(2, device="meta"), "x")
    with pytest.raises(ValueError, match="q must be > 0"):
        _core.as_real_array(np.array([1.0, 0.0]), "q", positive=True)


def test_as_real_array_keeps_tensors_and_their_gradients():
    mean = torch.zeros(3, requires_grad=True)
    out = _core.as_real_array(mean, "mean", keep_tensor=True)
    assert out is mean
    (out * 2).sum().backward()
    assert mean.grad.tolist() == [2.0, 2.0, 2.0]
    assert _core.as_real_array(torch.arange(3), "k", keep_tensor=True).dtype == torch.float64
    with pytest.raises(ValueError, match="logits contains NaN"):
        _core.as_real_array(torch.tensor([0.0, float("nan")]), "logits", keep_tensor=True)
    with pytest.raises(ValueError, match="p must be >= 0"):
        _core.as_real_array(torch.tensor([0.5, -1.0]), "p", nonnegative=True, keep_tensor=True)
    with pytest.raises(ValueError, match="meta"):
        _core.as_real_array(torch.zeros(2, device="meta"), "p", keep_tensor=True)
    with pytest.raises(ValueError, match="p is empty"):
        _core.as_real_array(torch.zeros(0), "p", keep_tensor=True)


# ===================================================================== image bit depth


def _save(path, array, **kw):
    from PIL import Image

    Image.fromarray(array, **kw).save(path)


def test_load_image_folder_scales_16_bit_files_by_their_depth(tmp_path):
    dark = np.full((8, 8), 200, dtype=np.uint16)  # below 255: must not be read as 8-bit
    bright = np.full((8, 8), 200, dtype=np.uint16)
    bright[0, 0] = 60000
    for name, arr in (("a_dark.png", dark), ("b_bright.png", bright), ("c_dark.tif", dark)):
        _save(tmp_path / name, arr)
    X = data.load_image_folder(tmp_path, 8)
    assert X[0, 0, 4, 4] == pytest.approx(200 / 65535) and X[1, 0, 4, 4] == X[0, 0, 4, 4]
    assert X[2, 0, 4, 4] == X[0, 0, 4, 4]


def test_load_image_folder_refuses_32_bit_integer_files(tmp_path):
    """A 32-bit integer image has no brightness scale of its own: a dark one used to be read
    on the 8-bit scale (its maximum was small), a bright one on the 16-bit scale."""
    _save(tmp_path / "deep.tif", np.full((8, 8), 200, dtype=np.int32))
    with pytest.raises(ValueError, match="deep.tif.*32-bit"):
        data.load_image_folder(tmp_path, 8)


def test_load_image_folder_8_bit_files_unchanged(tmp_path):
    _save(tmp_path / "a.png", np.full((8, 8), 51, dtype=np.uint8))
    assert data.load_image_folder(tmp_path, 8)[0, 0, 0, 0] == pytest.approx(0.2)


# ===================================================================== seeds


@pytest.mark.parametrize("seed", [2**64 - 1, 2**64 - 2, 2**63])
def test_gan_accepts_the_largest_seeds(seed):
    from course_lib.gan import GAN

    X = np.random.default_rng(0).random((8, 2))

    def fitted():
        return GAN(n_steps=2, batch_size=4, hidden=4, rejection=False, random_state=seed,
                   progress=False, device="cpu").fit(X)

    a, b = fitted().sample(3), fitted().sample(3)
    np.testing.assert_array_equal(a, b)


def test_seeded_and_generators_wrap_at_2_to_the_64():
    from course_lib.training import NeuralEstimator, seeded

    g1 = NeuralEstimator._seeded_generator(2**64, "cpu")
    g2 = NeuralEstimator._seeded_generator(0, "cpu")
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))
    with seeded(2**64 + 5):
        a = torch.rand(2)
    with seeded(5):
        b = torch.rand(2)
    assert torch.equal(a, b)


def test_the_evaluation_protocol_passes_valid_seeds_from_the_largest_seed():
    seeds = [metrics.protocol._draw(lambda n, s: s, d, 3, 2**64 - 1) for d in range(3)]
    assert seeds == [2**64 - 1, 0, 1]
    assert all(_core.check_seed(s) == s for s in seeds)
