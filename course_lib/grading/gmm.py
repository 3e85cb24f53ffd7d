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

from .. import gmm
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

protect(gmm)

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


#: The course's own answers, which the learner's functions may not call (they raise while
#: the learner's code runs): bound at import.
_REFERENCES = {
    "log_gaussian": (original(gmm, "estimate_log_gaussian_prob"),
                     original(gmm, "_estimate_log_gaussian_prob")),
    "e_step": (original(gmm, "e_step"), original(gmm, "_e_step"),
               original(gmm, "estimate_log_gaussian_prob"),
               original(gmm, "_estimate_log_gaussian_prob")),
    "m_step": (original(gmm, "m_step"), original(gmm, "_m_step")),
    "n_parameters": (original(gmm, "n_parameters"),),
    "bic": (original(original(gmm, "GaussianMixture"), "bic"),
            original(original(gmm, "GaussianMixture"), "aic")),
}


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
    prec_chol = gmm.compute_precision_cholesky(_t(covs), "full")
    return _to_numpy(gmm.estimate_log_gaussian_prob(_t(X), _t(means), prec_chol, "full"),
                     "reference")


def _reference_e_step(X, weights, means, covs):
    """(log_resp (N, K), log_likelihood (N,)) from :func:`course_lib.gmm.e_step`."""
    prec_chol = gmm.compute_precision_cholesky(_t(covs), "full")
    return tuple(_to_numpy(t, "reference")
                 for t in gmm.e_step(_t(X), _t(weights), _t(means), prec_chol, "full"))


#: What the E-step returns.
_E_STEP_RESULT = ("log_resp", "log_likelihood")


# ------------------------------------------------------------------ exercise 1: the E-step

_UNDERFLOW_HINT = (
    "far from every component the densities are smaller than the smallest float64 "
    "(exp(-800) == 0), so anything computed with exp() first underflows. Stay in log space: "
    "log N = -D/2 log(2 pi) - 1/2 log|Sigma| - 1/2 (x-mu)^T Sigma^-1 (x-mu), and normalise "
    "with log-sum-exp (subtract the row maximum before exponentiating)"
)


@grading_check
def check_log_gaussian(log_gaussian) -> None:
    """Check ``log_gaussian(X, mean, cov) -> (N,)``: log N(x_n | mean, cov), eq. (3.2) [gmm-log-gauss].

    Three cases: a small 2D one, a 10-dimensional one, and points 40 standard deviations
    away from the mean, whose density underflows to 0 in float64 (its log is about -8000 and
    must come out finite).
    """
    what = "log_gaussian(X, mean, cov)"

    def learner_and_reference(X, mean, cov):
        return (run_learner(log_gaussian, X, mean, cov, what=what,
                            references=_REFERENCES["log_gaussian"]),
                _reference_log_gaussian(X, mean[None], cov[None])[:, 0])

    rng = np.random.default_rng(301)
    cases = []
    for d, n, shift in ((2, 7, 0.0), (10, 30, 0.0), (10, 12, 40.0)):
        mean = rng.normal(size=d)
        cov = _random_spd(rng, d)
        X = mean + rng.normal(size=(n, d)) + shift
        cases.append((X, mean, cov, shift))
    random_rng = np.random.default_rng(run_seed())  # inputs new on every run
    d = int(random_rng.integers(2, 9))
    mean = random_rng.normal(size=d) * 2
    cov = _random_spd(random_rng, d, scale=random_rng.uniform(0.3, 3.0))
    cases.append((mean + random_rng.normal(size=(9, d)), mean, cov, 0.0))
    for X, mean, cov, shift in cases:
        n, d = X.shape
        got, expected = learner_and_reference(X, mean, cov)
        if shift:
            got = check_shape(got, (n,), f"{what} for far-away points", finite=True,
                              hint=_UNDERFLOW_HINT)
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
    for X, mean, cov, extreme in extreme_covariances(np.random.default_rng(302)):
        check_log_determinant_rule(*learner_and_reference(X, mean, cov), cov,
                                   f"{what} in 64 dimensions", extreme)
    passed(f"{what} matches course_lib.gmm.estimate_log_gaussian_prob, far-away points and "
           "64-D covariances whose determinant under/overflows included")


