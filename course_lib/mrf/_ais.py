"""Annealed importance sampling (Neal 2001): the one loop behind every AIS estimate of log Z.

Both models of the chapter that estimate a partition function anneal along a *geometric
path* between a start distribution ``f_0`` whose ``Z_0`` is known exactly and the target
``f_1``: ``log f_b(x) = log f_0(x) + b · g(x)`` with ``g = log f_1 - log f_0``.

- :meth:`IsingModel.estimate_log_partition`: ``b`` is the inverse temperature itself,
  ``f_0 = 1`` (fair coins, ``Z_0 = 2**n``) and ``g(x) = -E(x)``;
- :meth:`PairwiseMRF.estimate_log_partition`: ``f_0`` is the field-only model
  ``exp(bᵀs)`` (independent pixels, ``log Z_0 = Σ_i log 2cosh b_i``) and ``g(s) = ½ sᵀ W s``.

The estimator (eq. (4.3) [mrf-ais]) is the same for both, so it lives here once.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from .._core import as_real_array

__all__ = ["ais_standard_error"]


def _anneal(x: torch.Tensor, schedule, gap: Callable[[torch.Tensor], torch.Tensor],
            transition: Callable[[torch.Tensor, float], torch.Tensor]) -> torch.Tensor:
    """Log importance weights of AIS, one per chain (eq. (4.3) [mrf-ais]).

    ``x``: the chains, drawn exactly from ``f_0`` (first dimension = chains). ``schedule``:
    ``0 = b_0 < b_1 < … < b_K`` (the end of the path). At each step the chains first add
    ``(b_k - b_{k-1}) · g(x_{k-1})`` to their log weight, then move by ``transition(x,
    b_k)``, a Markov kernel that leaves ``f_{b_k}`` invariant. ``E[w] = Z_{b_K} / Z_0``
    exactly, for any number of steps.
    """
    log_w = torch.zeros(x.shape[0], dtype=torch.float64, device=x.device)
    schedule = [float(b) for b in schedule]
    for b_prev, b_next in zip(schedule[:-1], schedule[1:]):
        log_w += (b_next - b_prev) * gap(x).double()
        x = transition(x, b_next)
    return log_w


def _log_mean_exp(log_w: torch.Tensor) -> float:
    """``log((1/C) Σ_c w_c)`` computed stably from the log weights."""
    return float(torch.logsumexp(log_w, 0)) - math.log(log_w.shape[0])


def ais_standard_error(log_w) -> float:
    """Monte Carlo standard error of the AIS estimate ``log mean(w)``, from its log weights.

    By the delta method, ``se(log mean w) ≈ std(w) / (mean(w) · √C)`` over ``C``
    independent chains. Computed on ``w / max(w)``, so that no weight overflows. Small
    when the weights are even; when a few chains carry all the weight the estimate is
    unreliable and so is this error (more steps help: the weights become more even).
    """
    lw = as_real_array(log_w, "log_w", finite=False, min_size=0).ravel()
    if lw.size < 2:
        raise ValueError(f"log_w: the standard error needs at least 2 chains, got {lw.size}")
    if not np.all(np.isfinite(lw)):
        raise ValueError("log_w contains NaN or infinite values")
    w = np.exp(lw - lw.max())
    return float(w.std(ddof=1) / w.mean() / math.sqrt(lw.size))
