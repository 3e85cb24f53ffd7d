"""The checks hold against a learner who breaks or fools them (issue 25) and their messages fit
nbgrader's 90-column output (issue 24)."""

from __future__ import annotations

import os
import random
import subprocess
import sys
import warnings

import numpy as np
import pytest
import torch
from test_grading_gan import d_clamped_log, d_eps_in_log
from test_grading_gmm import e_step, log_gaussian, n_parameters
from test_grading_mrf import local_field

import course_lib.gmm
from course_lib import grading
from course_lib.grading import GradingError, GradingWarning, ch02, gan, gmm, mrf, vae

# ------------------------------------------------------------------ 1. BaseExceptions


class LearnersOwn(BaseException):
    pass


@pytest.mark.parametrize("raised, named", [
    (lambda: sys.exit(), "sys.exit()"), (lambda: sys.exit(3), "sys.exit(3)"),
    (SystemExit, "SystemExit"), (GeneratorExit, "GeneratorExit"),
    (LearnersOwn, "LearnersOwn")])
def test_base_exceptions_become_a_grading_error(raised, named):
    def learner(X, mean, cov):
        if callable(raised) and not isinstance(raised, type):
            raised()
        raise raised()

    with pytest.raises(GradingError) as info:
        gmm.check_log_gaussian(learner)
    assert named in str(info.value)


def test_keyboard_interrupt_still_stops_the_check():
    def learner(X, mean, cov):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        gmm.check_log_gaussian(learner)


# ------------------------------------------------------------------ 2. the reference out of reach


def test_a_wrapped_reference_is_rejected_however_it_is_reached():
    from course_lib.gmm import e_step as imported_before  # bound before the check runs

    def wraps_module_attribute(X, w, m, c):
        P = course_lib.gmm.compute_precision_cholesky(torch.as_tensor(c), "full")
        return course_lib.gmm.e_step(torch.as_tensor(X), torch.as_tensor(w),
                                     torch.as_tensor(m), P, "full")

    def wraps_imported_name(X, w, m, c):
        P = course_lib.gmm.compute_precision_cholesky(torch.as_tensor(c), "full")
        try:
            return imported_before(torch.as_tensor(X), torch.as_tensor(w), torch.as_tensor(m),
                                   P, "full")
        except Exception:  # swallowing the guard's error does not help
            return e_step(X, w, m, c)

    for wrong in (wraps_module_attribute, wraps_imported_name):
        with pytest.raises(GradingError, match=r"calls course_lib\.gmm\.e_step"):
            gmm.check_e_step(wrong)
    gmm.check_e_step(e_step)  # the library works again after the check
    assert course_lib.gmm.e_step is imported_before


def test_replacing_the_reference_changes_nothing_and_does_not_persist():
    original = course_lib.gmm.e_step

    def cheat(X, w, m, c):
        course_lib.gmm.e_step = lambda *a, **k: (torch.zeros(len(X), len(w)),
                                                 torch.zeros(len(X)))
        return np.zeros((len(X), len(w))), np.zeros(len(X))

    with pytest.raises(GradingError, match=r"replaced\s+course_lib\.gmm\.e_step"):
        gmm.check_e_step(cheat)
    assert course_lib.gmm.e_step is original


def test_a_reference_replaced_in_an_earlier_cell_is_restored_with_a_warning(monkeypatch):
    original = course_lib.gmm.estimate_log_gaussian_prob
    monkeypatch.setattr(course_lib.gmm, "estimate_log_gaussian_prob",
                        lambda X, *a: torch.zeros(len(X), 1, dtype=torch.float64))
    with pytest.warns(GradingWarning, match="had been replaced"):
        with pytest.raises(GradingError):
            gmm.check_log_gaussian(lambda X, mean, cov: np.zeros(len(X)))
    assert course_lib.gmm.estimate_log_gaussian_prob is original


