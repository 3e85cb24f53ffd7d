"""Generative adversarial networks (GAN): a generator and a discriminator trained against each other.

The chapter "Generative adversarial networks" (book/05_gan.md) derives every formula used here.
Each one lives in exactly one module-level function, whose docstring cites the equation by the
number the book shows and by its label in the sources, e.g. eq. (5.1) [gan-value]:

======================================  ======================================================
function                                book equation
======================================  ======================================================
:func:`value_function`                  (5.1) ``gan-value``     V(D, G) = E_p log D(x) + E_z log(1 − D(G(z)))
:func:`discriminator_loss`              (5.2) ``gan-d-loss``    −V(D, G), the discriminator's loss
:func:`generator_loss`                  (5.6) ``gan-g-loss``    minimax E log(1 − D(G(z))) or non-saturating −E log D(G(z))
:func:`optimal_discriminator`           (5.3) ``gan-dstar``     D*(x) = p(x) / (p(x) + q(x))
:func:`jensen_shannon`                  (5.4) ``gan-js``        JS(p ‖ q), of V(D*, G) = −log 4 + 2 JS(p ‖ q)
:func:`density_ratio_logit`             (5.5) ``gan-logit``     logit D*(x) = log p(x) / q(x)
:func:`r1_penalty`                      (5.7) ``gan-r1``        E_p ‖∇ₓ logit D(x)‖² (train_step applies γ/2)
:func:`acceptance_probability`          (5.8) ``gan-drs``       min(1, exp(logit D(x) − log M))
:func:`kl_divergence`                   (5.9) ``gan-ns-div``    KL(p ‖ q) = ∫ p log p/q, forward or reverse by the order
:func:`nonsaturating_divergence`        (5.9) ``gan-ns-div``    KL(q ‖ p) − 2 JS(p ‖ q), whose gradient the NS loss follows at D*
:func:`critic_loss`                     (5.10) ``gan-wgan-gp``  E_q f − E_p f, the Wasserstein critic's loss
:func:`gradient_penalty`                (5.10) ``gan-wgan-gp``  E (‖∇ f(x̂)‖ − 1)² on interpolates x̂
======================================  ======================================================

Logits, not probabilities
-------------------------
The discriminator network outputs a **logit** ``l = log D / (1 − D)``; ``D = sigmoid(l)``.
Every loss is written with ``softplus`` (``log D = −softplus(−l)``,
``log(1 − D) = −softplus(l)``), which stays finite for any logit: computing ``sigmoid`` first
and then its ``log`` gives ``log 0 = −inf`` as soon as the discriminator is sure.

The class
---------
:class:`GAN` has scikit-learn's shape (hyperparameters in the constructor, ``fit(X, y=None)``
returns ``self``, ``sample(n)``) and trains through the course's one training loop,
:func:`course_lib.training.train_loop`. Its defaults (measured in ``benchmarks/gan_modes.py``
for point data and ``benchmarks/gan_digits.py`` for the 8×8 digits):

- the data are standardised inside the model (mean per feature, one overall standard
  deviation), so the same defaults work whatever the data's scale;
- small MLPs (two or three hidden layers) and Adam with a cosine learning-rate decay to zero;
  ``architecture="conv"`` swaps in small convolutional networks for images
  (:class:`ConvGenerator`, :class:`ConvDiscriminator`);
- the non-saturating generator loss (``loss="wasserstein"``: WGAN-GP, Gulrajani et al. 2017,
  the critic's loss with a gradient penalty instead of the discriminator's and R1);
- a lazy R1 gradient penalty on the discriminator (R1: Mescheder et al. 2018; lazy, computed
  every ``r1_every`` steps: Karras et al. 2020), against the oscillation around the equilibrium
  (the paper proves local convergence only, nothing about modes);
- discriminator rejection sampling (Azadi et al. 2019): after training, the discriminator is
  trained a little longer with the generator frozen so that its logit estimates
  log p(x)/q(x), and :meth:`GAN.sample` keeps each generated point with probability
  min(1, exp(logit − log M)): ``sample``'s default for point data, on request for images;
- optionally (``ema``) an exponential moving average of the generator's weights
  (:func:`ema_update`) samples instead of the last weights.

Where the best value differs between point data and images (or with the number of features:
the networks' width and depth, Adam's β₂, R1's γ, ``sample``'s default), the hyperparameter's
default is ``None`` and ``fit`` takes it from the presets, :data:`PRESETS`, which say why.
"""

from __future__ import annotations

import copy
import functools
import math
import time
import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ._core import (
    Flag,
    Float,
    Int,
    OneOf,
    as_real_array,
    as_tensor,
    check_choice,
    check_input,
    check_int,
    check_params,
    check_real,
)
from .convnets import ConvDiscriminator, ConvGenerator
from .convnets import leaky as _leaky
from .training import (
    NeuralEstimator,
    RunCheckpoint,
    minibatches,
    mlp,
    one_hot,
    seeded,
    skip_batches,
    train_loop,
)

__all__ = [
    "GAN",
    "LOSSES",
    "PRESETS",
    "resolve_presets",
    "value_function",
    "discriminator_loss",
    "generator_loss",
    "optimal_discriminator",
    "jensen_shannon",
    "density_ratio_logit",
    "r1_penalty",
    "acceptance_probability",
    "kl_divergence",
    "nonsaturating_divergence",
    "critic_loss",
    "gradient_penalty",
    "train_step",
    "ema_update",
    "ConvGenerator",
    "ConvDiscriminator",
    "ARCHITECTURES",
    "mlp",
]

LOSSES = ("non-saturating", "minimax", "wasserstein")
ARCHITECTURES = ("mlp", "conv")


# ====================================================================== the book's equations


def value_function(real_logits, fake_logits) -> torch.Tensor:
    """The GAN value function, eq. (5.1) [gan-value], estimated on a minibatch::

        V(D, G) = E_{x~p}[log D(x)] + E_{z~p_z}[log(1 - D(G(z)))]

    with ``D = sigmoid(logit)``, written as ``-softplus(-real) - softplus(fake)`` (finite for
    every logit). The discriminator maximises it, the generator minimises it.
    """
    return -F.softplus(-real_logits).mean() - F.softplus(fake_logits).mean()


def discriminator_loss(real_logits, fake_logits) -> torch.Tensor:
    """The discriminator's loss, eq. (5.2) [gan-d-loss]: ``-V(D, G)``, the binary cross-entropy of
    "real" (label 1) against "generated" (label 0)::

        L_D = E_p[softplus(-l(x))] + E_z[softplus(l(G(z)))]
    """
    return F.softplus(-real_logits).mean() + F.softplus(fake_logits).mean()


def generator_loss(fake_logits, loss: str = "non-saturating") -> torch.Tensor:
    """The generator's loss on the logits of generated samples, eq. (5.6) [gan-g-loss].

    - ``"minimax"``: the generator's part of V, ``E_z[log(1 - D(G(z)))] = -E[softplus(l)]``,
      minimised. Its gradient with respect to the logit is ``-sigmoid(l) = -D``: it vanishes
      when the discriminator rejects the samples confidently, which is the situation early in
      training (the loss *saturates*);
    - ``"non-saturating"`` (Goodfellow et al. 2014): ``-E_z[log D(G(z))] = E[softplus(-l)]``.
      Same fixed point, but its gradient ``-(1 - D)`` is largest when D rejects the samples.
      At a fixed optimal discriminator its gradient is that of ``KL(q ‖ p) − 2 JS(p ‖ q)``,
      eq. (5.9) [gan-ns-div] (:func:`nonsaturating_divergence`), not that of JS;
    - ``"wasserstein"`` (WGAN, Arjovsky et al. 2017): ``-E_z[f(G(z))]``, eq. (5.10)
      [gan-wgan-gp], where ``fake_logits`` are then the critic's unbounded scores f.
    """
    check_choice(loss, "loss", LOSSES)
    if loss == "minimax":
        return -F.softplus(fake_logits).mean()
    if loss == "wasserstein":
        return -fake_logits.mean()
    return F.softplus(-fake_logits).mean()


