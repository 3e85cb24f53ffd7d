"""Tests of course_lib.gan: the book's formulas, the estimator's shape, determinism, bad input,
divergence, save/load, and a small mode-coverage run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from _shared import CPU
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from torch import nn

from course_lib import data, gan, metrics
from course_lib.gan import (
    GAN,
    acceptance_probability,
    density_ratio_logit,
    discriminator_loss,
    generator_loss,
    jensen_shannon,
    optimal_discriminator,
    r1_penalty,
    value_function,
)
from course_lib.training import DivergenceError

FAST = dict(n_steps=40, rejection_steps=10, batch_size=64, progress=False)


@pytest.fixture(scope="module")
def fast(device):
    """FAST on the device the tests run on."""
    return dict(FAST, device=device)


def _normal_pdf(x, mu, sigma):
    return np.exp(-0.5 * ((x - mu) / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))


@pytest.fixture(scope="module")
def ring():
    return data.ring_of_gaussians(400, seed=0)


@pytest.fixture(scope="module")
def digits():
    X, y = data.load_digits("train")
    return X[:300], y[:300]


# ------------------------------------------------------------------ the formulas
# The NumPy ones (D*, JS, rejection) and the 1-D discriminator (a CPU generator) stay on the CPU.


def test_losses_match_their_definitions(device):
    torch.manual_seed(0)
    real, fake = (torch.randn(50) * 3).to(device), (torch.randn(50) * 3).to(device)
    d_real, d_fake = torch.sigmoid(real), torch.sigmoid(fake)
    v = torch.log(d_real).mean() + torch.log(1 - d_fake).mean()
    assert torch.allclose(value_function(real, fake), v, atol=1e-5)
    assert torch.allclose(discriminator_loss(real, fake), -v, atol=1e-5)
    assert torch.allclose(generator_loss(fake, "minimax"), torch.log(1 - d_fake).mean(), atol=1e-5)
    assert torch.allclose(generator_loss(fake, "non-saturating"), -torch.log(d_fake).mean(),
                          atol=1e-5)
    # finite where the naive log(sigmoid) is not
    big = torch.tensor([-200.0, 200.0], device=device)
    assert torch.isfinite(discriminator_loss(big, big))
    assert torch.isfinite(generator_loss(big, "non-saturating"))
    with pytest.raises(ValueError, match="loss"):
        generator_loss(fake, "hinge")


def test_minimax_saturates_and_non_saturating_does_not():
    """d loss / d logit at a confidently rejected sample: -D for minimax, -(1 - D) otherwise."""
    logit = torch.tensor([-6.0], requires_grad=True)
    (g_mm,) = torch.autograd.grad(generator_loss(logit, "minimax"), logit)
    (g_ns,) = torch.autograd.grad(generator_loss(logit, "non-saturating"), logit)
    d = torch.sigmoid(torch.tensor(-6.0))
    assert torch.allclose(g_mm, -d) and torch.allclose(g_ns, -(1 - d))
    assert abs(g_ns.item()) > 100 * abs(g_mm.item())


def test_optimal_discriminator_js_and_logit_on_1d():
    x = np.linspace(-7, 8, 15001)
    dx = x[1] - x[0]
    p, q = _normal_pdf(x, 0.0, 1.0), _normal_pdf(x, 1.5, 0.7)
    d_star = optimal_discriminator(p, q)
    assert np.all((d_star >= 0) & (d_star <= 1))
    # V(D*, G) = -log 4 + 2 JS(p || q), eq. (5.4) [gan-js]
    # (1 - D* = q / (p + q), written so that it does not round to 0 where q << p)
    v = np.sum(p * np.log(d_star) + q * np.log(q / (p + q))) * dx
    js = jensen_shannon(p, q, dx)
    assert 0 < js < math.log(2)
    assert abs(v - (-math.log(4) + 2 * js)) < 1e-6
    assert jensen_shannon(p, p, dx) == pytest.approx(0.0, abs=1e-12)
    # disjoint supports: JS = log 2
    a, b = (np.abs(x) < 1) / 2.0, (np.abs(x - 5) < 1) / 2.0
    assert jensen_shannon(a, b, dx) == pytest.approx(math.log(2), rel=1e-3)
    # the logit of D* is the log density ratio, eq. (5.5) [gan-logit]
    mid = slice(5000, 10000)
    logit = np.log(d_star[mid] / (1 - d_star[mid]))
    assert np.allclose(logit, density_ratio_logit(p[mid], q[mid]), atol=1e-8)
    assert optimal_discriminator(np.zeros(2), np.zeros(2)).tolist() == [0.5, 0.5]
    assert torch.allclose(optimal_discriminator(torch.tensor([1.0, 0.0]), torch.tensor([3.0, 0.0])),
                          torch.tensor([0.25, 0.5]))


def test_a_trained_discriminator_approaches_d_star_on_1d():
    """Minimising discriminator_loss on samples of p and q gives sigmoid(logit) ~ p/(p+q)."""
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(1, 32), nn.Tanh(), nn.Linear(32, 32), nn.Tanh(), nn.Linear(32, 1))
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(300):
        xp = torch.randn(1024, 1, generator=gen)
        xq = 1.5 + 0.7 * torch.randn(1024, 1, generator=gen)
        loss = discriminator_loss(net(xp), net(xq))
        opt.zero_grad()
        loss.backward()
        opt.step()
    x = np.linspace(-1.5, 2.5, 41)
    with torch.no_grad():
        learned = torch.sigmoid(net(torch.tensor(x, dtype=torch.float32)[:, None])).numpy()[:, 0]
    d_star = optimal_discriminator(_normal_pdf(x, 0, 1), _normal_pdf(x, 1.5, 0.7))
    assert np.max(np.abs(learned - d_star)) < 0.08
    # a discriminator that is off on one side is far from D*: the test can fail
    assert np.max(np.abs((1 - learned) - d_star)) > 0.3


def test_r1_penalty_is_the_squared_gradient(device):
    lin = nn.Linear(3, 1, bias=False, device=device)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[1.0, -2.0, 2.0]]))
    x = torch.randn(5, 3, device=device)
    assert r1_penalty(lin, x).item() == pytest.approx(9.0)
    # conditional: gradient with respect to x only
    lin2 = nn.Linear(5, 1, bias=False, device=device)
    with torch.no_grad():
        lin2.weight.copy_(torch.tensor([[1.0, -2.0, 2.0, 10.0, 10.0]]))
    assert r1_penalty(lin2, x, torch.ones(5, 2, device=device)).item() == pytest.approx(9.0)


def test_acceptance_probability(device):
    p = acceptance_probability(torch.tensor([0.0, -1.0, 3.0], device=device),
                               torch.tensor(1.0, device=device))
    assert torch.allclose(p.cpu(), torch.tensor([math.exp(-1), math.exp(-2), 1.0]))


# ------------------------------------------------------------------ the estimator


def test_shapes_points_and_images(ring, digits, fast):
    X, _ = ring
    g = GAN(random_state=0, **fast).fit(X)
    assert g.sample(7).shape == (7, 2)
    assert g.sample(5, rejection=False).shape == (5, 2)
    assert set(g.history_) >= {"loss_d", "loss_g", "r1", "lr", "loss_d_rejection"}
    assert len(g.history_["loss_d"]) == fast["n_steps"]
    assert g.history_["lr"][0] == pytest.approx(g.lr) and g.history_["lr"][-1] < 1e-2 * g.lr
    Xd, yd = digits
    gi = GAN(random_state=0, **fast).fit(Xd)
    s = gi.sample(6)
    assert s.shape == (6, 1, 8, 8) and s.min() >= 0 and s.max() <= 1
    gc = GAN(random_state=0, **fast).fit(Xd, yd)
    assert gc.sample(4, labels=[3, 3, 1, 0]).shape == (4, 1, 8, 8)
    assert gc.sample(3).shape == (3, 1, 8, 8)
    assert list(gc.classes_) == list(range(10))
    assert gi.logits(Xd[:9]).shape == (9,)
    # default networks: a three-hidden-layer discriminator for points, two for images
    def n_linear(net):
        return sum(isinstance(m, torch.nn.Linear) for m in net.modules())
    assert (n_linear(g.discriminator_), n_linear(gi.discriminator_)) == (4, 3)
    assert n_linear(g.generator_) == 3
    assert n_linear(GAN(random_state=0, d_depth=1, **fast).fit(X).discriminator_) == 2
    snap = GAN(random_state=0, snapshots=3, **fast).fit(X)
    assert [t for t, _ in snap.snapshots_] == [13, 27, 40]
    assert all(pts.shape == (500, 2) for _, pts in snap.snapshots_)
    # taking snapshots does not change the training
    assert np.array_equal(snap.sample(20, seed=0), g.sample(20, seed=0))


def test_sklearn_clone_and_params():
    g = GAN(latent_dim=3, lr=1e-3)
    c = clone(g)
    assert c.get_params()["latent_dim"] == 3 and c.get_params()["lr"] == 1e-3
    with pytest.raises(NotFittedError):
        GAN().sample(3)


@pytest.mark.cpu_only("same seed, same result is promised bit for bit on the CPU only")
def test_same_seed_same_samples_on_cpu(ring):
    X, _ = ring
    a = GAN(random_state=3, device=CPU, **FAST).fit(X)
    b = GAN(random_state=3, device=CPU, **FAST).fit(X)
    c = GAN(random_state=4, device=CPU, **FAST).fit(X)
    assert np.array_equal(a.sample(50, seed=1), b.sample(50, seed=1))
    assert np.array_equal(a.history_["loss_d"], b.history_["loss_d"])
    assert not np.array_equal(a.sample(50, seed=1), c.sample(50, seed=1))
    assert not np.array_equal(a.sample(50, seed=1), a.sample(50, seed=2))


def test_standardisation_makes_the_scale_irrelevant(ring, fast):
    """The same data at 1000 times the scale, shifted, give the same samples, rescaled."""
    X, _ = ring
    a = GAN(random_state=0, **fast).fit(X)
    b = GAN(random_state=0, **fast).fit(X * 1000.0 + 5.0)
    sa, sb = a.sample(100, seed=0), b.sample(100, seed=0)
    assert np.allclose(sb, sa * 1000.0 + 5.0, rtol=1e-3, atol=0.5)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        (dict(latent_dim=0), "latent_dim"),
        (dict(n_steps=0), "n_steps"),
        (dict(lr=-1.0), "lr"),
        (dict(lr=float("nan")), "lr"),
        (dict(beta1=1.0), "beta1"),
        (dict(loss="hinge"), "loss"),
        (dict(r1=-0.1), "r1"),
        (dict(hidden=0), "hidden"),
        (dict(d_depth=0), "d_depth"),
        (dict(beta2=1.0), "beta2"),
        (dict(rejection_steps=0), "rejection_steps"),
        (dict(rejection_quantile=0.2), "rejection_quantile"),
        (dict(snapshots=-1), "snapshots"),
        (dict(lr_decay="yes"), "lr_decay"),
        (dict(rejection=1), "rejection"),
    ],
)
def test_bad_hyperparameters_are_named(ring, kwargs, match, fast):
    with pytest.raises((ValueError, TypeError), match=match):
        GAN(**{**fast, **kwargs}).fit(ring[0])


def test_bad_input_is_named(ring, digits, fast):
    X, _ = ring
    bad = X.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="X .*NaN"):
        GAN(**fast).fit(bad)
    with pytest.raises(ValueError, match="X must have 2 or 4 dimensions"):
        GAN(**fast).fit(X[:, 0])
    with pytest.raises(ValueError, match=r"y must have shape \(400,\)"):
        GAN(**fast).fit(X, np.zeros(399, dtype=int))
    with pytest.raises(ValueError, match="X: images"):
        GAN(**fast).fit(digits[0] * 2.0)
    with pytest.raises(TypeError, match="generator"):
        GAN(generator="not a network", **fast).fit(X)
    with pytest.raises(TypeError, match="X must hold numbers"):
        GAN(**fast).fit(np.array([["a", "b"]]))
    g = GAN(random_state=0, **fast).fit(X)
    with pytest.raises(ValueError, match="labels given"):
        g.sample(3, labels=[0, 1, 2])
    with pytest.raises(ValueError, match="n_samples"):
        g.sample(0)
    with pytest.raises(ValueError, match="X must have 2 features"):
        g.logits(np.zeros((3, 5)))
    gc = GAN(random_state=0, **fast).fit(*digits)
    with pytest.raises(ValueError, match=r"labels must be one class label or an array of shape \(3,\)"):
        gc.sample(3, labels=[1, 2])
    with pytest.raises(ValueError, match=r"shape \(3,\).*got shape \(3, 1\)"):
        gc.sample(3, labels=[[1], [2], [3]])
    with pytest.raises(ValueError, match="labels contains 11"):
        gc.sample(2, labels=[1, 11])
    graw = GAN(random_state=0, rejection=False, **fast).fit(X)
    with pytest.raises(ValueError, match="rejection=True"):
        graw.sample(3, rejection=True)


class _NaNDiscriminator(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(2, 1)

    def forward(self, x):
        return self.lin(x) * float("nan")


def test_divergence_raises_and_leaves_the_model_as_it_was(ring, fast):
    X, _ = ring
    g = GAN(discriminator=_NaNDiscriminator(), **fast)
    with pytest.raises(DivergenceError, match="loss_d"):
        g.fit(X)
    assert not hasattr(g, "history_") and not hasattr(g, "generator_")
    # a fitted model that fails a second fit keeps its first fit
    g2 = GAN(random_state=0, **fast).fit(X)
    before = g2.sample(10, seed=0)
    g2.set_params(discriminator=_NaNDiscriminator())
    with pytest.raises(DivergenceError):
        g2.fit(X)
    assert np.array_equal(g2.sample(10, seed=0), before)


def test_save_load_round_trip(ring, digits, tmp_path, fast):
    X, _ = ring
    g = GAN(random_state=0, **fast).fit(X)
    path = tmp_path / "gan.pt"
    g.save(path)
    h = GAN.load(path)
    assert np.array_equal(g.sample(40, seed=5), h.sample(40, seed=5))
    assert np.array_equal(g.sample(40, seed=5, rejection=False),
                          h.sample(40, seed=5, rejection=False))
    assert h.history_["loss_d"] == pytest.approx(g.history_["loss_d"])
    # conditional images
    gc = GAN(random_state=0, **fast).fit(*digits)
    gc.save(tmp_path / "cgan.pt")
    hc = GAN.load(tmp_path / "cgan.pt")
    assert np.array_equal(gc.sample(12, labels=[7] * 12, seed=1),
                          hc.sample(12, labels=[7] * 12, seed=1))
    # weights that do not fit the architecture are refused with a clear message
    g_wide = GAN(random_state=0, hidden=16, **fast).fit(X)
    g_wide.save(tmp_path / "wide.pt")
    with pytest.raises(ValueError, match="do not fit"):
        GAN.load(tmp_path / "wide.pt", hidden=32)


def test_rejection_sampling_is_exact_for_a_perfect_discriminator():
    """With the true log density ratio as logit, rejection turns q into p (eq. (5.8) [gan-drs])."""
    gen = torch.Generator().manual_seed(0)
    x = 0.5 + 1.5 * torch.randn(200_000, generator=gen, dtype=torch.float64)  # q = N(0.5, 1.5²)
    log_ratio = torch.as_tensor(density_ratio_logit(_normal_pdf(x.numpy(), 0, 1),
                                                    _normal_pdf(x.numpy(), 0.5, 1.5)))
    keep = torch.rand(len(x), generator=gen, dtype=torch.float64) < \
        acceptance_probability(log_ratio, log_ratio.max())
    kept = x[keep]
    assert abs(kept.mean().item()) < 0.02 and abs(kept.std().item() - 1.0) < 0.02


def test_a_small_ring_is_covered_in_a_few_seconds(device):
    """Four modes far apart at an unusual scale: all captured, most samples near a mode, and
    rejection sampling does not lower the high-quality fraction."""
    X, centres = data.ring_of_gaussians(2000, n_modes=4, radius=50.0, std=1.0, seed=1)
    g = GAN(n_steps=600, rejection_steps=200, random_state=0, progress=False, device=device).fit(X)
    raw = metrics.mode_coverage(g.sample(1000, seed=0, rejection=False), centres, 1.0)
    drs = metrics.mode_coverage(g.sample(1000, seed=0), centres, 1.0)
    assert drs["modes"] == 4, drs
    assert drs["high_quality"] >= 0.6, drs
    assert drs["high_quality"] >= raw["high_quality"] - 0.02, (raw, drs)


def test_train_step_updates_both_networks_conditional_or_not(device):
    """gan.train_step (GAN.fit's step, the exercise grader's reference): one discriminator and
    one generator update, with the label appended to both inputs when there is one."""
    for cond_dim in (0, 3):
        torch.manual_seed(0)
        G = gan.mlp([4 + cond_dim, 16, 2]).to(device)
        D = gan.mlp([2 + cond_dim, 16, 1]).to(device)
        before = [p.detach().clone() for p in (*G.parameters(), *D.parameters())]
        opt_g, opt_d = torch.optim.Adam(G.parameters()), torch.optim.Adam(D.parameters())
        cond = None if not cond_dim else torch.eye(3, device=device)[torch.arange(8) % 3]
        z = torch.randn(8, 4, device=device)
        z = z if cond is None else torch.cat([z, cond], 1)
        out = gan.train_step(G, D, opt_g, opt_d, torch.randn(8, 2, device=device), z, cond,
                             r1=1.0, r1_every=2, t=0)
        after = list((*G.parameters(), *D.parameters()))
        assert all(not torch.equal(a, b) for a, b in zip(before, after)), cond_dim
        assert out["r1"] is not None and set(out) == {"loss_d", "loss_g", "r1", "d_real", "d_fake"}
        assert gan.train_step(G, D, opt_g, opt_d, torch.randn(8, 2, device=device), z, cond,
                              r1=1.0, r1_every=2, t=1)["r1"] is None  # lazy: not on odd steps
