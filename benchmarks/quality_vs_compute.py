"""Quality against compute: FID (the course's protocol) against training CPU seconds, per family.

Chapter 7 asks which family generates the digits best for the compute it costs. Instead of
one point per model at one budget, this benchmark trains each family at a ladder of budgets,
each run complete at its budget (a GAN trained for 500 steps has its learning rate decayed to
zero at step 500; a VAE stops at its epoch budget or earlier by its early stopping), and scores
every run with ``metrics.evaluate`` (10 draws of 359 against the test split, mean ± std):

- ``gaussian``: one full-covariance Gaussian (Chapter 2), a single point;
- ``gmm``: Chapter 3's diagonal mixture fitted to convergence (at most 200 EM iterations,
  k-means initialisation included in the time) with K = 1, 2, 5, 10, 20, 40 (Chapter 3's choice
  by BIC) and 80 components: stopping EM early changes little, because the k-means start
  already places the components (1 EM iteration at K = 40 scores FID 19.4);
- ``gan``: ``GAN()``'s defaults, the number of training steps varied from 1/16 to twice the
  default, without the 3,000 discriminator steps that ``fit`` adds for rejection sampling
  (``rejection=False``): for images ``sample()`` does not use them, and at small budgets they
  would dominate the time (they are about a fifth of the shipped model's 49 CPU s);
- ``vae``: ``VAE()``'s defaults, the maximum number of epochs varied (2 to the default's
  1,000, where early stopping ends training after about 100).

The MRF is left out: its samples are binary and the protocol scores them against the
binarised floor, a different reference (Chapter 7's table has its row). Everything runs on the
CPU with one thread; time is ``time.process_time()`` of the fit (CPU seconds, which a busy
machine inflates less than wall time), after one untimed warm-up fit per family. Same data,
same seed (0), same protocol for every run: only the family and the budget change.

    python benchmarks/quality_vs_compute.py [--families gmm gan vae gaussian] [--quick]

Writes ``benchmarks/results/quality_vs_compute_cpu.txt`` (not with ``--quick``), one row per run,
which the capstone notebook plots.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import metrics
from course_lib.data import dequantized_to_images, load_digits
from course_lib.gan import GAN
from course_lib.gmm import GaussianMixture
from course_lib.vae import VAE

RESULTS = Path(__file__).resolve().parent / "results" / "quality_vs_compute_cpu.txt"
COLUMNS = ("family", "budget", "unit", "cpu_s", "fid", "fid_std", "precision", "recall",
           "classes")


def _gmm(k):
    return GaussianMixture(k, covariance_type="diag", max_iter=200, random_state=0, device="cpu")


def ladder(quick: bool) -> dict:
    """family -> list of (budget, unit, make model, data kind)."""
    gan_steps = GAN().n_steps
    vae_epochs = VAE().epochs
    # up to twice the default: a recipe that collapses late shows it there
    gan_ladder = sorted({max(1, int(gan_steps * f)) for f in (1 / 16, 1 / 8, 1 / 4, 1 / 2, 1, 2)})
    # the default stops early (about 100 epochs on the digits): the ladder climbs to it
    vae_ladder = [2, 5, 10, 20, 40, vae_epochs]
    gmm_ladder = [1, 2, 5, 10, 20, 40, 80]
    if quick:
        gan_ladder, vae_ladder, gmm_ladder = [20, 40], [1, 2], [1, 2]
    return {
        "gaussian": [(1, "fit", lambda: GaussianMixture(1, random_state=0, device="cpu"),
                      "dequantized")],
        "gmm": [(k, "components", lambda k=k: _gmm(k), "dequantized") for k in gmm_ladder],
        "gan": [(s, "steps", lambda s=s: GAN(n_steps=s, rejection=False, random_state=0,
                                             device="cpu", progress=False), "images")
                for s in gan_ladder],
        "vae": [(e, "epochs", lambda e=e: VAE(epochs=e, random_state=0, device="cpu",
                                              progress=False), "dequantized images")
                for e in vae_ladder],
    }


def to_images(model, n, seed):
    """n samples as grey images in [0, 1]: every model's sample takes a seed."""
    if isinstance(model, GaussianMixture):  # fitted on dequantised rows
        return dequantized_to_images(model.sample(n, seed=seed)[0])
    return np.clip(model.sample(n, seed=seed), 0.0, 1.0)


def run(family, budget, unit, make, kind, data):
    model = make()
    c0 = time.process_time()
    model.fit(data[kind])
    cpu = time.process_time() - c0
    ev = metrics.evaluate(lambda n, s: to_images(model, n, s), name=family, device="cpu")
    return {"family": family, "budget": budget, "unit": unit.replace(" ", "_"),
            "cpu_s": round(cpu, 2), "fid": round(ev.mean("fid"), 2),
            "fid_std": round(ev.std("fid"), 2), "precision": round(ev.mean("precision"), 3),
            "recall": round(ev.mean("recall"), 3), "classes": round(ev.mean("classes"), 1)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--families", nargs="+", default=["gaussian", "gmm", "vae", "gan"])
    parser.add_argument("--quick", action="store_true", help="tiny budgets, nothing saved")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    X_img, _ = load_digits("train")
    X_deq, _ = load_digits("train", dequantize=True, seed=0)
    data = {"images": X_img, "dequantized images": X_deq,
            "dequantized": X_deq.reshape(len(X_deq), -1).astype(np.float64)}
    plan = ladder(args.quick)
    rows = []
    header = [
        "# benchmarks/quality_vs_compute.py: FID (metrics.evaluate, 10 draws of 359 vs the test "
        "split) against training CPU seconds",
        f"# {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC, {platform.machine()}, "
        f"{os.cpu_count()} cores, torch {torch.__version__}, one thread, seed 0; "
        f"load average at start {os.getloadavg()[0]:.2f}",
        "# each row: one model trained to completion at its budget; cpu_s = process time of fit",
        "  ".join(COLUMNS),
    ]
    print("\n".join(header), flush=True)
    for family in args.families:
        # one untimed fit first: the first fit of a family in a process pays one-time costs
        # (PyTorch's and the allocator's warm-up) that are not training
        _, _, make0, kind0 = plan[family][0]
        make0().fit(data[kind0])
        for budget, unit, make, kind in plan[family]:
            row = run(family, budget, unit, make, kind, data)
            rows.append(row)
            print("  ".join(str(row[c]) for c in COLUMNS), flush=True)
    if not args.quick:
        lines = header + ["  ".join(str(r[c]) for c in COLUMNS) for r in rows]
        lines.append(f"# load average at end {os.getloadavg()[0]:.2f}")
        RESULTS.write_text("\n".join(lines) + "\n")
        print(f"saved to {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
