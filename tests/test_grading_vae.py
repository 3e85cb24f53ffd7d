"""The VAE exercise checks pass right answers and reject blanks and plausible wrong answers.

The "right" answers below are written here with PyTorch (exercise 6.1), NumPy and SciPy
(exercise 6.2), independently of ``course_lib.vae``, so a wrong reference in the library makes
these tests fail too.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from course_lib.grading import GradingError
from course_lib.grading import vae as checks


def loose(pattern: str) -> str:
    """A message pattern that also matches across the line breaks of a check's message (its
    first line is short and the hint wrapped, for nbgrader's 90-column output)."""
    return "(?s)" + pattern.replace(" ", r"\s+")

# ------------------------------------------------------------------ right answers
# Exercise 6.1 is written in PyTorch (the checks pass tensors that require a gradient and
# compare the gradients too); exercise 6.2 in NumPy.


def reparameterize(mean, log_var, eps):
    return mean + torch.exp(0.5 * log_var) * eps


def gaussian_kl(mean, log_var):
    return 0.5 * torch.sum(mean**2 + torch.exp(log_var) - 1.0 - log_var, dim=-1)


def elbo(log_px_given_z, mean, log_var):
    return log_px_given_z - gaussian_kl(mean, log_var)


def iwae_estimate(log_weights):
    return logsumexp(log_weights, axis=1) - np.log(log_weights.shape[1])


def blank(*args):
    raise NotImplementedError()


# ------------------------------------------------------------------ wrong answers


def _np_exp(x):
    return torch.as_tensor(np.exp(x.detach().numpy()))


WRONG_REPARAMETERIZE = {
    "log σ² used as σ": lambda m, lv, e: m + lv * e,
    "variance used as σ": lambda m, lv, e: m + torch.exp(lv) * e,
    "no noise": lambda m, lv, e: m + torch.exp(0.5 * lv),
    "returns None": lambda m, lv, e: None,
    # no reparameterisation: z drawn directly, so no gradient (or a zero one) reaches μ, σ
    "z drawn with torch.normal": lambda m, lv, e: torch.normal(m, torch.exp(0.5 * lv)),
    "z drawn with Normal.sample()":
        lambda m, lv, e: torch.distributions.Normal(m, torch.exp(0.5 * lv)).sample(),
    # right values, but the graph is cut
    "detached": lambda m, lv, e: (m + torch.exp(0.5 * lv) * e).detach(),
    "computed under no_grad": lambda m, lv, e: _no_grad(lambda: m + torch.exp(0.5 * lv) * e),
    "log σ² detached": lambda m, lv, e: m + torch.exp(0.5 * lv.detach()) * e,
    "μ detached": lambda m, lv, e: m.detach() + torch.exp(0.5 * lv) * e,
    "σ through NumPy": lambda m, lv, e: m + _np_exp(0.5 * lv) * e,
    "NumPy on the tensors": lambda m, lv, e: m + np.exp(0.5 * lv) * e,
    "returns a NumPy array": lambda m, lv, e: (m + torch.exp(0.5 * lv) * e).detach().numpy(),
    # right gradient for μ, values of a fresh draw
    "fresh noise with rsample()":
        lambda m, lv, e: torch.distributions.Normal(m, torch.exp(0.5 * lv)).rsample(),
}


def _no_grad(fn):
    with torch.no_grad():
        return fn()


