"""The divergence view of the GAN losses, eq. (5.4) [gan-js] and eq. (5.9) [gan-ns-div], checked
on 1D densities that are known exactly; and the Wasserstein critic's loss and gradient penalty,
eq. (5.10) [gan-wgan-gp].

With the optimal discriminator D* = p / (p + q_θ0) held fixed, the generator's gradient at θ0 is
computed by autograd through the reparameterised sample x = θ + s z (the expectation over z by a
fine quadrature), and compared with the finite-difference gradient of the divergence computed by
``gan.jensen_shannon`` / ``gan.nonsaturating_divergence`` on a grid in x:

- minimax loss E log(1 − D*(G_θ(z))): the gradient of 2 JS(p ‖ q_θ);
- non-saturating loss −E log D*(G_θ(z)): the gradient of KL(q_θ ‖ p) − 2 JS(p ‖ q_θ)
  (Arjovsky & Bottou 2017), which is NOT the gradient of 2 JS.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib import gan

S = 0.5  # the generator's spread: q_θ = N(θ, S²)
X = np.linspace(-12.0, 12.0, 48_001)
DX = X[1] - X[0]
Z = torch.linspace(-9.0, 9.0, 36_001, dtype=torch.float64)
WZ = torch.exp(-0.5 * Z**2) / math.sqrt(2 * math.pi) * (Z[1] - Z[0])


def _normal(x, mu, s):
    return np.exp(-0.5 * ((x - mu) / s) ** 2) / (s * math.sqrt(2 * math.pi))


def _p_np(x):  # the data: two modes
    return 0.5 * _normal(x, -2.0, 0.5) + 0.5 * _normal(x, 2.0, 0.5)


def _p_t(x):
    def n(mu):
        return torch.exp(-0.5 * ((x - mu) / 0.5) ** 2) / (0.5 * math.sqrt(2 * math.pi))
    return 0.5 * n(-2.0) + 0.5 * n(2.0)


def _q_t(x, theta0):
    return torch.exp(-0.5 * ((x - theta0) / S) ** 2) / (S * math.sqrt(2 * math.pi))


def _generator_gradient(theta0: float, loss: str) -> float:
    """d/dθ of the generator's loss at θ0 with D* = p / (p + q_θ0) FIXED, by autograd."""
    theta = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    x = theta + S * Z  # G_θ(z)
    p, q0 = _p_t(x), _q_t(x, theta0)  # q0: θ0 is a number, so D* does not move with θ
    log_d = torch.log(p) - torch.log(p + q0)
    log_1md = torch.log(q0) - torch.log(p + q0)
    value = (WZ * (log_1md if loss == "minimax" else -log_d)).sum()
    (grad,) = torch.autograd.grad(value, theta)
    return float(grad)


def _divergence_gradient(theta0: float, divergence, h: float = 1e-4) -> float:
    def f(theta):
        return divergence(_p_np(X), _normal(X, theta, S), DX)
    return (f(theta0 + h) - f(theta0 - h)) / (2 * h)


def _two_js(p, q, dx):
    return 2.0 * gan.jensen_shannon(p, q, dx)


@pytest.mark.parametrize("theta0", [-0.7, 0.3, 1.2, 2.6])
def test_minimax_gradient_is_that_of_twice_js(theta0):
    g = _generator_gradient(theta0, "minimax")
    d = _divergence_gradient(theta0, _two_js)
    assert abs(d) > 1e-3  # a real slope, not two zeros agreeing
    assert g == pytest.approx(d, rel=1e-4, abs=1e-7)


@pytest.mark.parametrize("theta0", [-0.7, 0.3, 1.2, 2.6])
def test_nonsaturating_gradient_is_that_of_reverse_kl_minus_twice_js(theta0):
    g = _generator_gradient(theta0, "non-saturating")
    d = _divergence_gradient(theta0, gan.nonsaturating_divergence)
    assert abs(d) > 1e-3
    assert g == pytest.approx(d, rel=1e-4, abs=1e-7)
    # ... and it is not the gradient of JS (up to sign and factor, the minimax loss's)
    d_js = _divergence_gradient(theta0, _two_js)
    assert abs(g + d_js) > 0.05 * abs(g) and abs(g - d_js) > 0.05 * abs(g)


def test_kl_divergence_known_values_and_order():
    # KL between two Gaussians: log(s2/s1) + (s1² + (m1 − m2)²) / (2 s2²) − 1/2
    p, q = _normal(X, 0.0, 1.0), _normal(X, 1.0, 2.0)
    exact = math.log(2.0) + (1.0 + 1.0) / 8.0 - 0.5
    assert gan.kl_divergence(p, q, DX) == pytest.approx(exact, abs=1e-6)
    exact_rev = math.log(0.5) + (4.0 + 1.0) / 2.0 - 0.5
    assert gan.kl_divergence(q, p, DX) == pytest.approx(exact_rev, abs=1e-5)  # tails past ±12
    assert gan.kl_divergence(p, p, DX) == pytest.approx(0.0, abs=1e-12)
    # forward KL is infinite where the model has no mass and the data has some
    q0 = np.where(X > 0, 2 * _normal(X, 0.0, 1.0), 0.0)
    assert gan.kl_divergence(p, q0, DX) == math.inf
    assert np.isfinite(gan.kl_divergence(q0, p, DX))


