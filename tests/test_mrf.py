"""Tests of course_lib.mrf against exact results, brute force and naive loops.

Every expected value here comes from an independent computation: Onsager's and Yang's
closed forms (checked themselves against a numerical integral), enumeration of all states
of tiny lattices, brute-force minimisation over all labelings, and plain Python loops.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch
from _shared import CPU, ROOT
from scipy import stats
from sklearn.exceptions import NotFittedError

from course_lib import mrf
from course_lib.data import flip_noise, load_binary_image, load_digits


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Run this module's tests with one intra-op thread, restoring the setting afterwards.

    The test machine's 2 cores are shared: when other processes keep them busy, torch's
    2-thread kernels wait on each other and run 10-20 times slower than 1 thread (measured:
    PairwiseMRF.fit 0.9 s with 1 thread, 16.6 s with 2, at load average 5). On an idle
    machine 1 thread costs at most a factor 2 on the largest lattices here.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ----------------------------------------------------------------------------- helpers


def naive_energy(x: np.ndarray, J: float, h: float, periodic: bool) -> float:
    """-J Σ_<ij> x_i x_j - h Σ x_i with a double loop over sites (right and down bonds)."""
    H, W = x.shape
    e = 0.0
    for i in range(H):
        for j in range(W):
            if periodic or i + 1 < H:
                e -= J * x[i, j] * x[(i + 1) % H, j]
            if periodic or j + 1 < W:
                e -= J * x[i, j] * x[i, (j + 1) % W]
            e -= h * x[i, j]
    return e


def naive_field(x: np.ndarray, J: float, h: float, periodic: bool) -> np.ndarray:
    H, W = x.shape
    f = np.zeros((H, W))
    for i in range(H):
        for j in range(W):
            total = 0.0
            for di, dj in ((-1, 0), (1, 0), (0, -1), (0, 1)):
                a, b = i + di, j + dj
                if periodic:
                    total += x[a % H, b % W]
                elif 0 <= a < H and 0 <= b < W:
                    total += x[a, b]
            f[i, j] = J * total + h
    return f


def all_configurations(H: int, W: int) -> np.ndarray:
    """All ±1 configurations, built independently of the library (itertools)."""
    return np.array(list(itertools.product([-1, 1], repeat=H * W)), dtype=float).reshape(-1, H, W)


def state_codes(x: torch.Tensor) -> np.ndarray:
    """Code of each configuration: bit k (row-major site k) is 1 where the spin is +1."""
    bits = (x.reshape(len(x), -1) > 0).cpu().numpy().astype(np.int64)
    return bits @ (2 ** np.arange(bits.shape[1]))


def chi_square_pvalue(counts: np.ndarray, probs: np.ndarray, min_expected: float = 5.0) -> float:
    """Pearson chi-square goodness of fit, states with small expectation pooled into one bin."""
    n = counts.sum()
    expected = n * probs
    big = expected >= min_expected
    obs = np.append(counts[big], counts[~big].sum())
    exp = np.append(expected[big], expected[~big].sum())
    if exp[-1] < min_expected:  # the pooled bin itself is too small: merge it into the smallest
        obs, exp = obs[:-1], exp[:-1]
        obs[np.argmin(exp)] += counts[~big].sum()
        exp[np.argmin(exp)] += expected[~big].sum()
    return float(stats.chisquare(obs, exp).pvalue)


def brute_force_denoise_minimum(denoiser: mrf.BinaryDenoiser, noisy: np.ndarray) -> float:
    H, W = noisy.shape
    best = math.inf
    for bits in itertools.product([0, 1], repeat=H * W):
        labels = np.array(bits, dtype=np.uint8).reshape(H, W)
        best = min(best, denoiser.energy(labels, noisy))
    return best


# ----------------------------------------------------------------------------- exact results


def test_critical_temperature():
    assert mrf.ising_critical_temperature() == pytest.approx(2.269185314, abs=1e-8)
    assert mrf.ising_critical_temperature(J=2.0) == pytest.approx(2 * 2.269185314, abs=1e-8)


@pytest.mark.parametrize("T, M", [(1.5, 0.9865), (2.0, 0.9113), (2.25, 0.6719)])
def test_onsager_magnetization_known_values(T, M):
    assert mrf.onsager_magnetization(T) == pytest.approx(M, abs=1e-4)


def test_onsager_magnetization_array_and_limits():
    T = np.array([0.1, 1.0, 2.27, 3.0, 10.0])
    M = mrf.onsager_magnetization(T)
    assert isinstance(M, np.ndarray) and M.shape == T.shape
    assert M[0] == pytest.approx(1.0, abs=1e-12)
    assert np.all(M[2:] == 0.0)  # 2.27 is just above T_c = 2.2692
    assert np.all(np.diff(M) <= 0)
    assert isinstance(mrf.onsager_magnetization(1.5), float)


def onsager_energy_by_integral(T: float, J: float = 1.0, n: int = 400) -> float:
    """u = d(βf)/dβ from Onsager's double integral, differentiated under the integral:

    -βf = ln 2 + 1/(2π²) ∫∫_[0,π]² ln[cosh²(2βJ) - sinh(2βJ)(cos a + cos b)] da db
    """
    beta = 1.0 / T
    c, s = math.cosh(2 * beta * J), math.sinh(2 * beta * J)
    nodes, weights = np.polynomial.legendre.leggauss(n)
    a = (nodes + 1) * math.pi / 2
    w = weights * math.pi / 2
    cos_sum = np.cos(a)[:, None] + np.cos(a)[None, :]
    d_log = (4 * J * c * s - 2 * J * c * cos_sum) / (c * c - s * cos_sum)
    return -float((w[:, None] * w[None, :] * d_log).sum()) / (2 * math.pi**2)


@pytest.mark.parametrize("T", [1.0, 1.5, 2.0, 2.6, 3.0, 5.0])
def test_onsager_energy_matches_integral_form(T):
    assert mrf.onsager_energy_per_spin(T) == pytest.approx(onsager_energy_by_integral(T), abs=2e-4)


def test_onsager_energy_limits():
    Tc = mrf.ising_critical_temperature()
    assert mrf.onsager_energy_per_spin(Tc) == pytest.approx(-math.sqrt(2), abs=1e-12)
    # continuous through T_c (the divergence of K(k) is only logarithmic)
    assert mrf.onsager_energy_per_spin(Tc * (1 + 1e-9)) == pytest.approx(-math.sqrt(2), abs=1e-6)
    assert mrf.onsager_energy_per_spin(0.2) == pytest.approx(-2.0, abs=1e-8)
    assert mrf.onsager_energy_per_spin(1e4) == pytest.approx(0.0, abs=1e-3)
    u = mrf.onsager_energy_per_spin(np.linspace(0.5, 5, 50))
    assert np.all(np.isfinite(u)) and np.all(np.diff(u) > 0)  # energy rises with T


# ----------------------------------------------------------------------------- lattice pieces


@pytest.mark.parametrize("shape", [(4, 4), (3, 5), (2, 6), (5, 4)])
@pytest.mark.parametrize("periodic", [True, False])
def test_energy_and_local_field_against_loops(shape, periodic):
    rng = np.random.default_rng(1)
    x = rng.choice([-1.0, 1.0], size=(3, *shape))
    model = mrf.IsingModel(beta=0.5, J=0.7, h=-0.3, periodic=periodic)
    energies = model.energy(x).numpy()
    expected = [naive_energy(xi, 0.7, -0.3, periodic) for xi in x]
    np.testing.assert_allclose(energies, expected, atol=1e-4)
    assert model.energy(x[0]).shape == ()
    field = mrf.local_field(x, J=0.7, h=-0.3, periodic=periodic).numpy()
    for xi, fi in zip(x, field):
        np.testing.assert_allclose(fi, naive_field(xi, 0.7, -0.3, periodic), atol=1e-5)


def test_gibbs_conditional_is_the_ratio_of_boltzmann_weights():
    # p(+1 | rest) / p(-1 | rest) = exp(-β ΔE) where ΔE = E(+1) - E(-1) at one site
    rng = np.random.default_rng(2)
    x = rng.choice([-1.0, 1.0], size=(4, 5))
    model = mrf.IsingModel(beta=0.8, J=1.0, h=0.2, periodic=True)
    field = mrf.local_field(x, J=1.0, h=0.2)
    p = mrf.gibbs_conditional(field, 0.8).numpy()
    for i, j in [(0, 0), (2, 3), (3, 4)]:
        up, down = x.copy(), x.copy()
        up[i, j], down[i, j] = 1, -1
        dE = float(model.energy(up) - model.energy(down))
        assert p[i, j] == pytest.approx(1 / (1 + math.exp(0.8 * dE)), rel=1e-5)


@pytest.mark.parametrize(
    "shape, periodic", [((6, 8), True), ((3, 3), True), ((5, 4), True), ((5, 7), False)]
)
def test_checkerboard_masks_are_proper_colourings(shape, periodic):
    masks = mrf.checkerboard_masks(shape, periodic=periodic)
    stacked = torch.stack(masks).int()
    assert torch.equal(stacked.sum(0), torch.ones(shape, dtype=torch.int32))  # disjoint cover
    H, W = shape
    for m in masks:  # no two sites of one colour are neighbours
        m = m.numpy()
        for i, j in zip(*np.nonzero(m)):
            for a, b in ((i + 1, j), (i, j + 1)):
                if periodic:
                    assert not m[a % H, b % W] or (a % H, b % W) == (i, j)
                elif a < H and b < W:
                    assert not m[a, b]
    if shape == (6, 8):
        assert len(masks) == 2 and bool(masks[0][0, 0]) and not bool(masks[0][0, 1])
    # the book's claim: two classes (checkerboard) unless a periodic side is odd, then three
    odd_periodic = periodic and (H % 2 == 1 or W % 2 == 1)
    assert len(masks) == (3 if odd_periodic else 2)


def test_book_states_the_number_of_colour_classes():
    text = (ROOT / "book" / "04_mrf.md").read_text(encoding="utf-8")
    assert "three colour classes" in text and "four colour" not in text
    for side in range(3, 12, 2):  # every odd periodic lattice gets exactly three
        assert len(mrf.checkerboard_masks((side, side + 1), periodic=True)) == 3


def test_gibbs_sweep_shape_and_values():
    x = torch.ones(5, 6, 6)
    g = torch.Generator().manual_seed(0)
    y = mrf.gibbs_sweep(x, beta=0.1, generator=g)
    assert y.shape == x.shape and set(y.unique().tolist()) <= {-1.0, 1.0}
    assert torch.equal(x, torch.ones(5, 6, 6))  # input untouched


# ----------------------------------------------------------------------------- exact on tiny lattices


@pytest.mark.parametrize("shape", [(2, 2), (3, 3), (2, 4), (3, 4)])
@pytest.mark.parametrize("periodic", [True, False])
def test_log_partition_against_brute_force(shape, periodic):
    model = mrf.IsingModel(beta=0.45, J=1.0, h=0.15, periodic=periodic)
    energies = np.array([naive_energy(x, 1.0, 0.15, periodic) for x in all_configurations(*shape)])
    expected = np.log(np.sum(np.exp(-0.45 * energies)))
    assert model.log_partition(shape) == pytest.approx(expected, rel=1e-10)
    states, probs = model.exact_distribution(shape)
    assert probs.sum().item() == pytest.approx(1.0, abs=1e-12)
    # probabilities are exp(-βE)/Z for the states as returned
    e = np.array([naive_energy(s, 1.0, 0.15, periodic) for s in states.numpy().astype(float)])
    np.testing.assert_allclose(probs.numpy(), np.exp(-0.45 * e - expected), rtol=1e-9)
    # state k has spin +1 at site i iff bit i of k is set
    np.testing.assert_array_equal(state_codes(states), np.arange(len(states)))


def test_log_partition_refuses_big_lattices():
    with pytest.raises(ValueError, match="2\\*\\*25"):
        mrf.IsingModel(0.4).log_partition((5, 5))


# ----------------------------------------------------------------------------- sampler in distribution


@pytest.mark.parametrize(
    "shape, periodic, beta, h",
    [
        ((3, 3), True, 0.35, 0.0),  # odd periodic lattice: 3-colour sampler
        ((3, 3), False, 0.5, 0.2),  # open boundary, with a field
        ((2, 4), True, 0.4, -0.1),  # even sides: the fast quarter-lattice sampler
        ((4, 2), False, 0.6, 0.0),
        ((4, 4), True, 0.3, 0.1),  # 65,536 states, rare ones pooled
        # open 4×4: fails if any quarter reads a wrong neighbour (checked by mutating them)
        ((4, 4), False, 0.4, -0.1),
    ],
)
@pytest.mark.parametrize("method", ["gibbs", "swendsen_wang"])
def test_sampler_matches_exact_boltzmann_distribution(shape, periodic, beta, h, method, device):
    """Chi-square test of the empirical state frequencies against enumeration (fixed seed).

    Each of the 20,000 chains starts from random spins and runs 15 sweeps, far longer than
    the mixing time of such a tiny lattice at these temperatures, so the final states are
    independent draws.
    """
    model = mrf.IsingModel(beta=beta, h=h, periodic=periodic)
    _, probs = model.exact_distribution(shape)
    x = model.sample(20_000, shape, n_sweeps=15, burn_in=0, method=method, seed=123, device=device)
    counts = np.bincount(state_codes(x), minlength=len(probs))
    p = chi_square_pvalue(counts, probs.numpy())
    assert p > 1e-3, f"p-value {p:.2g}: samples do not follow the Boltzmann distribution"


def test_sampler_detects_a_wrong_temperature(device):
    """The same test must fail for samples drawn at another beta (the test can fail)."""
    _, probs = mrf.IsingModel(beta=0.35).exact_distribution((3, 3))
    x = mrf.IsingModel(beta=0.45).sample(
        20_000, (3, 3), n_sweeps=15, burn_in=0, method="gibbs", seed=123, device=device
    )
    counts = np.bincount(state_codes(x), minlength=len(probs))
    assert chi_square_pvalue(counts, probs.numpy()) < 1e-6


# ----------------------------------------------------------------------------- phase transition


@pytest.mark.slow
@pytest.mark.parametrize("T", [1.5, 2.0])
def test_magnetization_below_tc_matches_yang(T, device):
    """64×64 periodic lattice; starting all-up puts the chains in one of the two ordered
    phases at once (a random start would form domains that take very long to coarsen);
    at these temperatures the correlation length is a few sites, so 64×64 is already
    close to the infinite lattice. Average |M| over 32 chains × 200 sweeps after 100."""
    model = mrf.IsingModel(beta=1.0 / T)
    _, st = model.sample(
        32, (64, 64), n_sweeps=200, burn_in=100, init="up", seed=0, device=device,
        return_stats=True, method="gibbs",
    )
    m = st["magnetization"][st["burn_in"] :].abs().mean().item()
    assert m == pytest.approx(mrf.onsager_magnetization(T), abs=0.02)


@pytest.mark.slow
def test_disordered_above_tc_and_energy_matches_onsager(device):
    """T = 3.5: no spontaneous magnetisation; T = 3.0: energy per spin of Onsager's formula."""
    _, st = mrf.IsingModel(beta=1 / 3.5).sample(
        16, (64, 64), n_sweeps=200, burn_in=100, init="up", seed=1, device=device,
        return_stats=True, method="gibbs",
    )
    assert st["magnetization"][100:].abs().mean().item() < 0.1
    _, st = mrf.IsingModel(beta=1 / 3.0).sample(
        16, (64, 64), n_sweeps=200, burn_in=100, seed=2, device=device, return_stats=True,
        method="gibbs",
    )
    u = st["energy"][100:].mean().item()
    assert u == pytest.approx(mrf.onsager_energy_per_spin(3.0), abs=0.02)


