"""The chapters' equation functions (gan.py, vae.py) refuse what they cannot compute (issue 25):
None, complex numbers, dates, empty input and tensors on the ``meta`` device get a clear
TypeError/ValueError naming the argument; NaN densities are refused where a NaN would come
back silently."""

import numpy as np
import pytest
import torch

from course_lib import gan, vae

BAD = {
    "None": None,
    "complex": np.array([1.0 + 2.0j, 0.5]),
    "dates": np.array(["2020-01-01", "2021-01-01"], dtype="datetime64[D]"),
    "empty": np.zeros((0,)),
    "meta": torch.empty(2, device="meta"),
}

VAE_CALLS = {
    "vae.reparameterize": (lambda b: vae.reparameterize(b, np.zeros(2), np.zeros(2)), "mean"),
    "vae.gaussian_kl": (lambda b: vae.gaussian_kl(np.zeros(2), b), "log_var"),
    "vae.iwae_log_likelihood": (lambda b: vae.iwae_log_likelihood(b), "log_weights"),
    "vae.iwae_curve": (lambda b: vae.iwae_curve(b, [1]), "log_weights"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("call", sorted(VAE_CALLS))
def test_vae_equations_refuse_what_holds_no_real_numbers(call, kind):
    fn, name = VAE_CALLS[call]
    with pytest.raises((TypeError, ValueError), match=name):
        fn(BAD[kind])


def test_iwae_refuses_nan_and_positive_infinity_but_keeps_zero_weights():
    for bad in (float("nan"), float("inf")):
        with pytest.raises(ValueError, match="log_weights"):
            vae.iwae_log_likelihood(torch.tensor([[0.0, bad]]))
    value = vae.iwae_log_likelihood(torch.tensor([[0.0, -float("inf")]], dtype=torch.float64))
    assert torch.allclose(value, torch.tensor([np.log(0.5)], dtype=torch.float64))
    big = vae.iwae_log_likelihood(torch.full((1, 3), 1e300, dtype=torch.float64))
    assert torch.isfinite(big).all()


def test_reparameterize_keeps_the_gradient_and_lets_nan_reach_the_divergence_guard():
    mean = torch.zeros(2, 3, requires_grad=True)
    z = vae.reparameterize(mean, torch.zeros(2, 3), torch.ones(2, 3))
    z.sum().backward()
    assert torch.equal(mean.grad, torch.ones(2, 3))
    assert torch.isnan(vae.reparameterize(torch.tensor([float("nan")]), torch.zeros(1),
                                          torch.zeros(1))).all()


GRID = np.linspace(-5.0, 5.0, 11)
DENSITY = np.exp(-GRID**2 / 2) / np.sqrt(2 * np.pi)
GAN_CALLS = {
    "gan.optimal_discriminator": (lambda b: gan.optimal_discriminator(b, b), "p"),
    "gan.jensen_shannon": (lambda b: gan.jensen_shannon(DENSITY[:2], b, 1.0), "q"),
    "gan.density_ratio_logit": (lambda b: gan.density_ratio_logit(b, np.ones(2)), "p"),
    "gan.acceptance_probability": (lambda b: gan.acceptance_probability(b, 0.0), "logits"),
    "gan.kl_divergence": (lambda b: gan.kl_divergence(b, DENSITY[:2], 1.0), "p"),
}


@pytest.mark.parametrize("kind", sorted(BAD))
@pytest.mark.parametrize("call", sorted(GAN_CALLS))
def test_gan_equations_refuse_what_holds_no_real_numbers(call, kind):
    fn, name = GAN_CALLS[call]
    with pytest.raises((TypeError, ValueError), match=name):
        fn(BAD[kind])


@pytest.mark.parametrize("value", [float("nan"), -1.0])
def test_gan_density_functions_refuse_nan_and_negative_densities(value):
    bad = np.array([0.5, value])
    for fn in (lambda: gan.optimal_discriminator(bad, np.ones(2)),
               lambda: gan.jensen_shannon(bad, np.ones(2), 1.0),
               lambda: gan.density_ratio_logit(bad, np.ones(2))):
        with pytest.raises(ValueError, match="p"):
            fn()


def test_gan_density_functions_stay_finite_near_the_float64_limit():
    huge, reverse = np.array([1e308, 1e308, 2e307]), np.array([2e307, 1e308, 1e308])
    d_star = gan.optimal_discriminator(huge, reverse)
    assert np.all(np.isfinite(d_star)) and np.allclose(d_star, [5 / 6, 0.5, 1 / 6])
    t = gan.optimal_discriminator(torch.tensor(huge), torch.tensor(reverse))
    assert torch.allclose(t, torch.as_tensor(d_star))
    assert gan.optimal_discriminator(np.zeros(1), np.zeros(1))[0] == 0.5
    assert np.isfinite(gan.jensen_shannon(huge, huge, 1e-300))
    with pytest.raises(ValueError, match="overflows"):
        gan.jensen_shannon(np.array([1e300, 0.0]), np.array([0.0, 1e300]), 1e10)


def test_acceptance_probability_takes_one_log_m_or_one_per_logit():
    logits = torch.tensor([0.0, -1.0, 2.0])
    assert torch.allclose(gan.acceptance_probability(logits, 1.0),
                          torch.exp(torch.tensor([-1.0, -2.0, 0.0])))
    per_sample = gan.acceptance_probability(logits, torch.tensor([0.0, -1.0, 3.0]))
    assert torch.allclose(per_sample, torch.exp(torch.tensor([0.0, 0.0, -1.0])))
    with pytest.raises(ValueError, match="log_m"):
        gan.acceptance_probability(logits, torch.tensor([0.0, float("nan"), 3.0]))
