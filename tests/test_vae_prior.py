"""Tests of the VAE's learned priors (mixture of Gaussians, VampPrior), their Monte Carlo KL and
IWAE weights, and the early stopping on a validation split that is now on by default."""

import math

import numpy as np
import pytest
import torch
from _shared import CPU
from sklearn.base import clone

from course_lib import vae
from course_lib.data import load_digits
from course_lib.vae import VAE

D64 = torch.float64
SMALL = dict(latent_dim=3, hidden=(16,), batch_size=64, progress=False)


@pytest.fixture(scope="module")
def digits():
    Xtr, ytr = load_digits("train", dequantize=True)
    Xte, yte = load_digits("test", dequantize=True, seed=1)
    return Xtr[:300], ytr[:300], Xte[:40], yte[:40]


# ---------------------------------------------------------------- the formulas


def test_mixture_with_one_standard_component_is_the_standard_normal():
    z = torch.randn(7, 5, 4, dtype=D64, generator=torch.Generator().manual_seed(0))
    zeros = torch.zeros(1, 4, dtype=D64)
    got = vae.mixture_prior_log_prob(z, zeros, zeros, torch.zeros(1, dtype=D64))
    want = vae.log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    assert got.shape == (7, 5)
    torch.testing.assert_close(got, want)
    # K equal components with any weights: the same density
    three = vae.mixture_prior_log_prob(z, zeros.expand(3, 4), zeros.expand(3, 4),
                                       torch.tensor([0.3, -2.0, 1.0], dtype=D64))
    torch.testing.assert_close(three, want)


def test_mixture_prior_integrates_to_one():
    """A 3-component mixture in 2-D, integrated on a grid: 1."""
    g = torch.Generator().manual_seed(1)
    means = torch.randn(3, 2, dtype=D64, generator=g)
    log_vars = 0.5 * torch.randn(3, 2, dtype=D64, generator=g) - 0.5
    logits = torch.randn(3, dtype=D64, generator=g)
    t = torch.linspace(-9, 9, 601, dtype=D64)
    zz = torch.stack(torch.meshgrid(t, t, indexing="ij"), -1)
    p = vae.mixture_prior_log_prob(zz, means, log_vars, logits).exp()
    h = float(t[1] - t[0])
    assert float(p.sum()) * h * h == pytest.approx(1.0, abs=1e-6)


def test_monte_carlo_kl_averages_to_the_closed_form():
    g = torch.Generator().manual_seed(2)
    mean = torch.randn(4, 3, dtype=D64, generator=g)
    log_var = 0.3 * torch.randn(4, 3, dtype=D64, generator=g)
    eps = torch.randn(200_000, 4, 3, dtype=D64, generator=g)
    z = vae.reparameterize(mean, log_var, eps)
    log_p = vae.log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    mc = vae.monte_carlo_kl(z, mean, log_var, log_p)
    se = mc.std(0) / math.sqrt(len(mc))
    assert torch.all((mc.mean(0) - vae.gaussian_kl(mean, log_var)).abs() < 4 * se + 1e-9)


# ---------------------------------------------------------------- the estimator


def test_defaults_stop_early_and_use_a_learned_prior():
    m = VAE()
    assert m.validation_fraction > 0 and m.prior in ("mixture", "vamp")
    assert clone(m).get_params() == m.get_params()


@pytest.mark.parametrize("bad", [dict(prior="flat"), dict(n_components=0), dict(dropout=1.0),
                                 dict(weight_decay=-1.0), dict(kl_warmup=-1)])
def test_bad_hyperparameters_are_refused(bad, digits):
    with pytest.raises(ValueError):
        VAE(epochs=1, **SMALL, **bad).fit(digits[0])


