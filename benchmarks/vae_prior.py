"""Screening: priors, early stopping and regularisation of the VAE on the 8×8 digits.

The unconditional VAE with the old defaults (standard normal prior, 100 epochs, no validation
split) overfits the 1,438 training digits, and its samples fall into the holes between the
prior N(0, I) and the aggregate posterior. This script fits one VAE per (setting, seed) on the
dequantised train split and prints one line per run:

  setting, seed, epochs run (best epoch), held-out bits/px (IWAE k = 1000 on the 359 test
  digits, dequantised with one fixed noise seed, independent of the training noise), train
  bits/px (IWAE k = 1000 on 359 fixed training digits), FID mean ± std, recall mean ± std and
  classes covered (metrics.evaluate: 10 draws of 359 samples, decoder mean, vs the test split),
  the fit's wall-clock and CPU seconds.

Every setting is a dict of VAE hyperparameters (SETTINGS below, described in the saved header);
``expost`` settings sample z from a diagonal Gaussian mixture fitted after training to draws of
the aggregate posterior (Ghosh et al. 2020), the likelihood keeping the model's own prior.

Usage:  python benchmarks/vae_prior.py [--settings a,b,...] [--seeds 0,1,2] [--save FILE]
        [--curve SETTING] [--conditional]
  --save FILE   append the lines (with a header) to FILE (e.g. benchmarks/results/vae_prior_cpu.txt)
  --curve S     also print, per epoch, the train and validation ELBO of setting S (seed: first
                of --seeds) in bits per pixel: the learning curve of ``history_``
  --conditional fit(X, y): the conditional VAE (held-out bits/px with the test labels, samples
                of the classes in turn)
Run it with one thread (OMP_NUM_THREADS=1): the table's times are for one thread.
"""

from __future__ import annotations

import argparse
import os
import platform
import time

import numpy as np
import torch

from course_lib import metrics
from course_lib.data import load_digits
from course_lib.gmm import GaussianMixture
from course_lib.vae import VAE

D = 64
#: Seed of the test split's dequantisation noise (the training data use load_digits' seed 0).
TEST_NOISE_SEED = 12345
#: The old defaults of VAE(), pinned so that the settings below keep their meaning whatever
#: VAE()'s defaults are: each setting names every hyperparameter it changes from these.
OLD = dict(prior="gaussian", n_components=10, epochs=100, batch_size=256, lr=3e-3,
           hidden=(512,), latent_dim=16, validation_fraction=0.0, n_iter_no_change=20,
           ema=0.0, dropout=0.0, weight_decay=0.0, kl_warmup=0, train_samples=1)
ES = dict(OLD, epochs=1000, validation_fraction=0.1, n_iter_no_change=20)
#: name -> (description, VAE hyperparameters, ex-post mixture components or 0)
SETTINGS = {
    "old": ("old defaults: N(0, I) prior, 100 epochs, no validation split",
            dict(OLD), 0),
    "old400": ("old defaults, 400 epochs",
               dict(OLD, epochs=400), 0),
    "es": ("N(0, I) prior, early stopping (10% validation, patience 20, at most 1000 epochs)",
           dict(ES), 0),
    "es_expost20": ("es, then z sampled from a 20-component diagonal GMM fitted to 20 draws "
                    "of q(z|x) per training digit (ex-post density)", dict(ES), 20),
    "mog10": ("es + learned mixture prior, 10 components", dict(ES, prior="mixture"), 0),
    "mog50": ("es + learned mixture prior, 50 components",
              dict(ES, prior="mixture", n_components=50), 0),
    "vamp50": ("es + VampPrior, 50 pseudo-inputs", dict(ES, prior="vamp", n_components=50), 0),
    "vamp200": ("es + VampPrior, 200 pseudo-inputs", dict(ES, prior="vamp", n_components=200),
                0),
}