def _log_gaussian_hint(e_step, X, means, covs, log_resp, exp_log_resp, ll, exp_ll) -> str:
    """When the answer is wrong, whether the learner's log-density is the culprit: on a
    mixture of ONE component, log p(x_n) is log N(x_n | μ, Σ) itself, so the learner's
    ``e_step`` then returns their ``log_gaussian``. If that differs from the reference, the
    hint names ``log_gaussian``."""
    if np.allclose(log_resp, exp_log_resp, rtol=1e-6, atol=1e-6) and \
            np.allclose(ll, exp_ll, rtol=1e-6, atol=1e-6):
        return ""
    one = (X.copy(), np.ones(1), means[:1].copy(), covs[:1].copy())
    expected = _reference_log_gaussian(X, means[:1], covs[:1])[:, 0]
    try:
        _, ll_one = check_tuple(run_learner(e_step, *one, what="e_step"), _E_STEP_RESULT,
                                "e_step")
        ll_one = check_shape(ll_one, expected.shape, "log_likelihood")
    except GradingError:
        return ""
    if np.allclose(ll_one, expected, rtol=1e-6, atol=1e-6):
        return ""
    return ("with ONE component (weight 1) your log_likelihood should be log N(x | μ, Σ) "
            "itself, and it is not: the mistake is in your log_gaussian. Run "
            "check_log_gaussian(log_gaussian) and fix it first")


@grading_check
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
    seed = run_seed()
    random_rng = np.random.default_rng(seed)
    cases.append(("a random mixture", _problem(
        int(random_rng.integers(2**31)), n=int(random_rng.integers(10, 40)),
        d=int(random_rng.integers(2, 8)), k=int(random_rng.integers(2, 5)))))
    for X, mean, cov, extreme in extreme_covariances(np.random.default_rng(314)):
        cases.append((f"64-D components with {extreme}",
                      (X, np.array([0.6, 0.4]), np.stack([mean, mean[::-1]]),
                       np.stack([cov, cov[::-1, ::-1]]))))
    for name, (X, weights, means, covs) in cases:
        n, k = X.shape[0], len(weights)
        exp_log_resp, exp_ll = _reference_e_step(X, weights, means, covs)
        result = run_learner(e_step, X.copy(), weights.copy(), means.copy(), covs.copy(),
                             what=what, references=_REFERENCES["e_step"])
        log_resp, ll = check_tuple(result, _E_STEP_RESULT, what)
        if name.startswith("64-D"):
            finite = (np.all(np.isfinite(_to_numpy(log_resp, f"log_resp for {name}")))
                      and np.all(np.isfinite(_to_numpy(ll, f"log_likelihood for {name}"))))
            if not finite:
                check_log_determinant_rule(np.full(n, np.nan), exp_ll, covs[0],
                                           "e_step in 64 dimensions", name[len("64-D components with "):])
        far = name.startswith("points far")
        hint = _UNDERFLOW_HINT if far else "compute in log space with log-sum-exp"
        log_resp = check_shape(log_resp, (n, k), f"log_resp for {name}", finite=True, hint=hint)
        ll = check_shape(ll, (n,), f"log_likelihood for {name}", finite=True, hint=hint)
        row_sums = np.exp(log_resp).sum(axis=1)
        if not np.allclose(row_sums, 1.0, atol=1e-6):
            raise GradingError(
                f"log_resp for {name}: the responsibilities exp(log_resp) of a point should sum "
                f"to 1 over the components, got sums like {row_sums[:3].round(4).tolist()}. "
                "Hint: subtract log p(x_n) (the log-sum-exp over k) from every entry"
            )
        weights_hint = _log_gaussian_hint(e_step, X, means, covs, log_resp, exp_log_resp,
                                          ll, exp_ll)
        if not weights_hint and not np.allclose(weights, weights[0]):
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


