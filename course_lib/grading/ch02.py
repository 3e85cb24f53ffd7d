"""Checks for the Chapter 2 exercises (images as data, a first generative model, evaluation).

- :func:`check_fit_gaussian`: the maximum-likelihood Gaussian, eq. (2.7) [eq-gauss-mle];
- :func:`check_gaussian_log_likelihood`: its log-density, eq. (2.6) [eq-gauss-ll];
- :func:`check_frechet_distance`: the Fréchet distance between two Gaussians, eq. (2.10) [eq-fid].

Each check builds its own inputs, runs the learner's function on them, compares the result
with an independent computation (NumPy for the fit, :mod:`course_lib.metrics` for the
log-likelihood and the Fréchet distance) and, when they differ, recognises the usual mistakes
and says which one it looks like.
"""

from __future__ import annotations

import numpy as np

from .. import metrics
from . import (
    GradingError,
    _to_numpy,
    as_number,
    check_close,
    check_log_determinant_rule,
    check_shape,
    check_tuple,
    extreme_covariances,
    grading_check,
    original,
    passed,
    protect,
    run_learner,
    run_seed,
)

protect(metrics)

#: The course's own answers, which the learner's functions may not call.
_REFERENCES = {"log_likelihood": (original(metrics, "gaussian_log_likelihood"),),
               "frechet": (original(metrics, "frechet_distance"), original(metrics, "_psd_sqrt"))}

__all__ = ["check_fit_gaussian", "check_gaussian_log_likelihood", "check_frechet_distance"]


# ---------------------------------------------------------------- test inputs


def _random_covariance(rng, dim: int, eigenvalues) -> np.ndarray:
    """A symmetric positive-definite matrix with the given eigenvalues in a random basis."""
    q, _ = np.linalg.qr(rng.standard_normal((dim, dim)))
    return (q * np.asarray(eigenvalues, dtype=float)) @ q.T


def _correlated_data(rng, n: int, dim: int) -> np.ndarray:
    """``n`` correlated points in ``dim`` dimensions, far from zero mean."""
    mixing = rng.standard_normal((dim, dim))
    return rng.standard_normal((n, dim)) @ mixing + rng.uniform(1.0, 3.0, size=dim)


def _reference_log_likelihood(X, mean, cov) -> np.ndarray:
    """The course's reference, eq. (2.6) [eq-gauss-ll], as a float64 array of shape (N,)."""
    value = _to_numpy(metrics.gaussian_log_likelihood(X, mean, cov), "reference")
    return value.reshape(len(X))


def _same(a, b, rtol=1e-5, atol=1e-8) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all(np.isfinite(a))) and np.allclose(a, b, rtol, atol)


# ---------------------------------------------------------------- exercise 1: the Gaussian fit


@grading_check
def check_fit_gaussian(fit_gaussian) -> None:
    """Check ``fit_gaussian(X) -> (mean, cov)``, the maximum-likelihood Gaussian (eq. (2.7) [eq-gauss-mle]).

    ``X`` is ``(N, D)``; the answer must be the sample mean ``(D,)`` and the covariance that
    divides by ``N`` (``np.cov(X, rowvar=False, bias=True)``), ``(D, D)``.
    """
    rng = np.random.default_rng(run_seed())  # the second case is drawn per run
    # few points, so that 1/N and 1/(N-1) differ clearly
    for X in (_correlated_data(np.random.default_rng(2), 12, 3),
              _correlated_data(rng, int(rng.integers(6, 20)), int(rng.integers(2, 6)))):
        _check_fit_gaussian_once(fit_gaussian, X)
    passed("fit_gaussian returns the maximum-likelihood mean and covariance")


