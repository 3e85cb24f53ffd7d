"""The MRF chapter's grading checks pass on the reference answers and fail — with a
GradingError that names the mistake — on a blank and on each plausible wrong answer."""

import numpy as np
import pytest
import torch

from course_lib.grading import GradingError
from course_lib.grading import mrf as g


def loose(pattern: str) -> str:
    """A message pattern that also matches across the line breaks of a check's message (its
    first line is short and the hint wrapped, for nbgrader's 90-column output)."""
    return "(?s)" + pattern.replace(" ", r"\s+")

# ------------------------------------------------------------------ reference answers
# (the same code as in solutions/04_*.ipynb)


def local_field(s, J=1.0, h=0.0):
    neighbours = (torch.roll(s, 1, dims=-2) + torch.roll(s, -1, dims=-2)
                  + torch.roll(s, 1, dims=-1) + torch.roll(s, -1, dims=-1))
    return J * neighbours + h


def colour_mask(H, W, colour):
    rows = torch.arange(H).reshape(-1, 1)
    cols = torch.arange(W).reshape(1, -1)
    return (rows + cols) % 2 == colour


def half_sweep(s, beta, colour, u, J=1.0, h=0.0):
    p_up = torch.sigmoid(2.0 * beta * local_field(s, J, h))
    proposal = torch.where(u < p_up, 1.0, -1.0)
    return torch.where(colour_mask(s.shape[-2], s.shape[-1], colour), proposal, s)


def neighbour_sum(s):
    """Free-boundary sum of the four neighbours of each pixel of an (H, W) array."""
    total = torch.zeros_like(s)
    total[1:, :] += s[:-1, :]
    total[:-1, :] += s[1:, :]
    total[:, 1:] += s[:, :-1]
    total[:, :-1] += s[:, 1:]
    return total


def icm_denoise(noisy, coupling, data_weight, max_sweeps=50):
    noisy = torch.as_tensor(noisy, dtype=torch.float64)
    t = 2.0 * noisy - 1.0
    labels = noisy.clone()
    for _ in range(max_sweeps):
        changed = False
        for colour in (0, 1):
            mask = colour_mask(*noisy.shape, colour)
            field = coupling * neighbour_sum(2.0 * labels - 1.0) + data_weight * t
            best = torch.where(field > 0, 1.0, torch.where(field < 0, 0.0, labels))
            new = torch.where(mask, best, labels)
            changed = changed or bool((new != labels).any())
            labels = new
        if not changed:
            break
    return labels


def pl_gradient(s, beta):
    f = local_field(s.double())
    return float((f * (s.double() - torch.tanh(beta * f))).mean())


# ------------------------------------------------------------------ wrong answers


def blank(*args, **kwargs):
    raise NotImplementedError()


def field_open_boundary(s, J=1.0, h=0.0):
    total = torch.zeros_like(s)
    total[..., 1:, :] += s[..., :-1, :]
    total[..., :-1, :] += s[..., 1:, :]
    total[..., :, 1:] += s[..., :, :-1]
    total[..., :, :-1] += s[..., :, 1:]
    return J * total + h


def field_without_h(s, J=1.0, h=0.0):
    return local_field(s, J, 0.0)


def field_with_self(s, J=1.0, h=0.0):
    return local_field(s, J, h) + J * s


def sweep_all_sites(s, beta, colour, u, J=1.0, h=0.0):
    return torch.where(u < torch.sigmoid(2.0 * beta * local_field(s, J, h)), 1.0, -1.0)


def sweep_factor_one(s, beta, colour, u, J=1.0, h=0.0):
    proposal = torch.where(u < torch.sigmoid(beta * local_field(s, J, h)), 1.0, -1.0)
    return torch.where(colour_mask(s.shape[-2], s.shape[-1], colour), proposal, s)


def sweep_wrong_comparison(s, beta, colour, u, J=1.0, h=0.0):
    proposal = torch.where(u > torch.sigmoid(2.0 * beta * local_field(s, J, h)), 1.0, -1.0)
    return torch.where(colour_mask(s.shape[-2], s.shape[-1], colour), proposal, s)


