"""Variational autoencoders (VAE): a latent-variable model trained by maximising the ELBO.

The chapter "Variational autoencoders" (book/06_vae.md) derives every formula used here. Each
one lives in exactly one module-level function, whose docstring cites the equation by the
number the book shows and by its label in the sources, e.g. eq. (6.3) [vae-elbo]:

=========================================  ===================================================
function                                   book equation
=========================================  ===================================================
:func:`affine_marginal_log_prob`           (6.2) ``vae-affine``   log N(x | b, s²I + W Wᵀ) (erratum 4)
:func:`prior_monte_carlo_log_prob`         (6.1) ``vae-marginal`` log ∫ p(z) p(x|z) dz by sampling the prior
:func:`reparameterize`                     (6.5) ``vae-reparam``  z = μ + σ ⊙ ε
:func:`gaussian_kl`                        (6.4) ``vae-kl``       KL(N(μ, diag σ²) ‖ N(0, I)), closed form
:func:`mixture_prior_log_prob`             (6.11) ``vae-vamp``    log Σ_k π_k N(z | m_k, diag v_k): learned prior
:func:`monte_carlo_kl`                     (6.12) ``vae-mckl``    log q(z|x) − log p(z) at a draw z ~ q(z|x)
:func:`elbo_terms`                         (6.3) ``vae-elbo``     E_q[log p(x|z)] − KL(q ‖ p)
:func:`discretized_logistic_log_prob`      (6.7) ``vae-dlogistic`` P(level) of a discretised logistic
:func:`categorical_log_prob`               (6.6) ``vae-categorical`` P(level) of a 17-way softmax
:func:`iwae_log_likelihood`                (6.9) ``vae-iwae``     log (1/k) Σ_i p(x, z_i) / q(z_i | x)
:func:`pixel_histogram_log_prob`           (6.8) ``vae-histogram`` independent pixels, one histogram each
:func:`reparam_gradient`                   (6.13) ``vae-gradrep``  d/dμ E f(z) by f'(μ + σε)
:func:`score_function_gradient`            (6.14) ``vae-gradscore`` d/dμ E f(z) by f(z) ∂_μ log q(z) (REINFORCE)
:func:`elbo_gap_split`                     (6.15) ``vae-gaps``    approximation + amortisation gap
:meth:`VAE.rate_distortion`                (6.16) ``vae-ratedist`` −ELBO = distortion + rate
:func:`active_units`                       (6.17) ``vae-active``  Cov_x(E_q[z_u]) > 0.01
:func:`free_bits_kl`                       (6.18) ``vae-freebits`` Σ_g max(λ, mean KL_g)
=========================================  ===================================================

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

import copy
import functools
import math
import time
from typing import NamedTuple

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._core import (
    as_real_array,
    as_tensor,
    check_bool,
    check_choice,
    check_input,
    check_int,
    check_real,
    make_generator,
    progress,
)
from .data import DIGIT_LEVELS
from .training import (
    DivergenceError,
    NeuralEstimator,
    minibatches,
    mlp,
    one_hot,
    seeded,
    train_loop,
)

__all__ = [
    "VAE",
    "LIKELIHOODS",
    "ELBO",
    "affine_marginal_log_prob",
    "prior_monte_carlo_log_prob",
    "reparameterize",
    "gaussian_kl",
    "mixture_prior_log_prob",
    "monte_carlo_kl",
    "PRIORS",
    "MixturePrior",
    "VampPrior",
    "vae_train_step",
    "log_normal_diag",
    "elbo_terms",
    "to_levels",
    "discretized_logistic_log_prob",
    "categorical_log_prob",
    "gaussian_log_prob",
    "bernoulli_log_prob",
    "decoder_log_prob",
    "iwae_log_likelihood",
    "iwae_curve",
    "iwae_standard_error",
    "pixel_histogram_log_prob",
    "reparam_gradient",
    "score_function_gradient",
    "elbo_gap_split",
    "active_units",
    "free_bits_kl",
    "InferenceGaps",
    "mlp",
]

#: Decoder likelihoods p(x | z) offered by :class:`VAE`.
LIKELIHOODS = ("discretized_logistic", "categorical", "gaussian", "bernoulli")
DISCRETE = ("discretized_logistic", "categorical")
#: Priors p(z) offered by :class:`VAE`: the standard normal, a learned mixture of diagonal
#: Gaussians, or the VampPrior (a uniform mixture of the encoder's q(z | u_k) at learned
#: pseudo-inputs u_k; Tomczak & Welling 2018).
PRIORS = ("gaussian", "mixture", "vamp")

_LOG_2PI = math.log(2.0 * math.pi)
#: Lower bound of a decoder's log-scale / log-variance (keeps a density from collapsing to a
#: spike on a constant pixel; the discrete decoders do not need it to stay finite).
_MIN_LOG_SCALE = -7.0
#: Decoder evaluations (rows of z) computed at once by the IWAE estimator.
_IWAE_ROWS = {"cpu": 2**15, "cuda": 2**18}


# ====================================================================== the marginal likelihood


def affine_marginal_log_prob(x, W, b, noise_var: float = 1.0) -> torch.Tensor:
    r"""Exact log p(x) when the decoder is affine: eq. (6.2) [vae-affine], probabilistic PCA.

    With :math:`z \sim \mathcal N(0, I_d)` and :math:`x \mid z \sim \mathcal N(Wz + b, s^2 I_D)`,
    :math:`x = b + Wz + s\,\eta` is a linear function of Gaussians, hence Gaussian with mean
    :math:`b` and covariance :math:`WW^\top + s^2 I`:

    .. math::
        p(x) = \int \mathcal N(z \mid 0, I)\, \mathcal N(x \mid Wz + b, s^2 I)\, dz
             = \mathcal N(x \mid b,\; s^2 I + W W^\top).

    Not the article's :math:`\mathcal N(x \mid G(0), I) = \mathcal N(x \mid b, I)`
    (erratum 4): the covariance grows by :math:`WW^\top`.

    Parameters
    ----------
    x : (N, D) tensor or array;  W : (D, d);  b : (D,);  noise_var : s² > 0.

    Returns
    -------
    torch.Tensor (N,), float64: log-density in nats.
    """
    x = as_tensor(x, "x", ndim=2, dtype=torch.float64)
    W = as_tensor(W, "W", ndim=2, dtype=torch.float64, device=x.device)
    b = as_tensor(b, "b", ndim=1, dtype=torch.float64, device=x.device)
    noise_var = check_real(noise_var, "noise_var", minimum=0.0, strict_min=True)
    D = x.shape[1]
    if W.shape[0] != D or b.shape[0] != D:
        raise ValueError(f"W must have {D} rows and b {D} entries (one per feature of x), "
                         f"got W {tuple(W.shape)} and b {tuple(b.shape)}")
    cov = noise_var * torch.eye(D, dtype=torch.float64, device=x.device) + W @ W.T
    L = torch.linalg.cholesky(cov)
    r = torch.linalg.solve_triangular(L, (x - b).T, upper=False)  # (D, N)
    log_det = 2.0 * torch.log(torch.diagonal(L)).sum()
    return -0.5 * (D * _LOG_2PI + log_det + (r**2).sum(0))


def prior_monte_carlo_log_prob(log_px_given_z, latent_dim: int, n_samples: int,
                               generator=None, batch: int = 4096) -> torch.Tensor:
    r"""Estimate :math:`\log p(x) = \log \int p(z)\,p(x\mid z)\,dz` by sampling the prior:
    eq. (6.1) [vae-marginal], :math:`\log \frac1S\sum_s p(x\mid z_s)` with :math:`z_s \sim \mathcal N(0, I)`.

    Unbiased for p(x) (not for its log), and hopeless in high dimension (almost every z from the
    prior explains x badly): this is why the VAE needs an encoder. Used by the tests and the
    chapter to check :func:`affine_marginal_log_prob`.

    ``log_px_given_z(z)`` maps ``(S, d)`` latent vectors to ``(S, N)`` log-densities.
    Returns ``(N,)``.
    """
    latent_dim = check_int(latent_dim, "latent_dim", minimum=1)
    n_samples = check_int(n_samples, "n_samples", minimum=1)
    total = None
    for start in range(0, n_samples, batch):
        s = min(batch, n_samples - start)
        z = torch.randn(s, latent_dim, generator=generator, dtype=torch.float64)
        part = torch.logsumexp(log_px_given_z(z), dim=0)
        total = part if total is None else torch.logaddexp(total, part)
    return total - math.log(n_samples)


# ====================================================================== ELBO


def reparameterize(mean, log_var, eps) -> torch.Tensor:
    r"""The reparameterisation trick, eq. (6.5) [vae-reparam]: :math:`z = \mu + \sigma \odot \varepsilon`
    with :math:`\sigma = \exp(\tfrac12 \log\sigma^2)` and :math:`\varepsilon \sim \mathcal N(0, I)`.

    z is a differentiable function of (μ, log σ²) for a fixed ε, so the gradient of
    :math:`\mathbb E_q[f(z)]` is :math:`\mathbb E_\varepsilon[\nabla f(\mu + \sigma\varepsilon)]`.
    ``eps`` broadcasts against ``mean`` (e.g. ``(k, N, d)`` against ``(N, d)``).
    Arrays and tensors of real numbers only (``None``, complex, dates and ``meta`` tensors are
    refused); NaN passes through, so that training's divergence guard reports it.
    """
    mean, log_var, eps = (_real_tensor(v, n) for v, n in
                          ((mean, "mean"), (log_var, "log_var"), (eps, "eps")))
    return mean + torch.exp(0.5 * log_var) * eps


def _real_tensor(x, name: str, finite: bool = False) -> torch.Tensor:
    """``x`` as a real tensor (a floating tensor unchanged, its graph kept), or a clear error."""
    return torch.as_tensor(as_real_array(x, name, finite=finite, keep_tensor=True))


def gaussian_kl(mean, log_var, reduce: bool = True) -> torch.Tensor:
    r"""Closed-form :math:`\mathrm{KL}(\mathcal N(\mu, \mathrm{diag}\,\sigma^2) \,\Vert\, \mathcal N(0, I))`,
    eq. (6.4) [vae-kl]:

    .. math::
        \mathrm{KL} = \tfrac12 \sum_j \big(\mu_j^2 + \sigma_j^2 - 1 - \log \sigma_j^2\big) \;\ge 0,

    summed over the last dimension; ``reduce=False`` returns the d terms of the sum, the KL of
    each latent dimension (what free bits, eq. (6.18) [vae-freebits], thresholds, and what is
    about 0 for an inactive unit, eq. (6.17) [vae-active]).
    """
    mean, log_var = _real_tensor(mean, "mean"), _real_tensor(log_var, "log_var")
    terms = 0.5 * (mean**2 + torch.exp(log_var) - 1.0 - log_var)
    return terms.sum(-1) if reduce else terms


def log_normal_diag(x, mean, log_var) -> torch.Tensor:
    """log N(x | mean, diag(exp(log_var))), summed over the last dimension."""
    return -0.5 * (_LOG_2PI + log_var + (x - mean) ** 2 * torch.exp(-log_var)).sum(-1)


def mixture_prior_log_prob(z, means, log_vars, logits) -> torch.Tensor:
    r"""Log-density of a mixture of K diagonal Gaussians, the learned prior p(z) of the VAE:
    the VampPrior of eq. (6.11) [vae-vamp] (equal weights, the encoder's Gaussians at the
    pseudo-inputs), the learned mixture prior, and the aggregate posterior of eq. (6.10)
    [vae-aggregate] (one component per training image):

    .. math::
        \log p(z) = \log \sum_{k=1}^K \pi_k\, \mathcal N(z \mid m_k, \mathrm{diag}\, v_k),
        \qquad \pi = \mathrm{softmax}(\text{logits}),

    computed with log-sum-exp. ``z`` is ``(..., d)``; ``means`` and ``log_vars`` (log v) are
    ``(K, d)``, ``logits`` ``(K,)``. Returns ``(...)``. With K = 1, m = 0 and log v = 0 it is
    the standard normal of :func:`log_normal_diag`. The VampPrior (Tomczak & Welling 2018) is the
    case of equal weights with (m_k, log v_k) the encoder's output at K learned pseudo-inputs.
    """
    comp = log_normal_diag(z.unsqueeze(-2), means, log_vars)  # (..., K)
    return torch.logsumexp(comp + torch.log_softmax(logits, dim=-1), dim=-1)


def monte_carlo_kl(z, mean, log_var, log_prior_z) -> torch.Tensor:
    r"""One-sample estimate of :math:`\mathrm{KL}(q(z\mid x)\,\Vert\,p(z))` for a prior without
    a closed form, eq. (6.12) [vae-mckl]:

    .. math::
        \widehat{\mathrm{KL}} = \log q(z\mid x) - \log p(z), \qquad z = \mu + \sigma \odot \varepsilon \sim q(z\mid x),

    unbiased for the KL (a single value may be negative). ``z``, ``mean``, ``log_var`` are
    ``(..., d)`` and ``log_prior_z`` is ``log p(z)`` ``(...)``. With the standard normal prior its
    expectation is :func:`gaussian_kl`. The same ``log p(z)`` enters the IWAE log-weights.
    """
    return log_normal_diag(z, mean, log_var) - log_prior_z


def elbo_terms(log_px_given_z, mean, log_var, kl=None):
    r"""The two terms of the ELBO, eq. (6.3) [vae-elbo], for one reparameterised draw per sample:

    .. math::
        \mathcal L(x) = \underbrace{\mathbb E_{q(z\mid x)}[\log p(x\mid z)]}_{\text{reconstruction}}
        - \underbrace{\mathrm{KL}(q(z\mid x)\,\Vert\,p(z))}_{\text{closed form}} \le \log p(x).

    ``log_px_given_z`` (N,) is log p(x | z) at z = μ + σ ε (a one-sample estimate of the
    expectation). The KL is :func:`gaussian_kl` for the standard normal prior; for another prior
    pass its one-sample estimate ``kl`` (:func:`monte_carlo_kl`). Returns
    ``(elbo, reconstruction, kl)``, each (N,).
    """
    if kl is None:
        kl = gaussian_kl(mean, log_var)
    return log_px_given_z - kl, log_px_given_z, kl


class ELBO(NamedTuple):
    """Per-sample ELBO and its two terms (NumPy arrays of shape (N,), nats)."""

    elbo: np.ndarray
    reconstruction: np.ndarray
    kl: np.ndarray


class InferenceGaps(NamedTuple):
    """The terms of eq. (6.15) [vae-gaps] per sample (NumPy arrays of shape (N,), nats), from
    :meth:`VAE.inference_gaps`."""

    log_px: np.ndarray  #: log p(x), IWAE with k draws (a lower bound, tight for large k)
    elbo_optimal: np.ndarray  #: ELBO of the per-sample optimised Gaussian q*
    elbo_encoder: np.ndarray  #: ELBO of the encoder's Gaussian q_φ(z | x)
    approximation: np.ndarray  #: log p(x) − ELBO(q*)
    amortisation: np.ndarray  #: ELBO(q*) − ELBO(q_φ)


# ====================================================================== gradients, gaps, collapse


def reparam_gradient(f, mean, sigma, eps) -> torch.Tensor:
    r"""Per-draw reparameterised estimates of :math:`\frac{d}{d\mu}\mathbb E_{z\sim\mathcal N(\mu,\sigma^2)}[f(z)]`,
    eq. (6.13) [vae-gradrep]:

    .. math::
        \hat g_s = \frac{d}{d\mu} f(\mu + \sigma\varepsilon_s) = f'(\mu + \sigma\varepsilon_s),
        \qquad \varepsilon_s \sim \mathcal N(0, 1),

    computed by autograd through :func:`reparameterize` (``f`` must be a differentiable torch
    function applied elementwise). ``mean`` and ``sigma`` are numbers, ``eps`` a 1-D tensor of
    standard normal draws; returns the S estimates (their mean is the gradient estimate, their
    variance the estimator's variance for one draw).
    """
    eps = _as_draws(eps, "eps")
    sigma = check_real(sigma, "sigma", minimum=0.0, strict_min=True)
    mu = torch.full_like(eps, float(check_real(mean, "mean"))).requires_grad_(True)
    z = reparameterize(mu, torch.full_like(eps, 2.0 * math.log(sigma)), eps)
    (grad,) = torch.autograd.grad(f(z).sum(), mu)
    return grad


def score_function_gradient(f, mean, sigma, z, baseline: float = 0.0) -> torch.Tensor:
    r"""Per-draw score-function (REINFORCE, likelihood-ratio) estimates of
    :math:`\frac{d}{d\mu}\mathbb E_{z\sim\mathcal N(\mu,\sigma^2)}[f(z)]`, eq. (6.14)
    [vae-gradscore] (Williams 1992):

    .. math::
        \hat g_s = \big(f(z_s) - b\big)\,\frac{\partial}{\partial\mu}\log\mathcal N(z_s\mid\mu,\sigma^2)
        = \big(f(z_s) - b\big)\,\frac{z_s - \mu}{\sigma^2}, \qquad z_s \sim \mathcal N(\mu,\sigma^2),

    the score :math:`\partial_\mu \log q` computed by autograd. It needs only values of ``f``
    (no gradient of f, no reparameterisation), and is unbiased for any constant baseline
    ``b`` (the score has mean 0), which changes only its variance. ``z`` is a 1-D tensor of
    draws of N(mean, sigma²); returns the S estimates.
    """
    z = _as_draws(z, "z")
    sigma = check_real(sigma, "sigma", minimum=0.0, strict_min=True)
    baseline = check_real(baseline, "baseline")
    mu = torch.full_like(z, float(check_real(mean, "mean"))).requires_grad_(True)
    log_q = log_normal_diag(z.unsqueeze(-1), mu.unsqueeze(-1),
                            torch.full_like(z, 2.0 * math.log(sigma)).unsqueeze(-1))
    (score,) = torch.autograd.grad(log_q.sum(), mu)
    with torch.no_grad():
        return (f(z) - baseline) * score


def _as_draws(t, name: str) -> torch.Tensor:
    if isinstance(t, np.ndarray):
        t = torch.from_numpy(t)
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{name} must be a 1-D tensor of draws, got {type(t).__name__}")
    if t.ndim != 1 or len(t) < 1:
        raise ValueError(f"{name} must be a 1-D tensor of draws, got shape {tuple(t.shape)}")
    if t.is_complex() or not torch.isfinite(t).all():
        raise ValueError(f"{name} must hold finite real numbers")
    return t.detach().to(torch.float64)


def elbo_gap_split(log_px, elbo_optimal, elbo_encoder) -> dict:
    r"""The inference gap of a VAE split in two, eq. (6.15) [vae-gaps] (Cremer, Li & Duvenaud 2018):

    .. math::
        \log p(x) - \mathcal L[q_\phi] =
        \underbrace{\log p(x) - \mathcal L[q^*]}_{\text{approximation gap}}
        + \underbrace{\mathcal L[q^*] - \mathcal L[q_\phi]}_{\text{amortisation gap}},

    with :math:`q_\phi(z\mid x)` the encoder's Gaussian and :math:`q^*` the best Gaussian of
    the same family for this one x (found by optimising its mean and log-variance). Inputs
    are per-sample arrays (nats); returns a dict of per-sample arrays ``"approximation"``,
    ``"amortisation"`` and ``"total"``.
    """
    lp, lo, le = (np.asarray(a, dtype=np.float64) for a in (log_px, elbo_optimal, elbo_encoder))
    if not lp.shape == lo.shape == le.shape:
        raise ValueError(f"log_px, elbo_optimal and elbo_encoder must have one shape, got "
                         f"{lp.shape}, {lo.shape}, {le.shape}")
    for name, a in (("log_px", lp), ("elbo_optimal", lo), ("elbo_encoder", le)):
        if not np.isfinite(a).all():
            raise ValueError(f"{name} contains NaN or infinite values")
    return {"approximation": lp - lo, "amortisation": lo - le, "total": lp - le}


def active_units(means, threshold: float = 0.01):
    r"""Active latent units, eq. (6.17) [vae-active] (Burda et al. 2016): unit u is active when

    .. math::
        A_u = \mathrm{Cov}_{x}\big(\mathbb E_{q(z\mid x)}[z_u]\big) > 0.01,

    the variance over the data of the encoder's mean for that unit. An inactive unit's code is
    the same for every image: it carries no information about x, its KL to the prior is about
    0 (with the N(0, I) prior), and the decoder ignores it: **posterior collapse** of that
    unit. ``means`` (N, d) are the encoder's means on N images. Returns ``(n_active,
    activity)``, the count and the d variances.
    """
    m = np.asarray(means.detach().cpu() if isinstance(means, torch.Tensor) else means,
                   dtype=np.float64)
    if m.ndim != 2 or len(m) < 2:
        raise ValueError(f"means must be a 2-D array (N >= 2 images, d units), got shape "
                         f"{m.shape}")
    if not np.isfinite(m).all():
        raise ValueError("means contains NaN or infinite values")
    threshold = check_real(threshold, "threshold", minimum=0.0)
    activity = m.var(0)
    return int((activity > threshold).sum()), activity


def free_bits_kl(kl_groups, free_bits: float) -> torch.Tensor:
    r"""The KL term of the free-bits objective, eq. (6.18) [vae-freebits] (Kingma et al. 2016):

    .. math::
        \sum_{g} \max\big(\lambda,\ \tfrac1B\textstyle\sum_{n=1}^B \mathrm{KL}_g(x_n)\big),

    for the KL split into groups g (each latent dimension with the N(0, I) prior; the whole
    KL with a learned prior, whose KL does not split by dimension) averaged over the
    mini-batch of B images. A group whose KL is below λ nats costs λ whatever it does, so the
    objective stops pushing it to 0: the remedy for posterior collapse. With λ = 0 it is the
    mini-batch mean of the KL. ``kl_groups`` is (B, G); returns a scalar.
    """
    return torch.clamp(kl_groups.mean(0), min=float(free_bits)).sum()


# ====================================================================== decoder likelihoods


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


#: Parameters per pixel that a decoder network outputs, for each likelihood.
def n_decoder_params(likelihood: str, n_levels: int = DIGIT_LEVELS) -> int:
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
        # and a draw counts the edges whose CDF lies below a uniform u (inverse CDF).
        h = 0.5 / (n_levels - 1)
        edges = torch.arange(n_levels - 1, dtype=params.dtype, device=params.device)
        edges = edges / (n_levels - 1) + h
        scale = torch.exp(params[..., 1:2].clamp(min=_MIN_LOG_SCALE))
        cdf = torch.sigmoid((edges - params[..., :1]) / scale)  # (..., L-1)
        if draw:
            u = torch.rand(cdf.shape[:-1], generator=generator, device=cdf.device,
                           dtype=cdf.dtype)
            return (cdf < u.unsqueeze(-1)).sum(-1).to(params.dtype) / (n_levels - 1)
        return (1.0 - cdf).sum(-1) / (n_levels - 1)
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
    if draw:
        return torch.bernoulli(p, generator=generator)
    return p


# ====================================================================== IWAE


def iwae_log_likelihood(log_weights, dim: int = -1) -> torch.Tensor:
    r"""The importance-weighted estimate of log p(x), eq. (6.9) [vae-iwae] (Burda et al. 2016):

    .. math::
        \log \hat p_k(x) = \log \frac1k \sum_{i=1}^k \frac{p(x, z_i)}{q(z_i \mid x)},
        \qquad z_i \sim q(z \mid x),

    from the log-weights :math:`\log w_i = \log p(x\mid z_i) + \log p(z_i) - \log q(z_i\mid x)`
    (k of them along ``dim``), computed with log-sum-exp. k = 1 is the ELBO (in expectation);
    its expectation never decreases with k and tends to log p(x).
    Log-weights must be real and not NaN or +inf (−inf, a weight of zero, is allowed).
    """
    log_weights = _real_tensor(log_weights, "log_weights")
    if bool(torch.isnan(log_weights).any()) or bool(torch.isposinf(log_weights).any()):
        raise ValueError("log_weights contains NaN or +inf values")
    return _log_mean_exp(log_weights, dim)


def _log_mean_exp(log_weights: torch.Tensor, dim: int) -> torch.Tensor:
    """log of the mean of exp(log_weights) along ``dim``, by log-sum-exp: eq. (6.9)'s arithmetic,
    unchecked (the training objective calls it on every step; NaN there is the divergence
    guard's to report)."""
    return torch.logsumexp(log_weights, dim=dim) - math.log(log_weights.shape[dim])


def iwae_standard_error(log_weights, dim: int = -1) -> torch.Tensor:
    r"""Monte Carlo standard error of :func:`iwae_log_likelihood` from its own k log-weights.

    Delta method: :math:`\log \bar w` has variance about :math:`\operatorname{Var}(w) / (k\,\bar w^2)`,
    i.e. :math:`(\overline{w^2}/\bar w^2 - 1)/k`, computed in log space.
    """
    k = log_weights.shape[dim]
    log_mean = torch.logsumexp(log_weights, dim=dim) - math.log(k)
    log_mean_sq = torch.logsumexp(2 * log_weights, dim=dim) - math.log(k)
    rel_var = torch.clamp(torch.exp(log_mean_sq - 2 * log_mean) - 1.0, min=0.0)
    return torch.sqrt(rel_var / k)


def iwae_curve(log_weights, ks) -> dict:
    """Mean over samples of IWAE_k for each k in ``ks`` from one set of K log-weights (N, K).

    Each k must divide K: the K weights are split into K/k groups and the estimate is averaged
    over the groups (a lower-variance estimate of E[IWAE_k] from the same draws).
    Returns ``{k: float}`` (nats per sample).
    """
    log_weights = torch.as_tensor(as_real_array(log_weights, "log_weights", ndim=2),
                                  dtype=torch.float64)
    N, K = log_weights.shape
    out = {}
    for k in ks:
        k = check_int(k, "k", minimum=1, maximum=K)
        if K % k:
            raise ValueError(f"each k must divide the number of log-weights {K}, got {k}")
        groups = log_weights.reshape(N, K // k, k)
        out[k] = float(iwae_log_likelihood(groups, dim=-1).mean())
    return out


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


# ====================================================================== networks


def _mlp_dropout(sizes, dropout: float) -> nn.Sequential:
    """:func:`course_lib.training.mlp` with ``nn.Dropout(dropout)`` after every hidden ReLU
    (the same layers, hence the same initial weights for the same seed)."""
    if dropout == 0:
        return mlp(sizes)
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers += [nn.ReLU(), nn.Dropout(dropout)]
    return nn.Sequential(*layers)


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


def vae_train_step(t, *, model, nets, optimizer, batches, x, y1h, generator, beta,
                   averaged=None, ema=0.0, step_offset=0):
    """One Adam step of :meth:`VAE.fit` on the next minibatch: maximise
    reconstruction − β · KL (the ELBO, eq. (6.3) [vae-elbo], when β = 1; β < 1 during the KL
    warm-up; with ``model.free_bits`` = λ > 0 the KL term is eq. (6.18) [vae-freebits]), or
    with ``model.train_samples = k > 1`` the importance-weighted bound
    eq. (6.9) [vae-iwae] of k draws (their log-weights with β on log p(z) − log q(z|x)).
    ``nets`` is ``(encoder, decoder, prior)``; ``batches`` yields index tensors.

    With ``averaged`` (copies of ``nets``) and ``ema`` > 0, their parameters then move to an
    exponential moving average of the trained ones (Polyak averaging) with decay
    ``min(ema, (1 + s) / (10 + s))`` at global step ``s = step_offset + t``.

    Returns the minibatch means of the ELBO (β = 1; for k > 1 the mean of the k one-draw
    ELBOs), the reconstruction and the KL, for the history that
    :func:`course_lib.training.train_loop` keeps."""
    enc, dec, prior = nets
    idx = next(batches).to(x.device)
    xb, yb = x[idx], None if y1h is None else y1h[idx]
    k = model.train_samples
    if k == 1 and model.free_bits > 0:
        (elbo, rec, kl), groups = model._elbo_t(enc, dec, xb, yb, generator, prior,
                                                kl_groups=True)
        lam = model.free_bits * (1 if groups.shape[-1] == model.latent_dim else model.latent_dim)
        loss = -(rec.mean() - beta * free_bits_kl(groups, lam))
    elif k == 1:
        elbo, rec, kl = model._elbo_t(enc, dec, xb, yb, generator, prior)
        loss = -(rec - beta * kl).mean()
    else:
        rec, kl = model._draws_t(enc, dec, xb, yb, generator, prior, k)  # (k, N) each
        loss = -_log_mean_exp(rec - beta * kl, dim=0).mean()
        elbo, rec, kl = (rec - kl).mean(0), rec.mean(0), kl.mean(0)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    if averaged is not None:
        decay = min(ema, (1.0 + step_offset + t) / (10.0 + step_offset + t))
        with torch.no_grad():
            for avg, net in zip(averaged, nets):
                for pa, p in zip(avg.parameters(), net.parameters()):
                    pa.lerp_(p, 1.0 - decay)
    return {"elbo": elbo.mean().detach(), "reconstruction": rec.mean().detach(),
            "kl": kl.mean().detach()}


# ====================================================================== the estimator


class _EarlyStopping:
    """The per-epoch bookkeeping of :meth:`VAE.fit`'s early stopping: the epochs run
    (``n_epochs``), the best validation ELBO so far with the kept networks' weights at that
    epoch, and the epochs since it improved. Patience is lost only after the KL warm-up."""

    def __init__(self, n_iter_no_change: int, kl_warmup: int):
        self.n_iter_no_change, self.kl_warmup = n_iter_no_change, kl_warmup
        self.n_epochs = 0
        self.best = -math.inf
        self.best_state = None
        self.best_at = 0
        self.stale = 0

    def update(self, v: float, kept) -> bool:
        """Record the validation ELBO ``v`` of epoch ``n_epochs`` (copying the weights of
        ``kept`` when it is the best); True when training should stop."""
        if v > self.best:
            self.best, self.best_at, self.stale = v, self.n_epochs, 0
            self.best_state = tuple(copy.deepcopy(net.state_dict()) for net in kept)
        elif self.n_epochs > self.kl_warmup:  # no patience lost during the warm-up
            self.stale += 1
            return self.stale >= self.n_iter_no_change
        return False

    def restore_best(self, kept) -> None:
        """Load the best epoch's weights into ``kept`` (nothing without validation)."""
        if self.best_state is not None:
            for net, sd in zip(kept, self.best_state):
                net.load_state_dict(sd)

    @property
    def best_epoch(self) -> int:
        """The epoch whose weights were kept: the best one, or the last without validation."""
        return self.best_at if self.best_state is not None else self.n_epochs


class VAE(NeuralEstimator):
    r"""Variational autoencoder (Kingma & Welling 2014; Rezende et al. 2014), conditional when
    labels are given to :meth:`fit` (Sohn et al. 2015).

    Model: :math:`z \sim p(z)`, :math:`x \mid z \sim p_\theta(x \mid z)` with a
    decoder network giving the parameters of ``likelihood`` for every pixel; encoder
    :math:`q_\phi(z \mid x) = \mathcal N(\mu_\phi(x), \mathrm{diag}\,\sigma^2_\phi(x))`.
    The prior p(z) is by default a VampPrior (Tomczak & Welling 2018), eq. (6.11) [vae-vamp], the mixture
    :math:`\frac1K\sum_k q_\phi(z \mid u_k)` at K learned pseudo-inputs, learnt with the rest;
    ``prior="gaussian"`` is the textbook :math:`\mathcal N(0, I_d)`. Trained by maximising the
    ELBO, eq. (6.3) [vae-elbo] (its KL by Monte Carlo for a learned prior, eq. (6.12)
    [vae-mckl], :func:`monte_carlo_kl`), with Adam on minibatches through
    :func:`course_lib.training.train_loop`, keeping a moving average of the weights, and stopped
    early on a validation split.

    The defaults were chosen by ``benchmarks/vae_prior.py`` (results in
    ``benchmarks/results/vae_prior_cpu.txt``): on the digits the old defaults (N(0, I) prior,
    batch 256, 100 epochs, no validation split) overfit the 1,438 training digits and sampled
    the holes between the prior and the aggregate posterior.

    Parameters
    ----------
    latent_dim : int >= 1, default 16
    likelihood : {"discretized_logistic", "categorical", "gaussian", "bernoulli"}
        The decoder p(x | z); see the module docstring for the scale of each. The default,
        the discretised logistic, gave the best held-out bits per pixel on the digits
        (``benchmarks/vae_digits.py``).
    hidden : tuple of int, default (512,)
        Widths of the hidden layers of the default MLP encoder (the decoder mirrors them).
    epochs : int >= 1, default 1000
        The most epochs; early stopping usually ends training long before (on the digits
        after about 100).
    batch_size : int >= 1, default 64
    lr : float > 0, default 3e-3 (Adam; AdamW when ``weight_decay`` > 0)
    prior : {"vamp", "mixture", "gaussian"}, default "vamp"
        p(z): the VampPrior, a learned mixture of ``n_components`` diagonal Gaussians
        (:func:`mixture_prior_log_prob`), or N(0, I). :meth:`sample`, the ELBO and the IWAE
        weights all use it.
    n_components : int >= 1, default 100
        Pseudo-inputs of the VampPrior, or components of the mixture prior.
    dropout : float in [0, 1), default 0.0
        Dropout after each hidden layer of the default MLPs (during training only).
    weight_decay : float >= 0, default 0.0 (decoupled, AdamW)
    kl_warmup : int >= 0, default 0
        Epochs over which the KL's weight β rises linearly to 1 (0: β = 1 throughout); no
        early-stopping patience is lost during the warm-up. A remedy for posterior collapse
        (inactive latent units, eq. (6.17) [vae-active]): on the digits, 20 epochs made all 16
        units active, but did not improve the held-out likelihood or the FID on three seeds
        (worse with the N(0, I) prior; ``benchmarks/results/vae_collapse_cpu.txt``), so it is
        off by default.
    free_bits : float >= 0, default 0.0
        λ, nats per latent dimension: training charges max(λ, mini-batch mean KL) for each
        latent dimension with the N(0, I) prior, and max(λ·d, mean KL) for the whole KL with a
        learned prior, eq. (6.18) [vae-freebits] (Kingma et al. 2016), so that the objective
        stops pushing a unit's KL below λ. The validation ELBO, the history and every score
        are the true ELBO. 0: off. Not with ``train_samples`` > 1. On the digits
        (``benchmarks/results/vae_collapse_cpu.txt``, three seeds) λ = 1 with the VampPrior and
        λ = 0.5 with N(0, I) made all 16 units active without improving the held-out likelihood
        or the FID, so it is off by default.
    train_samples : int >= 1, default 1
        1: maximise the ELBO; k > 1: the importance-weighted bound of k draws, eq. (6.9)
        [vae-iwae] (Burda et al. 2016).
    ema : float in [0, 1), default 0.999
        Decay of the exponential moving average of the weights (Polyak averaging; the decay
        is ``min(ema, (1 + s)/(10 + s))`` at step s). The averaged networks are validated,
        kept and returned. 0: the last weights.
    validation_fraction : float in [0, 1), default 0.1
        If > 0, this fraction of the training data is held out (stratified by label when
        labels are given and every class can spare one); its ELBO (one draw per sample,
        fixed noise) is computed after every epoch (``history_["val_elbo"]``) and training
        stops after ``n_iter_no_change`` epochs without improvement, keeping the best
        weights. 0: train for ``epochs`` epochs on all the data.
    n_iter_no_change : int >= 1, default 20
    n_levels : int >= 2, default 17
        Grey levels of the discrete decoders.
    encoder, decoder : callable or None
        ``encoder(in_features, out_features) -> nn.Module`` replaces the default MLP: it maps
        flattened inputs (plus a one-hot label for a conditional model) to ``2 * latent_dim``
        numbers (μ and log σ²). ``decoder(latent_dim [+ n_classes], D * P)`` maps z to the
        ``P`` parameters of every pixel. (A model with custom networks is saved with its
        weights, but :meth:`load` rebuilds the default networks: load it into an estimator
        built with the same callables via ``_restore``.)
    random_state : int or None
        Seeds the weights, the minibatch order and the noise. Same value, same result on the CPU.
    device : str, torch.device or None (``None``: :func:`course_lib.get_device`)
    progress : bool, default True

    Attributes
    ----------
    encoder_, decoder_ : nn.Module
    prior_ : nn.Module, the prior's parameters (:class:`VampPrior`, :class:`MixturePrior`, or
        an empty module for N(0, I))
    input_shape_ : tuple, the shape of one sample (``(D,)`` or ``(C, H, W)``)
    n_features_in_ : int, D
    classes_ : ndarray or None, the labels of a conditional model
    class_prior_ : ndarray or None, p(y): the training labels' frequencies (conditional models)
    history_ : dict of lists: per training step ``elbo``, ``reconstruction``, ``kl`` (nats per
        sample, minibatch); per epoch ``train_elbo`` (the mean of the epoch's minibatch ELBOs)
        and ``val_elbo`` (when a validation split is used): the learning curve
    n_epochs_ : int, epochs run;  best_epoch_ : int;  fit_time_ : float, seconds
    """

    _fitted_attribute = "decoder_"

    def __init__(
        self,
        latent_dim: int = 16,
        likelihood: str = "discretized_logistic",
        hidden=(512,),
        epochs: int = 1000,
        batch_size: int = 64,
        lr: float = 3e-3,
        prior: str = "vamp",
        n_components: int = 100,
        dropout: float = 0.0,
        weight_decay: float = 0.0,
        kl_warmup: int = 0,
        free_bits: float = 0.0,
        train_samples: int = 1,
        ema: float = 0.999,
        validation_fraction: float = 0.1,
        n_iter_no_change: int = 20,
        n_levels: int = DIGIT_LEVELS,
        encoder=None,
        decoder=None,
        random_state=None,
        device=None,
        progress: bool = True,
    ):
        self.latent_dim = latent_dim
        self.likelihood = likelihood
        self.hidden = hidden
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.prior = prior
        self.n_components = n_components
        self.dropout = dropout
        self.weight_decay = weight_decay
        self.kl_warmup = kl_warmup
        self.free_bits = free_bits
        self.train_samples = train_samples
        self.ema = ema
        self.validation_fraction = validation_fraction
        self.n_iter_no_change = n_iter_no_change
        self.n_levels = n_levels
        self.encoder = encoder
        self.decoder = decoder
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ checks

    def _check_hyperparameters(self):
        check_bool(self.progress, "progress")
        check_int(self.latent_dim, "latent_dim", minimum=1)
        check_choice(self.likelihood, "likelihood", LIKELIHOODS)
        hidden = tuple(self.hidden) if self.hidden is not None else ()
        for h in hidden:
            check_int(h, "hidden (each width)", minimum=1)
        check_int(self.epochs, "epochs", minimum=1)
        check_int(self.batch_size, "batch_size", minimum=1)
        check_real(self.lr, "lr", minimum=0.0, strict_min=True)
        check_choice(self.prior, "prior", PRIORS)
        check_int(self.n_components, "n_components", minimum=1)
        check_real(self.dropout, "dropout", minimum=0.0, maximum=1.0, strict_max=True)
        check_real(self.weight_decay, "weight_decay", minimum=0.0)
        check_int(self.kl_warmup, "kl_warmup", minimum=0)
        check_real(self.free_bits, "free_bits", minimum=0.0)
        if self.free_bits > 0 and self.train_samples > 1:
            raise ValueError("free_bits applies to the ELBO (train_samples=1), got "
                             f"train_samples={self.train_samples}")
        check_int(self.train_samples, "train_samples", minimum=1)
        check_real(self.ema, "ema", minimum=0.0, maximum=1.0, strict_max=True)
        check_real(self.validation_fraction, "validation_fraction", minimum=0.0, maximum=1.0,
                   strict_max=True)
        check_int(self.n_iter_no_change, "n_iter_no_change", minimum=1)
        check_int(self.n_levels, "n_levels", minimum=2)
        for name in ("encoder", "decoder"):
            value = getattr(self, name)
            if value is not None and not callable(value):
                raise TypeError(f"{name} must be None or a callable (in_features, out_features)"
                                f" -> nn.Module, got {type(value).__name__}")
        return hidden

    def _check_X(self, X, name="X", *, reset=False) -> torch.Tensor:
        """Validate data against the decoder's support and (after fit) the fitted shape."""
        X = check_input(X, name, min_samples=2 if reset else 1)
        X = as_tensor(X, name, ndim=(2, 4), dtype=torch.float32, device="cpu")
        if not reset:
            want = tuple(self.input_shape_)
            n_features = int(np.prod(X.shape[1:]))
            if n_features != self.n_features_in_:  # scikit-learn's wording
                raise ValueError(f"{name} has {n_features} features, but VAE is expecting "
                                 f"{self.n_features_in_} features as input (samples of shape "
                                 f"{want}, like the training data); got shape {tuple(X.shape)}")
            if tuple(X.shape[1:]) != want:
                raise ValueError(f"{name} must have shape (N, {', '.join(map(str, want))}) like "
                                 f"the training data, got {tuple(X.shape)}")
        if self.likelihood in DISCRETE:
            lo, hi = float(X.min()), float(X.max())
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"{name} must be in [0, 1] for likelihood={self.likelihood!r} (grey levels, "
                    f"dequantised or level/{self.n_levels - 1}), found values in [{lo:.4g}, "
                    f"{hi:.4g}]")
        elif self.likelihood == "bernoulli":
            if not bool(((X == 0) | (X == 1)).all()):
                raise ValueError(f"{name} must contain only 0 and 1 for likelihood='bernoulli' "
                                 "(binarise it first, e.g. X > 0.5)")
        return X

    # ------------------------------------------------------------------ networks

    @property
    def _n_classes(self) -> int:
        return 0 if getattr(self, "classes_", None) is None else len(self.classes_)

    def _build_networks(self, D, n_classes, hidden):
        d, C = self.latent_dim, n_classes
        P = n_decoder_params(self.likelihood, self.n_levels)
        if self.encoder is not None:
            enc = self.encoder(D + C, 2 * d)
        else:
            enc = _mlp_dropout([D + C, *hidden, 2 * d], self.dropout)
        if self.decoder is not None:
            dec = self.decoder(d + C, D * P)
        else:
            dec = _mlp_dropout([d + C, *reversed(hidden), D * P], self.dropout)
        for name, net in (("encoder", enc), ("decoder", dec)):
            if not isinstance(net, nn.Module):
                raise TypeError(f"{name} must return an nn.Module, got {type(net).__name__}")
        return enc, dec

    def _build_prior(self, D, n_classes) -> nn.Module:
        """The prior's parameters: none for ``"gaussian"`` (an empty module)."""
        if self.prior == "mixture":
            return MixturePrior(self.latent_dim, self.n_components)
        if self.prior == "vamp":
            return VampPrior(D, self.n_components, n_classes,
                             bounded=self.likelihood in (*DISCRETE, "bernoulli"))
        return nn.Module()

    def _prior_components(self, enc, prior):
        """``(means, log_vars, logits)`` of a mixture prior, or None for the standard normal."""
        if self.prior == "gaussian":
            return None
        return prior.components(functools.partial(self._encode_t, enc, encoded=True))

    @staticmethod
    def _log_prior(z, comps) -> torch.Tensor:
        """log p(z) (...) for z (..., d): standard normal, or the mixture ``comps``."""
        if comps is None:
            return log_normal_diag(z, torch.zeros_like(z), torch.zeros_like(z))
        return mixture_prior_log_prob(z, *comps)

    def _sample_prior(self, n, comps, generator, device) -> torch.Tensor:
        """n draws from p(z): a component from the weights, then its Gaussian."""
        eps = torch.randn(n, self.latent_dim, generator=generator, device=device)
        if comps is None:
            return eps
        means, log_vars, logits = comps
        k = torch.multinomial(torch.softmax(logits, -1).expand(n, -1), 1,
                              generator=generator).squeeze(-1)
        return reparameterize(means[k], log_vars[k], eps)

    def _encoder_input(self, x):
        """What the encoder sees: grey levels rescaled to [0, 1] for discrete decoders."""
        if self.likelihood in DISCRETE:
            return to_levels(x, self.n_levels) / (self.n_levels - 1)
        return x


    def _encode_t(self, enc, x, y1h, encoded=False):
        inp = x if encoded else self._encoder_input(x)
        if y1h is not None:
            inp = torch.cat([inp, y1h], dim=-1)
        h = enc(inp)
        if h.shape[-1] != 2 * self.latent_dim:
            raise ValueError(f"the encoder must output 2 * latent_dim = {2 * self.latent_dim} "
                             f"numbers per sample, got {h.shape[-1]}")
        mean, log_var = h.chunk(2, dim=-1)
        return mean, log_var

    def _decode_t(self, dec, z, y1h, D):
        if y1h is not None:
            if y1h.dim() < z.dim():
                y1h = y1h.expand(*z.shape[:-1], y1h.shape[-1])
            z = torch.cat([z, y1h], dim=-1)
        out = dec(z)
        P = n_decoder_params(self.likelihood, self.n_levels)
        if out.shape[-1] != D * P:
            raise ValueError(f"the decoder must output D * P = {D * P} numbers per sample "
                             f"(P = {P} for {self.likelihood}), got {out.shape[-1]}")
        return out.reshape(*out.shape[:-1], D, P)

    def _elbo_t(self, enc, dec, x, y1h, generator, prior=None, *, kl_groups=False):
        """One-sample ELBO terms (N,) for flattened x (N, D): the KL in closed form for the
        standard normal prior, by Monte Carlo at the same z for a mixture prior. With
        ``kl_groups``, also the KL's groups for free bits, (N, G): per dimension for the
        standard normal prior (G = d), the whole KL for a mixture (G = 1)."""
        mean, log_var = self._encode_t(enc, x, y1h)
        eps = torch.randn(mean.shape, generator=generator, device=mean.device, dtype=mean.dtype)
        z = reparameterize(mean, log_var, eps)
        params = self._decode_t(dec, z, y1h, x.shape[-1])
        rec = decoder_log_prob(self.likelihood, x, params, self.n_levels)
        comps = self._prior_components(enc, prior)
        kl = None if comps is None else monte_carlo_kl(z, mean, log_var,
                                                       self._log_prior(z, comps))
        terms = elbo_terms(rec, mean, log_var, kl)
        if not kl_groups:
            return terms
        groups = gaussian_kl(mean, log_var, reduce=False) if comps is None else kl[:, None]
        return terms, groups

    def _draws_t(self, enc, dec, x, y1h, generator, prior, k):
        """log p(x | z_i) and the one-draw KL log q(z_i | x) − log p(z_i), (k, N) each, at k
        draws z_i ~ q(z | x): the terms of the importance log-weights."""
        mean, log_var = self._encode_t(enc, x, y1h)
        eps = torch.randn((k, *mean.shape), generator=generator, device=mean.device,
                          dtype=mean.dtype)
        z = reparameterize(mean, log_var, eps)
        params = self._decode_t(dec, z, y1h, x.shape[-1])
        rec = decoder_log_prob(self.likelihood, x.expand(k, *x.shape), params, self.n_levels)
        comps = self._prior_components(enc, prior)
        return rec, monte_carlo_kl(z, mean, log_var, self._log_prior(z, comps))

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None):
        """Fit by maximising the ELBO; labels ``y`` make the model conditional. Returns self.

        Reads top to bottom: the set-up (checks, labels, the validation split, networks and
        optimiser), the epochs of :func:`vae_train_step` (the ELBO, eq. (6.3) [vae-elbo], or
        the importance-weighted bound, eq. (6.9) [vae-iwae]) with early stopping on the
        validation ELBO, and the fitted state."""
        hidden = self._check_hyperparameters()
        device = self._target_device()
        X = self._check_X(X, reset=True)
        N, input_shape = X.shape[0], tuple(X.shape[1:])
        x_all = X.reshape(N, -1)
        classes, y_idx = self._fit_labels(y, N)
        seeds = np.random.SeedSequence(self._training_seed()).generate_state(3, dtype=np.uint64)
        gen = self._seeded_generator(int(seeds[0]), device)  # the noise epsilon
        cpu_gen = self._seeded_generator(int(seeds[1]), "cpu")  # split and minibatch order
        val_idx, train_idx = self._split(N, y_idx, classes, cpu_gen)
        nets, opt = self._build_training(x_all.shape[1], classes, hidden, int(seeds[2]), device)
        x_dev = x_all.to(device)
        y1h_all = one_hot(y_idx, 0 if classes is None else len(classes), device)
        x_tr = x_dev[train_idx.to(device)]
        y_tr = None if y1h_all is None else y1h_all[train_idx.to(device)]
        batch_size = min(self.batch_size, len(train_idx))
        batches = minibatches(len(train_idx), batch_size, cpu_gen)
        # Polyak averaging: the averaged copies are validated, kept and returned
        averaged = tuple(copy.deepcopy(net) for net in nets) if self.ema > 0 else None
        kept = nets if averaged is None else averaged

        history: dict = {"elbo": [], "reconstruction": [], "kl": [], "train_elbo": []}
        stopping = _EarlyStopping(self.n_iter_no_change, self.kl_warmup)
        start = time.perf_counter()
        epochs = progress(range(self.epochs), self.progress, desc="VAE", unit="epoch")
        # dropout draws from torch's global RNG: seeded, so that the result depends on the
        # seed only, and the caller's RNG is left as it was
        with seeded(int(seeds[2]) + 1):
            for epoch in epochs:
                self._train_epoch(epoch, history, nets, opt, averaged, batches, x_tr, y_tr, gen,
                                  steps_per_epoch=math.ceil(len(train_idx) / batch_size))
                stopping.n_epochs = epoch + 1
                if val_idx is not None:
                    v = self._validate(nets, kept, x_dev, y1h_all, val_idx, stopping.n_epochs)
                    history.setdefault("val_elbo", []).append(v)
                    if stopping.update(v, kept):
                        break
                if hasattr(epochs, "set_postfix"):
                    epochs.set_postfix(elbo=f"{history['elbo'][-1]:.1f}")
        if hasattr(epochs, "close"):
            epochs.close()
        stopping.restore_best(kept)
        for net in kept:
            net.eval()
        # success: commit the fitted state
        self.encoder_, self.decoder_, self.prior_ = kept
        self.classes_ = classes
        self.class_prior_ = (None if y_idx is None else
                             np.bincount(y_idx.numpy(), minlength=len(classes)) / len(y_idx))
        self.input_shape_ = input_shape
        self.n_features_in_ = x_all.shape[1]
        self.history_ = history
        self.n_epochs_ = stopping.n_epochs
        self.best_epoch_ = stopping.best_epoch
        self.fit_time_ = time.perf_counter() - start
        self._rng_ = gen
        return self

    def _train_epoch(self, epoch, history, nets, opt, averaged, batches, x, y1h, gen, *,
                     steps_per_epoch) -> None:
        """One epoch of :func:`vae_train_step` (the ELBO, eq. (6.3) [vae-elbo]; its KL
        weighted by β = min(1, (epoch + 1) / kl_warmup) during the warm-up), the networks in
        training mode; appends the steps' scalars and the epoch's mean ELBO to ``history``."""
        beta = min(1.0, (epoch + 1) / self.kl_warmup) if self.kl_warmup else 1.0
        for net in nets:
            net.train()
        step = functools.partial(vae_train_step, model=self, nets=nets, optimizer=opt,
                                 batches=batches, x=x, y1h=y1h, generator=gen, beta=beta,
                                 averaged=averaged, ema=self.ema,
                                 step_offset=epoch * steps_per_epoch)
        h = train_loop(step, steps_per_epoch, progress=False, desc="VAE", check=("elbo",))
        for key in ("elbo", "reconstruction", "kl"):
            history[key].extend(h[key])
        history["train_elbo"].append(float(np.mean(h["elbo"])))

    def _split(self, N, y_idx, classes, cpu_gen):
        """The validation split ``(val_idx, train_idx)`` of ``validation_fraction`` of the N
        rows (stratified by label when there are labels), drawn from ``cpu_gen``; ``val_idx``
        is None without validation."""
        if not self.validation_fraction > 0:
            return None, torch.arange(N)
        perm = torch.randperm(N, generator=cpu_gen)
        n_val = max(1, int(round(self.validation_fraction * N)))
        val_idx = perm[:n_val]
        if y_idx is not None:
            vals = []
            for c in range(len(classes)):
                members = perm[y_idx[perm] == c]
                vals.append(members[: int(round(self.validation_fraction * len(members)))])
            if sum(len(v) for v in vals):  # else too few per class: an unstratified split
                val_idx = torch.cat(vals)
        mask = torch.ones(N, dtype=torch.bool)
        mask[val_idx] = False
        train_idx = torch.nonzero(mask).flatten()
        if len(train_idx) == 0:
            raise ValueError(f"validation_fraction={self.validation_fraction} leaves an "
                             f"empty training set for {N} samples")
        return val_idx, train_idx

    def _build_training(self, D, classes, hidden, seed, device):
        """The networks ``(encoder, decoder, prior)`` on the device, initialised from ``seed``
        (torch's global RNG is left untouched), and their optimiser (AdamW when
        ``weight_decay`` > 0, else Adam)."""
        n_classes = 0 if classes is None else len(classes)
        with seeded(seed):
            enc, dec = self._build_networks(D, n_classes, hidden)
            prior = self._build_prior(D, n_classes)
        enc, dec, prior = enc.to(device), dec.to(device), prior.to(device)
        params = [*enc.parameters(), *dec.parameters(), *prior.parameters()]
        if self.weight_decay > 0:
            opt = torch.optim.AdamW(params, lr=self.lr, weight_decay=self.weight_decay)
        else:
            opt = torch.optim.Adam(params, lr=self.lr)
        return (enc, dec, prior), opt

    def _validate(self, nets, kept, x, y1h, val_idx, n_epochs) -> float:
        """The mean one-sample ELBO, eq. (6.3) [vae-elbo], of the kept networks on the
        validation rows (fixed noise: seed 0), all networks in evaluation mode. Raises
        :class:`course_lib.training.DivergenceError` if it is not finite."""
        for net in (*nets, *kept):
            net.eval()
        device = x.device
        with torch.no_grad():
            vi = val_idx.to(device)
            v = self._elbo_t(kept[0], kept[1], x[vi], None if y1h is None else y1h[vi],
                             make_generator(0, device=device), kept[2])[0].mean().item()
        if not math.isfinite(v):
            raise DivergenceError(f"the validation ELBO became {v} after epoch "
                                  f"{n_epochs}; try a smaller lr")
        return v

    # ------------------------------------------------------------------ save / load

    def _networks_state(self):
        self._check_fitted()
        return {"encoder": self.encoder_.state_dict(), "decoder": self.decoder_.state_dict(),
                "prior": self.prior_.state_dict()}

    def _checkpoint_meta(self):
        self._check_fitted()
        return {"input_shape": list(self.input_shape_),
                "classes": None if self.classes_ is None else self.classes_.tolist(),
                "class_prior": (None if self.class_prior_ is None
                                else [float(v) for v in self.class_prior_]),
                "n_epochs": int(self.n_epochs_), "best_epoch": int(self.best_epoch_),
                "fit_time": float(self.fit_time_)}

    def _restore(self, meta, state):
        hidden = self._check_hyperparameters()
        device = self._target_device()
        classes = None if meta["classes"] is None else np.asarray(meta["classes"])
        input_shape = tuple(int(s) for s in meta["input_shape"])
        D = int(np.prod(input_shape))
        self.classes_ = classes
        n_classes = 0 if classes is None else len(classes)
        stored = meta.get("class_prior")  # older checkpoints: uniform over the classes
        self.class_prior_ = (None if classes is None else np.full(n_classes, 1.0 / n_classes)
                             if stored is None else np.asarray(stored, dtype=np.float64))
        enc, dec = self._build_networks(D, n_classes, hidden)
        prior = self._build_prior(D, n_classes)
        enc.load_state_dict(state["encoder"])
        dec.load_state_dict(state["decoder"])
        prior.load_state_dict(state.get("prior", {}))
        self.encoder_, self.decoder_ = enc.to(device).eval(), dec.to(device).eval()
        self.prior_ = prior.to(device).eval()
        self.input_shape_ = input_shape
        self.n_features_in_ = D
        self.n_epochs_ = int(meta.get("n_epochs", 0))
        self.best_epoch_ = int(meta.get("best_epoch", 0))
        self.fit_time_ = float(meta.get("fit_time", 0.0))
        self._rng_ = self._seeded_generator(self._training_seed(), device)

    # ------------------------------------------------------------------ helpers after fit

    def _net_device(self):
        return next(self.decoder_.parameters()).device

    def _flat(self, X, name="X"):
        X = self._check_X(X, name)
        return X.reshape(len(X), -1).to(self._net_device())

    def _labels_1h(self, labels, n, name="labels", required=True):
        idx = self._label_index(labels, n, name, missing="error" if required else "none")
        return None if idx is None else one_hot(idx, self._n_classes, self._net_device())

    def _to_images(self, flat: torch.Tensor) -> np.ndarray:
        return flat.detach().cpu().numpy().astype(np.float32).reshape(len(flat),
                                                                      *self.input_shape_)

    # ------------------------------------------------------------------ public API

    @torch.no_grad()
    def elbo(self, X, labels=None, *, seed=None) -> ELBO:
        """Per-sample ELBO, eq. (6.3) [vae-elbo], with its reconstruction and KL terms (one draw of z
        per sample for the reconstruction; the KL in closed form for the N(0, I) prior, by Monte
        Carlo at the same draw, eq. (6.12) [vae-mckl], for a learned prior). Nats, on the
        course's scale: a one-draw estimate per sample (:meth:`rate_distortion` averages many)."""
        self._check_fitted()
        x = self._flat(X)
        y1h = self._labels_1h(labels, len(x))
        gen = self._sampling_generator(seed, x.device)
        e, r, k = self._elbo_t(self.encoder_, self.decoder_, x, y1h, gen, self.prior_)
        if not bool(torch.isfinite(e).all()):
            raise DivergenceError("the ELBO is not finite: the model's parameters diverged")
        return ELBO(*(t.double().cpu().numpy() for t in (e, r, k)))

    # ------------------------------------------------------------------ inside the ELBO

    def _terms_of_q(self, x, y1h, mean, log_var, n_draws, gen, comps):
        """log p(x | z) and the KL of the Gaussians (mean, log_var) (N, d), each averaged over
        ``n_draws`` reparameterised draws, (N,) each; differentiable in mean and log_var. The
        KL is the closed form for N(0, I), its Monte Carlo estimate at the same draws for a
        mixture prior."""
        eps = torch.randn((n_draws, *mean.shape), generator=gen, device=mean.device,
                          dtype=mean.dtype)
        z = reparameterize(mean, log_var, eps)
        params = self._decode_t(self.decoder_, z, y1h, x.shape[-1])
        rec = decoder_log_prob(self.likelihood, x.expand(n_draws, *x.shape), params,
                               self.n_levels).mean(0)
        if comps is None:
            kl = gaussian_kl(mean, log_var)
        else:
            kl = monte_carlo_kl(z, mean, log_var, self._log_prior(z, comps)).mean(0)
        return rec, kl

    @torch.no_grad()
    def _terms_of_q_batched(self, x, y1h, mean, log_var, n_draws, gen, comps):
        """:meth:`_terms_of_q` with many draws, in chunks of draws that fit in memory."""
        budget = _IWAE_ROWS.get(x.device.type, _IWAE_ROWS["cuda"])
        if comps is not None:
            budget = max(1024, budget // max(1, len(comps[0]) // 8))
        chunk = max(1, budget // len(x))
        rec = torch.zeros(len(x), dtype=torch.float64, device=x.device)
        kl = torch.zeros_like(rec)
        for j in range(0, n_draws, chunk):
            kk = min(chunk, n_draws - j)
            r, k = self._terms_of_q(x, y1h, mean, log_var, kk, gen, comps)
            rec += r.double() * kk
            kl += k.double() * kk
        return rec / n_draws, kl / n_draws

    def rate_distortion(self, X, labels=None, *, n_draws: int = 100, seed=0):
        r"""Distortion and rate of the encoder on X, eq. (6.16) [vae-ratedist] (Alemi et al. 2018):

        .. math::
            -\mathcal L(x) = \underbrace{-\mathbb E_{q(z\mid x)}[\log p(x\mid z)]}_{D(x),\ \text{distortion}}
            + \underbrace{\mathrm{KL}(q(z\mid x)\,\Vert\,p(z))}_{R(x),\ \text{rate}},

        each averaged over ``n_draws`` draws of z per sample (the KL in closed form for the
        N(0, I) prior). Returns ``(distortion, rate)``, NumPy arrays (N,) in nats: the rate is
        what the code costs, in nats, beyond the prior; the distortion what the decoder still
        has to pay to describe x given the code. (On the course's dequantised scale the
        distortion, a negative log-density, can be negative.)"""
        self._check_fitted()
        n_draws = check_int(n_draws, "n_draws", minimum=1)
        x = self._flat(X)
        y1h = self._labels_1h(labels, len(x))
        gen = self._sampling_generator(seed, x.device)
        with torch.no_grad():
            mean, log_var = self._encode_t(self.encoder_, x, y1h)
            comps = self._prior_components(self.encoder_, self.prior_)
            rec, kl = self._terms_of_q_batched(x, y1h, mean, log_var, n_draws, gen, comps)
        return -rec.cpu().numpy(), kl.cpu().numpy()

    def optimize_posterior(self, X, labels=None, *, steps: int = 300, lr: float = 0.01,
                           n_draws: int = 16, seed=0):
        r"""For every sample its own best Gaussian :math:`q^*(z) = \mathcal N(m, \mathrm{diag}\, e^{v})`:
        maximise the ELBO, eq. (6.3) [vae-elbo], over (m, v) alone, with the decoder and the
        prior fixed, starting from the encoder's output, by ``steps`` Adam steps (learning
        rate ``lr``) on the ELBO estimated from ``n_draws`` reparameterised draws per sample.

        This is the non-amortised inference of Cremer, Li & Duvenaud (2018): what the encoder
        would output if it could fit each x perfectly; the ELBO it reaches gives the
        amortisation gap of eq. (6.15) [vae-gaps]. Returns ``(mean, log_var)``, NumPy arrays
        (N, d)."""
        self._check_fitted()
        steps = check_int(steps, "steps", minimum=0)
        n_draws = check_int(n_draws, "n_draws", minimum=1)
        lr = check_real(lr, "lr", minimum=0.0, strict_min=True)
        x = self._flat(X)
        y1h = self._labels_1h(labels, len(x))
        gen = self._sampling_generator(seed, x.device)
        with torch.no_grad():
            mean0, log_var0 = self._encode_t(self.encoder_, x, y1h)
            comps = self._prior_components(self.encoder_, self.prior_)
        mean = mean0.detach().clone().requires_grad_(True)
        log_var = log_var0.detach().clone().requires_grad_(True)
        opt = torch.optim.Adam([mean, log_var], lr=lr)
        for _ in range(steps):
            rec, kl = self._terms_of_q(x, y1h, mean, log_var, n_draws, gen, comps)
            loss = -(rec - kl).sum()  # the samples are independent: a sum of their ELBOs
            mean.grad, log_var.grad = torch.autograd.grad(loss, (mean, log_var))
            opt.step()
        if not bool(torch.isfinite(mean).all() and torch.isfinite(log_var).all()):
            raise DivergenceError("the optimised posterior diverged: lower lr")
        return (mean.detach().cpu().numpy().astype(np.float64),
                log_var.detach().cpu().numpy().astype(np.float64))

    def inference_gaps(self, X, labels=None, *, steps: int = 300, lr: float = 0.01,
                       n_draws: int = 16, n_eval: int = 1000, k: int = 1000,
                       seed=0) -> InferenceGaps:
        r"""The ELBO's gap to log p(x), split into its approximation and amortisation parts,
        eq. (6.15) [vae-gaps] (Cremer, Li & Duvenaud 2018), per sample of X:

        - log p(x): :meth:`log_likelihood` with ``k`` importance samples (IWAE, eq. (6.9)
          [vae-iwae]; a lower bound that is tight for large k, so the approximation gap is
          slightly under-estimated);
        - ELBO(q*): the ELBO of :meth:`optimize_posterior`'s Gaussian (``steps``, ``lr``,
          ``n_draws``);
        - ELBO(q_φ): the ELBO of the encoder's Gaussian.

        Both ELBOs are averaged over the same ``n_eval`` draws of ε per sample (common random
        numbers, so that their difference has little Monte Carlo noise). Returns
        :class:`InferenceGaps` (nats)."""
        self._check_fitted()
        n_eval = check_int(n_eval, "n_eval", minimum=1)
        m_opt, lv_opt = self.optimize_posterior(X, labels, steps=steps, lr=lr,
                                                n_draws=n_draws, seed=seed)
        x = self._flat(X)
        y1h = self._labels_1h(labels, len(x))
        elbos = []
        with torch.no_grad():
            m_enc, lv_enc = self._encode_t(self.encoder_, x, y1h)
            comps = self._prior_components(self.encoder_, self.prior_)
            for m, lv in ((m_opt, lv_opt), (m_enc, lv_enc)):
                m = torch.as_tensor(m, dtype=m_enc.dtype, device=x.device)
                lv = torch.as_tensor(lv, dtype=m_enc.dtype, device=x.device)
                gen = make_generator(int(np.random.SeedSequence(
                    [0 if seed is None else int(seed), 1]).generate_state(1)[0]),
                    device=x.device)
                rec, kl = self._terms_of_q_batched(x, y1h, m, lv, n_eval, gen, comps)
                elbos.append((rec - kl).cpu().numpy())
        log_px = self.log_likelihood(X, k, labels, seed=seed)
        split = elbo_gap_split(log_px, elbos[0], elbos[1])
        return InferenceGaps(log_px, elbos[0], elbos[1], split["approximation"],
                             split["amortisation"])

    @torch.no_grad()
    def log_weights(self, X, k: int = 1000, labels=None, *, seed=None) -> np.ndarray:
        r"""Importance log-weights :math:`\log p(x\mid z_i) + \log p(z_i) - \log q(z_i\mid x)`,
        :math:`z_i \sim q(z\mid x)`, as an (N, k) float64 array (batched over z)."""
        return self._log_weights(X, k, labels, seed, keep=True)

    def _log_weights(self, X, k, labels, seed, keep):
        self._check_fitted()
        k = check_int(k, "k", minimum=1)
        x = self._flat(X)
        y1h = self._labels_1h(labels, len(x))
        device = x.device
        gen = self._sampling_generator(seed, device)
        budget = _IWAE_ROWS.get(device.type, _IWAE_ROWS["cuda"])
        comps = self._prior_components(self.encoder_, self.prior_)
        if comps is not None:  # log p(z) holds a (rows, K, d) temporary
            budget = max(1024, budget // max(1, len(comps[0]) // 8))
        N, D = x.shape
        out = []  # per block of images: (log-sum-exp of w, of 2w) or all weights
        rows_per_block = max(1, budget // k)
        for s in range(0, N, rows_per_block):
            xb = x[s : s + rows_per_block]
            yb = None if y1h is None else y1h[s : s + rows_per_block]
            mean, log_var = self._encode_t(self.encoder_, xb, yb)
            k_chunk = max(1, budget // len(xb))
            parts = []
            for j in range(0, k, k_chunk):
                kk = min(k_chunk, k - j)
                eps = torch.randn((kk, *mean.shape), generator=gen, device=device)
                z = reparameterize(mean, log_var, eps)
                params = self._decode_t(self.decoder_, z, yb, D)
                lw = (decoder_log_prob(self.likelihood, xb.expand(kk, *xb.shape), params,
                                       self.n_levels)
                      + self._log_prior(z, comps)
                      - log_normal_diag(z, mean, log_var)).double()  # (kk, n)
                if keep:
                    parts.append(lw.T.cpu())
                else:
                    parts.append(torch.stack([torch.logsumexp(lw, 0),
                                              torch.logsumexp(2 * lw, 0)]).cpu())
            if keep:
                out.append(torch.cat(parts, dim=1))
            else:
                stacked = torch.stack(parts)  # (chunks, 2, n)
                out.append(torch.logsumexp(stacked, dim=0))
        res = torch.cat(out, dim=-1 if not keep else 0)
        if not bool(torch.isfinite(res).all()):
            raise DivergenceError("an importance weight is not finite: the model diverged")
        return res.numpy()

    @torch.no_grad()
    def log_likelihood(self, X, k: int = 1000, labels=None, *, seed=None,
                       return_error: bool = False):
        r"""IWAE estimate of log p(x) per sample, eq. (6.9) [vae-iwae], with k importance samples.

        Batched over images and samples, so that memory stays bounded for any k (k = 5000 on
        the 359 test digits is fine). Its expectation is a lower bound on log p(x) that rises
        with k. On the course's scale: ``metrics.bits_per_pixel(result, n_pixels=D)``.

        With ``return_error=True`` also returns the Monte Carlo standard error of each value
        (delta method: :math:`\sqrt{(\overline{w^2}/\bar w^2 - 1)/k}`).

        A conditional model given ``labels`` returns log p(x | y); without labels it returns
        log p(x) = log Σ_y p(y) p(x | y) (:meth:`_marginal_log_likelihood`), the density of the
        image alone, comparable with an unconditional model's.
        """
        return_error = check_bool(return_error, "return_error")
        self._check_fitted()
        if self.classes_ is not None and labels is None:
            return self._marginal_log_likelihood(X, k, seed, return_error)
        lse = self._log_weights(X, k, labels, seed, keep=False)  # (2, N)
        ll = lse[0] - math.log(k)
        if not return_error:
            return ll
        rel_var = np.exp(lse[1] - math.log(k) - 2 * (lse[0] - math.log(k))) - 1.0
        return ll, np.sqrt(np.clip(rel_var, 0.0, None) / k)

    def _marginal_log_likelihood(self, X, k, seed, return_error):
        r"""A conditional model's density of ``x`` alone, summing over the labels:
        :math:`\log p(x) = \log \sum_y p(y)\, p(x \mid y)`, with p(y) the training labels'
        frequencies (``class_prior_``) and each p(x | y) estimated by IWAE with k // C
        importance samples (C classes): k samples in total, split evenly over the labels
        (stratified sampling), so that it costs what one labelled estimate with k samples costs.

        The sum of unbiased estimates of p(x | y) is an unbiased estimate of p(x), so this is
        a lower bound on log p(x) in expectation, like every IWAE value, on the same scale as
        an unconditional model's. (Given the label, log p(x | y) is higher by at most
        log(1 / p(y)): what knowing the digit is worth.)"""
        n = len(self._flat(X))
        gen = self._sampling_generator(seed, self._net_device())
        per_class, errors = [], []
        k_each = max(1, k // len(self.classes_))
        for c in self.classes_:
            ll, err = self.log_likelihood(X, k_each, np.full(n, c), seed=int(torch.randint(
                0, 2**62, (1,), generator=gen, device=gen.device).item()), return_error=True)
            per_class.append(ll)
            errors.append(err)
        log_joint = np.stack(per_class) + np.log(self.class_prior_)[:, None]  # (C, N)
        ll = np.logaddexp.reduce(log_joint, axis=0)
        if not return_error:
            return ll
        # relative error of sum_c pi_c p_c: sqrt(sum_c (pi_c p_c rel_c)^2) / sum_c pi_c p_c
        share = np.exp(log_joint - ll)
        return ll, np.sqrt(((share * np.stack(errors)) ** 2).sum(0))

    def score_samples(self, X, labels=None, k: int = 1000, *, seed=0):
        """IWAE log-likelihood of each sample (k = 1000): :meth:`log_likelihood`.

        With a fixed ``seed`` (default 0), so that the same model scores the same data the
        same way every time, as scikit-learn expects of ``score_samples`` and ``score``
        (``seed=None`` continues the model's random stream instead)."""
        return self.log_likelihood(X, k, labels, seed=seed)

    def score(self, X, y=None):
        """Mean IWAE log-likelihood (k = 1000, seed 0). ``y``: labels of a conditional model."""
        return float(np.mean(self.score_samples(X, labels=y)))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.estimator_type = "density_estimator"  # score_samples is a log-likelihood
        return tags

    @torch.no_grad()
    def log_px_given_z(self, X, Z, labels=None) -> np.ndarray:
        """log p(x | z) of every sample of X (N) under every latent vector of Z (S, latent_dim):
        an (S, N) float64 array, on the course's likelihood scale."""
        self._check_fitted()
        x = self._flat(X)
        y1h = self._labels_1h(labels, len(x))
        z = as_tensor(Z, "Z", ndim=2, dtype=torch.float32, device=x.device)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"Z must have latent_dim={self.latent_dim} columns, "
                             f"got shape {tuple(z.shape)}")
        rows = []
        params = None if y1h is not None else self._decode_t(self.decoder_, z, None, x.shape[1])
        for i in range(len(x)):
            if y1h is not None:
                params = self._decode_t(self.decoder_, z, y1h[i : i + 1].expand(len(z), -1),
                                        x.shape[1])
            rows.append(decoder_log_prob(self.likelihood, x[i : i + 1].expand(len(z), -1),
                                         params, self.n_levels))
        return torch.stack(rows, dim=1).double().cpu().numpy()

    @torch.no_grad()
    def encode(self, X, labels=None, *, return_log_var: bool = False):
        """Mean of q(z | x) for each sample, (N, latent_dim); with ``return_log_var`` also
        log σ²."""
        self._check_fitted()
        return_log_var = check_bool(return_log_var, "return_log_var")
        x = self._flat(X)
        y1h = self._labels_1h(labels, len(x))
        mean, log_var = self._encode_t(self.encoder_, x, y1h)
        mean = mean.cpu().numpy()
        return (mean, log_var.cpu().numpy()) if return_log_var else mean

    @torch.no_grad()
    def decode(self, Z, labels=None, *, draw: bool = False, seed=None) -> np.ndarray:
        """Images from latent vectors Z (N, latent_dim): the decoder's mean E[x | z], or a draw
        from p(x | z) with ``draw=True``. Discrete decoders give grey levels on the
        ``level / (n_levels - 1)`` scale (that of ``load_digits()``)."""
        self._check_fitted()
        draw = check_bool(draw, "draw")
        device = self._net_device()
        z = as_tensor(Z, "Z", ndim=2, dtype=torch.float32, device=device)
        if z.shape[1] != self.latent_dim:
            raise ValueError(f"Z must have latent_dim={self.latent_dim} columns, "
                             f"got shape {tuple(z.shape)}")
        y1h = self._labels_1h(labels, len(z))
        params = self._decode_t(self.decoder_, z, y1h, self.n_features_in_)
        out = _decoder_mean(self.likelihood, params, self.n_levels, draw,
                            self._sampling_generator(seed, device) if draw else None)
        return self._to_images(out)

    def reconstruct(self, X, labels=None, *, draw: bool = False, seed=None) -> np.ndarray:
        """decode(encode(X)): the decoder's mean (or a draw) at the encoder's mean."""
        return self.decode(self.encode(X, labels), labels, draw=draw, seed=seed)

    def interpolate(self, x_start, x_end, n_steps: int = 8, labels=None) -> np.ndarray:
        """Decoder means along the straight line between the encodings of two samples.

        ``x_start`` and ``x_end`` are single samples (shape of one row of X); returns
        ``n_steps`` images, the first and last being the reconstructions of the two ends.
        """
        n_steps = check_int(n_steps, "n_steps", minimum=2)
        ends = []
        for name, x in (("x_start", x_start), ("x_end", x_end)):
            x = as_tensor(x, name, dtype=torch.float32, device="cpu")
            ends.append(x.reshape(1, *self.input_shape_) if x.dim() == len(self.input_shape_)
                        else x)
        lab = None if labels is None else np.asarray(labels).reshape(-1)[:1]
        z0 = self.encode(ends[0], lab)
        z1 = self.encode(ends[1], lab)
        t = np.linspace(0.0, 1.0, n_steps, dtype=np.float32)[:, None]
        Z = (1 - t) * z0 + t * z1
        return self.decode(Z, None if lab is None else np.repeat(lab, n_steps))

    @torch.no_grad()
    def sample(self, n_samples: int = 1, labels=None, *, draw: bool = False, seed=None,
               return_labels: bool = False):
        """``n_samples`` new images in X's shape: z ~ p(z) (the model's prior), then the decoder's **mean**
        E[x | z] (default: smooth images), or a draw from p(x | z) with ``draw=True`` (what the
        likelihood describes, pixel noise included).

        A conditional model draws the requested ``labels`` (one class label for every sample,
        or an array of shape ``(n_samples,)``; default: the classes in turn,
        ``classes_[i % n_classes]``); ``return_labels=True`` returns ``(images, labels)``.
        """
        self._check_fitted()
        draw = check_bool(draw, "draw")
        return_labels = check_bool(return_labels, "return_labels")
        n = check_int(n_samples, "n_samples", minimum=1)
        device = self._net_device()
        gen = self._sampling_generator(seed, device)
        # indices into classes_: the classes in turn by default, else the checked labels
        idx = self._label_index(labels, n)  # None for an unconditional model
        lab = None if idx is None else self.classes_[idx.numpy()]
        y1h = None if idx is None else one_hot(idx, self._n_classes, device)
        z = self._sample_prior(n, self._prior_components(self.encoder_, self.prior_), gen,
                               device)
        params = self._decode_t(self.decoder_, z, y1h, self.n_features_in_)
        images = self._to_images(_decoder_mean(self.likelihood, params, self.n_levels, draw,
                                               gen if draw else None))
        return (images, lab) if return_labels else images
