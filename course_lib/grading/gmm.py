"""Checks for the exercises of the Gaussian-mixture chapter (``solutions/03_*.ipynb``).

Every check builds its own inputs (NumPy ``float64`` arrays, fixed seeds), runs the learner's
function on them, and compares the result with the course's reference implementation in
:mod:`course_lib.gmm`. A wrong answer raises :class:`~course_lib.grading.GradingError` with a
message that says what is wrong and, for the usual mistakes, why.

- :func:`check_log_gaussian`  — ``log_gaussian(X, mean, cov)``, eq. (3.2) [gmm-log-gauss]
- :func:`check_e_step`        — ``e_step(X, weights, means, covariances)``, eq. (3.3) [gmm-estep]
- :func:`check_m_step_diag`   — ``m_step_diag(X, resp, reg_covar)``, eq. (3.4) [gmm-mstep], diagonal
- :func:`check_n_parameters`  — ``n_parameters(K, D, covariance_type)``, eq. (3.5) [gmm-bic]
- :func:`check_bic`           — ``bic(total_log_likelihood, n_samples, n_params)``, eq. (3.5) [gmm-bic]
- :func:`check_choose_k`      — ``choose_k_by_bic(X, candidates, covariance_type, random_state)``
"""

from __future__ import annotations

import math

import numpy as np
import torch

from . import GradingError, call_learner, check_close, check_shape, passed

__all__ = [
    "check_log_gaussian",
    "check_e_step",
    "check_m_step_diag",
    "check_n_parameters",
    "check_bic",
    "check_choose_k",
]

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


# ------------------------------------------------------------------ inputs and references


def _gmm():
    """The reference module (imported lazily so that this module imports on its own)."""
    from .. import gmm

    return gmm


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def _random_spd(rng: np.random.Generator, d: int, scale: float = 1.0) -> np.ndarray:
    """A random, well-conditioned symmetric positive-definite matrix (d, d)."""
    a = rng.normal(size=(d, d))
    return scale * (a @ a.T / d + 0.5 * np.eye(d))


def _problem(seed: int, n: int, d: int, k: int, weights=None, spread: float = 3.0):
    """Data and mixture parameters (weights, means, full covariances) for the E-step checks."""
    rng = np.random.default_rng(seed)
    means = spread * rng.normal(size=(k, d))
    covs = np.stack([_random_spd(rng, d, scale=rng.uniform(0.5, 2.0)) for _ in range(k)])
    if weights is None:
        weights = rng.dirichlet(np.full(k, 2.0))
    weights = np.asarray(weights, dtype=np.float64)
    which = rng.integers(0, k, size=n)
    X = means[which] + rng.normal(size=(n, d)) * 1.5
    return X, weights, means, covs


def _reference_log_gaussian(X, means, covs) -> np.ndarray:
    """(N, K) log-densities from :func:`course_lib.gmm.estimate_log_gaussian_prob`."""
    gmm = _gmm()
    prec_chol = gmm.compute_precision_cholesky(_t(covs), "full")
    out = gmm.estimate_log_gaussian_prob(_t(X), _t(means), prec_chol, "full")
    return out.detach().cpu().numpy().astype(np.float64)


def _reference_e_step(X, weights, means, covs):
    """(log_resp (N, K), log_likelihood (N,)) from :func:`course_lib.gmm.e_step`."""
    gmm = _gmm()
    prec_chol = gmm.compute_precision_cholesky(_t(covs), "full")
    log_resp, log_prob = gmm.e_step(_t(X), _t(weights), _t(means), prec_chol, "full")
    return (log_resp.detach().cpu().numpy().astype(np.float64),
            log_prob.detach().cpu().numpy().astype(np.float64))


def _as_pair(result, what: str):
    if not isinstance(result, (tuple, list)) or len(result) != 2:
        raise GradingError(
            f"{what} should return a pair (log_resp, log_likelihood), got {type(result).__name__}"
        )
    return result


def _as_triple(result, what: str):
    if not isinstance(result, (tuple, list)) or len(result) != 3:
        raise GradingError(
            f"{what} should return a triple (weights, means, variances), "
            f"got {type(result).__name__}"
        )
    return result


