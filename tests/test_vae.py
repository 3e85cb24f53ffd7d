"""Tests of course_lib.vae: the marginal likelihood (erratum 4), the ELBO and its terms, the
IWAE estimator, the decoder likelihoods, and the VAE estimator's interface."""

import math

import numpy as np
import pytest
import torch
from _shared import CPU
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from torch import nn

from course_lib import vae
from course_lib.data import load_digits
from course_lib.metrics import bits_per_pixel
from course_lib.training import DivergenceError
from course_lib.vae import VAE

D64 = torch.float64


# ---------------------------------------------------------------- erratum 4: affine decoder
# The formula tests up to the linear-Gaussian VAE stay on the CPU: float64 against NumPy/SciPy
# and finite differences, on seeded CPU generators (the estimator tests run them on the device).


@pytest.mark.parametrize("seed", [0, 1])
def test_affine_marginal_matches_monte_carlo_and_not_the_article(seed):
    """∫ N(z|0,I) N(x|Wz+b, I) dz = N(x | b, I + WWᵀ), not the article's N(x | G(0), I)."""
    rng = np.random.default_rng(seed)
    D, d = 3, 2
    W = 1.5 * rng.normal(size=(D, d))
    b = rng.normal(size=D)
    x = b + rng.normal(size=(20, d)) @ W.T + rng.normal(size=(20, D))  # drawn from the model
    exact = vae.affine_marginal_log_prob(x, W, b).numpy()

    Wt, bt, xt = (torch.tensor(a, dtype=D64) for a in (W, b, x))

    def log_px_given_z(z):  # (S, d) -> (S, N)
        mean = z @ Wt.T + bt  # (S, D)
        return vae.log_normal_diag(xt[None], mean[:, None], torch.zeros(1, dtype=D64))

    gen = torch.Generator().manual_seed(seed)
    mc = vae.prior_monte_carlo_log_prob(log_px_given_z, d, 100_000, generator=gen).numpy()
    np.testing.assert_allclose(mc, exact, atol=0.1)  # the worst point is in the tail
    assert np.abs(mc - exact).mean() < 0.02
    # same as the Gaussian log-density with covariance I + W W^T computed by scipy
    from scipy.stats import multivariate_normal

    ref = multivariate_normal(b, np.eye(D) + W @ W.T).logpdf(x)
    np.testing.assert_allclose(exact, ref, rtol=1e-10)
    # the article's N(x | G(0), I) = N(x | b, I) is a different density
    article = vae.log_normal_diag(xt, bt, torch.zeros(D, dtype=D64)).numpy()
    assert np.abs(article - exact).max() > 0.5  # far beyond the Monte Carlo error
    assert exact.mean() > article.mean() + 0.2  # the true density explains its own samples


def test_affine_marginal_validates():
    with pytest.raises(ValueError, match="W"):
        vae.affine_marginal_log_prob(np.zeros((2, 3)), np.zeros((4, 1)), np.zeros(3))
    with pytest.raises(ValueError, match="noise_var"):
        vae.affine_marginal_log_prob(np.zeros((2, 3)), np.zeros((3, 1)), np.zeros(3), 0.0)


# ---------------------------------------------------------------- KL and reparameterisation


def test_closed_form_kl_matches_monte_carlo():
    gen = torch.Generator().manual_seed(0)
    mean = torch.randn(4, 3, generator=gen, dtype=D64)
    log_var = torch.randn(4, 3, generator=gen, dtype=D64)
    kl = vae.gaussian_kl(mean, log_var)
    eps = torch.randn(200_000, 4, 3, generator=gen, dtype=D64)
    z = vae.reparameterize(mean, log_var, eps)
    log_q = vae.log_normal_diag(z, mean, log_var)
    log_p = vae.log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    mc = (log_q - log_p).mean(0)
    se = (log_q - log_p).std(0) / math.sqrt(len(eps))
    assert torch.all((mc - kl).abs() < 4 * se + 1e-6), (mc, kl)
    assert torch.all(kl >= 0)
    assert torch.allclose(vae.gaussian_kl(torch.zeros(3), torch.zeros(3)), torch.tensor(0.0))


