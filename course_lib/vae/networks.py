"""The networks of the VAE and how the model runs them: the encoder q(z | x), the decoder
p(x | z), the prior p(z) (standard normal, a learned mixture, or the VampPrior), and the
one-draw ELBO that training maximises.

The functions take the estimator first for its hyperparameters (``latent_dim``,
``likelihood``, ``n_levels``, ``prior``, ``dropout``) and the networks explicitly: training runs
the networks it is updating, the fitted model its ``encoder_``, ``decoder_`` and ``prior_``.
"""

from __future__ import annotations

import functools
import math

import torch
from torch import nn
from torch.nn import functional as F

from ..convnets import ConvDiscriminator, ConvGenerator
from ..training import mlp
from .formulas import (
    elbo_terms,
    gaussian_kl,
    log_normal_diag,
    mixture_prior_log_prob,
    monte_carlo_kl,
    reparameterize,
)
from .likelihoods import DATA_PRESETS, decoder_log_prob, n_decoder_params, to_levels

#: Priors p(z) offered by :class:`course_lib.vae.VAE`: the standard normal, a learned mixture of
#: diagonal Gaussians, or the VampPrior (a uniform mixture of the encoder's q(z | u_k) at
#: learned pseudo-inputs u_k; Tomczak & Welling 2018).
PRIORS = ("gaussian", "mixture", "vamp")


# ====================================================================== building them