def _finite_or_hint(value, shape, what: str, hint: str) -> np.ndarray:
    arr = check_shape(value, shape, what)
    if not np.all(np.isfinite(arr)):
        raise GradingError(f"{what} contains NaN or infinite values. Hint: {hint}")
    return arr


# ------------------------------------------------------------------ exercise 1: the E-step

_UNDERFLOW_HINT = (
    "far from every component the densities are smaller than the smallest float64 "
    "(exp(-800) == 0), so anything computed with exp() first underflows. Stay in log space: "
    "log N = -D/2 log(2 pi) - 1/2 log|Sigma| - 1/2 (x-mu)^T Sigma^-1 (x-mu), and normalise "
    "with log-sum-exp (subtract the row maximum before exponentiating)"
)


def check_log_gaussian(log_gaussian) -> None:
    """Check ``log_gaussian(X, mean, cov) -> (N,)``: log N(x_n | mean, cov), eq. (3.2) [gmm-log-gauss].

    Three cases: a small 2D one, a 10-dimensional one, and points 40 standard deviations
    away from the mean, whose density underflows to 0 in float64 (its log is about -8000 and
    must come out finite).
    """
    what = "log_gaussian(X, mean, cov)"
    rng = np.random.default_rng(301)
    cases = []
    for d, n, shift in ((2, 7, 0.0), (10, 30, 0.0), (10, 12, 40.0)):
        mean = rng.normal(size=d)
        cov = _random_spd(rng, d)
        X = mean + rng.normal(size=(n, d)) + shift
        cases.append((X, mean, cov, shift))
    for X, mean, cov, shift in cases:
        n, d = X.shape
        expected = _reference_log_gaussian(X, mean[None], cov[None])[:, 0]
        got = call_learner(log_gaussian, X.copy(), mean.copy(), cov.copy(), what=what)
        if shift:
            got = _finite_or_hint(got, (n,), f"{what} for far-away points", _UNDERFLOW_HINT)
        else:
            got = check_shape(got, (n,), what)
        diff = got - expected
        hint = ""
        if np.allclose(diff, diff[0], atol=1e-6) and abs(diff[0]) > 1e-6:
            const = 0.5 * d * math.log(2 * math.pi)
            if abs(abs(diff[0]) - const) < 1e-6:
                hint = "you are off by the constant D/2 log(2 pi) of the normaliser"
            else:
                hint = ("you are off by the same constant for every point: check the "
                        "normaliser, -D/2 log(2 pi) - 1/2 log|Sigma|")
        elif np.all(np.isfinite(got)):
            hint = ("the quadratic form uses the INVERSE covariance: "
                    "(x-mu)^T Sigma^-1 (x-mu); solve with a Cholesky factor instead of inverting")
        check_close(got, expected, f"{what} (D={d})", rtol=1e-6, atol=1e-6, hint=hint)
    passed(f"{what} matches course_lib.gmm.estimate_log_gaussian_prob, far-away points included")