def test_a_fresh_import_of_the_checks_still_knows_the_course_functions(monkeypatch):
    """The graded cells import course_lib.grading afresh, after the answer cells ran: a
    reference replaced before that is still put back, and a wrapped one still caught."""
    original = course_lib.gmm.e_step

    def replaced(X, w, m, P, t):
        return original(X, w, m, P, t)[0] * 0, original(X, w, m, P, t)[1] * 0

    monkeypatch.setattr(course_lib.gmm, "e_step", replaced)
    for name in [n for n in sys.modules if n.startswith("course_lib.grading")]:
        monkeypatch.delitem(sys.modules, name)
    from course_lib.grading import gmm as fresh

    assert fresh is not gmm
    fresh_base = sys.modules["course_lib.grading"]  # its own GradingError, GradingWarning
    with pytest.warns(fresh_base.GradingWarning, match="had been replaced"):
        fresh.check_e_step(e_step)  # the right answer passes: the reference is the course's
    assert course_lib.gmm.e_step is original

    def wraps(X, w, m, c):
        P = course_lib.gmm.compute_precision_cholesky(torch.as_tensor(c), "full")
        return course_lib.gmm.e_step(torch.as_tensor(X), torch.as_tensor(w),
                                     torch.as_tensor(m), P, "full")

    with pytest.raises(fresh_base.GradingError, match=r"calls\s+course_lib\.gmm\.e_step"):
        fresh.check_e_step(wraps)


def test_replacing_numpy_to_fool_the_comparison_is_undone():
    def cheat(X, mean, cov):
        np.allclose = lambda *a, **k: True
        return np.zeros(len(X))

    original = np.allclose
    with pytest.raises(GradingError, match="replaced numpy.allclose"):
        gmm.check_log_gaussian(cheat)
    assert np.allclose is original


# ------------------------------------------------------------------ 3. only real numbers


class Fetches:
    """An answer whose __array__ would run when the check converts it."""

    def __array__(self, dtype=None, copy=None):
        raise AssertionError("the check ran the answer's __array__")


@pytest.mark.parametrize("answer", [Fetches(), np.array([1.0, 2.0], dtype=object),
                                    "1.0", np.ma.masked_array([1.0])])
def test_only_plain_numbers_are_accepted(answer):
    with pytest.raises(GradingError, match="expected"):
        gmm.check_log_gaussian(lambda X, mean, cov: answer)


def test_n_parameters_rejects_strings_of_the_right_numbers():
    with pytest.raises(GradingError, match="string"):
        gmm.check_n_parameters(lambda K, D, t: str(n_parameters(K, D, t)))
    with pytest.raises(GradingError, match="bool"):
        gmm.check_n_parameters(lambda K, D, t: True)


# ------------------------------------------------------------------ 4. random inputs per run


def _recorder(right, store):
    def learner(*args):
        out = right(*args)
        store[tuple(np.asarray(a).tobytes() for a in args)] = out
        return out
    return learner


def _replayer(store, blank):
    def learner(*args):
        return store.get(tuple(np.asarray(a).tobytes() for a in args), blank(*args))
    return learner


@pytest.mark.parametrize("check, right, blank", [
    (gmm.check_log_gaussian, log_gaussian, lambda X, m, c: np.zeros(len(X))),
    (mrf.check_local_field, local_field, lambda s, J, h: torch.zeros_like(s))])
def test_answers_hard_coded_for_one_run_fail_the_next(check, right, blank, monkeypatch):
    store: dict = {}
    monkeypatch.setenv("COURSE_GRADING_SEED", "1")
    check(_recorder(right, store))
    check(_replayer(store, blank))  # the same run's inputs: the replay passes
    monkeypatch.setenv("COURSE_GRADING_SEED", "2")
    with pytest.raises(GradingError, match="Seed 2: COURSE_GRADING_SEED=2 repeats"):
        check(_replayer(store, blank))


def test_the_seed_is_drawn_per_run_and_shown():
    seeds = set()
    for _ in range(3):
        with pytest.raises(GradingError) as info:
            gmm.check_n_parameters(lambda K, D, t: -1)
        seeds.add(str(info.value).splitlines()[-1])
    assert len(seeds) == 3


# ------------------------------------------------------------------ 5. global side effects


