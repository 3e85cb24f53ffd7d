"""Issue 12 (MRF part) and the errata computations: fits that cannot succeed raise, refits start
clean, a failed refit changes nothing, the scikit-learn estimator interface, the graph-cut
memory guard; log Z by annealed importance sampling; the likelihood gradient."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _shared import CPU
from sklearn.base import clone

from course_lib import mrf
from course_lib.mrf import denoise as denoise_module


@pytest.fixture(scope="module")
def ising_data(device):
    return mrf.IsingModel(beta=0.3).sample(16, (16, 16), seed=0, device=device)


def test_pseudolikelihood_refuses_all_equal_spins():
    for data in (torch.ones(4, 8, 8), -torch.ones(2, 6, 6)):
        for fit_h in (False, True):
            with pytest.raises(ValueError, match="no finite maximiser"):
                mrf.IsingModel().fit(data, fit_h=fit_h)


def test_sml_with_a_huge_step_raises_naming_lr(ising_data, device):
    model = mrf.IsingModel(beta=0.2)
    with pytest.raises(RuntimeError, match="lr"):
        model.fit(ising_data, method="sml", lr=1e6, n_iter=50, seed=0, device=device)
    assert not hasattr(model, "beta_")  # the failed fit left the model as it was


def test_refit_starts_clean_and_failed_refit_changes_nothing(ising_data, device):
    model = mrf.IsingModel(beta=0.3, h=0.0)
    model.fit(ising_data, method="sml", n_iter=60, seed=0, device=device)
    first = model.beta_
    again = mrf.IsingModel(beta=0.3, h=0.0).fit(ising_data, method="sml", n_iter=60, seed=0,
                                                device=device)
    # refit: same start, same result
    model.fit(ising_data, method="sml", n_iter=60, seed=0, device=device)
    assert model.beta_ == first == again.beta_
    before = (model.beta_, model.h_, model.history_)
    with pytest.raises(ValueError):
        model.fit(torch.ones(2, 8, 8))
    assert (model.beta_, model.h_, model.history_) == before


def test_pairwise_failed_refit_keeps_previous_fit(device):
    X = (torch.rand((40, 1, 8, 8), generator=torch.Generator().manual_seed(0)) < 0.4).float()
    model = mrf.PairwiseMRF(device=device).fit(X, n_epochs=5, seed=0)
    W, b, shape = model.W_.clone(), model.b_.clone(), model.image_shape_
    with pytest.raises(ValueError):
        model.fit(np.full((5, 1, 6, 6), 0.5), n_epochs=5)
    assert torch.equal(model.W_, W) and torch.equal(model.b_, b) and model.image_shape_ == shape
    model.sample(2, n_sweeps=1, seed=0)  # still usable


def test_denoiser_failed_em_changes_nothing():
    d = mrf.BinaryDenoiser(noise_rate=0.1)
    with pytest.raises(ValueError):
        d.fit_noise_rate(np.full((6, 6), 2))
    assert not hasattr(d, "noise_rate_")


@pytest.mark.parametrize(
    "estimator",
    [
        mrf.IsingModel(beta=0.5, J=1, h=0.1, periodic=False),
        mrf.BinaryDenoiser(coupling=0.8, noise_rate=0.1),
        mrf.BinaryDenoiser(data_weight=1.5),
        mrf.PairwiseMRF(l2=1e-2, n_chains=10, device=CPU),  # a parameter only: nothing runs
    ],
    ids=lambda e: type(e).__name__,
)
def test_sklearn_clone_and_params(estimator):
    copy = clone(estimator)
    assert copy.get_params() == estimator.get_params() and copy is not estimator
    params = estimator.get_params()
    key = next(iter(params))
    assert copy.set_params(**{key: params[key]}) is copy


def test_set_params_is_validated_when_used():
    model = mrf.IsingModel().set_params(beta=-1.0)
    with pytest.raises(ValueError, match="beta"):
        model.sample(1, (4, 4))


def test_flags_must_be_real_booleans(device):
    with pytest.raises(TypeError, match="periodic"):
        mrf.IsingModel(periodic="False").energy(np.ones((4, 4)))  # validated where used
    with pytest.raises(TypeError, match="return_stats"):
        mrf.IsingModel().sample(1, (4, 4), return_stats="False")
    with pytest.raises(TypeError, match="return_history"):
        mrf.BinaryDenoiser(noise_rate=0.1).denoise(np.zeros((4, 4)), return_history="False")
    with pytest.raises(TypeError, match="progress"):
        mrf.PairwiseMRF(device=device).fit(np.zeros((3, 1, 8, 8)), progress="no")


def test_graph_cut_validates_the_device():
    d = mrf.BinaryDenoiser(noise_rate=0.1)
    with pytest.raises((ValueError, TypeError), match="device"):
        d.denoise(np.zeros((4, 4)), method="graphcut", device="gpu")


def test_graph_cut_refuses_an_image_that_will_not_fit(monkeypatch):
    monkeypatch.setattr(denoise_module, "_available_memory_bytes", lambda: 2**30)  # 1 GiB
    d = mrf.BinaryDenoiser(noise_rate=0.1)
    big = np.zeros((6000, 6000), dtype=np.uint8)
    with pytest.raises(MemoryError, match="GiB"):
        d.denoise(big, method="graphcut")
    small = np.zeros((20, 20), dtype=np.uint8)
    assert d.denoise(small, method="graphcut").shape == (20, 20)  # a small one still works


# --------------------------------------------------------------- errata 1 and 2, computed


@pytest.mark.parametrize("shape, periodic, beta, h", [((4, 4), True, 0.4, 0.0),
                                                      ((3, 5), False, 0.6, 0.2)])
def test_ais_estimate_of_log_z_matches_enumeration(shape, periodic, beta, h, device):
    """AIS never enumerates; its estimate agrees with the exact log Z within 4 standard
    errors, and it is not the log of the largest weight (what a 'numerator' would give)."""
    model = mrf.IsingModel(beta=beta, h=h, periodic=periodic)
    est, logw = model.estimate_log_partition(shape, n_chains=400, n_steps=100, seed=0,
                                             device=device, return_weights=True)
    w = np.exp(logw - logw.max())
    stderr = w.std() / w.mean() / math.sqrt(len(w))  # delta method: se of log mean(w)
    exact = model.log_partition(shape)
    assert abs(est - exact) < 4 * stderr + 1e-3, (est, exact, stderr)
    states, _ = model.exact_distribution(shape)
    log_numerator_max = float((-beta * model.energy(states)).max())
    assert exact - log_numerator_max > 0.5  # Z is far more than any one image's score


def test_likelihood_gradient_is_data_minus_model_expectation(device):
    """d/dβ of the exact mean log-likelihood (finite difference) = E_data[φ] − E_model[φ]."""
    shape, beta = (3, 3), 0.35
    data = mrf.IsingModel(beta=0.5).sample(300, shape, seed=1, device=device)
    phi = lambda x: -mrf.IsingModel(beta=1.0).energy(x).double()  # noqa: E731
    phi_data = float(phi(data).mean())

    def loglik(b):
        return b * phi_data - mrf.IsingModel(beta=b).log_partition(shape)

    eps = 1e-5
    fd = (loglik(beta + eps) - loglik(beta - eps)) / (2 * eps)
    states, probs = mrf.IsingModel(beta=beta).exact_distribution(shape)
    grad = phi_data - float((probs * phi(states)).sum())
    assert fd == pytest.approx(grad, abs=1e-6)
    assert abs(fd - phi_data) > 0.5  # the data term alone (Z ignored) is wrong
