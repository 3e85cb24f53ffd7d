"""Checks for the exercises of the VAE chapter (``solutions/06_*.ipynb``).

Every check builds its own inputs (NumPy ``float64`` arrays, fixed seeds), runs the learner's
function on them and compares the result with the course's reference implementation in
:mod:`course_lib.vae`. A wrong answer raises :class:`~course_lib.grading.GradingError` with a
message that says what is wrong and, for the usual mistakes, why.

- :func:`check_reparameterize` — ``reparameterize(mean, log_var, eps)``, eq. (6.5) [vae-reparam]
- :func:`check_gaussian_kl`    — ``gaussian_kl(mean, log_var)``, eq. (6.4) [vae-kl]
- :func:`check_elbo`           — ``elbo(log_px_given_z, mean, log_var)``, eq. (6.3) [vae-elbo]
- :func:`check_iwae`           — ``iwae_estimate(log_weights)``, eq. (6.9) [vae-iwae]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import GradingError, call_learner, check_close, check_shape, passed

__all__ = ["check_reparameterize", "check_gaussian_kl", "check_elbo", "check_iwae"]


def _vae():
    """The reference module (imported lazily so that this module imports on its own)."""
    from .. import vae

    return vae


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def _gaussian_params(seed: int, n: int, d: int):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(n, d)) * 1.5
    log_var = rng.normal(size=(n, d)) * 1.2  # negative and positive: σ < 1 and σ > 1
    return mean, log_var, rng


# ------------------------------------------------------------------ exercise 6.1


def check_reparameterize(reparameterize) -> None:
    """Check ``reparameterize(mean, log_var, eps) -> z`` (same shape as ``mean``): z = μ + σ ε
    with σ = exp(log_var / 2), eq. (6.5) [vae-reparam]."""
    what = "reparameterize(mean, log_var, eps)"
    for seed, (n, d) in ((601, (5, 3)), (602, (40, 8))):
        mean, log_var, rng = _gaussian_params(seed, n, d)
        eps = rng.normal(size=(n, d))
        expected = _np(_vae().reparameterize(_t(mean), _t(log_var), _t(eps)))
        got = call_learner(reparameterize, mean.copy(), log_var.copy(), eps.copy(), what=what)
        got = check_shape(got, (n, d), what, finite=True)
        hint = ""
        if np.allclose(got, mean + log_var * eps):
            hint = ("you used log σ² itself as the standard deviation; σ = exp(log σ² / 2) "
                    "(a log-variance can be negative, a standard deviation cannot)")
        elif np.allclose(got, mean + np.exp(log_var) * eps):
            hint = "exp(log_var) is the variance σ²; the noise is scaled by σ = exp(log_var / 2)"
        elif np.allclose(got, mean + np.exp(0.5 * log_var)):
            hint = "the noise eps is missing: z = mean + sigma * eps"
        check_close(got, expected, what, rtol=1e-6, atol=1e-8, hint=hint)
    passed("reparameterize: z = μ + σ ⊙ ε with σ = exp(log σ² / 2)")


def check_gaussian_kl(gaussian_kl) -> None:
    """Check ``gaussian_kl(mean, log_var) -> (N,)``: KL(N(μ, diag σ²) ‖ N(0, I)) in closed
    form, summed over the latent dimensions, eq. (6.4) [vae-kl]."""
    what = "gaussian_kl(mean, log_var)"
    cases = [_gaussian_params(611, 6, 2)[:2], _gaussian_params(612, 30, 10)[:2],
             (np.zeros((2, 4)), np.zeros((2, 4))),  # q = p: KL = 0
             _gaussian_params(613, 1, 3)[:2]]  # a batch of one: still shape (1,)
    for mean, log_var in cases:
        n, d = mean.shape
        expected = _np(_vae().gaussian_kl(_t(mean), _t(log_var)))
        got = call_learner(gaussian_kl, mean.copy(), log_var.copy(), what=what)
        if got is not None and np.shape(got) == (n, d):
            raise GradingError(f"{what} returned shape {(n, d)}, one value per latent "
                               f"dimension: sum over the last axis to get one KL per sample "
                               f"(shape ({n},))")
        got = check_shape(got, (n,), what, finite=False)
        if not np.all(np.isfinite(got)):
            raise GradingError(f"{what} contains NaN or infinite values. Hint: the KL takes "
                               "log σ² directly (log_var), never the log of something that "
                               "can be negative")
        hint = ""
        with np.errstate(divide="ignore", invalid="ignore"):
            log_var_as_sigma = 0.5 * (mean**2 + log_var**2 - 1 - np.log(log_var**2)).sum(1)
        if np.any(got < -1e-9):
            hint = ("a KL divergence is never negative: check the sign of every term "
                    "(½ Σ (μ² + σ² − 1 − log σ²))")
        elif np.allclose(got, log_var_as_sigma):
            hint = ("log_var is log σ², not σ: the variance is σ² = exp(log_var) and the last "
                    "term is log_var itself")
        elif np.allclose(got, 2 * expected):
            hint = "you forgot the factor ½"
        elif np.allclose(got, 0.5 * (mean**2 + np.exp(0.5 * log_var) - 1 - 0.5 * log_var).sum(1)):
            hint = "σ² = exp(log_var), not exp(log_var / 2) (that is σ)"
        check_close(got, expected, what, rtol=1e-6, atol=1e-9, hint=hint)
    passed("gaussian_kl: ½ Σ (μ² + σ² − 1 − log σ²), zero when q = p")


def _elbo_cases():
    """(mean, log_var, log_px_given_z) for :func:`check_elbo`: log-likelihoods of a discrete
    decoder (all negative); log-densities of a continuous one, which are positive where the
    density exceeds 1 (both signs); a batch of one."""
    cases = []
    for seed, n, d in ((621, 12, 4), (622, 8, 3), (623, 1, 3)):
        mean, log_var, rng = _gaussian_params(seed, n, d)
        log_px = -rng.uniform(20, 80, size=n) if seed == 621 else rng.normal(5, 15, size=n)
        cases.append((mean, log_var, log_px))
    return cases


def check_elbo(elbo) -> None:
    """Check ``elbo(log_px_given_z, mean, log_var) -> (N,)``: reconstruction minus the
    closed-form KL, eq. (6.3) [vae-elbo], on the cases of :func:`_elbo_cases`."""
    what = "elbo(log_px_given_z, mean, log_var)"
    for mean, log_var, log_px in _elbo_cases():
        n = len(log_px)
        expected = _np(_vae().elbo_terms(_t(log_px), _t(mean), _t(log_var))[0])
        got = call_learner(elbo, log_px.copy(), mean.copy(), log_var.copy(), what=what)
        got = check_shape(got, (n,), what, finite=True)
        kl = _np(_vae().gaussian_kl(_t(mean), _t(log_var)))
        hint = ""
        if np.allclose(got, log_px + kl):
            hint = "the KL is subtracted: ELBO = E_q[log p(x|z)] − KL(q ‖ p)"
        elif (log_px > 0).any() and np.allclose(got, -np.abs(log_px) - kl):
            hint = ("log p(x|z) is a log-density for continuous data and can be positive: "
                    "use it as it is, ELBO = log_px_given_z − KL")
        check_close(got, expected, f"{what} for log p(x|z) from {log_px.min():.3g} to "
                    f"{log_px.max():.3g} (batch of {n})", rtol=1e-6, atol=1e-8, hint=hint)
    passed("elbo: reconstruction − KL")


# ------------------------------------------------------------------ exercise 6.2


def _iwae_cases():
    """The log-weight arrays (N, k) :func:`check_iwae` runs on (seed 631).

    Ordinary rows; a single sample (k = 1, the estimate is the log-weight itself); rows around
    −3000 (every exp() underflows to 0 in float64); rows of very different scales in one
    array: around −1000, around +1000, one spread over 1500 within the row (one log-weight of
    0, the others from −1500 to −1000) and an ordinary one; a single row (N = 1) spread over
    more than 1500. On the mixed array a log-sum-exp shifted by the maximum of the whole
    array gives −inf for the row at −1000, one shifted by the row minimum (or mean) overflows
    on the spread row, and an unshifted one gives −inf and inf.
    """
    rng = np.random.default_rng(631)
    cases = [rng.normal(size=(5, 10)) * 2 - 40,
             rng.normal(size=(3, 1)) - 50,
             rng.normal(size=(4, 200)) * 5 - 3000]
    mixed = np.stack([rng.normal(size=50) * 3 - 1000,
                      rng.normal(size=50) * 3 + 1000,
                      np.concatenate([[0.0], rng.uniform(-1500, -1000, size=49)]),
                      rng.normal(size=50) * 2 - 40])
    return cases + [mixed, rng.normal(size=(1, 30)) * 400 + 300]


def _unstable_hint(got: np.ndarray, lw: np.ndarray) -> str:
    """The hint for a non-finite or wrong IWAE estimate: which unstable log-sum-exp it is."""
    k = lw.shape[1]
    with np.errstate(all="ignore"):
        gmax = lw.max()
        candidates = [
            ("shifted by the maximum of the whole array", gmax + np.log(np.exp(lw - gmax).mean(1)),
             "the rows have very different scales (one near −1000, one near +1000): shift "
             "EACH ROW by its own maximum, m = log_weights.max(axis=1, keepdims=True)"),
            ("shifted by the row minimum",
             lw.min(1) + np.log(np.exp(lw - lw.min(1, keepdims=True)).mean(1)),
             "shift each row by its MAXIMUM, not its minimum: exp(lw − min) overflows when a "
             "row spreads over more than about 700, while exp(lw − max) lies in (0, 1]"),
            ("unshifted", np.log(np.exp(lw).mean(1)),
             "in float64 exp(lw) is 0 below about −745 and inf above about 709: use "
             "log-sum-exp, m + log Σ exp(lw − m) − log k with m the maximum of each row"),
            ("averaged unshifted", np.log(np.exp(lw).sum(1)) - math.log(k),
             "in float64 exp(lw) is 0 below about −745 and inf above about 709: use "
             "log-sum-exp, m + log Σ exp(lw − m) − log k with m the maximum of each row"),
        ]
    for _, value, hint in candidates:
        if not np.all(np.isfinite(value)) and np.allclose(got, value, equal_nan=True):
            return hint
    return ("use log-sum-exp, m + log Σ exp(lw − m) − log k with m the maximum of EACH ROW "
            "(in float64 exp(lw) is 0 below about −745 and inf above about 709; a clamp or an "
            "eps inside the log changes the result)")


def _rows(lw: np.ndarray) -> str:
    lo, hi = lw.min(1), lw.max(1)
    return "; ".join(f"row {i}: {a:.0f} to {b:.0f}" for i, (a, b) in enumerate(zip(lo, hi)))


def check_iwae(iwae_estimate) -> None:
    """Check ``iwae_estimate(log_weights) -> (N,)``: log (1/k) Σ_i w_i from log-weights of shape
    (N, k), computed stably, eq. (6.9) [vae-iwae].

    The cases (:func:`_iwae_cases`) include log-weights around −3000 (every exp() underflows
    to 0 in float64), rows of very different scales in one array (around −1000, around
    +1000, spread over 1000 within a row), a single sample (k = 1, where the estimate is the
    log-weight itself) and a single row.
    """
    what = "iwae_estimate(log_weights)"
    for lw in _iwae_cases():
        n, k = lw.shape
        expected = _np(_vae().iwae_log_likelihood(_t(lw)))
        got = call_learner(iwae_estimate, lw.copy(), what=what)
        got = check_shape(got, (n,), what)
        inputs = f"log-weights of shape {lw.shape} ({_rows(lw)})"
        if not np.all(np.isfinite(got)):
            bad = int(np.argmax(~np.isfinite(got)))
            raise GradingError(
                f"{what} contains NaN or infinite values for {inputs}: row {bad} gives "
                f"{got[bad]}. Hint: {_unstable_hint(got, lw)}")
        hint = ""
        if np.allclose(got, lw.mean(1)):
            hint = ("that is the mean of the log-weights (the ELBO); IWAE takes the log of the "
                    "mean of the weights")
        elif np.allclose(got, expected + math.log(k)):
            hint = "you forgot the 1/k: subtract log k"
        elif np.allclose(got, lw.max(1)):
            hint = "the maximum alone is not the log-mean-exp: add log Σ exp(lw − max) − log k"
        elif np.abs(lw).max() > 700:
            hint = _unstable_hint(got, lw)
        check_close(got, expected, f"{what} for {inputs}", rtol=1e-9, atol=1e-8, hint=hint)
    passed("iwae_estimate: log-mean-exp of the importance weights, stable far from 0 and for "
           "rows of very different scales")
