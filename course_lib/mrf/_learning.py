"""Learning the Ising model's ``beta`` (and ``h``) from samples: the two learners that
:meth:`IsingModel.fit` calls.

- :func:`fit_pseudolikelihood` (Besag 1975): eq. (4.15) [mrf-pseudolikelihood] is a logistic
  regression of every spin on its neighbours, concave in ``θ = (beta, beta·h)``: Newton's
  method finds its maximum, no partition function needed.
- :func:`fit_sml`: stochastic maximum likelihood / persistent contrastive divergence (Younes
  1989; Tieleman 2008): gradient ascent with eq. (4.14) [mrf-likelihood-gradient],
  ``E_data[φ] - E_model[φ]``, the model expectation read off persistent Markov chains.

Both see only tensors and numbers (the model's ``J``, ``h`` and boundary), and return
``(beta, h, history)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.optimize import linprog

from .._core import progress
from ._chains import make_chains, sufficient_statistics
from ._lattice import _neighbour_sum

#: ``beta·|J|`` above which a fit is declared divergent: at ``beta J = 20`` flipping one
#: aligned spin costs a factor ``e^-160``; no data set short of a frozen one asks for more.
BETA_LIMIT = 20.0


# ----------------------------------------------------------------------- pseudo-likelihood


def fit_pseudolikelihood(x: torch.Tensor, J: float, h0: float, periodic: bool, fit_h: bool,
                         n_iter: int):
    """Maximise the pseudo-likelihood of the float64 spins ``x`` ``(N, H, W)`` by damped
    Newton steps from ``beta = 0.1, beta·h = 0`` (at most ``n_iter``, stopping when a step is
    below 1e-10). ``h`` stays at ``h0`` unless ``fit_h``.

    Raises ``ValueError`` when the data admit no finite maximiser (:func:`_check_pl_bounded`),
    when the iterates run off to ``beta = ∞``, or when the maximum has ``beta <= 0``."""
    A = _pl_design_matrix(x, J, h0, periodic, fit_h)
    _check_pl_bounded(A, fit_h)
    theta = torch.tensor([0.1, 0.0][: A.shape[1]], dtype=torch.float64)
    history = {"beta": [], "h": [], "pseudo_log_likelihood": []}
    value = _mean_log_sigmoid(A, theta)
    _record(history, theta, fit_h, h0, pseudo_log_likelihood=value)
    for _ in range(n_iter):
        step, value = _damped_newton_step(A, theta, value)
        theta = theta + step
        if not torch.isfinite(theta).all() or abs(float(theta[0])) * abs(J) > BETA_LIMIT:
            raise ValueError(
                "pseudo-likelihood diverged (beta -> infinity): the samples look perfectly "
                "ordered, for which the maximum is at beta = infinity. Fit data that show "
                "some disagreeing neighbours."
            )
        _record(history, theta, fit_h, h0, pseudo_log_likelihood=value)
        if float(step.abs().max()) < 1e-10:
            break
    if float(theta[0]) <= 0:
        raise ValueError(
            f"pseudo-likelihood gave beta = {float(theta[0]):.4g} <= 0: the samples are "
            "anti-correlated, which a ferromagnetic model with J > 0 cannot describe "
            "(use J < 0 for an antiferromagnet)"
        )
    return history["beta"][-1], history["h"][-1], history


def _pl_design_matrix(x, J, h0, periodic, fit_h) -> torch.Tensor:
    """The rows ``a`` with ``log p(x_i | x_rest) = log σ(a · θ)``, one per site and sample.

    ``log σ(z)`` with ``z = 2 x_i beta (J s_i + h)`` (``s_i`` the neighbour sum) is linear
    in the natural parameters: features ``(2 x_i J s_i, 2 x_i)`` for ``θ = (beta, beta·h)``,
    or, with ``h`` fixed at ``h0``, the one feature ``2 x_i (J s_i + h0)`` for ``θ = beta``."""
    js = J * _neighbour_sum(x, periodic)
    if fit_h:
        return torch.stack([(2 * x * js).flatten(), (2 * x).flatten()], 1)
    return (2 * x * (js + h0)).flatten()[:, None]


def _mean_log_sigmoid(A: torch.Tensor, theta: torch.Tensor) -> float:
    """The mean pseudo-log-likelihood ``mean log σ(A θ)`` (eq. (4.15) [mrf-pseudolikelihood])."""
    return float(torch.nn.functional.logsigmoid(A @ theta).mean())


def _damped_newton_step(A, theta, value):
    """A Newton step on ``mean log σ(A θ)``, halved (up to 40 times) until the concave
    objective does not decrease; returns ``(step, value after it)``."""
    sig = torch.sigmoid(A @ theta)
    grad = A.T @ (1 - sig) / len(sig)
    hess = -(A * (sig * (1 - sig))[:, None]).T @ A / len(sig)
    eye = torch.eye(len(theta), dtype=hess.dtype)
    step = -torch.linalg.solve(hess - 1e-12 * eye, grad)  # Newton direction (ascent)
    for _ in range(40):
        new_value = _mean_log_sigmoid(A, theta + step)
        if new_value >= value:
            break
        step = step / 2
    return step, new_value


def _record(history: dict, theta, fit_h: bool, h0: float, **values) -> None:
    """Append the iterate ``(beta, h)`` of the natural parameters ``θ = (beta, beta·h)``, and
    the named ``values``, to ``history``."""
    history["beta"].append(float(theta[0]))
    history["h"].append(float(theta[1] / theta[0]) if fit_h else h0)
    for name, value in values.items():
        history[name].append(value)


def _check_pl_bounded(A: torch.Tensor, fit_h: bool) -> None:
    """Refuse data for which the pseudo-likelihood has no finite maximiser.

    ``log PL(θ) = mean log σ(A θ)`` is unbounded above iff some direction ``d ≠ 0`` has
    ``A d ≥ 0`` on every row with ``A d > 0`` somewhere (the data are "separable": e.g.
    every spin agrees with all its neighbours). The rows take few distinct values, so a
    small linear programme over the unique rows decides it.
    """
    rows = np.unique(np.round(A.cpu().numpy(), 9), axis=0)
    if not fit_h:
        col = rows[:, 0]
        separable = (col >= 0).all() and (col > 0).any()
    else:
        # maximise Σ_rows (A d) subject to A d ≥ 0, -1 ≤ d ≤ 1
        res = linprog(-rows.sum(0), A_ub=-rows, b_ub=np.zeros(len(rows)), bounds=[(-1, 1)] * 2,
                      method="highs")
        separable = res.status == 0 and -res.fun > 1e-9
    if separable:
        raise ValueError(
            "samples: the pseudo-likelihood has no finite maximiser for these data (every "
            "spin agrees with the sign of its local field, e.g. all spins equal), so the "
            "estimate would run off to beta = infinity. Fit samples that contain some "
            "disagreeing neighbours."
        )


# ----------------------------------------------------------------------- stochastic ML


def fit_sml(x, J, beta0, h0, periodic, fit_h, n_iter, lr, n_chains, sampler, average,
            generator, device, show_progress):
    """Stochastic maximum likelihood from ``(beta0, h0)``: ``n_iter`` gradient steps of size
    ``lr / sqrt(1 + t/50)`` on ``θ = (beta, beta·h)``, each after one ``sampler`` sweep of
    ``n_chains`` persistent chains. With ``average`` the estimate is the Polyak–Ruppert
    average of the second half of the iterates, else the last one.

    Raises ``RuntimeError`` naming ``lr`` when the iterates diverge."""
    x = x.to(device)
    H, W = x.shape[-2:]
    phi_data = sufficient_statistics(x, J, periodic, device)
    theta = torch.tensor([beta0, beta0 * h0], dtype=torch.float64)  # natural parameters
    start = 2 * torch.randint(0, 2, (n_chains, H, W), generator=generator, device=device,
                              dtype=torch.int8) - 1
    chains = make_chains(sampler, start, J, periodic, generator, device)
    history = {"beta": [], "beta_average": [], "h": [], "phi_data": [], "phi_model": []}
    half = n_iter // 2
    for t in progress(range(n_iter), show_progress, desc="SML"):
        beta = float(theta[0])
        chains.sweep(beta, float(theta[1]) / beta if fit_h else h0)
        phi_model = chains.features()
        _sml_step(theta, phi_data - phi_model, lr / math.sqrt(1.0 + t / 50.0), fit_h, h0)
        _check_sml_finite(theta, J, lr, t)
        theta[0] = max(float(theta[0]), 1e-3)  # beta must stay positive
        _record(history, theta, fit_h, h0, phi_data=phi_data.cpu().numpy(),
                phi_model=phi_model.cpu().numpy())
        # the running Polyak average, from step `half` on (NaN before)
        history["beta_average"].append(
            float(np.mean(history["beta"][half:])) if t >= half else float("nan"))
    if average:  # Polyak–Ruppert averaging of the second half of the iterates
        beta_ = float(np.mean(history["beta"][half:]))
        return beta_, float(np.mean(history["h"][half:])) if fit_h else h0, history
    return history["beta"][-1], history["h"][-1], history


def _sml_step(theta: torch.Tensor, grad: torch.Tensor, step: float, fit_h: bool,
              h0: float) -> None:
    """One ascent step in place: eq. (4.14) [mrf-likelihood-gradient],
    ``d/dθ (1/n_sites) log p = E_data[φ] - E_model[φ]`` with ``φ = (J Σ x_i x_j, Σ x_i)``.
    With ``h`` held at ``h0`` the model has the one parameter ``beta`` and the one feature
    ``J Σ x_i x_j + h0 Σ x_i``, whose gradient is ``grad[0] + h0 · grad[1]``."""
    grad = grad.double().cpu()
    if fit_h:
        theta[0] += step * grad[0]
        theta[1] += step * grad[1]
    else:
        theta[0] += step * (grad[0] + h0 * grad[1])
        theta[1] = theta[0] * h0  # the natural parameter beta·h follows beta


def _check_sml_finite(theta: torch.Tensor, J: float, lr: float, t: int) -> None:
    if not torch.isfinite(theta).all() or float(theta[0]) * abs(J) > BETA_LIMIT \
            or abs(float(theta[1])) > BETA_LIMIT:
        raise RuntimeError(
            f"SML diverged at step {t}: beta = {float(theta[0]):.4g} (beta·|J| beyond "
            f"{BETA_LIMIT}, where every chain is frozen). The step size lr = {lr:g} is "
            "far too large for these data: lower lr (e.g. by a factor of 10)."
        )