def test_reparameterised_gradient_matches_finite_differences():
    """d/dθ E_q[f(z)] by the reparameterisation trick vs finite differences of the exact
    expectation: for f(z) = Σ z² + sin z, E = Σ μ² + σ² + sin μ · exp(-σ²/2)."""
    mean = torch.tensor([0.3, -1.2], dtype=D64, requires_grad=True)
    log_var = torch.tensor([-0.5, 0.4], dtype=D64, requires_grad=True)

    def exact(m, lv):
        s2 = torch.exp(lv)
        return (m**2 + s2 + torch.sin(m) * torch.exp(-s2 / 2)).sum()

    gen = torch.Generator().manual_seed(0)
    eps = torch.randn(400_000, 2, generator=gen, dtype=D64)
    z = vae.reparameterize(mean, log_var, eps)
    estimate = (z**2 + torch.sin(z)).sum(-1).mean()
    g_mean, g_lv = torch.autograd.grad(estimate, (mean, log_var))
    h = 1e-6
    for param, grad in ((mean, g_mean), (log_var, g_lv)):
        for i in range(2):
            with torch.no_grad():
                plus, minus = param.clone(), param.clone()
                plus[i] += h
                minus[i] -= h
                args_p = (plus, log_var) if param is mean else (mean, plus)
                args_m = (minus, log_var) if param is mean else (mean, minus)
                fd = (exact(*args_p) - exact(*args_m)) / (2 * h)
            assert abs(float(grad[i]) - float(fd)) < 0.01, (param, i, grad[i], fd)


def test_elbo_gradient_matches_finite_differences_for_fixed_noise():
    """The ELBO as a function of the decoder output (fixed ε) has the gradient autograd says."""
    gen = torch.Generator().manual_seed(1)
    levels = torch.tensor([[0, 1, 8], [15, 16, 3]], dtype=D64) / 17 + 0.01  # edges included
    for lik in vae.LIKELIHOODS[:2]:
        P = vae.n_decoder_params(lik)
        params = torch.randn(2, 3, P, generator=gen, dtype=D64, requires_grad=True)
        assert torch.autograd.gradcheck(
            lambda p, lik=lik: vae.decoder_log_prob(lik, levels, p), (params,))
    mean = torch.randn(3, 2, generator=gen, dtype=D64, requires_grad=True)
    log_var = torch.randn(3, 2, generator=gen, dtype=D64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda m, lv: vae.gaussian_kl(m, lv), (mean, log_var))


# ---------------------------------------------------------------- decoder likelihoods


@pytest.mark.parametrize("log_scale", [-6.0, -2.0, 0.0, 1.5])
def test_discretized_logistic_is_a_distribution_over_the_levels(log_scale):
    grid = torch.arange(17, dtype=D64)[:, None]
    mean = torch.linspace(-0.5, 1.5, 9, dtype=D64)[None]
    lp = vae.discretized_logistic_log_prob(grid, mean, torch.full_like(mean, log_scale))
    assert torch.isfinite(lp).all()
    np.testing.assert_allclose(lp.exp().sum(0).numpy(), 1.0, atol=1e-9)


def test_discrete_decoders_give_the_same_value_for_both_representations():
    """(level+u)/17 and level/16 fall in the same bin; the density is P(level)·17 per pixel."""
    raw, _ = load_digits("test", raw=True)
    deq, _ = load_digits("test", dequantize=True, seed=3)
    scaled, _ = load_digits("test")
    levels = torch.tensor(raw.reshape(len(raw), -1), dtype=D64)
    assert torch.equal(vae.to_levels(torch.tensor(deq.reshape(len(deq), -1), dtype=D64)), levels)
    assert torch.equal(vae.to_levels(torch.tensor(scaled.reshape(len(raw), -1), dtype=D64)),
                       levels)
    logits = torch.zeros(1, 64, 17, dtype=D64)  # uniform over the levels
    lp = vae.decoder_log_prob("categorical", torch.tensor(deq[:1].reshape(1, -1)), logits)
    assert abs(bits_per_pixel(lp.numpy(), 64) - math.log2(17)) < 1e-9


