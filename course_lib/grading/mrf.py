"""Checks for the MRF chapter's exercises (``solutions/04_*.ipynb``).

Each check builds its own inputs with a fixed seed, runs the learner's function, compares the
result with the reference computed from :mod:`course_lib.mrf`, and raises
:class:`~course_lib.grading.GradingError` with a message that says what is wrong. Where a
mistake is common (a missing factor 2, updating every site at once, forgetting the data term)
the check recognises it and says so.

Conventions shared with the exercises:

- spins are ``±1`` float tensors of shape ``(N, H, W)`` (a batch of lattices);
- a checkerboard colour is ``0`` (sites with ``row + col`` even) or ``1`` (odd);
- binary images are ``{0, 1}`` tensors of shape ``(H, W)``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy import stats

from .. import mrf as _mrf_module
from ..mrf import _ising, _lattice, denoise, diagnostics
from . import (
    GradingError,
    as_number,
    check_close,
    check_shape,
    grading_check,
    original,
    passed,
    protect,
    run_learner,
    run_seed,
)

for _module in (_mrf_module, _lattice, _ising, denoise, diagnostics):
    protect(_module)

#: The course's own answers, which the learner's functions may not call (bound at import).
_LATTICE = {name: original(_lattice, name) for name in (
    "local_field", "_neighbour_sum", "gibbs_sweep", "_gibbs_sweep", "gibbs_conditional",
    "_conditional")}
_ISING_MODEL = original(_ising, "IsingModel")
_REFERENCES = {
    "local_field": (_LATTICE["local_field"], _LATTICE["_neighbour_sum"]),
    "half_sweep": tuple(_LATTICE.values()),
    "icm": tuple(v for k, v in vars(original(denoise, "BinaryDenoiser")).items()
                 if callable(v) and "icm" in k.lower()),
    "pl": (original(_ISING_MODEL, "pseudo_log_likelihood"),
           original(_ISING_MODEL, "_fit_pseudolikelihood")),
    "tau": (original(diagnostics, "integrated_autocorrelation_time"),
            original(diagnostics, "effective_sample_size")),
}

__all__ = [
    "check_local_field",
    "check_half_sweep",
    "check_sampler_distribution",
    "check_icm",
    "check_pl_gradient",
    "check_pl_estimate",
    "check_tau_int",
]


# ------------------------------------------------------------------ references


def _colour_mask(shape, colour: int) -> torch.Tensor:
    """Boolean ``(H, W)`` mask of the sites with ``(row + col) % 2 == colour``: the two
    checkerboard colours of eq. (4.10) [mrf-checkerboard] (open boundary, or periodic with even
    sides)."""
    H, W = shape
    rows = torch.arange(H).reshape(-1, 1)
    cols = torch.arange(W).reshape(1, -1)
    return (rows + cols) % 2 == colour


def _ref_local_field(s: torch.Tensor, J: float, h: float, periodic: bool = True) -> torch.Tensor:
    """Eq. (4.8) [mrf-local-field] from course_lib.mrf, as a float64 CPU tensor."""
    return torch.as_tensor(_mrf_module.local_field(s, J=J, h=h, periodic=periodic)).double().cpu()


def _ref_half_sweep(s, beta, colour, u, J, h, factor=2.0, compare=">"):
    """The checkerboard half-sweep of eq. (4.10) [mrf-checkerboard] with given uniforms ``u``.

    ``factor`` and ``compare`` exist only to recognise the usual mistakes
    (:data:`_HALF_SWEEP_MISTAKES`).
    """
    field = _ref_local_field(s, J, h)
    p_up = torch.sigmoid(factor * beta * field)
    up = (u.double() < p_up) if compare == ">" else (u.double() > p_up)
    proposal = torch.where(up, 1.0, -1.0).double()
    mask = _colour_mask(s.shape[-2:], colour)
    return torch.where(mask, proposal, s.double())


def _random_spins(shape, generator) -> torch.Tensor:
    return torch.where(torch.rand(shape, generator=generator, dtype=torch.float32) < 0.5,
                       1.0, -1.0).to(torch.float32)


def _as_spins(value, shape, what: str) -> np.ndarray:
    arr = check_shape(value, shape, what)
    if not np.all(np.isin(arr, (-1.0, 1.0))):
        bad = arr[~np.isin(arr, (-1.0, 1.0))][:3]
        raise GradingError(f"{what} must contain only the spins -1 and +1, found e.g. {bad}")
    return arr


# ------------------------------------------------------------------ exercise 1: Gibbs sampler


@grading_check
def check_local_field(local_field) -> None:
    """``local_field(s, J, h)`` → ``J * (sum of the 4 periodic neighbours) + h`` for ``(N, H, W)``."""
    gen = torch.Generator().manual_seed(4)
    rng = np.random.default_rng(run_seed())  # one lattice drawn per run
    drawn = ((int(rng.integers(1, 4)), 2 * int(rng.integers(2, 5)), 2 * int(rng.integers(2, 5))),
             round(float(rng.uniform(-2, 2)), 3), round(float(rng.uniform(-1, 1)), 3))
    for shape, J, h in [((3, 5, 6), 1.0, 0.0), ((2, 4, 4), 0.7, 0.25), ((1, 6, 3), -0.5, -1.0),
                        drawn]:
        s = _random_spins(shape, gen)
        expected = _ref_local_field(s, J, h)
        got = run_learner(local_field, s.clone(), J, h, what="local_field",
                          references=_REFERENCES["local_field"])
        got_arr = check_shape(got, shape, f"local_field(s of shape {shape}, J={J}, h={h})")
        if not np.allclose(got_arr, expected.numpy(), atol=1e-5):
            hint = ""
            if np.allclose(got_arr, _ref_local_field(s, J, h, periodic=False).numpy(), atol=1e-5):
                hint = ("your field is right inside the lattice but not on its border: the "
                        "lattice is periodic, so the neighbour above row 0 is the last row "
                        "(torch.roll wraps around)")
            elif np.allclose(got_arr, (_ref_local_field(s, 1.0, 0.0) * J).numpy(), atol=1e-5):
                hint = "you forgot to add the external field h"
            elif np.allclose(got_arr, (_ref_local_field(s, 1.0, 0.0) + h).numpy(), atol=1e-5):
                hint = "multiply the neighbour sum by the coupling J"
            elif np.allclose(got_arr, (_ref_local_field(s, J, h) + J * s).numpy(), atol=1e-5):
                hint = "the site itself is not one of its neighbours: do not include s in the sum"
            check_close(got_arr, expected.numpy(), f"local_field(s of shape {shape}, J={J}, h={h})",
                        atol=1e-5, hint=hint or "f_i = J * (up + down + left + right) + h")
    passed("local_field matches eq. (4.8) [mrf-local-field] on three lattices")


#: The usual mistakes of half_sweep, in the order a failed check tests them: the arguments of
#: :func:`_ref_half_sweep` that reproduce each one, and its hint (``{J}``, ``{h}``: the case's).
_HALF_SWEEP_MISTAKES = (
    (dict(factor=1.0), "you used sigmoid(beta * f). The two values of a spin differ by 2 f in "
                       "the exponent, so P(s = +1 | neighbours) = sigmoid(2 * beta * f)"),
    (dict(compare="<"), "a spin should become +1 when u < P(s = +1 | neighbours) (then it is +1 "
                        "with exactly that probability); you compared the other way round"),
    (dict(J=1.0), "your answer ignores the coupling J (here J = {J}): the local field is "
                  "f = J * (sum of the neighbours) + h"),
    (dict(h=0.0), "your answer ignores the external field h (here h = {h}): the local "
                  "field is f = J * (sum of the neighbours) + h"),
    (dict(factor=-2.0), "sign error: P(s = +1) = sigmoid(+2 * beta * f) grows with the field f"),
)


def _half_sweep_answer(case, mistake: dict | None = None) -> torch.Tensor:
    """The answer to a case of :func:`_half_sweep_cases`: the reference's, or with ``mistake``
    (the arguments of an entry of :data:`_HALF_SWEEP_MISTAKES`) the one that mistake gives."""
    shape, beta, colour, J, h, s, u = case
    return _ref_half_sweep(**{"s": s, "beta": beta, "colour": colour, "u": u, "J": J, "h": h,
                              **(mistake or {})})


def _half_sweep_cases(seed: int):
    """Inputs for check_half_sweep: lattices, parameters and uniforms, chosen so that every
    known mistake (J or h ignored, sigmoid(beta f), the comparison reversed, a sign error)
    changes at least one spin of the answer: the check cannot pass them by luck, whatever
    the seed (the uniforms are redrawn until this holds)."""
    params = [((4, 6, 8), 0.6, 0, 1.0, 0.1), ((3, 4, 4), 0.3, 1, -1.0, 0.0),
              ((2, 8, 6), 0.7, 0, 0.4, -0.3), ((2, 6, 6), 0.5, 1, 2.0, 0.2)]
    gen = torch.Generator().manual_seed(int(seed))
    for _ in range(100):
        cases = []
        for shape, beta, colour, J, h in params:
            s = _random_spins(shape, gen)
            u = torch.rand(shape, generator=gen, dtype=torch.float32)
            cases.append((shape, beta, colour, J, h, s, u))
        if all(any(not torch.equal(_half_sweep_answer(case), _half_sweep_answer(case, mistake))
                   for case in cases) for mistake, _ in _HALF_SWEEP_MISTAKES):
            return cases
    raise RuntimeError("could not draw discriminating inputs")  # pragma: no cover


@grading_check
def check_half_sweep(half_sweep, seed: int = 5) -> None:
    """``half_sweep(s, beta, colour, u, J, h)`` → spins after redrawing one colour.

    Sites of ``colour`` become ``+1`` where ``u < sigmoid(2 beta f)`` and ``-1`` elsewhere;
    sites of the other colour keep their value. The inputs (``seed``) always include a
    negative and a non-unit ``J`` and a non-zero ``h``, so an answer that ignores either is
    rejected on every seed.
    """
    cases = _half_sweep_cases(seed) + _half_sweep_cases(run_seed())  # fixed, drawn per run
    for case in cases:
        shape, beta, colour, J, h, s, u = case
        what = f"half_sweep(s of shape {shape}, beta={beta}, colour={colour})"
        got = run_learner(half_sweep, s.clone(), beta, colour, u.clone(), J, h, what="half_sweep",
                          references=_REFERENCES["half_sweep"])
        got = _as_spins(got, shape, what)
        mask = _colour_mask(shape[-2:], colour).numpy()
        other = ~np.broadcast_to(mask, shape)
        if not np.array_equal(got[other], s.numpy()[other]):
            raise GradingError(
                f"{what} changed sites of the OTHER colour. Only the sites with "
                f"(row + col) % 2 == {colour} may be redrawn; their neighbours must stay fixed. "
                "Updating all sites at once from the old values is not a Gibbs sampler: "
                "neighbours would be drawn together from conditionals that each assume the "
                "other is fixed."
            )
        expected = _half_sweep_answer(case).numpy()
        if not np.array_equal(got, expected):
            hint = next((hint.format(J=J, h=h) for mistake, hint in _HALF_SWEEP_MISTAKES
                         if np.array_equal(got, _half_sweep_answer(case, mistake).numpy())),
                        "compute f with your local_field(s, J, h), then s_new = +1 where "
                        "u < sigmoid(2 * beta * f), -1 elsewhere, on the sites of this colour only")
            raise GradingError(f"{what}: {int((got != expected).sum())} spins differ from the "
                               f"reference. Hint: {hint}")
    passed("half_sweep redraws exactly one colour from sigmoid(2 beta f), eq. (4.10) [mrf-checkerboard], "
           "on four lattices (J = 1, -1, 0.4, 2)")


def _ising_energies(s: np.ndarray) -> np.ndarray:
    """The energy of each lattice of the ``(N, L, L)`` spins ``s`` (periodic, J = 1, h = 0)."""
    s = s.astype(np.int64)
    return -((s * np.roll(s, 1, axis=1)).sum(axis=(1, 2)) + (s * np.roll(s, 1, axis=2)).sum(axis=(1, 2)))


def _exact_energy_distribution(L: int, beta: float):
    """Exact distribution of the Ising energy on an L×L periodic lattice (J=1, h=0).

    Enumerates all 2**(L*L) states (L=4: 65 536) and returns (energies, probabilities).
    """
    n = L * L
    idx = np.arange(2**n, dtype=np.int64)
    bits = (idx[:, None] >> np.arange(n)) & 1
    energy = _ising_energies((2 * bits - 1).reshape(-1, L, L))
    levels, inverse = np.unique(energy, return_inverse=True)
    weights = np.exp(-beta * (energy - energy.min()))
    probs = np.bincount(inverse, weights=weights) / weights.sum()
    return levels, probs


@grading_check
def check_sampler_distribution(half_sweep, beta: float = 0.35, n_chains: int = 4000,
                               n_sweeps: int = 40, seed: int = 0) -> dict:
    """Run a Gibbs sampler built from the learner's ``half_sweep`` on a 4×4 periodic lattice
    and compare the distribution of the energy with the exact one (enumeration of all 65 536
    states) by a chi-square test. Returns the test's numbers."""
    L = 4
    gen = torch.Generator().manual_seed(seed)
    s = _random_spins((n_chains, L, L), gen)
    for _ in range(n_sweeps):
        for colour in (0, 1):
            u = torch.rand(s.shape, generator=gen, dtype=torch.float32)
            out = run_learner(half_sweep, s, beta, colour, u, 1.0, 0.0, what="half_sweep",
                              references=_REFERENCES["half_sweep"])
            s = torch.as_tensor(_as_spins(out, (n_chains, L, L), "half_sweep(...)"),
                                dtype=torch.float32)
    energies = _ising_energies(s.numpy())
    levels, probs = _exact_energy_distribution(L, beta)
    observed = np.array([(energies == e).sum() for e in levels], dtype=float)
    if observed.sum() != n_chains:
        raise GradingError("half_sweep produced states whose energy is impossible on a 4x4 lattice")
    expected = probs * n_chains
    # merge rare energy levels (expected count < 5) into one bin, as the chi-square test needs
    rare = expected < 5
    obs = np.append(observed[~rare], observed[rare].sum())
    exp = np.append(expected[~rare], expected[rare].sum())
    if exp[-1] == 0:
        obs, exp = obs[:-1], exp[:-1]
    chi2 = float(((obs - exp) ** 2 / exp).sum())
    dof = len(obs) - 1
    p_value = float(stats.chi2.sf(chi2, dof))
    mean_sampled = float(energies.mean()) / (L * L)
    mean_exact = float((levels * probs).sum()) / (L * L)
    if p_value < 1e-3:
        raise GradingError(
            f"your sampler does not sample the Ising distribution: on a 4x4 lattice at "
            f"beta={beta} the mean energy per spin is {mean_sampled:.4f}, exactly "
            f"{mean_exact:.4f}; chi-square = {chi2:.1f} with {dof} degrees of freedom "
            f"(p = {p_value:.1e}). Check the factor 2 in sigmoid(2 beta f) and that only one "
            f"colour is redrawn at a time."
        )
    passed(f"energy distribution matches the exact one on 4x4 (chi2 = {chi2:.1f}, dof = {dof}, "
           f"p = {p_value:.2f}; mean energy/spin {mean_sampled:.4f} vs exact {mean_exact:.4f})")
    return {"chi2": chi2, "dof": dof, "p_value": p_value,
            "mean_energy_sampled": mean_sampled, "mean_energy_exact": mean_exact}


