"""benchmarks/gmm_exact.py (Chapters 3 and 8): a diagonal mixture's exact discrete bits/px
against the dequantised bound the chapters quote; the pages quote its results file."""

from __future__ import annotations

import pytest
from _shared import ROOT, load_script


@pytest.fixture(scope="module")
def bench():
    return load_script("benchmarks/gmm_exact.py")


def _page(name: str) -> str:
    return " ".join((ROOT / "book" / name).read_text(encoding="utf-8").split())


def test_the_exact_scores_are_below_the_bounds_and_the_verdicts_hold(bench):
    rows = bench.read_rows()
    assert sorted(rows) == [("digits", 40), ("fashion", 200), ("fashion", 1600)]
    for r in rows.values():
        assert 0 < r["bound"] - r["exact"] < 0.1  # Jensen: the dequantised score is an upper bound
        assert abs(r["exact"] - r["indep"] - r["diff"]) < 2e-4
    digits, k200, k1600 = rows[("digits", 40)], rows[("fashion", 200)], rows[("fashion", 1600)]
    assert digits["diff"] > 2 * digits["se"]  # the histograms still win on the digits
    assert k200["diff"] > 2 * k200["se"]  # and against the table's K = 200 mixture
    assert abs(k1600["diff"]) < 2 * k1600["se"]  # a tie at K = 1,600
    fashion_table = load_script("benchmarks/fashion_gmm.py").read_scored()
    assert k1600["bound"] == pytest.approx(fashion_table[1600]["bpp"], abs=1e-4)  # the same fit


def test_the_pages_quote_the_file(bench):
    rows = bench.read_rows()
    digits, k200, k1600 = rows[("digits", 40)], rows[("fashion", 200)], rows[("fashion", 1600)]
    ch3, ch8 = _page("03_gmm.md"), _page("08_scaling.md")
    assert f"exact bits per pixel, {digits['exact']:.2f}:" in ch3
    assert f"{digits['bound'] - digits['exact']:.3f} better than its bound" in ch3
    assert f"still {digits['diff']:.2f} behind the histograms" in ch3
    assert f"2.43 against {digits['exact']:.2f} bits per pixel, the mixture's exact score" in ch8
    assert (f"the exact mixture is {-k1600['diff']:.3f} ± {k1600['se']:.3f} bits per pixel better"
            in ch8)
    assert f"K = 200 it is {k200['diff']:.3f} ± {k200['se']:.3f} worse" in ch8
    assert f"({k200['exact']:.3f} exact)" in ch8

