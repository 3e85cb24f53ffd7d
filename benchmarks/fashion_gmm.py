"""Benchmark: a diagonal Gaussian mixture on Fashion-MNIST, its held-out bits per pixel on the
256-level scale and the cost of full-batch EM, beside two baselines (issue 23, Chapter 8).

What is measured, on Debian's full Fashion-MNIST (28×28, 256 grey levels):

* Split: the first 50,000 training images fit every model, the last 10,000 training images are
  the validation set that picks K, the 10,000 test images give the final number.
* Independent pixels: each pixel a 256-level histogram of the fitting set with add-one
  (Laplace) smoothing. Its bits/px are exact discrete bits/px (no dequantisation needed).
* One diagonal Gaussian (K = 1) and the screen: ``course_lib.gmm.GaussianMixture`` with
  ``covariance_type="diag"``, float32, ``init_params="k-means++"``, one seed, for each
  (K, reg_covar) of the screen. The models are fitted on dequantised data
  (``data.dequantize(levels, n_levels=256)``, seeds 0/1/2 for fit/validation/test) and scored
  with ``metrics.bits_per_pixel``: an upper bound on the discrete bits/px (Jensen).
* Cost, in CPU seconds of one thread: each fit runs one EM iteration from its start (the
  k-means++ seeding, column "init+1 s"), then continues with ``warm_start`` until the lower
  bound (mean log-likelihood, nats per image) moves by less than ``tol`` or ``max_iter``
  iterations are reached in all. "s/iter" is the continued fit's CPU seconds over its
  iterations (it also holds that fit's input checks and final E-step, once). From s/iter the
  script projects full-batch EM on all 60,000 images (linear in N) against the 90 s that the
  chapter's notebook may take on 2 cores.

K is picked by validation bits/px over the screen's rows; its test bits/px is the result.

Usage:  python benchmarks/fashion_gmm.py [--quick] [--save | --append] [--score K] [--ks 10 25 50 100 200]
            [--reg-covar 1e-6] [--extra REG:K,K ...] [--max-iter 50] [--tol 0.5]
  --quick  3,000 / 1,000 / 1,000 images, K in {2, 5}, 2 iterations, nothing saved;
  --save   write benchmarks/results/fashion_gmm_cpu.txt
  --append add this run's block to that file after the blocks already there (the screen's
           larger K were run later, on another machine: --ks 400 800 1600 3200 --extra --append)
  --score K  instead of the screen, fit K components on all 60,000 training images and score
           them as benchmarks/fashion_models.py scores the comparison's mixture (--score 1600
           --append scored the extended screen's pick)
Run it under one thread (the script sets torch's; set OMP_NUM_THREADS=1 too).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from course_lib._core import cpu_name
from course_lib.data import dequantize, load_fashion_mnist
from course_lib.gmm import GaussianMixture
from course_lib.metrics import bits_per_pixel

RESULTS = Path(__file__).resolve().parent / "results"
D, LEVELS = 784, 256
NOTEBOOK_BUDGET_S = 90  # the chapter's notebook, wall seconds on 2 cores


def grey_levels(split: str) -> tuple[np.ndarray, object]:
    """The images of ``split`` as integer grey levels 0..255, shape (N, 784), and the source."""
    X, _, source = load_fashion_mnist(split, verbose=False, return_source=True)
    return np.rint(X.reshape(len(X), -1) * (LEVELS - 1)).astype(np.int64), source


def independent_pixels_bpp(fit: np.ndarray, *held_out: np.ndarray) -> list[float]:
    """Exact discrete bits/px of each of ``held_out`` under per-pixel 256-level histograms of
    ``fit`` with add-one smoothing."""
    counts = np.stack([np.bincount(fit[:, p], minlength=LEVELS) for p in range(D)]) + 1.0
    log_p = np.log(counts / counts.sum(1, keepdims=True))  # (784, 256)
    pixels = np.arange(D)
    return [float(-log_p[pixels, levels].sum(1).mean() / (D * math.log(2)))
            for levels in held_out]


def fit_timed(K: int, reg_covar: float, Y: np.ndarray, max_iter: int, tol: float) -> dict:
    """Fit a diagonal GMM (one EM iteration from the start, then ``warm_start`` to the end)
    and return the model with its timings."""
    gm = GaussianMixture(K, covariance_type="diag", max_iter=1, tol=tol, reg_covar=reg_covar,
                         init_params="k-means++", random_state=0, dtype="float32")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one iteration never "converges"
        start = time.process_time()
        gm.fit(Y)
    first = time.process_time() - start
    n_more = 0
    if max_iter > 1 and not gm.converged_:
        gm.set_params(warm_start=True, max_iter=max_iter - 1)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            start = time.process_time()
            gm.fit(Y)
        rest = time.process_time() - start
        n_more = gm.n_iter_
        for w in caught:
            if "did not converge" not in str(w.message):
                print(f"  warning (K={K}, reg {reg_covar:g}): {w.message}", file=sys.stderr)
    else:
        rest = 0.0
    return dict(model=gm, K=K, reg=reg_covar, iters=1 + n_more, converged=gm.converged_,
                init_s=first, per_iter=rest / n_more if n_more else float("nan"),
                fit_s=first + rest)


def bpp(gm: GaussianMixture, Y: np.ndarray) -> float:
    """Bits/px (256 levels) of the dequantised ``Y`` under ``gm``: an upper bound."""
    return bits_per_pixel(gm.score_samples(Y), n_pixels=D, n_levels=LEVELS)


def parse_extra(items: list[str]) -> list[tuple[int, float]]:
    """``["1e-3:10,50"]`` -> ``[(10, 1e-3), (50, 1e-3)]``."""
    pairs = []
    for item in items:
        reg, ks = item.split(":")
        pairs += [(int(k), float(reg)) for k in ks.split(",")]
    return pairs


BLOCK_START = "# benchmarks/fashion_gmm.py"  # the first line of every run's block


def read_blocks(path: Path | None = None) -> list[dict]:
    """The screens in the results file, one per run of the script, in file order: each a dict
    with ``machine`` (its "# Machine" line), ``indep`` (independent pixels' validation and test
    bits/px), ``gaussian`` (one Gaussian's) and ``rows``: one dict per mixture, with ``K``,
    ``reg_covar``, ``iters``, ``converged``, ``init_s``, ``per_iter``, ``fit_cpu_s``, ``val``
    and ``test`` (bits/px). The ``scored`` lines of ``--score`` are :func:`read_scored`'s."""
    path = RESULTS / "fashion_gmm_cpu.txt" if path is None else path
    blocks = []
    for block in path.read_text(encoding="utf-8").split(BLOCK_START)[1:]:
        lines = block.splitlines()
        found = {"machine": next(ln for ln in lines if ln.startswith("# Machine:")), "rows": []}
        for cells in (ln.split() for ln in lines if not ln.startswith("#")):
            if cells[:2] == ["independent", "pixels"]:
                found["indep"] = (float(cells[-4]), float(cells[-3]))
            elif cells[:2] == ["one", "Gaussian"]:
                found["gaussian"] = (float(cells[9]), float(cells[10]))
            elif cells[:2] == ["diagonal", "GMM"]:
                found["rows"].append({
                    "K": int(cells[2]), "reg_covar": float(cells[3]), "iters": int(cells[4]),
                    "converged": cells[5] == "yes", "init_s": float(cells[6]),
                    "per_iter": float(cells[7]), "fit_cpu_s": float(cells[8]),
                    "val": float(cells[9]), "test": float(cells[10])})
        blocks.append(found)
    return blocks


def read_scored(path: Path | None = None) -> dict[int, dict]:
    """The ``--score K`` rows of the results file, by K: ``reg_covar``, ``iters``, ``classes``,
    ``bpp`` (the 2,000 test images), ``fit_cpu_s`` and, for FID, KID, precision and recall,
    its ``(mean, std)`` over the protocol's draws."""
    path = RESULTS / "fashion_gmm_cpu.txt" if path is None else path
    out = {}
    for ln in path.read_text(encoding="utf-8").splitlines():
        if not ln.startswith("scored ") or ln.startswith("scored K"):
            continue
        cells = ln.replace("±", " ").split()
        numbers = [float(c) for c in cells[4:]]  # 4 x (mean, std), classes, bpp, fit CPU s
        row = {"reg_covar": float(cells[2]), "iters": int(cells[3]), "classes": numbers[8],
               "bpp": numbers[9], "fit_cpu_s": numbers[10]}
        row.update({k: (numbers[2 * i], numbers[2 * i + 1])
                    for i, k in enumerate(("fid", "kid", "precision", "recall"))})
        out[int(cells[1])] = row
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--append", action="store_true",
                        help="add this run's block to the results file, under its own header, "
                             "after the blocks already there (a screen extended later)")
    parser.add_argument("--score", type=int, metavar="K",
                        help="instead of the screen: fit K components on all 60,000 training "
                             "images and score them as the comparison's mixture is "
                             "(benchmarks/fashion_models.py): protocol and bits/px")
    parser.add_argument("--ks", type=int, nargs="+", default=[10, 25, 50, 100, 200])
    parser.add_argument("--reg-covar", type=float, default=1e-6)
    parser.add_argument("--extra", nargs="*", default=["1e-5:50,100", "1e-4:50"],
                        help="further (K, reg_covar) rows, as REG:K,K")
    parser.add_argument("--max-iter", type=int, default=50)
    parser.add_argument("--tol", type=float, default=0.5, help="nats per image")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    wall0, cpu0 = time.time(), time.process_time()

    train, source = grey_levels("train")
    test, test_source = grey_levels("test")
    if args.score:
        return score(args, train, test, started, cpu0)
    fit, val = train[:50000], train[50000:]
    screen = [(k, args.reg_covar) for k in args.ks] + parse_extra(args.extra)
    max_iter = args.max_iter
    if args.quick:
        fit, val, test = fit[:3000], val[:1000], test[:1000]
        screen, max_iter = [(2, args.reg_covar), (5, args.reg_covar)], 2
    Y_fit, Y_val, Y_test = (dequantize(x, n_levels=LEVELS, seed=s).astype(np.float32)
                            for s, x in enumerate((fit, val, test)))

    indep = independent_pixels_bpp(fit, val, test)
    rows = []
    for K, reg in [(1, args.reg_covar)] + screen:
        row = fit_timed(K, reg, Y_fit, max_iter, args.tol)
        row["val"], row["test"] = bpp(row["model"], Y_val), bpp(row["model"], Y_test)
        rows.append(row)
        print(f"K={K} reg {reg:g}: {row['iters']} it, {row['per_iter']:.2f} s/it, "
              f"fit {row['fit_s']:.0f} s, val {row['val']:.4f}, test {row['test']:.4f}",
              flush=True)
    best = min(rows[1:], key=lambda r: r["val"])

    header = (f"{'model':<22}{'K':>4}{'reg_covar':>10}{'iters':>6}{'conv':>6}{'init+1 s':>9}"
              f"{'s/iter':>8}{'fit CPU s':>10}{'val bpp':>9}{'test bpp':>9}")
    table = [header, f"{'independent pixels':<22}{'-':>4}{'-':>10}{'-':>6}{'-':>6}{'-':>9}"
                     f"{'-':>8}{'-':>10}{indep[0]:>9.4f}{indep[1]:>9.4f}   (exact, discrete)"]
    for r in rows:
        name = "one Gaussian" if r["K"] == 1 else "diagonal GMM"
        mark = "   <- picked by validation" if r is best else ""
        table.append(f"{name:<22}{r['K']:>4}{r['reg']:>10.0e}{r['iters']:>6}"
                     f"{'yes' if r['converged'] else 'no':>6}{r['init_s']:>9.1f}"
                     f"{r['per_iter']:>8.2f}{r['fit_s']:>10.1f}{r['val']:>9.4f}"
                     f"{r['test']:>9.4f}{mark}")
    scale = 60000 / len(fit)
    full_iter = best["per_iter"] * scale
    full_fit = best["init_s"] * scale + full_iter * (best["iters"] - 1)
    largest = max(rows, key=lambda r: r["K"])
    command = "benchmarks/fashion_gmm.py " + " ".join(sys.argv[1:] if argv is None
                                                             else argv)
    lines = [
        f"# benchmarks/fashion_gmm.py: diagonal GMM on Fashion-MNIST, held-out bits/px on the "
        f"256-level scale; {started} UTC",
        f"# Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other jobs); torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; device cpu",
        f"# Command: OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python {command.strip()}",
        f"# Data: {source}; test split: {test_source}",
        f"# Split: fit = first {len(fit)} training images, validation = {len(val)} images "
        f"(training images 50000..), test = {len(test)} test images",
        "# Independent pixels: per-pixel 256-level histograms of the fitting set, add-one "
        "smoothing; exact discrete bits/px (no dequantisation)",
        f"# Gaussians: course_lib.gmm.GaussianMixture, diag, float32, k-means++ start, "
        f"random_state 0, tol {args.tol} nats/image on the mean log-likelihood, max_iter "
        f"{max_iter}; on dequantised data (seeds 0/1/2 fit/val/test), bits/px from "
        "metrics.bits_per_pixel (an upper bound on the discrete bits/px)",
        "# init+1 s: CPU s of the start and the first EM iteration; s/iter: CPU s per further "
        "iteration (warm-started continuation; holds its input checks and final E-step once)",
        *table,
        f"# Picked by validation bits/px: K = {best['K']}, reg_covar {best['reg']:g}: test "
        f"{best['test']:.4f} bits/px (independent pixels {indep[1]:.4f}; one Gaussian "
        f"{rows[0]['test']:.4f})",
        f"# Full-batch EM on 60,000 x 784 (projected, linear in N, one thread): K = "
        f"{best['K']}: {full_iter:.2f} s per iteration, {full_fit:.0f} CPU s for its "
        f"{best['iters']} iterations; K = {largest['K']}: "
        f"{largest['per_iter'] * scale:.2f} s per iteration. Notebook budget: "
        f"{NOTEBOOK_BUDGET_S} s wall on 2 cores (at most {2 * NOTEBOOK_BUDGET_S} CPU s with "
        f"perfect scaling): {'fits' if full_fit <= 2 * NOTEBOOK_BUDGET_S else 'does not fit'}",
        f"# Whole run: {time.process_time() - cpu0:.0f} CPU s, {time.time() - wall0:.0f} s "
        f"wall; finished {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]
    print("\n".join(lines))
    if args.append and not args.quick:  # a later block: the earlier ones stay as they are
        _append(lines)
    elif args.save and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "fashion_gmm_cpu.txt").write_text("\n".join(lines) + "\n")
    return 0