def optimal_discriminator(p, q):
    """The best discriminator for a fixed generator, eq. (5.3) [gan-dstar]: ``D* = p / (p + q)``.

    ``p`` is the data density and ``q`` the generator's density at the same points (arrays or
    tensors of the same shape, >= 0). Where both are 0 the value is undefined; 1/2 is returned.
    Both are divided by the larger first, so densities near the float64 limit give a finite D*.
    """
    tensors = isinstance(p, torch.Tensor) or isinstance(q, torch.Tensor)
    p = as_real_array(p, "p", nonnegative=True, keep_tensor=True)
    q = as_real_array(q, "q", nonnegative=True, keep_tensor=True)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {tuple(p.shape)}, {tuple(q.shape)}")
    if tensors:
        p, q = torch.as_tensor(p), torch.as_tensor(q).to(torch.as_tensor(p).dtype)
        top = torch.maximum(p, q)
        safe = torch.where(top > 0, top, torch.ones_like(top))
        a, b = p / safe, q / safe
        return torch.where(top > 0, a / torch.where(top > 0, a + b, torch.ones_like(a)), 0.5)
    top = np.maximum(p, q)
    safe = np.where(top > 0, top, 1.0)
    a, b = p / safe, q / safe
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(top > 0, a / np.where(top > 0, a + b, 1.0), 0.5)


def jensen_shannon(p, q, dx: float) -> float:
    """Jensen–Shannon divergence (nats) of two densities tabulated on a uniform grid.

    Eq. (5.4) [gan-js]: with ``m = (p + q) / 2``, ``JS(p ‖ q) = ½ KL(p ‖ m) + ½ KL(q ‖ m)``, between
    0 and log 2. At the optimal discriminator the value function equals
    ``V(D*, G) = -log 4 + 2 JS(p ‖ q)``. ``p``, ``q``: 1-D arrays of density values on a grid of
    spacing ``dx`` (a Riemann sum; each should integrate to about 1).
    """
    p, q, dx = _density_pair(p, q, dx)
    m = 0.5 * p + 0.5 * q  # not (p + q) / 2, which overflows near the float64 limit
    with np.errstate(divide="ignore", invalid="ignore"):
        kl_pm = np.where(p > 0, p * np.log(p / m), 0.0)
        kl_qm = np.where(q > 0, q * np.log(q / m), 0.0)
    value = 0.5 * dx * kl_pm.sum() + 0.5 * dx * kl_qm.sum()
    if not np.isfinite(value):
        raise ValueError("p, q: the divergence overflows float64 (densities this large cannot "
                         "integrate to 1 on this grid; check p, q and dx)")
    return float(value)


def density_ratio_logit(p, q):
    """The logit of the optimal discriminator, eq. (5.5) [gan-logit]: ``log D*/(1 - D*) = log p/q``.

    A well-trained discriminator's logit therefore estimates the log density ratio between
    data and generator, which is what rejection sampling (:func:`acceptance_probability`)
    uses. ``p``, ``q``: positive arrays of the same shape.
    """
    p = as_real_array(p, "p", positive=True)
    q = as_real_array(q, "q", positive=True)
    if p.shape != q.shape:
        raise ValueError(f"p and q must have the same shape, got {p.shape}, {q.shape}")
    return np.log(p) - np.log(q)


def r1_penalty(discriminator, x, cond=None) -> torch.Tensor:
    """The R1 gradient penalty's expectation, eq. (5.7) [gan-r1], without the factor γ/2::

        E_{x~p} ‖∇ₓ l(x)‖²

    on a minibatch of **real** points ``x`` (Mescheder et al. 2018). It pushes the
    discriminator to be flat on the data, which makes the game converge locally instead of
    oscillating around the equilibrium (the paper proves local convergence, nothing about
    modes). ``cond`` (one-hot labels) is appended to the input of a conditional discriminator;
    the gradient is taken with respect to ``x`` only. The graph is kept, so the result can be backpropagated.
    """
    x = x.detach().requires_grad_(True)
    inp = x if cond is None else torch.cat([x, cond], dim=1)
    logits = discriminator(inp)
    (grad,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return grad.pow(2).flatten(1).sum(1).mean()


def acceptance_probability(logits, log_m) -> torch.Tensor:
    """Discriminator rejection sampling (Azadi et al. 2019), eq. (5.8) [gan-drs].

    If the logit is exactly ``log p(x)/q(x)`` and ``M`` bounds ``p/q``, keeping a generated
    ``x`` with probability ``p(x) / (M q(x)) = exp(logit - log M)`` turns samples of ``q`` into
    samples of ``p`` (rejection sampling). In practice the logit is only an estimate and ``M``
    is not known: :class:`GAN` takes for ``log M`` a high quantile (``rejection_quantile``,
    0.95 by default; 1.0 gives the largest) of the logits on a large batch of generated points,
    and the probability is capped at 1, so the points above that quantile are always kept.
    Rejection sampling only reweights what the generator draws: where q = 0 and p > 0 no M
    satisfies p <= M q, so it cannot bring back a mode the generator has lost.
    ``log_m``: a number, or a tensor with one value per logit (a conditional GAN's log M of
    each sample's class).
    """
    logits = torch.as_tensor(as_real_array(logits, "logits", keep_tensor=True))
    if isinstance(log_m, torch.Tensor) and log_m.numel() > 1:  # one log M per sample (labels)
        log_m = torch.as_tensor(as_real_array(log_m, "log_m", keep_tensor=True))
    else:
        log_m = check_real(log_m, "log_m")
    return torch.exp(torch.clamp(logits - log_m, max=0.0))


def _density_pair(p, q, dx):
    """Two tabulated densities (1-D, finite, >= 0, same length) and a grid spacing > 0."""
    p = as_real_array(p, "p", nonnegative=True, ndim=1)
    q = as_real_array(q, "q", nonnegative=True, ndim=1)
    if p.shape != q.shape:
        raise ValueError(f"p and q must be 1-D arrays of the same length, got {p.shape}, {q.shape}")
    return p, q, check_real(dx, "dx", minimum=0.0, strict_min=True)


def kl_divergence(p, q, dx: float) -> float:
    """Kullback–Leibler divergence ``KL(p ‖ q) = ∫ p log(p / q) dx`` (nats) of two densities
    tabulated on a uniform grid of spacing ``dx`` (a Riemann sum), eq. (5.9) [gan-ns-div].

    The order decides what it punishes. ``KL(p_data ‖ q)``, the *forward* KL that maximum
    likelihood minimises (the VAE's ELBO is a bound on it), is infinite where ``q = 0 < p``:
    the model must cover every mode of the data (mode-covering). ``KL(q ‖ p_data)``, the
    *reverse* KL, is infinite where ``p = 0 < q`` and indifferent to the data's modes that
    ``q`` leaves empty: the model may sit on a few modes (mode-seeking). Returns ``inf`` where
    ``p > 0`` and ``q = 0`` on the grid.
    """
    p, q, dx = _density_pair(p, q, dx)
    if np.any((p > 0) & (q == 0)):
        return float("inf")
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, p * (np.log(p) - np.log(q)), 0.0)
    return float(terms.sum() * dx)


def nonsaturating_divergence(p, q, dx: float) -> float:
    """``KL(q ‖ p) − 2 JS(p ‖ q)`` (nats), eq. (5.9) [gan-ns-div]: the divergence whose gradient
    the non-saturating generator loss follows (Arjovsky & Bottou 2017, Theorem 2.5).

    With the optimal discriminator ``D* = p / (p + q_θ0)`` held fixed,
    ``∇_θ E_z[−log D*(G_θ(z))] = ∇_θ [KL(q_θ ‖ p) − 2 JS(p ‖ q_θ)]`` at ``θ = θ0``: a reverse,
    mode-seeking KL, minus a JS term that pushes the other way. (The minimax loss instead
    follows ``2 JS(p ‖ q_θ)``, eq. (5.4) [gan-js].) ``p`` is the data density and ``q`` the
    generator's, tabulated on a uniform grid of spacing ``dx``.
    """
    return kl_divergence(q, p, dx) - 2.0 * jensen_shannon(p, q, dx)