WRONG_KL = {
    "wrong sign": lambda m, lv: -gaussian_kl(m, lv),
    "log σ used as σ": lambda m, lv: 0.5 * torch.sum(m**2 + lv**2 - 1 - torch.log(lv**2), -1),
    "σ instead of σ²":
        lambda m, lv: 0.5 * torch.sum(m**2 + torch.exp(0.5 * lv) - 1 - 0.5 * lv, -1),
    "no factor ½": lambda m, lv: 2 * gaussian_kl(m, lv),
    "not summed": lambda m, lv: 0.5 * (m**2 + torch.exp(lv) - 1.0 - lv),
    "minus sign on log σ² flipped":
        lambda m, lv: 0.5 * torch.sum(m**2 + torch.exp(lv) - 1 + lv, -1),
    "squeezed (a number for a batch of one)":
        lambda m, lv: torch.squeeze(gaussian_kl(m, lv)),
    "detached": lambda m, lv: gaussian_kl(m, lv).detach(),
    "log σ² detached in σ²": lambda m, lv: 0.5 * torch.sum(
        m**2 + torch.exp(lv.detach()) - 1.0 - lv, -1),
    "NumPy": lambda m, lv: 0.5 * np.sum(m**2 + np.exp(lv) - 1.0 - lv, axis=-1),
}

WRONG_ELBO = {
    "KL added": lambda lp, m, lv: lp + gaussian_kl(m, lv),
    "KL ignored": lambda lp, m, lv: lp,
    "log p(x|z) taken as -|log p(x|z)|": lambda lp, m, lv: -torch.abs(lp) - gaussian_kl(m, lv),
    "reduced to one number": lambda lp, m, lv: torch.sum(lp - gaussian_kl(m, lv)),
    "KL detached": lambda lp, m, lv: lp - gaussian_kl(m, lv).detach(),
    "reconstruction detached": lambda lp, m, lv: lp.detach() - gaussian_kl(m, lv),
}

WRONG_IWAE = {
    "mean of the log-weights (the ELBO)": lambda lw: lw.mean(1),
    "naive exp (underflows)": lambda lw: np.log(np.exp(lw).mean(1) + 0.0),
    "no 1/k": lambda lw: logsumexp(lw, axis=1),
    "maximum only": lambda lw: lw.max(1),
    "averaged over the wrong axis": lambda lw: logsumexp(lw, axis=0) - np.log(lw.shape[0]),
}


def _quiet(fn):
    """``fn`` with NumPy's overflow / divide-by-zero warnings silenced."""
    def wrapped(lw):
        with np.errstate(all="ignore"):
            return fn(lw)
    return wrapped


def _shifted(lw, m):
    """log-mean-exp of each row computed as m + log mean exp(lw - m), m of shape (N, 1) or ()."""
    m = np.broadcast_to(m, (lw.shape[0], 1)) if np.ndim(m) else np.full((lw.shape[0], 1), m)
    return m[:, 0] + np.log(np.exp(lw - m).mean(1))


# numerically unsafe log-sum-exps: right on rows of moderate, similar scales
UNSAFE_IWAE = {name: _quiet(fn) for name, fn in {
    "shifted by the maximum of the whole array": lambda lw: _shifted(lw, lw.max()),
    "shifted by the row minimum": lambda lw: _shifted(lw, lw.min(1, keepdims=True)),
    "shifted by the minimum of the whole array": lambda lw: _shifted(lw, lw.min()),
    "shifted by the row mean": lambda lw: _shifted(lw, lw.mean(1, keepdims=True)),
    "unshifted": lambda lw: np.log(np.exp(lw).mean(1)),
    "unshifted, eps added inside the log": lambda lw: np.log(np.exp(lw).mean(1) + 1e-12),
    "log-weights clamped to ±700": lambda lw: np.log(np.exp(np.clip(lw, -700, 700)).mean(1)),
}.items()}
WRONG_IWAE.update(UNSAFE_IWAE)


# ------------------------------------------------------------------ tests


@pytest.mark.parametrize(
    "check, right",
    [
        (checks.check_reparameterize, reparameterize),
        (checks.check_gaussian_kl, gaussian_kl),
        (checks.check_elbo, elbo),
        (checks.check_iwae, iwae_estimate),
    ],
)
def test_right_answers_pass_and_blanks_fail(check, right, capsys):
    check(right)
    assert capsys.readouterr().out.startswith("✔")
    with pytest.raises(GradingError, match=loose("not implemented")):
        check(blank)


