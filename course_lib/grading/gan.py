"""Checks for the exercises of the GAN chapter (``solutions/05_*.ipynb``).

Every check builds its own inputs (fixed seeds), runs the learner's function on them and
compares the result with the course's reference implementation in :mod:`course_lib.gan`. A
wrong answer raises :class:`~course_lib.grading.GradingError` with a message that says what is
wrong and, for the usual mistakes (a sign error, the saturating loss where the non-saturating
one is asked, ``log(sigmoid(...))`` that overflows), why.

- :func:`check_discriminator_loss` — ``discriminator_loss(real_logits, fake_logits)``, eq. (5.2) [gan-d-loss]
- :func:`check_generator_losses`   — ``generator_loss_minimax(fake_logits)`` and
  ``generator_loss_ns(fake_logits)``, eq. (5.6) [gan-g-loss]
- :func:`check_train_step`         — ``train_step(G, D, opt_g, opt_d, x_real, z)``: one
  discriminator step and one non-saturating generator step
"""

from __future__ import annotations

import copy

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .. import gan
from . import (
    GradingError,
    as_number,
    check_close,
    check_tuple,
    grading_check,
    original,
    passed,
    protect,
    run_learner,
    run_seed,
)

protect(gan)

#: The course's own answers, which the learner's functions may not call (bound at import).
_REFERENCES = {
    "losses": (original(gan, "discriminator_loss"),
               original(gan, "generator_loss")),
    "step": (original(gan, "train_step"),),
}

__all__ = ["check_discriminator_loss", "check_generator_losses", "check_train_step"]


def _logit_cases():
    """(name, real_logits, fake_logits): the logits each loss check runs on.

    Ordinary logits; a discriminator that is very sure and right; a discriminator that is very
    sure in both directions (logits of ±50, ±200 and ±1000 in BOTH batches, in float64 and in
    float32, the dtype of a network's output); batches of a single sample. The large logits
    are where a numerically unsafe answer differs from the right one: ``sigmoid(l)`` rounds to
    exactly 0 or 1 from ``|l|`` about 37 in float64 (17 in float32), so a naive
    ``log(sigmoid(l))`` or ``log(1 - sigmoid(l))`` gives ``-inf``, ``exp(l)`` overflows from
    ``l`` about 709 (89 in float32), and a clamp or an eps inside the log caps the loss. The
    reference stays finite on all of them.
    """
    gen = torch.Generator().manual_seed(501)
    f64 = torch.float64
    ordinary = (torch.randn(64, generator=gen, dtype=f64) * 2.0 + 0.5,
                torch.randn(48, generator=gen, dtype=f64) * 2.0 - 1.0)
    sure = (torch.tensor([40.0, 150.0, 800.0, 2.0], dtype=f64),
            torch.tensor([-800.0, -150.0, -40.0, 1.0, 750.0], dtype=f64))
    large = [-1000.0, -200.0, -50.0, 50.0, 200.0, 1000.0]
    real, fake = large + [0.3], [-v for v in large] + [-0.7, 2.5]
    cases = [("ordinary logits", *ordinary),
             ("a discriminator that is very sure (logits up to ±800)", *sure)]
    for dtype in (torch.float64, torch.float32):
        cases.append((f"{str(dtype)[6:]} logits of ±50, ±200 and ±1000 in both batches",
                      torch.tensor(real, dtype=dtype), torch.tensor(fake, dtype=dtype)))
    cases += [("batches of one sample", torch.tensor([0.8], dtype=f64),
               torch.tensor([-1.3], dtype=f64)),
              ("float32 batches of one sample, logits -200 (real) and 150 (generated)",
               torch.tensor([-200.0], dtype=torch.float32),
               torch.tensor([150.0], dtype=torch.float32))]
    try:
        seed = run_seed()
    except RuntimeError:  # called outside a check (a test listing the cases)
        return cases
    drawn = torch.Generator().manual_seed(seed)  # batches drawn per run
    n_real, n_fake = (int(v) for v in torch.randint(2, 40, (2,), generator=drawn))
    cases.append(("logits drawn at random", torch.randn(n_real, generator=drawn, dtype=f64) * 3,
                  torch.randn(n_fake, generator=drawn, dtype=f64) * 3 - 1))
    return cases


def _large(*logits) -> bool:
    """Whether the logits reach the range where sigmoid rounds to 0 or 1."""
    return any(t.abs().max().item() > 30 for t in logits)


def _tolerance(*logits) -> float:
    """rtol of a value computed in the logits' dtype against the float64 reference."""
    return 1e-5 if any(t.dtype == torch.float32 for t in logits) else 1e-6