def test_sample_stats_layout_and_init(device):
    model = mrf.IsingModel(beta=0.2)
    x, st = model.sample(3, (8, 6), n_sweeps=4, burn_in=2, seed=0, device=device, return_stats=True,
                         method="gibbs")
    assert x.shape == (3, 8, 6) and x.dtype == torch.float32
    assert st["magnetization"].shape == (6, 3) and st["energy"].shape == (6, 3)
    # the recorded energy per spin is that of the chain's state (last sweep = final state)
    x = x.cpu()
    np.testing.assert_allclose(st["energy"][-1].numpy(), model.energy(x).numpy() / 48, atol=1e-6)
    np.testing.assert_allclose(st["magnetization"][-1].numpy(), x.mean((1, 2)).numpy(), atol=1e-6)
    x0 = model.sample(2, (4, 4), n_sweeps=0, burn_in=0, init="up", device=device)
    assert torch.equal(x0.cpu(), torch.ones(2, 4, 4))
    init = -torch.ones(4, 4)
    assert torch.equal(
        model.sample(2, (4, 4), n_sweeps=0, burn_in=0, init=init, device=device).cpu(),
        -torch.ones(2, 4, 4),
    )


@pytest.mark.cpu_only("same seed, same result is promised bit for bit on the CPU only")
def test_same_seed_same_samples():
    model = mrf.IsingModel(beta=0.4)
    a = model.sample(4, (16, 16), n_sweeps=10, seed=7, device=CPU)
    b = model.sample(4, (16, 16), n_sweeps=10, seed=7, device=CPU)
    c = model.sample(4, (16, 16), n_sweeps=10, seed=8, device=CPU)
    assert torch.equal(a, b) and not torch.equal(a, c)
    a = model.sample(4, (5, 5), n_sweeps=10, seed=7, device=CPU)
    assert torch.equal(a, model.sample(4, (5, 5), n_sweeps=10, seed=7, device=CPU))


