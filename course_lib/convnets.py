"""Small DCGAN-style convolutional networks for images, shared by the GAN and the VAE.

Both networks keep the *flat* interface of the course's MLPs (:func:`course_lib.training.mlp`),
so that a model swaps one for the other without changing anything else:

- :class:`ConvGenerator` maps a vector (a latent z, with a one-hot label appended for a
  conditional model) to a flattened image: the GAN's generator and the VAE's decoder (which
  outputs ``params_per_pixel`` numbers for every pixel: the parameters of p(x | z));
- :class:`ConvDiscriminator` maps a flattened image (with the one-hot label appended) to
  ``n_outputs`` numbers: the GAN's discriminator (one logit) and the VAE's encoder
  (``2 · latent_dim`` numbers: μ and log σ² of q(z | x)).

The architecture follows Radford et al. (2016, DCGAN): the resolution doubles (generator) or
halves (discriminator) at each level while the channels halve (or double); no pooling, no
fully connected hidden layers. Two departures, both for small images on a CPU: the generator
upsamples by nearest neighbour and convolves (3×3) instead of using transposed convolutions,
which avoids their checkerboard artefacts (Odena et al. 2016), and there is no batch
normalisation (the GAN's R1 penalty keeps its discriminator in check; a VAE does not need it).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

__all__ = ["ConvGenerator", "ConvDiscriminator", "n_halvings", "leaky"]


def leaky() -> nn.Module:
    """The discriminator's activation, LeakyReLU with slope 0.2 (as in DCGAN)."""
    return nn.LeakyReLU(0.2)


def n_halvings(height: int, width: int, most: int = 3) -> int:
    """How many times an image of ``height`` × ``width`` can be halved (exactly, both sides
    even) while both sides stay >= 2: the number of resolution levels of the conv networks.
    2 for the 8×8 digits (8 → 4 → 2) and for 28×28 Fashion-MNIST (28 → 14 → 7)."""
    k = 0
    while k < most and height % 2 == 0 and width % 2 == 0 and height >= 4 and width >= 4:
        height, width, k = height // 2, width // 2, k + 1
    return k


class ConvGenerator(nn.Module):
    """A small DCGAN-style generator (or decoder) for images ``(C, H, W)``, with a flat
    interface: ``(..., n_inputs)`` → ``(..., C·H·W·params_per_pixel)``.

    The input → ``Linear`` → ``(width·2^k, H/2^k, W/2^k)`` → k times [nearest-neighbour
    upsampling ×2, 3×3 convolution halving the channels, ReLU] → a 3×3 convolution to
    ``C · params_per_pixel`` channels, with no output activation: a GAN's pixels are
    standardised (:meth:`course_lib.gan.GAN.sample` clamps them to [0, 1] after undoing the
    standardisation); a VAE's decoder outputs the parameters of each pixel's distribution,
    ordered pixel by pixel (the ``P`` numbers of pixel 0, then of pixel 1, ...), as
    :func:`course_lib.vae.networks.decode` reads them. ``k`` is :func:`n_halvings` of H and W.
    """

    def __init__(self, n_inputs: int, shape, width: int, params_per_pixel: int = 1):
        super().__init__()
        C, H, W = (int(s) for s in shape)
        k = n_halvings(H, W)
        self.shape, self.params_per_pixel = (C, H, W), int(params_per_pixel)
        self.base = (width * 2 ** k, H // 2 ** k, W // 2 ** k)
        self.fc = nn.Linear(n_inputs, int(np.prod(self.base)))
        layers: list[nn.Module] = [nn.ReLU()]
        ch = self.base[0]
        for _ in range(k):
            layers += [nn.Upsample(scale_factor=2, mode="nearest"),
                       nn.Conv2d(ch, ch // 2, 3, padding=1), nn.ReLU()]
            ch //= 2
        layers.append(nn.Conv2d(ch, C * self.params_per_pixel, 3, padding=1))
        self.body = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        lead = z.shape[:-1]
        x = self.fc(z.reshape(-1, z.shape[-1])).view(-1, *self.base)
        out = self.body(x)  # (B, P·C, H, W)
        if self.params_per_pixel > 1:  # (B, P, C, H, W) -> (B, C, H, W, P): pixel by pixel
            out = out.view(len(out), self.params_per_pixel, *self.shape).movedim(1, -1)
        return out.reshape(*lead, -1)


class ConvDiscriminator(nn.Module):
    """A small DCGAN-style discriminator (or encoder) for images ``(C, H, W)``, with a flat
    interface: ``(B, C·H·W + n_classes)`` → ``(B, n_outputs)``.

    A 3×3 convolution to ``width`` channels, then k times a 4×4 convolution of stride 2
    doubling the channels (LeakyReLU 0.2 after each; the mirror of :class:`ConvGenerator`),
    then a linear layer to ``n_outputs`` numbers (a GAN's one logit; a VAE encoder's μ and
    log σ²). A conditional network gets the one-hot label as ``n_classes`` extra constant input
    channels. No normalisation layer.
    """

    def __init__(self, shape, n_classes: int, width: int, n_outputs: int = 1):
        super().__init__()
        C, H, W = (int(s) for s in shape)
        k = n_halvings(H, W)
        self.shape, self.n_classes = (C, H, W), int(n_classes)
        layers: list[nn.Module] = [nn.Conv2d(C + self.n_classes, width, 3, padding=1), leaky()]
        ch = width
        for _ in range(k):
            layers += [nn.Conv2d(ch, 2 * ch, 4, stride=2, padding=1), leaky()]
            ch *= 2
        self.body = nn.Sequential(*layers)
        self.fc = nn.Linear(ch * (H // 2 ** k) * (W // 2 ** k), int(n_outputs))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        C, H, W = self.shape
        img = x[:, : C * H * W].reshape(len(x), C, H, W)
        if self.n_classes:
            c = x[:, C * H * W :, None, None].expand(-1, -1, H, W)
            img = torch.cat([img, c], dim=1)
        return self.fc(self.body(img).flatten(1))
