"""Benchmark: checkerboard Gibbs sampling of the 2D Ising model, and MRF denoising methods.

Table 1 -- spin updates per second, all measured in this one process:
  * a plain per-pixel Python loop (the textbook algorithm, one site at a time);
  * the straightforward vectorised version: full-lattice float32 tensors, torch.roll for the
    neighbours, a colour mask, torch.rand and a sigmoid per site, half of the work thrown away
    by the mask;
  * course_lib.mrf.IsingModel.sample: quarter-lattices of int8 spins, each half-sweep reads
    the other colour through shifted slices and writes only its own colour, 32-bit integer
    uniforms (two per call of the 64-bit generator).
  Rows for 256x256 and 1024x1024 lattices (one chain, and a batch of chains for 256x256), with
  torch's default number of threads and with one thread, and on a GPU when one is present.

Table 2 -- denoising the horse silhouette with 10% flipped pixels: energy of each method's
result against the exact MAP from the graph cut, pixel error and time.

Usage:  python benchmarks/mrf_gibbs.py [--quick] [--save]
  --quick  a smoke run (small sizes, few repeats);
  --save   also write the tables to benchmarks/results/mrf_gibbs_<device>.txt
The 2-core CPU is shared: the load average is printed with the tables; compare ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from course_lib import mrf
from course_lib.data import flip_noise, load_binary_image
from course_lib.mrf._lattice import _QuarterLattice

BETA = 1.0 / 2.5  # a temperature above T_c (the rate does not depend on it)


# ------------------------------------------------------------------ the three samplers


def python_loop_sweeps(x: list[list[int]], beta: float, n_sweeps: int, rng: random.Random) -> None:
    """Heat-bath Gibbs sampling one site at a time, plain Python, periodic lattice."""
    H, W = len(x), len(x[0])
    for _ in range(n_sweeps):
        for i in range(H):
            for j in range(W):
                s = x[i - 1][j] + x[(i + 1) % H][j] + x[i][j - 1] + x[i][(j + 1) % W]
                p_up = 1.0 / (1.0 + math.exp(-2.0 * beta * s))
                x[i][j] = 1 if rng.random() < p_up else -1


def roll_sweeps(x: torch.Tensor, beta: float, n_sweeps: int, gen: torch.Generator) -> torch.Tensor:
    """Straightforward vectorised checkerboard: full-lattice float32, torch.roll, masks."""
    H, W = x.shape[-2:]
    i, j = torch.meshgrid(torch.arange(H), torch.arange(W), indexing="ij")
    black = ((i + j) % 2 == 0).to(x.device)
    for _ in range(n_sweeps):
        for mask in (black, ~black):
            s = (
                torch.roll(x, 1, -2)
                + torch.roll(x, -1, -2)
                + torch.roll(x, 1, -1)
                + torch.roll(x, -1, -1)
            )
            p_up = torch.sigmoid(2.0 * beta * s)
            u = torch.rand(x.shape, generator=gen, device=x.device)
            x = torch.where(mask, torch.where(u < p_up, 1.0, -1.0), x)
    return x


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timings(fn, repeats: int, device: str) -> list[float]:
    """Wall times in seconds of ``repeats`` runs of ``fn`` after one warm-up run."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - t0)
    return times


def rate(fn, n_spin_updates: int, repeats: int, device: str) -> tuple[float, float]:
    """(median, best) spin updates per second over ``repeats`` timed runs after a warm-up."""
    times = timings(fn, repeats, device)
    return n_spin_updates / statistics.median(times), n_spin_updates / min(times)