def critic_loss(real_scores, fake_scores) -> torch.Tensor:
    """The Wasserstein critic's loss without its penalty, eq. (5.10) [gan-wgan-gp]::

        L_f = E_{z~p_z}[f(G(z))] - E_{x~p}[f(x)]

    ``f`` (the scores) is unbounded: no sigmoid, no logarithm. Minimising it over 1-Lipschitz
    critics gives ``-W_1(p, q)``, the (negative) Wasserstein-1 distance (Kantorovich–Rubinstein
    duality); the gradient penalty, :func:`gradient_penalty`, stands in for the Lipschitz
    constraint (Gulrajani et al. 2017).
    """
    return fake_scores.mean() - real_scores.mean()


def gradient_penalty(critic, x_real, x_fake, cond=None, generator=None) -> torch.Tensor:
    """WGAN-GP's gradient penalty without its weight λ, eq. (5.10) [gan-wgan-gp]::

        E_x̂ (‖∇_x̂ f(x̂)‖ − 1)²,   x̂ = ε x + (1 − ε) x̃,  ε ~ U[0, 1] per pair

    on random interpolates between a real ``x_real`` and a generated ``x_fake`` (paired row by
    row), where the optimal critic's gradient has norm 1 (Gulrajani et al. 2017). ``cond``
    (one-hot labels) is appended to the critic's input; ``generator`` (a torch.Generator)
    draws ε reproducibly. The graph is kept, so the result can be backpropagated.
    """
    eps = torch.rand(len(x_real), *([1] * (x_real.dim() - 1)), device=x_real.device,
                     generator=generator, dtype=x_real.dtype)
    x_hat = (eps * x_real.detach() + (1 - eps) * x_fake.detach()).requires_grad_(True)
    scores = critic(x_hat if cond is None else torch.cat([x_hat, cond], dim=1))
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).pow(2).mean()


# ====================================================================== networks


def _with_label(x, cond):
    """A network's input: ``x``, with the one-hot label appended for a conditional model."""
    return x if cond is None else torch.cat([x, cond], dim=1)


def train_step(G, D, opt_g, opt_d, x_real, z, cond=None, *, loss: str = "non-saturating",
               r1: float = 0.0, r1_every: int = 1, t: int = 0, gp: float = 10.0,
               generator=None, update_g: bool = True) -> dict:
    """One step of the GAN game on a minibatch, the step :meth:`GAN.fit` repeats:

    1. the discriminator descends its loss, eq. (5.2) [gan-d-loss], on the real minibatch
       ``x_real`` and on ``G(z)`` (detached: this step does not train G), plus, every
       ``r1_every`` steps, the lazy R1 penalty ``(γ/2) · r1_every · E‖∇ₓ l(x)‖²``, eq. (5.7)
       [gan-r1], with γ = ``r1``;
    2. the generator descends its loss, eq. (5.6) [gan-g-loss], on the logits of the SAME
       generated batch under the UPDATED discriminator.

    Each optimiser zeroes its gradients first, so nothing accumulates from one step to the
    next. ``z`` is the generator's whole input (with the one-hot label appended for a
    conditional model), ``cond`` the one-hot labels appended to the discriminator's input
    (None without labels). Returns the detached scalars of the step: ``loss_d``, ``loss_g``,
    ``r1`` (the penalty's expectation, or None on the steps that skip it), ``d_real`` and
    ``d_fake`` (the mean of D = sigmoid(logit) on the real and the generated batch).

    With ``loss="wasserstein"`` (WGAN-GP) the discriminator is a critic: step 1 descends
    :func:`critic_loss` plus ``gp`` times :func:`gradient_penalty` (every step; ``r1`` must be
    0), eq. (5.10) [gan-wgan-gp], drawing the interpolation weights from ``generator``;
    ``r1`` in the result is then the gradient penalty, and ``d_real``/``d_fake`` the mean
    critic scores (unbounded, not probabilities). ``update_g=False`` does step 1 only (the
    extra critic steps of ``n_critic``); ``loss_g`` is then None.
    """
    wasserstein = loss == "wasserstein"
    if wasserstein and r1 > 0:
        raise ValueError(f"r1 must be 0 with loss='wasserstein' (the gradient penalty gp "
                         f"replaces it), got {r1}")
    fake = G(z)
    real_logits = D(_with_label(x_real, cond))
    fake_logits = D(_with_label(fake.detach(), cond))
    total, penalty = None, None
    if wasserstein:
        loss_d = critic_loss(real_logits, fake_logits)
        penalty = gradient_penalty(D, x_real, fake, cond, generator)
        total = loss_d + gp * penalty
    else:
        loss_d = discriminator_loss(real_logits, fake_logits)
        total = loss_d
        if r1 > 0 and t % r1_every == 0:
            penalty = r1_penalty(D, x_real, cond)
            total = total + 0.5 * r1 * r1_every * penalty
    opt_d.zero_grad(set_to_none=True)
    total.backward()
    opt_d.step()
    loss_g = None
    if update_g:
        loss_g = generator_loss(D(_with_label(fake, cond)), loss)
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
    squash = (lambda v: v) if wasserstein else torch.sigmoid
    return {"loss_d": loss_d.detach(), "loss_g": None if loss_g is None else loss_g.detach(),
            "r1": None if penalty is None else penalty.detach(),
            "d_real": squash(real_logits).mean().detach(),
            "d_fake": squash(fake_logits).mean().detach()}


@torch.no_grad()
def ema_update(average: nn.Module, net: nn.Module, decay: float, step: int) -> None:
    """One step of the exponential moving average of the generator's weights (Yazıcı et al.
    2019; Karras et al. 2018), the network :meth:`GAN.sample` uses when ``ema > 0``::

        θ̄ ← β θ̄ + (1 − β) θ,   β = min(decay, (1 + step) / (10 + step))

    The warm-up of β lets the average forget the random initial weights in short runs.
    Buffers (if any) are copied. ``average`` has the same architecture as ``net``.
    """
    beta = min(float(decay), (1.0 + step) / (10.0 + step))
    for a, p in zip(average.parameters(), net.parameters()):
        a.lerp_(p.detach(), 1.0 - beta)
    for a, b in zip(average.buffers(), net.buffers()):
        a.copy_(b)


def refine_discriminator(G, D, opt, x_real, z, cond=None) -> dict:
    """One step of the refinement of the discriminator for rejection sampling, eq. (5.8)
    [gan-drs], the step :meth:`GAN.fit` repeats ``rejection_steps`` times after training.

    The acceptance probability ``exp(logit - log M)`` needs the logit to estimate
    ``log p(x)/q(x)`` for the FINAL generator, so the discriminator (alone: G is frozen, its
    batch ``G(z)`` computed without gradients) descends its loss, eq. (5.2) [gan-d-loss], on
    the real minibatch ``x_real`` and on ``G(z)`` a little longer, without the R1 penalty.
    ``cond`` is the one-hot labels appended to the discriminator's input (None without
    labels). Returns the detached loss as ``loss_d_rejection``.
    """
    with torch.no_grad():
        fake = G(z)
    loss = discriminator_loss(D(_with_label(x_real, cond)), D(_with_label(fake, cond)))
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return {"loss_d_rejection": loss.detach()}


# ====================================================================== presets