# ----------------------------------------------------------------------------- learning


@pytest.fixture(scope="module")
def ising_samples(device):
    """200 samples of a 32×32 periodic lattice at beta = 0.3 (well above T_c)."""
    return mrf.IsingModel(beta=0.3).sample(
        200, (32, 32), n_sweeps=100, burn_in=0, method="gibbs", seed=11, device=device
    ).cpu()


def test_pseudolikelihood_recovers_beta(ising_samples):
    model = mrf.IsingModel(beta=1.0).fit(ising_samples, method="pseudolikelihood")
    assert model.beta_ == pytest.approx(0.3, rel=0.05)
    pll = model.history_["pseudo_log_likelihood"]
    assert pll[-1] >= pll[0] and all(b >= a - 1e-12 for a, b in zip(pll, pll[1:]))
    # the maximiser: PL at beta_ beats PL slightly to either side
    best = model.pseudo_log_likelihood(ising_samples)
    assert best >= model.pseudo_log_likelihood(ising_samples, beta=model.beta_ * 1.02)
    assert best >= model.pseudo_log_likelihood(ising_samples, beta=model.beta_ * 0.98)


def test_pseudolikelihood_with_field(device):
    x = mrf.IsingModel(beta=0.3, h=0.2).sample(
        100, (32, 32), n_sweeps=100, burn_in=0, method="gibbs", seed=3, device=device
    )
    model = mrf.IsingModel(beta=1.0).fit(x, fit_h=True)
    assert model.beta_ == pytest.approx(0.3, rel=0.05)
    assert model.h_ == pytest.approx(0.2, abs=0.03)


