"""The GMM exercise checks pass right answers and reject blanks and plausible wrong answers.

The "right" answers below are written here, independently of ``course_lib.gmm`` (NumPy and
SciPy only), so a wrong reference in the library makes these tests fail too.
"""

from __future__ import annotations

import numpy as np
import pytest
from _shared import CPU
from scipy.special import logsumexp

from course_lib.gmm import GaussianMixture
from course_lib.grading import GradingError
from course_lib.grading import gmm as checks


def loose(pattern: str) -> str:
    """A message pattern that also matches across the line breaks of a check's message (its
    first line is short and the hint wrapped, for nbgrader's 90-column output)."""
    return "(?s)" + pattern.replace(" ", r"\s+")

# The learner's GaussianMixture fits below stay on the CPU: the checks compare them with their
# own reference fits, which course_lib/grading/gmm.py makes on the CPU.

# ------------------------------------------------------------------ right answers


def log_gaussian(X, mean, cov):
    D = X.shape[1]
    L = np.linalg.cholesky(cov)
    z = np.linalg.solve(L, (X - mean).T)
    return -0.5 * (D * np.log(2 * np.pi) + 2 * np.log(np.diag(L)).sum() + (z**2).sum(0))


def _weighted_log_prob(X, weights, means, covs):
    return np.stack(
        [np.log(weights[k]) + log_gaussian(X, means[k], covs[k]) for k in range(len(weights))],
        axis=1,
    )


def e_step(X, weights, means, covs):
    a = _weighted_log_prob(X, weights, means, covs)
    ll = logsumexp(a, axis=1)
    return a - ll[:, None], ll


def m_step_diag(X, resp, reg_covar):
    nk = resp.sum(0)
    means = resp.T @ X / nk[:, None]
    var = np.stack([(resp[:, k:k + 1] * (X - means[k]) ** 2).sum(0) / nk[k]
                    for k in range(resp.shape[1])])
    return nk / len(X), means, var + reg_covar


def n_parameters(K, D, covariance_type):
    sym = D * (D + 1) // 2
    cov = {"full": K * sym, "tied": sym, "diag": K * D, "spherical": K}[covariance_type]
    return K - 1 + K * D + cov


def bic(total_log_likelihood, n_samples, n_params):
    return -2 * total_log_likelihood + n_params * np.log(n_samples)


def choose_k_by_bic(X, candidates, covariance_type="full", random_state=0):
    N, D = X.shape
    bics = []
    for k in candidates:
        m = GaussianMixture(k, covariance_type=covariance_type, random_state=random_state,
                            device=CPU).fit(X)
        bics.append(bic(m.score(X) * N, N, n_parameters(k, D, covariance_type)))
    return candidates[int(np.argmin(bics))], bics