#: The presets: the value a hyperparameter left at ``None`` takes, by the data ``fit`` sees.
#: :func:`resolve_presets` applies them in this order, a later row winning over an earlier one,
#: and an explicit hyperparameter over every row (D = features per sample, C·H·W for images):
#:
#: - ``"low-dimensional"`` (D <= 16) and ``"high-dimensional"`` (D > 16), for points and
#:   images alike. A third hidden layer in the discriminator (``d_depth``) lets it draw the
#:   sharp boundaries between 25 narrow modes and the "bridges" between them, which both the
#:   generator's training signal and rejection sampling need; β₂ = 0.9 lets Adam's moment
#:   estimate follow the fast-changing gradient scale of the game, which sharpened the samples
#:   on the 2D grid (``benchmarks/gan_modes.py``). The wider networks and β₂ = 0.999 of
#:   high-dimensional data are the settings the digits were tuned with.
#: - ``"points"`` ``(N, D)`` and ``"images"`` ``(N, C, H, W)``. Images need a strong R1
#:   penalty: with the point data's γ = 0.01 the GAN on the digits collapses onto a few
#:   classes, worse the longer it trains. ``sample_rejection`` is :meth:`GAN.sample`'s default
#:   for ``rejection=None`` (when the model was fitted with ``rejection=True``): on the digits
#:   rejection sampling raised precision but lowered recall and worsened the FID, so images
#:   are sampled raw unless ``sample(n, rejection=True)`` asks for it
#:   (``benchmarks/gan_digits.py``, results in ``benchmarks/results/gan_digits_cpu.txt``).
#: - ``"conv"`` (``architecture="conv"``): ``hidden`` is then the channels of the first
#:   convolution, not the width of an MLP layer.
#: - ``"wasserstein"`` (``loss="wasserstein"``): the gradient penalty ``gp`` replaces R1.
PRESETS = {
    "low-dimensional": {"hidden": 128, "d_depth": 3, "beta2": 0.9},
    "high-dimensional": {"hidden": 256, "d_depth": 2, "beta2": 0.999},
    "points": {"r1": 0.01, "sample_rejection": True},
    "images": {"r1": 1.0, "sample_rejection": False},
    "conv": {"hidden": 16},
    "wasserstein": {"r1": 0.0},
}
LOW_DIMENSIONAL = 16  # the most features per sample of "low-dimensional" data


def resolve_presets(params: dict, shape) -> dict:
    """The values of the preset hyperparameters (``hidden``, ``d_depth``, ``beta2``, ``r1``,
    ``lr_d``) and of ``sample_rejection`` for data whose samples have ``shape`` (``(D,)`` or
    ``(C, H, W)``): each one's value in ``params`` (a GAN's ``get_params()``) where it is not
    None, else the last of the :data:`PRESETS` rows that apply. ``lr_d`` left at None is ``lr``.
    """
    D = int(np.prod(shape))
    rows = ["low-dimensional" if D <= LOW_DIMENSIONAL else "high-dimensional",
            "images" if len(shape) == 3 else "points"]
    if params["architecture"] == "conv":
        rows.append("conv")
    if params["loss"] == "wasserstein":
        rows.append("wasserstein")
    values = {}
    for row in rows:
        values.update(PRESETS[row])
    values.update({name: params[name] for name in values if params.get(name) is not None})
    values["lr_d"] = params["lr"] if params["lr_d"] is None else params["lr_d"]
    for name in ("beta2", "r1", "lr_d"):
        values[name] = float(values[name])
    return values


# ====================================================================== the estimator


