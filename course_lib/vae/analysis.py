"""The analysis tools of the chapter, for a fitted :class:`course_lib.vae.VAE`: the ELBO and its
terms, rate and distortion, the per-sample optimal posterior and the inference gaps, the
importance-weighted log-likelihood (IWAE), log p(x | z) and latent interpolation.

Each function takes the fitted model first; the VAE offers each one as a method of the same
name (``vae.log_likelihood(X)`` is ``log_likelihood(vae, X)``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
import torch

from .._core import as_tensor, check_bool, check_int, check_real, make_generator
from ..training import DivergenceError
from .checks import check_data, fitted_input, latent_tensor, net_device
from .formulas import elbo_gap_split, gaussian_kl, log_normal_diag, monte_carlo_kl
from .likelihoods import decoder_log_prob
from .networks import (
    decode,
    decoded_draws,
    encode,
    given_labels,
    log_prior,
    one_draw_elbo,
    prior_components,
)

#: Decoder evaluations (rows of z) computed at once by the IWAE estimator.
_IWAE_ROWS = {"cpu": 2**15, "cuda": 2**18}


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


def _row_budget(device, comps) -> int:
    """Rows of z to decode at once on ``device``: fewer with a mixture prior, whose log p(z)
    holds a (rows, K, d) temporary."""
    budget = _IWAE_ROWS.get(device.type, _IWAE_ROWS["cuda"])
    if comps is not None:
        budget = max(1024, budget // max(1, len(comps[0]) // 8))
    return budget


# ====================================================================== the ELBO and its terms


@torch.no_grad()
def elbo(model, X, labels=None, *, seed=None) -> ELBO:
    """Per-sample ELBO, eq. (6.3) [vae-elbo], with its reconstruction and KL terms (one draw of z
    per sample for the reconstruction; the KL in closed form for the N(0, I) prior, by Monte
    Carlo at the same draw, eq. (6.12) [vae-mckl], for a learned prior). Nats, on the
    course's scale: a one-draw estimate per sample (:meth:`rate_distortion` averages many)."""
    model._check_fitted()
    x, y1h = fitted_input(model, X, labels)
    gen = model._sampling_generator(seed, x.device)
    nets = (model.encoder_, model.decoder_, model.prior_)
    e, r, k = one_draw_elbo(model, nets, x, y1h, gen)
    if not bool(torch.isfinite(e).all()):
        raise DivergenceError("the ELBO is not finite: the model's parameters diverged")
    return ELBO(*(t.double().cpu().numpy() for t in (e, r, k)))

# ------------------------------------------------------------------ inside the ELBO


def _terms_of_q(model, x, y1h, mean, log_var, n_draws, gen, comps):
    """log p(x | z) and the KL of the Gaussians (mean, log_var) (N, d), each averaged over
    ``n_draws`` reparameterised draws, (N,) each; differentiable in mean and log_var. The
    KL is the closed form for N(0, I), its Monte Carlo estimate at the same draws for a
    mixture prior."""
    z, rec = decoded_draws(model, model.decoder_, x, y1h, mean, log_var, n_draws, gen)
    if comps is None:
        kl = gaussian_kl(mean, log_var)
    else:
        kl = monte_carlo_kl(z, mean, log_var, log_prior(z, comps)).mean(0)
    return rec.mean(0), kl