def _check_fit_gaussian_once(fit_gaussian, X) -> None:
    n = len(X)
    mean, cov = check_tuple(run_learner(fit_gaussian, X, what="fit_gaussian"), ("mean", "cov"),
                            "fit_gaussian")
    if _to_numpy(mean, "mean").shape == (n,):
        raise GradingError(
            "mean has one value per data point (shape (N,)): average over the points, "
            "i.e. over axis 0 (`X.mean(axis=0)`), to get one value per dimension"
        )
    check_close(mean, X.mean(axis=0), "mean", rtol=1e-6, atol=1e-9,
                hint="the maximum-likelihood mean is the average of the rows of X")

    cov_arr = _to_numpy(cov, "cov")
    if cov_arr.shape == (n, n):
        raise GradingError(
            "cov has shape (N, N): you computed the covariance between data points. "
            "The rows of X are the points and the columns the dimensions "
            "(with np.cov use `rowvar=False`, or compute `Xc.T @ Xc / N`)"
        )
    if _same(cov_arr, np.cov(X, rowvar=False, bias=False), rtol=1e-6):
        raise GradingError(
            "cov divides by N - 1 (the unbiased estimator, np.cov's default). The "
            "maximum-likelihood covariance divides by N: use `np.cov(X, rowvar=False, bias=True)` "
            "or `Xc.T @ Xc / N` with the centred data Xc = X - mean"
        )
    if _same(cov_arr, X.T @ X / n, rtol=1e-6):
        raise GradingError(
            "cov is X.T @ X / N without centring: subtract the mean from every row first"
        )
    check_close(cov, np.cov(X, rowvar=False, bias=True), "cov", rtol=1e-6, atol=1e-9,
                hint="cov = (1/N) Σ_n (x_n - mean)(x_n - mean)ᵀ")


# ---------------------------------------------------------------- exercise 1: the log-density


def _diagnose_log_likelihood(got, X, mean, cov, expected) -> str:
    """Name the usual mistake that ``got`` matches, or return ''."""
    dim = X.shape[1]
    diff = X - mean
    _, logdet = np.linalg.slogdet(cov)
    half_log_2pi = 0.5 * dim * np.log(2 * np.pi)
    quad_with_cov = np.einsum("ni,ij,nj->n", diff, cov, diff)
    if _same(got, np.exp(expected), rtol=1e-4):
        return "you returned the density p(x), not its logarithm log p(x)"
    offset = got - expected
    if np.allclose(offset, offset.mean(), atol=1e-6):
        c = offset.mean()
        if np.isclose(c, 0.5 * logdet, atol=1e-6):
            return "the -½ log det Σ term is missing (use np.linalg.slogdet(cov))"
        if np.isclose(c, logdet, atol=1e-6):
            return "the log-determinant has the wrong sign: it enters as -½ log det Σ"
        if np.isclose(c, half_log_2pi, atol=1e-6):
            return "the -(D/2) log 2π term is missing"
        if np.isclose(c, 0.5 * logdet + half_log_2pi, atol=1e-6):
            return "the normalising constant -(D/2) log 2π - ½ log det Σ is missing"
        if np.isclose(c, half_log_2pi - 0.5 * np.log(2 * np.pi), atol=1e-6):
            return "the 2π term must be multiplied by D/2, not by ½ (one factor per dimension)"
        return (f"your values are all off by the same constant ({c:.4g}): the quadratic term "
                "is right, check the normalising constant -(D/2) log 2π - ½ log det Σ")
    if _same(got, -0.5 * quad_with_cov - half_log_2pi - 0.5 * logdet, rtol=1e-6):
        return ("the quadratic term uses Σ itself; it needs the INVERSE covariance: "
                "(x - μ)ᵀ Σ⁻¹ (x - μ) (compute Σ⁻¹(x - μ) with np.linalg.solve)")
    if _same(got, -0.5 * quad_with_cov - half_log_2pi + 0.5 * logdet, rtol=1e-6):
        return "the quadratic term uses Σ instead of Σ⁻¹, and log det Σ has the wrong sign"
    quad_no_half = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    if _same(got, -quad_no_half - half_log_2pi - 0.5 * logdet, rtol=1e-6):
        return "the quadratic term needs the factor ½: -½ (x - μ)ᵀ Σ⁻¹ (x - μ)"
    return ""


