"""The decoders p(x | z) of the VAE, eqs. (6.6)-(6.7) (and the independent-pixel baseline, eq. (6.8)), and the likelihood scale of the course.

The likelihood scale
--------------------
Every log-likelihood returned here is on the course's one scale, so that
:func:`course_lib.metrics.bits_per_pixel` turns it into bits per pixel of the 17-level digits
(``metrics.bits_per_pixel(vae.log_likelihood(X), n_pixels=64)``):

- the *discrete* decoders (``"discretized_logistic"``, ``"categorical"``) give each pixel a
  probability P(level) over the ``n_levels`` grey levels. The density of a dequantised value
  ``(level + u) / n_levels`` (``data.load_digits(dequantize=True)``) is then
  ``P(level) × n_levels``, flat inside the level's bin, and that is what they return:
  ``log P(levels) + D log n_levels``. A value ``x`` in [0, 1] belongs to level
  ``min(floor(n_levels · x), n_levels − 1)``, which is right both for dequantised data and for
  the default ``level / 16`` of ``load_digits()``: both representations give the same number;
- the ``"gaussian"`` decoder is a density on ℝ^D, evaluated at the (dequantised) data itself;
- the ``"bernoulli"`` decoder is for binary data {0, 1}; it returns log P(x) (bits per pixel
  of binary images are then ``-log_likelihood / (D ln 2)``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch.nn import functional as F

from .._core import as_tensor, check_int, check_real
from ..data import DIGIT_LEVELS
from . import formulas
from .formulas import _LOG_2PI

#: Decoder likelihoods p(x | z) offered by :class:`course_lib.vae.VAE`.
LIKELIHOODS = ("discretized_logistic", "categorical", "gaussian", "bernoulli")

#: Lower bound of a decoder's log-scale / log-variance (keeps a density from collapsing to a
#: spike on a constant pixel; the discrete decoders do not need it to stay finite).
_MIN_LOG_SCALE = -7.0


class DataPreset(NamedTuple):
    """What a decoder likelihood says about the data, and the choices of the VAE that follow."""

    #: the data are grey levels in [0, 1]: the encoder sees each pixel's level rescaled to
    #: [0, 1] (``to_levels(x) / (n_levels - 1)``), so that dequantisation noise is not input
    levels: bool
    #: the data are images in [0, 1]: the VampPrior's pseudo-inputs are ``sigmoid(raw)``, on
    #: the encoder's input scale; otherwise (points in ℝ^D) they are ``raw`` itself
    bounded: bool


#: The presets for each kind of data, chosen by ``likelihood`` alone (not by the data's
#: dimension): grey-level images (the discrete decoders), points or real-valued images
#: (``"gaussian"``) and binary images (``"bernoulli"``). What fit and the methods require of
#: X follows too: [0, 1] for grey levels, 0 and 1 for binary images, any finite reals for the
#: Gaussian.
DATA_PRESETS = {
    "discretized_logistic": DataPreset(levels=True, bounded=True),
    "categorical": DataPreset(levels=True, bounded=True),
    "gaussian": DataPreset(levels=False, bounded=False),
    "bernoulli": DataPreset(levels=False, bounded=True),
}


def to_levels(x, n_levels: int = DIGIT_LEVELS) -> torch.Tensor:
    """Grey level of values in [0, 1]: ``min(floor(n_levels · x), n_levels − 1)`` (float).

    Right for dequantised data ``(level + u) / n_levels`` and for ``level / (n_levels − 1)``.
    """
    return torch.clamp(torch.floor(x * n_levels), 0, n_levels - 1)


def discretized_logistic_log_prob(levels, mean, log_scale, n_levels: int = DIGIT_LEVELS):
    r"""log P(level) under a discretised logistic, eq. (6.7) [vae-dlogistic] (Salimans et al. 2017).

    Level k sits at :math:`c_k = k/(L-1) \in [0, 1]`; its bin is :math:`[c_k - h, c_k + h]`,
    :math:`h = 1/(2(L-1))`, and the two edge bins extend to ∓∞, so the L probabilities sum to
    one:

    .. math::
        P(k) = \sigma\!\Big(\frac{c_k + h - \mu}{s}\Big) - \sigma\!\Big(\frac{c_k - h - \mu}{s}\Big),
        \quad \sigma(-\infty) = 0,\ \sigma(\infty) = 1.

    Computed in log space, stably: with :math:`a > b` the two arguments,
    :math:`\sigma(a) - \sigma(b) = \sigma(a)\,\sigma(-b)\,(1 - e^{b-a})`.
    Element-wise; returns a tensor shaped like ``levels``.
    """
    h = 0.5 / (n_levels - 1)
    centre = levels / (n_levels - 1)
    inv_scale = torch.exp(-log_scale)
    a = (centre + h - mean) * inv_scale
    b = (centre - h - mean) * inv_scale
    lowest = F.logsigmoid(a)  # P(level 0) = sigma(a)
    highest = F.logsigmoid(-b)  # P(level L-1) = 1 - sigma(b)
    inner = lowest + highest + torch.log(-torch.expm1(b - a))
    return torch.where(levels <= 0, lowest, torch.where(levels >= n_levels - 1, highest, inner))


def categorical_log_prob(levels, logits) -> torch.Tensor:
    r"""log P(level) of a softmax over the L levels, eq. (6.6) [vae-categorical].

    ``logits`` has one more trailing dimension (L) than ``levels``.
    """
    log_p = torch.log_softmax(logits, dim=-1)
    return log_p.gather(-1, levels.long().unsqueeze(-1)).squeeze(-1)


def gaussian_log_prob(x, mean, log_var) -> torch.Tensor:
    """Element-wise log N(x | mean, exp(log_var))."""
    return -0.5 * (_LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var))


def bernoulli_log_prob(x, logits) -> torch.Tensor:
    """Element-wise log Bernoulli(x | sigmoid(logits)) for x in {0, 1}."""
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none")


def n_decoder_params(likelihood: str, n_levels: int = DIGIT_LEVELS) -> int:
    """Parameters per pixel that the decoder network outputs for ``likelihood``: location and
    log-scale, one logit per grey level, mean and log-variance, or one logit."""
    return {"discretized_logistic": 2, "categorical": n_levels, "gaussian": 2,
            "bernoulli": 1}[likelihood]


def decoder_log_prob(likelihood: str, x, params, n_levels: int = DIGIT_LEVELS) -> torch.Tensor:
    """log p(x | z) summed over the D pixels, on the course's likelihood scale.

    ``x`` is ``(..., D)``: values in [0, 1] (levels are taken with :func:`to_levels`) for the
    discrete decoders, {0, 1} for ``"bernoulli"``, reals for ``"gaussian"``. ``params`` is the
    decoder network's output reshaped to ``(..., D, P)`` (P from :func:`n_decoder_params`).
    Discrete decoders return ``log P(levels) + D log n_levels``: the log-density of the
    dequantised image (see the module docstring).
    """
    D = x.shape[-1]
    if likelihood == "discretized_logistic":
        lp = discretized_logistic_log_prob(
            to_levels(x, n_levels), params[..., 0], params[..., 1].clamp(min=_MIN_LOG_SCALE),
            n_levels)
        return lp.sum(-1) + D * math.log(n_levels)
    if likelihood == "categorical":
        return categorical_log_prob(to_levels(x, n_levels), params).sum(-1) + D * math.log(n_levels)
    if likelihood == "gaussian":
        return gaussian_log_prob(x, params[..., 0],
                                 params[..., 1].clamp(min=_MIN_LOG_SCALE)).sum(-1)
    if likelihood == "bernoulli":
        return bernoulli_log_prob(x, params[..., 0]).sum(-1)
    raise ValueError(f"likelihood must be one of {list(LIKELIHOODS)}, got {likelihood!r}")


def _decoder_mean(likelihood: str, params, n_levels: int, draw: bool, generator=None):
    """The decoder's mean E[x | z] (``draw=False``) or a draw from p(x | z), in [0, 1].

    Discrete decoders return grey levels on the ``level / (n_levels − 1)`` scale (the scale of
    ``load_digits()``); the Gaussian's mean and draws are clipped to [0, 1].
    """
    if likelihood == "discretized_logistic":
        # P(level > j) = 1 - CDF(upper edge of bin j), j = 0..L-2: the mean level is their sum,
        # and a draw counts the edges whose CDF lies below a uniform u (inverse CDF). Both hold
        # an (..., L-1) array: taken over blocks of pixels, so that 500 samples of 784 pixels at
        # 256 levels do not need a gigabyte at once.
        h = 0.5 / (n_levels - 1)
        edges = torch.arange(n_levels - 1, dtype=params.dtype, device=params.device)
        edges = edges / (n_levels - 1) + h
        u = (torch.rand(params.shape[:-1], generator=generator, device=params.device,
                        dtype=params.dtype) if draw else None)
        flat, per_block = params.reshape(-1, params.shape[-1]), max(1, formulas.BLOCK_ELEMENTS // len(edges))
        out = []
        for s in range(0, len(flat), per_block):
            block = flat[s : s + per_block]
            scale = torch.exp(block[:, 1:2].clamp(min=_MIN_LOG_SCALE))
            cdf = torch.sigmoid((edges - block[:, :1]) / scale)  # (pixels, L-1)
            if draw:
                ub = u.reshape(-1)[s : s + per_block]
                out.append((cdf < ub.unsqueeze(-1)).sum(-1).to(params.dtype))
            else:
                out.append((1.0 - cdf).sum(-1))
        return torch.cat(out).reshape(params.shape[:-1]) / (n_levels - 1)
    if likelihood == "categorical":
        log_p = torch.log_softmax(params, dim=-1)
        if draw:
            flat = log_p.reshape(-1, n_levels).exp()
            idx = torch.multinomial(flat, 1, generator=generator).reshape(log_p.shape[:-1])
            return idx.to(params.dtype) / (n_levels - 1)
        grid = torch.arange(n_levels, dtype=params.dtype, device=params.device)
        return (log_p.exp() * grid).sum(-1) / (n_levels - 1)
    if likelihood == "gaussian":
        mean = params[..., 0]
        if draw:
            std = torch.exp(0.5 * params[..., 1].clamp(min=_MIN_LOG_SCALE))
            noise = torch.randn(mean.shape, generator=generator, device=mean.device,
                                dtype=mean.dtype)
            mean = mean + std * noise
        return mean.clamp(0.0, 1.0)
    p = torch.sigmoid(params[..., 0])
    return torch.bernoulli(p, generator=generator) if draw else p


# ====================================================================== the baseline


def pixel_histogram_log_prob(X_train, X, n_levels: int = DIGIT_LEVELS, alpha: float = 1.0):
    r"""Independent pixels, each a smoothed histogram of its L grey levels: eq. (6.8) [vae-histogram].

    .. math::
        P(x) = \prod_{d=1}^D \frac{n_{d, k_d} + \alpha}{N + L\alpha},

    where :math:`n_{d,k}` counts the training images whose pixel d is at level k (additive
    smoothing α keeps unseen levels possible). Returns the log-density of the dequantised
    images, ``log P + D log L`` (N,), on the course's scale. No pixel knows any other: the
    baseline every model with dependencies must beat.
    """
    n_levels = check_int(n_levels, "n_levels", minimum=2)
    alpha = check_real(alpha, "alpha", minimum=0.0, strict_min=True)
    train = as_tensor(X_train, "X_train", ndim=(2, 4), dtype=torch.float64, min_value=0.0,
                      max_value=1.0, device="cpu")
    X = as_tensor(X, "X", ndim=(2, 4), dtype=torch.float64, min_value=0.0, max_value=1.0,
                  device="cpu")
    train = to_levels(train.reshape(len(train), -1), n_levels).long()
    X = to_levels(X.reshape(len(X), -1), n_levels).long()
    if train.shape[1] != X.shape[1]:
        raise ValueError(f"X must have {train.shape[1]} pixels like X_train, got {X.shape[1]}")
    D = train.shape[1]
    counts = torch.zeros(D, n_levels, dtype=torch.float64)
    counts.scatter_add_(1, train.T, torch.ones_like(train.T, dtype=torch.float64))
    log_p = torch.log(counts + alpha) - math.log(len(train) + n_levels * alpha)  # (D, L)
    lp = log_p.gather(1, X.T).T.sum(1)
    return (lp + D * math.log(n_levels)).numpy()
