"""Why the real-vs-real KID floor of the course's protocol is negative: the fixed test split.

``metrics.evaluate_floor`` compares 10 draws of 359 training digits with the SAME 359 test
digits. KID is an unbiased estimate of MMD² only on average over fresh sets on both sides; with
one side fixed, that side's own sampling error is an offset shared by every draw, which the
spread of the draws does not include. This script measures KID (``metrics.kid``, on the digit
CNN's features, on the whole sets as ``metrics.evaluate`` computes it, in the units the
tables print) for 10 draws of 359 training digits against:

1. the fixed test split (what the floor does);
2. one fixed subset of 359 other training digits (the same situation within one split);
3. a fresh pair of disjoint training subsets at every draw (both sides fresh).

and prints the mean, the standard deviation over the draws and the standard error of the mean.

Usage: ``python benchmarks/gan_kid_floor.py`` (about a minute of CPU).
"""

from __future__ import annotations

import platform

import numpy as np
import torch

from course_lib import metrics
from course_lib.data import load_digits


def main() -> None:
    torch.set_num_threads(1)
    print(f"# torch {torch.__version__}, {platform.processor() or platform.machine()}, threads 1")
    X_train, _ = load_digits("train")
    X_test, _ = load_digits("test")
    f_train = np.asarray(metrics.digit_features(X_train), dtype=np.float64)
    f_test = np.asarray(metrics.digit_features(X_test), dtype=np.float64)
    size, n_draws = len(f_test), 10
    fixed = np.random.default_rng(0).choice(len(f_train), size, replace=False)
    rest = np.setdiff1d(np.arange(len(f_train)), fixed)
    rows = {"train draws vs the fixed test split": [],
            "train draws vs one fixed train subset": [],
            "two fresh disjoint train subsets each draw": []}
    for s in range(n_draws):
        i = np.random.default_rng(100 + s).choice(rest, size, replace=False)
        perm = np.random.default_rng(200 + s).permutation(len(f_train))
        rows["train draws vs the fixed test split"].append(metrics.kid(f_train[i], f_test, n_subsets=1, subset_size=size)[0])
        rows["train draws vs one fixed train subset"].append(
            metrics.kid(f_train[i], f_train[fixed], n_subsets=1, subset_size=size)[0])
        rows["two fresh disjoint train subsets each draw"].append(
            metrics.kid(f_train[perm[:size]], f_train[perm[size:2 * size]], n_subsets=1, subset_size=size)[0])
    print(f"# KID (as metrics.evaluate computes it: one estimate on the whole sets) over "
          f"{n_draws} draws of {size} digits")
    for name, v in rows.items():
        v = np.asarray(v)
        print(f"{name:45s} mean {v.mean():+.2f}  sd {v.std(ddof=1):.2f}  "
              f"se {v.std(ddof=1) / np.sqrt(n_draws):.2f}")


if __name__ == "__main__":
    main()
