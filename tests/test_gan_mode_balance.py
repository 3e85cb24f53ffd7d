"""Mode coverage on the 2D benchmarks: the minimum-share rule for a captured mode and PacGAN's
balance, eq. (5.11) [gan-mode-kl] (``metrics.mode_coverage``, ``metrics.mode_balance_kl``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from course_lib import metrics
from course_lib.data import ring_of_gaussians


def _on_modes(centres, counts):
    return np.concatenate([np.repeat(centres[k : k + 1], n, axis=0) for k, n in enumerate(counts)
                           if n > 0])


def test_balance_kl_known_values():
    assert metrics.mode_balance_kl([5, 5, 5, 5]) == pytest.approx(0.0, abs=1e-15)
    assert metrics.mode_balance_kl([7, 0, 0, 0, 0, 0, 0, 0]) == pytest.approx(math.log(8))
    # two of four modes, equally: KL = log 2
    assert metrics.mode_balance_kl([3, 3, 0, 0]) == pytest.approx(math.log(2))
    # a hand computation: h = (0.5, 0.25, 0.25), M = 3
    h = np.array([0.5, 0.25, 0.25])
    assert metrics.mode_balance_kl([2, 1, 1]) == pytest.approx(float(np.sum(h * np.log(3 * h))))
    assert metrics.mode_balance_kl([0, 0, 0]) == pytest.approx(math.log(3))  # the convention
    with pytest.raises(ValueError, match="counts"):
        metrics.mode_balance_kl([1, -1])


def test_min_share_rule_and_modes_any():
    _, centres = ring_of_gaussians(1)
    # 2,500 samples: fair share 312.5, a tenth of it 31.25 -> at least 32 samples to count
    counts = [1000, 800, 500, 168, 31, 1, 0, 0]
    out = metrics.mode_coverage(_on_modes(centres, counts), centres, 0.01)
    assert out["counts"].tolist() == counts
    assert out["modes_any"] == 6 and out["modes"] == 4
    assert out["high_quality"] == 1.0
    assert out["balance_kl"] == pytest.approx(metrics.mode_balance_kl(counts))
    assert 0.3 < out["balance_kl"] < math.log(8)
    # min_share=0: one high-quality sample suffices, as modes_any
    assert metrics.mode_coverage(_on_modes(centres, counts), centres, 0.01,
                                 min_share=0.0)["modes"] == 6
    # a stricter rule counts fewer
    assert metrics.mode_coverage(_on_modes(centres, counts), centres, 0.01,
                                 min_share=1.0)["modes"] == 3
    with pytest.raises(ValueError, match="min_share"):
        metrics.mode_coverage(_on_modes(centres, counts), centres, 0.01, min_share=1.5)


def test_balance_uses_high_quality_samples_only():
    _, centres = ring_of_gaussians(1)
    on = _on_modes(centres, [10] * 8)
    far = np.full((500, 2), 10.0)  # low-quality samples, all nearest to one mode
    out = metrics.mode_coverage(np.concatenate([on, far]), centres, 0.01)
    assert out["balance_kl"] == pytest.approx(0.0, abs=1e-12)
    assert out["high_quality"] == pytest.approx(80 / 580)


def test_the_ring_itself_is_balanced():
    X, centres = ring_of_gaussians(2500, seed=1)
    out = metrics.mode_coverage(X, centres, 0.01)
    assert out["modes"] == out["modes_any"] == 8
    assert out["balance_kl"] < 0.01
