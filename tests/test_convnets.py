"""The shared DCGAN-style networks (course_lib.convnets) and the convolutional VAE built on
them (``VAE(architecture="conv")``, Chapter 8)."""

import numpy as np
import pytest
import torch

from course_lib import convnets, gan
from course_lib.convnets import ConvDiscriminator, ConvGenerator, n_halvings
from course_lib.vae import VAE


@pytest.mark.parametrize("hw, levels", [((8, 8), 2), ((28, 28), 2), ((32, 32), 3), ((7, 7), 0),
                                        ((6, 10), 1)])
def test_n_halvings(hw, levels):
    assert n_halvings(*hw) == levels


def test_gan_uses_the_shared_networks():
    assert gan.ConvGenerator is convnets.ConvGenerator
    assert gan.ConvDiscriminator is convnets.ConvDiscriminator


def test_generator_shapes_and_leading_dimensions():
    torch.manual_seed(0)
    G = ConvGenerator(5, (1, 28, 28), 4, params_per_pixel=3)
    z = torch.randn(2, 6, 5)  # (k draws, N, inputs): the VAE's importance samples
    out = G(z)
    assert out.shape == (2, 6, 28 * 28 * 3)
    flat = G(z.reshape(12, 5)).reshape(2, 6, -1)
    assert torch.allclose(out, flat, atol=1e-6)


def test_generator_orders_parameters_pixel_by_pixel():
    """The P numbers of pixel i are out[i*P : (i+1)*P]: the VAE's decode reads (D, P)."""
    torch.manual_seed(0)
    G = ConvGenerator(3, (2, 8, 8), 4, params_per_pixel=2)
    z = torch.randn(4, 3)
    maps = G.body(G.fc(z).view(4, *G.base))  # (B, P·C, H, W): channel p·C + c
    per_pixel = G(z).view(4, 2 * 8 * 8, 2)  # (B, D, P), D in (C, H, W) order
    for p in range(2):
        assert torch.equal(per_pixel[:, :, p], maps[:, p * 2:(p + 1) * 2].reshape(4, -1))


def test_discriminator_outputs_and_label_channels():
    torch.manual_seed(0)
    D = ConvDiscriminator((1, 28, 28), 10, 4, n_outputs=6)
    x = torch.rand(3, 784)
    y = torch.nn.functional.one_hot(torch.tensor([0, 1, 2]), 10).float()
    out = D(torch.cat([x, y], 1))
    assert out.shape == (3, 6)
    y2 = torch.nn.functional.one_hot(torch.tensor([3, 1, 2]), 10).float()
    out2 = D(torch.cat([x, y2], 1))  # the label changes the output of its row only
    assert not torch.allclose(out[0], out2[0]) and torch.allclose(out[1:], out2[1:])


def _images(n=40, seed=0):
    rng = np.random.default_rng(seed)
    X = np.zeros((n, 1, 28, 28), np.float32)
    X[:, :, 6:22, 8:20] = rng.integers(100, 256, (n, 1, 16, 12)) / 255.0
    return X, np.arange(n) % 4


def test_conv_vae_fits_samples_and_scores():
    X, y = _images()
    vae = VAE(architecture="conv", hidden=(4,), latent_dim=3, n_levels=256, epochs=2,
              n_components=5, validation_fraction=0.0, random_state=0, progress=False,
              device="cpu").fit(X, y)
    assert isinstance(vae.encoder_, ConvDiscriminator)
    assert isinstance(vae.decoder_, ConvGenerator)
    s = vae.sample(6, labels=np.arange(6) % 4, seed=0)
    assert s.shape == (6, 1, 28, 28) and np.isfinite(s).all()
    assert s.min() >= 0 and s.max() <= 1
    ll = vae.score_samples(X[:5], labels=y[:5], k=3)
    assert ll.shape == (5,) and np.isfinite(ll).all()


def test_conv_vae_same_seed_same_result_and_save_load(tmp_path):
    X, _ = _images(20)
    kw = dict(architecture="conv", hidden=(4,), latent_dim=2, n_levels=256, epochs=1,
              n_components=3, validation_fraction=0.0, random_state=3, progress=False,
              device="cpu")
    a, b = VAE(**kw).fit(X), VAE(**kw).fit(X)
    assert np.array_equal(a.sample(4, seed=1), b.sample(4, seed=1))
    a.save(tmp_path / "v.pt")
    c = VAE.load(tmp_path / "v.pt")
    assert c.architecture == "conv" and isinstance(c.decoder_, ConvGenerator)
    assert np.array_equal(a.sample(4, seed=1), c.sample(4, seed=1))


def test_conv_vae_bad_input_names_the_argument():
    with pytest.raises(ValueError, match="architecture"):
        VAE(architecture="resnet").fit(np.random.rand(10, 1, 8, 8))
    with pytest.raises(ValueError, match="architecture='conv' needs images"):
        VAE(architecture="conv", epochs=1, progress=False).fit(np.random.rand(10, 64))
