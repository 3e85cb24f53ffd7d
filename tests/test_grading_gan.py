"""The GAN exercise checks pass right answers and reject blanks and plausible wrong answers.

The "right" answers below are written here from the formulas (plain torch), independently of
``course_lib.gan``, so a wrong reference in the library makes these tests fail too. Every
check runs on all of its fixed inputs (seeds 501-504) in each test.

The numerically unsafe answers (a naive ``log(sigmoid(l))``, ``log(1 - sigmoid(l))`` or
``log(1 + exp(l))``, an eps or a clamp inside the log, ``F.binary_cross_entropy`` on
probabilities, ``torch.where`` over an overflowing branch) give the right number on moderate
logits; they must be rejected by the whole check and by each of its large-logit cases alone.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from course_lib.grading import GradingError
from course_lib.grading import gan as checks


def loose(pattern: str) -> str:
    """A message pattern that also matches across the line breaks of a check's message (its
    first line is short and the hint wrapped, for nbgrader's 90-column output)."""
    return "(?s)" + pattern.replace(" ", r"\s+")

# ------------------------------------------------------------------ right answers


def d_loss(real_logits, fake_logits):
    # -[mean log sigmoid(real) + mean log(1 - sigmoid(fake))], stably
    return -F.logsigmoid(real_logits).mean() - F.logsigmoid(-fake_logits).mean()


def g_minimax(fake_logits):
    return F.logsigmoid(-fake_logits).mean()  # mean log(1 - D)


def g_ns(fake_logits):
    return -F.logsigmoid(fake_logits).mean()  # -mean log D