class GAN(NeuralEstimator):
    """A generative adversarial network (Goodfellow et al. 2014) with scikit-learn's shape.

    ``GAN().fit(X).sample(n)`` works for point data ``(N, D)`` and for images ``(N, C, H, W)``
    with values in [0, 1]; ``fit(X, y)`` trains a conditional GAN (Mirza & Osindero 2014: the
    one-hot label is appended to both networks' inputs) and ``sample(n, labels)`` generates
    the requested classes. The generator maps ``z ~ N(0, I_latent_dim)`` (the book's prior p_z)
    to a flattened, standardised data point, the discriminator such a point to a logit; the
    module docstring lists the defaults. Where the right value depends on the data, a
    hyperparameter's default is ``None``: ``fit`` then takes the value of the preset for the
    data it sees (:data:`PRESETS` says which and why). An explicit value always wins.

    Parameters
    ----------
    latent_dim : int >= 1, default 8
        Dimension of the latent vector z.
    hidden : int >= 1 or None, default None
        Width of every hidden layer of the default MLPs (two in the generator, ``d_depth`` in
        the discriminator; with ``architecture="conv"``: the channels of the first
        convolution); ``None``: the preset.
    d_depth : int >= 1 or None, default None
        Number of hidden layers of the default discriminator (the default generator has two);
        ``None``: the preset.
    architecture : {"mlp", "conv"}, default "mlp"
        The default networks: MLPs, or for images small DCGAN-style convolutional networks
        (:class:`ConvGenerator`, :class:`ConvDiscriminator`; ``d_depth`` is then unused).
    n_steps : int >= 1, default 6000
        Training steps (each: ``n_critic`` discriminator updates and one generator update).
    batch_size : int >= 1, default 256
    lr : float > 0, default 4e-3
        Adam's learning rate (of both networks unless ``lr_d`` is given).
    lr_d : float > 0 or None, default None
        The discriminator's (two time-scale update rule, Heusel et al. 2017); ``None``: ``lr``.
    beta1 : float in [0, 1), default 0.5
        Adam's first momentum coefficient (0.5 is the usual choice for GANs).
    beta2 : float in [0, 1) or None, default None
        Adam's second momentum coefficient; ``None``: the preset.
    loss : {"non-saturating", "minimax", "wasserstein"}, default "non-saturating"
        The generator's loss, :func:`generator_loss`. ``"wasserstein"`` trains a WGAN-GP
        (Gulrajani et al. 2017): the discriminator becomes a critic with unbounded scores,
        trained on :func:`critic_loss` plus ``gp`` times :func:`gradient_penalty` (no R1);
        the paper's settings are ``lr=1e-4, beta1=0.0, beta2=0.9, n_critic=5``.
    n_critic : int >= 1, default 1
        Discriminator (critic) updates per generator update; each on a fresh minibatch.
    gp : float >= 0, default 10.0
        λ of the gradient penalty of ``loss="wasserstein"`` (unused otherwise).
    r1 : float >= 0 or None, default None
        γ of the R1 penalty (in standardised units); 0 switches it off. ``None``: the preset
        (0 with ``loss="wasserstein"``, which refuses an explicit r1 > 0).
    r1_every : int >= 1, default 16
        Lazy regularisation: the penalty is computed every ``r1_every`` steps and multiplied
        by ``r1_every`` (Karras et al. 2020).
    rejection : bool, default True
        Refine the discriminator for rejection sampling after the main training
        (:meth:`sample` uses it by default for point data, on request for images).
    rejection_steps : int >= 1, default 3000
    rejection_quantile : float in [0.5, 1], default 0.95
        log M of rejection sampling is this quantile of the discriminator's logits on 10,000
        generated points per class: 1.0 is their maximum (exact rejection sampling when the
        logit is exact); a lower value accepts more, capping the probability at 1 for the
        points above the quantile (useful in high dimension, where the maximum is an outlier).
    lr_decay : bool, default True
        Cosine decay of the learning rate to 0 over ``n_steps``; False keeps it constant.
    ema : float in [0, 1), default 0
        Decay of an exponential moving average of the generator's weights (:func:`ema_update`),
        which then samples (``generator_`` is the average); 0 switches it off (with the cosine
        decay the last weights are already an average).
    snapshots : int >= 0, default 0
        Keep this many snapshots of the generator's output, 500 samples from the same latent
        vectors at evenly spaced steps (the last after the final step), in ``snapshots_``.
    generator, discriminator : nn.Module or None
        Replace the default networks. ``generator`` maps ``(B, latent_dim + n_classes)`` to
        ``(B, D)`` (flattened, standardised data); ``discriminator`` maps
        ``(B, D + n_classes)`` to ``(B, 1)`` logits (``n_classes`` is 0 without labels). They
        are trained in place (with ``ema > 0``, ``generator_`` is an averaged copy). A model
        saved with them is loaded with ``GAN.load(path, generator=..., discriminator=...)``.
    random_state : int or None
        Seeds the weights, the minibatches and the noise: same value, same result on the CPU.
    device : str, torch.device or None (``None``: :func:`course_lib.get_device`)
    progress : bool, default True
        Show a progress bar during training.

    Attributes
    ----------
    generator_, discriminator_ : nn.Module (in eval mode after fitting)
    input_shape_ : tuple, the shape of one sample; n_features_in_ : int, D
    classes_ : ndarray or None, the labels of a conditional model
    mean_ : tensor (D,), scale_ : float, the standardisation (x - mean_) / scale_
    log_m_ : tensor (n_classes or 1,), log M of rejection sampling per class (None without rejection)
    history_ : dict of lists, per step ``loss_d``, ``loss_g``, ``r1`` (the last computed
        penalty; with ``loss="wasserstein"`` the gradient penalty), ``d_real``/``d_fake`` (mean
        D on the minibatch; with ``loss="wasserstein"`` the mean critic scores), ``lr``; and
        ``loss_d_rejection`` for the rejection steps
    fit_time_ : float, seconds spent in ``fit``
    resumed_ : dict or None, after ``fit(..., checkpoint=path)`` went on from a stopped run:
        what its earlier segments cost (``segments``, ``done`` steps, ``cpu_s``, ``wall_s``,
        ``machines``: the processor of each)
    snapshots_ : list of (step, ndarray) pairs, samples in X's shape (see ``snapshots``)
    """

    def __init__(self, latent_dim: int = 8, hidden=None, d_depth=None, architecture: str = "mlp",
                 n_steps: int = 6000, batch_size: int = 256, lr: float = 4e-3, lr_d=None,
                 beta1: float = 0.5, beta2=None, loss: str = "non-saturating",
                 n_critic: int = 1, gp: float = 10.0, r1=None, r1_every: int = 16,
                 rejection: bool = True, rejection_steps: int = 3000,
                 rejection_quantile: float = 0.95, lr_decay: bool = True, ema: float = 0.0,
                 snapshots: int = 0, generator=None, discriminator=None, random_state=None,
                 device=None, progress: bool = True):
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.d_depth = d_depth
        self.architecture = architecture
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.lr = lr
        self.lr_d = lr_d
        self.beta1 = beta1
        self.beta2 = beta2
        self.loss = loss
        self.n_critic = n_critic
        self.gp = gp
        self.r1 = r1
        self.r1_every = r1_every
        self.rejection = rejection
        self.rejection_steps = rejection_steps
        self.rejection_quantile = rejection_quantile
        self.lr_decay = lr_decay
        self.ema = ema
        self.snapshots = snapshots
        self.generator = generator
        self.discriminator = discriminator
        self.random_state = random_state
        self.device = device
        self.progress = progress

    # ------------------------------------------------------------------ presets and networks

    def _presets(self, shape) -> dict:
        """The preset hyperparameters resolved for samples of ``shape`` (:func:`resolve_presets`)."""
        return resolve_presets(self.get_params(deep=False), shape)

    def _r1(self, shape) -> float:
        """The R1 weight γ used for samples of ``shape``."""
        return self._presets(shape)["r1"]

    def _beta2(self, D: int) -> float:
        """Adam's β₂ used for samples of ``D`` features."""
        return self._presets((D,))["beta2"]

    def _build(self, D: int, n_classes: int, shape=None):
        """The generator and the discriminator (the given ones, or the default MLPs or conv
        networks) for samples of ``shape``, ``D`` features, with ``n_classes`` labels."""
        shape = (D,) if shape is None else tuple(shape)
        conv = self.architecture == "conv"
        if conv and len(shape) != 3:
            raise ValueError(f"architecture='conv' needs images (N, C, H, W), got data of shape "
                             f"(N, {', '.join(map(str, shape))})")
        preset = self._presets(shape)
        h = preset["hidden"]
        if self.generator is not None:
            G = self.generator
        elif conv:
            G = ConvGenerator(self.latent_dim + n_classes, shape, h)
        else:
            G = mlp([self.latent_dim + n_classes, h, h, D], nn.ReLU)
        if self.discriminator is not None:
            Dn = self.discriminator
        elif conv:
            Dn = ConvDiscriminator(shape, n_classes, h)
        else:
            Dn = mlp([D + n_classes] + [h] * preset["d_depth"] + [1], _leaky)
        return G, Dn

    # ------------------------------------------------------------------ fit

    def fit(self, X, y=None, *, checkpoint=None, checkpoint_every: int = 1000):
        """Train on ``X`` (``(N, D)`` points or ``(N, C, H, W)`` images in [0, 1]); labels ``y``
        (length N) make the GAN conditional. Returns ``self``.

        ``checkpoint``: a file path. The run's whole state is saved there every
        ``checkpoint_every`` steps (:class:`~course_lib.training.RunCheckpoint`; nothing for a
        fit of fewer steps); a ``fit`` that finds the file of an earlier, stopped fit of the
        same model on the same data goes on from it (with its seed, even when ``random_state``
        is None), with the same result on the same CPU and thread count as a run that never
        stopped, and deletes the file when it succeeds (``resumed_`` then says what the earlier
        segments cost; None otherwise).

        Reads top to bottom: the set-up, the loop over :meth:`_GANRun.step` (one
        :func:`train_step`, eqs. (5.2) [gan-d-loss] and (5.6) [gan-g-loss]), the refinement for
        rejection sampling (:func:`refine_discriminator`, eq. (5.8) [gan-drs]), the fitted state.
        Raises ``ValueError``/``TypeError`` naming the argument for bad input, ``DivergenceError``
        if a loss becomes NaN or infinite; the model is then left as it was.
        """
        start = time.perf_counter()
        _check_hyperparameters(self)
        checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
        device = self._target_device()
        X = _check_data(X)
        run_file, loaded, seed = self._open_run(checkpoint, X, y)  # and a stopped run's state
        input_shape = tuple(X.shape[1:])
        x, mean, scale, classes, y_idx = _standardise(X, y)
        n_classes = 0 if classes is None else len(classes)
        with seeded(seed):
            G, Dn = self._build(x.shape[1], n_classes, input_shape)
        preset = self._presets(input_shape)  # beta2, lr_d and r1 of the optimisers and steps
        run = _GANRun(self, preset, x.to(device), y_idx, n_classes, (G, Dn), seed, device)
        done, history = run.resume(loaded)

        history = train_loop(run.step, self.n_steps, progress=bool(self.progress), desc="GAN",
                             check=("loss_d", "loss_g", "r1"), start=done, history=history,
                             checkpoint=None if run_file is None else run.saver(run_file),
                             checkpoint_every=checkpoint_every)
        _freeze(G)
        log_m = None
        if self.rejection:
            history.update(train_loop(run.refine_step, self.rejection_steps,
                                      progress=bool(self.progress), desc="GAN (rejection)",
                                      check=("loss_d_rejection",)))
            log_m = _estimate_log_m(run, float(self.rejection_quantile))
        _freeze(Dn)

        # success: commit the fitted state
        self._set_fitted(run.G_out, Dn, classes, input_shape, mean.to(device), scale, log_m)
        self.history_ = history
        self._rng_ = run.noise_gen
        self.snapshots_ = [(t, self._to_data(x)) for t, x in run.snapshots]
        self.resumed_ = None if run_file is None else run_file.finish()
        self.fit_time_ = time.perf_counter() - start + (self.resumed_ or {}).get("wall_s", 0.0)
        return self

    def _set_fitted(self, G, Dn, classes, input_shape, mean, scale, log_m):
        """Set the fitted attributes shared by fit and load (only once everything succeeded)."""
        self.generator_, self.discriminator_ = G, Dn
        self.classes_ = classes
        self.input_shape_ = input_shape
        self.n_features_in_ = int(np.prod(input_shape))
        self.mean_ = mean
        self.scale_ = scale
        self.log_m_ = log_m

    # ------------------------------------------------------------------ save / load

    def _networks_state(self):
        return _checkpoint_state(self)

    def _checkpoint_meta(self):
        return _checkpoint_meta(self)

    def _restore(self, meta, state):
        _restore(self, meta, state)

    # ------------------------------------------------------------------ sampling

    def _net_device(self) -> torch.device:
        return self.mean_.device

    def _n_classes(self) -> int:
        return 0 if self.classes_ is None else len(self.classes_)

    def _to_data(self, flat_std: torch.Tensor) -> np.ndarray:
        """Standardised flat rows back in X's units and shape (images clamped to [0, 1])."""
        x = flat_std * self.scale_ + self.mean_
        if len(self.input_shape_) == 3:  # images live in [0, 1]
            x = x.clamp(0.0, 1.0)
        return x.detach().cpu().numpy().astype(np.float32).reshape(len(x), *self.input_shape_)

    @torch.no_grad()
    def _generate(self, idx, gen) -> torch.Tensor:
        """Raw generator output (standardised, flat) for label indices ``idx`` (or a count)."""
        device = self._net_device()
        n = idx if isinstance(idx, int) else len(idx)
        z = torch.randn(n, self.latent_dim, generator=gen, device=device)
        c = None if isinstance(idx, int) else one_hot(idx, self._n_classes(), device)
        return self.generator_(_with_label(z, c))

    @torch.no_grad()
    def logits(self, X, labels=None) -> np.ndarray:
        """The discriminator's logit for each row of ``X`` (in X's units): after fitting with
        ``rejection=True`` an estimate of ``log p(x)/q(x)``, eq. (5.5) [gan-logit]."""
        self._check_fitted()
        x = _standardised_rows(self, X)
        idx = self._label_index(labels, len(x))
        c = one_hot(idx, self._n_classes(), self._net_device())
        return self.discriminator_(_with_label(x, c)).squeeze(1).cpu().numpy()

    @torch.no_grad()
    def sample(self, n_samples: int = 1, labels=None, *, rejection=None, seed=None,
               return_acceptance: bool = False):
        """``n_samples`` new points (or images) in the shape of the training data.

        Parameters
        ----------
        n_samples : int >= 1
        labels : a class label, an array of shape ``(n_samples,)``, or None
            Classes to generate (conditional models only; one label: every sample of that
            class); ``None`` cycles through the classes: ``classes_[i % n_classes]``.
        rejection : bool or None
            ``True``: discriminator rejection sampling (needs ``rejection=True`` at fit);
            ``False``: the raw generator output G(z); ``None`` (default): the preset, rejection
            sampling for point data (when fitted with ``rejection=True``), raw for images.
        seed : int or None
            Seeds the latent draws and acceptance tests; ``None``: the model's own stream.
        return_acceptance : bool
            Also return the fraction of generated candidates that were accepted.
        """
        self._check_fitted()
        n = check_int(n_samples, "n_samples", minimum=1)
        rejection = _sample_with_rejection(self, rejection)
        idx = self._label_index(labels, n)
        gen = self._sampling_generator(seed, self._net_device())
        if rejection:
            out, acceptance = _rejection_sample(self, n, idx, gen)
        else:
            out, acceptance = self._generate(n if idx is None else idx, gen), 1.0
        data = self._to_data(out)
        return (data, acceptance) if return_acceptance else data