def test_sml_recovers_beta(ising_samples, device):
    model = mrf.IsingModel(beta=0.1).fit(ising_samples, method="sml", seed=0, device=device)
    assert model.beta_ == pytest.approx(0.3, rel=0.10)
    assert len(model.history_["beta"]) == 400
    # the gradient E_data[φ] - E_model[φ] has (nearly) vanished at the end
    data = np.array(model.history_["phi_data"][-100:])[:, 0]
    fake = np.array(model.history_["phi_model"][-100:])[:, 0]
    assert abs(data.mean() - fake.mean()) < 0.02


# ----------------------------------------------------------------------------- denoising


@pytest.mark.parametrize("seed", range(6))
def test_graphcut_is_exact_on_small_instances(seed):
    rng = np.random.default_rng(seed)
    noisy = rng.integers(0, 2, size=(3, 4)).astype(np.uint8)
    coupling = float(rng.uniform(0.0, 2.0))
    denoiser = mrf.BinaryDenoiser(coupling=coupling, data_weight=float(rng.uniform(0.1, 2.0)))
    labels = denoiser.denoise(noisy, method="graphcut")
    assert labels.shape == (3, 4) and labels.dtype == np.uint8
    assert denoiser.energy(labels, noisy) == pytest.approx(
        brute_force_denoise_minimum(denoiser, noisy), abs=1e-9
    )


