"""The equations of the chapter "Variational autoencoders" (book/06_vae.md), one function each.

Each docstring cites its equation by the number the book shows and by its label in the
sources, e.g. eq. (6.3) [vae-elbo]. They work on tensors and know nothing of the estimator:
:class:`course_lib.vae.VAE` calls them, and the exercises check the learner's versions
against them. The decoder likelihoods of eqs. (6.6)-(6.7) (and the independent-pixel baseline, eq. (6.8)) are in :mod:`.likelihoods`.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .._core import as_real_array, as_tensor, check_int, check_real

_LOG_2PI = math.log(2.0 * math.pi)


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


#: The most numbers (about) that :func:`mixture_prior_log_prob` and the discretised logistic's
#: mean (``likelihoods._decoder_mean``) hold in one intermediate array: 2**21, 8 MiB in
#: float32. Larger inputs are processed in blocks, with the same result.
BLOCK_ELEMENTS = 2**21


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

    The sum runs over an ``(n, K, d)`` array for n points; for many points it is taken over
    blocks of them, so that memory stays bounded (at most ``BLOCK_ELEMENTS`` numbers a block)
    with the same result.
    """
    log_pi = torch.log_softmax(logits, dim=-1)
    rows = z.reshape(-1, z.shape[-1])
    per_block = max(1, BLOCK_ELEMENTS // max(1, means.numel()))
    if len(rows) <= per_block:
        comp = log_normal_diag(z.unsqueeze(-2), means, log_vars)  # (..., K)
        return torch.logsumexp(comp + log_pi, dim=-1)
    blocks = [torch.logsumexp(log_normal_diag(r.unsqueeze(-2), means, log_vars) + log_pi, dim=-1)
              for r in rows.split(per_block)]
    return torch.cat(blocks).reshape(z.shape[:-1])


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
    named = {"log_px": log_px, "elbo_optimal": elbo_optimal, "elbo_encoder": elbo_encoder}
    lp, lo, le = (as_real_array(a, name, min_size=0) for name, a in named.items())
    if not lp.shape == lo.shape == le.shape:
        raise ValueError(f"log_px, elbo_optimal and elbo_encoder must have one shape, got "
                         f"{lp.shape}, {lo.shape}, {le.shape}")
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
    m = as_real_array(means, "means", ndim=2)
    if len(m) < 2:
        raise ValueError(f"means must hold N >= 2 images (d units each), got shape {m.shape}")
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