def spin_table(device: str, quick: bool) -> list[str]:
    repeats = 2 if quick else 5
    configs = [(64, 1, 5)] if quick else [(256, 1, 100), (256, 16, 20), (1024, 1, 10)]
    if device == "cuda" and not quick:
        configs += [(1024, 16, 20), (4096, 1, 20)]
    thread_options = (
        [torch.get_num_threads()]
        if device == "cuda"
        else sorted({torch.get_num_threads(), 1}, reverse=True)
    )
    lines = [
        f"Table 1. Checkerboard Gibbs sampling, spin updates per second (M/s = 10^6/s), {device}",
        f"median [best] of {repeats} runs; ratio = vectorised median / Python-loop median",
        "",
        f"{'lattice':>11} {'chains':>6} {'threads':>7} | {'python loop':>11} | {'torch.roll (float32)':>22} | "
        f"{'course_lib (int8 quarters)':>26} | {'lib/roll':>8} | {'lib/loop':>8}",
    ]
    # the Python loop: small lattice, few sweeps (its per-spin rate does not depend on size)
    L_loop, sweeps_loop = (16, 1) if quick else (64, 10)
    rng = random.Random(0)
    grid = [[rng.choice((-1, 1)) for _ in range(L_loop)] for _ in range(L_loop)]
    loop_rate, loop_best = rate(
        lambda: python_loop_sweeps(grid, BETA, sweeps_loop, rng),
        L_loop * L_loop * sweeps_loop,
        repeats,
        "cpu",
    )
    default_threads = torch.get_num_threads()
    model = mrf.IsingModel(beta=BETA)
    for threads in thread_options:
        torch.set_num_threads(threads)
        for L, n, sweeps in configs:
            gen = torch.Generator(device=device).manual_seed(0)
            x = (2 * torch.randint(0, 2, (n, L, L), generator=gen, device=device) - 1).float()
            updates = n * L * L * sweeps
            roll_med, roll_best = rate(
                lambda x=x, g=gen, k=sweeps: roll_sweeps(x, BETA, k, g), updates, repeats, device
            )
            lib_med, lib_best = rate(
                lambda n=n, L=L, k=sweeps: model.sample(
                    n, (L, L), n_sweeps=k, burn_in=0, method="gibbs", seed=0, device=device
                ),
                updates,
                repeats,
                device,
            )
            lines.append(
                f"{L:>5}x{L:<5} {n:>6} {threads:>7} | {loop_rate / 1e6:>7.3f} M/s | "
                f"{roll_med / 1e6:>8.1f} [{roll_best / 1e6:>6.1f}] M/s  | "
                f"{lib_med / 1e6:>12.1f} [{lib_best / 1e6:>6.1f}] M/s | "
                f"{lib_med / roll_med:>7.1f}x | {lib_med / loop_rate:>7.0f}x"
            )
    torch.set_num_threads(default_threads)
    lines.append(
        f"(python loop: {L_loop}x{L_loop} lattice, {sweeps_loop} sweeps per run: "
        f"{loop_rate / 1e6:.3f} M/s median, {loop_best / 1e6:.3f} best)"
    )
    lines.append(
        "(course_lib timings include IsingModel.sample's set-up: random start, splitting into "
        "quarters and reassembling the lattice)"
    )
    return lines


def cost_breakdown(device: str, quick: bool) -> list[str]:
    """Where the time of one quarter-lattice heat-bath update goes (ns per spin updated)."""
    L = 256 if quick else 1024
    repeats = 3 if quick else 20
    threads = (
        [torch.get_num_threads()] if device == "cuda" else sorted({torch.get_num_threads(), 1})
    )
    gen = torch.Generator(device=device).manual_seed(0)
    x = (2 * torch.randint(0, 2, (1, L, L), generator=gen, device=device) - 1).to(torch.int8)
    lattice = _QuarterLattice(x, periodic=True)
    n = lattice.colour["black"].numel()
    f, q = lattice._field, lattice.colour["black"]
    bits = lattice._bits
    r = bits.view(torch.int32)[:n].view(f.shape)
    uniform = torch.empty(f.shape, device=device)

    def ns_per_spin(fn) -> float:
        return statistics.median(timings(fn, repeats, device)) / n * 1e9

    steps = [
        ("neighbour sum (int8, 4 shifted reads)", lambda: lattice.colour_neighbour_sums("black")),
        (
            "threshold sigmoid(a s + b) * 2^32 - 2^31 (f32)",
            lambda: (
                f.copy_(lattice._sum).mul_(0.8).add_(0.0).sigmoid_().mul_(2.0**32).sub_(2.0**31)
            ),
        ),
        (
            "32-bit uniforms: random_ on int64, 2 per draw",
            lambda: bits.random_(-(2**63), None, generator=gen),
        ),
        ("compare r < threshold, write int8 ±1", lambda: torch.lt(r, f, out=q).mul_(2).sub_(1)),
        ("whole update (IsingModel's code path)", lambda: lattice.update("black", 0.8, 0.0, gen)),
        (
            "for comparison: torch.rand float32",
            lambda: torch.rand(f.shape, generator=gen, out=uniform),
        ),
    ]
    lines = [
        f"Table 1b. Cost of one heat-bath half-sweep (all sites of one colour), {L}x{L} lattice "
        f"({n:,} spins), {device}, median of {repeats}, ns per spin",
        "",
        f"{'step':>48} | "
        + " | ".join(f"{str(t) + (' threads' if t > 1 else ' thread'):>9}" for t in threads),
    ]
    default_threads = torch.get_num_threads()
    results = []
    for t in threads:
        torch.set_num_threads(t)
        results.append([ns_per_spin(fn) for _, fn in steps])
    torch.set_num_threads(default_threads)
    for k, (name, _) in enumerate(steps):
        lines.append(f"{name:>48} | " + " | ".join(f"{r[k]:>9.2f}" for r in results))
    return lines