# ------------------------------------------------------------------ exercise 2: ICM


def _denoise_field(labels: torch.Tensor, noisy: torch.Tensor, coupling: float, data_weight: float):
    """Field of the denoising energy (free boundary): J * sum of neighbour spins + lambda * t."""
    s = 2.0 * labels.double() - 1.0
    t = 2.0 * noisy.double() - 1.0
    return _ref_local_field(s, coupling, 0.0, periodic=False) + data_weight * t


def _ref_icm(noisy: torch.Tensor, coupling: float, data_weight: float, max_sweeps: int = 50,
             tie: str = "keep"):
    """ICM with the schedule of the exercise: start at the noisy image; each sweep sets the
    colour-0 sites, then the colour-1 sites, to the sign of their field (ties: unchanged);
    stop after a sweep that changes nothing."""
    labels = noisy.clone().double()
    for _ in range(max_sweeps):
        changed = False
        for colour in (0, 1):
            mask = _colour_mask(noisy.shape, colour)
            f = _denoise_field(labels, noisy, coupling, data_weight)
            at_tie = {"keep": labels, "one": torch.ones_like(labels),
                      "zero": torch.zeros_like(labels)}[tie]
            new = torch.where(f > 0, 1.0, torch.where(f < 0, 0.0, at_tie))
            new = torch.where(mask, new, labels)
            changed |= bool((new != labels).any())
            labels = new
        if not changed:
            break
    return labels