@pytest.mark.cpu_only("the two networks are compared bit for bit on the CPU")
def test_one_component_at_the_origin_gives_the_gaussian_log_weights(digits):
    """A mixture prior with one component N(0, I) is the standard normal: same IWAE weights."""
    X = digits[0]
    kw = dict(SMALL, epochs=2, validation_fraction=0.0, random_state=0, device=CPU)
    gauss = VAE(prior="gaussian", **kw).fit(X)
    mix = VAE(prior="mixture", n_components=1, **kw).fit(X)
    mix.encoder_.load_state_dict(gauss.encoder_.state_dict())
    mix.decoder_.load_state_dict(gauss.decoder_.state_dict())
    with torch.no_grad():
        for p in mix.prior_.parameters():
            p.zero_()
    Xt = digits[2]
    np.testing.assert_allclose(mix.log_weights(Xt, 50, seed=3), gauss.log_weights(Xt, 50, seed=3),
                               rtol=1e-6, atol=1e-4)
    # the Monte Carlo KL has the closed form as its mean (same reconstruction draws)
    kl_mc = np.mean([mix.elbo(Xt, seed=s).kl for s in range(200)], axis=0)
    np.testing.assert_allclose(kl_mc, gauss.elbo(Xt, seed=0).kl, rtol=0.1, atol=0.3)


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_iwae_with_a_learned_prior_is_consistent(prior, digits, device):
    X, _, Xt, _ = digits
    m = VAE(prior=prior, n_components=5, epochs=3, validation_fraction=0.0, random_state=0,
            device=device, **SMALL).fit(X)
    # k = 1: the log-weight is the one-draw ELBO with the Monte Carlo KL, draw for draw
    lw1 = m.log_weights(Xt, 1, seed=4)[:, 0]
    np.testing.assert_allclose(lw1, m.elbo(Xt, seed=4).elbo, rtol=1e-5, atol=1e-3)
    # IWAE >= ELBO on average, and rises with k
    elbo = np.mean([m.elbo(Xt, seed=s).elbo.mean() for s in range(20)])
    ll10 = m.log_likelihood(Xt, 10, seed=0).mean()
    ll500 = m.log_likelihood(Xt, 500, seed=0).mean()
    assert elbo < ll10 < ll500 + 0.05


def test_vamp_prior_is_the_mean_of_the_encoder_gaussians(digits):
    m = VAE(prior="vamp", n_components=4, epochs=1, validation_fraction=0.0, random_state=0,
            device=CPU, **SMALL).fit(digits[0])
    u = torch.sigmoid(m.prior_.raw)
    with torch.no_grad():
        mean, log_var = m.encoder_(u).chunk(2, -1)
        z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
        want = torch.logsumexp(vae.log_normal_diag(z[:, None], mean, log_var), -1) - math.log(4)
        got = vae.networks.log_prior(z, vae.networks.prior_components(m, m.encoder_, m.prior_))
    torch.testing.assert_close(got, want)


def test_early_stopping_keeps_the_best_weights(digits, device):
    X = digits[0]
    kw = dict(SMALL, prior="mixture", n_components=3, epochs=300, lr=3e-2,
              validation_fraction=0.2, n_iter_no_change=3, random_state=0, device=device)
    m = VAE(**kw).fit(X)
    h = m.history_
    assert m.n_epochs_ < 300  # it stopped
    assert len(h["val_elbo"]) == len(h["train_elbo"]) == m.n_epochs_
    assert m.best_epoch_ == 1 + int(np.argmax(h["val_elbo"]))
    assert m.n_epochs_ == m.best_epoch_ + 3
    # the kept weights are those after the best epoch: a run of best_epoch_ epochs has them
    again = VAE(**dict(kw, epochs=m.best_epoch_)).fit(X)
    for a, b in ((m.encoder_, again.encoder_), (m.decoder_, again.decoder_),
                 (m.prior_, again.prior_)):
        for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
            assert ka == kb
            torch.testing.assert_close(va, vb)


def test_no_patience_is_lost_during_the_kl_warm_up(digits):
    m = VAE(**SMALL, epochs=40, kl_warmup=6, n_iter_no_change=1, validation_fraction=0.2,
            random_state=0, device=CPU).fit(digits[0])
    assert m.n_epochs_ >= 7


@pytest.mark.cpu_only("same seed, same result is promised bit for bit on the CPU only")
@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_determinism_with_dropout_and_a_learned_prior(prior, digits):
    kw = dict(SMALL, prior=prior, n_components=4, dropout=0.3, weight_decay=0.01, epochs=3,
              random_state=5, device=CPU)
    state = torch.get_rng_state()
    a = VAE(**kw).fit(digits[0])
    assert torch.equal(torch.get_rng_state(), state)  # torch's global RNG left as it was
    b = VAE(**kw).fit(digits[0])
    assert a.history_ == b.history_
    np.testing.assert_array_equal(a.sample(5, seed=0), b.sample(5, seed=0))
    assert not np.array_equal(a.sample(5, seed=0), a.sample(5, seed=1))


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
@pytest.mark.parametrize("conditional", [False, True])
def test_save_load_round_trip(prior, conditional, digits, tmp_path, device):
    X, y, Xt, yt = digits
    m = VAE(**SMALL, prior=prior, n_components=4, dropout=0.1, epochs=2, random_state=0,
            device=device).fit(X, y if conditional else None)
    lab = yt if conditional else None
    m.save(tmp_path / "m.pt")
    loaded = VAE.load(tmp_path / "m.pt", device=device)
    np.testing.assert_array_equal(loaded.sample(6, seed=2), m.sample(6, seed=2))
    np.testing.assert_allclose(loaded.log_likelihood(Xt, 20, lab, seed=0),
                               m.log_likelihood(Xt, 20, lab, seed=0), rtol=1e-6)
    assert loaded.history_["val_elbo"] == pytest.approx(m.history_["val_elbo"])


