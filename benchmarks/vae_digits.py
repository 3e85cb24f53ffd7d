"""Benchmark: the VAE on the digits — held-out bits per pixel per decoder, time per epoch and
sampling time, and the cost of course_lib's training loop against a plain PyTorch loop.

Table 1 -- for each decoder likelihood (default settings otherwise, random_state=0): held-out
  bits per pixel of the 17-level test digits (IWAE, k = 1000, with its Monte Carlo error), the
  ELBO's bits per pixel, training time per epoch, and the time to draw 10,000 samples (decoder
  mean). Beside them, the independent-pixels baseline (17-level histograms) on the same scale.
  For the default decoder, the IWAE estimate with k = 5000 on the whole test split as well.
Table 2 -- time per epoch of ``VAE.fit`` (through ``training.train_loop``) against a plain
  PyTorch loop with the same networks, data, batch size and optimiser, in the same process:
  the ratio is the overhead of the course's machinery.

Usage:  python benchmarks/vae_digits.py [--quick] [--save] [--device cpu|cuda]
  --quick  a smoke run (few epochs, small k), nothing saved;
  --save   also write the tables to benchmarks/results/vae_digits_<device>.txt
The 2-core CPU is shared: the load average is printed with the tables; compare ratios.
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import metrics, vae
from course_lib.data import load_digits
from course_lib.vae import VAE

RESULTS = Path(__file__).resolve().parent / "results"
D = 64


def sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize()


def bits(ll):
    return metrics.bits_per_pixel(ll, D)


def mc_error_bits(err):
    """Monte Carlo error of the mean bits per pixel from per-digit errors (nats)."""
    return float(np.sqrt((np.asarray(err) ** 2).sum()) / len(err) / (D * math.log(2)))


def plain_pytorch_epoch_time(Xtr, device, epochs, batch_size=256, lr=3e-3, hidden=512,
                             latent=16):
    """The reference: a textbook VAE loop, discretised-logistic decoder, nothing else."""
    torch.manual_seed(0)
    x = torch.tensor(Xtr.reshape(len(Xtr), -1), device=device)
    levels = torch.clamp(torch.floor(x * 17), 0, 16)
    inp = levels / 16
    enc = torch.nn.Sequential(torch.nn.Linear(D, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, 2 * latent)).to(device)
    dec = torch.nn.Sequential(torch.nn.Linear(latent, hidden), torch.nn.ReLU(),
                              torch.nn.Linear(hidden, 2 * D)).to(device)
    opt = torch.optim.Adam([*enc.parameters(), *dec.parameters()], lr=lr)
    sync(device)
    start = time.perf_counter()
    for _ in range(epochs):
        order = torch.randperm(len(x), device=device)
        for s in range(0, len(x), batch_size):
            idx = order[s : s + batch_size]
            mean, log_var = enc(inp[idx]).chunk(2, -1)
            z = mean + torch.exp(0.5 * log_var) * torch.randn_like(mean)
            out = dec(z).view(-1, D, 2)
            rec = vae.discretized_logistic_log_prob(levels[idx], out[..., 0],
                                                    out[..., 1].clamp(min=-7)).sum(-1)
            loss = -(rec - vae.gaussian_kl(mean, log_var)).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
        if not math.isfinite(loss.item()):
            raise FloatingPointError("the reference loop diverged")
    sync(device)
    return (time.perf_counter() - start) / epochs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    epochs = 5 if args.quick else VAE().epochs  # the default: early stopping ends training
    k, k_big = (50, 100) if args.quick else (1000, 5000)

    Xtr, _ = load_digits("train", dequantize=True)
    Xte, _ = load_digits("test", dequantize=True, seed=1)  # noise independent of the training's
    lines = [
        f"# VAE on the digits ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores; torch "
        f"{torch.__version__} with {torch.get_num_threads()} threads; device {device}"
        + (f" ({torch.cuda.get_device_name()})" if device.type == "cuda" else ""),
        "# defaults: VAE() = latent 16, MLP 512 hidden units, VampPrior with 100 pseudo-inputs, "
        "batch 64, lr 3e-3, weight average 0.999, early stopping on a 10% validation split "
        f"(at most {epochs} epochs), random_state 0; test split of 359 digits, dequantised "
        "(noise seed 1; training seed 0)",
        f"# at start: load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        "",
        f"Table 1: held-out bits per pixel (IWAE k = {k}, ± Monte Carlo error), time per epoch, "
        "sampling time",
        f"{'model':>34} {'IWAE bpp':>9} {'± MC':>7} {'ELBO bpp':>9} {'s/epoch':>8} "
        f"{'IWAE s':>7} {'10k samples s':>14}",
    ]
    print("\n".join(lines), flush=True)
    models = {}
    for lik in ("discretized_logistic", "categorical", "gaussian"):
        model = VAE(likelihood=lik, epochs=epochs, random_state=0, device=device,
                    progress=False).fit(Xtr)
        models[lik] = model
        sync(device)
        t0 = time.perf_counter()
        ll, err = model.log_likelihood(Xte, k, seed=0, return_error=True)
        sync(device)
        t_iwae = time.perf_counter() - t0
        t0 = time.perf_counter()
        model.sample(10_000, seed=0)
        sync(device)
        t_sample = time.perf_counter() - t0
        elbo = bits(model.elbo(Xte, seed=0).elbo)
        row = (f"{'VAE, ' + lik:>34} {bits(ll):>9.3f} {mc_error_bits(err):>7.4f} {elbo:>9.3f} "
               f"{model.fit_time_ / model.n_epochs_:>8.3f} {t_iwae:>7.1f} {t_sample:>14.3f}")
        lines.append(row)
        print(row, flush=True)
    hist = bits(vae.pixel_histogram_log_prob(Xtr, Xte))
    row = f"{'independent pixels (histograms)':>34} {hist:>9.3f} {'exact':>7}"
    lines.append(row)
    print(row, flush=True)

    default = models["discretized_logistic"]
    sync(device)
    t0 = time.perf_counter()
    ll, err = default.log_likelihood(Xte, k_big, seed=1, return_error=True)
    sync(device)
    row = (f"{'VAE, default, IWAE k = ' + str(k_big):>34} {bits(ll):>9.3f} "
           f"{mc_error_bits(err):>7.4f} {'':>9} {'':>8} {time.perf_counter() - t0:>7.1f}")
    lines.append(row)
    print(row, flush=True)
    t0 = time.perf_counter()
    default.sample(10_000, seed=0, draw=True)
    sync(device)
    lines.append(f"  (10,000 draws from p(x|z) instead of the mean: {time.perf_counter() - t0:.3f} s)")

    ref_epochs = 5 if args.quick else 30
    t_plain = plain_pytorch_epoch_time(Xtr, device, ref_epochs)
    # the plain loop's model: N(0, I) prior, batch 256, no weight average, no validation split
    t_course = VAE(epochs=ref_epochs, prior="gaussian", batch_size=256, ema=0.0,
                   validation_fraction=0.0, random_state=0, device=device,
                   progress=False).fit(Xtr)
    t_course = t_course.fit_time_ / t_course.n_epochs_
    lines += [
        "",
        f"Table 2: time per epoch, {ref_epochs} epochs, same networks and settings (the N(0, I) "
        "prior, batch 256, no weight average or validation split, as the plain loop)",
        f"{'plain PyTorch loop s/epoch':>34} {t_plain:>9.4f}",
        f"{'course_lib VAE.fit s/epoch':>34} {t_course:>9.4f}",
        f"{'ratio (course_lib / plain)':>34} {t_course / t_plain:>9.2f}",
        f"# at end: load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]
    print("\n".join(lines[-6:]), flush=True)
    if args.save and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        out = RESULTS / f"vae_digits_{device.type}.txt"
        out.write_text("\n".join(lines) + "\n")
        print(f"saved to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