# ====================================================================== checks and data


def _optional(rule):
    """A hyperparameter rule that also lets ``None`` through (``None``: the preset)."""

    def check(value, name):
        return None if value is None else rule(value, name)

    return check


def _module_or_none(value, name: str):
    """A network given in place of a default one: ``None`` or a ``torch.nn.Module``."""
    if value is not None and not isinstance(value, nn.Module):
        raise TypeError(f"{name} must be None or a torch.nn.Module, got {type(value).__name__}")
    return value


def _check_r1(value, name: str, loss: str):
    """γ of R1: None (the preset) or a real >= 0, and with ``loss="wasserstein"`` 0 only."""
    if value is None:
        return None
    if check_real(value, name, minimum=0.0) > 0 and loss == "wasserstein":
        raise ValueError(f"r1 must be None or 0 with loss='wasserstein' (the gradient "
                         f"penalty gp replaces it), got {value}")
    return value


#: Every hyperparameter the GAN checks and what it must be, in the order they are checked by
#: :func:`course_lib._core.check_params` (``r1``'s rule depends on ``loss``: see
#: :func:`_check_hyperparameters`; ``random_state`` and ``device`` are checked where used).
_HYPERPARAMETERS = {
    "latent_dim": Int(minimum=1),
    "hidden": _optional(Int(minimum=1)),
    "d_depth": _optional(Int(minimum=1)),
    "architecture": OneOf(ARCHITECTURES),
    "n_steps": Int(minimum=1),
    "batch_size": Int(minimum=1),
    "lr": Float(minimum=0.0, strict_min=True),
    "lr_d": _optional(Float(minimum=0.0, strict_min=True)),
    "beta1": Float(minimum=0.0, maximum=1.0, strict_max=True),
    "beta2": _optional(Float(minimum=0.0, maximum=1.0, strict_max=True)),
    "loss": OneOf(LOSSES),
    "n_critic": Int(minimum=1),
    "gp": Float(minimum=0.0),
    "r1": _check_r1,
    "r1_every": Int(minimum=1),
    "rejection": Flag(),
    "rejection_steps": Int(minimum=1),
    "rejection_quantile": Float(minimum=0.5, maximum=1.0),
    "lr_decay": Flag(),
    "ema": Float(minimum=0.0, maximum=1.0, strict_max=True),
    "snapshots": Int(minimum=0),
    "generator": _module_or_none,
    "discriminator": _module_or_none,
    "progress": Flag(),
}


def _check_hyperparameters(gan: GAN) -> None:
    """Check every hyperparameter of ``gan`` (the table ``_HYPERPARAMETERS``, in its order)."""
    check_params(gan, dict(_HYPERPARAMETERS, r1=functools.partial(_check_r1, loss=gan.loss)))


def _check_data(X, name: str = "X") -> torch.Tensor:
    """``X`` as a float32 CPU tensor of points ``(N, D)`` or images ``(N, C, H, W)`` in [0, 1]."""
    X = as_tensor(check_input(X, name), name, ndim=(2, 4), dtype=torch.float32, device="cpu")
    if X.dim() == 4 and (bool((X < 0).any()) or bool((X > 1).any())):
        raise ValueError(f"{name}: images (N, C, H, W) must have values in [0, 1], found "
                         f"[{X.min().item():.4g}, {X.max().item():.4g}]")
    return X


def _standardise(X, y):
    """``fit``'s data: the flattened rows of ``X`` standardised (mean per feature, ONE
    overall standard deviation), with ``mean`` and ``scale``, and the labels ``y`` encoded
    as ``classes`` and indices into them (both None without labels)."""
    N = X.shape[0]
    if N < 2:
        raise ValueError(f"X must contain at least 2 samples, got {N} sample(s)")
    flat = X.reshape(N, -1)
    classes, y_idx = NeuralEstimator._fit_labels(y, N)
    mean = flat.mean(0)
    scale = float((flat - mean).pow(2).mean().sqrt())
    if not scale > 0:
        raise ValueError("X: every sample is the same point; a GAN needs varied data")
    return (flat - mean) / scale, mean, scale, classes, y_idx