@pytest.mark.parametrize("name", list(WRONG_REPARAMETERIZE))
def test_reparameterize_rejects_wrong_answers(name):
    with pytest.raises(GradingError):
        checks.check_reparameterize(WRONG_REPARAMETERIZE[name])


def test_reparameterize_hints():
    with pytest.raises(GradingError, match=loose("log σ² itself as the standard deviation")):
        checks.check_reparameterize(WRONG_REPARAMETERIZE["log σ² used as σ"])
    with pytest.raises(GradingError, match=loose("variance")):
        checks.check_reparameterize(WRONG_REPARAMETERIZE["variance used as σ"])
    for name in ("z drawn with torch.normal", "z drawn with Normal.sample()", "detached",
                 "computed under no_grad"):
        with pytest.raises(GradingError, match=loose("no gradient flows from z to `mean` or `log_var`")):
            checks.check_reparameterize(WRONG_REPARAMETERIZE[name])
    with pytest.raises(GradingError, match=loose("to `log_var`.*log_var was cut from the graph")):
        checks.check_reparameterize(WRONG_REPARAMETERIZE["log σ² detached"])
    with pytest.raises(GradingError, match=loose("to `mean`")):
        checks.check_reparameterize(WRONG_REPARAMETERIZE["μ detached"])
    for name in ("NumPy on the tensors", "returns a NumPy array"):
        with pytest.raises(GradingError, match=loose("PyTorch's functions")):
            checks.check_reparameterize(WRONG_REPARAMETERIZE[name])
    with pytest.raises(GradingError, match=loose("noise `eps` you are given")):
        checks.check_reparameterize(WRONG_REPARAMETERIZE["fresh noise with rsample()"])


def test_reparameterised_gradient_is_the_analytic_one():
    """What the check compares: for f(z) = Σ w sin(z), ∂f/∂μ = w cos z and
    ∂f/∂log σ² = w cos z · ε σ / 2, here from the right answer through autograd."""
    rng = np.random.default_rng(0)
    m, lv, e, w = (torch.tensor(rng.normal(size=(4, 3))) for _ in range(4))
    m.requires_grad_(True)
    lv.requires_grad_(True)
    z = reparameterize(m, lv, e)
    gm, glv = torch.autograd.grad((w * torch.sin(z)).sum(), (m, lv))
    sigma = torch.exp(0.5 * lv.detach())
    torch.testing.assert_close(gm, w * torch.cos(z.detach()))
    torch.testing.assert_close(glv, w * torch.cos(z.detach()) * e * sigma / 2)


@pytest.mark.parametrize("name", list(WRONG_KL))
def test_kl_rejects_wrong_answers(name):
    with pytest.raises(GradingError):
        checks.check_gaussian_kl(WRONG_KL[name])


def test_kl_hints():
    with pytest.raises(GradingError, match=loose("never negative")):
        checks.check_gaussian_kl(WRONG_KL["wrong sign"])
    with pytest.raises(GradingError, match=loose("log_var is log σ², not σ")):
        checks.check_gaussian_kl(WRONG_KL["log σ used as σ"])
    with pytest.raises(GradingError, match=loose("factor ½")):
        checks.check_gaussian_kl(WRONG_KL["no factor ½"])
    with pytest.raises(GradingError, match=loose("sum over the last axis")):
        checks.check_gaussian_kl(WRONG_KL["not summed"])
    with pytest.raises(GradingError, match=loose("to `log_var`")):
        checks.check_gaussian_kl(WRONG_KL["log σ² detached in σ²"])
    with pytest.raises(GradingError, match=loose("no gradient flows")):
        checks.check_gaussian_kl(WRONG_KL["detached"])
    with pytest.raises(GradingError, match=loose("PyTorch's functions")):
        checks.check_gaussian_kl(WRONG_KL["NumPy"])


