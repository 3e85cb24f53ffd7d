"""course_lib.gmm.GaussianMixture against sklearn.mixture.GaussianMixture, side by side.

Both fit the same data from the same initial parameters (weights_init, means_init,
precisions_init) in the same process, with ``tol=0`` and the same ``max_iter``, so that both do
exactly the same number of EM iterations (checked): equal work is timed. For every
N x D x K x covariance type the table gives the median wall time of several runs,
the ratio course_lib / scikit-learn (below 1: course_lib is faster) for course_lib in float64
and in float32, and the relative difference of the final lower bound (mean log-likelihood)
from scikit-learn's float64 one.

scikit-learn always runs on the CPU in float64. course_lib runs on the CPU and, when a CUDA
GPU is present (and ``--device`` allows), also on the GPU.

    python benchmarks/gmm_vs_sklearn.py            # full table, saved to benchmarks/results/
    python benchmarks/gmm_vs_sklearn.py --quick    # smoke run (seconds), nothing saved
    python benchmarks/gmm_vs_sklearn.py --em-drops # EM's log-likelihood drops with reg_covar,
                                                   # saved to results/gmm_em_drops_cpu.txt

The CPU is shared with whatever else runs on the machine: the script prints the load average
before and after, and timings taken under load are noisy (repeat them when it is low).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import os
import statistics
import time
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.cluster import kmeans_plusplus
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from course_lib._core import cpu_name
from course_lib.gmm import COVARIANCE_TYPES, GaussianMixture, NumericalTroubleWarning

RESULTS = Path(__file__).resolve().parent / "results"


def make_data(n, d, k, seed=0):
    """A mixture of k Gaussians with random means and random full covariances."""
    rng = np.random.RandomState(seed)
    centres = rng.randn(k, d) * 2.0
    labels = rng.randint(k, size=n)
    X = np.empty((n, d))
    for j in range(k):
        idx = np.flatnonzero(labels == j)
        A = np.eye(d) + 0.3 * rng.randn(d, d) / np.sqrt(d)  # well conditioned
        X[idx] = centres[j] + rng.randn(len(idx), d) @ A
    return X


def make_init(X, k, covariance_type, seed=0):
    """Same start for both: k-means++ seeds (on a subsample) as means, equal weights, and the
    data's mean variance as every (isotropic) covariance."""
    rng = np.random.RandomState(seed)
    sub = X[rng.choice(len(X), size=min(len(X), 5000), replace=False)]
    means, _ = kmeans_plusplus(sub, k, random_state=seed)
    d = X.shape[1]
    precision = 1.0 / X.var(0).mean()
    precisions = {
        "full": np.tile(np.eye(d) * precision, (k, 1, 1)),
        "tied": np.eye(d) * precision,
        "diag": np.full((k, d), precision),
        "spherical": np.full(k, precision),
    }[covariance_type]
    return dict(weights_init=np.full(k, 1.0 / k), means_init=means, precisions_init=precisions)


def timed_fits(makers, X, repeats):
    """Fit each model ``repeats`` times, interleaving the models so that all of them see the
    same machine load; return per model (median seconds, last fitted model, warned)."""
    times = {name: [] for name in makers}
    models, warned = {}, {name: False for name in makers}
    for _ in range(repeats):
        for name, make_model in makers.items():
            model = make_model()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                start = time.perf_counter()
                model.fit(X)
                if torch.cuda.is_available():
                    torch.cuda.synchronize()
                times[name].append(time.perf_counter() - start)
            warned[name] |= any(issubclass(w.category, NumericalTroubleWarning) for w in caught)
            models[name] = model
    return {name: (statistics.median(times[name]), models[name], warned[name]) for name in makers}


def load():
    try:
        return "load average {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())
    except OSError:  # pragma: no cover
        return "load average n/a"



