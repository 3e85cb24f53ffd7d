"""The helpers of benchmarks/fashion_mrf.py (issue 23): the independent-pixel baseline's exact
bits per binary pixel and the parameter count. No data are loaded."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _shared import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/fashion_mrf.py")


def test_independent_bits_add_one(bench):
    fit = np.zeros((2, 3), dtype=np.int64)  # two all-off images: p(on) = 1/4 per pixel
    off, on = np.zeros((1, 3), np.int64), np.ones((1, 3), np.int64)
    assert bench.independent_bits(fit, off) == pytest.approx(-math.log2(3 / 4))
    assert bench.independent_bits(fit, on) == pytest.approx(2.0)


def test_independent_bits_empty_fit_is_one_bit(bench):
    fit = np.zeros((0, 4))
    test = np.array([[0, 1, 1, 0], [1, 1, 1, 1]])
    assert bench.independent_bits(fit, test) == pytest.approx(1.0)


@pytest.mark.parametrize(("D", "expected"), [(1, 1), (2, 3), (64, 2080), (784, 307720)])
def test_n_parameters(bench, D, expected):
    assert bench.n_parameters(D) == expected


def test_the_page_quotes_the_results_files_mrf_rows(bench):
    """Chapter 8's MRF paragraph and scaling table quote fashion_mrf_cpu.txt as read_rows reads
    it: the 28x28 fit on 10,000 images (its bits/px, R-hat, energies), the projected 60,000-image
    fit, the 14x14 fit on all images, and the sweep times at 8x8 and 28x28."""
    from _shared import ROOT

    rows = {(r["name"], r["N"]): r for r in bench.read_rows()}
    fitted, projected = rows[("fashion 28x28", 10000)], rows[("fashion 28x28", 60000)]
    digits, small = rows[("digits 8x8", 1438)], rows[("fashion 14x14", 60000)]
    assert projected["projected"] and not fitted["projected"]
    page = " ".join((ROOT / "book" / "08_scaling.md").read_text(encoding="utf-8").split())
    bpp = fitted["ais"][max(fitted["ais"])][0]
    for quoted in (f"{bpp:.3f} bits per binary pixel", f"against {fitted['indep']:.3f} for",
                   f"their energy is {fitted['rhat']:.2f}; at 8×8 it was {digits['rhat']:.2f}",
                   f"({fitted['e_noise']:.2f} against {fitted['e_test']:.2f} per pixel)".replace("-", "−"),
                   f"estimated {projected['fit_cpu_s']:,.0f} CPU seconds",
                   f"fits in {small['fit_cpu_s']:.0f} CPU seconds", f"(R̂ {small['rhat']:.2f})",
                   f"| {digits['sweep_ms']:.1f} | {fitted['sweep_ms']:.1f} | "
                   f"{fitted['sweep_ms'] / digits['sweep_ms']:.1f} |"):
        assert quoted in page, quoted
    assert fitted["rhat"] > 1.5 > small["rhat"] > digits["rhat"]  # the page's reading
