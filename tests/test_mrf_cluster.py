"""Swendsen–Wang cluster sampler and the default sampler of IsingModel (issue 11)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from _shared import ROOT
from scipy import stats
from sklearn.exceptions import ConvergenceWarning

from course_lib import mrf


def _chi_square_pvalue(x: torch.Tensor, probs: np.ndarray) -> float:
    counts = np.bincount(mrf.state_index(x).cpu().numpy(), minlength=len(probs)).astype(float)
    expected = probs * counts.sum()
    rare = expected < 5
    obs = np.append(counts[~rare], counts[rare].sum())
    exp = np.append(expected[~rare], expected[rare].sum())
    return float(stats.chisquare(obs, exp).pvalue)


@pytest.mark.parametrize(
    "shape, periodic, beta, J, h",
    [
        ((3, 3), True, 0.5, 1.0, 0.0),
        ((3, 3), True, 0.5, 1.0, 0.3),  # field > 0: ghost spin +1
        ((3, 4), False, 0.7, 1.0, -0.25),  # field < 0, open boundary
        ((2, 3), True, 0.4, -1.0, 0.2),  # antiferromagnet (bonds join opposite spins)
        ((4, 4), True, 0.44, 1.0, 0.05),  # near the critical coupling
    ],
)
def test_swendsen_wang_matches_exact_distribution(shape, periodic, beta, J, h, device):
    """20,000 chains × 15 SW sweeps from random spins against the enumerated Boltzmann law."""
    model = mrf.IsingModel(beta=beta, J=J, h=h, periodic=periodic)
    _, probs = model.exact_distribution(shape)
    x = model.sample(20_000, shape, n_sweeps=15, burn_in=0, method="swendsen_wang", seed=3,
                     device=device)
    assert _chi_square_pvalue(x, probs.numpy()) > 1e-3


@pytest.mark.parametrize("wrong", ["no_ghost", "flip_ghost_cluster", "bond_p_halved"])
def test_the_exactness_test_catches_broken_cluster_rules(wrong, monkeypatch):
    """The chi-square test above can fail: plausible mistakes in the SW rules are caught."""
    from course_lib.mrf import cluster

    beta, h = 0.5, 0.4
    if wrong == "no_ghost":  # ignore the field in the cluster step
        monkeypatch.setattr(cluster, "_sw_sweep_orig", cluster._sw_sweep, raising=False)
        sweep = lambda x, b, J, hh, *a: cluster._sw_sweep_orig(x, b, J, 0.0, *a)  # noqa: E731
    elif wrong == "flip_ghost_cluster":  # flip every cluster, ghost's included
        sweep = None
        h_used = h
    else:  # bond probability 1 - exp(-beta J) instead of 1 - exp(-2 beta J)
        monkeypatch.setattr(cluster, "_sw_sweep_orig", cluster._sw_sweep, raising=False)
        sweep = lambda x, b, J, hh, *a: cluster._sw_sweep_orig(x, b, J / 2, hh, *a)  # noqa: E731
    model = mrf.IsingModel(beta=beta, h=h)
    _, probs = model.exact_distribution((3, 3))
    g = torch.Generator().manual_seed(0)
    x = np.where(torch.rand((20_000, 3, 3), generator=g).numpy() < 0.5, -1, 1).astype(np.int8)
    for _ in range(15):
        if sweep is not None:
            x = sweep(x, beta, 1.0, h, True, g)
        else:  # the ghost cluster flipped too: same as an SW step ignoring which cluster holds it
            x = cluster._sw_sweep(x, beta, 1.0, h_used, True, g)
            flip_all = torch.rand(len(x), generator=g).numpy() < 0.5
            x[flip_all] *= -1
    assert _chi_square_pvalue(torch.as_tensor(x).float(), probs.numpy()) < 1e-6


def test_swendsen_wang_sweep_public_function():
    x = torch.ones(2, 6, 5)
    y = mrf.swendsen_wang_sweep(x, beta=0.3, generator=0)
    assert y.shape == x.shape and y.dtype == torch.float32 and set(y.unique().tolist()) <= {-1, 1}
    assert torch.equal(y, mrf.swendsen_wang_sweep(x, beta=0.3, generator=0))
    single = mrf.swendsen_wang_sweep(torch.ones(4, 4), beta=0.3, generator=1)
    assert single.shape == (4, 4)
    assert mrf.cluster.bond_probability(0.5) == pytest.approx(1 - np.exp(-1.0))
    with pytest.raises(ValueError, match="beta"):
        mrf.swendsen_wang_sweep(x, beta=-1.0)
    with pytest.raises(ValueError, match="x"):
        mrf.swendsen_wang_sweep(torch.zeros(4, 4), beta=0.3)


def test_default_sampler_is_cluster_and_gibbs_by_name(device):
    model = mrf.IsingModel(beta=0.3)
    _, st = model.sample(2, (8, 8), n_sweeps=30, burn_in=5, seed=0, return_stats=True,
                         device=device)
    assert st["method"] == "swendsen_wang"
    _, st = model.sample(2, (8, 8), n_sweeps=30, burn_in=5, seed=0, method="gibbs",
                         return_stats=True, device=device)
    assert st["method"] == "gibbs"
    _, st = model.sample(2, (8, 8), n_sweeps=30, burn_in=5, seed=0, method="cluster",
                         return_stats=True, device=device)
    assert st["method"] == "swendsen_wang"
    with pytest.raises(ValueError, match="method"):
        model.sample(2, (8, 8), method="wolf", device=device)
    a = model.sample(3, (8, 8), seed=4, device=device)
    assert torch.equal(a, model.sample(3, (8, 8), seed=4, device=device))


@pytest.mark.slow
@pytest.mark.parametrize("T", [1.8, 2.1])
def test_defaults_from_a_random_start_reach_yang_below_tc(T, device):
    """Issue 11's reproducer: defaults, random start, 96×96. Gibbs gave |M| = 0.06 and 0.24
    for some chains at T = 1.8; the default sampler must give Yang's value in every chain."""
    model = mrf.IsingModel(beta=1 / T)
    _, st = model.sample(4, (96, 96), seed=0, return_stats=True, device=device)
    per_chain = st["magnetization"][st["burn_in"]:].abs().mean(0).cpu().numpy()
    assert np.all(np.abs(per_chain - mrf.onsager_magnetization(T)) < 0.02), per_chain
    assert max(st["r_hat"].values()) < 1.1


