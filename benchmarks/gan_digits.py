"""GAN on the 8×8 digits: which recipe converges and stays converged, scored by the course's
evaluation protocol (``metrics.evaluate``: 10 draws of 359 samples against the test split,
FID on the digit CNN's features, mean ± std over the draws).

Data: ``data.load_digits("train")`` (1,438 images, (N, 1, 8, 8) in [0, 1]), as the chapters
use it; ``GAN.fit`` standardises the pixels (mean per pixel, one overall std) and ``sample``
clamps them back to [0, 1].

Settings (each is ``GAN(**params)`` with the parameters named here; the rest are ``GAN()``'s):

- ``mlp``: the image default before this screening: MLPs (hidden 256, a 2-hidden-layer
  discriminator), Adam lr 4e-3 for both networks, β = (0.5, 0.999), cosine decay, batch 256,
  6,000 steps, R1 γ = 0.01 every 16 steps; scored on the raw generator output;
- ``mlp-…`` variants of ``mlp``, one or two changes each, named in the setting:
  ``ema`` an exponential moving average of the generator's weights (decay 0.999) samples;
  ``r1-X`` R1 γ = X; ``lr1e-3`` lr 1e-3; ``b2-0.99`` Adam β₂ = 0.99; ``b128`` batch 128;
  ``const-lr`` no cosine decay; ``ttur`` lr 2e-3 for G, 4e-3 for D;
  ``drs`` discriminator rejection sampling (3,000 extra discriminator steps; scored on
  ``sample(rejection=True)``);
- ``conv``: small DCGAN-style networks (``ConvGenerator``/``ConvDiscriminator``, 16
  channels in the first layer: z → 64×2×2 → upsample+conv → 32×4×4 → 16×8×8 → 1×8×8; D
  the mirror with 4×4 stride-2 convolutions and LeakyReLU), EMA 0.999, β₂ 0.99, lr 1e-3,
  R1 γ = 0.01, batch 256; raw generator output;
- ``conv-…`` variants of ``conv``: ``lr4e-3``, ``r1-X``, ``b64``/``b128`` (batch), and
  ``sn`` spectral normalisation on every discriminator layer instead of R1 (γ = 0);
- ``wgan``: ``GAN(loss="wasserstein")``, WGAN-GP (Gulrajani et al. 2017) on the default's
  networks, data and steps: critic loss with the gradient penalty λ = 10 instead of R1, the
  paper's Adam settings (lr 1e-4, β = (0, 0.9)) and 5 critic updates per generator update;
  ``wgan-lr4e-3-nc1``: the same loss with the default's optimiser (lr 4e-3, β = (0.5, 0.999),
  cosine decay) and one critic update per step, so the cost per step is the default's;
  raw generator output for both;
- ``default``: ``GAN()`` as shipped (the winner); ``default-drs``: the same scored on
  ``sample(rejection=True)``; ``default-cond`` (``-drs``): the same fitted with labels, a
  conditional GAN (``acc``: ``metrics.class_accuracy`` of 3,590 samples, 359 per class, with
  their labels; the FID is of samples cycling through the classes).

``--n-steps`` replaces every setting's number of steps (e.g. twice the default, to look for a
late collapse). Time: wall-clock seconds of ``fit`` and the CPU seconds of the process during
it (one torch thread on the CPU).

Usage: ``python benchmarks/gan_digits.py [--settings default conv ...] [--seeds 0 1 2]
[--n-steps N]`` (prints one line per run, as it goes).
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import torch
from torch.nn.utils.parametrizations import spectral_norm

from course_lib import data, get_device, metrics
from course_lib.gan import GAN, ConvDiscriminator
from course_lib.training import seeded

CONV = {"architecture": "conv", "hidden": 16, "ema": 0.999, "beta2": 0.99, "lr": 1e-3,
        "r1": 0.01, "rejection": False}
MLP = {"architecture": "mlp", "hidden": None, "ema": 0.0, "beta2": 0.999, "lr": 4e-3,
       "r1": 0.01, "rejection": False}
SETTINGS = {
    "mlp": MLP,
    "mlp-ema": dict(MLP, ema=0.999),
    "mlp-ema-lr1e-3": dict(MLP, ema=0.999, lr=1e-3),
    "mlp-ema-r1-0.1": dict(MLP, ema=0.999, r1=0.1),
    "mlp-ema-lr1e-3-r1-0.1": dict(MLP, ema=0.999, lr=1e-3, r1=0.1),
    "mlp-r1-0.1": dict(MLP, r1=0.1),
    "mlp-r1-0.3": dict(MLP, r1=0.3),
    "mlp-ema-r1-0.3-drs": dict(MLP, ema=0.999, r1=0.3, rejection=True, sample_rejection=True),
    "mlp-ema-r1-0.3": dict(MLP, ema=0.999, r1=0.3),
    "mlp-ema-r1-1": dict(MLP, ema=0.999, r1=1.0),
    "mlp-r1-1": dict(MLP, r1=1.0),
    "mlp-ema-r1-3": dict(MLP, ema=0.999, r1=3.0),
    "mlp-ema-r1-1-drs": dict(MLP, ema=0.999, r1=1.0, rejection=True, sample_rejection=True),
    "mlp-ema-r1-1-b2-0.99": dict(MLP, ema=0.999, r1=1.0, beta2=0.99),
    "mlp-ema-r1-1-b128": dict(MLP, ema=0.999, r1=1.0, batch_size=128),
    "mlp-ema-r1-1-const-lr": dict(MLP, ema=0.999, r1=1.0, lr_decay=False),
    "mlp-ema-r1-1-ttur": dict(MLP, ema=0.999, r1=1.0, lr=2e-3, lr_d=4e-3),
    "conv": CONV,
    "conv-lr4e-3": dict(CONV, lr=4e-3),
    "conv-r1-1": dict(CONV, r1=1.0),
    "conv-b64": dict(CONV, batch_size=64),
    "conv-b64-r1-0.1": dict(CONV, batch_size=64, r1=0.1),
    "conv-r1-1-b64": dict(CONV, r1=1.0, batch_size=64),
    "conv-r1-1-b128": dict(CONV, r1=1.0, batch_size=128),
    "conv-sn-b128": dict(CONV, r1=0.0, batch_size=128, spectral_norm=True),
    "wgan": {"loss": "wasserstein", "lr": 1e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 5,
             "rejection": False},
    "wgan-lr4e-3-nc1": {"loss": "wasserstein", "rejection": False},
    "default": {},
    "default-drs": {"sample_rejection": True},
    "default-cond": {"conditional": True},
    "default-cond-drs": {"conditional": True, "sample_rejection": True},
}


def _sn_discriminator(width: int, seed: int):
    with seeded(seed):
        net = ConvDiscriminator((1, 8, 8), 0, width)
    for module in list(net.modules()):
        if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
            spectral_norm(module)
    return net


def run(setting: str, seed: int, device, n_steps=None, X=None, y=None) -> dict:
    params = dict(SETTINGS[setting])
    conditional = params.pop("conditional", False)
    rejection = params.pop("sample_rejection", None)
    if params.pop("spectral_norm", False):
        params["discriminator"] = _sn_discriminator(params.get("hidden") or 16, seed)
    if n_steps is not None:
        params["n_steps"] = n_steps
    wall, cpu = time.perf_counter(), time.process_time()
    model = GAN(random_state=seed, progress=False, device=device, **params)
    model.fit(X, y if conditional else None)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    ev = metrics.evaluate(lambda n, s: model.sample(n, seed=s, rejection=rejection),
                          name=setting, device=device)
    acc = None
    if conditional:
        labels = np.arange(3590) % 10
        acc = metrics.class_accuracy(
            model.sample(3590, labels=labels, seed=seed + 1000, rejection=rejection), labels,
            device=device)
    return {"ev": ev, "acc": acc, "wall": wall, "cpu": cpu, "steps": model.n_steps}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", nargs="+", type=int, default=[0])
    parser.add_argument("--settings", nargs="+", default=["default"], choices=list(SETTINGS))
    parser.add_argument("--n-steps", type=int, default=None)
    args = parser.parse_args(argv)
    device = get_device()
    if device.type == "cpu":
        torch.set_num_threads(1)
    X, y = data.load_digits("train")
    print(f"# torch {torch.__version__}, device {device}, "
          f"{platform.processor() or platform.machine()}, threads {torch.get_num_threads()}")
    print(f"{'setting':26s} {'seed':>4s} {'steps':>6s} {'FID':>13s} {'recall':>6s} "
          f"{'prec':>6s} {'classes':>7s} {'acc':>5s} {'wall s':>7s} {'cpu s':>6s}")
    for setting in args.settings:
        for seed in args.seeds:
            r = run(setting, seed, device, args.n_steps, X, y)
            ev = r["ev"]
            acc = "    -" if r["acc"] is None else f"{r['acc']:5.3f}"
            print(f"{setting:26s} {seed:4d} {r['steps']:6d} {ev.format('fid'):>13s} "
                  f"{ev.mean('recall'):6.3f} {ev.mean('precision'):6.3f} "
                  f"{ev.mean('classes'):7.1f} {acc} {r['wall']:7.1f} {r['cpu']:6.1f}", flush=True)


if __name__ == "__main__":
    main()
