"""The conditional conv VAE's prior on 28×28 Fashion-MNIST (Chapter 8): shared or per class.

A conditional VAE is told the class twice over if it wants: the label y enters the decoder,
and the encoder sees the whole image, so z can carry the class too. With the VampPrior shared by
all classes (the digits' recipe, ``conditional_prior=False``) nothing makes a sample's z agree
with the label it is given; with ``conditional_prior=True`` the prior of class y, p(z | y), is
the mixture of the pseudo-inputs of that class only. This screen trains both, everything else
equal (``tools/ship_models.py``'s FASHION_VAE recipe, the same training images, epochs and
seeds, one CPU thread), and measures what the label does:

- *class acc*: the fraction of 2,000 samples, 200 of each class asked for, that the Fashion
  feature network (``metrics.predict_fashion``) labels as the class asked for;
- *swap*: test images encoded with their own label and decoded with another ((y + 5) mod 10):
  the fraction that keep the encoded image's class, and the fraction that show the new label's;
- *val bits/px*: the best validation ELBO, in bits per pixel (an upper bound).

Short runs on a subset, so that both priors and two seeds fit in minutes: the shipped model
(all 60,000 images, up to 40 epochs) is the full-size run of the winner.

Usage:  python benchmarks/fashion_cvae_prior.py [--images 10000] [--epochs 6] [--seeds 0 1]
            [--save]   (write benchmarks/results/fashion_cvae_prior_cpu.txt)
Run it under one thread (the script sets torch's; set OMP_NUM_THREADS=1 too).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tools"))
import ship_models  # noqa: E402  (the shipped recipe)

from course_lib import metrics  # noqa: E402
from course_lib._core import cpu_name  # noqa: E402
from course_lib.data import load_fashion_mnist  # noqa: E402
from course_lib.vae import VAE  # noqa: E402

RESULTS = HERE / "results" / "fashion_cvae_prior_cpu.txt"
PRIORS = {"shared p(z)": False, "per class p(z | y)": True}
HEADER = ("prior                seed  epochs  class acc  swap: keeps image  follows label"
          "  val bits/px  fit CPU s")
N_SAMPLES, N_SWAP = 2000, 1000


def run(conditional: bool, seed: int, X, y, Xte, yte, epochs: int) -> dict:
    params = {**ship_models.FASHION_VAE, "epochs": epochs, "conditional_prior": conditional}
    model = VAE(**params, random_state=seed, device="cpu", progress=False)
    c0 = time.process_time()
    model.fit(X, y)
    cpu = time.process_time() - c0
    asked = np.arange(N_SAMPLES) % 10
    images = model.sample(N_SAMPLES, labels=asked, seed=seed)
    class_acc = float((metrics.predict_fashion(images, device="cpu") == asked).mean())
    other = (yte + 5) % 10
    seen = metrics.predict_fashion(
        model.decode(model.encode(Xte, labels=yte), labels=other), device="cpu")
    best = max(model.history_["val_elbo"])
    return {"class_acc": class_acc, "keeps": float((seen == yte).mean()),
            "follows": float((seen == other).mean()), "epochs": model.n_epochs_,
            "val_bpp": 8 - best / (784 * np.log(2)), "cpu": cpu}


def line(name: str, seed: int, r: dict) -> str:
    return (f"{name:20s} {seed:4d}  {r['epochs']:6d}  {r['class_acc']:9.3f}  "
            f"{r['keeps']:17.3f}  {r['follows']:13.3f}  {r['val_bpp']:11.4f}  {r['cpu']:9.1f}")


def read_rows(path: Path | None = None) -> list[dict]:
    """The runs in the results file, in file order: one dict per row, with ``prior`` (a key of
    ``PRIORS``), ``seed``, ``epochs``, ``class_acc``, ``keeps``, ``follows``, ``val_bpp`` and
    ``cpu_s``. The prior's name has spaces: it is the row's first 20 characters (``line``)."""
    path = RESULTS if path is None else path  # RESULTS as it is now (tests redirect it)
    if not path.exists():
        return []
    out = []
    for ln in path.read_text(encoding="utf-8").splitlines():
        if not ln.startswith(tuple(PRIORS)):
            continue
        seed, epochs, *numbers = ln[20:].split()
        out.append({"prior": ln[:20].strip(), "seed": int(seed), "epochs": int(epochs),
                    **dict(zip(("class_acc", "keeps", "follows", "val_bpp", "cpu_s"),
                               map(float, numbers), strict=True))})
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--save", action="store_true")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    t0 = time.perf_counter()
    X, y = load_fashion_mnist("train", verbose=False)
    X, y = X[: args.images], y[: args.images]
    Xte, yte = load_fashion_mnist("test", verbose=False)
    Xte, yte = Xte[:N_SWAP], yte[:N_SWAP]
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())
    lines = [f"# {started} UTC, {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
             f"1 thread; the conditional conv VAE, recipe {ship_models.FASHION_VAE} with "
             f"epochs {args.epochs}, on the first {args.images:,} training images; "
             f"{N_SAMPLES:,} samples per run, {N_SWAP:,} test images swapped", HEADER]
    print("\n".join(lines), flush=True)
    for seed in args.seeds:
        for name, conditional in PRIORS.items():
            out = line(name, seed, run(conditional, seed, X, y, Xte, yte, args.epochs))
            print(out, flush=True)
            lines.append(out)
    lines.append(f"# Whole run: {time.perf_counter() - t0:.0f} s wall")
    if args.save:
        RESULTS.write_text("\n".join(lines) + "\n", encoding="utf-8")
        print(f"wrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