def _standardised_rows(gan: GAN, X) -> torch.Tensor:
    """``X`` (in X's units, points or images) as flat rows in the fitted ``gan``'s
    standardised units, on its device: what its networks take."""
    X = _check_data(X)
    flat = X.reshape(len(X), -1)
    if flat.shape[1] != gan.n_features_in_:
        raise ValueError(f"X must have {gan.n_features_in_} features per sample, "
                         f"got {flat.shape[1]}")
    return (flat.to(gan._net_device()) - gan.mean_) / gan.scale_


def _sample_with_rejection(gan: GAN, rejection) -> bool:
    """Whether :meth:`GAN.sample` uses rejection sampling: ``rejection`` (True or False; it
    needs a model fitted with ``rejection=True``), or for ``None`` the preset of the data
    ``gan`` was fitted on (``sample_rejection`` in :data:`PRESETS`)."""
    if rejection is None:
        return gan.log_m_ is not None and gan._presets(gan.input_shape_)["sample_rejection"]
    if not isinstance(rejection, (bool, np.bool_)):
        raise TypeError(f"rejection must be None, True or False, got {rejection!r}")
    if rejection and gan.log_m_ is None:
        raise ValueError("rejection=True needs a model fitted with rejection=True")
    return rejection


# ====================================================================== saving and loading
# NeuralEstimator.save and GAN.load call these (through GAN's methods of the same protocol).


def _checkpoint_state(gan: GAN) -> dict:
    """The tensors a checkpoint stores: both networks' state dicts, the mean of the
    standardisation and log M (empty without rejection sampling)."""
    gan._check_fitted()
    log_m = torch.zeros(0) if gan.log_m_ is None else gan.log_m_.detach().cpu()
    return {"generator": gan.generator_.state_dict(),
            "discriminator": gan.discriminator_.state_dict(),
            "standardisation": {"mean": gan.mean_.detach().cpu(), "log_m": log_m}}


def _checkpoint_meta(gan: GAN) -> dict:
    """What else a checkpoint must remember, as plain values."""
    gan._check_fitted()
    return {"input_shape": list(gan.input_shape_),
            "classes": None if gan.classes_ is None else gan.classes_.tolist(),
            "scale": float(gan.scale_), "has_log_m": gan.log_m_ is not None,
            "fit_time": float(gan.fit_time_)}


def _restore(gan: GAN, meta: dict, state: dict) -> None:
    """Rebuild ``gan``'s networks from its hyperparameters and ``meta``, load ``state`` into
    them and set the fitted attributes (what :meth:`GAN.fit` sets)."""
    _check_hyperparameters(gan)
    device = gan._target_device()
    classes = None if meta["classes"] is None else np.asarray(meta["classes"])
    input_shape = tuple(int(s) for s in meta["input_shape"])
    D = int(np.prod(input_shape))
    G, Dn = gan._build(D, 0 if classes is None else len(classes), input_shape)
    G.load_state_dict(state["generator"])
    Dn.load_state_dict(state["discriminator"])
    mean = state["standardisation"]["mean"]
    if tuple(mean.shape) != (D,):
        raise ValueError(f"the stored mean has shape {tuple(mean.shape)}, expected ({D},)")
    log_m = state["standardisation"]["log_m"].to(device) if meta["has_log_m"] else None
    gan._set_fitted(_freeze(G.to(device)), _freeze(Dn.to(device)), classes, input_shape,
                    mean.to(device), float(meta["scale"]), log_m)
    gan.fit_time_ = float(meta.get("fit_time", 0.0))
    gan._rng_ = gan._seeded_generator(gan._training_seed(), device)


# ====================================================================== one run of fit


def _freeze(net: nn.Module) -> nn.Module:
    """``net`` in evaluation mode with gradients off (a fitted or averaged network)."""
    net.eval()
    for p in net.parameters():
        p.requires_grad_(False)
    return net


def _cosine(t: int, n_steps: int) -> float:
    """Cosine learning-rate factor: 1 at step 0, 0 after the last step."""
    return 0.5 * (1.0 + math.cos(math.pi * t / n_steps))


_REJECTION_LR = 0.25  # learning rate of the rejection steps, relative to lr
_SNAPSHOT_SIZE = 500  # samples per snapshot


