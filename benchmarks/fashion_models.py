"""Benchmark: the four families on 28×28 Fashion-MNIST (Chapter 8), scored by one protocol.

What it does, on the full Fashion-MNIST (60,000 training, 10,000 test images, 256 levels):

* ``--train`` first trains the four shipped neural models (``tools/ship_models.py
  gan_fashion cgan_fashion vae_fashion cvae_fashion``: a convolutional GAN and VAE and their
  conditional variants, seed 0, one CPU thread; about half a day of one core: some eight
  hours for the GAN's 160,000 steps (168 ms a step on the AMD machine that made it), 80 minutes
  for the conditional GAN, 62 and 67 for the VAEs; each fit keeps its run in the course's cache,
  ``runs/``, so that a stopped ``--train`` goes on where it stopped). Without it the
  script reads their records (``course_lib/assets/models/models.json``): training CPU
  seconds, the protocol's scores (5 draws of 2,000 images against 2,000 test images, mean ±
  std), held-out bits per pixel and learning curves, all written by that tool.
* The statistical families, fitted here on the same 60,000 training images:
  independent pixels (a 256-level histogram per pixel, add-one smoothing) and a diagonal
  Gaussian mixture with K = 200 and reg_covar 1e-6, the setting that
  ``benchmarks/fashion_gmm.py`` picked by validation bits/px (float32, k-means++, seed 0,
  tol 0.5 nats/image, at most 50 EM iterations, on dequantised images). Each is scored by
  the same protocol and by held-out bits/px on the same 2,000 test images as the VAEs
  (exact discrete bits/px for the histograms; for the GMM the density of the dequantised
  images, an upper bound, eq. (2.5)).
* The pairwise MRF is not refitted here: ``benchmarks/fashion_mrf.py`` shows that at 28×28 its
  Gibbs chains do not mix (its results file); its timings enter the scaling table.
* Scaling from 8×8 to 28×28: the CPU milliseconds per training image of one pass (a GAN step
  of batch 64 / 64, a VAE epoch / N, one EM iteration / N), each family with the same
  recipe at both sizes (the conv GAN and conv VAE of the shipped Fashion models; the diagonal
  GMM with K = 10), timed here on the 1,438 training digits and on 6,000 Fashion images.

Usage:  python benchmarks/fashion_models.py [--train] [--save] [--quick] [--records-only]
  --save   write benchmarks/results/fashion_models_cpu.txt;  --quick  small sizes, nothing saved
  --records-only  fit and time nothing: read the neural rows from the records again and keep the
           statistical rows and the scaling timings of the saved run, with its date and machine
           (seconds; for a model shipped again, so that the other rows stay on their machine)
Run it under one thread (the script sets torch's; set OMP_NUM_THREADS=1 too).
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import re
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "tools")]
import fashion_floor  # noqa: E402  (the independent-pixel sampler)
import fashion_gmm  # noqa: E402  (grey levels, histogram bits/px, the timed GMM fit)
import ship_models  # noqa: E402  (the neural models' recipes, FASHION_GAN and FASHION_VAE)

from course_lib import metrics  # noqa: E402
from course_lib._core import cache_dir, cpu_name  # noqa: E402
from course_lib.data import (  # noqa: E402
    dequantize,
    dequantized_to_images,
    load_digits,
    load_fashion_mnist,
)
from course_lib.gan import GAN  # noqa: E402
from course_lib.gmm import GaussianMixture  # noqa: E402
from course_lib.training import shipped_records  # noqa: E402
from course_lib.vae import VAE  # noqa: E402

RESULTS = HERE / "results"
NEURAL = ("gan_fashion", "cgan_fashion", "vae_fashion", "cvae_fashion")
GMM_K, GMM_REG = 200, 1e-6  # benchmarks/fashion_gmm.py's pick
BPP_IMAGES = 2000  # = tools/ship_models.py's FASHION_BPP_IMAGES: the same test images
SCORES = ("fid", "kid", "precision", "recall", "classes")


def train_neural() -> None:
    """Run the tool that trains and ships the four neural models (it writes their records),
    keeping each fit's run in the course's cache (``runs/``) as it goes: hours of training that
    stop (a closed laptop) go on from there when the command runs again."""
    runs = cache_dir() / "runs"
    subprocess.run([sys.executable, str(HERE.parent / "tools" / "ship_models.py"), *NEURAL,
                    "--checkpoint-dir", str(runs)],
                   check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})


def neural_rows(quick: bool = False) -> list[dict]:
    """One row per shipped Fashion model, from its record (--quick: those that exist)."""
    records = shipped_records()
    missing = [n for n in NEURAL if n not in records]
    if missing and not quick:
        raise SystemExit(f"no record for {missing} in models.json: run with --train")
    rows = []
    for name in (n for n in NEURAL if n in records):
        r = records[name]
        s = r["scores"]
        rows.append({"name": name, "fit_cpu_s": r["fit_cpu_s"],
                     **{k: tuple(s[k]) for k in SCORES},
                     "bpp": s.get("test_bits_per_pixel"),
                     "bpp_label": s.get("test_bits_per_pixel_given_label"),
                     "class_accuracy": s.get("class_accuracy"), "curve": r.get("curve", [])})
    return rows


def evaluated(name: str, sampler, fit_cpu_s: float, bpp: float, n_draws=None, size=None) -> dict:
    ev = metrics.evaluate(sampler, name=name, device="cpu", dataset="fashion",
                          n_draws=n_draws, size=size)
    return {"name": name, "fit_cpu_s": round(fit_cpu_s, 1), "bpp": round(bpp, 4),
            "bpp_label": None, "class_accuracy": None, "curve": [],
            **{k: (round(ev.mean(k), 4), round(ev.std(k), 4)) for k in SCORES}}


def statistical_rows(train_levels, test_levels, images_shape, quick: bool, gmm_k: int = GMM_K,
                     independent: bool = True) -> list[dict]:
    """Independent pixels (unless ``independent`` is False) and the diagonal GMM of ``gmm_k``
    components, fitted on ``train_levels`` (N, 784) and scored on ``test_levels`` (the first
    BPP_IMAGES test images)."""
    kw = {"n_draws": 2, "size": 200} if quick else {}
    rows = []
    if independent:
        start = time.process_time()
        sampler = fashion_floor.independent_pixels(
            train_levels.reshape(-1, *images_shape) / 255.0)
        indep_bpp = fashion_gmm.independent_pixels_bpp(train_levels, test_levels)[0]
        indep_s = time.process_time() - start
        rows.append(evaluated("independent pixels", sampler, indep_s, indep_bpp, **kw))

    Y = dequantize(train_levels, n_levels=256, seed=0).astype(np.float32)
    Y_test = dequantize(test_levels, n_levels=256, seed=1).astype(np.float32)
    K = 5 if quick else gmm_k
    fit = fashion_gmm.fit_timed(K, GMM_REG, Y, max_iter=2 if quick else 50, tol=0.5)
    gm = fit["model"]

    def gmm_sampler(n, seed):
        Ys = gm.sample(n, seed=seed)[0]
        return dequantized_to_images(np.clip(Ys, 0.0, 1.0).reshape(n, *images_shape),
                                     n_levels=256)

    row = evaluated(f"diagonal GMM (K={K})", gmm_sampler, fit["fit_s"],
                    fashion_gmm.bpp(gm, Y_test), **kw)
    row["iters"], row["converged"] = fit["iters"], fit["converged"]
    rows.append(row)
    return rows


def _timed(fn, repeats: int = 1) -> float:
    start = time.process_time()
    for _ in range(repeats):
        fn()
    return (time.process_time() - start) / repeats


def scaling(quick: bool) -> list[tuple]:
    """CPU ms per training image of one pass, at 8×8 and 28×28, per family (same recipe)."""
    digits = load_digits("train")[0]
    fashion = load_fashion_mnist("train", verbose=False)[0][: 1000 if quick else 6000]
    out = []
    steps = 5 if quick else 100
    for label, X in (("8x8 digits", digits), ("28x28 Fashion", fashion)):
        gan_kw = {k: v for k, v in ship_models.FASHION_GAN.items() if k not in ("n_steps", "snapshots")}
        per_step = {}
        for n in (steps, 2 * steps):  # the difference removes the set-up's cost
            gan = GAN(**gan_kw, n_steps=n, random_state=0, progress=False, device="cpu")
            per_step[n] = _timed(functools.partial(gan.fit, X))
        gan_ms = 1000 * (per_step[2 * steps] - per_step[steps]) / steps / gan_kw["batch_size"]
        vae_kw = dict(ship_models.FASHION_VAE, epochs=1, validation_fraction=0.0, random_state=0,
                      progress=False, device="cpu")
        if X.shape[-1] == 8:
            vae_kw["n_levels"] = 17
        vae_ms = 1000 * _timed(functools.partial(VAE(**vae_kw).fit, X)) / len(X)
        Y = X.reshape(len(X), -1).astype(np.float32)
        iters = 5 if quick else 50
        gm = GaussianMixture(10, covariance_type="diag", max_iter=iters, tol=0.0,
                             init_params="random", random_state=0, dtype="float32")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tol=0: it never "converges"
            gmm_ms = 1000 * _timed(functools.partial(gm.fit, Y)) / iters / len(Y)
        out.append((label, X.shape[-1] * X.shape[-2], gan_ms, vae_ms, gmm_ms))
    return out


def table(rows: list[dict]) -> list[str]:
    lines = ["model                       train CPU s            fid            kid       precision"
             "          recall    classes  class acc  test bpp  bpp | label"]
    for r in rows:
        f = r["fid"], r["kid"], r["precision"], r["recall"], r["classes"]
        acc = "-" if r["class_accuracy"] is None else f"{r['class_accuracy']:.3f}"
        bpp = "-" if r["bpp"] is None else f"{r['bpp']:.4f}"
        bl = "-" if r["bpp_label"] is None else f"{r['bpp_label']:.4f}"
        lines.append(f"{r['name']:26s} {r['fit_cpu_s']:12.1f}  {f[0][0]:6.1f} ± {f[0][1]:4.1f}"
                     f"  {f[1][0]:6.2f} ± {f[1][1]:4.2f}  {f[2][0]:.3f} ± {f[2][1]:.3f}"
                     f"  {f[3][0]:.3f} ± {f[3][1]:.3f}  {f[4][0]:4.1f} ± {f[4][1]:3.1f}"
                     f"  {acc:>9s}  {bpp:>8s}  {bl:>11s}")
    return lines


#: How the book's table (book/08_scaling.md) names each row.
DISPLAY = {"gan_fashion": "conv GAN", "cgan_fashion": "conditional conv GAN",
           "vae_fashion": "conv VAE", "cvae_fashion": "conditional conv VAE"}


def markdown_rows(rows: list[dict]) -> list[str]:
    """The rows of the book's table, from the results (tests/test_fashion_models.py checks
    that the page shows exactly these). KID is left out of the book (it ranks the models as FID
    does, and the table must fit a page); the results file and the notebook show it."""
    out = []
    for r in rows:
        cells = [DISPLAY.get(r["name"], r["name"]), f"{r['fit_cpu_s']:.0f}",
                 f"{r['fid'][0]:.1f} ± {r['fid'][1]:.1f}",
                 f"{r['precision'][0]:.3f} ± {r['precision'][1]:.3f}",
                 f"{r['recall'][0]:.3f} ± {r['recall'][1]:.3f}",
                 f"{r['classes'][0]:.1f} ± {r['classes'][1]:.1f}",
                 "–" if r["class_accuracy"] is None else f"{r['class_accuracy']:.3f}",
                 "–" if r["bpp"] is None else f"{r['bpp']:.3f}"]
        out.append("| " + " | ".join(cells) + " |")
    return out


#: The line of a --records-only run that says when the rows it kept were measured.
KEPT_LINE = r"^# Statistical rows, GMM line and scaling: kept from the run of (.+?) \(--records-only"
#: A line of the results file's scaling block: data, pixels, CPU ms of the GAN, VAE and GMM.
SCALE_LINE = r"^#   (8x8 digits|28x28 Fashion)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$"


def saved_run(results: Path | None = None) -> dict:
    """What ``--records-only`` keeps of the run saved in ``results`` (default: this script's
    results folder): its statistical rows, its scaling timings, and the header lines that say
    when, on which machine and on which data they were measured."""
    folder = RESULTS if results is None else results
    try:
        text = (folder / "fashion_models_cpu.txt").read_text(encoding="utf-8")
        saved = json.loads((folder / "fashion_models_cpu.json").read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise SystemExit(f"--records-only keeps a saved run, and {err.filename} is missing: "
                         "run the benchmark without it") from None
    scale = [(m[1], int(m[2]), float(m[3]), float(m[4]), float(m[5]))
             for m in re.finditer(SCALE_LINE, text, flags=re.M)]
    head = {key: next((ln for ln in text.splitlines() if ln.startswith(key)), None)
            for key in ("# benchmarks/fashion_models.py", "# Machine", "# Data")}
    kept_before = re.search(KEPT_LINE, text, flags=re.M)  # a --records-only run's file: its date
    when = kept_before[1] if kept_before else (head["# benchmarks/fashion_models.py"] or "").rsplit("; ", 1)[-1]
    rows = [r for r in saved if r["name"] not in NEURAL]
    if len(rows) != 2 or len(scale) != 2 or None in head.values():
        raise SystemExit(f"--records-only: {folder / 'fashion_models_cpu.txt'} does not hold a "
                         "whole saved run (2 statistical rows, 2 scaling lines, its header): run "
                         "the benchmark without it")
    return {"rows": rows, "scale": scale, "head": head, "when": when}


def how_trained(record: dict) -> str:
    """The threads (and segments) of a shipped model's fit, as its record's ``by`` says them."""
    by, marker = record.get("by", ""), "random_state 0, "
    threads = by[by.rindex(marker) + len(marker):-1] if marker in by else "threads not recorded"
    segments = record.get("segments")
    return f"{segments} segments; {threads}" if segments else threads


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", action="store_true")
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--records-only", action="store_true")
    args = parser.parse_args(argv)
    if args.records_only and (args.train or args.quick):
        parser.error("--records-only fits nothing: it goes without --train and --quick")
    torch.set_num_threads(1)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    wall0, cpu0 = time.time(), time.process_time()
    if args.train and not args.quick:
        train_neural()
    machine = f"# Machine: {cpu_name()}, {os.cpu_count()} cores; torch {torch.__version__}, 1 thread; device cpu"
    if args.records_only:
        kept = saved_run()
        rows, scale = kept["rows"], kept["scale"]
        head = [f"# Statistical rows, GMM line and scaling: kept from the run of {kept['when']} (--records-only "
                "fits and times nothing), measured on:", kept["head"]["# Machine"], kept["head"]["# Data"]]
    else:
        train, source = fashion_gmm.grey_levels("train")
        test = fashion_gmm.grey_levels("test")[0][:BPP_IMAGES]
        if args.quick:
            train = train[:3000]
        rows = statistical_rows(train, test, (1, 28, 28), args.quick)
        scale = scaling(args.quick)
        head = [machine, f"# Data: {source}; all {len(train):,} training images for every model (the VAEs "
                "hold out 10% for early stopping); test: the first 2,000 test images for bits/px"]
    rows += neural_rows(args.quick)

    by = {r["name"]: r for r in rows}
    gmm = rows[1]
    lines = [
        f"# benchmarks/fashion_models.py: the families on 28x28 Fashion-MNIST (Chapter 8); {started} UTC",
        *head,
        f"# Command: OMP_NUM_THREADS=1 .venv/bin/python benchmarks/fashion_models.py"
        f"{' --train' if args.train else ''}{' --records-only' if args.records_only else ''}"
        f"{' --save' if args.save else ''}",
        "# Scores: metrics.evaluate(dataset='fashion'): 5 draws of 2,000 samples vs 2,000 test images, "
        "mean ± std over draws; classes: of 10 (the Fashion CNN)",
        "# class acc: conditional models, 2,000 samples (200 a class), fraction the Fashion CNN labels "
        "as asked; test bpp: held-out bits/px, 256 levels (VAE: IWAE k=20 of log p(x), an upper "
        "bound; GMM: dequantised density, an upper bound; histograms: exact); bpp | label: log p(x | y)",
        "# Neural rows: records written by tools/ship_models.py (course_lib/assets/models/models.json), "
        "train CPU s, on " + "; ".join(
            f"{n} {r['cpu']} ({how_trained(r)})" for n, r in shipped_records().items() if n in by),
        *table(rows),
        f"# GMM: {gmm['iters']} EM iterations, converged {gmm['converged']}",
    ]
    gan, vae = by.get("gan_fashion"), by.get("vae_fashion")
    lines += [] if gan is None or vae is None else [
        f"# Required (issue 23): conv GAN FID {gan['fid'][0]:.1f} ± {gan['fid'][1]:.1f} vs GMM "
        f"{gmm['fid'][0]:.1f} ± {gmm['fid'][1]:.1f}: separated {metrics.separated(gan, gmm, 'fid')}, "
        f"lower {gan['fid'][0] < gmm['fid'][0]}; conv VAE test bpp {vae['bpp']:.4f} vs GMM "
        f"{gmm['bpp']:.4f} and independent pixels {rows[0]['bpp']:.4f}: lower "
        f"{vae['bpp'] < min(gmm['bpp'], rows[0]['bpp'])}"]
    lines += [
        "# Quality against compute (one training run each; CPU s prorated by step or epoch):",
    ]
    for r in rows[2:]:
        what = "step, CPU s, FID of 500 snapshot samples" if r["name"].startswith(("gan", "cgan")) \
            else "epoch, CPU s, validation ELBO bits/px"
        lines.append(f"#   {r['name']} ({what}): " + "; ".join(
            " ".join(str(v) for v in point) for point in r["curve"]))
    lines.append("# Scaling, CPU ms per training image per pass (GAN: step of 64 / 64, from the time of 200 steps less that of 100; VAE: "
                 "one epoch / N; GMM K=10 diag: one EM iteration / N, 50 iterations), same recipe at both sizes:")
    lines.append("#   data           pixels    conv GAN    conv VAE    diag GMM")
    for label, d, g, v, m in scale:
        lines.append(f"#   {label:14s} {d:6d}  {g:10.4f}  {v:10.4f}  {m:10.6f}")
    (l8, d8, g8, v8, m8), (l28, d28, g28, v28, m28) = scale
    lines.append(f"#   ratio 28x28 / 8x8: pixels {d28 / d8:.2f}; GAN {g28 / g8:.1f}; VAE "
                 f"{v28 / v8:.1f}; GMM {m28 / m8:.1f}")
    lines.append(f"# Whole run: {time.process_time() - cpu0:.0f} CPU s, {time.time() - wall0:.0f} s "
                 f"wall; finished {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC")
    text = "\n".join(lines) + "\n"
    print(text, end="")
    if args.save and not args.quick:
        (RESULTS / "fashion_models_cpu.txt").write_text(text)
    json_out = [{k: v for k, v in r.items()} for r in rows]
    if args.save and not args.quick:
        (RESULTS / "fashion_models_cpu.json").write_text(json.dumps(json_out, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