@pytest.mark.parametrize("name", list(WRONG_ELBO))
def test_elbo_rejects_wrong_answers(name):
    with pytest.raises(GradingError):
        checks.check_elbo(WRONG_ELBO[name])


@pytest.mark.filterwarnings("ignore:divide by zero")
@pytest.mark.parametrize("name", list(WRONG_IWAE))
def test_iwae_rejects_wrong_answers(name):
    with pytest.raises(GradingError):
        checks.check_iwae(WRONG_IWAE[name])


@pytest.mark.filterwarnings("ignore:divide by zero")
def test_iwae_hints():
    with pytest.raises(GradingError, match=loose("ELBO")):
        checks.check_iwae(WRONG_IWAE["mean of the log-weights (the ELBO)"])
    with pytest.raises(GradingError, match=loose("log-sum-exp")):
        checks.check_iwae(WRONG_IWAE["naive exp (underflows)"])
    with pytest.raises(GradingError, match=loose("1/k")):
        checks.check_iwae(WRONG_IWAE["no 1/k"])


MIXED = [lw for lw in checks._iwae_cases() if np.ptp(lw.max(1)) > 1000]


def test_iwae_inputs_span_the_unsafe_regimes():
    cases = checks._iwae_cases()
    assert any(lw.shape[1] == 1 for lw in cases) and any(lw.shape[0] == 1 for lw in cases)
    assert len(MIXED) == 1
    (lw,) = MIXED
    centres = np.median(lw, axis=1)
    assert centres.min() < -900 and centres.max() > 900  # rows of very different scales
    assert np.ptp(lw, axis=1).max() >= 1000  # a row spread over 1000
    assert (np.abs(centres) < 100).any()  # and an ordinary row


@pytest.mark.parametrize("name", list(UNSAFE_IWAE))
def test_unsafe_iwae_rejected_on_rows_of_different_scales_alone(name, monkeypatch):
    """The array of rows of very different scales rejects each unsafe answer on its own."""
    monkeypatch.setattr(checks, "_iwae_cases", lambda: MIXED)
    checks.check_iwae(iwae_estimate)  # the right answer passes it
    with pytest.raises(GradingError):
        checks.check_iwae(UNSAFE_IWAE[name])


def test_unsafe_iwae_hints():
    with pytest.raises(GradingError, match=loose("-inf. Hint: .*shift EACH ROW by its own maximum")):
        checks.check_iwae(UNSAFE_IWAE["shifted by the maximum of the whole array"])
    with pytest.raises(GradingError, match=loose("inf. Hint: shift each row by its MAXIMUM, not")):
        checks.check_iwae(UNSAFE_IWAE["shifted by the row minimum"])
    with pytest.raises(GradingError, match=loose("infinite values.*Hint: .*log-sum-exp")):
        checks.check_iwae(UNSAFE_IWAE["unshifted"])
    with pytest.raises(GradingError, match=loose("is wrong.*Hint: use log-sum-exp.*EACH ROW")):
        checks.check_iwae(UNSAFE_IWAE["log-weights clamped to ±700"])


def test_kl_and_elbo_inputs_include_a_batch_of_one_and_positive_log_densities():
    assert any(lp.shape == (1,) for _, _, lp in checks._elbo_cases())
    assert any((lp > 0).any() and (lp < 0).any() for _, _, lp in checks._elbo_cases())


def test_elbo_hint_for_positive_log_densities():
    with pytest.raises(GradingError, match=loose("can be positive")):
        checks.check_elbo(WRONG_ELBO["log p(x|z) taken as -|log p(x|z)|"])


def test_elbo_gradient_hints():
    with pytest.raises(GradingError, match=loose("to `mean`")):
        checks.check_elbo(WRONG_ELBO["KL detached"])
    with pytest.raises(GradingError, match=loose("to `log_px_given_z`")):
        checks.check_elbo(WRONG_ELBO["reconstruction detached"])