class _GANRun:
    """What one :meth:`GAN.fit` works on, step after step: the standardised data ``x`` (on the
    device) with its labels (indices ``y_idx``, one-hot ``y1h``; None without labels), the
    endless minibatches, the generator ``noise_gen`` of the noise, the two networks in
    training mode with their optimisers, the moving average of the generator (``G_avg``,
    None when ``ema`` = 0), the last computed R1 penalty and the snapshots taken so far.

    :meth:`step` is the step of the game that ``fit`` repeats ``n_steps`` times;
    :meth:`refine_step` the step of the refinement for rejection sampling."""

    def __init__(self, gan, preset, x, y_idx, n_classes, networks, seed, device):
        self.gan, self.preset = gan, preset
        self.x, self.y_idx, self.n_classes, self.device = x, y_idx, n_classes, device
        self.y1h = one_hot(y_idx, n_classes, device)
        self.noise_gen = gan._seeded_generator(seed, device)
        self.batches = minibatches(len(x), min(gan.batch_size, len(x)),
                                   gan._seeded_generator(seed + 1, "cpu"), drop_last=True)
        self.G, self.D = (net.to(device).train() for net in networks)
        self.G_avg = _freeze(copy.deepcopy(self.G)) if float(gan.ema) > 0 else None
        self.G_out = self.G if self.G_avg is None else self.G_avg  # the network that samples
        betas = (float(gan.beta1), self.preset["beta2"])
        self.opt_g = torch.optim.Adam(self.G.parameters(), lr=gan.lr, betas=betas)
        self.opt_d = torch.optim.Adam(self.D.parameters(), lr=self.preset["lr_d"], betas=betas)
        self.opt_r = torch.optim.Adam(self.D.parameters(), lr=gan.lr * _REJECTION_LR, betas=betas)
        self.options = {"loss": gan.loss, "r1": self.preset["r1"], "r1_every": gan.r1_every,
                        "gp": float(gan.gp), "generator": self.noise_gen}
        self.last_r1 = 0.0
        self.snapshot_steps, self.snapshot_z = self._snapshot_plan(seed)
        self.snapshots: list = []
        self.n_batches = 0  # minibatches drawn so far (where a resumed run's stream goes on)
        self.seed = seed

    def noise(self, b, idx, generator=None) -> torch.Tensor:
        """The generator's input for ``b`` samples: z ~ N(0, I), with the one-hot labels
        ``idx`` (class indices, or None) appended."""
        z = torch.randn(b, self.gan.latent_dim, device=self.device,
                        generator=self.noise_gen if generator is None else generator)
        return _with_label(z, one_hot(idx, self.n_classes, self.device))

    def next_batch(self):
        """The next minibatch as ``(x_real, z, cond)``: real rows, the generator's noise for
        as many samples with the same labels, and the one-hot labels (or None)."""
        idx = next(self.batches).to(self.device)
        self.n_batches += 1
        cond = None if self.y1h is None else self.y1h[idx]
        z = self.noise(len(idx), None if self.y_idx is None else self.y_idx[idx.cpu()])
        return self.x[idx], z, cond

    def step(self, t: int) -> dict:
        """Step ``t`` of the game: both learning rates, ``n_critic - 1`` extra critic steps,
        one :func:`train_step` (discriminator, then generator), the moving average of the
        generator, and a snapshot on the planned steps. Returns the step's scalars."""
        lr = self._set_lr(t)
        G, D, opt_g, opt_d = self.G, self.D, self.opt_g, self.opt_d
        for _ in range(int(self.gan.n_critic) - 1):
            train_step(G, D, opt_g, opt_d, *self.next_batch(), t=t, update_g=False, **self.options)
        out = train_step(G, D, opt_g, opt_d, *self.next_batch(), t=t, **self.options)
        if out["r1"] is None:  # lazy R1 skipped this step: report the last computed penalty
            out["r1"] = self.last_r1
        else:
            self.last_r1 = out["r1"]
        if self.G_avg is not None:
            ema_update(self.G_avg, G, float(self.gan.ema), t)
        if t in self.snapshot_steps:
            with torch.no_grad():
                self.snapshots.append((t + 1, self.G_out(self.snapshot_z)))
        return {**out, "lr": lr}

    def refine_step(self, t: int) -> dict:
        """Step ``t`` of the refinement for rejection sampling: :func:`refine_discriminator`,
        eq. (5.8) [gan-drs], with the generator frozen (after a WGAN-GP too: it trains the
        critic's network as a classifier, eq. (5.2))."""
        return refine_discriminator(self.G_out, self.D, self.opt_r, *self.next_batch())

    # ---------------------------------------------------------------- stop and go on

    def _state_objects(self) -> dict:
        """What has a ``state_dict``: both networks, their two optimisers, and the generator's
        moving average (the rejection steps' optimiser ``opt_r`` only starts after the last
        step, so it has nothing to save)."""
        objs = {"G": self.G, "D": self.D, "opt_g": self.opt_g, "opt_d": self.opt_d}
        return objs if self.G_avg is None else {**objs, "G_avg": self.G_avg}

    def saver(self, run_file: RunCheckpoint):
        """The ``checkpoint`` function of :func:`train_loop`: after ``done`` steps, save
        everything the next step depends on to ``run_file``."""
        def save(done: int, history: dict) -> None:
            state = {name: obj.state_dict() for name, obj in self._state_objects().items()}
            state["noise"] = {"state": self.noise_gen.get_state()}
            state["snapshots"] = {str(t): x.cpu() for t, x in self.snapshots}
            run_file.save(done, {"done": done, "seed": self.seed, "history": history,
                                 "batches": self.n_batches, "last_r1": float(self.last_r1)},
                          state)
        return save

    def resume(self, loaded) -> tuple[int, dict | None]:
        """Load a saved run (``(meta, state)`` of :meth:`RunCheckpoint.load`, or None: a fresh
        start) and return ``(steps done, history)`` for :func:`train_loop`."""
        if loaded is None:
            return 0, None
        meta, state = loaded
        for name, obj in self._state_objects().items():
            obj.load_state_dict(state[name])
        self.noise_gen.set_state(state["noise"]["state"])
        self.snapshots = sorted((int(t), x.to(self.device))
                                for t, x in state["snapshots"].items())
        skip_batches(self.batches, meta["batches"])
        self.n_batches, self.last_r1 = int(meta["batches"]), float(meta["last_r1"])
        return int(meta["done"]), meta["history"]

    def _set_lr(self, t: int) -> float:
        """Set both learning rates for step ``t`` (cosine decay when ``lr_decay``; the ratio
        ``lr_d / lr`` fixed) and return the generator's."""
        gan = self.gan
        lr_g = float(gan.lr)
        lr = gan.lr * _cosine(t, gan.n_steps) if gan.lr_decay else gan.lr
        for opt, base in ((self.opt_g, lr_g), (self.opt_d, self.preset["lr_d"])):
            for group in opt.param_groups:
                group["lr"] = lr * (base / lr_g)  # TTUR: lr_d / lr fixed
        return lr

    def _snapshot_plan(self, seed: int):
        """The steps after which :meth:`step` keeps a snapshot (``snapshots`` of them, evenly
        spaced, the last step included) and the fixed noise of its samples (labels cycling
        through the classes), drawn from a generator of its own so that the training is
        unchanged."""
        count, n = self.gan.snapshots, self.gan.n_steps
        if not count:
            return set(), None
        steps = {int(round(n * (k + 1) / count)) - 1 for k in range(count)}
        idx = None if self.y_idx is None else torch.arange(_SNAPSHOT_SIZE) % self.n_classes
        return steps, self.noise(_SNAPSHOT_SIZE, idx,
                                 self.gan._seeded_generator(seed + 2, self.device))


# ====================================================================== rejection sampling

_BURN_IN = 10_000  # generated points per class used to estimate log M
_MAX_ROUNDS = 12  # rounds of candidates before sample falls back to raw generator output


@torch.no_grad()
def _estimate_log_m(run: _GANRun, quantile: float) -> torch.Tensor:
    """log M of eq. (5.8) [gan-drs] per class: the ``quantile`` quantile (the maximum when it
    is 1) of the refined discriminator's logits on ``_BURN_IN`` generated points of that
    class, drawn from the run's noise."""
    out = []
    for k in range(max(1, run.n_classes)):
        idx = None if run.n_classes == 0 else torch.full((_BURN_IN,), k, dtype=torch.long)
        c = one_hot(idx, run.n_classes, run.device)
        logits = run.D(_with_label(run.G_out(run.noise(_BURN_IN, idx)), c)).squeeze(1)
        out.append(logits.max() if quantile >= 1.0 else torch.quantile(logits, quantile))
    return torch.stack(out).to(run.device)


def _rejection_sample(gan: GAN, n: int, idx, gen):
    """``n`` samples (standardised, flat) of a fitted ``gan`` by discriminator rejection
    sampling, eq. (5.8) [gan-drs], and the fraction of candidates accepted.

    Each round draws a few times more candidates than samples still needed
    (:func:`_candidates`) and fills each still-needed row with its first accepted candidate;
    rows still empty after ``_MAX_ROUNDS`` rounds get raw generator output, with a warning.
    ``idx``: the class index of each sample (None for an unconditional model)."""
    device = gan._net_device()
    out = torch.empty(n, gan.n_features_in_, device=device)
    need = torch.ones(n, dtype=torch.bool)
    n_drawn, n_kept = 0, 0
    for round_ in range(_MAX_ROUNDS):
        todo = torch.nonzero(need).flatten()
        if len(todo) == 0:
            break
        reps = 4 if round_ < 3 else 32
        fake, accept = _candidates(gan, todo.repeat(reps), idx, gen)
        n_drawn += len(accept)
        n_kept += int(accept.sum())
        rows, pos = _first_accepted(accept.cpu().reshape(reps, len(todo)), todo)
        out[rows.to(device)] = fake[pos.to(device)]
        need[rows] = False
    if bool(need.any()):  # pathological acceptance: fall back to raw samples (never silent)
        todo = torch.nonzero(need).flatten()
        warnings.warn(f"rejection sampling accepted too few candidates; {len(todo)} of {n} "
                      "samples are raw generator output", RuntimeWarning, stacklevel=3)
        out[todo.to(device)] = gan._generate(len(todo) if idx is None else idx[todo], gen)
    return out, n_kept / max(n_drawn, 1)


def _candidates(gan: GAN, rows, idx, gen):
    """Generated candidates for the output rows ``rows`` (standardised, flat) and whether each
    passes the acceptance test: a uniform draw below :func:`acceptance_probability`, with the
    log M of the candidate's class."""
    device = gan._net_device()
    cand_idx = None if idx is None else idx[rows]
    fake = gan._generate(len(rows) if idx is None else cand_idx, gen)
    c = None if idx is None else one_hot(cand_idx, gan._n_classes(), device)
    logit = gan.discriminator_(_with_label(fake, c)).squeeze(1)
    log_m = gan.log_m_[0] if idx is None else gan.log_m_[cand_idx.to(device)]
    accept = torch.rand(len(rows), generator=gen, device=device) < \
        acceptance_probability(logit, log_m)
    return fake, accept


def _first_accepted(accepted, todo):
    """Where each output row's first accepted candidate lies: ``accepted`` is ``(reps,
    len(todo))``, candidate ``r * len(todo) + j`` belonging to row ``todo[j]``. Returns the
    rows that got one and the positions of their candidates."""
    got = accepted.any(0)
    first = accepted.to(torch.uint8).argmax(0)  # index of the first True along the reps
    pos = (first * len(todo) + torch.arange(len(todo)))[got]
    return todo[got], pos