def test_pixel_histogram_baseline():
    Xtr, _ = load_digits("train", dequantize=True)
    Xte, _ = load_digits("test", dequantize=True)
    bpp = bits_per_pixel(vae.pixel_histogram_log_prob(Xtr, Xte), 64)
    assert 2.40 < bpp < 2.46, bpp  # measured: 2.434
    with pytest.raises(ValueError, match="X"):
        vae.pixel_histogram_log_prob(Xtr, Xte * 2)


# ---------------------------------------------------------------- a linear-Gaussian VAE


def _linear_gaussian_vae(device, W, b, s2, enc_scale=1.0):
    """A fitted VAE on ``device`` whose decoder is x | z ~ N(Wz + b, s2 I) and whose encoder is
    the exact posterior (orthogonal W), with its variance multiplied by ``enc_scale``."""
    D, d = W.shape
    # the exact marginal (affine_marginal_log_prob) assumes the N(0, I) prior
    model = VAE(latent_dim=d, likelihood="gaussian", hidden=(4,), epochs=1, batch_size=8,
                prior="gaussian", random_state=0, device=device, progress=False,
                encoder=lambda i, o: nn.Linear(i, o), decoder=lambda i, o: nn.Linear(i, o))
    model.fit(np.random.default_rng(0).normal(size=(16, D)).astype(np.float32))
    M = W.T @ W + s2 * np.eye(d)
    A = np.linalg.solve(M, W.T)  # posterior mean = A (x - b), posterior cov = s2 M^{-1}
    post_var = s2 / np.diag(M)
    on_device = dict(dtype=torch.float32, device=device)
    with torch.no_grad():
        enc, dec = model.encoder_, model.decoder_
        enc.weight.zero_()
        enc.bias.zero_()
        enc.weight[:d] = torch.tensor(A, **on_device)
        enc.bias[:d] = torch.tensor(-A @ b, **on_device)
        enc.bias[d:] = torch.tensor(np.log(enc_scale * post_var), **on_device)
        dec.weight.zero_()
        dec.bias.zero_()
        dec.weight[0::2] = torch.tensor(W, **on_device)  # means of pixel i at 2i
        dec.bias[0::2] = torch.tensor(b, **on_device)
        dec.bias[1::2] = math.log(s2)  # log-variances at 2i + 1
    return model


def _orthogonal_problem(seed=0, D=6, d=2, s2=0.5):
    rng = np.random.default_rng(seed)
    Q, _ = np.linalg.qr(rng.normal(size=(D, d)))
    W = Q * np.array([2.0, 1.0])[:d]
    b = rng.normal(size=D) * 0.5
    x = (b + rng.normal(size=(8, d)) @ W.T + math.sqrt(s2) * rng.normal(size=(8, D)))
    return W, b, s2, x.astype(np.float32)


def test_linear_gaussian_vae_exact_posterior_elbo_equals_log_p(device):
    W, b, s2, x = _orthogonal_problem()
    model = _linear_gaussian_vae(device, W, b, s2)
    exact = vae.affine_marginal_log_prob(x, W, b, s2).numpy()
    # q is the posterior: every importance weight p(x, z) / q(z | x) equals p(x) exactly
    np.testing.assert_allclose(model.log_weights(x, 3, seed=0), exact[:, None].repeat(3, 1),
                               atol=2e-3)
    np.testing.assert_allclose(model.log_likelihood(x, 1, seed=0), exact, atol=2e-3)
    # and the ELBO (one draw for the reconstruction, the KL in closed form) is right on average
    elbo = np.mean([model.elbo(x, seed=s).elbo for s in range(100)], axis=0)
    np.testing.assert_allclose(elbo, exact, atol=0.25)


def test_linear_gaussian_vae_iwae_converges_to_exact_log_p(device):
    W, b, s2, x = _orthogonal_problem(seed=1)
    model = _linear_gaussian_vae(device, W, b, s2, enc_scale=4.0)  # a too-wide q: a real gap
    exact = vae.affine_marginal_log_prob(x, W, b, s2).numpy()
    elbo = np.mean([model.elbo(x, seed=s).elbo for s in range(200)], axis=0)
    assert np.all(elbo < exact - 0.3)
    ll, err = model.log_likelihood(x, 5000, seed=0, return_error=True)
    assert np.all(np.abs(ll - exact) < 4 * err + 2e-3), (ll - exact, err)
    assert np.all(err < 0.02)