def _scalar(value, what: str) -> torch.Tensor:
    if value is None:
        raise GradingError(f"{what} is None: did you forget a `return`?")
    if not isinstance(value, torch.Tensor):
        raise GradingError(f"{what} should be a torch tensor (a 0-d loss you can backpropagate), "
                           f"got {type(value).__name__}")
    if value.numel() != 1:
        raise GradingError(f"{what} should be a single number (average over the batch), got a "
                           f"tensor of shape {tuple(value.shape)}")
    return value.reshape(())


_STABLE_HINT = ("log(sigmoid(l)) overflows: for large |l| sigmoid(l) is exactly 0 or 1 in "
                "floating point (from |l| about 37 in float64, 17 in float32) and its log is "
                "-inf; exp(l) is inf from l about 709 (89 in float32). Use "
                "log(sigmoid(l)) = -softplus(-l) and log(1 - sigmoid(l)) = -softplus(l) "
                "(torch.nn.functional.softplus, or F.logsigmoid)")

_CAPPED_HINT = ("right for moderate logits, but each term is capped for large ones: a clamp "
                "or an eps inside the log (log(sigmoid(l) + eps), sigmoid(l).clamp(...), "
                "F.binary_cross_entropy, which clamps the log at -100) gives the wrong loss "
                "and no gradient there. Compute log(sigmoid(l)) as -softplus(-l) (F.logsigmoid) "
                "and log(1 - sigmoid(l)) as -softplus(l)")

_GRAD_HINT = ("a NaN or infinite gradient with a finite loss usually comes from torch.where "
              "over a branch that overflows (exp of a large logit): torch differentiates both "
              "branches. Use F.softplus / F.logsigmoid, which are stable")


def _capped_d_loss(r: torch.Tensor, f: torch.Tensor, got: float) -> bool:
    """Whether ``got`` is the discriminator loss with an eps inside the log or a clamp of the
    probabilities (eps from 1e-12 to 0.1): what a learner writes to avoid log(0)."""
    with torch.no_grad():
        pr, pf = torch.sigmoid(r), torch.sigmoid(f)
        for eps in (1e-12, 1e-10, 1e-8, 1e-7, 1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1):
            forms = (-(torch.log(pr + eps).mean() + torch.log(1 - pf + eps).mean()),
                     -(torch.log(pr.clamp(eps, 1 - eps)).mean()
                       + torch.log((1 - pf).clamp(eps, 1 - eps)).mean()),
                     -(torch.log(pr.clamp(min=eps)).mean()
                       + torch.log((1 - pf).clamp(min=eps)).mean()))
            if any(np.isclose(got, v.item(), rtol=1e-7, atol=1e-12) for v in forms):
                return True
    return False


def _value_and_grads(fn, what, name, *logits):
    """Run ``fn`` on copies of ``logits`` that require grad; return (value, grads).

    :func:`call_learner` hands the learner copies of its inputs, so the gradient is taken
    inside the call, with respect to the very tensors the learner received.
    """

    def run(*inputs):
        inputs = [t.requires_grad_(True) for t in inputs]
        out = _scalar(fn(*inputs), what)
        if not torch.isfinite(out):
            raise GradingError(f"{what} is {out.item()} for {name}. Hint: {_STABLE_HINT}")
        if not out.requires_grad:
            raise GradingError(f"{what} does not depend on its inputs through torch operations "
                               "(no gradient can flow): compute it with torch functions, without "
                               ".item(), .detach() or NumPy")
        grads = torch.autograd.grad(out, inputs, allow_unused=True)
        grads = [torch.zeros_like(t) if g is None else g for t, g in zip(inputs, grads)]
        return out.detach(), grads

    return run_learner(run, *logits, what=what, references=_REFERENCES["losses"],
                       arg_names=[f"logits {i + 1}" for i in range(len(logits))])


def _reference_loss(loss, logits, *args):
    """The reference ``loss(*logits, *args)`` on float64 copies of ``logits``: (its value, its
    gradients with respect to them)."""
    leaves = [t.double().requires_grad_(True) for t in logits]
    value = loss(*leaves, *args)
    return value.item(), torch.autograd.grad(value, leaves)