def check_e_step(e_step) -> None:
    """Check ``e_step(X, weights, means, covariances) -> (log_resp (N, K), log_likelihood (N,))``.

    ``covariances`` are full ``(K, D, D)`` matrices; ``log_resp[n, k] = log p(z=k | x_n)``,
    ``log_likelihood[n] = log p(x_n)``: eq. (3.3) [gmm-estep]. Cases: a small mixture with very
    unequal weights (forgetting the weights shows), a 16-dimensional one, and points far from
    every component (normalising with exp() first underflows to 0/0 = NaN).
    """
    what = "e_step(X, weights, means, covariances)"
    cases = [
        ("a 2D mixture", _problem(311, n=40, d=2, k=3, weights=[0.75, 0.2, 0.05])),
        ("a 16-D mixture", _problem(312, n=60, d=16, k=5)),
    ]
    Xf, wf, mf, cf = _problem(313, n=25, d=16, k=4)
    cases.append(("points far from every component", (Xf + 60.0, wf, mf, cf)))
    for name, (X, weights, means, covs) in cases:
        n, k = X.shape[0], len(weights)
        exp_log_resp, exp_ll = _reference_e_step(X, weights, means, covs)
        result = call_learner(e_step, X.copy(), weights.copy(), means.copy(), covs.copy(),
                              what=what)
        log_resp, ll = _as_pair(result, what)
        far = name.startswith("points far")
        hint = _UNDERFLOW_HINT if far else "compute in log space with log-sum-exp"
        log_resp = _finite_or_hint(log_resp, (n, k), f"log_resp for {name}", hint)
        ll = _finite_or_hint(ll, (n,), f"log_likelihood for {name}", hint)
        row_sums = np.exp(log_resp).sum(axis=1)
        if not np.allclose(row_sums, 1.0, atol=1e-6):
            raise GradingError(
                f"log_resp for {name}: the responsibilities exp(log_resp) of a point should sum "
                f"to 1 over the components, got sums like {row_sums[:3].round(4).tolist()}. "
                "Hint: subtract log p(x_n) (the log-sum-exp over k) from every entry"
            )
        weights_hint = ""
        if not np.allclose(weights, weights[0]):
            # What the answer would be if the weights were left out (all equal).
            no_w, _ = _reference_e_step(X, np.full(k, 1.0 / k), means, covs)
            if np.allclose(log_resp, no_w, atol=1e-6):
                weights_hint = "the responsibilities ignore the weights: add log(weights[k])"
        check_close(log_resp, exp_log_resp, f"log_resp for {name}", rtol=1e-6, atol=1e-6,
                    hint=weights_hint or "log_resp[n, k] = log w_k + log N(x_n|k) - log p(x_n)")
        check_close(ll, exp_ll, f"log_likelihood for {name}", rtol=1e-6, atol=1e-6,
                    hint=weights_hint
                    or "log p(x_n) = logsumexp_k (log w_k + log N(x_n | mu_k, Sigma_k))")
    passed(f"{what} matches course_lib.gmm.e_step, far-away points and unequal weights included")


# ------------------------------------------------------------------ exercise 2: the M-step


def check_m_step_diag(m_step_diag) -> None:
    """Check ``m_step_diag(X, resp, reg_covar) -> (weights (K,), means (K, D), variances (K, D))``.

    The M-step of eq. (3.4) [gmm-mstep] for ``covariance_type="diag"``, compared with
    :func:`course_lib.gmm.m_step`. The data include a feature that is constant (zero variance:
    only ``reg_covar`` keeps it positive) and soft, unequal responsibilities.
    """
    what = "m_step_diag(X, resp, reg_covar)"
    gmm = _gmm()
    for seed, n, d, k, reg in ((321, 50, 3, 2, 1e-6), (322, 80, 6, 4, 1e-2)):
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
        X[:, -1] = 0.25  # a constant feature: its variance is reg_covar alone
        logits = rng.normal(size=(n, k)) * 2.0 + np.linspace(0.0, 1.5, k)
        resp = np.exp(logits - logits.max(axis=1, keepdims=True))
        resp /= resp.sum(axis=1, keepdims=True)
        ew, em, ev = (t.detach().cpu().numpy().astype(np.float64) for t in
                      gmm.m_step(_t(X), _t(resp), "diag", reg))
        result = call_learner(m_step_diag, X.copy(), resp.copy(), reg, what=what)
        w, m, v = _as_triple(result, what)
        w = check_shape(w, (k,), "weights")
        m = check_shape(m, (k, d), "means")
        v = check_shape(v, (k, d), "variances")
        nk = resp.sum(axis=0)
        if np.allclose(w, nk, rtol=1e-6):
            raise GradingError("weights are the soft counts N_k; the mixing weights are "
                               "N_k / N (they must sum to 1)")
        check_close(w, ew, "weights", rtol=1e-6, atol=1e-9,
                    hint="w_k = N_k / N with N_k = sum_n resp[n, k]")
        if np.allclose(m, X.mean(axis=0), atol=1e-9):
            raise GradingError("means are the plain data mean for every component: weight each "
                               "point by its responsibility, mu_k = sum_n resp[n,k] x_n / N_k")
        check_close(m, em, "means", rtol=1e-6, atol=1e-9,
                    hint="mu_k = sum_n resp[n, k] x_n / N_k (divide by N_k, not by N)")
        var_hint = "sigma2_kd = sum_n resp[n,k] (x_nd - mu_kd)^2 / N_k + reg_covar"
        if np.allclose(v + reg, ev, rtol=1e-6, atol=1e-9):
            var_hint = "you forgot to add reg_covar to the variances"
        elif np.allclose(v, (ev - reg) * nk[:, None] / n + reg, rtol=1e-6, atol=1e-9) or \
                np.allclose(v, (ev - reg) * nk[:, None] / n, rtol=1e-6, atol=1e-9):
            var_hint = "divide the weighted sum of squares by N_k, not by N"
        if not np.all(v > 0):
            raise GradingError("variances must be positive; the constant feature has zero "
                               "spread, so only reg_covar keeps its variance above 0. "
                               f"Hint: {var_hint}")
        check_close(v, ev, "variances", rtol=1e-6, atol=1e-9, hint=var_hint)
    passed(f"{what} matches course_lib.gmm.m_step(..., 'diag', reg_covar)")