def _denoise_energy(labels, noisy, coupling, data_weight) -> float:
    """Eq. (4.17) [mrf-denoise-energy], computed here by hand (free boundary)."""
    s = 2.0 * torch.as_tensor(labels).double() - 1.0
    t = 2.0 * torch.as_tensor(noisy).double() - 1.0
    pairs = (s[1:, :] * s[:-1, :]).sum() + (s[:, 1:] * s[:, :-1]).sum()
    return float(-coupling * pairs - data_weight * (s * t).sum())


def _icm_instance(seed: int, H: int = 24, W: int = 30, p: float = 0.15):
    """A small binary image (a disc and a bar) with a fraction p of its pixels flipped."""
    gen = torch.Generator().manual_seed(seed)
    r, c = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    clean = (((r - H / 2) ** 2 + (c - W / 3) ** 2) < (H / 3.5) ** 2) | ((c > 0.7 * W) & (r > 3))
    flips = torch.rand((H, W), generator=gen, dtype=torch.float32) < p
    noisy = (clean ^ flips).double()
    return clean.double(), noisy


def _icm_cases(seed: int):
    """(image seed, coupling, data_weight) for check_icm. The last case has data_weight =
    2 × coupling, so a pixel whose neighbours vote 2 against its observed value has a field of
    exactly 0: the tie rule (keep the current value) decides, and an image is drawn on which
    keeping, setting 1 and setting 0 at ties give three different results."""
    cases = [(seed, 1.0, 0.9), (seed + 1, 0.6, 1.1), (seed + 2, 1.5, 0.4)]
    for k in range(100):
        image_seed = seed + 3 + k
        _, noisy = _icm_instance(image_seed)
        keep = _ref_icm(noisy, 1.0, 2.0)
        if not torch.equal(keep, _ref_icm(noisy, 1.0, 2.0, tie="one")) and \
                not torch.equal(keep, _ref_icm(noisy, 1.0, 2.0, tie="zero")):
            return cases + [(image_seed, 1.0, 2.0)]
    raise RuntimeError("no image exercises the tie rule")  # pragma: no cover


