"""Benchmark: how much one dequantisation draw costs the continuous densities of Chapter 6's
likelihood table (the full-covariance Gaussian of Chapter 2, the diagonal mixture with K = 40
of Chapter 3), against the exact discrete numbers of the other rows.

A continuous density p scored at one dequantised copy x_u = (level + u) / 17 of a test digit
estimates E_u[log p(x_u)], which by Jensen's inequality is at most log E_u[p(x_u)] = log of the
probability of the 17 grey levels on the course's scale (the bin has volume 17^-64, and the
scale multiplies by 17^64). So a continuous row is a bound, looser by the Jensen gap; the
discrete decoders and the histograms give the probability of the levels exactly.

For each model: bits/px at the chapter's one draw (test noise seed 1); the mean over 200 draws
of log p(x_u) (what one draw estimates); and log (1/200) Σ_u p(x_u) (a tighter estimate of the
levels' probability, itself a lower bound in expectation that rises with the draws).

Usage:  python benchmarks/vae_dequant_bound.py [--quick] [--save]
  --quick  20 draws, nothing saved;  --save  write benchmarks/results/vae_dequant_bound_cpu.txt
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp

from course_lib import metrics
from course_lib._core import cpu_name
from course_lib.data import load_digits
from course_lib.gmm import GaussianMixture

RESULTS = Path(__file__).resolve().parent / "results"
D = 64



def bpp_of_mean(ll) -> float:
    """Bits per pixel of the levels from per-digit log-densities on the dequantised scale."""
    return metrics.bits_per_pixel(np.asarray(ll), D)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n_draws = 20 if args.quick else 200
    Xtr, _ = load_digits("train", dequantize=True, seed=0)
    Xte_one, _ = load_digits("test", dequantize=True, seed=1)
    levels, _ = load_digits("test", raw=True)
    flat_levels = levels.reshape(len(levels), -1).astype(np.float64)
    rng = np.random.default_rng(2026)
    draws = [(flat_levels + rng.uniform(size=flat_levels.shape)) / 17.0 for _ in range(n_draws)]
    models = {
        "full-covariance Gaussian (Chapter 2)": GaussianMixture(1, covariance_type="full",
                                                                random_state=0, device="cpu"),
        "GMM, diagonal, K = 40 (Chapter 3)": GaussianMixture(40, covariance_type="diag",
                                                             random_state=0, device="cpu"),
    }
    start = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [
        f"# benchmarks/vae_dequant_bound.py: one dequantisation draw against {n_draws}, the "
        f"continuous rows of Chapter 6's table; {start} UTC",
        f"# Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other jobs); torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; device cpu",
        "# Held-out bits per pixel of the 359 test digits (lower is better). 'one draw': the "
        "chapter's test noise (seed 1); 'mean of log p': E_u log p(x_u) over the draws (what one "
        "draw estimates); 'log mean p': log (1/n) sum_u p(x_u), closer to the probability of "
        "the grey levels. The models are fitted once, on the training digits dequantised with "
        "seed 0.",
        f"# {'model':<38} {'one draw':>9} {'mean of log p':>14} {'log mean p':>11}",
    ]
    for name, m in models.items():
        m.fit(Xtr)
        one = metrics.bits_per_pixel(m.score_samples(Xte_one), D)
        ll = np.stack([m.score_samples(x.reshape(Xte_one.shape).astype(np.float32))
                       for x in draws])  # (n_draws, 359)
        mean_log = bpp_of_mean(ll.mean(0))
        log_mean = bpp_of_mean(logsumexp(ll, axis=0) - math.log(n_draws))
        lines.append(f"{name:<40} {one:>9.4f} {mean_log:>14.4f} {log_mean:>11.4f}")
        print(lines[-1], flush=True)
    lines.append(f"# finished {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average "
                 f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print("\n".join(lines))
    if args.save and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "vae_dequant_bound_cpu.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