@grading_check
def check_m_step_diag(m_step_diag) -> None:
    """Check ``m_step_diag(X, resp, reg_covar) -> (weights (K,), means (K, D), variances (K, D))``.

    The M-step of eq. (3.4) [gmm-mstep] for ``covariance_type="diag"``, compared with
    :func:`course_lib.gmm.m_step`. The data include a feature that is constant (zero variance:
    only ``reg_covar`` keeps it positive) and soft, unequal responsibilities.
    """
    what = "m_step_diag(X, resp, reg_covar)"
    random_rng = np.random.default_rng(run_seed())
    cases = ((321, 50, 3, 2, 1e-6), (322, 80, 6, 4, 1e-2),
             (int(random_rng.integers(2**31)), int(random_rng.integers(20, 60)),
              int(random_rng.integers(2, 6)), int(random_rng.integers(2, 5)),
              float(random_rng.choice([1e-6, 1e-3, 1e-1]))))
    for seed, n, d, k, reg in cases:
        rng = np.random.default_rng(seed)
        X = rng.normal(size=(n, d)) * rng.uniform(0.5, 3.0, size=d) + rng.normal(size=d)
        X[:, -1] = 0.25  # a constant feature: its variance is reg_covar alone
        logits = rng.normal(size=(n, k)) * 2.0 + np.linspace(0.0, 1.5, k)
        resp = np.exp(logits - logits.max(axis=1, keepdims=True))
        resp /= resp.sum(axis=1, keepdims=True)
        ew, em, ev = (_to_numpy(t, "reference") for t in gmm.m_step(_t(X), _t(resp), "diag", reg))
        result = run_learner(m_step_diag, X.copy(), resp.copy(), reg, what=what,
                             references=_REFERENCES["m_step"])
        w, m, v = check_tuple(result, ("weights", "means", "variances"), what)
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


@grading_check
def check_n_parameters(n_parameters) -> None:
    """Check ``n_parameters(K, D, covariance_type) -> int`` against :func:`course_lib.gmm.n_parameters`."""
    what = "n_parameters(K, D, covariance_type)"
    hints = {
        "full": "each component has its own symmetric D x D matrix: D(D+1)/2 free numbers each",
        "tied": "all components share ONE symmetric D x D matrix: D(D+1)/2 free numbers in all",
        "diag": "each component has D variances",
        "spherical": "each component has a single variance",
    }
    random_rng = np.random.default_rng(run_seed())
    sizes = [(1, 1), (3, 2), (10, 64), (7, 5),
             (int(random_rng.integers(1, 30)), int(random_rng.integers(1, 100)))]
    for cov_type in COVARIANCE_TYPES:
        for K, D in sizes:
            expected = int(gmm.n_parameters(K, D, cov_type))
            got = run_learner(n_parameters, K, D, cov_type, what=what,
                              references=_REFERENCES["n_parameters"])
            got_num = as_number(got, f"{what} for K={K}, D={D}, {cov_type!r}")
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
                f"n_parameters({K}, {D}, {cov_type!r}) is {got_num:g}, expected {expected}. "
                f"Hint: {hint}")
    passed(f"{what} is right for the four covariance types")