def em_drops(seeds=20):
    """How often the log-likelihood drops between EM iterations, with and without reg_covar.

    The measurement behind Chapter 3's "What EM guarantees, and what reg_covar changes": for
    each data set and reg_covar, fit from ``seeds`` random states (tol 1e-10, at most 100
    iterations) and count the runs whose ``history_`` goes down by more than 1e-12, with the
    largest drop (nats per sample). Not a timing; it lives here beside the other GMM runs.
    """
    from course_lib.data import grid_of_gaussians, load_digits

    grid, _ = grid_of_gaussians(1500, side=5, spacing=2.0, std=0.2, seed=0)
    digits, _ = load_digits("train", dequantize=True)
    digits = digits.reshape(len(digits), -1).astype(np.float64)
    print(f"# EM log-likelihood drops over {seeds} seeds (tol 1e-10, max_iter 100)")
    print(f"{'data':>34} {'reg_covar':>9} {'runs with a drop':>17} {'largest drop':>13}")
    for name, X, k, cov in (("25 2D clusters, full, K=25", grid, 25, "full"),
                            ("dequantised digits, diag, K=10", digits, 10, "diag")):
        for reg in (0.0, 1e-6, 1e-3, 1e-2):
            n_drop, worst = 0, 0.0
            for seed in range(seeds):
                gm = GaussianMixture(k, covariance_type=cov, reg_covar=reg, tol=1e-10,
                                     max_iter=100, random_state=seed, device="cpu")
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    gm.fit(X)
                steps = np.diff(gm.history_)
                if (steps < -1e-12).any():
                    n_drop += 1
                    worst = min(worst, float(steps.min()))
            print(f"{name:>34} {reg:9.0e} {n_drop:>11} of {seeds} {max(0.0, -worst):13.2e}")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--em-drops", action="store_true",
                        help="instead of timings: count log-likelihood drops of EM with and "
                        "without reg_covar (Chapter 3)")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, 1 run: a smoke test")
    parser.add_argument("--repeats", type=int, default=3, help="runs per timing (median)")
    parser.add_argument("--iters", type=int, default=10, help="EM iterations per fit")
    parser.add_argument(
        "--device",
        choices=["cpu", "cuda", "all"],
        default="all",
        help="where course_lib runs (all: the CPU, and the GPU if present)",
    )
    parser.add_argument("--out", type=Path, default=None, help="also write the table here")
    parser.add_argument("--n", type=int, nargs="+", help="sample sizes (default 2000 20000 200000)")
    parser.add_argument("--d", type=int, nargs="+", help="dimensions (default 8 64)")
    parser.add_argument("--k", type=int, nargs="+", help="components (default 4 16)")
    parser.add_argument(
        "--cov", nargs="+", choices=COVARIANCE_TYPES, default=list(COVARIANCE_TYPES)
    )
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="limit both libraries to this many CPU threads (torch and NumPy's BLAS); default: "
        "each library's own default. One thread gives a per-core comparison that other "
        "programs running on the machine disturb much less.",
    )
    args = parser.parse_args(argv)
    if args.em_drops:  # deterministic counts, not timings: saved beside the timing table
        with contextlib.redirect_stdout(io.StringIO()) as buf:
            em_drops()
        print(buf.getvalue(), end="")
        out = args.out or RESULTS / "gmm_em_drops_cpu.txt"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(buf.getvalue())
        print(f"saved to {out}")
        return
    if args.threads is not None:
        from threadpoolctl import threadpool_limits

        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)

    if args.quick:
        sizes, dims, comps, repeats, iters = [2000], [8], [4], 1, 3
    else:
        sizes, dims, comps = [2000, 20000, 200000], [8, 64], [4, 16]
        repeats, iters = args.repeats, args.iters
    sizes, dims, comps = args.n or sizes, args.d or dims, args.k or comps
    devices = []
    if args.device in ("cpu", "all"):
        devices.append("cpu")
    if args.device in ("cuda", "all") and torch.cuda.is_available():
        devices.append("cuda")
    if args.device == "cuda" and not torch.cuda.is_available():
        parser.error("--device cuda but no CUDA GPU is available")

    # warm-up (library loading, first-call allocations) outside the timings
    warm = make_data(500, 2, 2)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        SkGaussianMixture(2, max_iter=2).fit(warm)
        for dev in devices:
            GaussianMixture(2, max_iter=2, device=dev).fit(warm)

    lines = []

    def emit(text=""):
        print(text, flush=True)
        lines.append(text)

    emit(
        f"# course_lib GaussianMixture vs scikit-learn {sklearn.__version__}  "
        f"({datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC)"
    )
    blas_threads = "default" if args.threads is None else args.threads
    emit(
        f"# CPU: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__} with "
        f"{torch.get_num_threads()} threads, numpy {np.__version__} (BLAS threads: "
        f"{blas_threads})"
    )
    if "cuda" in devices:
        emit(f"# GPU: {torch.cuda.get_device_name()}")
    emit(
        f"# {iters} EM iterations per fit (tol=0, same initial parameters), median of "
        f"{repeats} run(s); ratio = course_lib time / scikit-learn time (< 1: faster);"
    )
    emit("# dLB = |lower bound - scikit-learn's| / |scikit-learn's| (both mean log-likelihoods);")
    emit("# * = course_lib had to regularise a singular covariance (NumericalTroubleWarning)")
    emit(f"# at start: {load()}")
    header = f"{'N':>7} {'D':>3} {'K':>3} {'cov':>9} {'sklearn s':>10}"
    for dev in devices:
        for prec in ("f64", "f32"):
            header += f" | {dev + ' ' + prec + ' s':>12} {'ratio':>6} {'dLB':>8} "
    emit(header)
    emit("-" * len(header))

    for n in sizes:
        for d in dims:
            X = make_data(n, d, max(comps))
            for k in comps:
                for cov in args.cov:
                    init = make_init(X, k, cov)
                    common = dict(covariance_type=cov, tol=0.0, max_iter=iters, **init)
                    makers = {"sklearn": lambda k=k, common=common: SkGaussianMixture(k, **common)}
                    for dev in devices:
                        for dtype in (torch.float64, torch.float32):
                            makers[dev, dtype] = lambda dev=dev, dtype=dtype, k=k, common=common: (
                                GaussianMixture(k, device=dev, dtype=dtype, **common)
                            )
                    results = timed_fits(makers, X, repeats)
                    t_sk, sk, _ = results.pop("sklearn")
                    row = f"{n:>7} {d:>3} {k:>3} {cov:>9} {t_sk:>10.3f}"
                    for t_cl, cl, warned in results.values():
                        assert cl.n_iter_ == sk.n_iter_ == iters
                        dlb = abs(cl.lower_bound_ - sk.lower_bound_) / abs(sk.lower_bound_)
                        flag = "*" if warned else " "
                        row += f" | {t_cl:>12.3f} {t_cl / t_sk:>6.2f} {dlb:>8.1e}{flag}"
                    emit(row)
    emit(f"# at end: {load()}")

    out = args.out
    if out is None and not args.quick:
        suffix = "gpu" if "cuda" in devices else "cpu"
        if args.threads is not None:
            suffix += f"_{args.threads}thread"
        out = RESULTS / f"gmm_vs_sklearn_{suffix}.txt"
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n")
        print(f"saved to {out}")


if __name__ == "__main__":
    main()