def _compare_loss(what: str, name: str, logits, got, expected, hint: str, wrt) -> None:
    """Compare the learner's loss on ``logits`` (the case ``name``) and its gradients, ``got``
    = (value, gradients), with the reference's ``expected``; ``hint`` is the value's; ``wrt``
    names the logits of each gradient (" w.r.t. real_logits"; "" where there is one)."""
    short = what.split("(")[0]  # the first line of the message stays short
    check_close(got[0], expected[0], f"{short} for {name}", rtol=_tolerance(*logits), atol=1e-9,
                hint=hint)
    for gr, eg, which in zip(got[1], expected[1], wrt):
        check_close(gr.double().numpy(), eg.numpy(), f"the gradient of {short}{which} for {name}",
                    rtol=1e-5, atol=1e-9, hint=_GRAD_HINT if not torch.isfinite(gr).all() else
                    (_CAPPED_HINT if _large(*logits) else ""))


@grading_check
def check_discriminator_loss(discriminator_loss) -> None:
    """Check ``discriminator_loss(real_logits, fake_logits) -> 0-d tensor``, eq. (5.2) [gan-d-loss].

    The loss is ``-V``: the mean over real logits of ``softplus(-l)`` plus the mean over fake
    logits of ``softplus(l)``. Value and gradients are compared with
    :func:`course_lib.gan.discriminator_loss` (in float64) on the cases of
    :func:`_logit_cases`: logits of both signs up to ±1000 in each batch, in float64 and
    float32, where the naive ``log(sigmoid(...))`` gives infinity and a clamped log a capped
    loss, and batches of one sample.
    """
    what = "discriminator_loss(real_logits, fake_logits)"
    for name, real, fake in _logit_cases():
        e, exp_grads = _reference_loss(gan.discriminator_loss, (real, fake))
        got, grads = _value_and_grads(discriminator_loss, what, name, real, fake)
        r, f, g = real.double(), fake.double(), got.item()
        rtol = _tolerance(real, fake)
        if np.isclose(g, -e, rtol=rtol, atol=1e-9) and abs(e) > 1e-6:
            hint = ("wrong sign: that is V(D, G), which the discriminator MAXIMISES; its loss "
                    "(minimised by gradient descent) is -V")
        elif np.isclose(g, (F.softplus(r).mean() + F.softplus(-f).mean()).item(), rtol=rtol):
            hint = ("real and generated are swapped: real samples have label 1 "
                    "(loss softplus(-l)), generated ones label 0 (loss softplus(l))")
        elif np.isclose(g, (F.softplus(-r).sum() + F.softplus(f).sum()).item(), rtol=rtol):
            hint = "average over each batch (mean), do not sum"
        elif _capped_d_loss(r, f, g) or (_large(real, fake) and abs(g) < abs(e)):
            hint = _CAPPED_HINT
        elif np.isclose(g, torch.cat([F.softplus(-r), F.softplus(f)]).mean().item(), rtol=rtol):
            hint = ("you averaged over the two batches together; average each batch "
                    "separately: mean(softplus(-real_logits)) + mean(softplus(fake_logits))")
        else:
            hint = ("L_D = mean(softplus(-real_logits)) + mean(softplus(fake_logits)); the two "
                    "batches may have different sizes, so average each one separately")
        _compare_loss(what, name, (real, fake), (g, grads), (e, exp_grads), hint,
                      (" w.r.t. real_logits", " w.r.t. fake_logits"))
    passed(f"{what} matches course_lib.gan.discriminator_loss, logits up to ±1000 in float64 "
           "and float32 and batches of one included")


