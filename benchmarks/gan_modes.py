"""GAN mode coverage on the standard 2D benchmarks: modes captured, high-quality fraction and
mode balance, with and without discriminator rejection sampling, per seed and setting, and
training time.

Benchmarks (``course_lib.data``; 2,500 generated samples scored by ``metrics.mode_coverage``,
VEEGAN's definitions: high quality = within 3 std of the nearest mode; a mode is captured with
at least a tenth of its fair share of the samples, ``min_share=0.1``: 32 samples on the ring,
10 on the grid; ``any`` counts modes with at least one high-quality sample, the looser count
of the published tables; KL = PacGAN's reverse KL from the histogram of the high-quality
samples over the modes to the uniform, nats):

- ``ring``: 8 Gaussians on a circle of radius 1, std 0.01 (10,000 training points);
- ``grid``: 25 Gaussians on a 5×5 grid, spacing 2, std 0.05 (10,000 training points).

Settings:

- ``default``: ``GAN()`` as shipped (non-saturating loss, lazy R1, cosine decay, rejection);
- ``plain``: the same networks and steps without the remedies (``r1=0``, constant learning
  rate); its raw samples only;
- ``wgan``: ``GAN(loss="wasserstein")``, WGAN-GP (Gulrajani et al. 2017) on the same networks
  and generator steps: critic loss with the gradient penalty (λ = 10) instead of R1, the
  paper's Adam settings (lr 1e-4, β = (0, 0.9)) and 5 critic updates per generator update;
  ``wgan-nc1``: the same loss with the default's optimiser (lr 4e-3, β = (0.5, 0.9), cosine
  decay) and one critic update per step (the default's cost per step). Raw samples only.

Everything but the setting is held equal within a line group: data, seed, networks, the
number of generator steps (``--n-steps``) and the samples scored. The rejection phase
(``--rejection-steps`` discriminator steps with the generator frozen) only adds the DRS
columns; the raw columns are the generator's own output.

Time: wall-clock seconds of ``fit`` and the CPU seconds of the process during it (on a shared
machine the CPU time is the better estimate of the time on an idle one). Runs on the GPU when
one is present (``COURSE_DEVICE``), else the CPU with one thread.

Usage: ``python benchmarks/gan_modes.py [--data ring grid] [--seeds 0 1 2 3 4]
[--settings default plain wgan wgan-nc1] [--n-steps N] [--rejection-steps N]`` (prints one line per
run, as it goes). Published ring results for scale (modes / high quality): vanilla GAN 1 /
99.3 % (VEEGAN paper) and 6.3 / 98.2 % (PacGAN paper); Unrolled GAN 7.6 / 35.6 %; VEEGAN
8 / 52.9 %; PacGAN2 7.9 / 95.6 %.
"""

from __future__ import annotations

import argparse
import platform
import time

import torch

from course_lib import data, get_device, metrics
from course_lib.gan import GAN

BENCHMARKS = {
    "ring": (lambda seed: data.ring_of_gaussians(10_000, seed=seed), 0.01),
    "grid": (lambda seed: data.grid_of_gaussians(10_000, seed=seed), 0.05),
}
SETTINGS = {
    "default": {},
    "plain": {"r1": 0.0, "lr_decay": False, "rejection": False},
    "wgan": {"loss": "wasserstein", "lr": 1e-4, "beta1": 0.0, "beta2": 0.9, "n_critic": 5,
             "rejection": False},
    "wgan-nc1": {"loss": "wasserstein", "rejection": False},
}


def run(name: str, setting: str, seed: int, device, n_steps=None, rejection_steps=None) -> dict:
    make, std = BENCHMARKS[name]
    X, centres = make(seed)
    params = dict(SETTINGS[setting])
    if n_steps is not None:
        params["n_steps"] = n_steps
    if rejection_steps is not None and params.get("rejection", True):
        params["rejection_steps"] = rejection_steps
    wall, cpu = time.perf_counter(), time.process_time()
    model = GAN(random_state=seed, progress=False, device=device, **params).fit(X)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    raw = metrics.mode_coverage(model.sample(2500, seed=seed + 1000, rejection=False), centres, std)
    out = {"raw": raw, "drs": None, "accept": None, "wall": wall, "cpu": cpu,
           "steps": model.n_steps, "rsteps": model.rejection_steps if model.rejection else 0}
    if model.rejection:
        samples, accept = model.sample(2500, seed=seed + 1000, return_acceptance=True)
        out.update(drs=metrics.mode_coverage(samples, centres, std), accept=accept)
    return out


def _cols(s) -> str:
    return f"{s['modes']:5d} {s['modes_any']:3d} {100 * s['high_quality']:6.1f}% {s['balance_kl']:5.3f}"


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["ring", "grid"], choices=list(BENCHMARKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--settings", nargs="+", default=["default"], choices=list(SETTINGS))
    parser.add_argument("--n-steps", type=int, default=None)
    parser.add_argument("--rejection-steps", type=int, default=None)
    args = parser.parse_args(argv)
    device = get_device()
    if device.type == "cpu":
        torch.set_num_threads(1)
    print(f"# torch {torch.__version__}, device {device}, {platform.processor() or platform.machine()}, "
          f"threads {torch.get_num_threads()}")
    print(f"{'data':5s} {'setting':8s} {'seed':>4s} {'steps':>6s} {'rej':>5s} | raw: {'modes':>5s} "
          f"{'any':>3s} {'HQ':>7s} {'KL':>5s} | DRS: {'modes':>5s} {'any':>3s} {'HQ':>7s} {'KL':>5s} "
          f"{'accept':>6s} | {'wall s':>7s} {'cpu s':>6s}")
    for name in args.data:
        for setting in args.settings:
            for seed in args.seeds:
                r = run(name, setting, seed, device, args.n_steps, args.rejection_steps)
                drs = ("    -   -       -     -      -" if r["drs"] is None else
                       f"{_cols(r['drs'])} {r['accept']:6.2f}")
                print(f"{name:5s} {setting:8s} {seed:4d} {r['steps']:6d} {r['rsteps']:5d} | raw: "
                      f"{_cols(r['raw'])} | DRS: {drs} | {r['wall']:7.1f} {r['cpu']:6.1f}", flush=True)


if __name__ == "__main__":
    main()