def test_denoise_energy_against_loop():
    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, (5, 6))
    z = rng.integers(0, 2, (5, 6))
    d = mrf.BinaryDenoiser(coupling=0.8, data_weight=0.6)
    s, t = 2.0 * y - 1, 2.0 * z - 1
    expected = naive_energy(s, 0.8, 0.0, periodic=False) - 0.6 * (s * t).sum()
    assert d.energy(y, z) == pytest.approx(expected, abs=1e-9)
    assert mrf.BinaryDenoiser(noise_rate=0.1).weight_from_noise_rate(0.1) == pytest.approx(
        0.5 * math.log(9.0)
    )


@pytest.fixture(scope="module")
def horse():
    clean = load_binary_image("horse")
    return clean, flip_noise(clean, 0.1, seed=0)


@pytest.mark.slow
def test_graphcut_beats_icm_and_annealing_on_horse(horse, device):
    clean, noisy = horse
    d = mrf.BinaryDenoiser(coupling=1.0, noise_rate=0.1)
    results = {
        m: d.denoise(noisy, method=m, seed=0, device=device) for m in ("graphcut", "icm", "anneal")
    }
    energy = {m: d.energy(r, noisy) for m, r in results.items()}
    assert energy["graphcut"] <= energy["icm"] + 1e-6
    assert energy["graphcut"] <= energy["anneal"] + 1e-6
    error = (results["graphcut"] != clean).mean()
    assert error < 0.1 / 3
    assert energy["graphcut"] < d.energy(noisy, noisy)  # better than doing nothing


