"""The helpers of benchmarks/fashion_gmm.py (issue 23): the independent-pixel baseline's exact
bits/px and the parsing of the screen's extra rows. No data are loaded."""

from __future__ import annotations

import math

import numpy as np
import pytest
from _shared import load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/fashion_gmm.py")


def test_independent_pixels_add_one(bench):
    fit = np.zeros((1, 784), dtype=np.int64)  # one black image: counts 1 + 1 at level 0
    black, white = np.zeros((3, 784), np.int64), np.full((2, 784), 255, np.int64)
    got = bench.independent_pixels_bpp(fit, black, white)
    assert got == pytest.approx([-math.log2(2 / 257), -math.log2(1 / 257)])


def test_independent_pixels_empty_fit_is_uniform(bench):
    levels = np.random.default_rng(0).integers(0, 256, size=(5, 784))
    assert bench.independent_pixels_bpp(levels[:0], levels)[0] == pytest.approx(8.0)


def test_parse_extra(bench):
    assert bench.parse_extra(["1e-4:10,50", "1e-6:5"]) == [(10, 1e-4), (50, 1e-4), (5, 1e-6)]