@grading_check
def check_icm(icm_denoise, seed: int = 0) -> None:
    """``icm_denoise(noisy, coupling, data_weight, max_sweeps)`` → ``{0,1}`` image ``(H, W)``.

    Compared with the reference schedule (checkerboard order, ties keep their value) and, to
    explain a difference, tested for being a local minimum of eq. (4.17) [mrf-denoise-energy]. One
    case has fields that are exactly 0, so the tie rule is exercised."""
    rng = np.random.default_rng(run_seed())  # one image and its parameters drawn per run
    cases = _icm_cases(int(seed)) + [(int(rng.integers(1000, 2**31)),
                                      round(float(rng.uniform(0.3, 1.5)), 3),
                                      round(float(rng.uniform(0.3, 1.5)), 3))]
    for seed, coupling, data_weight in cases:
        clean, noisy = _icm_instance(seed)
        what = f"icm_denoise(noisy, coupling={coupling}, data_weight={data_weight})"
        got = run_learner(icm_denoise, noisy.clone(), coupling, data_weight, 50,
                          what="icm_denoise", references=_REFERENCES["icm"])
        got = check_shape(got, noisy.shape, what)
        if not np.all(np.isin(got, (0.0, 1.0))):
            raise GradingError(f"{what} must return labels 0 and 1 (not spins -1/+1)")
        expected = _ref_icm(noisy, coupling, data_weight).numpy()
        if np.array_equal(got, expected):
            continue
        e_got = _denoise_energy(got, noisy, coupling, data_weight)
        e_ref = _denoise_energy(expected, noisy, coupling, data_weight)
        e_noisy = _denoise_energy(noisy, noisy, coupling, data_weight)
        if np.array_equal(got, _ref_icm(noisy, coupling, data_weight, tie="one").numpy()) or \
                np.array_equal(got, _ref_icm(noisy, coupling, data_weight, tie="zero").numpy()):
            hint = ("the tie rule: where the field is exactly 0 (here data_weight = 2 × coupling, "
                    "so it happens), both values have the same energy and the pixel must KEEP "
                    "its current value; you set it to a fixed label")
        elif np.array_equal(got, _ref_icm(noisy, coupling, 0.0).numpy()):
            hint = ("you left out the data term: the field of a pixel is "
                    "coupling * (sum of neighbour spins) + data_weight * t_i, with t = 2y - 1. "
                    "Without it ICM only smooths and forgets the observed image")
        elif np.array_equal(got, _ref_icm(noisy, -coupling, -data_weight).numpy()):
            hint = "sign error: set a pixel to 1 when its field is POSITIVE (that lowers the energy)"
        elif e_got > e_noisy:
            hint = ("your result has a HIGHER energy than the noisy image you started from; "
                    "every ICM step must lower (or keep) the energy")
        else:
            s = 2.0 * torch.as_tensor(got) - 1.0
            f = _denoise_field(torch.as_tensor(got), noisy, coupling, data_weight)
            gain = (2 * s * f).numpy()  # energy change when pixel i is flipped
            if (gain < -1e-9).any():
                r, c = np.unravel_index(np.argmin(gain), gain.shape)
                hint = (f"it is not even a local minimum: flipping pixel ({r}, {c}) lowers the "
                        f"energy by {-gain[r, c]:.3g}. Did you stop too early, or update all "
                        "pixels at once from the old values?")
            else:
                hint = ("it is a local minimum, but not the one the prescribed schedule reaches: "
                        "start from the noisy image, update colour 0 then colour 1 in each "
                        "sweep, leave a pixel unchanged when its field is exactly 0")
        raise GradingError(f"{what} differs from the reference in {int((got != expected).sum())} "
                           f"pixels (energy {e_got:.2f}, reference {e_ref:.2f}). Hint: {hint}")
    passed(f"icm_denoise matches the reference ICM on {len(cases)} noisy images (ties included)")