def blank(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------ plausible wrong answers


def lg_no_2pi(X, mean, cov):
    return log_gaussian(X, mean, cov) + 0.5 * X.shape[1] * np.log(2 * np.pi)


def lg_cov_not_inverse(X, mean, cov):
    D = X.shape[1]
    d = X - mean
    return -0.5 * (D * np.log(2 * np.pi) + np.linalg.slogdet(cov)[1]
                   + np.einsum("nd,de,ne->n", d, cov, d))


def lg_via_pdf(X, mean, cov):
    """Computes the density first, then its log: -inf far from the mean."""
    with np.errstate(divide="ignore"):
        return np.log(np.exp(log_gaussian(X, mean, cov)))


def lg_no_half_logdet(X, mean, cov):
    return log_gaussian(X, mean, cov) - 0.5 * np.linalg.slogdet(cov)[1]


def es_naive(X, weights, means, covs):
    """Exponentiate, then normalise: 0/0 = NaN where every density underflows."""
    p = np.exp(_weighted_log_prob(X, weights, means, covs))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.log(p / p.sum(1, keepdims=True)), np.log(p.sum(1))


def es_no_weights(X, weights, means, covs):
    K = len(weights)
    return e_step(X, np.full(K, 1.0 / K), means, covs)


def es_unnormalised(X, weights, means, covs):
    a = _weighted_log_prob(X, weights, means, covs)
    return a, logsumexp(a, axis=1)


def es_resp_not_log(X, weights, means, covs):
    log_resp, ll = e_step(X, weights, means, covs)
    return np.exp(log_resp), ll


def es_returns_only_resp(X, weights, means, covs):
    return e_step(X, weights, means, covs)[0]


def ms_counts_as_weights(X, resp, reg):
    w, m, v = m_step_diag(X, resp, reg)
    return resp.sum(0), m, v


def ms_divide_by_n(X, resp, reg):
    w, m, v = m_step_diag(X, resp, reg)
    return w, m, (v - reg) * resp.sum(0)[:, None] / len(X) + reg


def ms_no_reg(X, resp, reg):
    w, m, v = m_step_diag(X, resp, reg)
    return w, m, v - reg


def ms_unweighted_means(X, resp, reg):
    w, m, v = m_step_diag(X, resp, reg)
    return w, np.tile(X.mean(0), (resp.shape[1], 1)), v


def ms_means_over_n(X, resp, reg):
    w, m, v = m_step_diag(X, resp, reg)
    return w, resp.T @ X / len(X), v


def np_k_weights(K, D, t):
    return n_parameters(K, D, t) + 1


def np_full_square(K, D, t):
    return n_parameters(K, D, t) + (K * D * (D - 1) // 2 if t == "full" else 0)


def np_tied_per_component(K, D, t):
    return n_parameters(K, D, "full") if t == "tied" else n_parameters(K, D, t)


def np_spherical_as_diag(K, D, t):
    return n_parameters(K, D, "diag") if t == "spherical" else n_parameters(K, D, t)


def bic_wrong_sign(ll, n, p):
    return -bic(ll, n, p)


def bic_log10(ll, n, p):
    return -2 * ll + p * np.log10(n)


def bic_aic(ll, n, p):
    return -2 * ll + 2 * p


def bic_no_factor_two(ll, n, p):
    return -ll + p * np.log(n)


def ck_argmax(X, candidates, covariance_type="full", random_state=0):
    _, bics = choose_k_by_bic(X, candidates, covariance_type, random_state)
    return candidates[int(np.argmax(bics))], bics


def ck_index(X, candidates, covariance_type="full", random_state=0):
    _, bics = choose_k_by_bic(X, candidates, covariance_type, random_state)
    return int(np.argmin(bics)), bics


def ck_log_likelihood(X, candidates, covariance_type="full", random_state=0):
    """Chooses K by the training log-likelihood (always the largest K)."""
    N = len(X)
    scores = [-2 * GaussianMixture(k, covariance_type=covariance_type, random_state=random_state,
                                   device=CPU).fit(X).score(X) * N for k in candidates]
    return candidates[int(np.argmin(scores))], scores


def ck_ignores_covariance_type(X, candidates, covariance_type="full", random_state=0):
    """Always fits and counts full covariances, whatever covariance_type says."""
    return choose_k_by_bic(X, candidates, "full", random_state)


def ck_params_always_full(X, candidates, covariance_type="full", random_state=0):
    """Fits the right covariance type but counts the parameters of a full one."""
    N, D = X.shape
    bics = [bic(GaussianMixture(k, covariance_type=covariance_type, random_state=random_state,
                                device=CPU).fit(X).score(X) * N, N, n_parameters(k, D, "full"))
            for k in candidates]
    return candidates[int(np.argmin(bics))], bics


CASES = {
    "log_gaussian": (checks.check_log_gaussian, log_gaussian,
                     [lg_no_2pi, lg_cov_not_inverse, lg_via_pdf, lg_no_half_logdet]),
    "e_step": (checks.check_e_step, e_step,
               [es_naive, es_no_weights, es_unnormalised, es_resp_not_log,
                es_returns_only_resp]),
    "m_step_diag": (checks.check_m_step_diag, m_step_diag,
                    [ms_counts_as_weights, ms_divide_by_n, ms_no_reg, ms_unweighted_means,
                     ms_means_over_n]),
    "n_parameters": (checks.check_n_parameters, n_parameters,
                     [np_k_weights, np_full_square, np_tied_per_component,
                      np_spherical_as_diag]),
    "bic": (checks.check_bic, bic, [bic_wrong_sign, bic_log10, bic_aic, bic_no_factor_two]),
    "choose_k": (checks.check_choose_k, choose_k_by_bic,
                 [ck_argmax, ck_index, ck_log_likelihood, ck_ignores_covariance_type,
                  ck_params_always_full]),
}

WRONG = [(name, fn) for name, (_, _, wrongs) in CASES.items() for fn in wrongs]


@pytest.mark.parametrize("name", list(CASES))
def test_right_answer_passes(name, capsys):
    check, right, _ = CASES[name]
    check(right)
    assert capsys.readouterr().out.startswith("✔")


@pytest.mark.parametrize("name", list(CASES))
def test_blank_fails_clearly(name):
    check, _, _ = CASES[name]
    with pytest.raises(GradingError, match=loose("not implemented")):
        check(blank)


@pytest.mark.parametrize("name,wrong", WRONG, ids=[f"{n}-{f.__name__}" for n, f in WRONG])
def test_wrong_answer_fails(name, wrong):
    check, _, _ = CASES[name]
    with pytest.raises(GradingError):
        check(wrong)


def test_hints_name_the_mistake():
    """The usual mistakes get a message that says what they are."""
    with pytest.raises(GradingError, match=loose("log-sum-exp")):
        checks.check_e_step(es_naive)
    with pytest.raises(GradingError, match=loose("weights")):
        checks.check_e_step(es_no_weights)
    with pytest.raises(GradingError, match=loose("reg_covar")):
        checks.check_m_step_diag(ms_no_reg)
    with pytest.raises(GradingError, match=loose("N_k / N")):
        checks.check_m_step_diag(ms_counts_as_weights)
    with pytest.raises(GradingError, match=loose("K - 1")):
        checks.check_n_parameters(np_k_weights)
    with pytest.raises(GradingError, match=loose("2 pi")):
        checks.check_log_gaussian(lg_no_2pi)
    with pytest.raises(GradingError, match=loose("LARGEST")):
        checks.check_choose_k(ck_argmax)
    with pytest.raises(GradingError, match=loose("AIC")):
        checks.check_bic(bic_aic)


def test_covariance_type_mistakes_get_a_hint():
    with pytest.raises(GradingError, match=loose("do not depend on covariance_type")):
        checks.check_choose_k(ck_ignores_covariance_type)
    with pytest.raises(GradingError, match=loose("parameter count is that of covariance_type='full'")):
        checks.check_choose_k(ck_params_always_full)


@pytest.mark.parametrize("name", list(CASES))
def test_each_check_rejects_at_least_two_wrong_answers_every_time(name, monkeypatch):
    """Every check has at least two plausible wrong answers, and its inputs come from fixed
    seeds: running it again gives the same verdict and message (no lucky pass)."""
    monkeypatch.setenv("COURSE_GRADING_SEED", "12345")  # the random inputs too
    check, _, wrongs = CASES[name]
    assert len(wrongs) >= 2
    for wrong in wrongs[:2]:
        messages = []
        for _ in range(2):
            with pytest.raises(GradingError) as info:
                check(wrong)
            messages.append(str(info.value).rsplit("\n(Seed ", 1)[0])  # the seed line changes
        assert messages[0] == messages[1]


def test_checks_accept_torch_outputs():
    """A learner may answer with torch tensors instead of NumPy arrays."""
    import torch

    def e_step_torch(X, weights, means, covs):
        log_resp, ll = e_step(X, weights, means, covs)
        return torch.from_numpy(log_resp), torch.from_numpy(ll)

    checks.check_e_step(e_step_torch)