@grading_check
def check_generator_losses(generator_loss_minimax, generator_loss_ns) -> None:
    """Check both generator losses of eq. (5.6) [gan-g-loss] on fake logits.

    ``generator_loss_minimax(fake_logits)``: ``mean(log(1 - D)) = -mean(softplus(l))``, the
    generator's part of V, minimised. ``generator_loss_ns(fake_logits)``:
    ``-mean(log D) = mean(softplus(-l))``. Values and gradients are compared with
    :func:`course_lib.gan.generator_loss` (in float64) on the fake logits of
    :func:`_logit_cases` (both signs up to ±1000, float64 and float32, a batch of one); each
    is checked against the other's formula so that the saturating loss is not accepted where
    the non-saturating one is asked.
    """
    funcs = {"minimax": ("generator_loss_minimax(fake_logits)", generator_loss_minimax),
             "non-saturating": ("generator_loss_ns(fake_logits)", generator_loss_ns)}
    for kind, (what, fn) in funcs.items():
        other = "non-saturating" if kind == "minimax" else "minimax"
        for name, _, fake in _logit_cases():
            e, exp_grads = _reference_loss(gan.generator_loss, (fake,), kind)
            got, grads = _value_and_grads(fn, what, name, fake)
            g, rtol = got.item(), _tolerance(fake)
            alt = gan.generator_loss(fake.double(), other).item()
            if np.isclose(g, alt, rtol=rtol, atol=1e-9) and not np.isclose(e, alt, rtol=rtol):
                hint = (f"that is the {other} loss. " + (
                    "The non-saturating loss is -mean(log D(G(z))) = mean(softplus(-l)); the "
                    "minimax one, mean(log(1 - D(G(z)))), saturates: its gradient -D vanishes "
                    "when D rejects the samples" if kind == "non-saturating" else
                    "The minimax loss is the generator's part of V: mean(log(1 - D(G(z)))) "
                    "= -mean(softplus(l))"))
            elif np.isclose(g, -e, rtol=rtol, atol=1e-9):
                hint = ("wrong sign: the generator MINIMISES this loss with gradient descent" +
                        (": mean(log(1 - D)) is negative" if kind == "minimax" else
                         ": -mean(log D) is positive"))
            elif np.isclose(g, -alt, rtol=rtol, atol=1e-9):
                hint = (f"that is minus the {other} loss: check which of log D and log(1 - D) "
                        "the loss uses")
            elif _large(fake) and abs(g) < abs(e):
                hint = _CAPPED_HINT
            else:
                hint = ("minimax: -mean(softplus(l)); non-saturating: mean(softplus(-l))")
            _compare_loss(what, name, (fake,), (g, grads), (e, exp_grads), hint, ("",))
    passed("both generator losses match course_lib.gan.generator_loss, with their gradients, "
           "logits up to ±1000 in float64 and float32 included")


# ------------------------------------------------------------------ exercise 2: one step


def _tiny_networks(seed: int, scale: float = 1.0, shift: float = 0.0):
    """Small G and D (float64); D's last layer multiplied by ``scale`` and its bias moved by
    ``shift``: a discriminator that is very sure, whose logits reach the range where a
    naive ``log(sigmoid(l))`` gives -inf and a clamped log a wrong gradient."""
    torch.manual_seed(seed)
    G = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 2))
    D = nn.Sequential(nn.Linear(2, 16), nn.LeakyReLU(0.2), nn.Linear(16, 1))
    with torch.no_grad():
        D[-1].weight.mul_(scale)
        D[-1].bias.mul_(scale).add_(shift)
    return G.double(), D.double()


#: (seed, scale, shift, description) of the networks check_train_step runs: two ordinary
#: pairs, a discriminator that is very sure (logits from about -20 to 130) and one sure in
#: both directions (logits from about -1200 to 1800, in both batches)
_STEP_NETWORKS = ((503, 1.0, 0.0, "ordinary networks"),
                  (504, 1.0, 0.0, "ordinary networks"),
                  (508, 300.0, 0.0, "a very sure discriminator (logits up to about 130)"),
                  (508, 6000.0, -800.0, "a discriminator sure in both directions (logits "
                                        "beyond ±800 in both batches)"))


def _reference_step(G, D, opt_g, opt_d, x_real, z):
    """The library's own step, ``course_lib.gan.train_step`` (what ``GAN.fit`` repeats), with
    no labels and no R1 penalty: the exercise's step."""
    out = gan.train_step(G, D, opt_g, opt_d, x_real, z)
    return out["loss_d"].item(), out["loss_g"].item()


def _flat_params(net) -> np.ndarray:
    return torch.cat([p.detach().flatten() for p in net.parameters()]).numpy()


@grading_check
def check_train_step(train_step) -> None:
    """Check ``train_step(G, D, opt_g, opt_d, x_real, z) -> (loss_d, loss_g)``.

    One discriminator step on ``discriminator_loss(D(x_real), D(G(z)))`` (the generated batch
    detached), then one generator step on the non-saturating loss of the UPDATED
    discriminator's logits, each optimiser zeroing its gradients first. Two consecutive steps
    on small networks (with Adam) are compared parameter by parameter with the reference;
    the returned losses are those of the two steps, as floats.
    """
    what = "train_step(G, D, opt_g, opt_d, x_real, z)"
    gen = torch.Generator().manual_seed(502)
    drawn = (run_seed() % 2**31, 1.0, 0.0, "networks drawn at random")  # new on every run
    for seed, scale, shift, networks in (*_STEP_NETWORKS, drawn):
        G, D = _tiny_networks(seed, scale, shift)
        G_ref, D_ref = copy.deepcopy(G), copy.deepcopy(D)
        opts = [torch.optim.Adam(n.parameters(), lr=1e-2, betas=(0.5, 0.999))
                for n in (G, D, G_ref, D_ref)]
        for t in range(2):
            x_real = torch.randn(32, 2, generator=gen, dtype=torch.float64) * 0.5 + 1.0
            z = torch.randn(32, 3, generator=gen, dtype=torch.float64)
            expected = _reference_step(G_ref, D_ref, opts[2], opts[3], x_real, z)
            got = _learner_step(train_step, (G, D, opts[0], opts[1]), x_real, z, what)
            step = f"step {t + 1} ({networks}, seeded {seed})"
            _check_one_step(what, step, got, expected, (G, D, G_ref, D_ref), z,
                            capped=scale != 1.0, second=t == 1)
    passed(f"{what} updates both networks exactly like the reference, two steps in a row, "
           "very sure discriminators included")