def sweep_zero_one_labels(s, beta, colour, u, J=1.0, h=0.0):
    proposal = torch.where(u < torch.sigmoid(2.0 * beta * local_field(s, J, h)), 1.0, 0.0)
    return torch.where(colour_mask(s.shape[-2], s.shape[-1], colour), proposal, s)


def sweep_ignores_J(s, beta, colour, u, J=1.0, h=0.0):
    return half_sweep(s, beta, colour, u, 1.0, h)


def sweep_ignores_h(s, beta, colour, u, J=1.0, h=0.0):
    return half_sweep(s, beta, colour, u, J, 0.0)


def _icm_tie(noisy, coupling, data_weight, max_sweeps, value):
    """ICM with the reference schedule but a fixed label where the field is exactly 0."""
    noisy = torch.as_tensor(noisy, dtype=torch.float64)
    t = 2.0 * noisy - 1.0
    labels = noisy.clone()
    for _ in range(max_sweeps):
        old = labels.clone()
        for colour in (0, 1):
            field = coupling * neighbour_sum(2.0 * labels - 1.0) + data_weight * t
            new = torch.where(field > 0, 1.0, torch.where(field < 0, 0.0, float(value)))
            labels = torch.where(colour_mask(*labels.shape, colour), new, labels)
        if torch.equal(old, labels):
            break
    return labels


def icm_tie_to_one(noisy, coupling, data_weight, max_sweeps=50):
    return _icm_tie(noisy, coupling, data_weight, max_sweeps, 1.0)


def icm_tie_to_zero(noisy, coupling, data_weight, max_sweeps=50):
    return _icm_tie(noisy, coupling, data_weight, max_sweeps, 0.0)


def icm_without_data_term(noisy, coupling, data_weight, max_sweeps=50):
    return icm_denoise(noisy, coupling, 0.0, max_sweeps)


def icm_sign_error(noisy, coupling, data_weight, max_sweeps=50):
    return icm_denoise(noisy, -coupling, -data_weight, max_sweeps)


def icm_all_at_once(noisy, coupling, data_weight, max_sweeps=50):
    noisy = torch.as_tensor(noisy, dtype=torch.float64)
    t = 2.0 * noisy - 1.0
    labels = noisy.clone()
    for _ in range(max_sweeps):
        field = coupling * neighbour_sum(2.0 * labels - 1.0) + data_weight * t
        labels = torch.where(field > 0, 1.0, torch.where(field < 0, 0.0, labels))
    return labels


def icm_one_sweep(noisy, coupling, data_weight, max_sweeps=50):
    return icm_denoise(noisy, coupling, data_weight, max_sweeps=1)


def icm_returns_spins(noisy, coupling, data_weight, max_sweeps=50):
    return 2.0 * icm_denoise(noisy, coupling, data_weight, max_sweeps) - 1.0


def pl_sign_error(s, beta):
    return -pl_gradient(s, beta)


def pl_sum(s, beta):
    f = local_field(s.double())
    return float((f * (s.double() - torch.tanh(beta * f))).sum())


def pl_tanh_two_beta(s, beta):
    f = local_field(s.double())
    return float((f * (s.double() - torch.tanh(2 * beta * f))).mean())


def pl_sigmoid(s, beta):
    f = local_field(s.double())
    return float((f * (s.double() - torch.sigmoid(2 * beta * f))).mean())


# ------------------------------------------------------------------ tests


def test_local_field_passes_on_reference(capsys):
    g.check_local_field(local_field)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (blank, "not implemented"),
    (field_open_boundary, "periodic"),
    (field_without_h, "external field h"),
    (field_with_self, "not one of its neighbours"),
    (lambda s, J=1.0, h=0.0: local_field(s, J, h)[0], "shape"),
])
def test_local_field_fails_on_wrong_answers(wrong, message):
    with pytest.raises(GradingError, match=loose(message)):
        g.check_local_field(wrong)


