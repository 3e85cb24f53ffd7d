"""Benchmark: checkerboard Gibbs against Swendsen-Wang at the critical temperature.

For lattices L x L (periodic, J = 1, h = 0) at T_c, measured in this one process:
  * time per sweep of each sampler (one chain, median of several runs; CPU seconds of this
    one-thread process on a CPU, so that other jobs on the machine do not count);
  * the integrated autocorrelation time tau_int of |M| and of the energy (Sokal's window,
    course_lib.mrf.diagnostics), from long runs of several chains started all up;
  * the cost per effectively independent sample: time per sweep x tau_int, with the larger
    of the two tau_int (tau_int = 1 + 2 sum_k rho(k), course_lib's convention: N correlated
    sweeps carry about as much information as N / tau_int independent ones);
  * the ratio Gibbs / Swendsen-Wang of that cost (the goal of issue 11: >= 20x at L = 64).

Gibbs' tau_int grows like L^2.17 at T_c: a run long enough to measure it (>= 20 tau_int) is
affordable up to L = 64 here. For larger L the table extrapolates Gibbs' tau_int from the
power law fitted to the measured sizes, and says so in the row; Swendsen-Wang is measured at
every size.

Usage:  python benchmarks/mrf_cluster.py [--quick] [--save]
  --quick  a smoke run (small sizes, short runs);
  --save   also write the table to benchmarks/results/mrf_cluster_<device>.txt
The 2-core CPU is shared: the load average is printed with the table; CPU seconds are less
sensitive to it than wall seconds, but a busy machine still slows a process (caches, memory).
Compare ratios.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import mrf
from course_lib._core import cpu_name

BETA_C = 1.0 / mrf.ising_critical_temperature()


def seconds_per_sweep(method: str, L: int, sweeps: int, repeats: int, device: str) -> float:
    """Median time of one sweep of one chain (set-up included, divided by the sweeps): CPU
    seconds of this process on the CPU (one thread: what the sampler used, whatever else runs
    on the machine), wall seconds on a GPU."""
    clock = time.process_time if device == "cpu" else time.perf_counter
    model = mrf.IsingModel(beta=BETA_C)
    times = []
    for r in range(repeats + 1):
        t0 = clock()
        model.sample(1, (L, L), n_sweeps=sweeps, burn_in=0, method=method, init="up", seed=r,
                     device=device)
        if device == "cuda":
            torch.cuda.synchronize()
        if r:  # the first run warms up
            times.append((clock() - t0) / sweeps)
    return statistics.median(times)


def tau(method: str, L: int, sweeps: int, chains: int, device: str) -> dict:
    """tau_int of |M| and E at T_c after a burn-in of 10% of the run."""
    burn_in = max(50, sweeps // 10)
    _, st = mrf.IsingModel(beta=BETA_C).sample(
        chains, (L, L), n_sweeps=sweeps, burn_in=burn_in, method=method, init="up", seed=1,
        device=device, return_stats=True)
    return st["tau_int"]


def table(device: str, quick: bool) -> list[str]:
    sizes = [16, 32] if quick else [32, 64, 128, 256]
    gibbs_measured = {16: (2000, 4), 32: (12000, 4), 64: (40000, 4)}
    sw_run = {16: (200, 2), 32: (400, 4), 64: (400, 4), 128: (300, 2), 256: (200, 2)}
    if quick:
        gibbs_measured, sw_run = {16: (1000, 2), 32: (2000, 2)}, {16: (100, 2), 32: (100, 2)}
    lines = [
        f"Table. Cost per effectively independent sample at T_c = {1 / BETA_C:.6f}, {device}",
        f"time per sweep: one chain, median of 5 runs ({'CPU' if device == 'cpu' else 'wall'} seconds); tau_int of |M| and E (Sokal's window, c=5);",
        "cost per independent sample = time per sweep x tau_int (the larger tau_int; tau_int = 1 + 2 sum rho)",
        "",
        f"{'L':>5} | {'Gibbs s/sweep':>13} {'tau |M|':>8} {'tau E':>7} {'cost/indep':>11} | "
        f"{'SW s/sweep':>11} {'tau |M|':>8} {'tau E':>7} {'cost/indep':>11} | {'Gibbs/SW':>9}",
    ]
    gibbs_tau = {}
    for L, (sweeps, chains) in gibbs_measured.items():
        if L in sizes or L < min(sizes):
            gibbs_tau[L] = tau("gibbs", L, sweeps, chains, device)
    Ls = np.array(sorted(gibbs_tau))
    fit = {}
    for key in ("abs_magnetization", "energy"):
        slope, intercept = np.polyfit(np.log(Ls), np.log([gibbs_tau[L][key] for L in Ls]), 1)
        fit[key] = (slope, intercept)
    ratios = {}
    for L in sizes:
        # enough sweeps that each timed run takes a few tenths of a second on a CPU
        t_g = seconds_per_sweep("gibbs", L, 2000 if L <= 64 else 500, 5, device)
        t_s = seconds_per_sweep("swendsen_wang", L, 400 if L <= 64 else 60, 5, device)
        if L in gibbs_tau:
            tg, note = gibbs_tau[L], ""
        else:
            tg = {k: float(np.exp(b) * L**a) for k, (a, b) in fit.items()}
            note = "  (Gibbs tau extrapolated)"
        sweeps, chains = sw_run[L]
        ts = tau("swendsen_wang", L, sweeps, chains, device)
        cost_g = t_g * max(tg.values())
        cost_s = t_s * max(ts.values())
        ratios[L] = cost_g / cost_s
        lines.append(
            f"{L:>5} | {t_g:13.2e} {tg['abs_magnetization']:8.1f} {tg['energy']:7.1f} "
            f"{cost_g:10.3g}s | {t_s:11.2e} {ts['abs_magnetization']:8.1f} {ts['energy']:7.1f} "
            f"{cost_s:10.3g}s | {ratios[L]:8.1f}x{note}"
        )
    lines.append("")
    lines.append(
        "Gibbs tau_int measured at L = " + ", ".join(str(L) for L in Ls)
        + "; fitted dynamic exponents z: "
        + ", ".join(f"{k} {a:.2f}" for k, (a, _) in fit.items())
        + " (literature for local dynamics: 2.17)"
    )
    return lines


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, short runs")
    parser.add_argument(
        "--save", action="store_true", help="write benchmarks/results/mrf_cluster_<device>.txt"
    )
    args = parser.parse_args(argv)
    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    for device in devices:
        load = os.getloadavg()
        lines = [
            "MRF cluster benchmark (benchmarks/mrf_cluster.py%s)" % (" --quick" if args.quick else ""),
            f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; torch {torch.__version__}; "
            f"numpy {np.__version__}; python {platform.python_version()}",
            f"CPU: {cpu_name()}, {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; GPU: "
            f"{torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}",
            f"load average at start (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}",
            "",
        ]
        lines += table(device, args.quick)
        load = os.getloadavg()
        lines += ["", f"load average at end (1, 5, 15 min): {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"]
        text = "\n".join(lines)
        print(text, flush=True)
        if args.save and not args.quick:
            out = Path(__file__).resolve().parent / "results" / f"mrf_cluster_{device}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")
            print(f"saved {out}")


if __name__ == "__main__":
    main()