@pytest.mark.parametrize("prior", ["mixture", "vamp"])
def test_conditional_with_a_learned_prior(prior, digits, device):
    X, y, Xt, yt = digits
    m = VAE(**SMALL, prior=prior, n_components=4, epochs=2, random_state=0,
            device=device).fit(X, y)
    imgs, lab = m.sample(20, return_labels=True, seed=0)
    assert imgs.shape == (20, 1, 8, 8) and list(lab[:10]) == list(m.classes_)
    assert m.sample(3, labels=7, seed=0).shape == (3, 1, 8, 8)
    ll = m.log_likelihood(Xt, 20, labels=yt, seed=0)
    assert ll.shape == (len(Xt),) and np.all(np.isfinite(ll))
    # without labels: log p(x) = log Σ_y p(y) p(x|y) (test_conditional_log_px_sums_over_the_labels)
    marginal = m.log_likelihood(Xt, 20, seed=0)
    assert marginal.shape == ll.shape and np.all(np.isfinite(marginal))


def test_tiny_conditional_data_fall_back_to_an_unstratified_split(digits):
    X, y = digits[0][:12], digits[1][:12]
    m = VAE(**SMALL, epochs=2, random_state=0, device=CPU).fit(X, y)
    assert len(m.history_["val_elbo"]) == m.n_epochs_


# ---------------------------------------------------------------- log p(x) of a conditional model


@pytest.fixture(scope="module")
def conditional_vae(digits):
    Xtr, ytr, _, _ = digits
    return VAE(**SMALL, epochs=4, validation_fraction=0.0, random_state=0,
               device=CPU).fit(Xtr, ytr)


def test_conditional_log_px_sums_over_the_labels(conditional_vae, digits):
    """Without labels a conditional VAE scores log p(x) = log Σ_y p(y) p(x|y)."""
    model, X = conditional_vae, digits[2][:12]
    np.testing.assert_allclose(model.class_prior_.sum(), 1.0)
    counts = np.bincount(digits[1], minlength=10)
    np.testing.assert_allclose(model.class_prior_, counts / counts.sum())
    marginal = model.log_likelihood(X, 50, seed=0)
    # the same sum, computed by hand from the per-label estimates (their seeds drawn in turn
    # from the seed's stream, as the method does)
    gen = model._sampling_generator(0, torch.device(CPU))
    per_label = np.stack([  # k = 50 in total: 5 per label
        model.log_likelihood(X, 5, np.full(len(X), c), seed=int(torch.randint(
            0, 2**62, (1,), generator=gen).item()))
        for c in model.classes_])
    want = np.logaddexp.reduce(per_label + np.log(model.class_prior_)[:, None], axis=0)
    np.testing.assert_allclose(marginal, want, rtol=1e-12)
    # p(x) >= p(y) p(x | y) for every label, and score_samples agrees without labels
    assert np.all(marginal >= per_label.max(0) + np.log(model.class_prior_.min()) - 1e-9)
    np.testing.assert_allclose(model.score_samples(X, k=50, seed=0), marginal)


def test_conditional_log_px_error_and_save_load(conditional_vae, digits, tmp_path):
    model, X = conditional_vae, digits[2][:6]
    ll, err = model.log_likelihood(X, 40, seed=1, return_error=True)
    assert ll.shape == err.shape == (6,) and np.all(err > 0) and np.all(np.isfinite(err))
    model.save(tmp_path / "c.pt")
    loaded = VAE.load(tmp_path / "c.pt")
    np.testing.assert_array_equal(loaded.class_prior_, model.class_prior_)
    np.testing.assert_allclose(loaded.log_likelihood(X, 40, seed=1), ll)


# ---------------------------------------------------------------- the class-conditional VampPrior


@pytest.fixture(scope="module")
def class_prior_vae(digits):
    X, y, _, _ = digits
    return VAE(**SMALL, n_components=20, conditional_prior=True, epochs=3,
               validation_fraction=0.0, random_state=0, device=CPU).fit(X, y)


