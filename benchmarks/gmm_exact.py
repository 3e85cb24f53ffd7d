"""Benchmark: a diagonal Gaussian mixture's exact discrete bits per pixel against the
dequantised bound the chapters quote, beside independent pixels (Chapters 3 and 8).

A mixture fitted to dequantised images is scored on dequantised test images; by Jensen's
inequality that gives an upper bound on its bits/px on the discrete grey levels, while the
independent-pixel histograms are scored exactly. ``GaussianMixture.score_levels`` computes the
mixture's exact value (its mass on each image's grey-level cells), so the comparison can be
made on equal terms. What is measured, for the mixtures the chapters quote:

* digits (Chapter 3): BIC's choice, diagonal K = 40, fitted as in the chapter's notebook
  (``load_digits(dequantize=True)`` seeds 0/1 for train/test, ``random_state=0``,
  ``max_iter=200``), scored on the 359 test digits (17 levels);
* Fashion-MNIST (Chapter 8): diagonal K = 200 (the comparison table's) and K = 1,600 (the
  extended screen's pick), fitted on all 60,000 training images as
  ``benchmarks/fashion_models.py`` fits them (the same function), scored on the table's first
  2,000 test images (256 levels).

For each: the dequantised bound (bits/px), the exact bits/px, independent pixels' exact bits/px
(17-level histograms with add-1/2 smoothing on the digits, as in Chapter 3; 256-level with
add-one on Fashion, as in ``fashion_gmm.py``), and the exact mixture's paired difference from
independent pixels, image by image, with its standard error. CPU seconds of one thread.

Usage:  python benchmarks/gmm_exact.py [--quick] [--save]
  --quick  digits only and Fashion K = 20 on 5,000 images (seconds); nothing saved
  --save   write benchmarks/results/gmm_exact_cpu.txt
Run it under one thread (the script sets torch's; set OMP_NUM_THREADS=1 too).
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course_lib._core import cpu_name
from course_lib.data import dequantize, load_digits
from course_lib.gmm import GaussianMixture

RESULTS = Path(__file__).resolve().parent / "results"
HEADER = ("data              K  images  levels  bound bpp  exact bpp  bound-exact  indep bpp"
          "  exact-indep ± se    fit CPU s  exact CPU s")


def read_rows(path: Path | None = None) -> dict[tuple[str, int], dict]:
    """The results file's rows, by (data, K): ``bound``, ``exact``, ``indep`` (bits/px),
    ``diff`` and ``se`` (exact minus independent pixels, paired, and its standard error)."""
    path = RESULTS / "gmm_exact_cpu.txt" if path is None else path
    out = {}
    for ln in path.read_text(encoding="utf-8").splitlines():
        if ln.startswith(("digits", "fashion")):
            c = ln.replace("±", " ").split()
            out[(c[0], int(c[2]))] = {"bound": float(c[5]), "exact": float(c[6]),
                                      "indep": float(c[8]), "diff": float(c[9]), "se": float(c[10])}
    return out


def row(data: str, gm, test_levels: np.ndarray, Y_test: np.ndarray, n_levels: int,
        indep_per_image: np.ndarray, fit_s: float) -> str:
    """One line: the bound and the exact bits/px of ``gm`` on the same test images."""
    D = test_levels.shape[1]
    bound = -gm.score_samples(Y_test) / (D * math.log(2)) + math.log2(n_levels)
    start = time.process_time()
    exact = -gm.score_levels(test_levels, n_levels=n_levels) / (D * math.log(2))
    exact_s = time.process_time() - start
    diff = exact - indep_per_image
    return (f"{data:<14s} {gm.n_components:>4d} {len(test_levels):>7d} {n_levels:>7d} "
            f"{bound.mean():10.4f} {exact.mean():10.4f} {bound.mean() - exact.mean():12.4f} "
            f"{indep_per_image.mean():10.4f} {diff.mean():+9.4f} ± {diff.std(ddof=1) / math.sqrt(len(diff)):.4f}"
            f" {fit_s:12.1f} {exact_s:12.1f}")


def digits_rows() -> list[str]:
    Xtr, _ = load_digits("train", dequantize=True, seed=0)
    Xte, _ = load_digits("test", dequantize=True, seed=1)
    k_tr = load_digits("train", raw=True)[0].reshape(len(Xtr), -1).astype(np.int64)
    k_te = load_digits("test", raw=True)[0].reshape(len(Xte), -1).astype(np.int64)
    start = time.process_time()
    gm = GaussianMixture(40, covariance_type="diag", random_state=0, max_iter=200).fit(
        Xtr.reshape(len(Xtr), -1).astype(np.float64))
    fit_s = time.process_time() - start
    counts = np.stack([(k_tr == level).sum(axis=0) for level in range(17)], axis=1)  # Chapter 3's
    P = (counts + 0.5) / (len(k_tr) + 17 * 0.5)
    indep = -np.log2(P[np.arange(64), k_te]).mean(axis=1)
    return [row("digits 8x8", gm, k_te, Xte.reshape(len(Xte), -1).astype(np.float64), 17, indep,
                fit_s)]


def fashion_rows(ks: list[int], n_train: int | None) -> list[str]:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import fashion_gmm  # this folder's; fashion_models imports the neural models (seconds)
    import fashion_models

    train, _ = fashion_gmm.grey_levels("train")
    test, _ = fashion_gmm.grey_levels("test")
    train = train[:n_train]
    test = test[:fashion_models.BPP_IMAGES]
    Y = dequantize(train, n_levels=256, seed=0).astype(np.float32)  # as fashion_models fits
    Y_test = dequantize(test, n_levels=256, seed=1).astype(np.float32)
    counts = np.stack([np.bincount(train[:, p], minlength=256) for p in range(784)]) + 1.0
    log2_p = np.log2(counts / counts.sum(1, keepdims=True))
    indep = -log2_p[np.arange(784), test].mean(axis=1)
    rows = []
    for K in ks:
        fit = fashion_gmm.fit_timed(K, fashion_models.GMM_REG, Y, max_iter=50, tol=0.5)
        rows.append(row("fashion 28x28", fit["model"], test, Y_test, 256, indep, fit["fit_s"]))
        print(rows[-1], flush=True)
    return rows


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    cpu0 = time.process_time()
    print(HEADER)
    rows = digits_rows()
    print(rows[0], flush=True)
    rows += fashion_rows([20] if args.quick else [200, 1600], 5000 if args.quick else None)
    lines = [
        f"# benchmarks/gmm_exact.py: a diagonal mixture's exact discrete bits/px against its "
        f"dequantised bound; {started} UTC",
        f"# Machine: {cpu_name()}; torch {torch.__version__}, {torch.get_num_threads()} thread",
        "# Command: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/gmm_exact.py --save",
        "# bound bpp: dequantised test data (seed 1) under the mixture, an upper bound; exact bpp: "
        "GaussianMixture.score_levels (mass on each image's grey-level cells); indep bpp: "
        "per-pixel histograms, exact; exact-indep: mean paired difference per image ± its "
        "standard error (negative: the mixture is better)",
        HEADER, *rows,
        f"# Whole run: {time.process_time() - cpu0:.0f} CPU s",
    ]
    if args.save and not args.quick:
        (RESULTS / "gmm_exact_cpu.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