@pytest.mark.slow
def test_other_methods_restore_horse(horse, device):
    clean, noisy = horse
    d = mrf.BinaryDenoiser(coupling=1.0, noise_rate=0.1)
    for method in ("gibbs", "mean_field"):
        labels, history = d.denoise(noisy, method=method, seed=0, device=device,
                                    return_history=True)
        assert labels.shape == clean.shape and set(np.unique(labels)) <= {0, 1}
        assert (labels != clean).mean() < 0.05
        assert len(history) > 0
    q = d.posterior_marginals(noisy, n_sweeps=50, burn_in=10, seed=0, device=device)
    assert q.shape == clean.shape and q.min() >= 0 and q.max() <= 1
    # the marginals are confident and mostly right: mean probability of the true label
    assert np.where(clean == 1, q, 1 - q).mean() > 0.9


@pytest.mark.slow
@pytest.mark.parametrize("init", [0.3, 0.02])
def test_em_recovers_noise_rate(horse, init, device):
    _, noisy = horse
    d = mrf.BinaryDenoiser(coupling=1.0, noise_rate=0.25).fit_noise_rate(
        noisy, init=init, seed=0, device=device
    )
    assert d.noise_rate_ == pytest.approx(0.1, abs=0.02)
    assert d.history_["noise_rate"][0] == init


@pytest.mark.cpu_only("same seed, same result is promised bit for bit on the CPU only")
def test_denoise_same_seed_same_result(horse):
    _, noisy = horse
    noisy = noisy[100:164, 100:164]
    d = mrf.BinaryDenoiser(coupling=1.0, noise_rate=0.1)
    for method in ("gibbs", "anneal"):
        a = d.denoise(noisy, method=method, n_sweeps=20, seed=3, device=CPU)
        b = d.denoise(noisy, method=method, n_sweeps=20, seed=3, device=CPU)
        assert np.array_equal(a, b)


# ----------------------------------------------------------------------------- pairwise MRF of digits


@pytest.fixture(scope="module")
def digits_binary():
    X, _ = load_digits("train")
    return mrf.binarize_digits(X)


@pytest.mark.slow
def test_pairwise_mrf_learns_digits(digits_binary, device):
    model = mrf.PairwiseMRF(device=device).fit(digits_binary, seed=0)
    pll = model.history_["pseudo_log_likelihood"]
    assert pll[-1] > pll[0] + 5  # nats per image
    assert np.mean(pll[-10:]) > np.mean(pll[-60:-50])
    W = model.W_
    assert torch.allclose(W, W.T) and torch.all(W.diagonal() == 0)
    samples = model.sample(200, n_sweeps=100, seed=0)
    assert samples.shape == (200, 1, 8, 8)
    assert set(samples.unique().tolist()) <= {0.0, 1.0}
    corr = np.corrcoef(samples.mean(0).flatten().cpu(), digits_binary.mean(0).flatten())[0, 1]
    assert corr > 0.9
    # held-out pseudo-likelihood beats the independent-pixel start
    X_test, _ = load_digits("test")
    assert model.pseudo_log_likelihood(X_test, threshold=0.5) > pll[0]
    assert model.pseudo_log_likelihood(X_test, threshold=0.5, reduction="none").shape == (359,)


@pytest.mark.cpu_only("same seed, same result is promised bit for bit on the CPU only")
def test_pairwise_mrf_sml_and_seed(digits_binary):
    a = mrf.PairwiseMRF(n_chains=64, device=CPU).fit(
        digits_binary[:300], method="sml", n_epochs=3, seed=1
    )
    b = mrf.PairwiseMRF(n_chains=64, device=CPU).fit(
        digits_binary[:300], method="sml", n_epochs=3, seed=1
    )
    assert torch.equal(a.W_, b.W_)
    assert len(a.history_["pseudo_log_likelihood"]) == 3
    assert a.history_["pseudo_log_likelihood"][-1] > a.history_["pseudo_log_likelihood"][0]
    s1 = a.sample(5, n_sweeps=3, seed=4, scan="random")
    assert torch.equal(s1, a.sample(5, n_sweeps=3, seed=4, scan="random"))


# ----------------------------------------------------------------------------- bad input


