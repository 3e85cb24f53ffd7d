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

``--check`` refits every model (minutes) and fails unless each score of the fresh fit lies within
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

import numpy as np
import torch

from course_lib import metrics
from course_lib._core import cpu_name
from course_lib.gan import GAN
from course_lib.training import SHIPPED_MODELS, shipped_records, shipped_training_data
from course_lib.vae import VAE

#: name -> (class, data: labels? dequantised?, hyperparameters other than the defaults); every
#: model is seed 0. The N(0, I)-prior VAE is Chapter 6's counterpoint to the learned prior.
MODELS = {
    "gan_digits": (GAN, {"labels": False, "dequantize": False}, {}),
    "cgan_digits": (GAN, {"labels": True, "dequantize": False}, {}),
    "vae_digits": (VAE, {"labels": False, "dequantize": True}, {}),
    "cvae_digits": (VAE, {"labels": True, "dequantize": True}, {}),
    "vae_digits_normal_prior": (VAE, {"labels": False, "dequantize": True},
                                {"prior": "gaussian"}),
}
SEED = 0
NOISE_SEED = 0  # the dequantisation noise of the training data
TEST_NOISE_SEED = 1  # and of the test data: independent of the training noise
SCORES = ("fid", "kid", "precision", "recall", "classes")



def fit(name: str):
    cls, spec, overrides = MODELS[name]
    model = cls(**overrides, random_state=SEED, device="cpu", progress=False)
    params = {k: v for k, v in model.get_params(deep=False).items()
              if k not in ("device", "progress")}
    record = {"class": cls.__name__, "params": params,
              "data": {"split": "train", "labels": spec["labels"],
                       "dequantize": spec["dequantize"], "noise_seed": NOISE_SEED}}
    X, y = shipped_training_data(record)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(X, y)
    record["fit_wall_s"] = round(time.perf_counter() - t0, 1)
    record["fit_cpu_s"] = round(time.process_time() - c0, 1)
    return model, record


def scores(model, record: dict) -> dict:
    out = {}
    ev = metrics.evaluate(lambda n, s: model.sample(n, seed=s), name="shipped", device="cpu")
    for k in SCORES:
        out[k] = [round(ev.mean(k), 4), round(ev.std(k), 4)]
    if record["data"]["labels"]:
        labels = np.arange(2000) % 10
        out["class_accuracy"] = round(metrics.class_accuracy(
            model.sample(2000, labels=labels, seed=123), labels, device="cpu"), 4)
    if record["class"] == "VAE":
        from course_lib.data import load_digits

        Xte, yte = load_digits("test", dequantize=True, seed=TEST_NOISE_SEED)
        # log p(x) (a conditional model sums over the labels), k = 1000 importance samples
        out["test_bits_per_pixel"] = round(metrics.bits_per_pixel(
            model.score_samples(Xte, k=1000, seed=0), 64), 4)
        if record["data"]["labels"]:  # and log p(x | y), given the test labels
            out["test_bits_per_pixel_given_label"] = round(metrics.bits_per_pixel(
                model.score_samples(Xte, labels=yte, k=1000, seed=0), 64), 4)
    return out


def ship(name: str) -> dict:
    torch.set_num_threads(1)
    model, record = fit(name)
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
              + ", random_state 0, one CPU thread)",
        "torch": torch.__version__, "python": platform.python_version(), "cpu": cpu_name(),
    })
    record["scores"] = scores(model, record)
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
    args = parser.parse_args(argv)
    unknown = [n for n in args.names if n not in MODELS]
    if unknown:
        parser.error(f"unknown models {unknown}; choose from {list(MODELS)}")
    names = args.names or list(MODELS)
    if args.check:
        return check(names)
    records = shipped_records()
    for name in names:
        records[name] = ship(name)
        print(name, json.dumps(records[name]["scores"]), f"{records[name]['fit_cpu_s']} CPU s",
              flush=True)
        (SHIPPED_MODELS / "models.json").write_text(json.dumps(records, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
