"""Gaussian mixture models fitted by expectation-maximisation (EM).

The chapter "Gaussian mixtures" (book/03_gmm.md) derives every formula used here. Each one
lives in exactly one module-level function, whose docstring cites the equation by the number
the book shows and by its label in the sources, e.g. eq. (3.3) [gmm-estep]:

=====================================  ==========================================
function                               book equation
=====================================  ==========================================
:func:`estimate_log_gaussian_prob`     (3.2) ``gmm-log-gauss``  log N(x_n | mu_k, Sigma_k)
:func:`e_step`                         (3.3) ``gmm-estep``      responsibilities (log-sum-exp)
:func:`m_step`                         (3.4) ``gmm-mstep``      weights, means, covariances
:func:`compute_precision_cholesky`     (how a covariance is stored: its inverse's Cholesky factor)
:func:`n_parameters`                   (3.5) ``gmm-bic``        free parameters counted by BIC/AIC
=====================================  ==========================================

These functions take and return torch tensors, work on any device, and are batched over
components: there is no Python loop over components or over samples (the only loops walk over
*blocks* of samples, so that memory stays bounded for large data sets).

:class:`GaussianMixture` strings them together with scikit-learn's interface and semantics:
given the same initial parameters, ``tol`` and ``max_iter`` it reaches the same ``lower_bound_``
(within 1e-6 relative, in float64) after the same number of iterations as
``sklearn.mixture.GaussianMixture`` (tested in ``tests/test_gmm.py``).

Where to read EM: :meth:`GaussianMixture.fit_predict` (starts, best run kept) calls ``_em``
(the loop), which alternates ``_expectation`` (eq. (3.3)) and ``_maximization`` (eq. (3.4),
then the repairs of "Numerical trouble"). The input checks come last in this file, in their
own section.

How covariances are stored (as scikit-learn does)
-------------------------------------------------
``covariance_type`` fixes the shape of the covariance parameters (K components, D features):

- ``"full"``: one D×D matrix per component, shape (K, D, D);
- ``"tied"``: one D×D matrix shared by all components, shape (D, D);
- ``"diag"``: one diagonal per component, shape (K, D);
- ``"spherical"``: one variance per component (Sigma_k = s_k I), shape (K,).

The log-density needs the *inverse* covariance (the precision). We keep an upper-triangular
``P`` with ``P @ P.T = Sigma^{-1}`` (for diag/spherical: ``1/sqrt(variance)``), called
``precisions_cholesky``: then ``(x - mu)^T Sigma^{-1} (x - mu) = ||(x - mu) @ P||^2`` and
``log det Sigma^{-1} = 2 sum(log diag P)``.

How EM starts (``init_params``)
-------------------------------
How the initial responsibilities are chosen, exactly as scikit-learn does (and with the same
random draws, so that the same ``random_state`` gives the same start): ``kmeans`` runs
``sklearn.cluster.KMeans(n_init=1)`` **on the CPU, in float64** (so that the start does not
depend on ``dtype``) and uses its hard labels; ``k-means++`` picks K seeds with
``sklearn.cluster.kmeans_plusplus``; ``random_from_data`` picks K distinct data points;
``random`` draws uniform responsibilities and normalises them. One M-step on these
responsibilities gives the initial parameters. For ``kmeans`` and ``random`` every component
gets many points, so its initial covariance is estimated from data. For ``k-means++`` and
``random_from_data`` each component's initial responsibilities are one data point: its mean
is that point, its weight 1/K, and its covariance **exactly** ``reg_covar * I`` (a point has
no spread): K narrow spheres of equal size. The first E-step then gives every point (almost)
entirely to its nearest seed in Euclidean distance, so after the first iteration each
component is fitted to the Voronoi cell of its seed. With ``reg_covar=0`` these initial
covariances are singular and are repaired as described under "Numerical trouble" (with a
warning). (Difference: for ``k-means++`` and ``random_from_data`` scikit-learn leaves the
initial weights unnormalised, summing to K/N, which shifts its first recorded lower bound by
log(K/N); here they are normalised. The EM trajectory is otherwise identical.)

Precision and threads (``dtype``)
---------------------------------
Precision of the computation. float64 reproduces scikit-learn (the tests assert the lower
bound within 1e-6 relative; the benchmark measures 1e-13 or less). float32 is about twice as fast on a CPU; on the benchmark's data its lower bound
is within 3e-6 relative of float64's (about 1e-4 when components hold fewer points than
there are features, whose covariances are then nearly singular); see
``benchmarks/gmm_vs_sklearn.py``. In float32 a nearly singular covariance (reg_covar small
compared with the data's variances) may need the repair described under "Numerical trouble".
**Threads:** the sums over samples are split among CPU threads (``torch.set_num_threads``),
and the order of floating-point additions changes with their number. For a fixed thread
count a seed gives bit-identical results; across thread counts the results differ by
rounding only: in float64 the lower bound agrees to about 1e-12 relative, in float32 to
about 1e-6 relative (parameters to about 1e-4 relative). ``tests/test_gmm.py`` checks these
bounds with 1 and 2 threads.

Numerical trouble (what happens, instead of NaN)
------------------------------------------------
- **Empty component** (its responsibilities add up to less than
  ``EMPTY_COMPONENT_EPS`` = 10 machine epsilons of a data point, i.e. 2e-15 in float64
  and 1e-6 in float32: in practice exactly zero, e.g. after k-means on data with fewer
  distinct points than K, or for a component that drifted away from all the data).
  scikit-learn keeps such a dead component (its mean collapses towards a meaningless
  point). Here it is **re-seeded**: its mean moves to the worst-explained data point
  (lowest log p(x) under the current model; several empty components take the several
  worst points), its covariance becomes the average covariance of the other components,
  and its weight becomes 1/N (the weights are renormalised). A
  :class:`NumericalTroubleWarning` says so. The lower bound may drop at that iteration.
- **Duplicate points, features with zero variance, K close to N** (a component sitting on
  one point): the sample covariance is singular; ``reg_covar`` (default 1e-6) on the
  diagonal keeps it positive definite, exactly as in scikit-learn. The likelihood can
  then be very large (a narrow spike on a point) but stays finite.
- **A covariance that is still not positive definite** (``reg_covar=0`` with any of the
  cases above, or float32 round-off): scikit-learn raises ``ValueError``. Here the
  smallest of ``1e-10, 1e-9, ..., 1e-1`` times the data's mean variance that makes it
  positive definite is added to its diagonal (to the variances for diag/spherical),
  the regularised covariance is kept in ``covariances_``, and a
  :class:`NumericalTroubleWarning` says so. Only if even that fails is a ``ValueError``
  raised.
- **max_iter reached** without convergence: ``ConvergenceWarning``, as in scikit-learn.
- A lower bound that is not finite (should not happen after the repairs above) raises
  ``FloatingPointError`` instead of returning NaN.

Bad input (NaN/inf, wrong rank, n_components > n_samples, unknown options, negative
``tol``/``reg_covar``, wrong initial shapes, wrong feature count) raises ``ValueError``
or ``TypeError`` naming the argument; complex data raise ``ValueError`` ("Complex data
not supported"), sparse matrices ``TypeError`` (sparse input is not supported: densify
it); using an unfitted model raises ``sklearn.exceptions.NotFittedError``. Values so
large that squared distances would overflow the working precision (about 1e150 in
float64, 1e17 in float32, depending on N and D) raise ``ValueError`` asking to rescale
the data, instead of returning NaN. A :meth:`fit` that raises (bad input, or numerical
failure) leaves the estimator exactly as it was before the call.

Data far from the origin
------------------------
The result does not depend on where the data sit. When, in some feature, the data lie
further from the origin than ``OFFSET_RATIO`` (8) times their half-range, EM runs on the
data minus their midrange (subtracted in float64, before the cast to ``dtype``), and
:meth:`score` and the other methods take the same offset off their input: without it,
an offset of 1e8 in float64 or 1e4 in float32 costs up to nats per sample in the fit and
in ``score`` (scikit-learn refuses such data at 1e8). ``means_`` are reported in the
original coordinates. Data that cannot be repaired are refused with a ``ValueError``: a
feature whose spread is below ``MIN_LEVELS`` (100) steps of the data's own precision at
their offset (unit spread at 1e15 in float64, at 1e6 in float32: the spread was rounded
away before the data reached the model), and, as above, a spread so large that squared
distances overflow. Data near the origin are used as given, exactly as scikit-learn does.
"""