class MixturePrior(nn.Module):
    """Learned prior p(z): a mixture of ``n_components`` diagonal Gaussians (means, log-variances
    and mixing logits are parameters trained with the ELBO). Means start as draws from N(0, I),
    variances at 1, weights equal: at the start it is close to the standard normal."""

    def __init__(self, latent_dim: int, n_components: int):
        super().__init__()
        self.means = nn.Parameter(torch.randn(n_components, latent_dim))
        self.log_vars = nn.Parameter(torch.zeros(n_components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(n_components))

    def components(self, encode):
        """``(means, log_vars, logits)`` of the mixture; ``encode`` is not used."""
        return self.means, self.log_vars, self.logits


class VampPrior(nn.Module):
    """The VampPrior (Tomczak & Welling 2018), eq. (6.11) [vae-vamp]: p(z) = (1/K) Σ_k q(z | u_k), the encoder's
    Gaussians at K learned pseudo-inputs u_k: ``sigmoid(raw_k)`` in [0, 1]^D when ``bounded``
    (images: the encoder's input scale), else ``raw_k`` itself. In a conditional model
    pseudo-input k carries the class ``k mod n_classes``."""

    def __init__(self, n_features: int, n_components: int, n_classes: int = 0,
                 bounded: bool = True):
        super().__init__()
        self.bounded = bounded
        self.raw = nn.Parameter(0.5 * torch.randn(n_components, n_features) - 1.0 if bounded
                                else torch.randn(n_components, n_features))
        labels = torch.arange(n_components) % max(n_classes, 1)
        self.register_buffer("labels_1h", F.one_hot(labels, n_classes).to(torch.float32)
                             if n_classes else torch.zeros(n_components, 0))

    def components(self, encode):
        """``(means, log_vars, logits)``: ``encode(u, y1h) -> (mean, log_var)`` at the
        pseudo-inputs, equal weights."""
        y1h = self.labels_1h if self.labels_1h.shape[1] else None
        mean, log_var = encode(torch.sigmoid(self.raw) if self.bounded else self.raw, y1h)
        return mean, log_var, torch.zeros(len(mean), device=mean.device, dtype=mean.dtype)



def build_networks(model, shape, n_classes: int, hidden):
    """The encoder (D [+ C] inputs, 2 d outputs: μ and log σ²) and the decoder (d [+ C]
    inputs, D·P outputs: the P parameters of every pixel) for samples of ``shape`` (D
    features): from the ``encoder``/``decoder`` callables when given; else, with
    ``architecture="conv"``, the DCGAN-style networks of :mod:`course_lib.convnets` with
    ``hidden[0]`` channels in the first convolution (the encoder is a
    :class:`~course_lib.convnets.ConvDiscriminator` with 2 d outputs, the decoder a
    :class:`~course_lib.convnets.ConvGenerator` with P numbers per pixel); else MLPs of widths
    ``hidden`` (reversed for the decoder), with dropout after each hidden layer."""
    shape = (int(shape),) if isinstance(shape, int) else tuple(int(s) for s in shape)
    D, d, C = math.prod(shape), model.latent_dim, n_classes
    P = n_decoder_params(model.likelihood, model.n_levels)
    conv = getattr(model, "architecture", "mlp") == "conv"
    if conv and len(shape) != 3:
        raise ValueError(f"architecture='conv' needs images (N, C, H, W), got data of shape "
                         f"(N, {', '.join(map(str, shape))})")
    if model.encoder is not None:
        enc = model.encoder(D + C, 2 * d)
    elif conv:
        enc = ConvDiscriminator(shape, C, hidden[0], n_outputs=2 * d)
    else:
        enc = mlp([D + C, *hidden, 2 * d], dropout=model.dropout)
    if model.decoder is not None:
        dec = model.decoder(d + C, D * P)
    elif conv:
        dec = ConvGenerator(d + C, shape, hidden[0], params_per_pixel=P)
    else:
        dec = mlp([d + C, *reversed(hidden), D * P], dropout=model.dropout)
    for name, net in (("encoder", enc), ("decoder", dec)):
        if not isinstance(net, nn.Module):
            raise TypeError(f"{name} must return an nn.Module, got {type(net).__name__}")
    return enc, dec


def build_prior(model, D: int, n_classes: int) -> nn.Module:
    """The prior's parameters: none for ``"gaussian"`` (an empty module)."""
    if model.prior == "mixture":
        return MixturePrior(model.latent_dim, model.n_components)
    if model.prior == "vamp":
        return VampPrior(D, model.n_components, n_classes,
                         bounded=DATA_PRESETS[model.likelihood].bounded)
    return nn.Module()


# ====================================================================== running them


def encoder_input(model, x):
    """What the encoder sees: grey levels rescaled to [0, 1] for discrete decoders."""
    if DATA_PRESETS[model.likelihood].levels:
        return to_levels(x, model.n_levels) / (model.n_levels - 1)
    return x


def encode(model, enc, x, y1h, encoded=False):
    """The encoder's Gaussian q(z | x): ``(mean, log_var)``, (N, d) each, for flattened x
    (``encoded``: x is already the encoder's input, e.g. the VampPrior's pseudo-inputs)."""
    inp = x if encoded else encoder_input(model, x)
    if y1h is not None:
        inp = torch.cat([inp, y1h], dim=-1)
    h = enc(inp)
    if h.shape[-1] != 2 * model.latent_dim:
        raise ValueError(f"the encoder must output 2 * latent_dim = {2 * model.latent_dim} "
                         f"numbers per sample, got {h.shape[-1]}")
    return h.chunk(2, dim=-1)  # (mean, log_var)


def decode(model, dec, z, y1h, D):
    """The decoder's parameters of p(x | z), ``(..., D, P)``, for latent vectors z (..., d)."""
    if y1h is not None:
        if y1h.dim() < z.dim():
            y1h = y1h.expand(*z.shape[:-1], y1h.shape[-1])
        z = torch.cat([z, y1h], dim=-1)
    out = dec(z)
    P = n_decoder_params(model.likelihood, model.n_levels)
    if out.shape[-1] != D * P:
        raise ValueError(f"the decoder must output D * P = {D * P} numbers per sample "
                         f"(P = {P} for {model.likelihood}), got {out.shape[-1]}")
    return out.reshape(*out.shape[:-1], D, P)


def prior_components(model, enc, prior, y1h=None):
    """``(means, log_vars, logits)`` of a mixture prior, or None for the standard normal.
    With ``conditional_prior`` and one-hot labels ``y1h`` (N, C), the prior of each row's
    class, p(z | y) (:func:`given_labels`): the logits are then (N, K)."""
    if model.prior == "gaussian":
        return None
    comps = prior.components(functools.partial(encode, model, enc, encoded=True))
    return given_labels(model, prior, comps, y1h)


def given_labels(model, prior, comps, y1h):
    """The class-conditional VampPrior p(z | y) of a conditional model with
    ``conditional_prior=True``: the uniform mixture of the pseudo-inputs that carry class y
    only, as logits (N, K), 0 at the pseudo-inputs of row n's class and −∞ at the others.
    Otherwise (no labels, or a prior shared by the classes) ``comps`` unchanged."""
    if comps is None or y1h is None or not getattr(model, "conditional_prior", False):
        return comps
    means, log_vars, logits = comps
    other_class = (y1h @ prior.labels_1h.T) < 0.5  # (N, K)
    return means, log_vars, logits.expand(len(y1h), -1).masked_fill(other_class, -math.inf)


def log_prior(z, comps) -> torch.Tensor:
    """log p(z) (...) for z (..., d): standard normal, or the mixture ``comps``."""
    if comps is None:
        return log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
    return mixture_prior_log_prob(z, *comps)


def sample_prior(model, n, comps, generator, device) -> torch.Tensor:
    """n draws from p(z): a component from the weights, then its Gaussian (per-row logits
    (n, K): each row's own mixture, e.g. p(z | y))."""
    eps = torch.randn(n, model.latent_dim, generator=generator, device=device)
    if comps is None:
        return eps
    means, log_vars, logits = comps
    k = torch.multinomial(torch.softmax(logits, -1).expand(n, -1), 1,
                          generator=generator).squeeze(-1)
    return reparameterize(means[k], log_vars[k], eps)


def one_draw_elbo(model, nets, x, y1h, generator, *, kl_groups=False):
    """One-sample ELBO terms (N,) for flattened x (N, D), eq. (6.3) [vae-elbo]: the KL in
    closed form for the standard normal prior, by Monte Carlo at the same z for a mixture
    prior, eq. (6.12) [vae-mckl]. ``nets`` is ``(encoder, decoder, prior)``. With
    ``kl_groups``, also the KL's groups for free bits, (N, G): per dimension for the standard
    normal prior (G = d), the whole KL for a mixture (G = 1)."""
    enc, dec, prior = nets
    mean, log_var = encode(model, enc, x, y1h)
    eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
    z = reparameterize(mean, log_var, eps)
    params = decode(model, dec, z, y1h, x.shape[-1])
    rec = decoder_log_prob(model.likelihood, x, params, model.n_levels)
    comps = prior_components(model, enc, prior, y1h)
    kl = None if comps is None else monte_carlo_kl(z, mean, log_var, log_prior(z, comps))
    terms = elbo_terms(rec, mean, log_var, kl)
    if not kl_groups:
        return terms
    groups = gaussian_kl(mean, log_var, reduce=False) if comps is None else kl[:, None]
    return terms, groups


def k_draw_terms(model, nets, x, y1h, generator, k):
    """log p(x | z_i) and the one-draw KL log q(z_i | x) − log p(z_i), (k, N) each, at k
    draws z_i ~ q(z | x): the terms of the importance log-weights, eq. (6.9) [vae-iwae]."""
    enc, dec, prior = nets
    mean, log_var = encode(model, enc, x, y1h)
    z, rec = decoded_draws(model, dec, x, y1h, mean, log_var, k, generator)
    comps = prior_components(model, enc, prior, y1h)
    return rec, monte_carlo_kl(z, mean, log_var, log_prior(z, comps))


def decoded_draws(model, dec, x, y1h, mean, log_var, k, generator):
    """k reparameterised draws z ~ N(mean, diag exp(log_var)), (k, N, d), and log p(x | z) of
    the flattened x (N, D) at each, (k, N): the Monte Carlo part of the ELBO's terms and of
    the importance log-weights, eq. (6.9) [vae-iwae]."""
    eps = torch.randn((k, *mean.shape), generator=generator, device=mean.device,
                      dtype=mean.dtype)
    z = reparameterize(mean, log_var, eps)
    params = decode(model, dec, z, y1h, x.shape[-1])
    return z, decoder_log_prob(model.likelihood, x.expand(k, *x.shape), params, model.n_levels)