def test_gibbs_hot_start_below_tc_is_flagged_by_r_hat(device):
    """Gibbs from random spins at T = 1.5 on 48×48: some chains are stuck in stripes or domains;
    R̂ across chains flags it with a ConvergenceWarning. The cluster sampler does not warn."""
    model = mrf.IsingModel(beta=1 / 1.5)
    with pytest.warns(ConvergenceWarning, match="R-hat"):
        _, st = model.sample(8, (48, 48), n_sweeps=100, burn_in=50, method="gibbs", seed=1,
                             return_stats=True, device=device)
    assert max(st["r_hat"].values()) > mrf.diagnostics.RHAT_WARNING
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        _, st = model.sample(8, (48, 48), n_sweeps=100, burn_in=50, seed=1, return_stats=True,
                             device=device)
    assert max(st["r_hat"].values()) < 1.1


def test_sample_stats_report_diagnostics(device):
    model = mrf.IsingModel(beta=0.3)
    _, st = model.sample(3, (16, 16), n_sweeps=200, burn_in=20, seed=0, return_stats=True,
                         device=device)
    for key in ("tau_int", "ess", "r_hat"):
        assert set(st[key]) == {"abs_magnetization", "energy"}
        assert all(np.isfinite(v) and v > 0 for v in st[key].values())
    assert st["ess"]["energy"] == pytest.approx(600 / st["tau_int"]["energy"])
    _, st = model.sample(1, (16, 16), n_sweeps=50, burn_in=0, seed=0, return_stats=True,
                         device=device)
    assert st["r_hat"] is None and st["tau_int"] is not None


def test_cluster_decorrelates_far_faster_than_gibbs_at_tc(device):
    """τ_int of the energy at T_c on 32×32: Swendsen–Wang far below checkerboard Gibbs."""
    model = mrf.IsingModel(beta=1 / mrf.ising_critical_temperature())
    taus = {}
    for method, sweeps in (("swendsen_wang", 400), ("gibbs", 3000)):
        _, st = model.sample(4, (32, 32), n_sweeps=sweeps, burn_in=200, method=method, seed=2,
                             return_stats=True, device=device)
        taus[method] = st["tau_int"]["abs_magnetization"]
    assert taus["swendsen_wang"] < 10 and taus["gibbs"] > 5 * taus["swendsen_wang"], taus


def test_book_benchmark_table_matches_the_results_file():
    """The cost ratios quoted in the chapter come from benchmarks/results/mrf_cluster_cpu.txt."""
    import re

    results = (ROOT / "benchmarks" / "results" / "mrf_cluster_cpu.txt").read_text()
    book = (ROOT / "book" / "04_mrf.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\s*(\d+) \|.*\|\s*([\d.]+)x", results, re.M)
    assert len(rows) == 4
    for L, ratio in rows:
        line = next(r for r in book.splitlines() if r.startswith(f"| {L} |"))
        assert line.rstrip(" |").endswith(f"{round(float(ratio))}×"), (L, ratio, line)


def test_notebook_lattice_sizes_in_prose_come_from_its_code():
    """Every 'N×N' lattice named in notebook 04's text is a size its code cells use."""
    import json
    import re

    nb = json.loads((ROOT / "notebooks" / "04_mrf.ipynb").read_text())
    text = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown")
    code = " ".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")
    numbers_in_code = set(re.findall(r"\d+", code))
    for size in set(re.findall(r"(\d+)×\1", text)):
        assert size in numbers_in_code, f"the text names a {size}×{size} lattice the code never uses"
