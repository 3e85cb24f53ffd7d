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
