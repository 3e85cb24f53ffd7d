"""Checks for the exercises of the VAE chapter (``solutions/06_*.ipynb``).

Every check builds its own inputs (fixed seeds), runs the learner's function on them and
compares the result with the course's reference implementation in :mod:`course_lib.vae`.
Exercise 6.1 is written in PyTorch: its checks pass ``float64`` tensors that require a
gradient and compare the gradients (torch.autograd) too; exercise 6.2 takes NumPy arrays. A wrong answer raises :class:`~course_lib.grading.GradingError` with a
message that says what is wrong and, for the usual mistakes, why.

- :func:`check_reparameterize` — ``reparameterize(mean, log_var, eps)``, eq. (6.5) [vae-reparam]
- :func:`check_gaussian_kl`    — ``gaussian_kl(mean, log_var)``, eq. (6.4) [vae-kl]
- :func:`check_elbo`           — ``elbo(log_px_given_z, mean, log_var)``, eq. (6.3) [vae-elbo]
- :func:`check_iwae`           — ``iwae_estimate(log_weights)``, eq. (6.9) [vae-iwae]
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .. import vae
from . import (
    GradingError,
    _to_numpy,
    check_close,
    check_shape,
    grading_check,
    original,
    passed,
    protect,
    run_learner,
    run_seed,
)

protect(vae)

#: The course's own answers, which the learner's functions may not call (bound at import).
_REFERENCES = {
    "reparameterize": (original(vae, "reparameterize"),),
    "gaussian_kl": (original(vae, "gaussian_kl"),),
    "elbo": (original(vae, "elbo_terms"), original(vae, "gaussian_kl")),
    "iwae": (original(vae, "iwae_log_likelihood"),),
}

__all__ = ["check_reparameterize", "check_gaussian_kl", "check_elbo", "check_iwae"]


def _t(a) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64)


def _np(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float64)


def _gaussian_params(seed: int, n: int, d: int):
    rng = np.random.default_rng(seed)
    mean = rng.normal(size=(n, d)) * 1.5
    log_var = rng.normal(size=(n, d)) * 1.2  # negative and positive: σ < 1 and σ > 1
    return mean, log_var, rng


# ------------------------------------------------------------------ exercise 6.1
#
# The learner writes the three functions in PyTorch: the checks pass float64 tensors, with
# requires_grad on the inputs an encoder would produce (mean, log_var) and on log p(x|z), and
# compare both the values and the gradients (torch.autograd) with the reference's.


_NUMPY_HINT = ("use PyTorch's functions (torch.exp, tensor.sum(-1)) on the tensors you are "
               "given: NumPy cannot follow a tensor that requires a gradient, and converting "
               "to NumPy (.detach().numpy(), .item(), .tolist()) cuts the graph, so no "
               "gradient would reach the encoder")


def _leaf(a, grad: bool) -> torch.Tensor:
    return torch.tensor(np.asarray(a, dtype=np.float64), dtype=torch.float64, requires_grad=grad)


def _run_torch(fn, arrays, grad_args, weights, what: str, references=()):
    """Call the learner's ``fn`` on float64 tensors made from ``arrays`` (those at the
    positions ``grad_args`` require a gradient), then take the gradient of
    ``Σ weights ⊙ g(out)`` with ``g = sin`` for a (N, d) output and the identity for a (N,)
    one, with respect to those inputs.

    Returns ``(out, grads)``: ``out`` the learner's answer as a float64 array, ``grads`` a list
    of arrays, ``None`` where no gradient reaches that input. A GradingError when the answer is
    not a tensor, or has no gradient at all."""
    if not callable(fn):  # run_learner is given ``attempt``, which always is
        raise GradingError(f"{what} should be a function, got {type(fn).__name__}")

    def attempt(*arrs):
        tensors = [_leaf(a, i in grad_args) for i, a in enumerate(arrs)]
        try:
            out = fn(*tensors)
        except RuntimeError as exc:
            if "numpy" in str(exc).lower():
                raise GradingError(f"{what} failed with: {str(exc).rstrip('.')}. Hint: "
                                  f"{_NUMPY_HINT}") from exc
            raise
        return out, [tensors[i] for i in grad_args]

    out, inputs = run_learner(attempt, *arrays, what=what, references=references)
    if out is None:
        raise GradingError(f"{what} is None: did you forget a `return`?")
    if type(out) is not torch.Tensor:  # a subclass would run the learner's code here
        raise GradingError(f"{what} returned a {type(out).__name__}, expected a torch tensor. "
                           f"Hint: {_NUMPY_HINT}")
    values = _to_numpy(out, what)
    if values.shape != weights.shape:
        return values, None  # the caller reports the shape
    if not out.requires_grad:
        return values, [None] * len(inputs)
    grads = _weighted_grads(out, inputs, weights)
    return values, [None if gr is None else _np(gr) for gr in grads]


def _weighted_grads(out: torch.Tensor, inputs, weights) -> tuple:
    """The gradients of ``Σ weights ⊙ g(out)`` (``g = sin`` for a (N, d) output, the identity
    for a (N,) one) with respect to ``inputs``; ``None`` where none reaches an input."""
    g = torch.sin(out) if out.ndim == 2 else out
    return torch.autograd.grad((g * torch.as_tensor(weights, dtype=out.dtype)).sum(), inputs,
                               allow_unused=True)


def _reference_grads(fn, arrays, grad_args, weights):
    tensors = [_leaf(a, i in grad_args) for i, a in enumerate(arrays)]
    out = fn(*tensors)
    grads = _weighted_grads(out, [tensors[i] for i in grad_args], weights)
    return _np(out), [_np(gr) for gr in grads]


def _check_grads(got, expected, names, what, hints):
    """Compare each gradient; ``hints[name]`` is called with (got, expected) for a message."""
    for g, e, name in zip(got, expected, names):
        if g is None or not np.any(g):
            raise GradingError(
                f"no gradient flows from {what} to `{name}` (its gradient is "
                f"{'missing' if g is None else 'zero'}): the encoder that produced `{name}` "
                f"would never learn. Hint: {hints.get(name + ':none', _DETACH_HINT)}")
        check_close(g, e, f"the gradient of {what} with respect to `{name}`", rtol=1e-6,
                    atol=1e-8, hint=hints.get(name, ""))


_DETACH_HINT = ("Compute the answer from the tensors you are given with differentiable "
                "PyTorch operations; .detach(), torch.no_grad(), .data, torch.tensor(x) on a "
                "tensor, or a round trip through NumPy all cut the graph")


@grading_check
def check_reparameterize(reparameterize) -> None:
    """Check ``reparameterize(mean, log_var, eps) -> z`` in PyTorch: z = μ + σ ⊙ ε with
    σ = exp(log_var / 2), eq. (6.5) [vae-reparam], in value and in gradient.

    ``mean`` and ``log_var`` are float64 tensors that require a gradient; the check
    back-propagates Σ w ⊙ sin(z) (random weights w) and compares the gradients with respect to
    ``mean`` and ``log_var`` with the reference's. A z drawn afresh (``torch.normal``,
    ``Normal(...).sample()``: no gradient, or zero), a detached one, σ² or log σ² in place of
    σ, and NumPy arithmetic are rejected with a hint."""
    what = "reparameterize(mean, log_var, eps)"
    drawn = np.random.default_rng(run_seed())  # one case drawn per run
    cases = ((601, (5, 3)), (602, (40, 8)), (603, (1, 2)),
             (int(drawn.integers(2**31)), (int(drawn.integers(1, 20)), int(drawn.integers(1, 9)))))
    for seed, (n, d) in cases:
        mean, log_var, rng = _gaussian_params(seed, n, d)
        eps = rng.normal(size=(n, d))
        w = rng.normal(size=(n, d))
        expected, ref_grads = _reference_grads(vae.reparameterize, (mean, log_var, eps),
                                               (0, 1), w)
        got, grads = _run_torch(reparameterize, (mean, log_var, eps), (0, 1), w, what,
                                _REFERENCES["reparameterize"])
        got = check_shape(got, (n, d), what, finite=True)
        if grads is not None and all(g is None or not np.any(g) for g in grads):
            raise GradingError(
                f"{what}: no gradient flows from z to `mean` or `log_var` (the gradients are "
                f"{'missing' if grads[0] is None else 'zero'}), so the encoder could not learn "
                "from the reconstruction. Hint: do not draw z itself (torch.normal(mean, std) "
                "and Normal(...).sample() have no gradient with respect to the mean and the "
                "standard deviation); build it from the given noise, z = mean + sigma * eps: "
                "the randomness sits in eps, which depends on no parameter, so z is a "
                f"differentiable function of them. Not .detach() or torch.no_grad() either")
        hint = ""
        if np.allclose(got, mean + log_var * eps):
            hint = ("you used log σ² itself as the standard deviation; σ = exp(log σ² / 2) "
                    "(a log-variance can be negative, a standard deviation cannot)")
        elif np.allclose(got, mean + np.exp(log_var) * eps):
            hint = "exp(log_var) is the variance σ²; the noise is scaled by σ = exp(log_var / 2)"
        elif np.allclose(got, mean + np.exp(0.5 * log_var)):
            hint = "the noise eps is missing: z = mean + sigma * eps"
        else:
            hint = ("build z from the noise `eps` you are given, z = mean + exp(log_var / 2) "
                    "* eps; a fresh draw (Normal(mean, std).rsample(), torch.randn_like) "
                    "gives other values")
        check_close(got, expected, what, rtol=1e-6, atol=1e-8, hint=hint)
        _check_grads(grads, ref_grads, ("mean", "log_var"), "z", {
            "log_var": "dz/d(log σ²) = ε σ / 2: the standard deviation is exp(log_var / 2), "
                       "computed from log_var inside the graph",
            "log_var:none": "log_var was cut from the graph (detached, or σ computed outside "
                            "PyTorch): the encoder's variance would never be trained. "
                            + _DETACH_HINT,
        })
    passed("reparameterize: z = μ + σ ⊙ ε with σ = exp(log σ² / 2), and the gradient reaches "
           "μ and log σ²")


@grading_check
def check_gaussian_kl(gaussian_kl) -> None:
    """Check ``gaussian_kl(mean, log_var) -> (N,)`` in PyTorch: KL(N(μ, diag σ²) ‖ N(0, I)) in
    closed form, summed over the latent dimensions, eq. (6.4) [vae-kl], in value and in its
    gradient with respect to ``mean`` and ``log_var`` (∂KL/∂μ = μ, ∂KL/∂log σ² = (σ² − 1)/2)."""
    what = "gaussian_kl(mean, log_var)"
    cases = [_gaussian_params(611, 6, 2)[:2], _gaussian_params(612, 30, 10)[:2],
             (np.zeros((2, 4)), np.zeros((2, 4))),  # q = p: KL = 0
             _gaussian_params(613, 1, 3)[:2],  # a batch of one: still shape (1,)
             _gaussian_params(run_seed() % 2**31, 7, 5)[:2]]  # drawn per run
    w_rng = np.random.default_rng(614)
    for mean, log_var in cases:
        n, d = mean.shape
        w = w_rng.uniform(0.5, 1.5, size=n)
        expected, ref_grads = _reference_grads(vae.gaussian_kl, (mean, log_var), (0, 1), w)
        got, grads = _run_torch(gaussian_kl, (mean, log_var), (0, 1), w, what,
                                _REFERENCES["gaussian_kl"])
        if np.shape(got) == (n, d):
            raise GradingError(f"{what} returned shape {(n, d)}, one value per latent "
                               f"dimension: sum over the last axis to get one KL per sample "
                               f"(shape ({n},))")
        got = check_shape(got, (n,), what, finite=False)
        if not np.all(np.isfinite(got)):
            raise GradingError(f"{what} contains NaN or infinite values. Hint: the KL takes "
                               "log σ² directly (log_var), never the log of something that "
                               "can be negative")
        hint = ""
        with np.errstate(divide="ignore", invalid="ignore"):
            log_var_as_sigma = 0.5 * (mean**2 + log_var**2 - 1 - np.log(log_var**2)).sum(1)
        if np.any(got < -1e-9):
            hint = ("a KL divergence is never negative: check the sign of every term "
                    "(½ Σ (μ² + σ² − 1 − log σ²))")
        elif np.allclose(got, log_var_as_sigma):
            hint = ("log_var is log σ², not σ: the variance is σ² = exp(log_var) and the last "
                    "term is log_var itself")
        elif np.allclose(got, 2 * expected):
            hint = "you forgot the factor ½"
        elif np.allclose(got, 0.5 * (mean**2 + np.exp(0.5 * log_var) - 1 - 0.5 * log_var).sum(1)):
            hint = "σ² = exp(log_var), not exp(log_var / 2) (that is σ)"
        check_close(got, expected, what, rtol=1e-6, atol=1e-9, hint=hint)
        if np.any(mean) or np.any(log_var):  # at q = p both gradients are 0: nothing to check
            _check_grads(grads, ref_grads, ("mean", "log_var"), "the KL", {
                "mean": "∂KL/∂μ = μ", "log_var": "∂KL/∂(log σ²) = (σ² − 1) / 2"})
    passed("gaussian_kl: ½ Σ (μ² + σ² − 1 − log σ²), zero when q = p, with its gradient")


def _elbo_cases():
    """(mean, log_var, log_px_given_z) for :func:`check_elbo`: log-likelihoods of a discrete
    decoder (all negative); log-densities of a continuous one, which are positive where the
    density exceeds 1 (both signs); a batch of one."""
    cases = []
    for seed, n, d in ((621, 12, 4), (622, 8, 3), (623, 1, 3)):
        mean, log_var, rng = _gaussian_params(seed, n, d)
        log_px = -rng.uniform(20, 80, size=n) if seed == 621 else rng.normal(5, 15, size=n)
        cases.append((mean, log_var, log_px))
    return cases


@grading_check
def check_elbo(elbo) -> None:
    """Check ``elbo(log_px_given_z, mean, log_var) -> (N,)`` in PyTorch: reconstruction minus
    the closed-form KL, eq. (6.3) [vae-elbo], on the cases of :func:`_elbo_cases`, in value and
    in its gradient with respect to all three inputs (the decoder's term and the encoder's
    outputs)."""
    what = "elbo(log_px_given_z, mean, log_var)"
    w_rng = np.random.default_rng(624)
    r_mean, r_log_var, rng = _gaussian_params(run_seed() % 2**31, 6, 4)  # drawn per run
    drawn = (r_mean, r_log_var, rng.normal(0, 30, size=6))
    for mean, log_var, log_px in [*_elbo_cases(), drawn]:
        n = len(log_px)
        w = w_rng.uniform(0.5, 1.5, size=n)
        expected, ref_grads = _reference_grads(
            lambda lp, m, lv: vae.elbo_terms(lp, m, lv)[0], (log_px, mean, log_var),
            (0, 1, 2), w)
        got, grads = _run_torch(elbo, (log_px, mean, log_var), (0, 1, 2), w, what,
                                _REFERENCES["elbo"])
        got = check_shape(got, (n,), what, finite=True)
        kl = _np(vae.gaussian_kl(_t(mean), _t(log_var)))
        hint = ""
        if np.allclose(got, log_px + kl):
            hint = "the KL is subtracted: ELBO = E_q[log p(x|z)] − KL(q ‖ p)"
        elif (log_px > 0).any() and np.allclose(got, -np.abs(log_px) - kl):
            hint = ("log p(x|z) is a log-density for continuous data and can be positive: "
                    "use it as it is, ELBO = log_px_given_z − KL")
        check_close(got, expected, f"{what} for log p(x|z) from {log_px.min():.3g} to "
                    f"{log_px.max():.3g} (batch of {n})", rtol=1e-6, atol=1e-8, hint=hint)
        _check_grads(grads, ref_grads, ("log_px_given_z", "mean", "log_var"), "the ELBO", {})
    passed("elbo: reconstruction − KL, with the gradient reaching the decoder's term and the "
           "encoder's outputs")


# ------------------------------------------------------------------ exercise 6.2


def _iwae_cases():
    """The log-weight arrays (N, k) :func:`check_iwae` runs on (seed 631).

    Ordinary rows; a single sample (k = 1, the estimate is the log-weight itself); rows around
    −3000 (every exp() underflows to 0 in float64); rows of very different scales in one
    array: around −1000, around +1000, one spread over 1500 within the row (one log-weight of
    0, the others from −1500 to −1000) and an ordinary one; a single row (N = 1) spread over
    more than 1500. On the mixed array a log-sum-exp shifted by the maximum of the whole
    array gives −inf for the row at −1000, one shifted by the row minimum (or mean) overflows
    on the spread row, and an unshifted one gives −inf and inf.
    """
    rng = np.random.default_rng(631)
    cases = [rng.normal(size=(5, 10)) * 2 - 40,
             rng.normal(size=(3, 1)) - 50,
             rng.normal(size=(4, 200)) * 5 - 3000]
    mixed = np.stack([rng.normal(size=50) * 3 - 1000,
                      rng.normal(size=50) * 3 + 1000,
                      np.concatenate([[0.0], rng.uniform(-1500, -1000, size=49)]),
                      rng.normal(size=50) * 2 - 40])
    return cases + [mixed, rng.normal(size=(1, 30)) * 400 + 300]


def _unstable_hint(got: np.ndarray, lw: np.ndarray) -> str:
    """The hint for a non-finite or wrong IWAE estimate: which unstable log-sum-exp it is."""
    k = lw.shape[1]
    unshifted = ("in float64 exp(lw) is 0 below about −745 and inf above about 709: use "
                 "log-sum-exp, m + log Σ exp(lw − m) − log k with m the maximum of each row")
    with np.errstate(all="ignore"):
        gmax = lw.max()
        candidates = [
            ("shifted by the maximum of the whole array", gmax + np.log(np.exp(lw - gmax).mean(1)),
             "the rows have very different scales (one near −1000, one near +1000): shift "
             "EACH ROW by its own maximum, m = log_weights.max(axis=1, keepdims=True)"),
            ("shifted by the row minimum",
             lw.min(1) + np.log(np.exp(lw - lw.min(1, keepdims=True)).mean(1)),
             "shift each row by its MAXIMUM, not its minimum: exp(lw − min) overflows when a "
             "row spreads over more than about 700, while exp(lw − max) lies in (0, 1]"),
            ("unshifted", np.log(np.exp(lw).mean(1)), unshifted),
            ("averaged unshifted", np.log(np.exp(lw).sum(1)) - math.log(k), unshifted),
        ]
    for _, value, hint in candidates:
        if not np.all(np.isfinite(value)) and np.allclose(got, value, equal_nan=True):
            return hint
    return ("use log-sum-exp, m + log Σ exp(lw − m) − log k with m the maximum of EACH ROW "
            "(in float64 exp(lw) is 0 below about −745 and inf above about 709; a clamp or an "
            "eps inside the log changes the result)")


def _rows(lw: np.ndarray) -> str:
    lo, hi = lw.min(1), lw.max(1)
    return "; ".join(f"row {i}: {a:.0f} to {b:.0f}" for i, (a, b) in enumerate(zip(lo, hi)))


@grading_check
def check_iwae(iwae_estimate) -> None:
    """Check ``iwae_estimate(log_weights) -> (N,)``: log (1/k) Σ_i w_i from log-weights of shape
    (N, k), computed stably, eq. (6.9) [vae-iwae].

    The cases (:func:`_iwae_cases`) include log-weights around −3000 (every exp() underflows
    to 0 in float64), rows of very different scales in one array (around −1000, around
    +1000, spread over 1000 within a row), a single sample (k = 1, where the estimate is the
    log-weight itself) and a single row.
    """
    what = "iwae_estimate(log_weights)"
    drawn = np.random.default_rng(run_seed())  # one array drawn per run
    random_case = (drawn.normal(size=(int(drawn.integers(1, 6)), int(drawn.integers(1, 40))))
                   * drawn.uniform(1, 300) + drawn.uniform(-2000, 2000))
    for lw in [*_iwae_cases(), random_case]:
        n, k = lw.shape
        expected = _np(vae.iwae_log_likelihood(_t(lw)))
        got = run_learner(iwae_estimate, lw.copy(), what=what, references=_REFERENCES["iwae"])
        got = check_shape(got, (n,), what)
        inputs = f"log-weights of shape {lw.shape} ({_rows(lw)})"
        if not np.all(np.isfinite(got)):
            bad = int(np.argmax(~np.isfinite(got)))
            raise GradingError(
                f"{what} contains NaN or infinite values for {inputs}: row {bad} gives "
                f"{got[bad]}. Hint: {_unstable_hint(got, lw)}")
        hint = ""
        if np.allclose(got, lw.mean(1)):
            hint = ("that is the mean of the log-weights (the ELBO); IWAE takes the log of the "
                    "mean of the weights")
        elif np.allclose(got, expected + math.log(k)):
            hint = "you forgot the 1/k: subtract log k"
        elif np.allclose(got, lw.max(1)):
            hint = "the maximum alone is not the log-mean-exp: add log Σ exp(lw − max) − log k"
        elif np.abs(lw).max() > 700:
            hint = _unstable_hint(got, lw)
        check_close(got, expected, f"{what} for {inputs}", rtol=1e-9, atol=1e-8, hint=hint)
    passed("iwae_estimate: log-mean-exp of the importance weights, stable far from 0 and for "
           "rows of very different scales")
