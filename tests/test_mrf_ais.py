"""The held-out likelihood of the pairwise MRF: AIS estimate of log Z against enumeration.

A 4×4 'image' (D = 16 pixels, 2**16 = 65,536 states) with the PairwiseMRF's own
parametrisation is small enough to enumerate, so every number of the AIS path (log Z,
log p(x), bits per pixel) is checked against the exact one, computed here independently
with numpy.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from _shared import CPU
from sklearn.exceptions import NotFittedError

from course_lib import mrf


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _model(device, seed=0, coupling=0.3, field=0.5, shape=(1, 4, 4)):
    """A PairwiseMRF on ``device`` over ``shape`` images with random couplings and biases,
    set by hand."""
    g = torch.Generator().manual_seed(seed)
    D = math.prod(shape)
    U = torch.randn(D, D, generator=g) * coupling
    model = mrf.PairwiseMRF(device=device)
    model.W_ = ((U + U.T) / math.sqrt(2) * (1 - torch.eye(D))).to(device)
    model.b_ = (torch.randn(D, generator=g) * field).to(device)
    model.image_shape_ = shape
    return model


def _exact(model):
    """All states s ∈ {-1, 1}^D, their exact log p(s), and log Z, by enumeration (numpy)."""
    W, b = model.W_.double().cpu().numpy(), model.b_.double().cpu().numpy()
    s = np.array(list(itertools.product([-1.0, 1.0], repeat=len(b))))
    log_f = 0.5 * np.einsum("ni,ij,nj->n", s, W, s) + s @ b
    top = log_f.max()
    log_z = top + math.log(np.exp(log_f - top).sum())
    return s, log_f - log_z, log_z


def _images(model, s):
    return torch.as_tensor((s + 1) / 2, dtype=torch.float32).reshape(len(s), *model.image_shape_)


@pytest.mark.parametrize("seed, coupling", [(0, 0.3), (1, 0.5)])
def test_ais_log_partition_matches_enumeration(seed, coupling, device):
    model = _model(device, seed, coupling)
    _, _, exact = _exact(model)
    est, log_w = model.estimate_log_partition(
        n_chains=400, n_steps=200, seed=0, return_weights=True
    )
    se = mrf.ais_standard_error(log_w)
    assert log_w.shape == (400,)
    assert 0 < se < 0.1
    assert abs(est - exact) < 4 * se + 1e-3, (est, exact, se)
    # the couplings matter: the field-only start alone is far from log Z
    b = model.b_.double()
    assert abs(float(torch.logaddexp(b, -b).sum()) - exact) > 1.0


def test_ais_is_unbiased_for_z_and_low_for_log_z(device):
    """E[w] = Z / Z_0 exactly, so exp(estimate) is unbiased for Z and, by Jensen's
    inequality, the estimate of log Z is low on average. Very cheap runs (two chains, ten
    temperatures) make the gap large enough to see over 300 independent runs."""
    model = _model(device, seed=2, coupling=0.3)
    _, _, exact = _exact(model)
    est = np.array(
        [model.estimate_log_partition(n_chains=2, n_steps=10, seed=k) for k in range(300)]
    )
    ratio = np.exp(est - exact)  # Ẑ / Z, unbiased for 1
    assert abs(ratio.mean() - 1) < 3 * ratio.std(ddof=1) / math.sqrt(len(ratio))
    assert est.mean() < exact - 3 * est.std(ddof=1) / math.sqrt(len(est))


def test_no_couplings_gives_exact_independent_bernoulli(device):
    """With W = 0 the model is independent Bernoulli pixels: AIS has nothing to anneal (every
    weight is 1) and the bits per pixel are the Bernoulli cross-entropy, in closed form."""
    model = _model(device, seed=3)
    model.W_ = torch.zeros_like(model.W_)
    est, log_w = model.estimate_log_partition(n_chains=10, n_steps=5, seed=0, return_weights=True)
    np.testing.assert_array_equal(log_w, 0.0)
    p = torch.sigmoid(2 * model.b_.double()).cpu().numpy()  # P(pixel = 1)
    X = (np.random.default_rng(0).random((50, 16)) < 0.5).astype(np.float32)
    bern = -(X * np.log2(p) + (1 - X) * np.log2(1 - p)).sum(1).mean() / 16
    assert model.bits_per_pixel(X.reshape(50, 1, 4, 4)) == pytest.approx(bern, abs=1e-6)


def test_score_samples_and_bits_per_pixel_match_enumeration(device):
    model = _model(device, seed=4)
    s, log_p, log_z = _exact(model)
    X = _images(model, s)
    # with the exact log Z, score_samples is the exact log-likelihood of every state
    got = model.score_samples(X, log_partition=log_z)
    np.testing.assert_allclose(got, log_p, atol=1e-6)
    # with the AIS estimate, it is off by the estimate's error only
    est, log_w = model.estimate_log_partition(seed=0, return_weights=True)
    se = mrf.ais_standard_error(log_w)
    rows = np.random.default_rng(1).choice(len(s), 300)
    exact_bpp = -log_p[rows].mean() / (16 * math.log(2))
    bpp = model.bits_per_pixel(X[rows], seed=0)
    assert bpp == pytest.approx(model.bits_per_pixel(X[rows], log_partition=est))
    assert abs(bpp - exact_bpp) < (4 * se + 1e-3) / (16 * math.log(2))
    # grey images through threshold=, like fit and pseudo_log_likelihood
    grey = X[rows] * 0.8 + 0.1
    assert model.bits_per_pixel(grey, threshold=0.5, log_partition=log_z) == pytest.approx(
        exact_bpp
    )


@pytest.mark.cpu_only("same seed, same result is promised bit for bit on the CPU only")
def test_same_seed_same_estimate():
    model = _model(CPU, seed=5)
    a = model.estimate_log_partition(n_chains=50, n_steps=20, seed=7)
    assert a == model.estimate_log_partition(n_chains=50, n_steps=20, seed=7)
    assert a != model.estimate_log_partition(n_chains=50, n_steps=20, seed=8)
    X = _images(model, np.ones((3, 16)))
    assert model.bits_per_pixel(X, seed=3) == model.bits_per_pixel(X, seed=3)


@pytest.mark.parametrize(
    "name, call",
    [
        ("X", lambda m: m.score_samples(np.full((2, 1, 4, 4), 0.5), log_partition=1.0)),
        ("X", lambda m: m.bits_per_pixel(np.zeros((2, 1, 8, 8)), log_partition=1.0)),
        ("X", lambda m: m.bits_per_pixel(np.zeros((2, 16)), log_partition=1.0)),
        ("X", lambda m: m.bits_per_pixel(np.full((2, 1, 4, 4), np.nan), log_partition=1.0)),
        ("log_partition", lambda m: m.score_samples(np.zeros((2, 1, 4, 4)), log_partition=np.inf)),
        ("n_chains", lambda m: m.estimate_log_partition(n_chains=1)),
        ("n_steps", lambda m: m.estimate_log_partition(n_steps=0)),
        ("seed", lambda m: m.estimate_log_partition(seed=-1)),
        ("log_w", lambda m: mrf.ais_standard_error([1.0])),
        ("log_w", lambda m: mrf.ais_standard_error([1.0, np.nan])),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_names_the_argument(name, call, device):
    with pytest.raises(ValueError, match=name):
        call(_model(device))


def test_return_weights_must_be_a_flag(device):
    with pytest.raises(TypeError, match="return_weights"):
        _model(device).estimate_log_partition(return_weights="yes")


@pytest.mark.parametrize("method", ["estimate_log_partition", "score_samples", "bits_per_pixel"])
def test_unfitted_model_refuses(method, device):
    args = () if method == "estimate_log_partition" else (np.zeros((2, 1, 4, 4)),)
    with pytest.raises(NotFittedError, match="fit"):
        getattr(mrf.PairwiseMRF(device=device), method)(*args)
