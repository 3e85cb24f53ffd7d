"""Screen of the unconditional conv GAN's settings on 28×28 Fashion-MNIST (Chapter 8).

The shipped recipe (``tools/ship_models.py``'s ``FASHION_GAN``: Chapter 5's conv recipe with
batches of 64 and a 32-dimensional latent) trained for 6,000 steps reached FID 65.0 ± 1.6, within
the spread of the K = 200 diagonal mixture's 64.4 ± 0.4 (``fashion_models_cpu.txt``), while the
conditional GAN with the same recipe reached 19.5. This screen trains the unconditional GAN with
one setting changed at a time, each at the same number of steps (seed 0, one CPU thread, all
60,000 training images), and scores it with the protocol (5 draws of 2,000 samples against
2,000 test images). Every run is kept in the results file, the losers included. The same
script trains the shipped recipe (r1-10) at other numbers of steps for Chapter 8's budget ladder,
and the conditional GAN with it (cgan-r1-10: trained with the labels; its samples cycle
through the ten classes, as the shipped model's are scored).

Usage:  python benchmarks/fashion_gan_screen.py --settings base r1-0.1 ... [--steps 3000]
            [--threads 1] [--save]
--save appends the lines to benchmarks/results/fashion_gan_screen_cpu.txt, each under its run's
header (so that two runs side by side, one a core, keep their lines apart), and skips a setting
whose row at these steps is already there (delete the row to run it again). The screen ran under
one thread (the default; set OMP_NUM_THREADS to match); the ladder's 80,000-step GAN and 20,000-step
conditional GAN ran under two (--threads 2: about 1.8 times faster in wall time, but 13% more CPU
seconds per step in the 80,000-step run).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tools"), str(HERE)]  # ship_models, results_file
import results_file  # noqa: E402  (this folder's: reads the results file's table)
import ship_models  # noqa: E402  (the shipped recipe)

from course_lib import metrics  # noqa: E402
from course_lib._core import cpu_name  # noqa: E402
from course_lib.data import load_fashion_mnist  # noqa: E402
from course_lib.gan import GAN  # noqa: E402

RESULTS = HERE / "results" / "fashion_gan_screen_cpu.txt"
#: The screen's starting point: the first shipped recipe, R1 weight γ = 1 (the digits' value).
#: The screen chose γ = 10, which tools/ship_models.py's FASHION_GAN now holds.
BASE = {"r1": 1.0}
SETTINGS = {
    "base": {},
    "r1-0.1": {"r1": 0.1},
    "r1-0.3": {"r1": 0.3},
    "r1-3": {"r1": 3.0},
    "r1-10": {"r1": 10.0},
    "b128": {"batch_size": 128},
    "lr2e-3": {"lr": 2e-3},
    "latent8": {"latent_dim": 8},
    "hidden32": {"hidden": 32},
    "cgan-r1-10": {"r1": 10.0},  # the conditional GAN: trained with the labels
    # The second screen, on another CPU (an AMD EPYC; the first ran on an Intel Xeon): beyond the
    # first screen's edge (γ = 10 was its largest and its best) and γ = 10 with batches of 128.
    # r1-10-ref is r1-10 again, on the second screen's machine: the reference it is compared with
    # (a GAN's run depends on the CPU's rounding; the ladder reads only the r1-10 rows).
    "r1-30": {"r1": 30.0},
    "r1-10-b128": {"r1": 10.0, "batch_size": 128},
    "r1-10-ref": {"r1": 10.0},
    "r1-10-latent8": {"r1": 10.0, "latent_dim": 8},  # the digits' latent size (32 was not screened)
}
CONDITIONAL = {"cgan-r1-10"}
HEADER = ("setting        steps           fid            kid      precision         recall"
          "   classes   fit CPU s")


def run(name: str, steps: int, X, y) -> str:
    params = {**ship_models.FASHION_GAN, **BASE, "snapshots": 0, "n_steps": steps,
              **SETTINGS[name]}
    gan = GAN(**params, random_state=0, device="cpu", progress=False)
    c0 = time.process_time()
    gan.fit(X, y if name in CONDITIONAL else None)
    cpu = time.process_time() - c0
    ev = metrics.evaluate(lambda n, s: gan.sample(n, seed=s), name=name, device="cpu",
                          dataset="fashion")
    f = {k: (ev.mean(k), ev.std(k)) for k in ("fid", "kid", "precision", "recall", "classes")}
    return (f"{name:12s} {steps:7d}  {f['fid'][0]:6.1f} ± {f['fid'][1]:4.1f}  "
            f"{f['kid'][0]:6.2f} ± {f['kid'][1]:4.2f}  {f['precision'][0]:.3f} ± "
            f"{f['precision'][1]:.3f}  {f['recall'][0]:.3f} ± {f['recall'][1]:.3f}  "
            f"{f['classes'][0]:4.1f}  {cpu:10.1f}")


def read_rows(path: Path | None = None) -> list[dict]:
    """The runs in the results file, in file order: one dict per row, with ``setting``,
    ``steps``, ``cpu_s`` (the fit's CPU seconds), ``classes`` and, for each of FID, KID,
    precision and recall, its ``(mean, std)`` over the protocol's draws."""
    out = []
    # RESULTS as it is now (tests redirect it)
    for cells in results_file.table_rows(RESULTS if path is None else path, "setting "):
        # setting, steps, 4 × (mean, std), classes, CPU s
        numbers = [float(c) for c in cells[2:]]
        row = {"setting": cells[0], "steps": int(cells[1]), "classes": numbers[8],
               "cpu_s": numbers[9]}
        row.update({k: (numbers[2 * i], numbers[2 * i + 1])
                    for i, k in enumerate(("fid", "kid", "precision", "recall"))})
        out.append(row)
    return out


def recorded(path: Path | None = None) -> set[tuple[str, int]]:
    """The ``(setting, steps)`` of every row already in the results file."""
    return {(row["setting"], row["steps"]) for row in read_rows(path)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", nargs="+", default=["base"], choices=list(SETTINGS))
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    settings = args.settings
    if args.save:
        done = recorded()
        for name in [s for s in settings if (s, args.steps) in done]:
            print(f"{name} at {args.steps} steps is already in {RESULTS.name}: skipped")
        settings = [s for s in settings if (s, args.steps) not in done]
        if not settings:
            return 0
    torch.set_num_threads(args.threads)
    X, y = load_fashion_mnist("train", verbose=False)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [f"# {started} UTC, {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"{args.threads} thread{'s' if args.threads > 1 else ''}; recipe {dict(ship_models.FASHION_GAN, **BASE)} with the setting's change; "
             f"--settings {' '.join(settings)} --steps {args.steps}", HEADER]
    out = results_file.Appender(RESULTS if args.save else None, lines)
    for name in settings:
        out.add(run(name, args.steps, X, y))
    return 0


if __name__ == "__main__":
    sys.exit(main())