@torch.no_grad()
def _terms_of_q_batched(model, x, y1h, mean, log_var, n_draws, gen, comps):
    """:meth:`_terms_of_q` with many draws, in chunks of draws that fit in memory."""
    budget = _row_budget(x.device, comps)
    chunk = max(1, budget // len(x))
    rec = torch.zeros(len(x), dtype=torch.float64, device=x.device)
    kl = torch.zeros_like(rec)
    for j in range(0, n_draws, chunk):
        kk = min(chunk, n_draws - j)
        r, k = _terms_of_q(model, x, y1h, mean, log_var, kk, gen, comps)
        rec += r.double() * kk
        kl += k.double() * kk
    return rec / n_draws, kl / n_draws


def rate_distortion(model, X, labels=None, *, n_draws: int = 100, seed=0):
    r"""Distortion and rate of the encoder on X, eq. (6.16) [vae-ratedist] (Alemi et al. 2018):

    .. math::
        -\mathcal L(x) = \underbrace{-\mathbb E_{q(z\mid x)}[\log p(x\mid z)]}_{D(x),\ \text{distortion}}
        + \underbrace{\mathrm{KL}(q(z\mid x)\,\Vert\,p(z))}_{R(x),\ \text{rate}},

    each averaged over ``n_draws`` draws of z per sample (the KL in closed form for the
    N(0, I) prior). Returns ``(distortion, rate)``, NumPy arrays (N,) in nats: the rate is
    what the code costs, in nats, beyond the prior; the distortion what the decoder still
    has to pay to describe x given the code. (On the course's dequantised scale the
    distortion, a negative log-density, can be negative.)"""
    model._check_fitted()
    n_draws = check_int(n_draws, "n_draws", minimum=1)
    x, y1h = fitted_input(model, X, labels)
    gen = model._sampling_generator(seed, x.device)
    with torch.no_grad():
        mean, log_var = encode(model, model.encoder_, x, y1h)
        comps = prior_components(model, model.encoder_, model.prior_, y1h)
        rec, kl = _terms_of_q_batched(model, x, y1h, mean, log_var, n_draws, gen, comps)
    return -rec.cpu().numpy(), kl.cpu().numpy()

# ====================================================================== inference gaps


def optimize_posterior(model, X, labels=None, *, steps: int = 300, lr: float = 0.01,
                       n_draws: int = 16, seed=0):
    r"""For every sample its own best Gaussian :math:`q^*(z) = \mathcal N(m, \mathrm{diag}\, e^{v})`:
    maximise the ELBO, eq. (6.3) [vae-elbo], over (m, v) alone, with the decoder and the
    prior fixed, starting from the encoder's output, by ``steps`` Adam steps (learning
    rate ``lr``) on the ELBO estimated from ``n_draws`` reparameterised draws per sample.

    This is the non-amortised inference of Cremer, Li & Duvenaud (2018): what the encoder
    would output if it could fit each x perfectly; the ELBO it reaches gives the
    amortisation gap of eq. (6.15) [vae-gaps]. Returns ``(mean, log_var)``, NumPy arrays
    (N, d)."""
    model._check_fitted()
    steps = check_int(steps, "steps", minimum=0)
    n_draws = check_int(n_draws, "n_draws", minimum=1)
    lr = check_real(lr, "lr", minimum=0.0, strict_min=True)
    x, y1h = fitted_input(model, X, labels)
    gen = model._sampling_generator(seed, x.device)
    with torch.no_grad():
        mean0, log_var0 = encode(model, model.encoder_, x, y1h)
        comps = prior_components(model, model.encoder_, model.prior_, y1h)
    mean = mean0.detach().clone().requires_grad_(True)
    log_var = log_var0.detach().clone().requires_grad_(True)
    opt = torch.optim.Adam([mean, log_var], lr=lr)
    for _ in range(steps):
        rec, kl = _terms_of_q(model, x, y1h, mean, log_var, n_draws, gen, comps)
        loss = -(rec - kl).sum()  # the samples are independent: a sum of their ELBOs
        mean.grad, log_var.grad = torch.autograd.grad(loss, (mean, log_var))
        opt.step()
    if not bool(torch.isfinite(mean).all() and torch.isfinite(log_var).all()):
        raise DivergenceError("the optimised posterior diverged: lower lr")
    return (mean.detach().cpu().numpy().astype(np.float64),
            log_var.detach().cpu().numpy().astype(np.float64))


def inference_gaps(model, X, labels=None, *, steps: int = 300, lr: float = 0.01,
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
    model._check_fitted()
    n_eval = check_int(n_eval, "n_eval", minimum=1)
    m_opt, lv_opt = optimize_posterior(model, X, labels, steps=steps, lr=lr,
                                            n_draws=n_draws, seed=seed)
    x, y1h = fitted_input(model, X, labels)
    elbos = []
    with torch.no_grad():
        m_enc, lv_enc = encode(model, model.encoder_, x, y1h)
        comps = prior_components(model, model.encoder_, model.prior_, y1h)
        for m, lv in ((m_opt, lv_opt), (m_enc, lv_enc)):
            m = torch.as_tensor(m, dtype=m_enc.dtype, device=x.device)
            lv = torch.as_tensor(lv, dtype=m_enc.dtype, device=x.device)
            gen = make_generator(int(np.random.SeedSequence(
                [0 if seed is None else int(seed), 1]).generate_state(1)[0]),
                device=x.device)
            rec, kl = _terms_of_q_batched(model, x, y1h, m, lv, n_eval, gen, comps)
            elbos.append((rec - kl).cpu().numpy())
    log_px = log_likelihood(model, X, k, labels, seed=seed)
    split = elbo_gap_split(log_px, elbos[0], elbos[1])
    return InferenceGaps(log_px, elbos[0], elbos[1], split["approximation"],
                         split["amortisation"])

# ====================================================================== the likelihood (IWAE)


@torch.no_grad()
def log_weights(model, X, k: int = 1000, labels=None, *, seed=None) -> np.ndarray:
    r"""Importance log-weights :math:`\log p(x\mid z_i) + \log p(z_i) - \log q(z_i\mid x)`,
    :math:`z_i \sim q(z\mid x)`, as an (N, k) float64 array (batched over z)."""
    return _log_weights(model, X, k, labels, seed, keep=True)


def _log_weights(model, X, k, labels, seed, keep):
    model._check_fitted()
    k = check_int(k, "k", minimum=1)
    x, y1h = fitted_input(model, X, labels)
    device = x.device
    gen = model._sampling_generator(seed, device)
    comps = prior_components(model, model.encoder_, model.prior_)
    budget = _row_budget(device, comps)
    N, D = x.shape
    out = []  # per block of images: (log-sum-exp of w, of 2w) or all weights
    rows_per_block = max(1, budget // k)
    for s in range(0, N, rows_per_block):
        xb = x[s : s + rows_per_block]
        yb = None if y1h is None else y1h[s : s + rows_per_block]
        mean, log_var = encode(model, model.encoder_, xb, yb)
        comps_b = given_labels(model, model.prior_, comps, yb)  # p(z | y) of these rows
        k_chunk = max(1, budget // len(xb))
        parts = []
        for j in range(0, k, k_chunk):
            kk = min(k_chunk, k - j)
            z, rec = decoded_draws(model, model.decoder_, xb, yb, mean, log_var, kk, gen)
            # (kk, n): log p(x | z) + log p(z) - log q(z | x)
            lw = (rec + log_prior(z, comps_b) - log_normal_diag(z, mean, log_var)).double()
            if keep:
                parts.append(lw.T.cpu())
            else:
                parts.append(torch.stack([torch.logsumexp(lw, 0),
                                          torch.logsumexp(2 * lw, 0)]).cpu())
        # all the weights, or the log-sum-exp over the chunks of each (chunks, 2, n) pair
        out.append(torch.cat(parts, dim=1) if keep else torch.logsumexp(torch.stack(parts), 0))
    res = torch.cat(out, dim=-1 if not keep else 0)
    if not bool(torch.isfinite(res).all()):
        raise DivergenceError("an importance weight is not finite: the model diverged")
    return res.numpy()


@torch.no_grad()
def log_likelihood(model, X, k: int = 1000, labels=None, *, seed=None,
                   return_error: bool = False):
    r"""IWAE estimate of log p(x) per sample, eq. (6.9) [vae-iwae], with k importance samples.

    Batched over images and samples, so that memory stays bounded for any k. Its
    expectation is a lower bound on log p(x) that rises with k. On the course's scale: ``metrics.bits_per_pixel(result, n_pixels=D)``.

    With ``return_error=True`` also returns the Monte Carlo standard error of each value
    (delta method: :math:`\sqrt{(\overline{w^2}/\bar w^2 - 1)/k}`).

    A conditional model given ``labels`` returns log p(x | y); without labels it returns
    log p(x) = log Σ_y p(y) p(x | y) (:meth:`_marginal_log_likelihood`), the density of the
    image alone, comparable with an unconditional model's.
    """
    return_error = check_bool(return_error, "return_error")
    model._check_fitted()
    if model.classes_ is not None and labels is None:
        return _marginal_log_likelihood(model, X, k, seed, return_error)
    lse = _log_weights(model, X, k, labels, seed, keep=False)  # (2, N)
    ll = lse[0] - math.log(k)
    if not return_error:
        return ll
    rel_var = np.exp(lse[1] - math.log(k) - 2 * (lse[0] - math.log(k))) - 1.0
    return ll, np.sqrt(np.clip(rel_var, 0.0, None) / k)


def _marginal_log_likelihood(model, X, k, seed, return_error):
    r"""A conditional model's density of ``x`` alone, summing over the labels:
    :math:`\log p(x) = \log \sum_y p(y)\, p(x \mid y)`, with p(y) the training labels'
    frequencies (``class_prior_``) and each p(x | y) estimated by IWAE with k // C
    importance samples (C classes): k samples in total, split evenly over the labels
    (stratified sampling), so that it costs what one labelled estimate with k samples costs.

    The sum of unbiased estimates of p(x | y) is an unbiased estimate of p(x), so this is
    a lower bound on log p(x) in expectation, like every IWAE value, on the same scale as
    an unconditional model's. (Given the label, log p(x | y) is higher by at most
    log(1 / p(y)): what knowing the digit is worth.)"""
    n = len(check_data(model, X))
    gen = model._sampling_generator(seed, net_device(model))
    per_class, errors = [], []
    k_each = max(1, k // len(model.classes_))
    for c in model.classes_:
        ll, err = log_likelihood(model, X, k_each, np.full(n, c), seed=int(torch.randint(
            0, 2**62, (1,), generator=gen, device=gen.device).item()), return_error=True)
        per_class.append(ll)
        errors.append(err)
    log_joint = np.stack(per_class) + np.log(model.class_prior_)[:, None]  # (C, N)
    ll = np.logaddexp.reduce(log_joint, axis=0)
    if not return_error:
        return ll
    # relative error of sum_c pi_c p_c: sqrt(sum_c (pi_c p_c rel_c)^2) / sum_c pi_c p_c
    share = np.exp(log_joint - ll)
    return ll, np.sqrt(((share * np.stack(errors)) ** 2).sum(0))


def score_samples(model, X, labels=None, k: int = 1000, *, seed=0):
    """IWAE log-likelihood of each sample (k = 1000): :meth:`log_likelihood`.

    With a fixed ``seed`` (default 0), so that the same model scores the same data the
    same way every time, as scikit-learn expects of ``score_samples`` and ``score``
    (``seed=None`` continues the model's random stream instead)."""
    return log_likelihood(model, X, k, labels, seed=seed)


def score(model, X, y=None):
    """Mean IWAE log-likelihood (k = 1000, seed 0). ``y``: labels of a conditional model."""
    return float(np.mean(score_samples(model, X, labels=y)))


# ====================================================================== the decoder, the latent space


@torch.no_grad()
def log_px_given_z(model, X, Z, labels=None) -> np.ndarray:
    """log p(x | z) of every sample of X (N) under every latent vector of Z (S, latent_dim):
    an (S, N) float64 array, on the course's likelihood scale."""
    model._check_fitted()
    x, y1h = fitted_input(model, X, labels)
    z = latent_tensor(model, Z, x.device)
    rows = []
    params = None if y1h is not None else decode(model, model.decoder_, z, None, x.shape[1])
    for i in range(len(x)):
        if y1h is not None:
            params = decode(model, model.decoder_, z, y1h[i : i + 1].expand(len(z), -1),
                                    x.shape[1])
        rows.append(decoder_log_prob(model.likelihood, x[i : i + 1].expand(len(z), -1),
                                     params, model.n_levels))
    return torch.stack(rows, dim=1).double().cpu().numpy()


def interpolate(model, x_start, x_end, n_steps: int = 8, labels=None) -> np.ndarray:
    """Decoder means along the straight line between the encodings of two samples.

    ``x_start`` and ``x_end`` are single samples (shape of one row of X); returns
    ``n_steps`` images, the first and last being the reconstructions of the two ends.
    """
    n_steps = check_int(n_steps, "n_steps", minimum=2)
    ends = []
    for name, x in (("x_start", x_start), ("x_end", x_end)):
        x = as_tensor(x, name, dtype=torch.float32, device="cpu")
        ends.append(x.reshape(1, *model.input_shape_) if x.dim() == len(model.input_shape_)
                    else x)
    lab = None if labels is None else np.asarray(labels).reshape(-1)[:1]
    z0 = model.encode(ends[0], lab)
    z1 = model.encode(ends[1], lab)
    t = np.linspace(0.0, 1.0, n_steps, dtype=np.float32)[:, None]
    Z = (1 - t) * z0 + t * z1
    return model.decode(Z, None if lab is None else np.repeat(lab, n_steps))