def test_a_float16_default_from_an_earlier_cell_does_not_fail_a_right_answer(capsys):
    torch.set_default_dtype(torch.float16)
    try:
        mrf.check_local_field(local_field)
        assert torch.get_default_dtype() == torch.float16  # the notebook's setting is kept
    finally:
        torch.set_default_dtype(torch.float32)
    assert capsys.readouterr().out.startswith("✔")


def test_global_state_changed_by_the_learner_is_restored_and_reported():
    def sets_dtype(X, mean, cov):
        torch.set_default_dtype(torch.float64)
        return log_gaussian(X, mean, cov)

    def no_grad(X, mean, cov):
        torch.set_grad_enabled(False)
        return log_gaussian(X, mean, cov)

    with pytest.raises(GradingError, match="default dtype"):
        gmm.check_log_gaussian(sets_dtype)
    assert torch.get_default_dtype() == torch.float32
    with pytest.raises(GradingError, match="gradient tracking"):
        gmm.check_log_gaussian(no_grad)
    assert torch.is_grad_enabled()


def test_reseeding_the_global_generators_is_undone_and_reported():
    def reseeds(X, mean, cov):
        np.random.seed(0)
        torch.manual_seed(0)
        random.seed(0)
        return log_gaussian(X, mean, cov)

    np.random.seed(123)
    torch.manual_seed(123)
    random.seed(123)
    expected = (np.random.random(), torch.rand(1).item(), random.random())
    np.random.seed(123)
    torch.manual_seed(123)
    random.seed(123)
    with pytest.warns(GradingWarning, match=r"global\s+random\s+number\s+generator"):
        gmm.check_log_gaussian(reseeds)
    assert (np.random.random(), torch.rand(1).item(), random.random()) == expected


# ------------------------------------------------------------------ 6. inputs changed in place


def test_a_function_that_changes_its_inputs_is_rejected():
    def zeroes_x(X, mean, cov):
        out = log_gaussian(X, mean, cov)
        X[...] = 0
        return out

    def centres_in_place(s, J=1.0, h=0.0):
        out = local_field(s, J, h)
        s.zero_()
        return out

    with pytest.raises(GradingError, match="changed its input `X` in place"):
        gmm.check_log_gaussian(zeroes_x)
    with pytest.raises(GradingError, match="changed its input `s` in place"):
        mrf.check_local_field(centres_in_place)


# ------------------------------------------------------------------ 7. the time limit


def test_a_huge_time_limit_is_clamped_not_a_crash():
    code = ("import course_lib.grading as g; print(g.TIME_LIMIT); "
            "print(g.call_learner(lambda: 7))")
    env = dict(os.environ, COURSE_GRADING_TIME_LIMIT="1e12")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == [repr(grading.MAX_TIME_LIMIT), "7"]


def test_the_time_limit_still_stops_a_check():
    def endless(X, mean, cov):
        while True:
            pass

    old = grading.TIME_LIMIT
    grading.TIME_LIMIT = 0.3
    try:
        with pytest.raises(GradingError, match="did not return within 0.3 seconds"):
            gmm.check_log_gaussian(endless)
    finally:
        grading.TIME_LIMIT = old


# ------------------------------------------------------------------ 8. messages and hints


