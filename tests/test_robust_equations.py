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