def test_forward_kl_covers_reverse_kl_seeks_a_mode():
    """Fitting q = N(μ, S²) to the two-mode p: forward KL puts μ between the modes (0), the
    reverse KL on one of them (±2), and the non-saturating divergence too."""
    p = _p_np(X)
    mus = np.linspace(-3.0, 3.0, 121)
    fwd = [gan.kl_divergence(p, _normal(X, m, S), DX) for m in mus]
    rev = [gan.kl_divergence(_normal(X, m, S), p, DX) for m in mus]
    ns = [gan.nonsaturating_divergence(p, _normal(X, m, S), DX) for m in mus]
    assert abs(mus[int(np.argmin(fwd))]) < 0.05
    assert abs(abs(mus[int(np.argmin(rev))]) - 2.0) < 0.1
    assert abs(abs(mus[int(np.argmin(ns))]) - 2.0) < 0.1


def test_divergence_functions_refuse_bad_input():
    p = _normal(X[:10], 0.0, 1.0)
    with pytest.raises(ValueError, match="p and q"):
        gan.kl_divergence(p, p[:5], 0.1)
    with pytest.raises(ValueError, match=r"\bq\b.*(>= 0|non-negative)|non-negative"):
        gan.kl_divergence(p, -p, 0.1)
    with pytest.raises(ValueError, match="dx"):
        gan.nonsaturating_divergence(p, p, 0.0)


# ------------------------------------------------------------------ WGAN-GP, eq. (5.10)


def test_critic_loss_and_wasserstein_generator_loss():
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-2.0, 0.0, 5.0])
    assert float(gan.critic_loss(real, fake)) == pytest.approx(1.0 - 2.0)
    assert float(gan.generator_loss(fake, "wasserstein")) == pytest.approx(-1.0)


def test_gradient_penalty_on_a_linear_critic():
    """f(x) = w·x has gradient w everywhere: the penalty is (‖w‖ − 1)², whatever the points."""
    torch.manual_seed(0)
    for w_norm in (0.3, 1.0, 2.5):
        critic = torch.nn.Linear(3, 1, bias=True)
        with torch.no_grad():
            critic.weight.copy_(torch.tensor([[2.0, -1.0, 2.0]]) / 3.0 * w_norm)
        gp = gan.gradient_penalty(critic, torch.randn(7, 3), torch.randn(7, 3))
        assert float(gp) == pytest.approx((w_norm - 1.0) ** 2, abs=1e-6)


def test_gradient_penalty_uses_interpolates_and_is_reproducible():
    """On f(x) = ‖x‖²/2 the gradient at x̂ is x̂ itself, so the penalty depends on where the
    interpolates fall: checked against ε drawn from the same generator."""
    critic = lambda x: 0.5 * (x**2).sum(1, keepdim=True)  # noqa: E731
    xr, xf = torch.randn(16, 2), torch.randn(16, 2) * 3
    g1 = gan.gradient_penalty(critic, xr, xf, generator=torch.Generator().manual_seed(5))
    g2 = gan.gradient_penalty(critic, xr, xf, generator=torch.Generator().manual_seed(5))
    eps = torch.rand(16, 1, generator=torch.Generator().manual_seed(5))
    x_hat = eps * xr + (1 - eps) * xf
    expected = ((x_hat.norm(dim=1) - 1) ** 2).mean()
    assert float(g1) == float(g2) == pytest.approx(float(expected), rel=1e-6)


def test_wasserstein_gan_fits_and_refuses_r1():
    from course_lib.data import ring_of_gaussians
    X, _ = ring_of_gaussians(512, seed=0)
    g = gan.GAN(loss="wasserstein", n_critic=2, n_steps=30, rejection=False, random_state=0,
                progress=False).fit(X)
    h = g.history_
    assert len(h["loss_d"]) == 30 and all(np.isfinite(h["r1"]))  # r1 holds the gradient penalty
    assert g.sample(5, seed=0).shape == (5, 2)
    g2 = gan.GAN(loss="wasserstein", n_critic=2, n_steps=30, rejection=False, random_state=0,
                 progress=False).fit(X)
    assert np.array_equal(g.sample(50, seed=1), g2.sample(50, seed=1))
    with pytest.raises(ValueError, match="r1"):
        gan.GAN(loss="wasserstein", r1=0.1, n_steps=2).fit(X)
    with pytest.raises(ValueError, match="n_critic"):
        gan.GAN(n_critic=0, n_steps=2).fit(X)