def _ising_bad_calls():
    good = np.ones((4, 4))
    m = mrf.IsingModel(0.4)
    return [
        ("beta", lambda: mrf.IsingModel(beta=0.0).log_partition((2, 2))),
        ("beta", lambda: mrf.IsingModel(beta=-1.0).fit(good[None])),
        ("beta", lambda: mrf.IsingModel(beta=float("inf")).energy(good)),
        ("beta", lambda: mrf.IsingModel(beta=float("nan")).temperature),
        ("T", lambda: mrf.onsager_magnetization(0.0)),
        ("T", lambda: mrf.onsager_energy_per_spin([-1.0, 2.0])),
        ("x", lambda: m.energy(np.array([[1, 0], [1, 1]]))),  # not ±1
        ("x", lambda: m.energy(np.ones((2, 2, 2, 2)))),  # wrong rank
        ("x", lambda: m.energy(np.ones((1, 5)))),  # smaller than 2×2
        ("shape", lambda: m.sample(2, (1, 8), device=CPU)),
        ("shape", lambda: m.log_partition((4, 5))),
        ("init", lambda: m.sample(2, (4, 4), init="sideways", device=CPU)),
        ("init", lambda: m.sample(2, (4, 4), init=np.ones((5, 5)), device=CPU)),
        ("method", lambda: m.fit(good[None], method="em")),
        ("samples", lambda: m.fit(np.zeros((3, 4, 4)))),
        ("beta", lambda: mrf.gibbs_conditional(torch.zeros(3), beta=0)),
        ("x", lambda: mrf.local_field(np.full((3, 3), 0.5))),
    ]


def _denoiser_bad_calls():
    noisy = np.zeros((4, 4), dtype=np.uint8)
    d = mrf.BinaryDenoiser(coupling=1.0, noise_rate=0.1)
    return [
        ("noise_rate", lambda: mrf.BinaryDenoiser(noise_rate=0.5).denoise(noisy)),
        ("noise_rate", lambda: mrf.BinaryDenoiser(noise_rate=0.0).denoise(noisy, "icm")),
        ("noise_rate", lambda: mrf.BinaryDenoiser(noise_rate=0.7).energy(noisy, noisy)),
        ("data_weight", lambda: mrf.BinaryDenoiser().denoise(noisy)),  # neither, no fit
        ("data_weight", lambda: mrf.BinaryDenoiser(data_weight=1.0, noise_rate=0.1).denoise(noisy)),
        ("data_weight", lambda: mrf.BinaryDenoiser(data_weight=-1.0).denoise(noisy)),
        (
            "coupling",
            lambda: mrf.BinaryDenoiser(coupling=-1.0, noise_rate=0.1).denoise(noisy, "graphcut"),
        ),
        ("method", lambda: d.denoise(noisy, method="magic")),
        ("noisy", lambda: d.denoise(np.full((4, 4), 2))),
        ("noisy", lambda: d.denoise(np.zeros((1, 4, 4)))),
        ("noisy", lambda: d.denoise(np.zeros((1, 4)))),
        ("init", lambda: d.fit_noise_rate(noisy, init=0.6)),
        ("labels", lambda: d.energy(np.full((4, 4), -1), noisy)),
    ]


def _pairwise_bad_calls():
    # built at collection time, before any fixture: the CPU (input is refused before use)
    X = np.zeros((5, 1, 8, 8))
    return [
        ("X", lambda: mrf.PairwiseMRF(device=CPU).fit(np.full((5, 1, 8, 8), 0.5))),
        ("X", lambda: mrf.PairwiseMRF(device=CPU).fit(np.zeros((5, 64)))),
        ("method", lambda: mrf.PairwiseMRF(device=CPU).fit(X, method="em")),
        ("threshold", lambda: mrf.binarize_digits(X, threshold=2.0)),
        ("l2", lambda: mrf.PairwiseMRF(l2=-1.0, device=CPU).fit(X)),
    ]