def test_conditional_prior_is_the_mixture_of_its_class_pseudo_inputs(class_prior_vae):
    m = class_prior_vae
    y1h = torch.nn.functional.one_hot(torch.tensor([3, 3, 7]), 10).float()
    z = torch.randn(3, 3, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        comps = vae.networks.prior_components(m, m.encoder_, m.prior_, y1h)
        got = vae.networks.log_prior(z, comps)
        u = torch.sigmoid(m.prior_.raw)
        mean, log_var = m.encoder_(torch.cat([u, m.prior_.labels_1h], -1)).chunk(2, -1)
    k = torch.arange(20)
    for row, c in enumerate([3, 3, 7]):  # pseudo-inputs c and c + 10 carry class c
        mine = k % 10 == c
        want = (torch.logsumexp(vae.log_normal_diag(z[row], mean[mine], log_var[mine]), -1)
                - math.log(2))
        torch.testing.assert_close(got[row], want)
    # the shared prior of the same networks is the mixture of all 20
    shared = vae.networks.log_prior(z, vae.networks.prior_components(m, m.encoder_, m.prior_))
    assert not torch.allclose(shared, got)


def test_conditional_prior_iwae_is_consistent_with_the_elbo(class_prior_vae, digits):
    _, _, Xt, yt = digits
    m = class_prior_vae
    lw1 = m.log_weights(Xt, 1, labels=yt, seed=4)[:, 0]  # k = 1: the one-draw ELBO
    np.testing.assert_allclose(lw1, m.elbo(Xt, labels=yt, seed=4).elbo, rtol=1e-5, atol=1e-3)
    ll = m.log_likelihood(Xt, 20, seed=0)  # log Σ_y p(y) p(x | y), each with its own prior
    assert ll.shape == (len(Xt),) and np.all(np.isfinite(ll))


def test_conditional_prior_draws_only_the_requested_class_components(class_prior_vae):
    m = class_prior_vae
    y1h = torch.nn.functional.one_hot(torch.full((400,), 4), 10).float()
    with torch.no_grad():
        means, _, logits = vae.networks.prior_components(m, m.encoder_, m.prior_, y1h)
    assert logits.shape == (400, 20)
    assert torch.isneginf(logits[:, torch.arange(20) % 10 != 4]).all()
    assert (logits[:, torch.arange(20) % 10 == 4] == 0).all()
    # without labels, or for a model with the shared prior, the (K,) logits of p(z)
    assert vae.networks.prior_components(m, m.encoder_, m.prior_)[2].shape == (20,)


def test_conditional_prior_save_load(class_prior_vae, tmp_path):
    m = class_prior_vae
    m.save(tmp_path / "m.pt")
    loaded = VAE.load(tmp_path / "m.pt", device=CPU)
    assert loaded.conditional_prior is True
    np.testing.assert_array_equal(loaded.sample(6, labels=2, seed=2), m.sample(6, labels=2, seed=2))


def test_the_mixture_prior_and_the_decoder_mean_in_blocks_match_the_whole(monkeypatch):
    """Large inputs are taken in blocks (formulas.BLOCK_ELEMENTS, so that 100,000 latent draws
    under a 100-component prior, or 500 samples of 784 pixels at 256 levels, do not need
    gigabytes at once): with blocks of a few rows the results are those of one block."""
    from course_lib.vae import formulas, likelihoods

    gen = torch.Generator().manual_seed(0)
    z = torch.randn(37, 5, 3, generator=gen, dtype=torch.float64)  # (..., d): 185 points
    means, log_vars = torch.randn(4, 3, generator=gen), 0.3 * torch.randn(4, 3, generator=gen)
    logits = torch.randn(4, generator=gen)
    params = torch.randn(6, 50, 2, generator=gen)  # 300 pixels: mean, log-scale
    whole = (vae.mixture_prior_log_prob(z, means.double(), log_vars.double(), logits.double()),
             likelihoods._decoder_mean("discretized_logistic", params, 256, draw=False),
             likelihoods._decoder_mean("discretized_logistic", params, 256, draw=True,
                                       generator=torch.Generator().manual_seed(1)))
    monkeypatch.setattr(formulas, "BLOCK_ELEMENTS", 4 * 3 * 7)  # 7 points, 0 pixels -> 1 a block
    blocks = (vae.mixture_prior_log_prob(z, means.double(), log_vars.double(), logits.double()),
              likelihoods._decoder_mean("discretized_logistic", params, 256, draw=False),
              likelihoods._decoder_mean("discretized_logistic", params, 256, draw=True,
                                        generator=torch.Generator().manual_seed(1)))
    for a, b in zip(whole, blocks):
        assert a.shape == b.shape
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)
    assert whole[0].shape == (37, 5) and whole[1].shape == (6, 50)