@grading_check
def check_gaussian_log_likelihood(gaussian_log_likelihood) -> None:
    """Check ``gaussian_log_likelihood(X, mean, cov) -> (N,)``, eq. (2.6) [eq-gauss-ll].

    Two cases: a small 3-dimensional Gaussian (every term of the formula matters: det Σ ≠ 1,
    Σ ≠ I, D > 1), then a 64-dimensional one with small variances, whose determinant
    (about 1e-350) is below the smallest float64 and underflows to 0: only a log-determinant
    computed in log space (``np.linalg.slogdet`` or a Cholesky factor) works.
    """
    def learner(X, mean, cov):
        return run_learner(gaussian_log_likelihood, X, mean, cov, what="gaussian_log_likelihood",
                           references=_REFERENCES["log_likelihood"])

    rng = np.random.default_rng(3)
    mean = rng.normal(size=3)
    cov = _random_covariance(rng, 3, [0.3, 0.8, 4.0])
    cases = [(mean + rng.normal(size=(7, 3)) * 1.5, mean, cov)]
    random_rng = np.random.default_rng(run_seed())  # a case drawn per run
    rdim = int(random_rng.integers(2, 7))
    rmean = random_rng.normal(size=rdim)
    rcov = _random_covariance(random_rng, rdim, random_rng.uniform(0.2, 4.0, size=rdim))
    cases.append((rmean + random_rng.normal(size=(8, rdim)), rmean, rcov))
    for X, mean, cov in cases:
        expected = _reference_log_likelihood(X, mean, cov)
        got = check_shape(learner(X, mean, cov), (len(X),), "gaussian_log_likelihood(X, mean, cov)")
        if not _same(got, expected, rtol=1e-6, atol=1e-8):
            hint = _diagnose_log_likelihood(got, X, mean, cov, expected)
            check_close(got, expected, "gaussian_log_likelihood(X, mean, cov)", rtol=1e-6,
                        atol=1e-8, hint=hint or "log N(x | μ, Σ) = -½ (x-μ)ᵀ Σ⁻¹ (x-μ) - "
                        "(D/2) log 2π - ½ log det Σ")

    # 64 dimensions, variances from 1e-8 to 1e-3 (det Σ about 1e-352 underflows to 0.0) and
    # from 1e3 to 1e8 (about 1e+353, inf): the rule of every such exercise, no explicit
    # determinant (the same inputs as exercise 3.1's check)
    for X, mean, cov, extreme in extreme_covariances(rng):
        check_log_determinant_rule(learner(X, mean, cov), _reference_log_likelihood(X, mean, cov),
                                   cov, "gaussian_log_likelihood in 64 dimensions", extreme)
    passed("gaussian_log_likelihood matches the course's reference, also in 64 dimensions "
           "with a determinant outside float64's range")


# ---------------------------------------------------------------- exercise 2: Fréchet distance