# ------------------------------------------------------------------ exercise 3: choosing K


def check_n_parameters(n_parameters) -> None:
    """Check ``n_parameters(K, D, covariance_type) -> int`` against :func:`course_lib.gmm.n_parameters`."""
    what = "n_parameters(K, D, covariance_type)"
    gmm = _gmm()
    hints = {
        "full": "each component has its own symmetric D x D matrix: D(D+1)/2 free numbers each",
        "tied": "all components share ONE symmetric D x D matrix: D(D+1)/2 free numbers in all",
        "diag": "each component has D variances",
        "spherical": "each component has a single variance",
    }
    for cov_type in COVARIANCE_TYPES:
        for K, D in ((1, 1), (3, 2), (10, 64), (7, 5)):
            expected = int(gmm.n_parameters(K, D, cov_type))
            got = call_learner(n_parameters, K, D, cov_type, what=what)
            try:
                got_num = float(got)
            except (TypeError, ValueError) as exc:
                raise GradingError(f"{what} should return a number, got {got!r}") from exc
            if got_num == expected:
                continue
            # Diagnose the usual mistakes from the difference.
            diff = got_num - expected
            if diff == 1:
                hint = ("the K weights sum to 1, so only K - 1 of them are free")
            elif diff == K * D:
                hint = "count each mean once: K*D numbers"
            else:
                hint = hints[cov_type]
            raise GradingError(
                f"{what} for K={K}, D={D}, covariance_type={cov_type!r}: got {got!r}, "
                f"expected {expected}. Hint: {hint}"
            )
    passed(f"{what} is right for the four covariance types")


def check_bic(bic) -> None:
    """Check ``bic(total_log_likelihood, n_samples, n_params) -> float``, eq. (3.5) [gmm-bic].

    The value is compared with :meth:`course_lib.gmm.GaussianMixture.bic` of small fitted
    models, given the fitted model's total log-likelihood and parameter count.
    """
    what = "bic(total_log_likelihood, n_samples, n_params)"
    gmm = _gmm()
    rng = np.random.default_rng(331)
    X = np.concatenate([rng.normal(size=(60, 2)), rng.normal(size=(37, 2)) * 0.5 + 4.0])  # N = 97
    for k, cov_type in ((1, "full"), (2, "diag"), (3, "spherical")):
        model = gmm.GaussianMixture(k, covariance_type=cov_type, random_state=0,
                                    device="cpu").fit(X)
        total_ll = float(model.score(X)) * len(X)
        p = int(gmm.n_parameters(k, X.shape[1], cov_type))
        expected = float(model.bic(X))
        got = call_learner(bic, total_ll, len(X), p, what=what)
        try:
            got = float(got)
        except (TypeError, ValueError) as exc:
            raise GradingError(f"{what} should return a number, got {got!r}") from exc
        if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-6):
            continue
        if math.isclose(got, -expected, rel_tol=1e-6):
            hint = "wrong sign: BIC = -2 log L + p log N (lower is better)"
        elif math.isclose(got, -2 * total_ll + p * math.log10(len(X)), rel_tol=1e-6):
            hint = "use the natural logarithm of N (math.log), not log10"
        elif math.isclose(got, -2 * total_ll + 2 * p, rel_tol=1e-6):
            hint = "that is the AIC (penalty 2p); the BIC's penalty is p log N"
        else:
            hint = "BIC = -2 * total_log_likelihood + n_params * log(n_samples)"
        raise GradingError(f"{what} for K={k} ({cov_type}): got {got:.6g}, expected "
                           f"{expected:.6g}. Hint: {hint}")
    passed(f"{what} matches GaussianMixture.bic")