@grading_check
def check_bic(bic) -> None:
    """Check ``bic(total_log_likelihood, n_samples, n_params) -> float``, eq. (3.5) [gmm-bic].

    The value is compared with :meth:`course_lib.gmm.GaussianMixture.bic` of small fitted
    models, given the fitted model's total log-likelihood and parameter count.
    """
    what = "bic(total_log_likelihood, n_samples, n_params)"
    rng = np.random.default_rng(331)
    X = np.concatenate([rng.normal(size=(60, 2)), rng.normal(size=(37, 2)) * 0.5 + 4.0])  # N = 97
    cases = []
    for k, cov_type in ((1, "full"), (2, "diag"), (3, "spherical")):
        model = gmm.GaussianMixture(k, covariance_type=cov_type, random_state=0,
                                    device="cpu").fit(X)
        total_ll = float(model.score(X)) * len(X)
        p = int(gmm.n_parameters(k, X.shape[1], cov_type))
        cases.append((f"K={k} ({cov_type})", total_ll, len(X), p, float(model.bic(X))))
    random_rng = np.random.default_rng(run_seed())
    n_rand = int(random_rng.integers(20, 5000))
    ll_rand = float(-random_rng.uniform(1.0, 50.0) * n_rand)
    p_rand = int(random_rng.integers(2, 300))
    cases.append(("random numbers", ll_rand, n_rand, p_rand,
                  -2 * ll_rand + p_rand * math.log(n_rand)))
    for label, total_ll, n_samples, p, expected in cases:
        got = run_learner(bic, total_ll, n_samples, p, what=what,
                          references=_REFERENCES["bic"])
        got = as_number(got, f"{what} for {label}")
        if math.isclose(got, expected, rel_tol=1e-6, abs_tol=1e-6):
            continue
        if math.isclose(got, -expected, rel_tol=1e-6):
            hint = "wrong sign: BIC = -2 log L + p log N (lower is better)"
        elif math.isclose(got, -2 * total_ll + p * math.log10(n_samples), rel_tol=1e-6):
            hint = "use the natural logarithm of N (math.log), not log10"
        elif math.isclose(got, -2 * total_ll + 2 * p, rel_tol=1e-6):
            hint = "that is the AIC (penalty 2p); the BIC's penalty is p log N"
        else:
            hint = "BIC = -2 * total_log_likelihood + n_params * log(n_samples)"
        raise GradingError(f"bic for {label}: got {got:.6g}, expected {expected:.6g}. "
                           f"Hint: {hint}")
    passed(f"{what} matches GaussianMixture.bic")


@grading_check
def check_choose_k(choose_k_by_bic) -> None:
    """Check ``choose_k_by_bic(X, candidates, covariance_type, random_state) -> (best_k, bics)``.

    The learner fits ``GaussianMixture(k, covariance_type=..., random_state=random_state)`` for
    each candidate, scores it with their own :func:`bic`, and returns the K with the LOWEST
    BIC and the list of BIC values. Data: six well-separated 2D clusters, asked once with
    ``"full"`` and once with ``"spherical"`` covariances (the BIC values differ, both in the
    fit and in the parameter count), so an answer that ignores ``covariance_type`` fails.
    The data are fixed and K = 6 is always a candidate; the two others are drawn per run.
    """
    what = "choose_k_by_bic(X, candidates, covariance_type, random_state)"
    rng = np.random.default_rng(341)
    centres = np.array([[0, 0], [6, 0], [0, 6], [6, 6], [12, 0], [12, 6]], dtype=np.float64)
    X = np.concatenate([c + rng.normal(size=(70, 2)) * 0.6 for c in centres])
    # the six clusters call for K = 6; two other candidates are drawn per run
    others = np.random.default_rng(run_seed()).choice([2, 3, 4, 5, 7, 8, 9], 2, replace=False)
    candidates = sorted([6, *(int(k) for k in others)])
    computed = {}
    for cov_type in ("full", "spherical"):
        expected = [float(gmm.GaussianMixture(k, covariance_type=cov_type, random_state=0,
                                              device="cpu").fit(X).bic(X)) for k in candidates]
        result = run_learner(choose_k_by_bic, X.copy(), list(candidates), cov_type, 0,
                             what=what, references=_REFERENCES["bic"])
        best_k, bics = check_tuple(result, ("best_k", "bics"), what)
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
        best_k = as_number(best_k, f"best_k for covariance_type={cov_type!r}")
        if best_k != want:
            hint = ("you picked the LARGEST BIC; the best model has the smallest"
                    if best_k == candidates[int(np.argmax(expected))] else
                    "return the candidate K (not its index) whose BIC is smallest")
            raise GradingError(f"choose_k_by_bic, covariance_type={cov_type!r}: best_k is "
                               f"{best_k:g}, expected {want}. Hint: {hint}")
    passed(f"{what} picks the K that BIC prefers on six separated clusters, for full and "
           "spherical covariances")