def test_half_sweep_passes_on_reference(capsys):
    g.check_half_sweep(half_sweep)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (blank, "not implemented"),
    (sweep_all_sites, "OTHER colour"),
    (sweep_factor_one, r"sigmoid\(2 \* beta \* f\)"),
    (sweep_wrong_comparison, "other way round"),
    (sweep_zero_one_labels, "-1 and \\+1"),
])
def test_half_sweep_fails_on_wrong_answers(wrong, message):
    with pytest.raises(GradingError, match=loose(message)):
        g.check_half_sweep(wrong)


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("wrong, message", [
    (sweep_ignores_J, "ignores the coupling J"),
    (sweep_ignores_h, "ignores the external field h"),
    (sweep_factor_one, r"sigmoid\(2 \* beta \* f\)"),
])
def test_half_sweep_rejects_plausible_mistakes_on_every_seed(wrong, message, seed):
    """Issue 8: an answer ignoring J passed in ~70% of runs. Now rejected on every seed."""
    with pytest.raises(GradingError, match=loose(message)):
        g.check_half_sweep(wrong, seed=seed)
    g.check_half_sweep(half_sweep, seed=seed)  # while the right answer passes on that seed


def test_sampler_distribution_passes_on_reference():
    result = g.check_sampler_distribution(half_sweep)
    assert result["p_value"] > 1e-3
    assert abs(result["mean_energy_sampled"] - result["mean_energy_exact"]) < 0.02


@pytest.mark.parametrize("wrong", [blank, sweep_factor_one, sweep_all_sites])
def test_sampler_distribution_fails_on_wrong_samplers(wrong):
    with pytest.raises(GradingError):
        g.check_sampler_distribution(wrong)


def test_exact_energy_distribution_is_independent_of_the_sampler():
    """Cross-check the enumeration on 2x2 by hand: with periodic boundaries each of the 4
    sites has its right and lower neighbour counted once, i.e. 8 bonds (each pair twice)."""
    levels, probs = g._exact_energy_distribution(2, beta=0.0)
    assert np.isclose(probs.sum(), 1.0)
    # 16 states: all equal (2 states, E=-8), checkerboards (2 states, E=+8), others E=0
    assert list(levels) == [-8, 0, 8]
    assert np.allclose(probs, [2 / 16, 12 / 16, 2 / 16])


def test_icm_passes_on_reference(capsys):
    g.check_icm(icm_denoise)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (blank, "not implemented"),
    (icm_without_data_term, "data term"),
    (icm_sign_error, "sign error|HIGHER energy"),
    (icm_all_at_once, "differs from the reference"),
    (icm_one_sweep, "differs from the reference"),
    (icm_returns_spins, "labels 0 and 1"),
])
def test_icm_fails_on_wrong_answers(wrong, message):
    with pytest.raises(GradingError, match=loose(message)):
        g.check_icm(wrong)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("wrong", [icm_tie_to_one, icm_tie_to_zero, icm_without_data_term])
def test_icm_tie_rule_is_exercised_on_every_seed(wrong, seed):
    with pytest.raises(GradingError, match=loose("tie rule|data term")):
        g.check_icm(wrong, seed=seed)
    g.check_icm(icm_denoise, seed=seed)


def test_icm_cases_contain_exact_ties():
    *_, (image_seed, coupling, data_weight) = g._icm_cases(0)
    _, noisy = g._icm_instance(image_seed)
    field = g._denoise_field(noisy, noisy, coupling, data_weight)
    assert bool((field == 0).any())


def test_reference_icm_reaches_a_local_minimum_that_lowers_the_energy():
    clean, noisy = g._icm_instance(0)
    labels = icm_denoise(noisy, 1.0, 0.9)
    e = g._denoise_energy(labels, noisy, 1.0, 0.9)
    assert e < g._denoise_energy(noisy, noisy, 1.0, 0.9)
    for r, c in [(0, 0), (5, 7), (12, 20), (23, 29)]:  # no single flip lowers the energy
        flipped = labels.clone()
        flipped[r, c] = 1 - flipped[r, c]
        assert g._denoise_energy(flipped, noisy, 1.0, 0.9) >= e - 1e-9
    # and it removes most of the noise
    assert (labels != clean).float().mean() < 0.5 * (noisy != clean).float().mean()


def test_pl_gradient_passes_on_reference(capsys):
    g.check_pl_gradient(pl_gradient)
    assert "✔" in capsys.readouterr().out