#: modifiers appended to a base setting's name with "_" (e.g. "vamp50_b64_lr1"): name ->
#: (description, hyperparameters that replace the base's)
MODIFIERS = {
    "h1024": ("hidden (1024,)", dict(hidden=(1024,))),
    "h256": ("hidden (256,)", dict(hidden=(256,))),
    "h128": ("hidden (128,)", dict(hidden=(128,))),
    "h512x2": ("hidden (512, 512)", dict(hidden=(512, 512))),
    "h256x2": ("hidden (256, 256)", dict(hidden=(256, 256))),
    "do1": ("dropout 0.1", dict(dropout=0.1)),
    "do2": ("dropout 0.2", dict(dropout=0.2)),
    "do4": ("dropout 0.4", dict(dropout=0.4)),
    "wd": ("AdamW weight decay 0.1", dict(weight_decay=0.1)),
    "wd1": ("AdamW weight decay 1.0", dict(weight_decay=1.0)),
    "warm": ("KL warm-up 20 epochs", dict(kl_warmup=20)),
    "lat8": ("latent_dim 8", dict(latent_dim=8)),
    "lat32": ("latent_dim 32", dict(latent_dim=32)),
    "lr1": ("lr 1e-3", dict(lr=1e-3)),
    "lr3e4": ("lr 3e-4", dict(lr=3e-4)),
    "b128": ("batch 128", dict(batch_size=128)),
    "b64": ("batch 64", dict(batch_size=64)),
    "b32": ("batch 32", dict(batch_size=32)),
    "b16": ("batch 16", dict(batch_size=16)),
    "pat10": ("patience 10", dict(n_iter_no_change=10)),
    "pat50": ("patience 50", dict(n_iter_no_change=50)),
    "val05": ("5% validation", dict(validation_fraction=0.05)),
    "val20": ("20% validation", dict(validation_fraction=0.2)),
    "k20": ("20 prior components", dict(n_components=20)),
    "k100": ("100 prior components", dict(n_components=100)),
    "ema99": ("Polyak averaging of the weights, decay 0.99", dict(ema=0.99)),
    "ema995": ("Polyak averaging of the weights, decay 0.995", dict(ema=0.995)),
    "ema999": ("Polyak averaging of the weights, decay 0.999", dict(ema=0.999)),
    "iw5": ("trained on the IWAE bound with k = 5", dict(train_samples=5)),
    "iw10": ("trained on the IWAE bound with k = 10", dict(train_samples=10)),
}


def resolve(name):
    """(description, hyperparameters, ex-post components) of a setting: a base of SETTINGS
    followed by "_"-separated MODIFIERS."""
    if name in SETTINGS:
        return SETTINGS[name]
    if name == "default":
        return ("VAE() with course_lib's current defaults", dict(), 0)
    parts = name.split("_")
    for cut in range(len(parts) - 1, 0, -1):  # the longest known base
        base, mods = "_".join(parts[:cut]), parts[cut:]
        if base in SETTINGS or base == "default":
            break
    else:
        raise KeyError(name)
    desc, kw, n_expost = resolve(base)
    kw = dict(kw)
    for m in mods:
        if m not in MODIFIERS:
            raise KeyError(name)
        desc = f"{desc} + {MODIFIERS[m][0]}"
        kw.update(MODIFIERS[m][1] or {})
    return desc, kw, n_expost


def _changes(kw, name):
    """A setting's hyperparameters as the changes from OLD (or VAE()'s defaults)."""
    if name.split("_")[0] == "default":
        return f"VAE({', '.join(f'{k}={v!r}' for k, v in kw.items())})"
    diff = {k: v for k, v in kw.items() if OLD.get(k) != v}
    return "OLD + " + (", ".join(f"{k}={v!r}" for k, v in diff.items()) or "nothing")


def bits(ll):
    return metrics.bits_per_pixel(ll, D)


def expost_sampler(model, X, n_components, seed):
    """Decoder means at z from a diagonal GMM fitted to 20 draws of q(z | x) per training digit."""
    mean, log_var = model.encode(X, return_log_var=True)
    rng = np.random.default_rng(seed)
    z = (mean[None] + np.exp(0.5 * log_var)[None] * rng.standard_normal((20, *mean.shape)))
    gmm = GaussianMixture(n_components, covariance_type="diag", random_state=seed,
                          device="cpu").fit(z.reshape(-1, mean.shape[1]).astype(np.float64))

    def sampler(n, s):
        Z = gmm.sample(n, seed=s)
        Z = Z[0] if isinstance(Z, tuple) else Z
        return model.decode(np.asarray(Z, dtype=np.float32))
    return sampler