def _matrix_sqrt_psd(a) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix."""
    vals, vecs = np.linalg.eigh((a + a.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T


def _diagnose_frechet(got, mu1, s1, mu2, s2, expected) -> str:
    mean_term = float(np.sum((mu1 - mu2) ** 2))
    tr_sqrt = 0.5 * (np.trace(s1) + np.trace(s2) + mean_term - expected)  # Tr (Σ1 Σ2)^½
    if np.isclose(got, expected - mean_term, rtol=1e-5):
        return "the mean term ‖μ1 - μ2‖² is missing"
    if np.isclose(got, expected + tr_sqrt, rtol=1e-5):
        return "the cross term needs the factor 2: Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½)"
    if np.isclose(got, mean_term + np.trace(s1) + np.trace(s2) - 2 * np.trace(s1 @ s2),
                  rtol=1e-5):
        return "the square root is missing: the cross term is Tr((Σ1 Σ2)^½), not Tr(Σ1 Σ2)"
    with np.errstate(invalid="ignore"):
        elementwise = mean_term + np.trace(s1) + np.trace(s2) - 2 * np.trace(np.sqrt(s1 @ s2))
    if not np.isfinite(got) or np.isclose(got, elementwise, rtol=1e-5):
        return ("it looks like an element-wise square root (np.sqrt of a matrix takes the root "
                "of every entry, and negative entries give NaN). You need the MATRIX square root "
                "(Σ1 Σ2)^½: scipy.linalg.sqrtm, or the symmetric form "
                "Tr((Σ1^½ Σ2 Σ1^½)^½) with Σ1^½ from np.linalg.eigh")
    product_of_roots = (mean_term + np.trace(s1) + np.trace(s2)
                        - 2 * np.trace(_matrix_sqrt_psd(s1) @ _matrix_sqrt_psd(s2)))
    if np.isclose(got, product_of_roots, rtol=1e-5):
        return ("Σ1^½ Σ2^½ is not (Σ1 Σ2)^½ when the matrices do not commute; take the square "
                "root of the product, e.g. Tr((Σ1^½ Σ2 Σ1^½)^½)")
    return ""


def _frechet_and_reference(frechet_distance, mu1, s1, mu2, s2) -> tuple[float, float]:
    """The learner's Fréchet distance (on copies, guarded) and the course's, as numbers."""
    expected = as_number(metrics.frechet_distance(mu1, s1, mu2, s2), "reference")
    got = run_learner(frechet_distance, mu1.copy(), s1.copy(), mu2.copy(), s2.copy(),
                      what="frechet_distance", references=_REFERENCES["frechet"])
    return as_number(got, "frechet_distance(mu1, s1, mu2, s2)"), expected


def _check_frechet_once(frechet_distance, mu1, s1, mu2, s2) -> None:
    got, expected = _frechet_and_reference(frechet_distance, mu1, s1, mu2, s2)
    if not (np.isfinite(got) and np.isclose(got, expected, rtol=1e-5, atol=1e-8)):
        hint = _diagnose_frechet(got, mu1, s1, mu2, s2, expected)
        raise GradingError(
            f"frechet_distance(mu1, s1, mu2, s2) = {got:.6g}, expected {expected:.6g}. "
            + (f"Hint: {hint}" if hint else
               "Hint: d² = ‖μ1 - μ2‖² + Tr(Σ1 + Σ2 - 2 (Σ1 Σ2)^½) with a matrix square root")
        )


@grading_check
def check_frechet_distance(frechet_distance) -> None:
    """Check ``frechet_distance(mu1, s1, mu2, s2) -> float``, eq. (2.10) [eq-fid].

    Three cases: two 4-dimensional Gaussians whose covariances do not commute; a Gaussian
    against itself (distance 0); and two rank-deficient covariances (as with fewer samples
    than feature dimensions), where the result must still be a finite, non-negative number.
    """
    rng = np.random.default_rng(4)
    dim = 4
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    s1 = _random_covariance(rng, dim, [0.2, 0.5, 1.0, 3.0])
    s2 = _random_covariance(rng, dim, [0.1, 0.7, 2.0, 5.0])
    _check_frechet_once(frechet_distance, mu1, s1, mu2, s2)
    random_rng = np.random.default_rng(run_seed())  # a case drawn per run
    rdim = int(random_rng.integers(2, 7))
    _check_frechet_once(frechet_distance, random_rng.normal(size=rdim),
                        _random_covariance(random_rng, rdim, random_rng.uniform(0.1, 5, rdim)),
                        random_rng.normal(size=rdim),
                        _random_covariance(random_rng, rdim, random_rng.uniform(0.1, 5, rdim)))
    same, _ = _frechet_and_reference(frechet_distance, mu1, s1, mu1, s1)
    if not (np.isfinite(same) and abs(same) < 1e-6):
        raise GradingError(
            f"the distance between a Gaussian and itself should be 0, got {same:.6g}"
            + (". Hint: the cross term needs a MATRIX square root: (Σ Σ)^½ = Σ, so "
               "Tr(Σ + Σ - 2Σ) = 0" if np.isfinite(same) else "")
        )

    # Rank-deficient covariances (rank 2 in 5 dimensions), as with few samples.
    dim = 5
    a, b = rng.normal(size=(dim, 2)), rng.normal(size=(dim, 2))
    s1, s2 = a @ a.T, b @ b.T
    mu1, mu2 = rng.normal(size=dim), rng.normal(size=dim)
    got, expected = _frechet_and_reference(frechet_distance, mu1, s1, mu2, s2)
    if not (np.isfinite(got) and np.isclose(got, expected, rtol=1e-4, atol=1e-6)):
        raise GradingError(
            f"with singular covariances (rank 2 in 5 dimensions) frechet_distance returned "
            f"{got:.6g}, expected {expected:.6g}. Hint: Σ1 Σ2 then has zero eigenvalues; take "
            "the real part of scipy.linalg.sqrtm's result, or use the symmetric form "
            "Tr((Σ1^½ Σ2 Σ1^½)^½), whose eigenvalues you can clip at 0 before the square root"
        )
    passed("frechet_distance matches the course's reference, also for singular covariances")