# ---------------------------------------------------------------- a small trained VAE


@pytest.fixture(scope="module")
def digits():
    Xtr, ytr = load_digits("train", dequantize=True)
    Xte, yte = load_digits("test", dequantize=True)
    return Xtr, ytr, Xte, yte


@pytest.fixture(scope="module")
def small_vae(digits, device):
    Xtr = digits[0]
    # the N(0, I) prior with its closed-form KL (>= 0 per sample) and every digit trained on:
    # the tests below check the ELBO's terms and the step count of the history
    return VAE(latent_dim=4, hidden=(64,), epochs=8, batch_size=64, lr=3e-3, prior="gaussian",
               validation_fraction=0.0, random_state=0, device=device, progress=False).fit(Xtr)


def test_elbo_below_iwae_and_iwae_non_decreasing_in_k(small_vae, digits):
    X = digits[2][:40]
    lw = torch.tensor(small_vae.log_weights(X, 1000, seed=0))
    assert lw.shape == (40, 1000)
    curve = vae.iwae_curve(lw, (1, 10, 100, 1000))
    # MC error of each point: the spread of the group estimates
    errs = {}
    for k in (1, 10, 100):
        groups = vae.iwae_log_likelihood(lw.reshape(40, 1000 // k, k), dim=-1).mean(0)
        errs[k] = float(groups.std() / math.sqrt(len(groups)))
    errs[1000] = errs[100]
    ks = sorted(curve)
    for a, b in zip(ks, ks[1:]):
        assert curve[b] >= curve[a] - 3 * (errs[a] + errs[b]), curve
    assert curve[1000] > curve[1]
    elbo = np.mean([small_vae.elbo(X, seed=s).elbo.mean() for s in range(20)])
    assert elbo <= curve[1000]
    assert abs(elbo - curve[1]) < 3 * errs[1] + 0.5
    # log_likelihood agrees with the log-weights' log-mean-exp
    ll, err = small_vae.log_likelihood(X, 1000, seed=0, return_error=True)
    np.testing.assert_allclose(ll, vae.iwae_log_likelihood(lw).numpy(), rtol=1e-6)
    assert np.all(err > 0) and np.all(err < 1.0)


def test_elbo_terms_and_history(small_vae, digits):
    e = small_vae.elbo(digits[2][:10], seed=0)
    np.testing.assert_allclose(e.elbo, e.reconstruction - e.kl, rtol=1e-6)
    assert np.all(e.kl >= 0)
    h = small_vae.history_
    assert set(h) >= {"elbo", "reconstruction", "kl"}
    n_steps = len(h["elbo"])
    assert n_steps == 8 * math.ceil(len(digits[0]) / 64)
    assert np.mean(h["elbo"][-10:]) > np.mean(h["elbo"][:10])  # it learnt
    bpp = bits_per_pixel(small_vae.log_likelihood(digits[2], 100, seed=0), 64)
    assert bpp < 2.6  # 8 epochs of a small model: far below a uniform density's 4.09


def test_shapes_and_methods(small_vae, digits):
    X = digits[2][:5]
    assert small_vae.sample(7, seed=0).shape == (7, 1, 8, 8)
    draws = small_vae.sample(7, seed=0, draw=True)
    assert set(np.unique(draws * 16).round(6)) <= set(np.arange(17.0))  # grey levels
    Z = small_vae.encode(X)
    assert Z.shape == (5, 4)
    mean, log_var = small_vae.encode(X, return_log_var=True)
    assert np.array_equal(mean, Z) and log_var.shape == (5, 4)
    rec = small_vae.reconstruct(X)
    assert rec.shape == X.shape and rec.min() >= 0 and rec.max() <= 1
    path = small_vae.interpolate(X[0], X[1], n_steps=6)
    assert path.shape == (6, 1, 8, 8)
    np.testing.assert_allclose(path[0], rec[0], atol=1e-6)
    assert small_vae.decode(np.zeros((2, 4))).shape == (2, 1, 8, 8)
    assert np.isfinite(small_vae.score(X))


@pytest.mark.cpu_only("same seed, same result is promised bit for bit on the CPU only")
def test_determinism(digits):
    Xtr = digits[0][:200]
    kw = dict(latent_dim=2, hidden=(16,), epochs=2, batch_size=50, random_state=3,
              device=CPU, progress=False)
    a, b = VAE(**kw).fit(Xtr), VAE(**kw).fit(Xtr)
    assert a.history_["elbo"] == b.history_["elbo"]
    np.testing.assert_array_equal(a.sample(5, seed=1), b.sample(5, seed=1))
    np.testing.assert_array_equal(a.log_likelihood(Xtr[:3], 10, seed=0),
                                  b.log_likelihood(Xtr[:3], 10, seed=0))
    c = clone(a)
    assert c.get_params() == a.get_params() and not hasattr(c, "decoder_")


def test_point_data_and_other_likelihoods(device):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 3)).astype(np.float32)
    m = VAE(latent_dim=2, likelihood="gaussian", hidden=(8,), epochs=2, random_state=0,
            device=device, progress=False).fit(X)
    assert m.sample(4).shape == (4, 3)
    assert m.log_likelihood(X[:3], 5).shape == (3,)
    B = (rng.random((60, 1, 4, 4)) > 0.5).astype(np.float32)
    mb = VAE(latent_dim=2, likelihood="bernoulli", hidden=(8,), epochs=2, random_state=0,
             device=device, progress=False).fit(B)
    assert set(np.unique(mb.sample(5, draw=True))) <= {0.0, 1.0}
    assert np.all(mb.log_likelihood(B[:4], 10) < 0)  # a probability of a binary image
    mc = VAE(latent_dim=2, likelihood="categorical", hidden=(8,), epochs=1, random_state=0,
             device=device, progress=False).fit(rng.random((40, 1, 2, 2)))
    assert mc.sample(3).shape == (3, 1, 2, 2)