def _learner_step(train_step, models, x_real, z, what: str) -> tuple[float, float]:
    """One call of the learner's ``train_step`` on ``models`` (G, D, opt_g, opt_d); its
    ``(loss_d, loss_g)`` as two floats.

    The networks and optimisers are passed by closure: :func:`run_learner` copies its
    arguments, and the learner's step must update THESE networks."""
    result = run_learner(lambda x_real, z: train_step(*models, x_real, z), x_real, z,
                         what=what, references=_REFERENCES["step"])
    names = ("loss_d", "loss_g")
    return tuple(as_number(v, f"{name} returned by train_step")
                 for v, name in zip(check_tuple(result, names, what), names))


def _check_one_step(what: str, step: str, got, expected, nets, z, *, capped: bool,
                    second: bool) -> None:
    """Compare the networks ``nets`` = (G, D, G_ref, D_ref) after the learner's step and the
    reference's, then the returned losses ``got`` with ``expected``; ``capped``: the
    discriminator is a very sure one; ``second``: the second step in a row."""
    G, D, G_ref, D_ref = nets
    (got_d, got_g), (exp_d, exp_g) = got, expected
    if not np.allclose(_flat_params(D), _flat_params(D_ref), rtol=1e-6, atol=1e-9):
        hint = _discriminator_hint(got_d, exp_d, D, capped=capped, second=second)
        raise GradingError(f"{what}: the discriminator's parameters after {step} "
                           f"differ from the reference. Hint: {hint}")
    if not np.allclose(_flat_params(G), _flat_params(G_ref), rtol=1e-6, atol=1e-9):
        with torch.no_grad():
            minimax = float(gan.generator_loss(D_ref(G_ref(z)), "minimax"))
        hint = _generator_hint(got_g, minimax, G, capped=capped, second=second)
        raise GradingError(f"{what}: the generator's parameters after {step} differ "
                           f"from the reference. Hint: {hint}")
    check_close(got_d, exp_d, f"loss_d returned at {step}", rtol=1e-6, atol=1e-9,
                hint="return the discriminator's loss of this step, as a float")
    check_close(got_g, exp_g, f"loss_g returned at {step}", rtol=1e-6, atol=1e-9,
                hint="return the generator's loss of this step, as a float")


def _discriminator_hint(got_d: float, exp_d: float, D, *, capped: bool, second: bool) -> str:
    """The likeliest mistake when the discriminator's parameters differ after a step."""
    if not (np.isfinite(got_d) and np.isfinite(_flat_params(D)).all()):
        return f"the discriminator's loss is {got_d} or its parameters NaN: " + _STABLE_HINT
    if np.isclose(got_d, -exp_d, rtol=1e-6):
        return "the discriminator loss has the wrong sign (it must minimise -V)"
    if capped:
        return _CAPPED_HINT
    if second:
        return ("the first step was right, the second is not: call opt_d.zero_grad() before "
                "loss_d.backward() so that gradients do not accumulate from one step to the "
                "next")
    return ("the discriminator update differs: minimise "
            "discriminator_loss(D(x_real), D(G(z).detach())) with opt_d")


def _generator_hint(got_g: float, minimax: float, G, *, capped: bool, second: bool) -> str:
    """The likeliest mistake when the generator's parameters differ after a step;
    ``minimax`` is the saturating loss of the reference's batch."""
    if not (np.isfinite(got_g) and np.isfinite(_flat_params(G)).all()):
        return f"the generator's loss is {got_g} or its parameters NaN: " + _STABLE_HINT
    if np.isclose(got_g, minimax, rtol=0.2) or got_g < 0:
        return ("use the non-saturating loss -mean(log D(G(z))) = mean(softplus(-logits)), "
                "not the saturating minimax one")
    if capped:
        return _CAPPED_HINT
    if second:
        return "call opt_g.zero_grad() before loss_g.backward()"
    return ("after the discriminator's step, compute the logits of the SAME generated batch "
            "again with the updated D, and minimise the non-saturating loss with opt_g")
