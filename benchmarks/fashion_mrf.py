"""Benchmark: does the course's pairwise MRF stay tractable on binarised 28×28 Fashion-MNIST?
(issue 23, Chapter 8: "the pairwise MRF on binarised images only if it stays tractable").

What is measured, for ``course_lib.mrf.PairwiseMRF`` (couplings between every pair of pixels,
one field per pixel) at three sizes: Chapter 7's binarised 8×8 digits (D = 64, 1,438 training
and 359 test images), Fashion-MNIST pooled to 14×14 (2×2 average pooling, D = 196) and
Fashion-MNIST at 28×28 (D = 784). Every image is binarised at 0.5 (pixel on where the grey
level, or the pooled mean, exceeds 0.5). Fashion-MNIST models are fitted on the first N
training images and scored on the 10,000 test images.

* Size: parameters D(D-1)/2 + D; memory of W (float32, D×D as stored).
* Fit: the default pseudo-likelihood fit (300 full-batch Adam steps, lr 0.05, l2 1e-3) in CPU
  seconds of one thread, with the change of the training pseudo-log-likelihood over its last
  30 steps (nats/image: how close to converged) and the step where it peaked. Where the full fit is too long (28×28 on
  60,000 images) a few steps are timed and the 300 are extrapolated ("projected").
* Held-out pseudo-log-likelihood, as pseudo bits per pixel ``-PLL / (D ln 2)`` (cheap; not a
  likelihood).
* Held-out bits per binary pixel by AIS (``estimate_log_partition``, 100 chains, at 300 and
  1000 steps) with the Monte Carlo error (``ais_standard_error``) in bits/px; the AIS
  estimate of log Z is low on average, so these bits/px are slightly optimistic. The gap
  between 300 and 1000 steps shows whether the annealing is long enough.
* Sampling: CPU s per sequential Gibbs sweep of 128 chains: a mixing check with 64 chains
  started from fair coins and 64 started from test images, ``--sweeps`` sweeps each: the
  energy per pixel ``-(½ sᵀWs + bᵀs)/D`` and the fraction of pixels on, at the end, against
  the test images'; Gelman–Rubin R̂ of the energy over the 128 chains (second half of the
  trace). A grid of samples is saved as /tmp/fashion_mrf_<size>.png (not in the repository).
* Reference: independent pixels (one Bernoulli per pixel, add-one smoothing on the fitting
  images), exact test bits per binary pixel.

Usage:  python benchmarks/fashion_mrf.py [--quick] [--save] [--sweeps 1000]
  --quick  500 training images, 20 fit steps, 20 AIS steps, 20 sweeps; nothing saved;
  --save   write benchmarks/results/fashion_mrf_cpu.txt
Run it under one thread (the script sets torch's; set OMP_NUM_THREADS=1 too).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course_lib._core import cpu_name
from course_lib.data import load_digits, load_fashion_mnist
from course_lib.mrf import PairwiseMRF, ais_standard_error, binarize_digits, gelman_rubin
from course_lib.viz import image_grid

RESULTS = Path(__file__).resolve().parent / "results"
FIT_STEPS = 300  # PairwiseMRF's default pseudo-likelihood fit
NOTEBOOK_CPU_S = 180  # the chapter's notebook: 90 s wall on 2 cores
N_CHAINS = 64


def independent_bits(fit: np.ndarray, test: np.ndarray) -> float:
    """Test bits per binary pixel under one Bernoulli per pixel fitted to ``fit`` (rows of
    ``{0, 1}``) with add-one smoothing: ``p_i = (Σ fit_i + 1) / (N + 2)``."""
    p = (fit.sum(0) + 1.0) / (len(fit) + 2.0)
    log2_p = np.where(test == 1, np.log2(p), np.log2(1 - p))
    return float(-log2_p.sum(1).mean() / fit.shape[1])


def n_parameters(D: int) -> int:
    """Free parameters of the pairwise MRF over ``D`` pixels: the couplings and the fields."""
    return D * (D - 1) // 2 + D


def cpu_timed(fn, *args, **kwargs):
    """``(fn(*args, **kwargs), CPU seconds)``."""
    start = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - start


def datasets(quick: bool) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, fitting images, test images)``, binarised at 0.5, for every size and N."""
    digits = [binarize_digits(torch.as_tensor(load_digits(s)[0])) for s in ("train", "test")]
    grey = [torch.as_tensor(load_fashion_mnist(s, verbose=False)[0]) for s in ("train", "test")]
    small = [binarize_digits(torch.nn.functional.avg_pool2d(x, 2)) for x in grey]
    full = [binarize_digits(x) for x in grey]
    if quick:
        return [("digits 8x8", digits[0][:500], digits[1]),
                ("fashion 14x14", small[0][:500], small[1][:1000]),
                ("fashion 28x28", full[0][:500], full[1][:1000])]
    return [("digits 8x8", *digits),
            ("fashion 14x14", small[0][:10000], small[1]), ("fashion 14x14", *small),
            ("fashion 28x28", full[0][:10000], full[1]), ("fashion 28x28", *full)]


