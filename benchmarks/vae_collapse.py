"""Benchmark: posterior collapse in the VAE on the digits, and two remedies (KL warm-up, free bits).

For each setting and seed: the number of active latent units (Burda et al. 2016: the variance
over the test digits of the encoder's mean above 0.01, ``vae.active_units``, eq. (6.17)), the
rate and the distortion of the ELBO (Alemi et al. 2018, ``VAE.rate_distortion``, eq. (6.16):
nats per digit, 100 draws of z per test digit), the held-out bits per pixel (IWAE, k = 1000),
and the FID and recall of the decoder means (``metrics.evaluate``: 10 draws of 359 against the
test split, mean ± std), epochs and fit CPU seconds.

Settings (everything else is ``VAE()``'s defaults: latent 16, VampPrior with 100 pseudo-inputs,
batch 64, Polyak averaging, early stopping; the training digits dequantised with seed 0, the
test digits with seed 1, as in the chapter):

  vamp              VAE() (the shipped default)
  vamp_warm20       KL warm-up over 20 epochs (kl_warmup=20)
  vamp_fb1          free bits, λ = 1 nat per dimension: the whole KL (a learned prior's KL does
                    not split by dimension) charged max(16 nats, its mini-batch mean)
  normal            prior="gaussian" (the shipped vae_digits_normal_prior)
  normal_warm20     prior="gaussian", kl_warmup=20
  normal_fb05       prior="gaussian", free bits λ = 0.5 nat for each latent dimension

Usage:  python benchmarks/vae_collapse.py [--quick] [--seeds 0 1 2] [--save]
  --quick  a smoke run (2 epochs, k = 10, two FID draws), nothing saved;
  --save   write the table to benchmarks/results/vae_collapse_cpu.txt
Runs on the CPU with one thread (same seed, same result). The machine may be shared: the load
average is printed; the CPU seconds are the process's own.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import torch

from course_lib import metrics, vae
from course_lib._core import cpu_name
from course_lib.data import load_digits
from course_lib.vae import VAE

RESULTS = Path(__file__).resolve().parent / "results"
D = 64
SETTINGS = {
    "vamp": {},
    "vamp_warm20": {"kl_warmup": 20},
    "vamp_fb1": {"free_bits": 1.0},
    "normal": {"prior": "gaussian"},
    "normal_warm20": {"prior": "gaussian", "kl_warmup": 20},
    "normal_fb05": {"prior": "gaussian", "free_bits": 0.5},
}



def run(name, kw, seed, Xtr, Xte, quick):
    extra = {"epochs": 2} if quick else {}
    c0 = time.process_time()
    model = VAE(random_state=seed, device="cpu", progress=False, **kw, **extra).fit(Xtr)
    fit_cpu = time.process_time() - c0
    n_active, _ = vae.active_units(model.encode(Xte))
    distortion, rate = model.rate_distortion(Xte, n_draws=10 if quick else 100, seed=0)
    bpp = metrics.bits_per_pixel(model.log_likelihood(Xte, 10 if quick else 1000, seed=0), D)
    ev = metrics.evaluate(lambda n, s: model.sample(n, seed=s), name=name, device="cpu",
                          **({"n_draws": 2} if quick else {}))
    return (f"{name:<14} {seed:>4} {model.n_epochs_:>4} ({model.best_epoch_:>3}) {n_active:>6} "
            f"{rate.mean():>7.2f} {distortion.mean():>9.2f} {bpp:>9.4f} "
            f"{ev.format('fid'):>12} {ev.format('recall'):>15} {fit_cpu:>7.1f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    Xtr, _ = load_digits("train", dequantize=True, seed=0)
    Xte, _ = load_digits("test", dequantize=True, seed=1)
    start = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [
        f"# benchmarks/vae_collapse.py: posterior collapse (active units) and its remedies, 8x8 "
        f"digits; {start} UTC",
        f"# Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other jobs); torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; device cpu",
        "# Columns: setting, seed, epochs (best epoch kept), active units of 16 (Cov_x E_q[z_u] > "
        "0.01 on the 359 test digits), rate R = mean KL(q(z|x) || p(z)) and distortion D = "
        "-mean E_q log p(x|z) (nats per test digit, 100 draws; -ELBO = D + R), held-out bits/px "
        "(IWAE k = 1000), FID and recall of the decoder means (10 draws of 359, mean ± std), "
        "fit CPU s.",
        f"# {'setting':<12} {'seed':>4} {'ep (best)':>10} {'active':>6} {'rate':>7} "
        f"{'distort.':>9} {'bits/px':>9} {'FID':>12} {'recall':>15} {'fit s':>7}",
    ]
    for line in lines:
        print(line, flush=True)
    for name in args.settings:
        for seed in args.seeds:
            row = run(name, SETTINGS[name], seed, Xtr, Xte, args.quick)
            print(row, flush=True)
            lines.append(row)
    tail = (f"# finished {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average "
            f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}")
    print(tail)
    lines.append(tail)
    if args.save and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "vae_collapse_cpu.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
