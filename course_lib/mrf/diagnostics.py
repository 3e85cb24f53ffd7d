"""Convergence diagnostics for Markov chains: autocorrelation time, effective sample size, R̂.

Every MCMC run of the course can report these on its traces (the magnetisation and the
energy of the Ising model, the noise-rate iterates, ...):

- :func:`integrated_autocorrelation_time` ``τ_int`` with Sokal's automatic window
  (eq. (4.11) [mrf-tau-int]);
- :func:`effective_sample_size`: ``n_chains · n_steps / τ_int``, the number of independent
  draws the correlated trace is worth for estimating a mean;
- :func:`gelman_rubin`: the potential scale reduction ``R̂`` of Gelman & Rubin (1992) across
  chains (eq. (4.12) [mrf-rhat]); chains that have not forgotten their different starts give
  ``R̂`` far above 1.

Traces are arrays of shape ``(n_steps,)`` (one chain) or ``(n_steps, n_chains)``, numpy or
torch. They are never modified.
"""

from __future__ import annotations

import math

import numpy as np

from .._core import as_real_array

__all__ = [
    "autocorrelation",
    "integrated_autocorrelation_time",
    "effective_sample_size",
    "gelman_rubin",
    "RHAT_WARNING",
]

#: R̂ above this value across chains makes :meth:`IsingModel.sample` warn. Gelman et al.
#: suggest 1.1 as "close enough to 1"; the course warns only when R̂ is *far* above it.
RHAT_WARNING = 1.2


def _trace(x, name: str = "x", min_steps: int = 2) -> np.ndarray:
    """A float64 (n_steps, n_chains) copy of ``x``; refuses what
    :func:`course_lib._core.as_real_array` refuses (None, complex, dates, NaN, meta tensors)
    and wrong ranks.

    Every statistic of this module is unchanged when the trace is multiplied by a constant, so
    a trace of huge or tiny values (beyond 2**±100) is brought near 1 by a power of two (an
    exact operation): squares then neither overflow nor underflow.
    """
    arr = as_real_array(x, name, min_size=0)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"{name} must have shape (n_steps,) or (n_steps, n_chains), got {arr.shape}")
    if arr.shape[0] < min_steps or arr.shape[1] < 1:
        raise ValueError(f"{name} needs at least {min_steps} steps and 1 chain, got shape {arr.shape}")
    largest = float(np.abs(arr).max())
    if largest > 2.0**100 or 0 < largest < 2.0**-100:
        arr = np.ldexp(arr, -np.frexp(largest)[1])
    return arr


def autocorrelation(x) -> np.ndarray:
    """Normalised autocorrelation ``ρ(t)``, ``t = 0 … n_steps - 1``, averaged over chains.

    Each chain's autocovariance ``C(t) = (1/n) Σ_s (x_s - x̄)(x_{s+t} - x̄)`` is computed by
    FFT (zero-padded, so it is not circular), the chains' ``C(t)`` are averaged and divided
    by ``C(0)``. A trace without any variation has ``ρ = (1, 0, 0, …)``.
    """
    a = _trace(x)
    n = a.shape[0]
    centred = a - a.mean(0)
    size = 1 << (2 * n - 1).bit_length()
    f = np.fft.rfft(centred, n=size, axis=0)
    acov = np.fft.irfft(f * np.conj(f), n=size, axis=0)[:n].mean(1) / n
    if acov[0] <= 0:
        rho = np.zeros(n)
        rho[0] = 1.0
        return rho
    return acov / acov[0]


def integrated_autocorrelation_time(x, c: float = 5.0) -> float:
    """Integrated autocorrelation time with Sokal's automatic window (Sokal 1997).

    Implements eq. (4.11) [mrf-tau-int]: ``τ_int = 1 + 2 Σ_{t=1}^{M} ρ(t)`` with the window ``M``
    the smallest lag such that ``M ≥ c · τ_int(M)`` (``c = 5`` in this convention, the emcee
    package's default, is ``c = 10`` in Sokal's ``τ = 1/2 + Σ ρ``; it balances the bias of cutting
    the sum early against the noise of summing far tails).
    ``ρ`` is :func:`autocorrelation`, averaged over chains. With this convention
    independent draws give ``τ_int = 1`` and the variance of a mean of ``n`` correlated
    draws is ``τ_int`` times that of ``n`` independent ones.

    The estimate is reliable only when the trace is much longer than ``τ_int`` (rule of
    thumb: more than ``50 τ_int`` steps); if the window never closes, the value at the end
    of the trace is returned, which is then a lower bound.
    """
    c = float(c)
    if not math.isfinite(c) or c <= 0:
        raise ValueError(f"c must be a positive number, got {c!r}")
    rho = autocorrelation(x)
    taus = 1.0 + 2.0 * np.cumsum(rho[1:])
    lags = np.arange(1, len(rho))
    ok = lags >= c * taus  # at least one lag: _trace refuses traces of fewer than 2 steps
    M = int(np.argmax(ok)) if ok.any() else len(taus) - 1
    return float(max(taus[M], 1e-12))  # ρ(1) < 0 can give τ < 1 (anti-correlated draws)


def effective_sample_size(x, c: float = 5.0) -> float:
    """``n_steps · n_chains / τ_int``: how many independent draws the trace is worth."""
    a = _trace(x)
    return float(a.size / integrated_autocorrelation_time(a, c))


def gelman_rubin(x) -> float:
    """Potential scale reduction factor ``R̂`` across chains (Gelman & Rubin 1992).

    Implements eq. (4.12) [mrf-rhat]. ``x``: ``(n_steps, n_chains)`` with ``n_chains ≥ 2``. With
    ``W`` the mean within-chain variance and ``B/n`` the variance of the chain means::

        R̂ = sqrt( ((n - 1)/n · W + B/n) / W )

    ``R̂ ≈ 1`` when every chain explores the same distribution; chains stuck in different
    states (e.g. a hot and a cold start below ``T_c`` under local updates) give ``R̂ ≫ 1``.
    Chains that are each constant but differ give ``inf``; identical constant chains give 1.
    """
    a = _trace(x)
    n, m = a.shape
    if m < 2:
        raise ValueError(f"x: R-hat compares chains, at least 2 are needed, got {m}")
    W = float(a.var(0, ddof=1).mean())
    B_over_n = float(a.mean(0).var(ddof=1))
    if W <= 0:
        return 1.0 if B_over_n <= 0 else math.inf
    return float(math.sqrt(((n - 1) / n * W + B_over_n) / W))