def mixing(model: PairwiseMRF, test: torch.Tensor, n_sweeps: int, png: Path) -> dict:
    """Gibbs chains from fair coins and from test images: per-sweep CPU s, energies and
    on-fractions at the end, R̂ of the energy over the second half; saves a sample grid."""
    D = model.W_.shape[0]
    x = torch.cat([model.sample(N_CHAINS, n_sweeps=0, seed=0), test[:N_CHAINS]])
    energy, cpu = [], 0.0
    for sweep in range(n_sweeps):
        x, dt = cpu_timed(model.sample, len(x), n_sweeps=1, seed=sweep + 1, init=x)
        cpu += dt
        energy.append(-model.score_samples(x, log_partition=0.0) / D)
    trace = np.array(energy).T  # (chains, sweeps)
    on = x.flatten(1).mean(1).numpy()
    import matplotlib.pyplot as plt
    plt.imsave(png, image_grid(x[:N_CHAINS], nrow=8), cmap="gray", vmin=0, vmax=1)
    return dict(sweep_s=cpu / n_sweeps,  # one sweep of all 2 × N_CHAINS chains
                e_noise=trace[:N_CHAINS, -1].mean(), e_data=trace[N_CHAINS:, -1].mean(),
                e_test=float(-model.score_samples(test, log_partition=0.0).mean() / D),
                on_noise=on[:N_CHAINS].mean(), on_data=on[N_CHAINS:].mean(),
                on_test=float(test.mean()), rhat=gelman_rubin(trace[:, n_sweeps // 2:].T))


def run_one(name, fit, test, args, project: bool) -> dict:
    """Fit (or time and project) one model and measure it; returns the table's row."""
    D = fit[0].numel()
    row = dict(name=name, D=D, N=len(fit), params=n_parameters(D), w_mb=D * D * 4 / 2**20,
               indep=independent_bits(fit.flatten(1).numpy(), test.flatten(1).numpy()))
    model = PairwiseMRF()
    if project:
        _, dt = cpu_timed(model.fit, fit, n_epochs=args.probe_steps)
        row.update(fit_s=dt / args.probe_steps * args.fit_steps, projected=True)
        return row
    _, row["fit_s"] = cpu_timed(model.fit, fit, n_epochs=args.fit_steps)
    pll = model.history_["pseudo_log_likelihood"]
    row.update(projected=False, d_pll=pll[-1] - pll[-min(31, len(pll))],
               peak=int(np.argmax(pll)) + 1,
               pseudo_bits=-model.pseudo_log_likelihood(test) / (D * math.log(2)))
    for steps in args.ais_steps:
        (log_z, log_w), dt = cpu_timed(model.estimate_log_partition, n_chains=100,
                                       n_steps=steps, seed=0, return_weights=True)
        row[f"ais{steps}"] = (model.bits_per_pixel(test, log_partition=log_z),
                              ais_standard_error(log_w) / (D * math.log(2)), dt)
    png = Path("/tmp") / f"fashion_mrf_{name.split()[-1]}_N{len(fit)}.png"
    row.update(mixing(model, test, args.sweeps, png), png=png)
    return row


def read_rows(path: Path | None = None) -> list[dict]:
    """The table of the results file, in file order: one dict per row, with ``name`` (e.g.
    "fashion 28x28"), ``D``, ``N``, ``params``, ``fit_cpu_s`` and ``projected``; a row that was
    fitted and scored (not ``projected``) has ``pseudo``, ``ais`` ({steps: (bpp, MC error)}),
    ``indep``, ``sweep_ms``, ``e_noise``, ``e_data``, ``e_test`` and ``rhat`` too."""
    path = RESULTS / "fashion_mrf_cpu.txt" if path is None else path
    lines = path.read_text(encoding="utf-8").splitlines()
    header = next(ln for ln in lines if ln.startswith("model "))
    steps = [int(c[3:]) for c in header.split() if c.startswith("AIS")]
    out = []
    for ln in lines:
        if ln.startswith(("#", "model ")) or not ln.strip():
            continue
        cells = ln.split()
        name, (D, N, params), fit_s = " ".join(cells[:2]), map(int, cells[2:5]), cells[6]
        row = {"name": name, "D": D, "N": N, "params": params,
               "fit_cpu_s": float(fit_s.rstrip("*")), "projected": fit_s.endswith("*")}
        if not row["projected"]:
            rest = cells[7:]  # dPLL, peak@, pseudo, the AIS columns, indep, sweep ms, ...
            ais = rest[3:3 + len(steps)]
            row.update({"pseudo": float(rest[2]),
                        "ais": {k: tuple(map(float, a.split("±"))) for k, a in zip(steps, ais)}})
            indep, sweep, e_noise, e_data, e_test, _, rhat = rest[3 + len(steps):]
            row.update(indep=float(indep), sweep_ms=float(sweep), e_noise=float(e_noise),
                       e_data=float(e_data), e_test=float(e_test), rhat=float(rhat))
        out.append(row)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--sweeps", type=int, default=1000)
    parser.add_argument("--probe-steps", type=int, default=3,
                        help="fit steps timed where the full fit is projected")
    args = parser.parse_args(argv)
    args.fit_steps, args.ais_steps = (20, [20]) if args.quick else (FIT_STEPS, [300, 1000])
    if args.quick:
        args.sweeps = 20
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    wall0, cpu0 = time.time(), time.process_time()

    rows = []
    for name, fit, test in datasets(args.quick):
        project = name == "fashion 28x28" and len(fit) == 60000
        rows.append(run_one(name, fit, test, args, project))
        r = rows[-1]
        print(f"{name} N={r['N']}: fit {r['fit_s']:.1f} s"
              + ("" if r["projected"] else f", sweep {r['sweep_s'] * 1e3:.1f} ms, "
                 f"R-hat {r['rhat']:.2f}"), flush=True)

    s = args.ais_steps
    header = (f"{'model':<15}{'D':>5}{'N':>7}{'params':>9}{'W MB':>6}{'fit CPU s':>11}"
              f"{'dPLL':>9}{'peak@':>6}{'pseudo':>8}" + "".join(f"{f'AIS{k} bpp':>16}" for k in s)
              + f"{'indep':>7}{'sweep ms':>9}{'E noise':>8}{'E data':>8}{'E test':>8}"
              f"{'on n/d/t':>16}{'R-hat':>7}")
    table = [header]
    for r in rows:
        fit_s = f"{r['fit_s']:.1f}" + ("*" if r["projected"] else "")
        line = f"{r['name']:<15}{r['D']:>5}{r['N']:>7}{r['params']:>9}{r['w_mb']:>6.2f}{fit_s:>11}"
        if r["projected"]:
            table.append(line + "   (* projected from "
                         f"{args.probe_steps} timed steps; not fitted, so not scored)")
            continue
        line += f"{r['d_pll']:>9.3f}{r['peak']:>6}{r['pseudo_bits']:>8.4f}"
        line += "".join(f"{'{:.4f}±{:.4f}'.format(*r[f'ais{k}'][:2]):>16}" for k in s)
        line += (f"{r['indep']:>7.4f}{r['sweep_s'] * 1e3:>9.1f}{r['e_noise']:>8.3f}"
                 f"{r['e_data']:>8.3f}{r['e_test']:>8.3f}"
                 f"{'{on_noise:.2f}/{on_data:.2f}/{on_test:.2f}'.format(**r):>16}"
                 f"{r['rhat']:>7.2f}")
        table.append(line)
    ais_cost = [f"{r['name']} N={r['N']}: " + ", ".join(
        f"{k} steps {r[f'ais{k}'][2]:.1f} s" for k in s) for r in rows if not r["projected"]]
    verdict = []
    for r in rows:
        if r["D"] != 784:
            continue
        if r["projected"]:
            verdict.append(f"#   fit on N={r['N']}: {r['fit_s']:.0f} CPU s projected "
                           f"({r['fit_s'] / NOTEBOOK_CPU_S:.1f}x the notebook's "
                           f"{NOTEBOOK_CPU_S} CPU s; a one-off cost for a shipped model)")
            continue
        bpp, err, _ = r[f"ais{s[-1]}"]
        verdict.append(
            f"#   fit on N={r['N']}: {r['fit_s']:.0f} CPU s, training PLL {r['d_pll']:+.2f} "
            f"nats/image over the last 30 steps (peak at step {r['peak']}); log Z: AIS{s[-1]} "
            f"{r[f'ais{s[-1]}'][2]:.0f} CPU s, MC error {err:.4f} bits/px, "
            f"AIS{s[0]} - AIS{s[-1]} = {r[f'ais{s[0]}'][0] - bpp:+.4f} bits/px; test bits/px "
            f"{bpp:.4f} vs independent pixels {r['indep']:.4f}; sampling: "
            f"{r['sweep_s'] * 1e3:.0f} ms per sweep of {2 * N_CHAINS} chains, after {args.sweeps} "
            f"sweeps energy/px from noise {r['e_noise']:.3f}, from data {r['e_data']:.3f}, "
            f"test images {r['e_test']:.3f}, R-hat {r['rhat']:.2f}; samples: {r['png']}")
    command = "benchmarks/fashion_mrf.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [
        f"# benchmarks/fashion_mrf.py: pairwise MRF (course_lib.mrf.PairwiseMRF) on binarised "
        f"images, 8x8 digits to 28x28 Fashion-MNIST; {started} UTC",
        f"# Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other jobs); torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; device cpu",
        f"# Command: OMP_NUM_THREADS=1 nice -n 19 .venv/bin/python {command.strip()}",
        "# Data: binarised at 0.5; 14x14 = 2x2 average pooling, then 0.5; Fashion-MNIST fitted "
        "on the first N training images, scored on the 10,000 test images (digits: 1,438 / 359)",
        f"# Fit: pseudo-likelihood, {args.fit_steps} full-batch Adam steps (lr 0.05, l2 1e-3); "
        f"dPLL = change of the training PLL over the last 30 steps (nats/image), peak@ = the "
        "step of its highest value",
        "# pseudo = held-out -PLL/(D ln 2); AIS<k> bpp = held-out bits per binary pixel with "
        "log Z by AIS (100 chains, k steps) ± its MC error; indep = independent pixels (add-one)",
        f"# Sampling: sweep ms = CPU ms per sequential Gibbs sweep of {2 * N_CHAINS} chains; after "
        f"{args.sweeps} sweeps, energy/px -(sWs/2 + bs)/D of the {N_CHAINS} chains from fair "
        f"coins (E noise), of {N_CHAINS} from test images (E data), of the test images (E "
        "test); on n/d/t = fraction of pixels on (noise/data chains, test images); R-hat of "
        "the energy over the 128 chains, second half",
        *table,
        "# AIS CPU s: " + "; ".join(ais_cost),
        "# At 28x28:", *verdict,
        f"# Whole run: {time.process_time() - cpu0:.0f} CPU s, {time.time() - wall0:.0f} s "
        f"wall; finished {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]
    print("\n".join(lines))
    if args.save and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "fashion_mrf_cpu.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
