"""The Chapter 2 checks pass on a correct answer and fail, with a useful message, on a blank
and on each plausible wrong answer a learner might write."""

import numpy as np
import pytest
import scipy.linalg
import torch

from course_lib.grading import GradingError, ch02


def loose(pattern: str) -> str:
    """A message pattern that also matches across the line breaks of a check's message (its
    first line is short and the hint wrapped, for nbgrader's 90-column output)."""
    return "(?s)" + pattern.replace(" ", r"\s+")

# ---------------------------------------------------------------- exercise 1: the Gaussian fit


def fit_right(X):
    X = np.asarray(X, dtype=float)
    mean = X.sum(axis=0) / len(X)
    centred = X - mean
    return mean, centred.T @ centred / len(X)


def fit_right_torch(X):
    X = torch.as_tensor(X)
    mean = X.mean(dim=0)
    return mean, torch.cov(X.T, correction=0)


def fit_blank(X):
    raise NotImplementedError()


def fit_unbiased(X):
    return X.mean(axis=0), np.cov(X, rowvar=False)  # divides by N - 1


def fit_uncentred(X):
    return X.mean(axis=0), X.T @ X / len(X)


def fit_transposed(X):
    return X.mean(axis=0), np.cov(X, bias=True)  # rows taken as variables: (N, N)


def fit_mean_over_wrong_axis(X):
    return X.mean(axis=1), np.cov(X, rowvar=False, bias=True)


def fit_no_return(X):
    X.mean(axis=0)


def fit_only_cov(X):
    return np.cov(X, rowvar=False, bias=True)


@pytest.mark.parametrize("answer", [fit_right, fit_right_torch])
def test_fit_gaussian_passes_on_right_answers(answer, capsys):
    ch02.check_fit_gaussian(answer)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, message",
    [
        (fit_blank, "not implemented"),
        (fit_unbiased, "N - 1"),
        (fit_uncentred, "centr"),
        (fit_transposed, "(N, N)"),
        (fit_mean_over_wrong_axis, "axis 0"),
        (fit_no_return, "pair"),
        (fit_only_cov, "pair"),
    ],
)
def test_fit_gaussian_fails_on_wrong_answers(answer, message):
    with pytest.raises(GradingError, match=None) as info:
        ch02.check_fit_gaussian(answer)
    assert message in " ".join(str(info.value).split())


# ---------------------------------------------------------------- exercise 1: the log-density


def loglik_right(X, mean, cov):
    # An independent computation: scipy's multivariate normal.
    from scipy.stats import multivariate_normal

    return multivariate_normal(mean=mean, cov=cov).logpdf(X).reshape(len(X))


def loglik_right_cholesky(X, mean, cov):
    L = np.linalg.cholesky(cov)
    z = scipy.linalg.solve_triangular(L, (X - mean).T, lower=True)
    D = X.shape[1]
    return -0.5 * (z**2).sum(0) - np.log(np.diag(L)).sum() - 0.5 * D * np.log(2 * np.pi)


def _quad(X, mean, matrix):
    d = X - mean
    return np.einsum("ni,ij,nj->n", d, matrix, d)


def loglik_blank(X, mean, cov):
    raise NotImplementedError()


def loglik_no_logdet(X, mean, cov):
    D = X.shape[1]
    return -0.5 * _quad(X, mean, np.linalg.inv(cov)) - 0.5 * D * np.log(2 * np.pi)


def loglik_no_2pi(X, mean, cov):
    return -0.5 * _quad(X, mean, np.linalg.inv(cov)) - 0.5 * np.linalg.slogdet(cov)[1]


def loglik_one_2pi(X, mean, cov):
    return (-0.5 * _quad(X, mean, np.linalg.inv(cov)) - 0.5 * np.log(2 * np.pi)
            - 0.5 * np.linalg.slogdet(cov)[1])


def loglik_cov_not_inverse(X, mean, cov):
    D = X.shape[1]
    return (-0.5 * _quad(X, mean, cov) - 0.5 * D * np.log(2 * np.pi)
            - 0.5 * np.linalg.slogdet(cov)[1])


def loglik_density(X, mean, cov):
    return np.exp(loglik_right(X, mean, cov))


def loglik_naive_det(X, mean, cov):
    # Right formula, fragile arithmetic: det(cov) underflows to 0 in 64 dimensions.
    D = X.shape[1]
    with np.errstate(divide="ignore"):
        return (-0.5 * _quad(X, mean, np.linalg.inv(cov)) - 0.5 * D * np.log(2 * np.pi)
                - 0.5 * np.log(np.linalg.det(cov)))


def loglik_scalar(X, mean, cov):
    return loglik_right(X, mean, cov).sum()