def check_choose_k(choose_k_by_bic) -> None:
    """Check ``choose_k_by_bic(X, candidates, covariance_type, random_state) -> (best_k, bics)``.

    The learner fits ``GaussianMixture(k, covariance_type=..., random_state=random_state)`` for
    each candidate, scores it with their own :func:`bic`, and returns the K with the LOWEST
    BIC and the list of BIC values. Data: six well-separated 2D clusters, asked once with
    ``"full"`` and once with ``"spherical"`` covariances (the BIC values differ, both in the
    fit and in the parameter count), so an answer that ignores ``covariance_type`` fails.
    All data and seeds are fixed: a wrong answer fails on every run.
    """
    what = "choose_k_by_bic(X, candidates, covariance_type, random_state)"
    gmm = _gmm()
    rng = np.random.default_rng(341)
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6], [12, 0], [12, 6]], dtype=np.float64)
    X = np.concatenate([c + rng.normal(size=(70, 2)) * 0.6 for c in centres])
    candidates = [3, 6, 9]
    computed = {}
    for cov_type in ("full", "spherical"):
        expected = [float(gmm.GaussianMixture(k, covariance_type=cov_type, random_state=0,
                                              device="cpu").fit(X).bic(X)) for k in candidates]
        result = call_learner(choose_k_by_bic, X.copy(), list(candidates), cov_type, 0,
                              what=what)
        if not isinstance(result, (tuple, list)) or len(result) != 2:
            raise GradingError(f"{what} should return a pair (best_k, bics), got {result!r}")
        best_k, bics = result
        bics = check_shape(bics, (len(candidates),), f"bics for covariance_type={cov_type!r}")
        hint = ("fit GaussianMixture(k, covariance_type=covariance_type, "
                "random_state=random_state) on X and score it with your bic()")
        if cov_type != "full" and "full" in computed and np.allclose(bics, computed["full"]):
            hint = ("your BIC values do not depend on covariance_type: pass it to "
                    "GaussianMixture and to n_parameters")
        else:
            # fitted with the right type, but parameters counted as for another type
            for other in COVARIANCE_TYPES:
                if other == cov_type:
                    continue
                shift = np.log(len(X)) * np.array(
                    [gmm.n_parameters(k, 2, other) - gmm.n_parameters(k, 2, cov_type)
                     for k in candidates])
                if np.allclose(bics, np.array(expected) + shift, rtol=1e-5):
                    hint = (f"the parameter count is that of covariance_type={other!r}: "
                            "pass covariance_type to n_parameters")
        check_close(bics, expected, f"bics for covariance_type={cov_type!r}", rtol=1e-5,
                    atol=1e-6, hint=hint)
        computed[cov_type] = np.asarray(bics, dtype=np.float64)
        want = candidates[int(np.argmin(expected))]
        if best_k != want:
            hint = ("you picked the LARGEST BIC; the best model has the smallest"
                    if best_k == candidates[int(np.argmax(expected))] else
                    "return the candidate K (not its index) whose BIC is smallest")
            raise GradingError(f"{what} with covariance_type={cov_type!r}: best_k is {best_k!r}, "
                               f"expected {want}. Hint: {hint}")
    passed(f"{what} picks the K that BIC prefers on six separated clusters, for full and "
           "spherical covariances")