def denoise_table(device: str, quick: bool) -> list[str]:
    clean = load_binary_image("horse", size=128 if quick else None)
    noisy = flip_noise(clean, 0.1, seed=0)
    d = mrf.BinaryDenoiser(coupling=1.0, noise_rate=0.1)
    rows = []
    for method in ("graphcut", "icm", "mean_field", "gibbs", "anneal"):
        t0 = time.perf_counter()
        labels = d.denoise(noisy, method=method, seed=0, device=device)
        sync(device)
        elapsed = time.perf_counter() - t0
        rows.append((method, d.energy(labels, noisy), float((labels != clean).mean()), elapsed))
    optimum = rows[0][1]
    H, W = clean.shape
    lines = [
        f"Table 2. Denoising the horse ({H}x{W}), 10% flipped pixels, coupling 1, "
        f"data weight ½ln(9) = {d.weight_from_noise_rate(0.1):.4f}, {device}",
        "(defaults: icm until no change, at most 50 sweeps; mean_field 50 sweeps; gibbs MPM "
        "50 burn-in + 200 sweeps; anneal 300 sweeps T 4 -> 0.05 then ICM)",
        "",
        f"{'method':>10} | {'energy':>14} | {'above optimum':>13} | {'pixel error':>11} | {'time':>8}",
    ]
    lines.append(
        f"{'(noisy)':>10} | {d.energy(noisy, noisy):>14.2f} | "
        f"{d.energy(noisy, noisy) - optimum:>13.2f} | {float((noisy != clean).mean()):>10.2%} | {'':>8}"
    )
    for method, energy, error, elapsed in rows:
        lines.append(
            f"{method:>10} | {energy:>14.2f} | {energy - optimum:>13.2f} | {error:>10.2%} | {elapsed:>7.3f}s"
        )
    return lines


def main(argv=None) -> None:
    # sample()'s R-hat check may warn about the short runs timed here: speed is what counts
    warnings.filterwarnings("ignore", message="IsingModel.sample")
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smoke run: small sizes, few repeats")
    parser.add_argument(
        "--save", action="store_true", help="write benchmarks/results/mrf_gibbs_<device>.txt"
    )
    args = parser.parse_args(argv)

    devices = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    header = [
        "MRF benchmark (benchmarks/mrf_gibbs.py%s)" % (" --quick" if args.quick else ""),
        f"date {time.strftime('%Y-%m-%d %H:%M:%S %Z')}; torch {torch.__version__}; numpy {np.__version__}; "
        f"python {platform.python_version()}",
        f"CPU: {os.cpu_count()} cores, torch threads {torch.get_num_threads()}; "
        f"GPU: {torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'none'}",
    ]
    for device in devices:
        load_before = os.getloadavg()
        lines = header + [
            f"load average at start (1, 5, 15 min): {load_before[0]:.2f} {load_before[1]:.2f} {load_before[2]:.2f}",
            "",
        ]
        lines += spin_table(device, args.quick) + [""] + cost_breakdown(device, args.quick)
        lines += [""] + denoise_table(device, args.quick)
        load_after = os.getloadavg()
        lines += [
            "",
            f"load average at end (1, 5, 15 min): {load_after[0]:.2f} {load_after[1]:.2f} {load_after[2]:.2f}",
        ]
        text = "\n".join(lines)
        print(text, flush=True)
        print()
        if args.save and not args.quick:
            out = Path(__file__).resolve().parent / "results" / f"mrf_gibbs_{device}.txt"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(text + "\n")
            print(f"saved {out}")


if __name__ == "__main__":
    main()