# ------------------------------------------------------------------ exercise 3: pseudo-likelihood


def _ref_pl_objective(s: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
    """Mean over samples and sites of log p(s_i | neighbours) for the Ising model, J=1, h=0
    (eq. (4.15) [mrf-pseudolikelihood]), written independently of the learner's formula."""
    f = _ref_local_field(s, 1.0, 0.0)
    # log p(s_i | f_i) = beta s_i f_i - log(2 cosh(beta f_i)) = log sigmoid(2 beta s_i f_i)
    return torch.nn.functional.logsigmoid(2.0 * beta * s.double() * f).mean()


def _ref_pl_gradient(s: torch.Tensor, beta: float) -> float:
    b = torch.tensor(float(beta), dtype=torch.float64, requires_grad=True)
    (grad,) = torch.autograd.grad(_ref_pl_objective(s, b), b)
    return float(grad)


@grading_check
def check_pl_gradient(pl_gradient) -> None:
    """``pl_gradient(s, beta)`` → d/d beta of the mean log pseudo-likelihood (a float)."""
    gen = torch.Generator().manual_seed(7)
    rng = np.random.default_rng(run_seed())  # one case drawn per run
    drawn = ((int(rng.integers(1, 5)), 2 * int(rng.integers(2, 5)), 2 * int(rng.integers(2, 5))),
             round(float(rng.uniform(0.05, 1.0)), 3))
    for shape, beta in [((5, 6, 6), 0.3), ((2, 8, 4), 0.8), ((3, 4, 6), 0.05), drawn]:
        s = _random_spins(shape, gen)
        # make the spins smoother than random so that the gradient is not ~0
        s = torch.where(torch.rand(shape, generator=gen, dtype=torch.float32) < 0.3,
                        torch.roll(s, 1, dims=-1), s)
        what = f"pl_gradient(s of shape {shape}, beta={beta})"
        expected = _ref_pl_gradient(s, beta)
        got = run_learner(pl_gradient, s.clone(), beta, what="pl_gradient",
                          references=_REFERENCES["pl"])
        got = as_number(got, what)
        if math.isclose(got, expected, rel_tol=1e-4, abs_tol=1e-6):
            continue
        f, sd = _ref_local_field(s, 1.0, 0.0), s.double()
        hint = ("d/d beta of [beta s_i f_i - log(2 cosh(beta f_i))] is f_i (s_i - tanh(beta f_i)); "
                "average it over all sites and samples")
        if math.isclose(got, -expected, rel_tol=1e-4, abs_tol=1e-6):
            hint = "sign error: the gradient is f_i (s_i - tanh(beta f_i)), data minus model"
        elif math.isclose(got, expected * s.numel(), rel_tol=1e-4):
            hint = "take the MEAN over samples and sites, not the sum"
        elif math.isclose(got, float((f * (sd - torch.tanh(2 * beta * f))).mean()), rel_tol=1e-4):
            hint = "the conditional mean of s_i is tanh(beta f_i), not tanh(2 beta f_i)"
        elif math.isclose(got, float((f * (sd - torch.sigmoid(2 * beta * f))).mean()), rel_tol=1e-4):
            hint = ("you mixed 0/1 and -1/+1: the mean of a ±1 spin is "
                    "2 sigmoid(2 beta f) - 1 = tanh(beta f), not sigmoid(2 beta f)")
        raise GradingError(f"{what} = {got:.6g}, expected {expected:.6g}. Hint: {hint}")
    passed("pl_gradient matches the derivative of the log pseudo-likelihood (autograd)")


@grading_check
def check_pl_estimate(pl_gradient, samples, beta_true: float, tolerance: float = 0.05) -> float:
    """Find the root of the learner's ``pl_gradient`` on ``samples`` by bisection on
    [0.01, 2] and check that it is within ``tolerance`` (relative) of ``beta_true``."""
    s = torch.as_tensor(samples, dtype=torch.float32)

    def g(beta):
        return as_number(run_learner(pl_gradient, s, beta, what="pl_gradient",
                                     references=_REFERENCES["pl"]), "pl_gradient(samples, beta)")

    lo, hi = 0.01, 2.0
    g_lo, g_hi = g(lo), g(hi)
    if not (g_lo > 0 > g_hi):
        raise GradingError(
            f"the pseudo-likelihood gradient should be positive at beta={lo} ({g_lo:.3g}) and "
            f"negative at beta={hi} ({g_hi:.3g}): log PL is concave with its maximum in between"
        )
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        if g(mid) > 0:
            lo = mid
        else:
            hi = mid
    beta_hat = 0.5 * (lo + hi)
    err = abs(beta_hat - beta_true) / beta_true
    if err > tolerance:
        raise GradingError(f"the maximum pseudo-likelihood estimate {beta_hat:.4f} is "
                           f"{100 * err:.1f}% away from the true beta={beta_true}")
    passed(f"maximum pseudo-likelihood beta = {beta_hat:.4f} (true {beta_true}, "
           f"error {100 * err:.1f}%)")
    return beta_hat


# ------------------------------------------------------------------ exercise 4: autocorrelation


def _ar1_trace(phi: float, n: int, seed: int) -> np.ndarray:
    """An AR(1) trace x_t = phi x_{t-1} + e_t (stationary start): τ_int = (1 + phi)/(1 - phi)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal(n)
    x = np.empty(n)
    x[0] = e[0] / math.sqrt(1.0 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x


def _tau_variants(x: np.ndarray) -> dict:
    """The reference τ_int (Sokal's window, c = 5) and the values of common mistakes."""
    rho = diagnostics.autocorrelation(x)
    cums = np.cumsum(rho[1:])
    taus = 1.0 + 2.0 * cums
    lags = np.arange(1, len(rho))
    M = int(np.argmax(lags >= 5.0 * taus)) if (lags >= 5.0 * taus).any() else len(taus) - 1
    return {
        "reference": float(taus[M]),
        "no factor 2": float(1.0 + cums[M]),
        "no window": float(1.0 + 2.0 * cums[-1]),
        "window from the lag-0 term": float(2.0 * np.cumsum(rho)[M] - 1.0 + 2.0 * rho[M + 1]),
    }


@grading_check
def check_tau_int(tau_int, seed: int = 0) -> None:
    """``tau_int(trace)`` → the integrated autocorrelation time of a 1-D trace (a float).

    Checked on AR(1) traces with known ``τ_int = (1 + φ)/(1 - φ)`` (φ = 0, 0.6, 0.9) and on a
    magnetisation trace of the Ising model, against eq. (4.11) [mrf-tau-int] with Sokal's window
    (``c = 5``), within 2% (window choices differ by one lag at most)."""
    drawn = round(float(np.random.default_rng(run_seed()).uniform(0.2, 0.85)), 3)  # per run
    for phi, n, trace_seed in ((0.0, 4000, seed), (0.6, 4000, seed + 1), (0.9, 8000, seed + 2),
                               (drawn, 4000, run_seed() % 2**31)):
        x = _ar1_trace(phi, n, trace_seed)
        what = f"tau_int(AR(1), phi = {phi:g} trace of length {n})"
        variants = _tau_variants(x)
        got = run_learner(tau_int, x.copy(), what="tau_int", references=_REFERENCES["tau"])
        got = as_number(got, what)
        if not math.isfinite(got):
            raise GradingError(f"{what} is {got}: expected a finite number")
        expected = variants["reference"]
        if abs(got - expected) <= 0.02 * expected + 1e-9:
            continue
        hint = ("τ_int = 1 + 2 Σ_{t=1}^{M} ρ(t), with ρ(t) the autocorrelation normalised by "
                "ρ(0) = 1 and M the first lag with M ≥ 5 τ_int(M)")
        for mistake, value in variants.items():
            if mistake != "reference" and abs(got - value) <= 0.02 * abs(value) + 1e-9:
                hint = {
                    "no factor 2": "each lag t > 0 counts twice (t and -t): 1 + 2 Σ ρ(t)",
                    "no window": ("you summed ρ(t) up to the end of the trace: its tail is "
                                  "pure noise. Stop at Sokal's window, the first M with "
                                  "M ≥ 5 τ_int(M)"),
                    "window from the lag-0 term": "start the sum at lag 1: ρ(0) = 1 is the 1",
                }[mistake]
        raise GradingError(f"{what} = {got:.4g}, expected {expected:.4g} (the exact τ_int of "
                           f"this process is {(1 + phi) / (1 - phi):.3g}). Hint: {hint}")
    passed("tau_int matches eq. (4.11) [mrf-tau-int] with Sokal's window on four AR(1) traces")