def _failures():
    """(label, GradingError) of blanks and wrong answers across the chapters' checks."""
    import test_grading_ch02 as t2
    import test_grading_gan as t5
    import test_grading_gmm as t3

    out = []
    for name, (check, _right, wrongs) in t3.CASES.items():
        for wrong in [t3.blank, *wrongs]:
            out.append((f"gmm {name} {wrong.__name__}", check, (wrong,)))
    for name, (check, right, wrongs) in t5.CASES.items():
        for wrong in [tuple([t5.blank] * len(right)), *wrongs]:
            out.append((f"gan {name}", check, wrong if isinstance(wrong, tuple) else (wrong,)))
    import test_grading_mrf as t4
    import test_grading_vae as t6

    for check, wrongs in ((mrf.check_local_field, [t4.blank, t4.field_open_boundary,
                                                   t4.field_without_h]),
                          (mrf.check_half_sweep, [t4.sweep_all_sites, t4.sweep_factor_one]),
                          (mrf.check_pl_gradient, [t4.pl_sign_error, t4.pl_sum])):
        out += [(f"mrf {getattr(w, '__name__', '')}", check, (w,)) for w in wrongs]
    for check, wrongs in ((vae.check_reparameterize, t6.WRONG_REPARAMETERIZE),
                          (vae.check_gaussian_kl, t6.WRONG_KL), (vae.check_elbo, t6.WRONG_ELBO),
                          (vae.check_iwae, t6.WRONG_IWAE)):
        out += [(f"vae {name}", check, (w,)) for name, w in wrongs.items()]
    for check, wrongs in ((ch02.check_gaussian_log_likelihood,
                           [t2.loglik_no_logdet, t2.loglik_cov_not_inverse]),
                          (ch02.check_frechet_distance, [t2.frechet_no_mean_term])):
        out += [(f"ch02 {w.__name__}", check, (w,)) for w in wrongs]
    return out


def test_every_message_has_a_short_first_line_and_lines_nbgrader_shows_whole():
    for label, check, args in _failures():
        with pytest.raises(GradingError) as info:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check(*args)
        lines = str(info.value).splitlines()
        assert len(lines[0]) <= grading.FIRST_LINE_WIDTH, (label, lines[0])
        assert all(len(line) <= grading.LINE_WIDTH for line in lines), (label, lines)
        # nbgrader validate: 4 spaces + "GradingError: " + the first line, cut at 87
        assert len("    GradingError: " + lines[0]) <= 87


def test_an_eps_or_clamp_in_the_discriminator_loss_gets_the_clamping_hint():
    for wrong in (d_eps_in_log, d_clamped_log):
        with pytest.raises(GradingError) as info:
            gan.check_discriminator_loss(wrong)
        text = " ".join(str(info.value).split())
        assert "clamp" in text and "batches may have different sizes" not in text

    def eps_1e3(real, fake):
        return -(torch.log(torch.sigmoid(real) + 1e-3).mean()
                 + torch.log(1 - torch.sigmoid(fake) + 1e-3).mean())

    with pytest.raises(GradingError, match=r"(?s)clamp\s+or\s+an\s+eps"):
        gan.check_discriminator_loss(eps_1e3)


def test_an_e_step_wrong_because_of_log_gaussian_names_log_gaussian():
    def bad_log_gaussian(X, mean, cov):
        return log_gaussian(X, mean, cov) + 0.3 * np.sum((X - mean) ** 2, axis=1) / X.shape[1]

    def e_step_with_bad_log_gaussian(X, weights, means, covs):
        from scipy.special import logsumexp

        a = np.stack([np.log(weights[k]) + bad_log_gaussian(X, means[k], covs[k])
                      for k in range(len(weights))], axis=1)
        ll = logsumexp(a, axis=1)
        return a - ll[:, None], ll

    with pytest.raises(GradingError, match=r"(?s)mistake\s+is\s+in\s+your\s+log_gaussian"):
        gmm.check_e_step(e_step_with_bad_log_gaussian)


def _inv_det_log_gaussian(X, mean, cov):
    diff = X - mean
    quad = np.einsum("ni,ij,nj->n", diff, np.linalg.inv(cov), diff)
    return -0.5 * (quad + X.shape[1] * np.log(2 * np.pi) + np.log(np.linalg.det(cov)))


def test_one_rule_for_an_explicit_determinant_in_both_exercises():
    """Exercise 3.1 rejects log(det(cov)) as exercise 2.1 does, with the same hint."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        with pytest.raises(GradingError, match=r"(?s)Never\s+compute\s+an\s+explicit"):
            gmm.check_log_gaussian(_inv_det_log_gaussian)
        with pytest.raises(GradingError, match=r"(?s)Never\s+compute\s+an\s+explicit"):
            ch02.check_gaussian_log_likelihood(_inv_det_log_gaussian)