@pytest.mark.parametrize(
    "name, call",
    _ising_bad_calls() + _denoiser_bad_calls() + _pairwise_bad_calls(),
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_bad_input_raises_value_error_naming_argument(name, call):
    with pytest.raises(ValueError, match=name):
        call()


def test_unfitted_pairwise_mrf_refuses_to_sample():
    # scikit-learn's exception, as for the other estimators (a ValueError and AttributeError)
    with pytest.raises(NotFittedError, match="fit"):
        mrf.PairwiseMRF().sample(3)


def test_state_index_matches_exact_distribution_order():
    states, _ = mrf.IsingModel(0.3).exact_distribution((2, 3))
    np.testing.assert_array_equal(mrf.state_index(states).numpy(), state_codes(states))
    assert int(mrf.state_index(torch.ones(2, 3))) == 2**6 - 1


@pytest.mark.slow
def test_benchmark_quick_smoke_run(capsys):
    """benchmarks/mrf_gibbs.py --quick runs and prints both tables."""
    import importlib.util

    path = ROOT / "benchmarks" / "mrf_gibbs.py"
    spec = importlib.util.spec_from_file_location("mrf_gibbs_benchmark", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        module.main(["--quick"])
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    assert "Table 1" in out and "Table 2" in out and "graphcut" in out


def _tiny_pairwise_model(device, seed=0):
    """A PairwiseMRF over 1×2×3 'images' (D = 6) with random couplings, set by hand."""
    g = torch.Generator().manual_seed(seed)
    D = 6
    U = torch.randn(D, D, generator=g) * 0.6
    W = (U + U.T) / 2 * (1 - torch.eye(D))
    model = mrf.PairwiseMRF(device=device)
    model.W_, model.b_ = W.to(device), (torch.randn(D, generator=g) * 0.5).to(device)
    model.image_shape_ = (1, 2, 3)
    return model


def _tiny_pairwise_exact(model):
    """All 64 images and p(s) ∝ exp(½ sᵀ W s + bᵀ s) by enumeration."""
    W, b = model.W_.double().cpu().numpy(), model.b_.double().cpu().numpy()
    s = np.array(list(itertools.product([-1.0, 1.0], repeat=6)))
    log_w = 0.5 * np.einsum("ni,ij,nj->n", s, W, s) + s @ b
    p = np.exp(log_w - log_w.max())
    return s, p / p.sum()


def test_pairwise_mrf_pseudo_likelihood_matches_enumeration(device):
    model = _tiny_pairwise_model(device)
    s, p = _tiny_pairwise_exact(model)
    index = {tuple(row): k for k, row in enumerate(s)}
    expected = []
    for row in s:  # Σ_i log p(s_i | s_rest) = Σ_i log p(s) / (p(s) + p(s with s_i flipped))
        total = 0.0
        for i in range(6):
            flipped = row.copy()
            flipped[i] *= -1
            total += math.log(
                p[index[tuple(row)]] / (p[index[tuple(row)]] + p[index[tuple(flipped)]])
            )
        expected.append(total)
    X = torch.as_tensor((s + 1) / 2, dtype=torch.float32).reshape(64, 1, 2, 3)
    got = model.pseudo_log_likelihood(X, reduction="none")
    np.testing.assert_allclose(got, expected, atol=1e-4)


@pytest.mark.parametrize("scan", ["sequential", "random"])
def test_pairwise_mrf_gibbs_matches_enumeration(scan, device):
    model = _tiny_pairwise_model(device, seed=1)
    s, p = _tiny_pairwise_exact(model)
    x = model.sample(20_000, n_sweeps=10, seed=5, scan=scan)
    assert x.shape == (20_000, 1, 2, 3)
    bits = x.reshape(len(x), -1).cpu().numpy().astype(np.int64)
    # itertools.product order: the first site is the most significant bit
    codes = bits @ (2 ** np.arange(5, -1, -1))
    counts = np.bincount(codes, minlength=64)
    assert chi_square_pvalue(counts, p) > 1e-3


def test_sml_with_a_fixed_field_finds_the_exact_maximum_likelihood_beta():
    """With ``h`` held fixed (``fit_h=False``) the model's one feature is J Σ x_i x_j + h Σ x_i,
    so SML must match that combination, not the bond statistic alone. On a 4×4 lattice the
    exact maximum-likelihood beta comes from enumerating the 65,536 states; for data drawn at
    h = 0 and a fit that holds h at 0.3 it differs from the root of the bond statistic alone
    (0.299 against 0.320), and SML lands on the former."""
    from scipy.optimize import brentq

    shape, h0 = (4, 4), 0.3
    states, probs = mrf.IsingModel(beta=0.35).exact_distribution(shape)
    gen = torch.Generator().manual_seed(0)
    x = states[torch.multinomial(probs.float(), 4000, replacement=True, generator=gen)]
    n = shape[0] * shape[1]

    def features(s):  # per image and site: J Σ x_i x_j, Σ x_i
        s = s.double()
        return torch.stack([-mrf.IsingModel(beta=1.0).energy(s).double(), s.sum((-2, -1))], 1) / n

    f_data = features(x).mean(0)

    def gradient(beta, weights):
        st, p = mrf.IsingModel(beta=beta, h=h0).exact_distribution(shape)
        return float((f_data - (p.double()[:, None] * features(st)).sum(0)) @ weights)

    exact = brentq(gradient, 0.01, 1.0, args=(torch.tensor([1.0, h0], dtype=torch.float64),))
    bonds_only = brentq(gradient, 0.01, 1.0, args=(torch.tensor([1.0, 0.0], dtype=torch.float64),))
    assert bonds_only - exact > 0.01  # the two estimators differ here
    fitted = mrf.IsingModel(beta=0.1, h=h0).fit(x, method="sml", seed=0, n_iter=1000,
                                                 n_chains=256, device="cpu")
    assert fitted.h_ == h0
    assert abs(fitted.beta_ - exact) < 0.005, (fitted.beta_, exact, bonds_only)