def test_conditional(digits, device):
    Xtr, ytr = digits[0][:300], digits[1][:300]
    m = VAE(latent_dim=2, hidden=(16,), epochs=2, random_state=0, device=device,
            progress=False).fit(Xtr, ytr)
    assert m.classes_.tolist() == list(range(10))
    imgs, labels = m.sample(12, seed=0, return_labels=True)
    assert imgs.shape == (12, 1, 8, 8) and labels.tolist() == [i % 10 for i in range(12)]
    assert m.sample(3, labels=[7, 7, 7]).shape == (3, 1, 8, 8)
    assert m.log_likelihood(Xtr[:3], 5, labels=ytr[:3]).shape == (3,)
    # without labels: log p(x), summed over the labels (tests/test_vae_prior.py checks the sum)
    assert m.log_likelihood(Xtr[:3], 5).shape == (3,)
    with pytest.raises(ValueError, match="labels"):
        m.sample(2, labels=[11, 12])


def test_validation_split_and_early_stopping(digits, device):
    Xtr = digits[0][:300]
    m = VAE(latent_dim=2, hidden=(16,), epochs=40, lr=3e-2, validation_fraction=0.2,
            n_iter_no_change=2, random_state=0, device=device, progress=False).fit(Xtr)
    assert 1 <= len(m.history_["val_elbo"]) == m.n_epochs_ <= 40
    assert m.best_epoch_ == 1 + int(np.argmax(m.history_["val_elbo"]))