def score(args, train, test, started: str, cpu0: float) -> int:
    """``--score K``: the mixture of K components fitted on all the training images and scored
    like the comparison's row (the same function, benchmarks/fashion_models.py's
    ``statistical_rows``): the protocol's FID, KID, precision, recall and classes (5 draws of
    2,000 samples), bits/px on the first 2,000 test images, the fit's CPU seconds."""
    import fashion_models  # this folder's; imported here because it imports this module

    (row,) = fashion_models.statistical_rows(train, test[:fashion_models.BPP_IMAGES], (1, 28, 28),
                                             False, gmm_k=args.score, independent=False)
    f = {k: row[k] for k in ("fid", "kid", "precision", "recall", "classes")}
    lines = [
        f"# Scored by benchmarks/fashion_gmm.py --score {args.score}: {started} UTC, {cpu_name()}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} thread; the mixture fitted on all "
        f"{len(train)} training images and scored as in benchmarks/fashion_models.py",
        "scored K  reg_covar  iters            fid            kid      precision         recall"
        "   classes  bpp (2,000 test)  fit CPU s",
        f"scored {args.score:<4d} {fashion_models.GMM_REG:>8.0e} {row['iters']:>6d}  "
        f"{f['fid'][0]:6.1f} ± {f['fid'][1]:4.1f}  {f['kid'][0]:6.2f} ± {f['kid'][1]:4.2f}  "
        f"{f['precision'][0]:.3f} ± {f['precision'][1]:.3f}  {f['recall'][0]:.3f} ± "
        f"{f['recall'][1]:.3f}  {f['classes'][0]:4.1f}  {row['bpp']:16.4f}  {row['fit_cpu_s']:9.1f}",
        f"# Whole run: {time.process_time() - cpu0:.0f} CPU s",
    ]
    print("\n".join(lines))
    if args.append:
        _append(lines)
    return 0


def _append(lines: list[str]) -> None:
    """Add a run's block to the results file, after the blocks already there."""
    with (RESULTS / "fashion_gmm_cpu.txt").open("a", encoding="utf-8") as out:
        out.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    raise SystemExit(main())