def train_step(G, D, opt_g, opt_d, x_real, z):
    fake = G(z)
    loss_d = d_loss(D(x_real), D(fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = g_ns(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def blank(*args, **kwargs):
    raise NotImplementedError()


# ------------------------------------------------------------------ plausible wrong answers


def d_sign_error(r, f):
    return -d_loss(r, f)


def d_swapped(r, f):
    return d_loss(f, r) if len(r) == len(f) else F.softplus(r).mean() + F.softplus(-f).mean()


def d_naive_log_sigmoid(r, f):
    return -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())


def d_sum(r, f):
    return F.softplus(-r).sum() + F.softplus(f).sum()


def d_pooled_mean(r, f):
    """One mean over both batches together: wrong when the batch sizes differ."""
    return torch.cat([F.softplus(-r), F.softplus(f)]).mean() * 2


def d_numpy(r, f):
    import numpy as np

    rn, fn = r.detach().numpy(), f.detach().numpy()
    return torch.tensor(np.logaddexp(0, -rn).mean() + np.logaddexp(0, fn).mean())


# numerically unsafe: right on moderate logits, inf, NaN or a capped loss on large ones


def d_naive_real_only(r, f):
    """-log(sigmoid(r)) naively for the real batch: -inf inside when r is large and negative."""
    return -torch.log(torch.sigmoid(r)).mean() + F.softplus(f).mean()


def d_naive_fake_only(r, f):
    return F.softplus(-r).mean() - torch.log(1 - torch.sigmoid(f)).mean()


def d_log1p_exp(r, f):
    """softplus written as log(1 + exp(.)): exp overflows."""
    return torch.log1p(torch.exp(-r)).mean() + torch.log1p(torch.exp(f)).mean()


def d_eps_in_log(r, f):
    eps = 1e-8
    return -(torch.log(torch.sigmoid(r) + eps).mean()
             + torch.log(1 - torch.sigmoid(f) + eps).mean())


def d_clamped_log(r, f):
    p, q = torch.sigmoid(r).clamp(min=1e-7), (1 - torch.sigmoid(f)).clamp(min=1e-7)
    return -(torch.log(p).mean() + torch.log(q).mean())


def d_bce_on_probabilities(r, f):
    """F.binary_cross_entropy clamps each log at -100."""
    return (F.binary_cross_entropy(torch.sigmoid(r), torch.ones_like(r))
            + F.binary_cross_entropy(torch.sigmoid(f), torch.zeros_like(f)))


def d_clamped_logits(r, f):
    r, f = r.clamp(-30, 30), f.clamp(-30, 30)
    return -(torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean())


def d_where_overflowing_branch(r, f):
    """Right value, NaN gradient: torch differentiates the unused exp(1000) branch too."""
    def softplus(x):
        return torch.where(x > 30, x, torch.log1p(torch.exp(x)))

    return softplus(-r).mean() + softplus(f).mean()


def g_minimax_naive(f):
    return torch.log(1 - torch.sigmoid(f)).mean()


def g_minimax_log1p_exp(f):
    return -torch.log1p(torch.exp(f)).mean()


def g_minimax_eps_in_log(f):
    return torch.log(1 - torch.sigmoid(f) + 1e-8).mean()


def g_ns_clamped_log(f):
    return -torch.log(torch.sigmoid(f).clamp(min=1e-7)).mean()


def g_ns_bce_on_probabilities(f):
    return F.binary_cross_entropy(torch.sigmoid(f), torch.ones_like(f))


def g_ns_where_overflowing_branch(f):
    return torch.where(-f > 30, -f, torch.log1p(torch.exp(-f))).mean()


def g_ns_is_saturating(f):
    return g_minimax(f)


def g_ns_sign_error(f):
    return F.logsigmoid(f).mean()


def g_ns_naive(f):
    return -torch.log(torch.sigmoid(f)).mean()


def g_minimax_sign_error(f):
    return -g_minimax(f)


def g_minimax_is_ns(f):
    return g_ns(f)


def step_minimax(G, D, opt_g, opt_d, x_real, z):
    fake = G(z)
    loss_d = d_loss(D(x_real), D(fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = g_minimax(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def step_d_sign(G, D, opt_g, opt_d, x_real, z):
    fake = G(z)
    loss_d = -d_loss(D(x_real), D(fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = g_ns(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def step_no_zero_grad_d(G, D, opt_g, opt_d, x_real, z):
    fake = G(z)
    loss_d = d_loss(D(x_real), D(fake.detach()))
    loss_d.backward()
    opt_d.step()
    loss_g = g_ns(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def step_labels_swapped_for_g(G, D, opt_g, opt_d, x_real, z):
    """The generator minimises the discriminator's loss on its samples: it runs away from D."""
    fake = G(z)
    loss_d = d_loss(D(x_real), D(fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    loss_g = F.softplus(D(fake)).mean()
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    return loss_d.item(), loss_g.item()


def step_g_before_d(G, D, opt_g, opt_d, x_real, z):
    """Generator first, then the discriminator: not the order that was asked."""
    fake = G(z)
    loss_g = g_ns(D(fake))
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    loss_d = d_loss(D(x_real), D(fake.detach()))
    opt_d.zero_grad()
    loss_d.backward()
    opt_d.step()
    return loss_d.item(), loss_g.item()


def step_returns_tensors_of_wrong_kind(G, D, opt_g, opt_d, x_real, z):
    loss_d, loss_g = train_step(G, D, opt_g, opt_d, x_real, z)
    return loss_d


def _step_with(loss_d_fn, loss_g_fn):
    """The right step with other losses (numerically unsafe ones, for the tests below)."""
    def step(G, D, opt_g, opt_d, x_real, z):
        fake = G(z)
        loss_d = loss_d_fn(D(x_real), D(fake.detach()))
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = loss_g_fn(D(fake))
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
        return loss_d.item(), loss_g.item()

    return step


def step_naive_d_loss(G, D, opt_g, opt_d, x_real, z):
    return _step_with(d_naive_log_sigmoid, g_ns)(G, D, opt_g, opt_d, x_real, z)


def step_bce_d_loss(G, D, opt_g, opt_d, x_real, z):
    return _step_with(d_bce_on_probabilities, g_ns)(G, D, opt_g, opt_d, x_real, z)


def step_eps_d_loss(G, D, opt_g, opt_d, x_real, z):
    return _step_with(d_eps_in_log, g_ns)(G, D, opt_g, opt_d, x_real, z)


def step_naive_g_loss(G, D, opt_g, opt_d, x_real, z):
    return _step_with(d_loss, g_ns_naive)(G, D, opt_g, opt_d, x_real, z)


def step_bce_g_loss(G, D, opt_g, opt_d, x_real, z):
    return _step_with(d_loss, g_ns_bce_on_probabilities)(G, D, opt_g, opt_d, x_real, z)


def step_clamped_g_loss(G, D, opt_g, opt_d, x_real, z):
    return _step_with(d_loss, g_ns_clamped_log)(G, D, opt_g, opt_d, x_real, z)


UNSAFE_STEPS = [step_naive_d_loss, step_bce_d_loss, step_eps_d_loss, step_naive_g_loss,
                step_bce_g_loss, step_clamped_g_loss]


def _gen_losses(minimax, ns):
    return lambda: checks.check_generator_losses(minimax, ns)


CASES = {
    "discriminator_loss": (checks.check_discriminator_loss, (d_loss,),
                           [(d_sign_error,), (d_swapped,), (d_naive_log_sigmoid,), (d_sum,),
                            (d_pooled_mean,), (d_numpy,), (d_naive_real_only,),
                            (d_naive_fake_only,), (d_log1p_exp,), (d_eps_in_log,),
                            (d_clamped_log,), (d_bce_on_probabilities,), (d_clamped_logits,),
                            (d_where_overflowing_branch,)]),
    "generator_losses": (checks.check_generator_losses, (g_minimax, g_ns),
                         [(g_minimax, g_ns_is_saturating), (g_minimax, g_ns_sign_error),
                          (g_minimax, g_ns_naive), (g_minimax_sign_error, g_ns),
                          (g_minimax_is_ns, g_ns), (g_ns, g_minimax),
                          (g_minimax_naive, g_ns), (g_minimax_log1p_exp, g_ns),
                          (g_minimax_eps_in_log, g_ns), (g_minimax, g_ns_clamped_log),
                          (g_minimax, g_ns_bce_on_probabilities),
                          (g_minimax, g_ns_where_overflowing_branch)]),
    "train_step": (checks.check_train_step, (train_step,),
                   [(step_minimax,), (step_d_sign,), (step_no_zero_grad_d,),
                    (step_labels_swapped_for_g,), (step_g_before_d,),
                    (step_returns_tensors_of_wrong_kind,)]
                   + [(step,) for step in UNSAFE_STEPS]),
}

WRONG = [(name, args) for name, (_, _, wrongs) in CASES.items() for args in wrongs]


@pytest.mark.parametrize("name", list(CASES))
def test_right_answer_passes(name, capsys):
    check, right, _ = CASES[name]
    check(*right)
    assert capsys.readouterr().out.startswith("✔")


@pytest.mark.parametrize("name", list(CASES))
def test_blank_fails_clearly(name):
    check, right, _ = CASES[name]
    with pytest.raises(GradingError, match=loose("not implemented")):
        check(*([blank] * len(right)))


@pytest.mark.parametrize("name,wrong", WRONG,
                         ids=[f"{n}-{'+'.join(f.__name__ for f in a)}" for n, a in WRONG])
def test_wrong_answer_fails(name, wrong):
    check, _, _ = CASES[name]
    with pytest.raises(GradingError):
        check(*wrong)


def test_hints_name_the_mistake():
    """The usual mistakes get a message that says what they are."""
    with pytest.raises(GradingError, match=loose("wrong sign")):
        checks.check_discriminator_loss(d_sign_error)
    with pytest.raises(GradingError, match=loose("softplus")):
        checks.check_discriminator_loss(d_naive_log_sigmoid)
    with pytest.raises(GradingError, match=loose("swapped")):
        checks.check_discriminator_loss(d_swapped)
    with pytest.raises(GradingError, match=loose("minimax loss.*saturates")):
        checks.check_generator_losses(g_minimax, g_ns_is_saturating)
    with pytest.raises(GradingError, match=loose("wrong sign")):
        checks.check_generator_losses(g_minimax, g_ns_sign_error)
    with pytest.raises(GradingError, match=loose("non-saturating")):
        checks.check_train_step(step_minimax)
    with pytest.raises(GradingError, match=loose("wrong sign")):
        checks.check_train_step(step_d_sign)
    with pytest.raises(GradingError, match=loose("zero_grad")):
        checks.check_train_step(step_no_zero_grad_d)


UNSAFE_D = [d_naive_log_sigmoid, d_naive_real_only, d_naive_fake_only, d_log1p_exp, d_eps_in_log,
            d_clamped_log, d_bce_on_probabilities, d_clamped_logits, d_where_overflowing_branch]
UNSAFE_G = [(g_minimax, g_ns_naive), (g_minimax_naive, g_ns), (g_minimax_log1p_exp, g_ns),
            (g_minimax_eps_in_log, g_ns), (g_minimax, g_ns_clamped_log),
            (g_minimax, g_ns_bce_on_probabilities), (g_minimax, g_ns_where_overflowing_branch)]
# the cases with large logits of both signs in each batch (float64 and float32), and for the
# discriminator the float32 batches of one (a large negative real logit, a large positive fake)
BOTH_SIGNS = [c[0] for c in checks._logit_cases() if "both batches" in c[0]]
D_LARGE = BOTH_SIGNS + [c[0] for c in checks._logit_cases() if "150" in c[0]]


def _only(monkeypatch, case_name):
    """Run the check on the one case named ``case_name`` of its inputs."""
    cases = [c for c in checks._logit_cases() if c[0] == case_name]
    assert len(cases) == 1
    monkeypatch.setattr(checks, "_logit_cases", lambda: cases)


def test_the_inputs_span_the_unsafe_regimes():
    cases = checks._logit_cases()
    assert len(BOTH_SIGNS) == 2 and len(D_LARGE) == 3
    dtypes = {c[1].dtype for c in cases if c[0] in BOTH_SIGNS}
    assert dtypes == {torch.float64, torch.float32}
    for name, real, fake in cases:
        if name in BOTH_SIGNS:
            for t in (real, fake):
                assert t.min() <= -1000 and t.max() >= 1000 and (t.abs() < 5).any()
    assert any(len(r) == 1 and len(f) == 1 for _, r, f in cases)


@pytest.mark.parametrize("case_name", D_LARGE)
@pytest.mark.parametrize("wrong", UNSAFE_D, ids=[f.__name__ for f in UNSAFE_D])
def test_unsafe_discriminator_loss_rejected_on_each_large_case(wrong, case_name, monkeypatch):
    _only(monkeypatch, case_name)
    checks.check_discriminator_loss(d_loss)  # the right answer passes this case alone
    with pytest.raises(GradingError):
        checks.check_discriminator_loss(wrong)


@pytest.mark.parametrize("case_name", BOTH_SIGNS)
@pytest.mark.parametrize("wrong", UNSAFE_G, ids=["+".join(f.__name__ for f in a) for a in UNSAFE_G])
def test_unsafe_generator_losses_rejected_on_each_large_case(wrong, case_name, monkeypatch):
    _only(monkeypatch, case_name)
    checks.check_generator_losses(g_minimax, g_ns)
    with pytest.raises(GradingError):
        checks.check_generator_losses(*wrong)


def test_unsafe_answers_get_a_hint_that_names_the_instability():
    with pytest.raises(GradingError,
                       match=loose(r"is inf for .*Hint: log\(sigmoid\(l\)\) overflows.*softplus")):
        checks.check_discriminator_loss(d_naive_real_only)
    with pytest.raises(GradingError, match=loose("is inf for .*softplus")):
        checks.check_discriminator_loss(d_log1p_exp)
    for wrong in (d_eps_in_log, d_clamped_log, d_bce_on_probabilities):
        with pytest.raises(GradingError, match=loose("capped for large ones.*softplus")):
            checks.check_discriminator_loss(wrong)
    with pytest.raises(GradingError, match=loose("gradient .* contains NaN.*torch.where")):
        checks.check_discriminator_loss(d_where_overflowing_branch)
    with pytest.raises(GradingError, match=loose("capped for large ones")):
        checks.check_generator_losses(g_minimax_eps_in_log, g_ns)
    with pytest.raises(GradingError, match=loose("capped for large ones")):
        checks.check_generator_losses(g_minimax, g_ns_bce_on_probabilities)
    with pytest.raises(GradingError, match=loose("torch.where")):
        checks.check_generator_losses(g_minimax, g_ns_where_overflowing_branch)


def test_train_step_networks_include_very_sure_discriminators():
    assert [n[:3] for n in checks._STEP_NETWORKS if n[1] != 1.0] == [(508, 300.0, 0.0),
                                                                     (508, 6000.0, -800.0)]


@pytest.mark.parametrize("wrong", UNSAFE_STEPS, ids=[f.__name__ for f in UNSAFE_STEPS])
def test_unsafe_train_step_rejected_with_a_discriminator_sure_both_ways(wrong, monkeypatch):
    """The networks with logits beyond ±800 in both batches reject each unsafe step alone."""
    monkeypatch.setattr(checks, "_STEP_NETWORKS", checks._STEP_NETWORKS[-1:])
    checks.check_train_step(train_step)
    with pytest.raises(GradingError, match=loose("sure in both directions")):
        checks.check_train_step(wrong)


def test_unsafe_train_step_hints():
    with pytest.raises(GradingError, match=loose("discriminator's loss is (inf|nan).*overflows")):
        checks.check_train_step(step_naive_d_loss)
    with pytest.raises(GradingError, match=loose("very sure.*capped for large ones")):
        checks.check_train_step(step_bce_d_loss)
    with pytest.raises(GradingError, match=loose("generator's loss is (inf|nan).*overflows")):
        checks.check_train_step(step_naive_g_loss)
    with pytest.raises(GradingError, match=loose("capped for large ones")):
        checks.check_train_step(step_bce_g_loss)
