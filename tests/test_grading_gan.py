"""The GAN exercise checks pass right answers and reject blanks and plausible wrong answers.

The "right" answers below are written here from the formulas (plain torch), independently of
``course_lib.gan``, so a wrong reference in the library makes these tests fail too. Every
check runs on all of its fixed inputs (seeds 501-504) in each test.
"""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from course_lib.grading import GradingError
from course_lib.grading import gan as checks

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


def _gen_losses(minimax, ns):
    return lambda: checks.check_generator_losses(minimax, ns)


CASES = {
    "discriminator_loss": (checks.check_discriminator_loss, (d_loss,),
                           [(d_sign_error,), (d_swapped,), (d_naive_log_sigmoid,), (d_sum,),
                            (d_pooled_mean,), (d_numpy,)]),
    "generator_losses": (checks.check_generator_losses, (g_minimax, g_ns),
                         [(g_minimax, g_ns_is_saturating), (g_minimax, g_ns_sign_error),
                          (g_minimax, g_ns_naive), (g_minimax_sign_error, g_ns),
                          (g_minimax_is_ns, g_ns), (g_ns, g_minimax)]),
    "train_step": (checks.check_train_step, (train_step,),
                   [(step_minimax,), (step_d_sign,), (step_no_zero_grad_d,),
                    (step_labels_swapped_for_g,), (step_g_before_d,),
                    (step_returns_tensors_of_wrong_kind,)]),
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
    with pytest.raises(GradingError, match="not implemented"):
        check(*([blank] * len(right)))


@pytest.mark.parametrize("name,wrong", WRONG,
                         ids=[f"{n}-{'+'.join(f.__name__ for f in a)}" for n, a in WRONG])
def test_wrong_answer_fails(name, wrong):
    check, _, _ = CASES[name]
    with pytest.raises(GradingError):
        check(*wrong)


def test_hints_name_the_mistake():
    """The usual mistakes get a message that says what they are."""
    with pytest.raises(GradingError, match="wrong sign"):
        checks.check_discriminator_loss(d_sign_error)
    with pytest.raises(GradingError, match="softplus"):
        checks.check_discriminator_loss(d_naive_log_sigmoid)
    with pytest.raises(GradingError, match="swapped"):
        checks.check_discriminator_loss(d_swapped)
    with pytest.raises(GradingError, match="minimax loss.*saturates"):
        checks.check_generator_losses(g_minimax, g_ns_is_saturating)
    with pytest.raises(GradingError, match="wrong sign"):
        checks.check_generator_losses(g_minimax, g_ns_sign_error)
    with pytest.raises(GradingError, match="non-saturating"):
        checks.check_train_step(step_minimax)
    with pytest.raises(GradingError, match="wrong sign"):
        checks.check_train_step(step_d_sign)
    with pytest.raises(GradingError, match="zero_grad"):
        checks.check_train_step(step_no_zero_grad_d)
