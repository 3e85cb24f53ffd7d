"""course_lib.mrf.diagnostics: τ_int, ESS and R̂ against cases with known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from course_lib.mrf import diagnostics as dg


def ar1(phi: float, n: int, chains: int, seed: int, shift=None) -> np.ndarray:
    """AR(1) traces x_t = phi x_{t-1} + e_t: exact τ_int = (1 + phi) / (1 - phi)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n, chains))
    x = np.empty_like(e)
    x[0] = e[0] / math.sqrt(1 - phi**2)
    for t in range(1, n):
        x[t] = phi * x[t - 1] + e[t]
    return x if shift is None else x + np.asarray(shift)


@pytest.mark.parametrize("phi", [0.0, 0.5, 0.9])
def test_tau_int_of_ar1_matches_theory(phi):
    tau_true = (1 + phi) / (1 - phi)
    taus = [dg.integrated_autocorrelation_time(ar1(phi, 20_000, 4, seed)) for seed in range(3)]
    assert np.mean(taus) == pytest.approx(tau_true, rel=0.1)


def test_tau_int_rejects_wrong_answers():
    """Two plausible slips give clearly different numbers on the same AR(1) trace."""
    x = ar1(0.8, 20_000, 2, 0)
    tau = dg.integrated_autocorrelation_time(x)
    rho = dg.autocorrelation(x)
    assert tau == pytest.approx(9.0, rel=0.1)
    assert abs(1 + rho[1:50].sum() - tau) > 3  # forgot the factor 2
    assert abs(2 * rho[: len(rho)].sum() - 1 - tau) > 3  # summed to the end (no window)


def test_ess_and_rhat():
    x = ar1(0.5, 4000, 4, 1)
    assert dg.effective_sample_size(x) == pytest.approx(16_000 / 3, rel=0.15)
    assert dg.gelman_rubin(x) == pytest.approx(1.0, abs=0.02)
    stuck = ar1(0.5, 4000, 4, 1, shift=[0.0, 0.0, 3.0, 3.0])  # two chains elsewhere
    assert dg.gelman_rubin(stuck) > 1.5
    assert dg.gelman_rubin(np.ones((10, 3))) == 1.0
    assert dg.gelman_rubin(np.tile([0.0, 1.0], (10, 1))) == math.inf
    assert dg.integrated_autocorrelation_time(np.ones(50)) == 1.0
    torch_trace = torch.as_tensor(x)
    assert dg.gelman_rubin(torch_trace) == dg.gelman_rubin(x)
    assert np.array_equal(torch_trace.numpy(), x)  # inputs are not modified


@pytest.mark.parametrize(
    "call",
    [
        lambda: dg.gelman_rubin(np.ones((10, 1))),
        lambda: dg.gelman_rubin(np.array([[1.0, np.nan], [2.0, 3.0]])),
        lambda: dg.integrated_autocorrelation_time(np.ones((2, 2, 2))),
        lambda: dg.integrated_autocorrelation_time(np.ones(10), c=0),
        lambda: dg.effective_sample_size(np.ones(1)),
    ],
)
def test_bad_traces_raise_value_error(call):
    with pytest.raises(ValueError):
        call()


def test_complex_trace_is_refused():
    with pytest.raises(TypeError, match="real"):
        dg.integrated_autocorrelation_time(np.ones(10) * 1j)
