"""Benchmark: the VAE's inference gap on the test digits, split into approximation and
amortisation gaps (Cremer, Li & Duvenaud 2018), for the two shipped unconditional VAEs.

For every test digit: log p(x) by IWAE (k = 5000), the ELBO of the encoder's Gaussian, and the
ELBO of the best Gaussian for that digit alone (``VAE.optimize_posterior``: Adam on its mean
and log-variance, started at the encoder's output, the ELBO estimated from 16 draws per step);
both ELBOs averaged over the same 1000 draws per digit. Eq. (6.15) of the book:

    log p(x) − ELBO(q_φ) = [log p(x) − ELBO(q*)] + [ELBO(q*) − ELBO(q_φ)]
                            approximation gap       amortisation gap

Table 1 -- all 359 test digits, 300 Adam steps: mean ± standard error over the digits, in nats
  per digit and bits per pixel.
Table 2 -- convergence of q*: the first 100 test digits with 300 and with 1000 steps.

Usage:  python benchmarks/vae_gaps.py [--quick] [--save]
  --quick  20 digits, 30 steps, k = 100, nothing saved;
  --save   write the tables to benchmarks/results/vae_gaps_cpu.txt
Runs on the CPU with one thread. The test digits are dequantised with noise seed 1, as in the
chapter.
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import vae  # noqa: F401  (registers VAE for shipped_model)
from course_lib._core import cpu_name
from course_lib.data import load_digits
from course_lib.training import shipped_model

RESULTS = Path(__file__).resolve().parent / "results"
D = 64
MODELS = {"vae_digits": "VampPrior (default)", "vae_digits_normal_prior": "N(0, I) prior"}
NATS_TO_BPP = 1.0 / (D * math.log(2))



def mean_se(a) -> str:
    a = np.asarray(a)
    return f"{a.mean():7.3f} ± {a.std(ddof=1) / math.sqrt(len(a)):.3f}"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    Xte, _ = load_digits("test", dequantize=True, seed=1)
    n_all, steps, long_steps, n_conv, k = ((20, 30, 60, 10, 100) if args.quick else
                                           (len(Xte), 300, 1000, 100, 5000))
    start = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [
        f"# benchmarks/vae_gaps.py: approximation and amortisation gaps of the shipped VAEs, "
        f"8x8 test digits; {start} UTC",
        f"# Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other jobs); torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; device cpu",
        f"# q*: Adam, lr 0.01, 16 draws per step, from the encoder's output; ELBOs over the same "
        f"1000 draws per digit; log p(x): IWAE k = {k}. Mean ± standard error over the digits.",
        "",
        f"# Table 1: {n_all} test digits, {steps} steps",
        f"# {'model':<22} {'log p(x)':>16} {'ELBO(q*)':>16} {'ELBO(encoder)':>16} "
        f"{'approximation':>16} {'amortisation':>16} {'amort. share':>12} {'CPU s':>6}",
    ]
    for line in lines:
        print(line, flush=True)
    table2 = [f"# Table 2: convergence of q*, the first {n_conv} test digits (nats per digit)",
              f"# {'model':<22} {'steps':>5} {'ELBO(q*)':>16} {'approximation':>16} "
              f"{'amortisation':>16}"]
    for name, label in MODELS.items():
        model = shipped_model(name, device="cpu", progress=False)
        c0 = time.process_time()
        g = model.inference_gaps(Xte[:n_all], steps=steps, k=k, n_eval=1000, seed=0)
        cpu = time.process_time() - c0
        share = g.amortisation.mean() / (g.approximation + g.amortisation).mean()
        row = (f"{label:<24} {mean_se(g.log_px):>16} {mean_se(g.elbo_optimal):>16} "
               f"{mean_se(g.elbo_encoder):>16} {mean_se(g.approximation):>16} "
               f"{mean_se(g.amortisation):>16} {share:>12.2f} {cpu:>6.0f}")
        bpp = (f"{'  (bits/px)':<24} {'':>16} {'':>16} {'':>16} "
               f"{g.approximation.mean() * NATS_TO_BPP:>16.4f} "
               f"{g.amortisation.mean() * NATS_TO_BPP:>16.4f}")
        for r in (row, bpp):
            print(r, flush=True)
            lines.append(r)
        for n_steps in (steps, long_steps):
            h = model.inference_gaps(Xte[:n_conv], steps=n_steps, k=k, n_eval=1000, seed=0)
            table2.append(f"{label:<24} {n_steps:>5} {mean_se(h.elbo_optimal):>16} "
                          f"{mean_se(h.approximation):>16} {mean_se(h.amortisation):>16}")
            print(table2[-1], flush=True)
    lines += [""] + table2
    tail = (f"# finished {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(tail)
    lines.append(tail)
    if args.save and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "vae_gaps_cpu.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
