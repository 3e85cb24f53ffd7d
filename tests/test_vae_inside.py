"""Inside the ELBO: the two gradient estimators (reparameterised and score-function), the
evidence identity log p(x) = ELBO + KL(q || p(z|x)) and its split into approximation and
amortisation gaps, rate and distortion, active units, and free bits."""

import math

import numpy as np
import pytest
import torch
from test_vae import _linear_gaussian_vae, _orthogonal_problem

from course_lib import vae
from course_lib.data import load_digits
from course_lib.vae import VAE

D64 = torch.float64

# ---------------------------------------------------------------- gradient estimators


def _draws(seed, S=200_000):
    return torch.randn(S, dtype=D64, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_both_gradient_estimators_are_unbiased_and_reparameterisation_has_lower_variance(seed):
    """f(z) = z² under N(μ, σ²): E f = μ² + σ², so d/dμ E f = 2μ exactly. Both estimators
    average to it (within 4 standard errors); the reparameterised one, 2(μ + σε), has
    variance 4σ², the score-function one (without a baseline) many times more."""
    mu, sigma = 1.5, 0.7
    f = lambda z: z**2  # noqa: E731
    eps = _draws(seed)
    rep = vae.reparam_gradient(f, mu, sigma, eps)
    score = vae.score_function_gradient(f, mu, sigma, mu + sigma * _draws(seed + 100))
    exact = 2 * mu
    for g in (rep, score):
        se = float(g.std()) / math.sqrt(len(g))
        assert abs(float(g.mean()) - exact) < 4 * se, (float(g.mean()), se)
    torch.testing.assert_close(rep, 2 * (mu + sigma * eps))  # f'(μ + σε), through autograd
    assert float(rep.var()) == pytest.approx(4 * sigma**2, rel=0.02)
    assert float(score.var()) > 10 * float(rep.var())


def test_score_function_estimator_is_the_textbook_formula_and_a_baseline_helps():
    mu, sigma = -0.4, 1.3
    z = mu + sigma * _draws(3)
    f = lambda z: torch.sin(z) + z**2  # noqa: E731
    got = vae.score_function_gradient(f, mu, sigma, z)
    torch.testing.assert_close(got, f(z) * (z - mu) / sigma**2)
    b = float(f(z).mean())
    with_b = vae.score_function_gradient(f, mu, sigma, z, baseline=b)
    assert float(with_b.var()) < float(got.var())
    # still unbiased: d/dμ E[sin z + z²] = cos(μ) e^{-σ²/2} + 2μ
    exact = math.cos(mu) * math.exp(-sigma**2 / 2) + 2 * mu
    se = float(with_b.std()) / math.sqrt(len(z))
    assert abs(float(with_b.mean()) - exact) < 4 * se


def test_gradient_estimators_refuse_bad_input():
    f = torch.square
    with pytest.raises(ValueError, match="eps"):
        vae.reparam_gradient(f, 0.0, 1.0, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="sigma"):
        vae.reparam_gradient(f, 0.0, 0.0, torch.zeros(3))
    with pytest.raises(ValueError, match="z must hold finite"):
        vae.score_function_gradient(f, 0.0, 1.0, torch.tensor([0.0, float("nan")]))
    with pytest.raises(TypeError, match="z"):
        vae.score_function_gradient(f, 0.0, 1.0, [0.0, 1.0])


# ---------------------------------------------------------------- the evidence identity, the gaps


def test_log_p_is_elbo_plus_kl_to_the_true_posterior(device):
    """A linear-Gaussian VAE whose exact posterior p(z|x) is known: for the encoder's too-wide
    Gaussian q, log p(x) − ELBO(q) equals KL(q || p(z|x)) in closed form."""
    W, b, s2, x = _orthogonal_problem(seed=2)
    model = _linear_gaussian_vae(device, W, b, s2, enc_scale=3.0)
    exact = vae.affine_marginal_log_prob(x, W, b, s2).numpy()
    dist, rate = model.rate_distortion(x, n_draws=100_000, seed=0)
    elbo = -(dist + rate)
    mean, log_var = (torch.tensor(a, dtype=D64) for a in model.encode(x, return_log_var=True))
    M = W.T @ W + s2 * np.eye(W.shape[1])
    post_mean = torch.tensor((np.linalg.solve(M, W.T) @ (x - b).T).T, dtype=D64)
    post_var = torch.tensor(s2 / np.diag(M), dtype=D64)
    # KL between diagonal Gaussians, q = N(mean, e^{log_var}), p(z|x) = N(post_mean, post_var)
    kl = 0.5 * (torch.log(post_var) - log_var + (log_var.exp() + (mean - post_mean) ** 2)
                / post_var - 1).sum(-1)
    assert float(kl.min()) > 0.3  # a real gap
    np.testing.assert_allclose(exact - elbo, kl.numpy(), atol=0.04)


def test_gaps_of_a_linear_gaussian_vae(device):
    """When the true posterior is in q's family, optimising q per sample finds it: the
    approximation gap is ~0 and the whole gap is amortisation; with 0 steps the amortisation
    gap is exactly 0 (the same q, the same draws)."""
    W, b, s2, x = _orthogonal_problem(seed=3)
    model = _linear_gaussian_vae(device, W, b, s2, enc_scale=3.0)
    exact = vae.affine_marginal_log_prob(x, W, b, s2).numpy()
    g = model.inference_gaps(x, steps=400, lr=0.05, n_draws=32, n_eval=4000, k=5000, seed=0)
    np.testing.assert_allclose(g.log_px, exact, atol=0.03)
    assert np.all(np.abs(g.approximation) < 0.05), g.approximation
    assert np.all(g.amortisation > 0.3)
    np.testing.assert_allclose(g.approximation + g.amortisation, g.log_px - g.elbo_encoder)
    g0 = model.inference_gaps(x, steps=0, n_eval=100, k=10, seed=0)
    np.testing.assert_array_equal(g0.amortisation, 0.0)


def test_elbo_gap_split_validates():
    split = vae.elbo_gap_split([3.0, 2.0], [2.5, 1.0], [1.0, 0.5])
    np.testing.assert_allclose(split["approximation"], [0.5, 1.0])
    np.testing.assert_allclose(split["amortisation"], [1.5, 0.5])
    np.testing.assert_allclose(split["total"], [2.0, 1.5])
    with pytest.raises(ValueError, match="one shape"):
        vae.elbo_gap_split([1.0], [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="elbo_encoder"):
        vae.elbo_gap_split([1.0], [1.0], [float("nan")])


# ---------------------------------------------------------------- rate, distortion, active units


@pytest.fixture(scope="module")
def digits():
    Xtr, _ = load_digits("train", dequantize=True)
    Xte, _ = load_digits("test", dequantize=True, seed=1)
    return Xtr[:500], Xte[:60]


@pytest.fixture(scope="module")
def normal_vae(device):
    """The shipped VAE with the N(0, I) prior (loaded, not trained)."""
    from course_lib.training import shipped_model

    return shipped_model("vae_digits_normal_prior", device=device)


def test_rate_is_the_closed_form_kl_and_rate_plus_distortion_is_minus_the_elbo(normal_vae,
                                                                               digits):
    X = digits[1]
    dist, rate = normal_vae.rate_distortion(X, n_draws=200, seed=0)
    mean, log_var = (torch.tensor(a, dtype=D64) for a in normal_vae.encode(X, return_log_var=True))
    np.testing.assert_allclose(rate, vae.gaussian_kl(mean, log_var).numpy(), rtol=1e-5)
    one_draw = np.mean([normal_vae.elbo(X, seed=s).elbo for s in range(20)], axis=0)
    assert abs(float(np.mean(-(dist + rate) - one_draw))) < 0.5


def test_active_units_counts_the_units_whose_code_varies():
    rng = np.random.default_rng(0)
    means = np.concatenate([rng.normal(size=(500, 3)), 0.01 * rng.normal(size=(500, 2))], 1)
    n, activity = vae.active_units(means)
    assert n == 3 and activity.shape == (5,)
    np.testing.assert_allclose(activity, means.var(0))
    assert vae.active_units(means, threshold=2.0)[0] == 0
    with pytest.raises(ValueError, match="means"):
        vae.active_units(np.zeros(5))
    with pytest.raises(ValueError, match="threshold"):
        vae.active_units(means, threshold=-1.0)


def test_inactive_units_of_the_shipped_normal_prior_vae_have_zero_kl(digits, normal_vae):
    """Posterior collapse in the shipped model with the N(0, I) prior: some units are inactive,
    and they are exactly the ones whose KL to the prior is about 0 on the test digits."""
    model = normal_vae
    mean, log_var = model.encode(digits[1], return_log_var=True)
    n_active, activity = vae.active_units(mean)
    kl_dims = vae.gaussian_kl(torch.tensor(mean, dtype=D64), torch.tensor(log_var, dtype=D64),
                              reduce=False).mean(0).numpy()
    assert 0 < n_active < model.latent_dim, activity
    assert np.all(kl_dims[activity <= 0.01] < 0.05), (activity, kl_dims)
    assert np.all(kl_dims[activity > 0.01] > 0.2), (activity, kl_dims)


# ---------------------------------------------------------------- free bits


def test_free_bits_kl_clamps_each_group_and_stops_its_gradient():
    kl = torch.tensor([[0.1, 2.0, 0.3], [0.3, 4.0, 0.1]], dtype=D64, requires_grad=True)
    out = vae.free_bits_kl(kl, 0.5)
    assert float(out.detach()) == pytest.approx(0.5 + 3.0 + 0.5)
    (g,) = torch.autograd.grad(out, kl)
    torch.testing.assert_close(g, torch.tensor([[0.0, 0.5, 0.0], [0.0, 0.5, 0.0]], dtype=D64))
    assert float(vae.free_bits_kl(kl, 0.0).detach()) == pytest.approx(float(kl.sum(1).mean().detach()))


def test_free_bits_option(digits, device):
    X = digits[0][:300]
    kw = dict(latent_dim=6, hidden=(32,), epochs=6, prior="gaussian", validation_fraction=0.0,
              random_state=0, device=device, progress=False)
    plain = VAE(**kw).fit(X)
    free = VAE(**kw, free_bits=3.0).fit(X)
    # a KL below 3 nats per unit costs nothing: the encoder spends more nats on its code
    assert free.rate_distortion(X, n_draws=20)[1].mean() > plain.rate_distortion(
        X, n_draws=20)[1].mean() + 1.0
    # the history and the scores are the true ELBO, not the free-bits objective
    h = free.history_
    np.testing.assert_allclose(h["elbo"], np.array(h["reconstruction"]) - np.array(h["kl"]),
                               rtol=1e-5, atol=1e-3)
    # with a learned prior: the whole KL is one group (no error, trains)
    VAE(**{**kw, "prior": "vamp", "n_components": 5, "epochs": 1}, free_bits=1.0).fit(X)
    with pytest.raises(ValueError, match="free_bits"):
        VAE(**kw, free_bits=-1.0).fit(X)
    with pytest.raises(ValueError, match="free_bits"):
        VAE(**kw, free_bits=1.0, train_samples=5).fit(X)