def run(name, seed, data, conditional=False):
    Xtr, ytr, Xte, yte, Xtr_sub, ytr_sub = data
    _, kw, n_expost = resolve(name)
    model = VAE(random_state=seed, device="cpu", progress=False, **kw)
    t0, c0 = time.perf_counter(), time.process_time()
    model.fit(Xtr, ytr if conditional else None)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    lab_te = yte if conditional else None
    lab_tr = ytr_sub if conditional else None
    held = bits(model.log_likelihood(Xte, 1000, labels=lab_te, seed=0))
    train = bits(model.log_likelihood(Xtr_sub, 1000, labels=lab_tr, seed=0))
    if n_expost:
        sampler = expost_sampler(model, Xtr, n_expost, seed)
    else:
        def sampler(n, s):
            return model.sample(n, seed=s)
    ev = metrics.evaluate(sampler, name=name, device="cpu")
    line = (f"{name + (' (cond)' if conditional else ''):>18} {seed:>4} "
            f"{model.n_epochs_:>5} ({model.best_epoch_:>4}) {held:>8.3f} {train:>8.3f} "
            f"{ev.format('fid'):>12} {ev.format('recall'):>14} {ev.format('classes'):>11} "
            f"{wall:>7.1f} {cpu:>7.1f}")
    return line, model


HEAD = (f"{'setting':>18} {'seed':>4} {'epochs (best)':>12} {'test bpp':>8} {'train bpp':>8} "
        f"{'FID':>12} {'recall':>14} {'classes':>11} {'wall s':>7} {'CPU s':>7}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--settings", default="old,es,mog10,vamp50")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--save", default=None)
    parser.add_argument("--curve", default=None)
    parser.add_argument("--conditional", action="store_true")
    parser.add_argument("--list", action="store_true", help="print the settings and exit")
    args = parser.parse_args(argv)
    if args.list:
        for k, (d, kw, _e) in SETTINGS.items():
            print(f"{k:>16}: {d}; {kw}")
        for k, (d, kw) in MODIFIERS.items():
            print(f"{'_' + k:>16}: + {d}; {kw}")
        return 0
    names = [s for s in args.settings.split(",") if s]
    for n in names + ([args.curve] if args.curve else []):
        try:
            resolve(n)
        except KeyError:
            parser.error(f"unknown setting {n!r}; --list shows them")
    seeds = [int(s) for s in args.seeds.split(",")]
    torch.set_num_threads(1)
    Xtr, ytr = load_digits("train", dequantize=True)
    Xte, yte = load_digits("test", dequantize=True, seed=TEST_NOISE_SEED)
    sub = np.random.default_rng(0).choice(len(Xtr), len(Xte), replace=False)
    data = (Xtr, ytr, Xte, yte, Xtr[sub], ytr[sub])
    header = [
        f"# VAE priors / early stopping / regularisation screening "
        f"({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())})",
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} cores shared with "
        f"other jobs; torch {torch.__version__}, {torch.get_num_threads()} thread; device cpu; "
        f"load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}",
        "# train: 1,438 digits dequantised (seed 0); held-out: 359 test digits dequantised "
        f"(seed {TEST_NOISE_SEED}), IWAE k = 1000 (seed 0); train bpp: IWAE k = 1000 on 359 "
        "fixed training digits; FID/recall/classes: metrics.evaluate (10 draws of 359 decoder "
        "means vs the test split), mean ± std",
        f"#   OLD = {OLD} (the old VAE() defaults; 'default' below is VAE() as it is now)",
        *(f"#   {n}: {resolve(n)[0]}; {_changes(resolve(n)[1], n)}" for n in names),
        HEAD,
    ]
    print("\n".join(header), flush=True)
    lines = []
    for name in names:
        for seed in seeds:
            line, _ = run(name, seed, data, args.conditional)
            lines.append(line)
            print(line, flush=True)
    curve = []
    if args.curve:
        line, model = run(args.curve, seeds[0], data, args.conditional)
        h = model.history_
        curve = [f"# learning curve of {args.curve}, seed {seeds[0]}: per epoch, bits/px of the "
                 "mean training-minibatch ELBO (the weights being trained) and of the validation ELBO "
                 "(one draw, fixed noise; the averaged weights when ema > 0)",
                 f"#   {line.strip()}",
                 f"{'epoch':>6} {'train ELBO bpp':>15} {'val ELBO bpp':>13}"]
        for i, (t, v) in enumerate(zip(h["train_elbo"], h.get("val_elbo", h["train_elbo"]))):
            curve.append(f"{i + 1:>6} {bits(np.array([t])):>15.4f} {bits(np.array([v])):>13.4f}")
        print("\n".join(curve), flush=True)
    if args.save:
        with open(args.save, "a") as f:
            f.write("\n".join(header + lines + curve) + "\n\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