from __future__ import annotations

import math
import warnings
from typing import NamedTuple

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.cluster import KMeans, kmeans_plusplus
from sklearn.exceptions import ConvergenceWarning
from sklearn.utils.validation import check_is_fitted, check_random_state

from ._core import (
    Flag,
    Float,
    Int,
    OneOf,
    Seed,
    as_tensor,
    check_choice,
    check_input,
    check_int,
    check_params,
    check_real,
    check_seed,
    make_generator,
    progress,
    resolve_device,
)

__all__ = [
    "GaussianMixture",
    "NumericalTroubleWarning",
    "COVARIANCE_TYPES",
    "INIT_PARAMS",
    "estimate_log_gaussian_prob",
    "e_step",
    "m_step",
    "compute_precision_cholesky",
    "n_parameters",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
INIT_PARAMS = ("kmeans", "k-means++", "random", "random_from_data")

#: A component whose responsibilities add up to less than this many machine epsilons of the
#: working precision (2.2e-15 of a data point in float64, 1.2e-6 in float32) "has lost all its
#: points": the ``10 * eps`` guard of the M-step then dominates N_k and pulls its mean towards
#: the origin, so the component is dead. :class:`GaussianMixture` re-seeds such a component
#: (see its docstring). Components with a little more mass (even 1e-7 of a point) are left
#: alone: they can and do come back to life.
EMPTY_COMPONENT_EPS = 10.0

#: Temporaries of shape (block of samples, K, D) hold at most this many numbers; larger data
#: are processed block by block. On a CPU a block that stays in the cache (4 MiB in float64)
#: is about twice as fast as one big product; a GPU prefers few, large blocks.
_BLOCK_ELEMENTS = {"cpu": 2**19, "cuda": 2**25}


#: Data whose midrange, in some feature, lies further from the origin than this many times
#: their half-range in that feature are centred before EM (see :func:`_choose_offset`).
OFFSET_RATIO = 8.0
#: A feature whose values span fewer steps of their own precision than this (e.g. unit
#: spread at 1e15 in float64, at 1e6 in float32) has lost its spread to rounding: refused.
MIN_LEVELS = 100.0


class NumericalTroubleWarning(RuntimeWarning):
    """EM met a degenerate situation (an empty component, a singular covariance) and repaired
    it as documented in :class:`GaussianMixture`; the fit goes on and never returns NaN."""


# --------------------------------------------------------------------------- small helpers


def _blocks(n_rows: int, row_width: int, device: torch.device):
    """Yield slices of rows covering ``range(n_rows)``, each block holding at most
    ``_BLOCK_ELEMENTS`` numbers when a row holds ``row_width`` of them."""
    budget = _BLOCK_ELEMENTS.get(device.type, _BLOCK_ELEMENTS["cuda"])
    step = max(1, budget // max(1, row_width))
    for start in range(0, n_rows, step):
        yield slice(start, min(start + step, n_rows))


def _empty_mass(dtype: torch.dtype) -> float:
    return EMPTY_COMPONENT_EPS * torch.finfo(dtype).eps


def _log_det_cholesky(precisions_cholesky, covariance_type, n_features):
    """log det(P) per component, i.e. half of log det(Sigma_k^{-1}); shape (K,) or scalar (tied)."""
    if covariance_type == "full":
        return torch.log(torch.diagonal(precisions_cholesky, dim1=-2, dim2=-1)).sum(-1)
    if covariance_type == "tied":
        return torch.log(torch.diagonal(precisions_cholesky)).sum()
    if covariance_type == "diag":
        return torch.log(precisions_cholesky).sum(-1)
    return n_features * torch.log(precisions_cholesky)  # spherical


# --------------------------------------------------------------------------- the book's equations


def estimate_log_gaussian_prob(X, means, precisions_cholesky, covariance_type):
    """Log-density of every sample under every component, log N(x_n | mu_k, Sigma_k).

    Implements eq. (3.2) [gmm-log-gauss]::

        log N(x | mu, Sigma) = -1/2 [ D log(2 pi) + (x - mu)^T Sigma^{-1} (x - mu) ]
                               + 1/2 log det Sigma^{-1}

    with ``Sigma^{-1} = P P^T`` (``P = precisions_cholesky``), so the quadratic form is the
    squared length of ``(x - mu) P`` and ``1/2 log det Sigma^{-1} = sum(log diag P)``.

    Parameters
    ----------
    X : tensor (N, D)
    means : tensor (K, D)
    precisions_cholesky : tensor, shape set by ``covariance_type`` (see the module docstring)
    covariance_type : {"full", "tied", "diag", "spherical"}

    Returns
    -------
    tensor (N, K)

    Raises ``ValueError``/``TypeError`` for NaN/inf, complex or mis-shaped inputs, or a factor
    with a non-positive diagonal.
    """
    X, means, P = _check_components(X, means, precisions_cholesky, covariance_type)
    return _estimate_log_gaussian_prob(X, means, P, covariance_type)


def _estimate_log_gaussian_prob(X, means, P, covariance_type):
    """:func:`estimate_log_gaussian_prob` without input checks (EM calls it every iteration);
    ``P`` is ``precisions_cholesky``."""
    N, D = X.shape
    K = means.shape[0]

    if covariance_type == "full":
        # y_nk = x_n P_k - mu_k P_k for all k at once: X times the (D, K*D) matrix [P_1 ... P_K].
        P_all = P.permute(1, 0, 2).reshape(D, K * D)
        shift = torch.einsum("kd,kde->ke", means, P).reshape(1, K * D)
        mahalanobis = X.new_empty(N, K)
        for rows in _blocks(N, K * D, X.device):  # blocks of samples: small temporaries
            y = torch.addmm(shift, X[rows], P_all, beta=-1)  # = X P_all - shift, (n, K*D)
            mahalanobis[rows] = torch.linalg.vector_norm(y.view(-1, K, D), dim=-1).square_()
    elif covariance_type == "tied":
        # One shared P: whiten once, then ||a - b||^2 = ||a||^2 - 2 a.b + ||b||^2 for all pairs.
        XP = X @ P
        muP = means @ P
        mahalanobis = torch.addmm(muP.square().sum(1), XP, muP.T, alpha=-2.0)  # (N, K)
        mahalanobis += torch.linalg.vector_norm(XP, dim=1).square_()[:, None]
    elif covariance_type == "diag":
        # sum_d (x_d - mu_kd)^2 / sigma_kd^2 = sum_d x_d^2 lambda_kd - 2 x_d mu_kd lambda_kd
        # + mu_kd^2 lambda_kd with lambda = 1 / sigma^2: two matrix products for all (n, k)
        precisions = P.square()  # (K, D)
        constant = (means.square() * precisions).sum(1)  # (K,)
        mahalanobis = X.new_empty(N, K)
        for rows in _blocks(N, D, X.device):  # blocks small enough to stay in the cache
            x = X[rows]
            block = torch.addmm(constant, x, (means * precisions).T, alpha=-2.0)
            mahalanobis[rows] = block.addmm_(x.square(), precisions.T)
    else:  # spherical
        # ||x - mu_k||^2 / s_k = (||x||^2 - 2 x.mu_k + ||mu_k||^2) / s_k
        precisions = P.square()  # (K,): 1 / s_k
        mahalanobis = torch.addmm(means.square().sum(1), X, means.T, alpha=-2.0)  # (N, K)
        mahalanobis += torch.linalg.vector_norm(X, dim=1).square_()[:, None]
        mahalanobis *= precisions

    # log N = -1/2 mahalanobis + (log det P - D/2 log 2 pi), computed in place
    constant = _log_det_cholesky(P, covariance_type, D) - 0.5 * D * math.log(2.0 * math.pi)
    return mahalanobis.mul_(-0.5).add_(constant)


def e_step(X, weights, means, precisions_cholesky, covariance_type):
    """E-step: log-responsibilities and per-sample log-likelihood, computed in log space.

    Implements eq. (3.3) [gmm-estep]::

        log r_nk = log pi_k + log N(x_n | mu_k, Sigma_k) - log p(x_n)
        log p(x_n) = logsumexp_k [ log pi_k + log N(x_n | mu_k, Sigma_k) ]

    The log-sum-exp subtracts the largest term before exponentiating, so nothing underflows
    even when every density is far below the smallest float.

    Returns
    -------
    log_resp : tensor (N, K)
        ``log r_nk``; ``exp(log_resp)`` sums to one along each row.
    log_prob : tensor (N,)
        ``log p(x_n)``; its mean is the lower bound EM tracks (the mean log-likelihood).

    Raises ``ValueError``/``TypeError`` for NaN/inf, complex or mis-shaped inputs, and for
    weights that are negative or do not sum to one.
    """
    X, means, P = _check_components(X, means, precisions_cholesky, covariance_type)
    weights = _check_weights(weights, means.shape[0], X)
    return _e_step(X, weights, means, P, covariance_type)


def _e_step(X, weights, means, precisions_cholesky, covariance_type):
    """:func:`e_step` without input checks (EM calls it every iteration)."""
    weighted = _estimate_log_gaussian_prob(X, means, precisions_cholesky, covariance_type)
    weighted += torch.log(weights)  # log pi_k + log N(x_n | mu_k, Sigma_k), (N, K)
    log_prob = torch.logsumexp(weighted, dim=1)
    log_resp = weighted.sub_(log_prob[:, None])  # in place: the (N, K) array is reused
    return log_resp, log_prob


def m_step(X, resp, covariance_type, reg_covar):
    """M-step: the weights, means and covariances that maximise the expected log-likelihood.

    Implements eq. (3.4) [gmm-mstep], with N_k = sum_n r_nk::

        pi_k    = N_k / N
        mu_k    = (1 / N_k) sum_n r_nk x_n
        Sigma_k = (1 / N_k) sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T + reg_covar * I

    With ``reg_covar = 0`` this is the exact maximiser of the EM lower bound, which is why EM
    never lowers the log-likelihood. With ``reg_covar > 0`` it is not: adding ``reg_covar * I``
    puts a floor under every variance (every eigenvalue of Sigma_k is at least ``reg_covar``),
    and the log-likelihood may then drop slightly between iterations (see the book, "What EM
    guarantees, and what reg_covar changes").

    The other covariance types constrain Sigma_k: ``tied`` shares one matrix (the responsibility-weighted
    average over components), ``diag`` keeps only the diagonal, ``spherical`` the mean of the
    diagonal. As in scikit-learn, ``10 * eps`` is added to N_k so that an empty component
    divides by a tiny number instead of zero, and ``reg_covar`` is added to every variance.

    Parameters
    ----------
    X : tensor (N, D)
    resp : tensor (N, K), rows summing to one
    covariance_type : {"full", "tied", "diag", "spherical"}
    reg_covar : float >= 0

    Returns
    -------
    weights (K,), means (K, D), covariances (shape set by ``covariance_type``)

    Raises ``ValueError``/``TypeError`` for NaN/inf, complex or mis-shaped inputs, negative
    responsibilities or rows not summing to one, and a negative or non-finite ``reg_covar``.
    """
    check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
    X = _check_tensor(X, "X", ndim=2)
    resp = _check_resp(resp, X)
    reg_covar = check_real(reg_covar, "reg_covar", minimum=0.0)  # finite, >= 0
    return _m_step(X, resp, covariance_type, reg_covar)


def _m_step(X, resp, covariance_type, reg_covar):
    """:func:`m_step` without input checks (EM calls it every iteration)."""
    N, D = X.shape
    K = resp.shape[1]
    nk = resp.sum(0) + 10.0 * torch.finfo(resp.dtype).eps
    means = (resp.T @ X) / nk[:, None]

    if covariance_type == "full":
        # scatter matrices of all components at once, one batched product per block of samples:
        # diff[k, n] = x_n - mu_k, and S_k = sum_n (r_nk diff[k, n])^T diff[k, n]
        scatter = X.new_zeros(K, D, D)
        for rows in _blocks(N, K * D, X.device):
            diff = X[None, rows, :] - means[:, None, :]  # (K, n, D)
            scatter.baddbmm_((diff * resp[rows].T[:, :, None]).mT, diff)
        covariances = scatter / nk[:, None, None]
        covariances.diagonal(dim1=-2, dim2=-1).add_(reg_covar)
    else:
        # The other types use "mean of squares minus square of the mean", which subtracts two
        # large numbers when the data sit far from the origin (fatal in float32). Measuring
        # everything from the data mean c first changes nothing in exact arithmetic.
        c = X.mean(0)
        means_c = means - c
        if covariance_type == "tied":
            # sum_k sum_n r_nk (x_n - mu_k)(x_n - mu_k)^T = sum_n x_n x_n^T - sum_k N_k mu_k mu_k^T
            second = X.new_zeros(D, D)
            for rows in _blocks(N, D, X.device):
                xc = X[rows] - c
                second.addmm_(xc.T, xc)
            covariances = (second - (nk[:, None] * means_c).T @ means_c) / nk.sum()
            covariances.diagonal().add_(reg_covar)
        else:
            # diag: sigma_kd^2 = sum_n r_nk x_nd^2 / N_k - mu_kd^2; spherical: their mean over d
            second = X.new_zeros(K, D)  # sum_n r_nk (x_nd - c_d)^2
            for rows in _blocks(N, D, X.device):
                second.addmm_(resp[rows].T, (X[rows] - c).square_())
            variances = second / nk[:, None] - means_c.square() + reg_covar
            covariances = variances if covariance_type == "diag" else variances.mean(1)

    weights = nk / nk.sum()
    return weights, means, covariances


def _precision_cholesky_or_failures(covariances, covariance_type):
    """Like :func:`compute_precision_cholesky`, but returns ``(P, failed)`` instead of raising;
    ``failed`` is a boolean tensor (K,) (or (1,) for tied) marking non-positive-definite ones."""
    if covariance_type in ("full", "tied"):
        batch = covariances if covariance_type == "full" else covariances[None]
        L, info = torch.linalg.cholesky_ex(batch)  # Sigma = L L^T, L lower triangular
        failed = info > 0
        eye = torch.eye(batch.shape[-1], dtype=batch.dtype, device=batch.device)
        # P = L^{-T} (upper triangular) so that P P^T = L^{-T} L^{-1} = Sigma^{-1}
        P = torch.linalg.solve_triangular(L, eye.expand_as(batch), upper=False).mT
        return (P if covariance_type == "full" else P[0]), failed
    failed = (covariances <= 0).reshape(covariances.shape[0], -1).any(1)
    return torch.rsqrt(covariances.clamp_min(torch.finfo(covariances.dtype).tiny)), failed


def compute_precision_cholesky(covariances, covariance_type):
    """Cholesky factor ``P`` of the precision matrices: upper triangular, ``P P^T = Sigma^{-1}``.

    For ``full``/``tied``: factor ``Sigma = L L^T`` and take ``P = L^{-T}`` (one batched
    triangular solve for all components). For ``diag``/``spherical``: ``P = 1/sqrt(variance)``.

    Raises
    ------
    ValueError
        If a covariance is not positive definite (a collapsed component with
        ``reg_covar=0``). :class:`GaussianMixture` catches this case and regularises instead.
        Also for NaN/inf or mis-shaped covariances.
    """
    check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
    ndim = {"full": 3, "tied": 2, "diag": 2, "spherical": 1}[covariance_type]
    covariances = _check_tensor(covariances, "covariances", ndim=ndim)
    if covariance_type in ("full", "tied") and covariances.shape[-1] != covariances.shape[-2]:
        raise ValueError(f"covariances must be square matrices for covariance_type="
                         f"{covariance_type!r}, got shape {tuple(covariances.shape)}")
    P, failed = _precision_cholesky_or_failures(covariances, covariance_type)
    if bool(failed.any()):
        bad = torch.nonzero(failed).flatten().tolist()
        raise ValueError(
            f"covariances: component(s) {bad} are not positive definite (a component collapsed "
            "onto too few points or onto a zero-variance feature). Increase reg_covar, use "
            "fewer components, or rescale the data."
        )
    return P


def _precision_cholesky_from_precisions(precisions, covariance_type):
    """Upper-triangular P with P P^T = precisions (full/tied), or sqrt(precisions).

    ``torch.linalg.cholesky`` gives a *lower* factor; reversing rows and columns before and
    after turns it into the upper factor we need (J A J = L L^T  =>  A = (J L J)(J L J)^T).
    """
    if covariance_type in ("full", "tied"):
        flip = (-2, -1)
        return torch.linalg.cholesky(precisions.flip(flip)).flip(flip)
    return torch.sqrt(precisions)


def n_parameters(n_components, n_features, covariance_type):
    """Number of free parameters of a Gaussian mixture, the ``p`` of eq. (3.5) [gmm-bic].

    ``BIC = -2 log L + p log N`` and ``AIC = -2 log L + 2 p`` with
    ``p = (K - 1) [weights] + K D [means] + covariance parameters``, where the covariance
    parameters are ``K D (D + 1) / 2`` (full), ``D (D + 1) / 2`` (tied), ``K D`` (diag) and
    ``K`` (spherical).
    """
    K = check_int(n_components, "n_components", minimum=1)
    D = check_int(n_features, "n_features", minimum=1)
    check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
    covariance_params = {
        "full": K * D * (D + 1) // 2,
        "tied": D * (D + 1) // 2,
        "diag": K * D,
        "spherical": K,
    }[covariance_type]
    return (K - 1) + K * D + covariance_params


# --------------------------------------------------------------------------- sampling


def _sampling_generator(random_state, seed) -> torch.Generator:
    """The CPU generator :meth:`GaussianMixture.sample` draws from: seeded by ``seed`` if
    given, else by ``random_state`` (a RandomState gives one draw of it as the seed; None:
    a seed from torch's global generator)."""
    if seed is not None:
        return make_generator(check_seed(seed, "seed", allow_none=False))
    if isinstance(random_state, np.random.RandomState):
        random_state = int(random_state.randint(0, 2**31 - 1))
    return make_generator(random_state, name="random_state")


def _draw(n_samples, weights, means, covariances, covariance_type, gen):
    """``n_samples`` draws from a mixture (NumPy parameters), in float64 on the CPU: first a
    component for each sample (``z ~ Categorical(weights)``, sorted), then
    ``x = mu_z + L_z eps`` with ``eps ~ N(0, I)`` and ``L_z L_z^T = Sigma_z``.
    Returns ``(X, y)`` as NumPy arrays (n_samples, D) and (n_samples,)."""
    weights, means, cov = (torch.as_tensor(np.asarray(a), dtype=torch.float64)
                           for a in (weights, means, covariances))
    K, D = means.shape
    y = torch.multinomial(weights / weights.sum(), n_samples, replacement=True, generator=gen)
    y = torch.sort(y).values
    noise = torch.randn(n_samples, D, generator=gen, dtype=torch.float64)
    # scale of each component, as a matrix L with L L^T = Sigma (or a vector of std devs)
    if covariance_type == "full":
        scale = torch.linalg.cholesky(cov)  # (K, D, D)
    elif covariance_type == "tied":
        scale = torch.linalg.cholesky(cov).expand(K, D, D)
    elif covariance_type == "diag":
        scale = cov.sqrt()  # (K, D)
    else:
        scale = cov.sqrt()[:, None].expand(K, D)
    counts = torch.bincount(y, minlength=K).tolist()
    # y is sorted, so the noise splits into one consecutive block per component
    pieces = [means[k] + (eps @ scale[k].T if scale.dim() == 3 else eps * scale[k])
              for k, eps in enumerate(torch.split(noise, counts))]
    return torch.cat(pieces).numpy(), y.numpy()


# ------------------------------------------------------------------ starting and repairing EM


def _initial_responsibilities(X, K, init_params, random_state):
    """(N, K) initial responsibilities, drawn exactly as scikit-learn draws them."""
    N = X.shape[0]
    resp = np.zeros((N, K))
    if init_params in ("kmeans", "k-means++"):
        # k-means runs on the CPU, in scikit-learn, and always in float64: the start then does
        # not depend on the working dtype (k-means in float32 can find another partition)
        X_np = X.cpu().numpy().astype(np.float64, copy=False)
        if init_params == "kmeans":
            labels = KMeans(n_clusters=K, n_init=1, random_state=random_state).fit(X_np).labels_
            resp[np.arange(N), labels] = 1.0
        else:
            _, indices = kmeans_plusplus(X_np, K, random_state=random_state)
            resp[indices, np.arange(K)] = 1.0
    elif init_params == "random":
        resp = random_state.uniform(size=(N, K))
        resp /= resp.sum(axis=1, keepdims=True)
    else:  # random_from_data
        indices = random_state.choice(N, size=K, replace=False)
        resp[indices, np.arange(K)] = 1.0
    return torch.as_tensor(resp, dtype=X.dtype, device=X.device)


def _reseed_empty_start(X, nk, weights, means, covariances, covariance_type, reg_covar):
    """:func:`_reseed_empty` for the initial M-step, before any E-step: the worst-explained
    points are judged by the components that did get points."""
    ok = nk >= _empty_mass(X.dtype)
    if bool(ok.all()):
        return weights, means, covariances
    covariances_ok = covariances if covariance_type == "tied" else covariances[ok]
    _, P_ok = _safe_precision_cholesky(covariances_ok, covariance_type, reg_covar, 0, X)
    _, log_prob = _e_step(X, weights[ok] / weights[ok].sum(), means[ok], P_ok, covariance_type)
    return _reseed_empty(X, nk, log_prob, weights, means, covariances, covariance_type, 0)


def _reseed_empty(X, nk, log_prob, weights, means, covariances, covariance_type, iteration):
    """Move components that lost all their points onto the worst-explained samples."""
    empty = nk < _empty_mass(X.dtype)
    if not bool(empty.any()):
        return weights, means, covariances
    n_empty = int(empty.sum())
    worst = torch.topk(log_prob, n_empty, largest=False).indices
    means = means.clone()
    means[empty] = X[worst]
    if covariance_type != "tied":
        covariances = covariances.clone()
        covariances[empty] = covariances[~empty].mean(0)
    weights = weights.clone()
    weights[empty] = 1.0 / X.shape[0]
    weights = weights / weights.sum()
    warnings.warn(
        f"GaussianMixture: component(s) {torch.nonzero(empty).flatten().tolist()} lost all "
        f"their points at EM iteration {iteration}; re-seeded on the worst-explained "
        "data point(s).",
        NumericalTroubleWarning,
        stacklevel=5,
    )
    return weights, means, covariances


def _safe_precision_cholesky(covariances, covariance_type, reg_covar, iteration, X):
    """compute_precision_cholesky, regularising (and warning) where it would fail; returns
    ``(covariances, P)``, the covariances as repaired."""
    P, failed = _precision_cholesky_or_failures(covariances, covariance_type)
    if not bool(failed.any()):
        return covariances, P
    bad = torch.nonzero(failed).flatten()
    # the jitter is measured in units of a typical variance of the data
    scale = float(X.var(0).mean())
    scale = scale if scale > 0 else 1.0
    for factor in 10.0 ** np.arange(-10, 0):
        jitter = factor * scale
        repaired = covariances.clone()
        if covariance_type == "full":
            repaired.diagonal(dim1=-2, dim2=-1)[bad] += jitter
        elif covariance_type == "tied":
            repaired.diagonal().add_(jitter)
        else:  # variances: negative round-off becomes 0 before the jitter is added
            repaired[bad] = covariances[bad].clamp_min(0.0) + jitter
        P, failed = _precision_cholesky_or_failures(repaired, covariance_type)
        if not bool(failed.any()):
            which = ("the shared (tied) covariance" if covariance_type == "tied"
                     else f"the covariance of component(s) {bad.tolist()}")
            warnings.warn(
                f"GaussianMixture: {which} was not positive definite at EM iteration "
                f"{iteration} (reg_covar={reg_covar}); added {jitter:.3g} to its diagonal.",
                NumericalTroubleWarning,
                stacklevel=5,
            )
            return repaired, P
    raise ValueError(
        "Fitting the mixture failed: some covariances stay singular even after "
        "regularisation. Increase reg_covar, use fewer components or rescale the data."
    )


# --------------------------------------------------------------------------- the estimator


def _as_random_state(random_state):
    """scikit-learn's ``check_random_state`` (the same draws for seeds below 2**32), extended
    to the course's seed range [0, 2**64): a larger seed seeds NumPy with its two 32-bit
    halves."""
    if isinstance(random_state, (int, np.integer)) and random_state >= 2**32:  # not a bool
        seed = int(random_state)
        return np.random.RandomState(np.array([seed & 0xFFFFFFFF, seed >> 32], dtype=np.uint32))
    return check_random_state(random_state)


def _as_torch_dtype(dtype, name: str = "dtype") -> torch.dtype:
    """torch.float64 or torch.float32 from a torch or NumPy dtype or its name."""
    as_numpy = str(dtype).removeprefix("torch.") if isinstance(dtype, torch.dtype) else dtype
    try:
        return {"float64": torch.float64, "float32": torch.float32}[np.dtype(as_numpy).name]
    except (KeyError, TypeError):
        raise ValueError(f"{name} must be torch.float64 or torch.float32, got {dtype!r}") from None


class Mixture(NamedTuple):
    """The parameters of a mixture during EM, as tensors on the working device."""

    weights: torch.Tensor  # (K,)
    means: torch.Tensor  # (K, D)
    covariances: torch.Tensor  # shape set by covariance_type
    precisions_cholesky: torch.Tensor  # idem


class _Run(NamedTuple):
    """The outcome of one EM run (one initialisation)."""

    mixture: Mixture
    lower_bound: float
    n_iter: int
    history: list
    converged: bool


def _initial_mixture(X, inits, n_components, covariance_type, reg_covar, init_params,
                     random_state) -> Mixture:
    """The starting mixture: one M-step on the initial responsibilities
    (:func:`_initial_responsibilities`), replaced where the user gave ``*_init``."""
    weights_init, means_init, precisions_init = inits
    covariances = None
    if weights_init is None or means_init is None or precisions_init is None:
        resp = _initial_responsibilities(X, n_components, init_params, random_state)
        weights, means, covariances = _m_step(X, resp, covariance_type, reg_covar)
        weights, means, covariances = _reseed_empty_start(
            X, resp.sum(0), weights, means, covariances, covariance_type, reg_covar)
    if weights_init is not None:
        weights = weights_init
    if means_init is not None:
        means = means_init
    if precisions_init is None:
        covariances, P = _safe_precision_cholesky(covariances, covariance_type, reg_covar, 0, X)
    else:
        P = _precision_cholesky_from_precisions(precisions_init, covariance_type)
        matrices = covariance_type in ("full", "tied")
        covariances = torch.linalg.inv(precisions_init) if matrices else 1.0 / precisions_init
    return Mixture(weights, means, covariances, P)


class GaussianMixture(BaseEstimator):
    """Gaussian mixture model fitted by EM, with scikit-learn's interface and semantics.

    How empty components, singular covariances and data far from the origin are handled
    (instead of returning NaN), and which inputs are refused, is described in the module
    docstring (``help(course_lib.gmm)``): "Numerical trouble" and "Data far from the origin".

    Parameters
    ----------
    n_components : int, default 1
        Number of Gaussian components K.
    covariance_type : {"full", "tied", "diag", "spherical"}, default "full"
        Shape of the covariances (see the module docstring).
    tol : float >= 0, default 1e-3
        EM stops when the lower bound (the mean log-likelihood per sample) changes by less
        than ``tol`` between two iterations.
    reg_covar : float >= 0, default 1e-6
        Added to the diagonal of every covariance estimate: a **floor** under the variances
        (every eigenvalue of a covariance is at least ``reg_covar``), which keeps them
        positive definite and the likelihood bounded. With ``reg_covar > 0`` the M-step is no
        longer the exact maximiser of the EM bound, so the log-likelihood is no longer
        guaranteed to rise at every iteration (see ``history_``).
    max_iter : int >= 1, default 100
        Maximum number of EM iterations per initialisation.
    n_init : int >= 1, default 1
        Number of initialisations; the one with the best final lower bound is kept.
    init_params : {"kmeans", "k-means++", "random", "random_from_data"}, default "kmeans"
        How the initial responsibilities are chosen, exactly as scikit-learn chooses them
        (same random draws); one M-step on them gives the initial parameters. See "How EM
        starts" in the module docstring.
    weights_init, means_init, precisions_init : array-like or None
        User-provided initial parameters; they replace those from ``init_params``. Shapes:
        (K,), (K, D) (or (K, C, H, W) for images), and for the precisions (inverse
        covariances) (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical.
    random_state : int, numpy RandomState or None
        Seeds the initialisation and :meth:`sample`. Same value, same result on the CPU.
    warm_start : bool, default False
        If True, a second :meth:`fit` starts from the previous solution (``n_init`` ignored).
        The previous solution must fit the new call: changing ``n_components``,
        ``covariance_type`` or the number of features between the two fits raises
        ``ValueError``. With ``warm_start=False`` (the default) every fit starts clean, as if
        on a new estimator.
    device : str, torch.device or None
        Where EM runs; ``None`` means :func:`course_lib.get_device` (the GPU if present).
    dtype : "float64" (default) or "float32" (torch or NumPy dtypes are accepted too)
        Precision of the computation: float64 reproduces scikit-learn, float32 is about
        twice as fast on a CPU. See "Precision and threads" in the module docstring.
    progress : bool, default False
        Show a progress bar over EM iterations.
    verbose : int, default 0
        1: print each initialisation; 2: also print the lower bound every 10 iterations.

    Attributes
    ----------
    weights_ (K,), means_ (K, D), covariances_, precisions_, precisions_cholesky_ : ndarray
        The fitted parameters, NumPy arrays with scikit-learn's shapes (means are flattened
        for images: reshape with ``image_shape_``).
    converged_ : bool
    n_iter_ : int
        EM iterations of the best initialisation.
    lower_bound_ : float
        Mean log-likelihood of the training data (nats per sample) at the last E-step.
    history_ : list of float
        The mean log-likelihood of the training data at each E-step of the best
        initialisation (also under scikit-learn's name ``lower_bounds_``). EM guarantees that
        it never decreases (up to rounding) **only** with ``reg_covar=0`` and no repair (no
        :class:`NumericalTroubleWarning`); see ``reg_covar``.
    n_features_in_ : int
    image_shape_ : tuple (C, H, W) or None
        Set when fitted on images; :meth:`sample` then returns images.
    """

    #: Every hyperparameter and what it must be, checked in this order by
    #: :func:`course_lib._core.check_params` (``dtype`` and ``device`` are read, not just checked).
    _hyperparameters = {
        "n_components": Int(minimum=1),
        "covariance_type": OneOf(COVARIANCE_TYPES),
        "tol": Float(minimum=0.0),
        "reg_covar": Float(minimum=0.0),
        "max_iter": Int(minimum=1),
        "n_init": Int(minimum=1),
        "init_params": OneOf(INIT_PARAMS),
        "verbose": Int(minimum=0),
        "warm_start": Flag(),
        "progress": Flag(),
        "random_state": Seed(random_state=True),
        "dtype": _as_torch_dtype,
        "device": resolve_device,
    }

    def __init__(self, n_components=1, *, covariance_type="full", tol=1e-3, reg_covar=1e-6,
                 max_iter=100, n_init=1, init_params="kmeans", weights_init=None,
                 means_init=None, precisions_init=None, random_state=None, warm_start=False,
                 device=None, dtype="float64", progress=False, verbose=0):
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.device = device
        self.dtype = dtype
        self.progress = progress
        self.verbose = verbose

    # ------------------------------------------------------------------ fitting

    def fit(self, X, y=None):
        """Fit the mixture with EM (``n_init`` starts, best kept). Returns ``self``."""
        self.fit_predict(X, y)
        return self

    def fit_predict(self, X, y=None):
        """Fit the mixture with EM and return the most probable component of each sample.

        Everything is computed in local variables and stored only once the fit has
        succeeded: a fit that raises leaves the estimator exactly as it was."""
        dtype, device = self._check_hyperparameters()
        X, image_shape, offset = _training_data(X, self.n_components, dtype, device)
        D = X.shape[1]
        inits = _check_initial_parameters(self, D, offset, dtype, device)
        warm = self.warm_start and hasattr(self, "converged_")
        if warm:
            _check_warm_start(self, D)
        random_state = _as_random_state(self.random_state)
        n_init = 1 if warm else self.n_init
        best = None
        for init in range(n_init):
            if self.verbose:
                print(f"Initialization {init}")
            if warm:  # continue the previous solution
                start, bound = _fitted_mixture(self, offset, dtype, device), self.lower_bound_
            else:
                start, bound = self._initial_parameters(X, random_state, inits), -math.inf
            run = self._em(X, start, bound, desc=f"EM (init {init + 1}/{n_init})")
            if best is None or run.lower_bound > best.lower_bound:
                best = run
        if not best.converged:
            warnings.warn("Best performing initialization did not converge. Try different "
                          "init parameters, or increase max_iter, tol, or check for "
                          "degenerate data.", ConvergenceWarning, stacklevel=2)
        # a final E-step so that fit_predict(X) == fit(X).predict(X)
        weights, means, _, P = best.mixture
        log_resp, _ = _e_step(X, weights, means, P, self.covariance_type)
        labels = log_resp.argmax(1).cpu().numpy()
        self._set_fitted(best, D, image_shape, offset, dtype, device)
        return labels

    def _em(self, X, mixture, lower_bound, desc):
        """One EM run from ``mixture``: E-step, M-step, until the lower bound (the mean
        log-likelihood) moves by less than ``tol`` or ``max_iter`` is reached."""
        history, converged, n_iter = [], False, 0
        iterations = progress(range(1, self.max_iter + 1), self.progress, desc=desc, leave=False)
        for n_iter in iterations:
            previous = lower_bound
            log_resp, log_prob, lower_bound = self._expectation(X, mixture, n_iter)
            mixture = self._maximization(X, log_resp.exp_(), log_prob, n_iter)
            history.append(lower_bound)
            if self.verbose >= 2 and n_iter % 10 == 0:
                print(f"  Iteration {n_iter}\t lower bound {lower_bound:.6f}")
            if abs(lower_bound - previous) < self.tol:
                converged = True
                break
        if hasattr(iterations, "close"):
            iterations.close()
        if self.verbose:
            state = "converged" if converged else "did not converge"
            print(f"Initialization {state}. lower bound {lower_bound:.6f}")
        return _Run(mixture, lower_bound, n_iter, history, converged)

    def _expectation(self, X, mixture, n_iter):
        """E-step (eq. (3.3)): log-responsibilities, log p(x_n) and their mean, the lower
        bound; a lower bound that is not finite raises ``FloatingPointError``."""
        log_resp, log_prob = _e_step(X, mixture.weights, mixture.means,
                                     mixture.precisions_cholesky, self.covariance_type)
        lower_bound = float(log_prob.mean())
        if not math.isfinite(lower_bound):
            raise FloatingPointError(
                f"GaussianMixture: the log-likelihood became {lower_bound} at EM "
                f"iteration {n_iter}; check the data scale or increase reg_covar."
            )
        return log_resp, log_prob, lower_bound

    def _maximization(self, X, resp, log_prob, n_iter):
        """M-step (eq. (3.4)), then the repairs: empty components are re-seeded, covariances
        that are not positive definite are regularised (each with a warning)."""
        weights, means, covariances = _m_step(X, resp, self.covariance_type, self.reg_covar)
        weights, means, covariances = _reseed_empty(X, resp.sum(0), log_prob, weights, means,
                                                    covariances, self.covariance_type, n_iter)
        covariances, P = _safe_precision_cholesky(covariances, self.covariance_type,
                                                  self.reg_covar, n_iter, X)
        return Mixture(weights, means, covariances, P)

    def _initial_parameters(self, X, random_state, inits):
        """The starting mixture (:func:`_initial_mixture`) for this estimator's settings."""
        return _initial_mixture(X, inits, self.n_components, self.covariance_type,
                                self.reg_covar, self.init_params, random_state)

    def _set_fitted(self, run, D, image_shape, offset, dtype, device):
        """Store the best run as the fitted state (NumPy attributes ending in ``_``)."""
        weights, means, covariances, P = run.mixture
        self.weights_ = _numpy(weights)
        if offset is not None:  # back in the data's coordinates, added in float64
            means = (means.double() + offset).to(means.dtype)
        self.means_ = _numpy(means)
        self._offset = None if offset is None else _numpy(offset)
        self.covariances_ = _numpy(covariances)
        self.precisions_cholesky_ = _numpy(P)
        self.precisions_ = _numpy(P @ P.mT if self.covariance_type in ("full", "tied")
                                  else P.square())
        self._dtype, self._device = dtype, device
        self.n_features_in_ = D
        self.image_shape_ = image_shape
        self._fitted_covariance_type = self.covariance_type
        self.converged_ = run.converged
        self.n_iter_ = run.n_iter
        self.lower_bound_ = run.lower_bound
        self.history_ = list(run.history)
        self.lower_bounds_ = self.history_

    # ------------------------------------------------------- checks and the fit in use

    def _check_hyperparameters(self):
        """Check every hyperparameter (the table ``_hyperparameters``); return the working
        ``(dtype, device)``."""
        checked = check_params(self, self._hyperparameters)
        return checked["dtype"], checked["device"]

    def score_samples(self, X):
        """Log-likelihood ``log p(x_n)`` of each sample (nats), NumPy array (N,)."""
        return _e_step_fitted(self, X)[1].cpu().numpy()

    def score_levels(self, levels, *, n_levels: int):
        """Exact log-probability (nats) of each image of integer grey ``levels``, NumPy (N,).

        A mixture fitted to dequantised data, ``(level + u) / n_levels`` with ``u ~ U[0, 1)``
        (``data.dequantize``), is a density; :meth:`score_samples` of dequantised test data
        averages ``log p`` over each pixel's cell, a lower bound on the log-probability of the
        cell (Jensen: ``E_u log p <= log E_u p``), so its bits per pixel are an upper bound.
        This method computes the exact value: the mixture's mass on the cells
        ``[k/n, (k+1)/n)`` of the image's levels. With diagonal covariances the mass of a
        component is a product over pixels of normal CDF differences, so

            log P(levels) = logsumexp_k [ log w_k + sum_d log(Phi(b_kd) - Phi(a_kd)) ],

        ``a_kd, b_kd`` the cell's ends standardised by component k's mean and standard deviation
        in pixel d. Mass outside [0, 1) belongs to no cell: the levels' probabilities sum to at
        most 1. ``covariance_type="diag"`` or ``"spherical"`` only (a full covariance would need
        a multivariate normal CDF per cell); computed in float64 on the CPU, in blocks.
        """
        check_is_fitted(self, "means_")
        n_levels = check_int(n_levels, "n_levels", minimum=2)
        if self.covariance_type not in ("diag", "spherical"):
            raise ValueError("score_levels needs covariance_type 'diag' or 'spherical' (the "
                             f"cells' mass factorises over pixels); this one is "
                             f"{self.covariance_type!r}")
        arr = np.asarray(levels)
        if arr.dtype.kind not in "iu" and not (arr.dtype.kind == "f" and np.all(arr == np.round(arr))):
            raise ValueError("levels must be integer grey levels")
        if arr.ndim < 2 or len(arr) == 0:
            raise ValueError(f"levels must be images (N, ...) with N >= 1, got shape {arr.shape}")
        k = torch.as_tensor(arr.reshape(len(arr), -1).astype(np.float64))
        if k.shape[1] != self.n_features_in_:
            raise ValueError(f"levels has {k.shape[1]} pixels per image, but this GaussianMixture "
                             f"was fitted on {self.n_features_in_}")
        if bool((k < 0).any()) or bool((k > n_levels - 1).any()):
            raise ValueError(f"levels must lie in [0, {n_levels - 1}]")
        means = torch.as_tensor(np.asarray(self.means_, dtype=np.float64))        # (K, D)
        var = torch.as_tensor(np.asarray(self.covariances_, dtype=np.float64))
        sd = (var[:, None] if var.dim() == 1 else var).sqrt().expand_as(means)    # (K, D)
        log_w = torch.as_tensor(np.log(np.asarray(self.weights_, dtype=np.float64)))
        K, D = means.shape
        out = []
        for rows in _blocks(len(k), K * D, k.device):
            lo = (k[rows, None, :] / n_levels - means) / sd                          # (n, K, D)
            hi = lo + 1.0 / (n_levels * sd)
            out.append(torch.logsumexp(_log_normal_mass(lo, hi).sum(-1) + log_w, dim=1))
        return torch.cat(out).numpy()

    def score(self, X, y=None):
        """Mean log-likelihood per sample (nats), a float."""
        return float(_e_step_fitted(self, X)[1].mean())

    def predict(self, X):
        """Most probable component of each sample, int64 array (N,)."""
        return _e_step_fitted(self, X)[0].argmax(1).cpu().numpy()

    def predict_proba(self, X):
        """Responsibilities ``p(z_n = k | x_n)``, array (N, K) whose rows sum to one."""
        return torch.exp(_e_step_fitted(self, X)[0]).cpu().numpy()

    def bic(self, X):
        """Bayesian information criterion ``-2 log L + p log N`` (eq. (3.5) [gmm-bic]); lower is better."""
        log_prob = _e_step_fitted(self, X)[1]
        p = n_parameters(self.n_components, self.n_features_in_, self.covariance_type)
        return float(-2.0 * log_prob.sum() + p * math.log(log_prob.shape[0]))

    def aic(self, X):
        """Akaike information criterion ``-2 log L + 2 p`` (eq. (3.5) [gmm-bic]); lower is better."""
        log_prob = _e_step_fitted(self, X)[1]
        p = n_parameters(self.n_components, self.n_features_in_, self.covariance_type)
        return float(-2.0 * log_prob.sum() + 2 * p)

    def sample(self, n_samples=1, *, seed=None):
        """Draw new samples from the fitted mixture.

        First a component for each sample (``z ~ Categorical(weights)``), then
        ``x = mu_z + L_z eps`` with ``eps ~ N(0, I)`` and ``L_z`` the Cholesky factor of
        ``Sigma_z``. Drawn on the CPU in float64 from ``seed`` if given, else from
        ``random_state`` (an int gives the same samples at every call, as in scikit-learn;
        None uses torch's global generator). ``seed`` is what the evaluation protocol needs:
        ``metrics.evaluate(lambda n, s: model.sample(n, seed=s))`` draws fresh samples per seed.

        Returns
        -------
        X : ndarray (n_samples, D), or (n_samples, C, H, W) when fitted on images. The
            values are raw Gaussian draws (not clipped to [0, 1]); clip them for display.
        y : ndarray (n_samples,) int64, the component of each sample, sorted (as scikit-learn).
        """
        check_is_fitted(self, "means_")
        n_samples = check_int(n_samples, "n_samples", minimum=1)
        gen = _sampling_generator(self.random_state, seed)
        X, y = _draw(n_samples, self.weights_, self.means_, self.covariances_,
                     self.covariance_type, gen)
        if self.image_shape_ is not None:
            X = X.reshape(n_samples, *self.image_shape_)
        return X, y


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy()


def _fitted_mixture(gm, offset, dtype, device) -> Mixture:
    """The fitted parameters of ``gm`` as a :class:`Mixture` of tensors of ``dtype`` on
    ``device``, the means relative to ``offset`` (float64 tensor (D,) or None; subtracted in
    float64)."""

    def t(a, as_dtype=dtype):
        return torch.as_tensor(np.asarray(a), dtype=as_dtype, device=device)

    means = t(gm.means_)
    if offset is not None:
        means = (t(gm.means_, torch.float64) - offset).to(dtype)
    return Mixture(t(gm.weights_), means, t(gm.covariances_), t(gm.precisions_cholesky_))


def _log_normal_mass(a, b):
    """``log(Phi(b) - Phi(a))`` for ``a < b``, elementwise and stable in both tails: where
    ``a > 0`` it uses ``Phi(-a) - Phi(-b)``, so the difference is always taken between two
    lower-tail probabilities, in logs."""
    flip = a > 0
    a, b = torch.where(flip, -b, a), torch.where(flip, -a, b)
    log_b = torch.special.log_ndtr(b)
    return log_b + torch.log(-torch.expm1(torch.special.log_ndtr(a) - log_b))


def _e_step_fitted(gm, X):
    """The E-step of the fitted ``gm`` on new data ``X`` (of the fit's features or image
    shape, centred with its offset, in its dtype on its device); samples whose log-density
    overflows are refused."""
    check_is_fitted(gm, "means_")
    dtype, device = gm._dtype, gm._device
    offset = gm._offset
    if offset is not None:
        offset = torch.as_tensor(offset, dtype=torch.float64, device=device)
    X, _, _ = _read_X(X, device, (gm.n_features_in_, gm.image_shape_))
    X = _centre(X, offset, dtype)
    weights, means, _, P = _fitted_mixture(gm, offset, dtype, device)
    log_resp, log_prob = _e_step(X, weights, means, P, gm.covariance_type)
    if not bool(torch.isfinite(log_prob).all()):
        raise ValueError(
            "X: some samples are so far from every component (relative to the fitted "
            "covariances) that their log-density overflows the working precision; "
            "rescale X the way the training data were scaled"
        )
    return log_resp, log_prob


# ------------------------------------------------------------------ reading and checking inputs
#
# Everything below refuses bad input with a message that names the argument; nothing below is
# part of EM. The estimator's hyperparameters are declared in GaussianMixture._hyperparameters.


def _training_data(X, n_components, dtype, device):
    """The training data as a (N, D) tensor of ``dtype`` on ``device`` (images flattened),
    centred when far from the origin: returns ``(X, image_shape, offset)``."""
    X, image_shape, eps_in = _read_X(X, device)
    offset = _choose_offset(X, eps_in)
    X = _centre(X, offset, dtype)
    _check_scale(X)
    N = X.shape[0]
    if N < 2:
        raise ValueError(f"X must contain at least 2 samples, got n_samples={N}")
    if n_components > N:
        raise ValueError(f"n_components={n_components} must be <= n_samples={N} "
                         "(each component needs data)")
    return X, image_shape, offset


def _read_X(X, device, fitted=None):
    """The user's X as a float64 (N, D) tensor on ``device`` (images (N, C, H, W) flattened):
    returns ``(X, image_shape or None, eps)``, ``eps`` being the precision of the user's
    numbers (:func:`_input_eps`). ``fitted = (n_features, image_shape)`` of a fitted model,
    which X must match. X is read exactly, in float64 (float32 input too), so that an offset
    can be taken off before the cast to the working precision (:func:`_centre`)."""
    X = _precheck_X(X)
    eps_in = _input_eps(X)
    X = as_tensor(X, "X", ndim=(2, 4), dtype=torch.float64, device=device)
    image_shape = tuple(X.shape[1:]) if X.dim() == 4 else None
    X = X.reshape(X.shape[0], -1)  # as_tensor refused empty arrays: every dimension is > 0
    if fitted is not None:
        n_features, fitted_shape = fitted
        if None not in (image_shape, fitted_shape) and image_shape != tuple(fitted_shape):
            raise ValueError(
                f"X has images of shape {image_shape}, but this GaussianMixture was "
                f"fitted on images of shape {tuple(fitted_shape)}"
            )
        if X.shape[1] != n_features:
            raise ValueError(
                f"X has {X.shape[1]} features, but GaussianMixture is expecting "
                f"{n_features} features as input (the number it was fitted with)"
            )
    return X, image_shape, eps_in


def _centre(X, offset, dtype):
    """``X - offset`` (float64; no offset: X), cast to the working ``dtype``; values that
    overflow it are refused."""
    if offset is not None:
        X = X - offset
    X = X.to(dtype)
    if not bool(torch.isfinite(X).all()):
        raise ValueError(
            f"X has values too large for {dtype} (they overflow to infinity when "
            "converted); rescale the data, e.g. divide X by its standard deviation, "
            "or use dtype='float64'"
        )
    return X


def _check_initial_parameters(gm, D, offset, dtype, device):
    """Validate ``gm``'s weights_init, means_init, precisions_init; return tensors (or None),
    the means relative to ``offset`` (the data's, see :func:`_choose_offset`)."""
    K, kw = gm.n_components, dict(dtype=dtype, device=device)
    weights = means = precisions = None
    if gm.weights_init is not None:
        weights = as_tensor(gm.weights_init, "weights_init", ndim=1, min_value=0, max_value=1,
                            **kw)
        if tuple(weights.shape) != (K,):
            raise ValueError(f"weights_init must have shape ({K},), got {tuple(weights.shape)}")
        atol = 1e-6 if dtype == torch.float32 else 1e-8
        if abs(float(weights.sum()) - 1.0) > atol:
            raise ValueError(f"weights_init must sum to 1, got {float(weights.sum()):.6g}")
    if gm.means_init is not None:
        means = as_tensor(gm.means_init, "means_init", ndim=(2, 4), dtype=torch.float64,
                          device=device)
        means = means.reshape(means.shape[0], -1)
        if tuple(means.shape) != (K, D):
            raise ValueError(f"means_init must have shape ({K}, {D}), got {tuple(means.shape)}")
        means = (means if offset is None else means - offset).to(dtype)
        if not bool(torch.isfinite(means).all()):
            raise ValueError(f"means_init has values too large for {dtype}")
    if gm.precisions_init is not None:
        shape = _PRECISIONS_SHAPE[gm.covariance_type](K, D)
        precisions = as_tensor(gm.precisions_init, "precisions_init", ndim=len(shape), **kw)
        if tuple(precisions.shape) != shape:
            raise ValueError(
                f"precisions_init must have shape {shape} for covariance_type="
                f"{gm.covariance_type!r}, got {tuple(precisions.shape)}"
            )
        if gm.covariance_type in ("full", "tied"):
            symmetric = torch.allclose(precisions, precisions.mT, rtol=1e-5, atol=1e-8)
            if not symmetric or bool((torch.linalg.eigvalsh(precisions) <= 0).any()):
                raise ValueError("precisions_init must be symmetric positive definite")
        elif bool((precisions <= 0).any()):
            raise ValueError("precisions_init must be positive")
    return weights, means, precisions


#: The shape of the precision (or covariance) parameters for K components of D features.
_PRECISIONS_SHAPE = {
    "full": lambda K, D: (K, D, D),
    "tied": lambda K, D: (D, D),
    "diag": lambda K, D: (K, D),
    "spherical": lambda K, D: (K,),
}


def _check_warm_start(gm, D):
    """A warm start continues the previous solution: it must have the same shapes."""
    for what, fitted, now in (("n_components", len(gm.weights_), gm.n_components),
                              ("covariance_type", gm._fitted_covariance_type, gm.covariance_type),
                              ("the number of features", gm.n_features_in_, D)):
        if now != fitted:
            raise ValueError(
                f"warm_start=True, but {what} changed from {fitted!r} (the fitted model) to "
                f"{now!r}; a warm start continues the previous solution, so refit with "
                "warm_start=False to start clean"
            )


def _check_resp(resp, X):
    """Responsibilities for :func:`m_step`: (N, K), non-negative, rows summing to one."""
    resp = _check_tensor(resp, "resp", ndim=2, like=X, min_value=0)
    if resp.shape[0] != X.shape[0]:
        raise ValueError(f"resp must have shape ({X.shape[0]}, K) (one row per sample of X), "
                         f"got {tuple(resp.shape)}")
    worst = float((resp.sum(1) - 1.0).abs().max())
    if worst > _tol_sum_to_one(resp.dtype):
        raise ValueError("resp: each row (the responsibilities of one sample) must sum to 1, "
                         f"found a row summing to 1 +{worst:.3g} off")
    return resp


def _precheck_X(X):
    """Refuse, with scikit-learn's wording, what :func:`as_tensor` would refuse less clearly:
    sparse matrices, complex values and empty arrays (:func:`course_lib._core.check_input`),
    and 1-D arrays; read object arrays of numbers as floats."""
    X = check_input(X, "X")
    shape = tuple(X.shape) if hasattr(X, "shape") else np.shape(X)
    if len(shape) == 1:
        raise ValueError(
            f"Expected a 2D array (n_samples, n_features) or images (N, C, H, W), got a 1D "
            f"array of shape {shape} instead. Reshape your data either using X.reshape(-1, 1) "
            "if your data has a single feature or X.reshape(1, -1) if it contains a single "
            "sample."
        )
    return X


def _input_eps(X) -> float:
    """Relative precision of the user's data: their floating dtype's epsilon (float64's for
    integers and lists, which are read as float64)."""
    if isinstance(X, torch.Tensor):
        return torch.finfo(X.dtype if X.is_floating_point() else torch.float64).eps
    dtype = getattr(X, "dtype", None)
    floating = dtype is not None and np.issubdtype(dtype, np.floating)
    return float(np.finfo(dtype if floating else np.float64).eps)


def _choose_offset(X: torch.Tensor, eps_in: float) -> torch.Tensor | None:
    """The point taken off the data before EM, so that the fit does not depend on where the
    data sit: ``None`` for data around the origin (EM then runs on X as given, as in
    scikit-learn), else the midrange of each feature (float64 (D,)).

    EM's formulas subtract means from points and expand squares (``x @ P - mu @ P``); far from
    the origin the digits that carry the spread cancel, and the log-likelihood comes out wrong
    by up to nats per sample (1e8 in float64, 1e4 in float32). Centred data have none of that;
    the fitted means are reported in the original coordinates. A feature whose spread is
    below ``MIN_LEVELS`` steps of the data's own precision at their offset cannot be repaired
    (the input has already rounded it away): ``ValueError``.
    """
    hi, lo = X.max(0).values, X.min(0).values
    centre = hi / 2 + lo / 2  # no overflow, even at the dtype's limits
    half = hi / 2 - lo / 2
    if not bool((centre.abs() > OFFSET_RATIO * half).any()):
        return None
    step = centre.abs() * eps_in  # the spacing of the data's values around their offset
    lost = (half > 0) & (half < MIN_LEVELS * step)
    if bool(lost.any()):
        d = int(torch.nonzero(lost)[0, 0])
        raise ValueError(
            f"X: feature {d} lies at {float(centre[d]):.4g} but varies by only "
            f"{float(half[d]):.3g} around it, {float(half[d] / step[d]):.0f} times the spacing "
            "of floating-point numbers there: the spread has been rounded away before "
            "the data reached the model. Subtract the offset (e.g. X - X.mean(0)) in higher "
            "precision, before the data are rounded, and fit again."
        )
    return centre


def _check_scale(X: torch.Tensor) -> None:
    """Refuse data so large that EM's squared distances, summed over samples and features,
    would overflow the working precision (and turn into inf - inf = NaN)."""
    N, D = X.shape
    limit = math.sqrt(torch.finfo(X.dtype).max / (16.0 * N * D))
    largest = float(X.abs().max())
    if largest > limit:
        raise ValueError(
            f"X has values up to {largest:.3g} in absolute value; with N={N} samples of "
            f"D={D} features, squared distances would overflow {X.dtype} (values must stay "
            f"below about {limit:.2g}). Rescale the data, e.g. divide X by its standard "
            "deviation, and fit again."
        )


def _tol_sum_to_one(dtype: torch.dtype) -> float:
    """How far from 1 a sum of weights (or of one sample's responsibilities) may be."""
    return 1e-4 if dtype == torch.float32 else 1e-6


def _check_tensor(x, name: str, *, ndim: int, like: torch.Tensor | None = None,
                  min_value: float | None = None) -> torch.Tensor:
    """A finite real tensor of rank ``ndim``, no entry below ``min_value`` (:func:`as_tensor`;
    a floating-point tensor keeps its dtype and its autograd graph, anything else becomes
    float64; ``like`` fixes the dtype and device: that of X). Used by the public equation
    functions, which learners call directly."""
    if like is not None:
        dtype, device = like.dtype, like.device
    elif isinstance(x, torch.Tensor) and x.is_floating_point():
        dtype, device = x.dtype, None
    else:
        dtype, device = torch.float64, None
    return as_tensor(x, name, ndim=ndim, dtype=dtype, device=device, min_value=min_value,
                     detach=False)


def _check_weights(weights, K: int, like: torch.Tensor) -> torch.Tensor:
    weights = _check_tensor(weights, "weights", ndim=1, like=like, min_value=0)
    if weights.shape[0] != K:
        raise ValueError(f"weights must have shape ({K},) (one per component), got "
                         f"{tuple(weights.shape)}")
    total = float(weights.sum())
    if abs(total - 1.0) > _tol_sum_to_one(weights.dtype):
        raise ValueError(f"weights must sum to 1 (they are probabilities), got a sum of {total:.8g}")
    return weights


def _check_components(X, means, P, covariance_type):
    """The arguments the equation functions share: ``X`` (N, D), ``means`` (K, D) and the
    precisions' Cholesky factors ``P`` of ``covariance_type``, as tensors of X's dtype and
    device; returns ``(X, means, P)``."""
    check_choice(covariance_type, "covariance_type", COVARIANCE_TYPES)
    X = _check_tensor(X, "X", ndim=2)
    means = _check_tensor(means, "means", ndim=2, like=X)
    if means.shape[1] != X.shape[1]:
        raise ValueError(f"means must have shape (K, {X.shape[1]}) (one row per component, as "
                         f"many columns as X), got {tuple(means.shape)}")
    K, D = means.shape
    shape = _PRECISIONS_SHAPE[covariance_type](K, D)
    P = _check_tensor(P, "precisions_cholesky", ndim=len(shape), like=X)
    if tuple(P.shape) != shape:
        raise ValueError(f"precisions_cholesky must have shape {shape} for covariance_type="
                         f"{covariance_type!r} (K={K}, D={D}), got {tuple(P.shape)}")
    diag = torch.diagonal(P, dim1=-2, dim2=-1) if covariance_type in ("full", "tied") else P
    if bool((diag <= 0).any()):
        raise ValueError("precisions_cholesky must have a positive diagonal (it is the Cholesky "
                         "factor of a positive-definite precision matrix); use "
                         "compute_precision_cholesky(covariances, covariance_type)")
    return X, means, P