@pytest.mark.parametrize("answer", [loglik_right, loglik_right_cholesky])
def test_log_likelihood_passes_on_right_answers(answer, capsys):
    ch02.check_gaussian_log_likelihood(answer)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, message",
    [
        (loglik_blank, "not implemented"),
        (loglik_no_logdet, "log det"),
        (loglik_no_2pi, "2π"),
        (loglik_one_2pi, "D/2"),
        (loglik_cov_not_inverse, "INVERSE"),
        (loglik_density, "logarithm"),
        (loglik_naive_det, "slogdet"),
        (loglik_scalar, "shape"),
    ],
)
def test_log_likelihood_fails_on_wrong_answers(answer, message):
    with pytest.raises(GradingError) as info:
        ch02.check_gaussian_log_likelihood(answer)
    assert message in " ".join(str(info.value).split())


# ---------------------------------------------------------------- exercise 2: Fréchet distance


def frechet_right(mu1, s1, mu2, s2):
    # An independent computation: scipy's general matrix square root of the product.
    root = scipy.linalg.sqrtm(s1 @ s2)
    return float(np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.real(root)))


def frechet_right_symmetric(mu1, s1, mu2, s2):
    vals, vecs = np.linalg.eigh(s1)
    r1 = (vecs * np.sqrt(np.clip(vals, 0, None))) @ vecs.T
    m = r1 @ s2 @ r1
    tr = np.sqrt(np.clip(np.linalg.eigvalsh((m + m.T) / 2), 0, None)).sum()
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * tr


def frechet_blank(mu1, s1, mu2, s2):
    raise NotImplementedError()


def frechet_elementwise_sqrt(mu1, s1, mu2, s2):
    with np.errstate(invalid="ignore"):
        return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.sqrt(s1 @ s2))


def frechet_elementwise_sqrt_abs(mu1, s1, mu2, s2):
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * np.sqrt(np.abs(s1 @ s2)))


def frechet_no_factor_2(mu1, s1, mu2, s2):
    root = np.real(scipy.linalg.sqrtm(s1 @ s2))
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - root)


def frechet_no_mean_term(mu1, s1, mu2, s2):
    root = np.real(scipy.linalg.sqrtm(s1 @ s2))
    return np.trace(s1 + s2 - 2 * root)


def frechet_no_sqrt(mu1, s1, mu2, s2):
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * s1 @ s2)


def frechet_product_of_roots(mu1, s1, mu2, s2):
    r1, r2 = np.real(scipy.linalg.sqrtm(s1)), np.real(scipy.linalg.sqrtm(s2))
    return np.sum((mu1 - mu2) ** 2) + np.trace(s1 + s2 - 2 * r1 @ r2)


def frechet_vector(mu1, s1, mu2, s2):
    return np.array([frechet_right(mu1, s1, mu2, s2)] * 2)


@pytest.mark.parametrize("answer", [frechet_right, frechet_right_symmetric])
def test_frechet_passes_on_right_answers(answer, capsys):
    ch02.check_frechet_distance(answer)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize(
    "answer, message",
    [
        (frechet_blank, "not implemented"),
        (frechet_elementwise_sqrt, "MATRIX square root"),
        (frechet_elementwise_sqrt_abs, "MATRIX square root"),
        (frechet_no_factor_2, "factor 2"),
        (frechet_no_mean_term, "mean term"),
        (frechet_no_sqrt, "square root is missing"),
        (frechet_product_of_roots, "do not commute"),
        (frechet_vector, "one number"),
    ],
)
def test_frechet_fails_on_wrong_answers(answer, message):
    with pytest.raises(GradingError) as info:
        ch02.check_frechet_distance(answer)
    assert message in " ".join(str(info.value).split())


def test_checks_compare_with_the_library_reference():
    """The references the checks use agree with independent computations (guards the checks)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(5, 3))
    cov = np.array([[2.0, 0.3, 0.1], [0.3, 1.0, -0.2], [0.1, -0.2, 0.5]])
    mean = np.array([0.1, -0.2, 0.3])
    np.testing.assert_allclose(ch02._reference_log_likelihood(X, mean, cov),
                               loglik_right(X, mean, cov), rtol=1e-10)
    s2 = np.diag([0.5, 2.0, 1.0])
    np.testing.assert_allclose(ch02.metrics.frechet_distance(mean, cov, -mean, s2),
                               frechet_right(mean, cov, -mean, s2), rtol=1e-8)


@pytest.mark.parametrize(
    "check, wrongs",
    [
        (ch02.check_fit_gaussian, [fit_unbiased, fit_uncentred]),
        (ch02.check_gaussian_log_likelihood, [loglik_no_logdet, loglik_cov_not_inverse]),
        (ch02.check_frechet_distance, [frechet_elementwise_sqrt, frechet_no_mean_term]),
    ],
)
def test_each_check_rejects_two_wrong_answers_every_time(check, wrongs, monkeypatch):
    """Each check's inputs come from fixed seeds, so a plausible wrong answer is rejected on
    every run, with the same message (no lucky pass)."""
    monkeypatch.setenv("COURSE_GRADING_SEED", "12345")  # the random inputs too
    for wrong in wrongs:
        messages = []
        for _ in range(3):
            with pytest.raises(GradingError) as info:
                check(wrong)
            messages.append(str(info.value).rsplit("\n(Seed ", 1)[0])  # the seed line changes
        assert len(set(messages)) == 1
