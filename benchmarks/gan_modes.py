"""GAN mode coverage on the standard 2D benchmarks: modes captured and high-quality fraction,
with and without discriminator rejection sampling, per seed and setting, and training time.

Benchmarks (``course_lib.data``; 2,500 generated samples scored by ``metrics.mode_coverage``,
VEEGAN's definitions: high quality = within 3 std of the nearest mode):

- ``ring``: 8 Gaussians on a circle of radius 1, std 0.01 (10,000 training points);
- ``grid``: 25 Gaussians on a 5×5 grid, spacing 2, std 0.05 (10,000 training points).

Settings:

- ``default``: ``GAN()`` as shipped (non-saturating loss, lazy R1, cosine decay, rejection);
- ``plain``: the same networks and steps without the remedies (``r1=0``, constant learning
  rate); its raw samples only.

Time: wall-clock seconds of ``fit`` and the CPU seconds of the process during it (on a shared
machine the CPU time is the better estimate of the time on an idle one). Runs on the GPU when
one is present (``COURSE_DEVICE``), else the CPU with one thread.

Usage: ``python benchmarks/gan_modes.py [--data ring grid] [--seeds 0 1 2 3 4]
[--settings default plain] [--n-steps N]`` (prints one line per run, as it goes).
Published ring results for scale: vanilla GAN 1 to 6.3 modes; Unrolled GAN 7.6 / 35.6 %;
VEEGAN 8 / 52.9 %; PacGAN2 7.9 / 95.6 %.
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
}


def run(name: str, setting: str, seed: int, device, n_steps=None) -> dict:
    make, std = BENCHMARKS[name]
    X, centres = make(seed)
    params = dict(SETTINGS[setting])
    if n_steps is not None:
        params["n_steps"] = n_steps
    wall, cpu = time.perf_counter(), time.process_time()
    model = GAN(random_state=seed, progress=False, device=device, **params).fit(X)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    raw = metrics.mode_coverage(model.sample(2500, seed=seed + 1000, rejection=False), centres, std)
    out = {"modes": raw["modes"], "hq": raw["high_quality"], "modes_drs": None, "hq_drs": None,
           "accept": None, "wall": wall, "cpu": cpu, "steps": model.n_steps}
    if model.rejection:
        samples, accept = model.sample(2500, seed=seed + 1000, return_acceptance=True)
        drs = metrics.mode_coverage(samples, centres, std)
        out.update(modes_drs=drs["modes"], hq_drs=drs["high_quality"], accept=accept)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", default=["ring", "grid"], choices=list(BENCHMARKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    parser.add_argument("--settings", nargs="+", default=["default"], choices=list(SETTINGS))
    parser.add_argument("--n-steps", type=int, default=None)
    args = parser.parse_args(argv)
    device = get_device()
    if device.type == "cpu":
        torch.set_num_threads(1)
    print(f"# torch {torch.__version__}, device {device}, {platform.processor() or platform.machine()}, "
          f"threads {torch.get_num_threads()}")
    print(f"{'data':5s} {'setting':8s} {'seed':>4s} {'steps':>6s} {'modes':>5s} {'HQ raw':>7s} "
          f"{'modes':>5s} {'HQ DRS':>7s} {'accept':>6s} {'wall s':>7s} {'cpu s':>6s}")
    for name in args.data:
        for setting in args.settings:
            for seed in args.seeds:
                r = run(name, setting, seed, device, args.n_steps)
                drs = ("    -       -      -" if r["hq_drs"] is None else
                       f"{r['modes_drs']:5d} {100 * r['hq_drs']:6.1f}% {r['accept']:6.2f}")
                print(f"{name:5s} {setting:8s} {seed:4d} {r['steps']:6d} {r['modes']:5d} "
                      f"{100 * r['hq']:6.1f}% {drs} {r['wall']:7.1f} {r['cpu']:6.1f}", flush=True)


if __name__ == "__main__":
    main()