@pytest.mark.parametrize("wrong, message", [
    (blank, "not implemented"),
    (pl_sign_error, "sign error"),
    (pl_sum, "MEAN"),
    (pl_tanh_two_beta, "not tanh\\(2 beta f_i\\)"),
    (pl_sigmoid, "mixed 0/1"),
])
def test_pl_gradient_fails_on_wrong_answers(wrong, message):
    with pytest.raises(GradingError, match=loose(message)):
        g.check_pl_gradient(wrong)


def test_pl_gradient_reference_agrees_with_finite_differences():
    gen = torch.Generator().manual_seed(0)
    s = torch.where(torch.rand((4, 6, 6), generator=gen) < 0.5, 1.0, -1.0).double()

    def log_pl(beta):  # written out directly: beta s f - log(2 cosh(beta f))
        f = local_field(s)
        return float((beta * s * f - torch.log(2 * torch.cosh(beta * f))).mean())

    eps = 1e-5
    numeric = (log_pl(0.4 + eps) - log_pl(0.4 - eps)) / (2 * eps)
    assert abs(g._ref_pl_gradient(s, 0.4) - numeric) < 1e-6


def test_pl_estimate_recovers_beta_from_ising_samples():
    from course_lib.mrf import IsingModel

    samples = IsingModel(beta=0.3).sample(8, (32, 32), n_sweeps=200, burn_in=200, seed=0)
    samples = torch.as_tensor(samples).reshape(-1, 32, 32)
    beta_hat = g.check_pl_estimate(pl_gradient, samples, 0.3)
    assert abs(beta_hat - 0.3) < 0.015
    with pytest.raises(GradingError):
        g.check_pl_estimate(pl_sign_error, samples, 0.3)
    with pytest.raises(GradingError):
        g.check_pl_estimate(pl_tanh_two_beta, samples, 0.3)  # estimate off by a factor ~2
    with pytest.raises(GradingError, match=loose("not implemented")):
        g.check_pl_estimate(blank, samples, 0.3)


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("wrong", [sweep_factor_one, sweep_all_sites])
def test_sampler_distribution_rejects_mistakes_on_every_seed(wrong, seed):
    """The chi-square check on 4x4 catches the missing factor 2 and the all-at-once update
    on every seed used."""
    with pytest.raises(GradingError):
        g.check_sampler_distribution(wrong, seed=seed)


# ------------------------------------------------------------------ exercise 4: tau_int


def tau_int(x):
    """Written here (as the solution does): the check rejects a call of the course's own."""
    x = np.asarray(x, dtype=float)
    d = x - x.mean()
    n = len(x)
    c = np.correlate(d, d, mode="full")[n - 1:] / n
    taus = 1.0 + 2.0 * np.cumsum(c[1:] / c[0])
    for M in range(1, n):
        if M >= 5.0 * taus[M - 1]:
            return float(taus[M - 1])
    return float(taus[-1])


def _rho(x):
    from course_lib.mrf.diagnostics import autocorrelation

    return autocorrelation(np.asarray(x))


def tau_no_factor_two(x):
    rho = _rho(x)
    taus = 1 + 2 * np.cumsum(rho[1:])
    M = int(np.argmax(np.arange(1, len(rho)) >= 5 * taus))
    return float(1 + np.cumsum(rho[1:])[M])


def tau_no_window(x):
    return float(1 + 2 * _rho(x)[1:].sum())



@pytest.mark.parametrize("seed", range(5))
@pytest.mark.parametrize("wrong, message", [
    (blank, "not implemented"),
    (tau_no_factor_two, "counts twice"),
    (tau_no_window, "end of the trace"),
])
def test_tau_int_check_rejects_wrong_answers_on_every_seed(wrong, message, seed):
    with pytest.raises(GradingError, match=loose(message)):
        g.check_tau_int(wrong, seed=seed)


@pytest.mark.parametrize("seed", range(5))
def test_tau_int_check_passes_on_reference(seed, capsys):
    g.check_tau_int(tau_int, seed=seed)
    assert "✔" in capsys.readouterr().out


def test_tau_int_check_refuses_non_numbers():
    with pytest.raises(GradingError):
        g.check_tau_int(lambda x: None)
    with pytest.raises(GradingError):
        g.check_tau_int(lambda x: np.ones(3))