def test_bad_input_is_refused(small_vae, digits, device):
    X = digits[0][:50]
    with pytest.raises(ValueError, match="latent_dim"):
        VAE(latent_dim=0).fit(X)
    with pytest.raises(ValueError, match="likelihood"):
        VAE(likelihood="poisson").fit(X)
    with pytest.raises(ValueError, match=r"X must be in \[0, 1\]"):
        VAE(progress=False, device=device).fit(X * 2)
    with pytest.raises(ValueError, match="X must contain only 0 and 1"):
        VAE(likelihood="bernoulli", progress=False, device=device).fit(X)
    with pytest.raises(ValueError, match="X"):
        VAE(progress=False, device=device).fit(X[:, 0, 0, 0])
    bad = X.copy()
    bad[0, 0, 0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        VAE(progress=False, device=device).fit(bad)
    with pytest.raises(ValueError, match="shape"):
        small_vae.log_likelihood(X.reshape(50, 64), 2)
    with pytest.raises(ValueError, match="y"):
        VAE(progress=False, device=device).fit(X, np.zeros(3))
    with pytest.raises(ValueError, match="labels"):
        small_vae.sample(2, labels=[1, 2])
    with pytest.raises(ValueError, match="Z"):
        small_vae.decode(np.zeros((2, 3)))
    with pytest.raises(NotFittedError):
        VAE().sample(2)


def test_divergence_raises_and_leaves_the_model_unchanged(small_vae, digits, device):
    class NaNDecoder(nn.Module):
        def __init__(self, i, o):
            super().__init__()
            self.lin = nn.Linear(i, o)

        def forward(self, z):
            return self.lin(z) * float("nan")

    m = VAE(latent_dim=2, hidden=(8,), epochs=1, decoder=NaNDecoder, random_state=0,
            device=device, progress=False)
    with pytest.raises(DivergenceError):
        m.fit(digits[0][:64])
    assert not hasattr(m, "decoder_")
    fitted = clone(small_vae).fit(digits[0][:64])
    before = fitted.sample(3, seed=0)
    fitted.set_params(decoder=NaNDecoder)
    with pytest.raises(DivergenceError):
        fitted.fit(digits[0][:64])
    np.testing.assert_array_equal(fitted.sample(3, seed=0), before)


def test_save_and_load(small_vae, digits, tmp_path, device):
    path = tmp_path / "vae.pt"
    small_vae.save(path)
    loaded = VAE.load(path, device=device)
    X = digits[2][:6]
    np.testing.assert_allclose(loaded.log_likelihood(X, 20, seed=0),
                               small_vae.log_likelihood(X, 20, seed=0), rtol=1e-6)
    np.testing.assert_array_equal(loaded.decode(np.ones((2, 4))), small_vae.decode(np.ones((2, 4))))
    assert loaded.history_["elbo"] == pytest.approx(small_vae.history_["elbo"])


def test_log_px_given_z_and_prior_sampling_is_worse_than_iwae(small_vae, digits):
    X = digits[2][:10]
    Z = np.random.default_rng(0).normal(size=(7, 4)).astype(np.float32)
    lp = small_vae.log_px_given_z(X, Z)
    assert lp.shape == (7, 10) and np.all(np.isfinite(lp))
    lw = small_vae.log_weights(X, 200, seed=0)
    se = vae.iwae_standard_error(torch.tensor(lw)).numpy()
    _, err = small_vae.log_likelihood(X, 200, seed=0, return_error=True)
    np.testing.assert_allclose(se, err, rtol=1e-5)
    prior = vae.prior_monte_carlo_log_prob(
        lambda z: torch.tensor(small_vae.log_px_given_z(X, z)), 4, 200,
        generator=torch.Generator().manual_seed(0)).numpy()
    assert prior.mean() < vae.iwae_log_likelihood(torch.tensor(lw)).numpy().mean()


def test_discretized_logistic_mean_and_draws_match_its_probabilities():
    gen = torch.Generator().manual_seed(0)
    params = torch.stack([torch.tensor([0.0, 0.3, 0.97]), torch.tensor([-3.0, -1.5, -2.5])], -1)
    grid = torch.arange(17, dtype=torch.float32)
    p = vae.discretized_logistic_log_prob(grid, params[:, :1], params[:, 1:2]).exp()  # (3, 17)
    mean = vae.likelihoods._decoder_mean("discretized_logistic", params, 17, draw=False)
    torch.testing.assert_close(mean, (p * grid).sum(-1) / 16, rtol=1e-5, atol=1e-6)
    draws = vae.likelihoods._decoder_mean("discretized_logistic", params.expand(20000, 3, 2), 17,
                                          draw=True, generator=gen)
    freq = torch.stack([((draws * 16).round() == k).float().mean(0) for k in range(17)], -1)
    assert (freq - p).abs().max() < 0.015
