"""Tests of the GAN's image path (course_lib.gan): the image presets (stronger R1, raw output
by default), the convolutional networks (``architecture="conv"``), the moving average (EMA) of
the generator, the two learning rates, and that point data (N, D) keeps its defaults. Every
fit is tiny (seconds)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _shared import CPU
from sklearn.base import clone

from course_lib import data
from course_lib.gan import GAN, ConvDiscriminator, ConvGenerator, ema_update

TINY = dict(n_steps=12, rejection_steps=4, batch_size=32, progress=False)
CONV = dict(TINY, architecture="conv", ema=0.9)


@pytest.fixture(scope="module")
def tiny(device):
    return dict(TINY, device=device)


@pytest.fixture(scope="module")
def conv(device):
    return dict(CONV, device=device)


@pytest.fixture(scope="module")
def digits():
    X, y = data.load_digits("train")
    return X[:200], y[:200]


def n_params(net) -> int:
    return sum(p.numel() for p in net.parameters())


def test_image_presets(digits, tiny):
    X, _ = digits
    g = GAN(random_state=0, **tiny).fit(X)
    shape = X.shape[1:]
    assert g._r1(shape) == 1.0 and g.ema == 0.0
    assert g.r1 is None  # the constructor's value is left as given
    # the old MLPs: 64 -> 256 -> 256 -> 1 and 8 -> 256 -> 256 -> 64
    assert n_params(g.discriminator_) == (64 * 256 + 256) + (256 * 256 + 256) + (256 + 1)
    assert n_params(g.generator_) == (8 * 256 + 256) + (256 * 256 + 256) + (256 * 64 + 64)
    # the rejection discriminator is trained, but images are sampled raw unless asked for
    assert g.log_m_ is not None
    assert np.array_equal(g.sample(9, seed=4), g.sample(9, seed=4, rejection=False))
    drs, accept = g.sample(9, seed=4, rejection=True, return_acceptance=True)
    assert drs.shape == (9, 1, 8, 8) and 0 < accept <= 1
    # an explicit r1 wins over the preset, and changes the training
    h = GAN(random_state=0, r1=0.01, **tiny).fit(X)
    assert h.history_["loss_d"] != g.history_["loss_d"]


def test_conv_networks_and_samples_in_range(digits, conv):
    X, _ = digits
    g = GAN(random_state=0, **conv).fit(X)
    assert isinstance(g.generator_, ConvGenerator)
    assert isinstance(g.discriminator_, ConvDiscriminator)
    s = g.sample(7)
    assert s.shape == (7, 1, 8, 8) and s.dtype == np.float32
    assert s.min() >= 0 and s.max() <= 1
    assert g.sample(5, rejection=False).shape == (5, 1, 8, 8)
    assert g.logits(X[:6]).shape == (6,)
    # the flat interface of the default MLPs: (B, latent) -> (B, C*H*W) -> (B, 1)
    z = torch.zeros(3, g.latent_dim, device=g.mean_.device)
    assert g.generator_(z).shape == (3, 64)
    assert g.discriminator_(g.generator_(z)).shape == (3, 1)


def test_other_image_sizes_and_channels(conv):
    rng = np.random.default_rng(0)
    for shape in [(3, 12, 12), (1, 28, 28), (2, 5, 7)]:
        X = rng.random((64, *shape)).astype(np.float32)
        g = GAN(random_state=0, **dict(conv, n_steps=3, rejection=False)).fit(X)
        assert g.sample(4).shape == (4, *shape)


def test_point_data_keeps_the_mlp_defaults(tiny):
    X, _ = data.ring_of_gaussians(300, seed=0)
    g = GAN(random_state=0, **tiny).fit(X)
    # 2 -> 128 -> 128 -> 128 -> 1 and 8 -> 128 -> 128 -> 2, as before the image presets
    assert n_params(g.discriminator_) == (2 * 128 + 128) + 2 * (128 * 128 + 128) + (128 + 1)
    assert n_params(g.generator_) == (8 * 128 + 128) + (128 * 128 + 128) + (128 * 2 + 2)
    assert all(isinstance(m, (torch.nn.Sequential, torch.nn.Linear, torch.nn.ReLU))
               for m in g.generator_.modules())
    assert g.ema == 0.0 and g._beta2(2) == 0.9 and g._r1((2,)) == 0.01
    assert g.history_["lr"][0] == pytest.approx(g.lr)
    # point data are still rejection-sampled by default
    assert not np.array_equal(g.sample(30, seed=4), g.sample(30, seed=4, rejection=False))
    with pytest.raises(ValueError, match="architecture"):
        GAN(architecture="conv", **tiny).fit(X)


@pytest.mark.cpu_only("compares two same-seed fits bit for bit")
def test_explicit_old_values_give_the_old_point_defaults():
    """r1=None resolves to exactly 0.01 for point data: same training as r1=0.01."""
    X, _ = data.ring_of_gaussians(300, seed=0)
    a = GAN(random_state=0, device=CPU, **TINY).fit(X)
    b = GAN(random_state=0, device=CPU, r1=0.01, ema=0.0, lr_d=4e-3, **TINY).fit(X)
    assert np.array_equal(a.sample(25, seed=1), b.sample(25, seed=1))


@pytest.mark.cpu_only("same seed, same result is promised on the CPU")
def test_same_seed_same_images(digits):
    X, y = digits
    for params in (TINY, CONV):
        a = GAN(random_state=3, device=CPU, **params).fit(X)
        b = GAN(random_state=3, device=CPU, **params).fit(X)
        assert np.array_equal(a.sample(20, seed=1), b.sample(20, seed=1))
        assert a.history_["loss_d"] == b.history_["loss_d"]
        c = GAN(random_state=4, device=CPU, **params).fit(X)
        assert not np.array_equal(a.sample(20, seed=1), c.sample(20, seed=1))


def test_ema_update_is_the_moving_average():
    torch.manual_seed(0)
    net, avg = torch.nn.Linear(3, 2), torch.nn.Linear(3, 2)
    before = [p.clone() for p in avg.parameters()]
    ema_update(avg, net, 0.9, step=1000)  # beta = min(0.9, 1001/1010) = 0.9
    for a, b, p in zip(avg.parameters(), before, net.parameters()):
        assert torch.allclose(a, 0.9 * b + 0.1 * p)
    # warm-up: at step 0, beta = 1/10, whatever the decay
    avg2 = torch.nn.Linear(3, 2)
    old = [p.clone() for p in avg2.parameters()]
    ema_update(avg2, net, 0.999, step=0)
    for a, b, p in zip(avg2.parameters(), old, net.parameters()):
        assert torch.allclose(a, 0.1 * b + 0.9 * p)


@pytest.mark.cpu_only("compares the trained weights of two same-seed fits bit for bit")
def test_ema_samples_from_the_average_and_does_not_change_training(digits):
    X, _ = digits
    raw = GAN(random_state=0, device=CPU, **dict(CONV, ema=0.0)).fit(X)
    avg = GAN(random_state=0, device=CPU, **CONV).fit(X)
    # the same training (losses), a different sampling network
    assert raw.history_["loss_g"] == avg.history_["loss_g"]
    assert not np.array_equal(raw.sample(10, seed=0, rejection=False),
                              avg.sample(10, seed=0, rejection=False))
    # a custom generator is trained in place; the averaged copy samples
    G = ConvGenerator(8, (1, 8, 8), 8)
    g = GAN(random_state=0, generator=G, device=CPU, **CONV).fit(X)
    assert g.generator_ is not G and isinstance(g.generator_, ConvGenerator)


def test_save_load_round_trip_with_ema(digits, tiny, conv, tmp_path):
    X, y = digits
    for i, params in enumerate([tiny, conv, dict(tiny, ema=0.9)]):
        g = GAN(random_state=0, **params).fit(X)
        g.save(tmp_path / f"g{i}.pt")
        h = GAN.load(tmp_path / f"g{i}.pt")
        assert np.array_equal(g.sample(30, seed=2), h.sample(30, seed=2))
        assert np.array_equal(g.sample(30, seed=2, rejection=True),
                              h.sample(30, seed=2, rejection=True))
        assert h.get_params()["ema"] == params.get("ema", 0.0)
    gc = GAN(random_state=0, **conv).fit(X, y)
    gc.save(tmp_path / "gc.pt")
    hc = GAN.load(tmp_path / "gc.pt")
    labels = np.arange(30) % 10
    assert np.array_equal(gc.sample(30, labels=labels, seed=2),
                          hc.sample(30, labels=labels, seed=2))


def test_conditional_images(digits, tiny, conv):
    X, y = digits
    m = GAN(random_state=0, **tiny).fit(X, y)  # the MLPs: one-hot appended to z and to x
    assert m.generator_[0].in_features == m.latent_dim + 10
    assert m.discriminator_[0].in_features == 64 + 10
    assert m.sample(4, labels=[3, 3, 1, 0]).shape == (4, 1, 8, 8)
    g = GAN(random_state=0, **conv).fit(X, y)
    assert list(g.classes_) == list(range(10))
    first = g.discriminator_.body[0]
    assert first.in_channels == 1 + 10  # the one-hot label as constant channels
    assert g.generator_.fc.in_features == g.latent_dim + 10
    assert g.sample(4, labels=[3, 3, 1, 0]).shape == (4, 1, 8, 8)
    assert g.sample(5, labels=7).shape == (5, 1, 8, 8)
    assert g.logits(X[:4], labels=y[:4]).shape == (4,)
    with pytest.raises(ValueError, match="labels"):
        g.sample(2, labels=[11, 12])


def test_new_hyperparameters_are_checked_and_cloned(digits, tiny):
    X, _ = digits
    for bad, name in [(dict(architecture="resnet"), "architecture"), (dict(ema=1.0), "ema"),
                      (dict(ema=-0.1), "ema"), (dict(lr_d=0.0), "lr_d")]:
        with pytest.raises(ValueError, match=name):
            GAN(**bad, **tiny).fit(X)
    g = GAN(architecture="conv", ema=0.5, lr_d=1e-3, hidden=8)
    params = clone(g).get_params()
    assert (params["architecture"], params["ema"], params["lr_d"], params["hidden"]) == \
        ("conv", 0.5, 1e-3, 8)
    # two time-scale learning rates: the discriminator's follows lr_d, with the same decay
    m = GAN(lr=1e-3, lr_d=4e-3, random_state=0, **tiny).fit(X)
    assert m.history_["lr"][0] == pytest.approx(1e-3)


def test_snapshots_use_the_sampling_network(digits, conv):
    X, _ = digits
    g = GAN(random_state=0, snapshots=2, **conv).fit(X)
    assert [t for t, _ in g.snapshots_] == [6, 12]
    assert all(s.shape == (500, 1, 8, 8) and s.min() >= 0 and s.max() <= 1
               for _, s in g.snapshots_)
