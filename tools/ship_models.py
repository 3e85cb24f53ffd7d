"""Train the converged digit models that ship with the package, and record how.

    .venv/bin/python tools/ship_models.py                 # every model in MODELS
    .venv/bin/python tools/ship_models.py vae_digits      # only these
    .venv/bin/python tools/ship_models.py --check         # refit each, compare with the record

Each model of ``MODELS`` is fitted with the course's own code and its defaults (``GAN()``,
``VAE()``; one VAE with the N(0, I) prior instead of the learned one), seed 0, on the CPU with one thread, on the digits' train split, then written to
``course_lib/assets/models/<name>.pt`` (:meth:`NeuralEstimator.save`) with its SHA-256 and a
record in ``models.json``: class, hyperparameters, data, CPU seconds, machine, the scores of the
course's evaluation protocol (``metrics.evaluate``: mean ± std over its draws) and, for the VAEs,
held-out bits per pixel. ``course_lib.training.shipped_model(name)`` loads them, verified.

``--checkpoint-dir DIR`` keeps each fit's run in ``DIR/<name>.run.pt`` as it goes (every 1,000
GAN steps, every VAE epoch), so that a fit of hours can stop and go on: run the same command
again and it resumes where it stopped, with the same result as an uninterrupted run on the same
processor, and skips the models it had shipped before the stop (``DIR/<name>.shipped``).

``--threads N`` fits on N CPU threads instead of one: faster by the clock, more CPU seconds in
all, and rounded differently; the record's ``by`` says how many (a resumed run's segments may
differ: the 160,000-step ``gan_fashion`` ran its last segment on two, as its record says).

``--check`` refits every model (minutes for the digit models, hours for the Fashion-MNIST ones) and fails unless each score of the fresh fit lies within
the spread (2 standard deviations of the draws, the course's ``separated`` rule) of the shipped
record: the tool reproduces what ships.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from course_lib import metrics
from course_lib._core import cpu_name
from course_lib.gan import GAN
from course_lib.training import SHIPPED_MODELS, shipped_records, shipped_training_data
from course_lib.vae import VAE

#: name -> (class, data: labels? dequantised? which data set?, hyperparameters other than the
#: defaults); every model is seed 0. The N(0, I)-prior VAE is Chapter 6's counterpoint to the
#: learned prior. The Fashion-MNIST models (Chapter 8) are the convolutional networks of
#: course_lib.convnets with the recipe that the 8×8 chapters chose (GAN: the R1 penalty, EMA
#: 0.999, β₂ 0.99, lr 1e-3 on a cosine, the conv row of benchmarks/gan_digits.py; VAE: the
#: VampPrior and early stopping on a validation split), sized for one CPU core: batches of 64,
#: a 32-dimensional latent for the GAN; rejection sampling off (images are sampled raw by
#: default, and its refinement would cost half as much again). The GANs' R1 weight is γ = 10,
#: not the digits' 1: at 3,000 steps γ = 0.1, 1, 3, 10 gave FID 198, 114, 91, 84. A second
#: screen (another machine, its own reference run) kept the recipe: γ = 30 within the spread of
#: γ = 10; batches of 128 better per step at twice the CPU, but 6,000 steps of 64 better still;
#: a latent of 8 ahead at 3,000 steps, within the spread at 6,000, with a lower recall. Their
#: budget: the conditional GAN's 40,000 steps match the VAEs' CPU time (about an hour of one
#: core each) and its FID had levelled off by 20,000 (a separate run within the spread). The
#: unconditional GAN ships at 160,000 steps (set in MODELS), where its FID has levelled off:
#: separate runs of 3,000, 6,000, 12,000, 24,000 and 40,000 steps gave FID 84, 46, 31, 18.5 and
#: 13.6, a third or more less per doubling; 80,000 steps (two threads) 10.7, a fifth less;
#: 160,000 steps 9.5, within the spread (benchmarks/fashion_gan_screen.py, results in
#: benchmarks/results/fashion_gan_screen_cpu.txt). The VAEs
#: run at most 40 epochs (patience 5); they ran all 40, still gaining about 0.001 bits/px per
#: epoch at the end. The VAE's FID had levelled off by then: one 80-epoch run scored after 40
#: and 80 epochs gave 21.3 and 18.6, within the spread (benchmarks/fashion_vae_ladder.py).
FASHION_GAN = {"architecture": "conv", "hidden": 16, "latent_dim": 32, "ema": 0.999,
               "beta2": 0.99, "lr": 1e-3, "r1": 10.0, "batch_size": 64, "n_steps": 40000,
               "rejection": False, "snapshots": 8}
FASHION_VAE = {"architecture": "conv", "hidden": (16,), "n_levels": 256, "lr": 1e-3,
               "epochs": 40, "n_iter_no_change": 5}
DIGITS, FASHION = "digits", "fashion"
MODELS = {
    "gan_digits": (GAN, {"labels": False, "dequantize": False}, {}),
    "cgan_digits": (GAN, {"labels": True, "dequantize": False}, {}),
    "vae_digits": (VAE, {"labels": False, "dequantize": True}, {}),
    "cvae_digits": (VAE, {"labels": True, "dequantize": True}, {}),
    "vae_digits_normal_prior": (VAE, {"labels": False, "dequantize": True},
                                {"prior": "gaussian"}),
    "gan_fashion": (GAN, {"labels": False, "dequantize": False, "dataset": FASHION},
                    {**FASHION_GAN, "n_steps": 160000}),
    "cgan_fashion": (GAN, {"labels": True, "dequantize": False, "dataset": FASHION},
                     FASHION_GAN),
    "vae_fashion": (VAE, {"labels": False, "dequantize": False, "dataset": FASHION},
                    FASHION_VAE),
    "cvae_fashion": (VAE, {"labels": True, "dequantize": False, "dataset": FASHION},
                     {**FASHION_VAE, "conditional_prior": True}),
}
SEED = 0
NOISE_SEED = 0  # the dequantisation noise of the training data
TEST_NOISE_SEED = 1  # and of the test data: independent of the training noise
SCORES = ("fid", "kid", "precision", "recall", "classes")



def fit(name: str, checkpoint=None, **changes):
    """Fit ``name``'s recipe (with ``changes`` to its hyperparameters, for a benchmark that
    varies one of them); returns the model and its record, CPU seconds included.

    ``checkpoint``: a file where the fit keeps its run as it goes (``fit(..., checkpoint=)``):
    a run that stopped (a session's end, a crash) goes on from it when the same command runs
    again, to the same model. The record's CPU and wall seconds then add up every segment, and
    ``segments`` says how many there were."""
    cls, spec, overrides = MODELS[name]
    model = cls(**{**overrides, **changes}, random_state=SEED, device="cpu", progress=False)
    params = {k: v for k, v in model.get_params(deep=False).items()
              if k not in ("device", "progress")}
    record = {"class": cls.__name__, "params": params,
              "data": {"split": "train", "labels": spec["labels"],
                       "dequantize": spec["dequantize"], "noise_seed": NOISE_SEED,
                       "dataset": spec.get("dataset", DIGITS)}}
    X, y = shipped_training_data(record)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, y, **({} if checkpoint is None else {"checkpoint": checkpoint}))
    earlier = getattr(model, "resumed_", None) or {"cpu_s": 0.0, "wall_s": 0.0, "segments": 0}
    record["fit_wall_s"] = round(time.perf_counter() - t0 + earlier["wall_s"], 1)
    record["fit_cpu_s"] = round(time.process_time() - c0 + earlier["cpu_s"], 1)
    if earlier["segments"]:  # a resumed run: how many segments, on which processors
        record["segments"] = earlier["segments"] + 1
        record["segment_cpus"] = [*earlier["machines"], cpu_name()]
    return model, record


#: Fashion-MNIST: held-out bits per pixel (IWAE, k draws) on the first images of the test set;
#: the benchmark benchmarks/fashion_models.py scores its GMM and independent pixels on the same.
FASHION_BPP_IMAGES, FASHION_BPP_K = 2000, 20


def _test_data(dataset: str):
    """The held-out images and labels of ``dataset`` that a VAE's bits per pixel are scored on,
    and their pixels and grey levels."""
    if dataset == FASHION:
        from course_lib.data import load_fashion_mnist

        X, y = load_fashion_mnist("test", verbose=False)
        return X[:FASHION_BPP_IMAGES], y[:FASHION_BPP_IMAGES], 784, 256, FASHION_BPP_K
    from course_lib.data import load_digits

    X, y = load_digits("test", dequantize=True, seed=TEST_NOISE_SEED)
    return X, y, 64, 17, 1000


def scores(model, record: dict) -> dict:
    out = {}
    dataset = record["data"].get("dataset", DIGITS)
    ev = metrics.evaluate(lambda n, s: model.sample(n, seed=s), name="shipped", device="cpu",
                          dataset=dataset)
    for k in SCORES:
        out[k] = [round(ev.mean(k), 4), round(ev.std(k), 4)]
    if record["data"]["labels"]:
        labels = np.arange(2000) % 10
        images = model.sample(2000, labels=labels, seed=123)
        predicted = (metrics.predict_fashion(images, device="cpu") if dataset == FASHION
                     else metrics.predict_digits(images, device="cpu"))
        out["class_accuracy"] = round(float((predicted == labels).mean()), 4)
    if record["class"] == "VAE":
        Xte, yte, n_pixels, n_levels, k = _test_data(dataset)
        # log p(x) (a conditional model sums over the labels), k importance samples
        out["test_bits_per_pixel"] = round(metrics.bits_per_pixel(
            model.score_samples(Xte, k=k, seed=0), n_pixels, n_levels), 4)
        if record["data"]["labels"]:  # and log p(x | y), given the test labels
            out["test_bits_per_pixel_given_label"] = round(metrics.bits_per_pixel(
                model.score_samples(Xte, labels=yte, k=k, seed=0), n_pixels, n_levels), 4)
    return out


def curve(model, record: dict) -> list:
    """The learning curve of a Fashion-MNIST model against compute, for Chapter 8's
    quality-against-compute figure: for a GAN, the FID of each snapshot (500 samples from
    fixed latents, against the protocol's 2,000 test images: biased upwards by the small
    sample, comparable between snapshots); for a VAE, the validation ELBO of each epoch in
    bits per pixel (an upper bound). The CPU seconds of each point are the fit's, prorated
    by steps or epochs (each step costs the same)."""
    cpu = record["fit_cpu_s"]
    if record["class"] == "GAN":
        from course_lib.data import load_fashion_mnist

        real = load_fashion_mnist("test", verbose=False)[0][:metrics.FASHION_EVAL_SIZE]
        features = metrics.fashion_features(real, device="cpu")
        n = record["params"]["n_steps"]
        return [[t, round(cpu * t / n, 1),  # t: steps done when the snapshot was taken
                 round(metrics.fid(features, metrics.fashion_features(x, device="cpu")), 2)]
                for t, x in model.snapshots_]
    n = model.n_epochs_
    return [[e + 1, round(cpu * (e + 1) / n, 1), round(validation_bpp(v), 4)]
            for e, v in enumerate(model.history_["val_elbo"])]


def validation_bpp(nats: float) -> float:
    """A Fashion VAE's validation ELBO, in nats per image, as bits per pixel of the 256-level
    images (an upper bound on the negative log-likelihood): 8 bits less what the ELBO gains
    over a uniform density on [0, 1]^784."""
    return float(8 - nats / (784 * np.log(2)))


def threads_note(threads: int) -> str:
    """How a record's ``by`` names the CPU threads of the fit."""
    return "one CPU thread" if threads == 1 else f"{threads} CPU threads"


def ship(name: str, checkpoint_dir=None, threads: int = 1) -> dict:
    torch.set_num_threads(threads)
    checkpoint = None if checkpoint_dir is None else Path(checkpoint_dir) / f"{name}.run.pt"
    model, record = fit(name, checkpoint)
    SHIPPED_MODELS.mkdir(parents=True, exist_ok=True)
    path = SHIPPED_MODELS / f"{name}.pt"
    model.save(path)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    path.with_name(path.name + ".sha256").write_text(digest + "\n")
    sample = np.asarray(model.sample(500, seed=0), dtype=np.float64)
    record.update({
        "file": path.name, "sha256": digest, "input_shape": list(sample.shape[1:]),
        "sanity": {"seed": 0, "mean_image": [round(v, 5) for v in sample.mean(0).ravel()],
                   "tolerance": 0.1},
        "made": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "by": "tools/ship_models.py (the class's defaults"
              + (f" with {MODELS[name][2]}" if MODELS[name][2] else "")
              + f", random_state 0, {threads_note(threads)})",
        "torch": torch.__version__, "python": platform.python_version(), "cpu": cpu_name(),
    })
    record["scores"] = scores(model, record)
    if record["data"]["dataset"] == FASHION:
        record["curve"] = curve(model, record)
    return record


#: A refit's bits per pixel may differ from the record's by this much (the IWAE estimate's
#: Monte Carlo error on the test digits is about 0.0005 bits/px; a refit on another CPU differs
#: in rounding only).
BPP_TOLERANCE = 0.01


def compare(name: str) -> list[tuple[str, float, float, bool]]:
    """Refit ``name`` with this tool's code and compare each score with the shipped record:
    (score, shipped, refit, within the spread) for the protocol's scores (the course's
    ``separated`` rule: 2 combined standard deviations) and the bits per pixel."""
    torch.set_num_threads(1)
    model, record = fit(name)
    fresh, shipped = scores(model, record), shipped_records()[name]["scores"]
    rows = []
    for k in SCORES:
        (m1, s1), (m2, s2) = fresh[k], shipped[k]
        rows.append((k, m2, m1, abs(m1 - m2) <= 2 * float(np.hypot(s1, s2)) + 1e-9))
    for k in shipped:
        if k.startswith("test_bits") or k == "class_accuracy":
            tol = BPP_TOLERANCE if k.startswith("test_bits") else 0.02
            rows.append((k, shipped[k], fresh[k], abs(fresh[k] - shipped[k]) <= tol))
    return rows


def check(names) -> int:
    """Refit each model and compare its scores with the shipped record."""
    failed = 0
    for name in names:
        for k, shipped, refit, ok in compare(name):
            failed += not ok
            print(f"{name:24s} {k:32s} shipped {shipped:9.4f}  refit {refit:9.4f}"
                  f"  {'ok' if ok else 'DIFFERENT'}")
    return 1 if failed else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help=f"some of {list(MODELS)} (default: all)")
    parser.add_argument("--check", action="store_true")
    parser.add_argument("--checkpoint-dir", metavar="DIR",
                        help="keep each fit's run in DIR/<name>.run.pt as it goes; the same "
                             "command goes on from there after a stop")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads of the fits (default 1; the record says how many)")
    args = parser.parse_args(argv)
    if args.threads < 1:
        parser.error(f"--threads must be >= 1, got {args.threads}")
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    names = args.names or list(MODELS)
    if args.check:
        return check(names)
    runs = None if args.checkpoint_dir is None else Path(args.checkpoint_dir)
    for name in names:
        if runs is not None and _shipped_in_this_run(runs, name):
            print(f"{name}: shipped before this command stopped; skipped", flush=True)
            continue
        record = ship(name, runs, threads=args.threads)
        print(name, json.dumps(record["scores"]), f"{record['fit_cpu_s']} CPU s", flush=True)
        records = shipped_records()  # read again: another run of this tool may have written it
        records[name] = record
        (SHIPPED_MODELS / "models.json").write_text(json.dumps(records, indent=1) + "\n")
        if runs is not None:  # a stop during the next model does not train this one again
            (runs / f"{name}.shipped").write_text(record["sha256"] + "\n")
    if runs is not None:  # every model is shipped: the next command starts afresh
        for name in names:
            (runs / f"{name}.shipped").unlink(missing_ok=True)
    return 0


def _shipped_in_this_run(runs: Path, name: str) -> bool:
    """Whether an earlier, stopped run of the same command shipped ``name`` already: its marker
    in the checkpoint folder names the file that models.json still records."""
    marker = runs / f"{name}.shipped"
    record = shipped_records().get(name, {})
    return marker.is_file() and marker.read_text().strip() == record.get("sha256")


if __name__ == "__main__":
    sys.exit(main())
