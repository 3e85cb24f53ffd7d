"""Screen of the conv VAE's learning rate and width on 28×28 Fashion-MNIST (Chapter 8).

The shipped recipe (``tools/ship_models.py``'s FASHION_VAE: 16 channels, Adam with a learning
rate of 10⁻³) took the learning rate 10⁻³ instead of the digits' 3 × 10⁻³ after short trials that
were not recorded. This screen records them: each setting trained on the first ``--images``
training images (10% of them held out for the validation ELBO, as in the shipped run) for
``--epochs`` epochs, with two seeds, one CPU thread, everything else the shipped recipe's. It
reports the best validation bits per pixel (the ELBO's bound, what early stopping reads) or,
where the training diverged (``DivergenceError``: the ELBO stopped being finite), the epoch it
did. Short runs on a subset: they rank settings, they do not measure the converged model.

Usage:  python benchmarks/fashion_vae_screen.py [--settings lr1e-3 lr3e-3 ...] [--images 10000]
            [--epochs 6] [--seeds 0 1] [--save]
--save appends the lines to benchmarks/results/fashion_vae_screen_cpu.txt and skips a
(setting, seed) already there at these images and epochs. Run it under one thread (the script
sets torch's; set OMP_NUM_THREADS=1 too).
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tools"), str(HERE)]  # ship_models, results_file
import results_file  # noqa: E402  (this folder's: reads the results file's table)
import ship_models  # noqa: E402  (the shipped recipe)

from course_lib._core import cpu_name  # noqa: E402
from course_lib.data import load_fashion_mnist  # noqa: E402
from course_lib.training import DivergenceError  # noqa: E402
from course_lib.vae import VAE  # noqa: E402

RESULTS = HERE / "results" / "fashion_vae_screen_cpu.txt"
#: Each setting's change to the shipped recipe (``lr1e-3`` is the recipe itself).
SETTINGS = {
    "lr1e-3": {},
    "lr3e-3": {"lr": 3e-3},
    "lr3e-4": {"lr": 3e-4},
    "c32-lr1e-3": {"hidden": (32,)},
    "c32-lr3e-3": {"hidden": (32,), "lr": 3e-3},
}
HEADER = "setting        seed  images  epochs  val bits/px   diverged at   fit CPU s"


def run(name: str, seed: int, X, epochs: int) -> str:
    params = {**ship_models.FASHION_VAE, "epochs": epochs, "n_iter_no_change": epochs,
              **SETTINGS[name]}
    model = VAE(**params, random_state=seed, device="cpu", progress=False)
    c0 = time.process_time()
    try:
        model.fit(X)
        best = max(model.history_["val_elbo"])
        bpp, diverged = f"{8 - best / (784 * np.log(2)):11.4f}", "-"
    except DivergenceError as exc:  # the ELBO stopped being finite: when, if the error says
        found = re.search(r"after epoch (\d+)", str(exc))
        bpp, diverged = f"{'-':>11s}", f"epoch {found[1]}" if found else "yes"
        print(f"{name} seed {seed}: {exc}", flush=True)
    cpu = time.process_time() - c0
    return f"{name:12s} {seed:6d}  {len(X):6d}  {epochs:6d}  {bpp}  {diverged:>12s}  {cpu:10.1f}"


def read_rows(path: Path | None = None) -> list[dict]:
    """The runs in the results file, in file order: ``setting``, ``seed``, ``images``, ``epochs``,
    ``val_bpp`` (None where it diverged), ``diverged`` (the cell: ``-`` or ``epoch N``) and
    ``cpu_s``."""
    out = []
    for cells in results_file.table_rows(RESULTS if path is None else path, "setting "):
        diverged = " ".join(cells[5:-1])
        out.append({"setting": cells[0], "seed": int(cells[1]), "images": int(cells[2]),
                    "epochs": int(cells[3]),
                    "val_bpp": None if cells[4] == "-" else float(cells[4]),
                    "diverged": diverged, "cpu_s": float(cells[-1])})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=list(SETTINGS), choices=list(SETTINGS))
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    if args.images < 100 or args.epochs < 1:
        parser.error(f"--images must be >= 100 and --epochs >= 1, got {args.images} and {args.epochs}")
    runs = [(name, seed) for name in args.settings for seed in args.seeds]
    if args.save:
        done = {(r["setting"], r["seed"]) for r in read_rows()
                if (r["images"], r["epochs"]) == (args.images, args.epochs)}
        for name, seed in [r for r in runs if r in done]:
            print(f"{name} seed {seed} is already in {RESULTS.name}: skipped")
        runs = [r for r in runs if r not in done]
        if not runs:
            return 0
    torch.set_num_threads(1)
    X, _ = load_fashion_mnist("train", verbose=False)
    X = X[: args.images]
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [f"# {started} UTC, {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"1 thread; recipe {ship_models.FASHION_VAE} with the setting's change, epochs "
             f"{args.epochs} (no early stop), the first {args.images:,} training images; "
             f"--settings {' '.join(args.settings)} --seeds {' '.join(map(str, args.seeds))}",
             HEADER]
    out = results_file.Appender(RESULTS if args.save else None, lines)
    for name, seed in runs:
        out.add(run(name, seed, X, args.epochs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
