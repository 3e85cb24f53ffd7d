"""Benchmark: the evaluation protocol on Fashion-MNIST: its real-vs-real floor and two simple
reference "models", the anchors that a chapter's generators of 28×28 images are read against.

``metrics.evaluate(sampler, dataset="fashion")`` scores ``FASHION_EVAL_DRAWS`` draws of
``FASHION_EVAL_SIZE`` images against as many images of the test split, on the features of the
shipped Fashion-MNIST network (``metrics.fashion``). Three rows, each through that protocol:

1. the floor (``metrics.evaluate_floor(dataset="fashion")``): draws of real training images,
   the best scores a generator can expect at this set size;
2. independent pixels: each pixel drawn from its own 256-level histogram of the train split
   (right marginals, no correlation between pixels);
3. the train split's mean image plus Gaussian noise (one standard deviation for every pixel:
   the mean of the per-pixel standard deviations), clipped to [0, 1].

Each row's CPU seconds (the whole evaluation, one thread) are recorded beside its scores.

Usage:  python benchmarks/fashion_floor.py [--quick] [--save]
  --quick  2 draws of 500 images, nothing saved;  --save  write
  benchmarks/results/fashion_floor_cpu.txt
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import metrics
from course_lib._core import cpu_name
from course_lib.data import load_fashion_mnist

RESULTS = Path(__file__).resolve().parent / "results"


def independent_pixels(X: np.ndarray):
    """A sampler drawing each pixel from its own histogram of the 256 grey levels of ``X``."""
    levels = np.rint(X.reshape(len(X), -1) * 255).astype(np.int64)
    counts = np.stack([np.bincount(levels[:, p], minlength=256) for p in range(levels.shape[1])])
    cdf = np.cumsum(counts, axis=1) / len(X)

    def sample(n, seed):
        u = np.random.default_rng(seed).uniform(size=(n, cdf.shape[0]))
        idx = np.stack([np.searchsorted(cdf[p], u[:, p], side="right")
                        for p in range(cdf.shape[0])], axis=1)
        return (np.minimum(idx, 255) / 255.0).reshape(n, *X.shape[1:]).astype(np.float32)

    return sample


def mean_plus_noise(X: np.ndarray):
    """A sampler: the mean image of ``X`` plus Gaussian noise of its mean per-pixel std."""
    mean, sigma = X.mean(0), float(X.std(0).mean())

    def sample(n, seed):
        noise = np.random.default_rng(seed).standard_normal((n, *mean.shape))
        return np.clip(mean + sigma * noise, 0.0, 1.0).astype(np.float32)

    return sample


def timed(evaluation, *args, **kwargs) -> tuple:
    """(``evaluation(*args, **kwargs)``, the CPU seconds it took)."""
    start = time.process_time()
    ev = evaluation(*args, **kwargs)
    return ev, time.process_time() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    n_draws, size = (2, 500) if args.quick else (metrics.FASHION_EVAL_DRAWS,
                                                  metrics.FASHION_EVAL_SIZE)
    X, _, source = load_fashion_mnist("train", verbose=False, return_source=True)
    kw = dict(n_draws=n_draws, size=size, device="cpu", dataset="fashion")
    start = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    rows, seconds = {}, {}
    rows["real (floor)"], seconds["real (floor)"] = timed(metrics.evaluate_floor, **kw)
    for name, sampler in (("independent pixels", independent_pixels(X)),
                          ("mean image + noise", mean_plus_noise(X))):
        rows[name], seconds[name] = timed(metrics.evaluate, sampler, name=name, **kw)
        print(name, rows[name], flush=True)
    lines = [
        f"# benchmarks/fashion_floor.py: the Fashion-MNIST protocol's floor and two reference "
        f"samplers; {start} UTC",
        f"# Machine: {cpu_name()}, {os.cpu_count()} cores (shared with other jobs); torch "
        f"{torch.__version__}, {torch.get_num_threads()} thread; device cpu",
        f"# Data: {source}; test split: "
        f"{load_fashion_mnist('test', verbose=False, return_source=True)[2]}",
        f"# {n_draws} draws of {size} images against {metrics.FASHION_EVAL_SIZE} test images "
        "(mean ± std over draws); the first evaluation includes the reference's features and "
        "distances (computed once)",
        str(metrics.comparison_table(rows, groups=metrics.EVAL_GROUPS)),
        "# CPU seconds per evaluation: "
        + "; ".join(f"{k} {v:.1f}" for k, v in seconds.items()),
        f"# finished {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; load average "
        f"{' '.join(f'{v:.2f}' for v in os.getloadavg())}",
    ]
    print("\n".join(lines))
    if args.save and not args.quick:
        RESULTS.mkdir(exist_ok=True)
        (RESULTS / "fashion_floor_cpu.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
