"""The conv VAE's sample quality against its training epochs on Fashion-MNIST (Chapter 8).

The shipped VAE (``tools/ship_models.py``'s ``vae_fashion``) ran its 40 epochs without early
stopping: its validation likelihood was still improving, by 0.0013 bits per pixel per epoch at
the end, and the benchmark recorded that likelihood after every epoch, but not the FID. This
script measures the FID's learning curve. It trains the shipped recipe once for up to
``--epochs`` epochs (early stopping on, patience as shipped) and scores, with the protocol
(5 draws of 2,000 samples against 2,000 test images) and the held-out bits per pixel (IWAE,
k = 20, the first 2,000 test images), the weights that a run stopped after each rung's epochs
would have returned: the best-on-validation weights so far. The VAE's learning rate is
constant (Adam, no schedule) and its data order is drawn from the seed, so the first E epochs
of this run *are* an E-epoch run: one run gives the whole ladder (unlike the GAN's, whose
cosine schedule depends on its length).

Usage:  python benchmarks/fashion_vae_ladder.py [--models vae_fashion] [--epochs 80]
            [--rungs 5 10 20 40 60 80] [--threads 1] [--save] [--checkpoint-dir DIR]
--save appends the lines to benchmarks/results/fashion_vae_ladder_cpu.txt, each rung's line as
soon as it is scored, and skips a model that already has rows there (delete them to run it
again). The CPU seconds of a rung are the fit's, prorated by epochs. ``--checkpoint-dir DIR``
keeps the run in DIR as it goes (``VAE.fit(checkpoint=)``, and the rungs' weights): a run of
hours that stops goes on from there when the same command runs again, to the same rungs.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "tools"), str(HERE)]  # ship_models, results_file
import results_file  # noqa: E402  (this folder's: reads the results file's table)
import ship_models  # noqa: E402  (the shipped recipe, its data and its scores)

import course_lib.vae.model as vae_model  # noqa: E402
from course_lib._core import cpu_name  # noqa: E402
from course_lib.training import save_atomically  # noqa: E402
from course_lib.vae.train import EarlyStopping  # noqa: E402

RESULTS = HERE / "results" / "fashion_vae_ladder_cpu.txt"
MODELS = ("vae_fashion", "cvae_fashion")
HEADER = ("model          epoch  val bpp           fid            kid      precision"
          "         recall   classes  test bpp   fit CPU s")


class _Recording(EarlyStopping):
    """Early stopping as :meth:`VAE.fit` does it, that also remembers after every epoch the
    weights a run stopped there would return (the best so far, and its epoch). With a
    ``store`` file it also writes the rungs' entries there as they pass, so that a run that
    stops and goes on (``--checkpoint-dir``) still has the rungs it passed before the stop."""

    by_epoch: dict = {}
    rungs: set = set()
    store: Path | None = None

    def update(self, v, kept) -> bool:
        stop = super().update(v, kept)
        # best_state is a fresh copy whenever it changes: keeping the reference costs nothing
        _Recording.by_epoch[self.n_epochs] = (self.best_state, self.best_at)
        if _Recording.store is not None and self.n_epochs in _Recording.rungs:
            _write_store(_Recording.store, _Recording.rungs, _Recording.by_epoch)
        return stop


def _write_store(store: Path, rungs, by_epoch: dict) -> None:
    """Keep in ``store`` the run's ``rungs`` and the entries of those it has passed."""
    save_atomically({"rungs": sorted(rungs),
                     "passed": {str(e): {"best_at": b, "nets": {str(i): sd for i, sd in enumerate(st)}}
                                for e, (st, b) in by_epoch.items() if e in rungs}}, store)


def _stored_rungs(store: Path, rungs) -> dict:
    """The rungs that an earlier segment of the run wrote to ``store`` (none without it). A
    segment that asks for other ``rungs`` is refused: a rung it adds may have passed already."""
    if not store.exists():
        return {}
    saved = torch.load(store, map_location="cpu", weights_only=True)
    if saved["rungs"] != sorted(rungs):
        raise SystemExit(f"the stopped run in {store.parent} records the rungs "
                         f"{' '.join(map(str, saved['rungs']))}, not {' '.join(map(str, sorted(rungs)))}: "
                         f"go on with --rungs {' '.join(map(str, saved['rungs']))}, or delete "
                         f"{store.name} and the run's .run.pt to start again")
    return {int(e): (tuple(r["nets"][str(i)] for i in range(len(r["nets"]))), int(r["best_at"]))
            for e, r in saved["passed"].items()}


@contextlib.contextmanager
def _recording(store: Path | None = None, rungs=()):
    """Within: ``VAE.fit`` uses :class:`_Recording`; yields its per-epoch record (with the
    ``rungs`` an earlier segment wrote to ``store``, which must have asked for the same rungs;
    a new ``store`` records them at once)."""
    _Recording.by_epoch = {} if store is None else _stored_rungs(store, rungs)
    if store is not None and not store.exists():
        _write_store(store, rungs, {})
    _Recording.rungs, _Recording.store = set(rungs), store
    vae_model.EarlyStopping = _Recording
    try:
        yield _Recording.by_epoch
    finally:
        vae_model.EarlyStopping = EarlyStopping
        _Recording.store = None


def ladder(name: str, epochs: int, rungs, emit=print, checkpoint_dir: Path | None = None) -> None:
    """Train ``name`` once for up to ``epochs`` epochs and ``emit`` a line for the run, then one
    for each rung that it reached, as soon as it is scored. ``checkpoint_dir``: keep the run
    there as it goes (``<name>.run.pt``, and the rungs passed, ``<name>.rungs.pt``); the same
    command then goes on after a stop."""
    run = store = None
    if checkpoint_dir is not None:
        run, store = (Path(checkpoint_dir) / f"{name}.{part}.pt" for part in ("run", "rungs"))
        if not run.exists():  # no stopped run to go on from: rungs left by another are stale
            store.unlink(missing_ok=True)
    with _recording(store, rungs) as by_epoch:
        model, record = ship_models.fit(name, run, epochs=epochs)
    n, cpu = model.n_epochs_, record["fit_cpu_s"]
    emit(f"# {name}: {n} epochs run (best {model.best_epoch_}), {cpu} CPU s")
    for e in sorted({r for r in rungs if r <= n} | {n}):  # and where early stopping ended it
        state, best_at = by_epoch[e]
        for net, sd in zip((model.encoder_, model.decoder_, model.prior_), state):
            net.load_state_dict(sd)
        s = ship_models.scores(model, record)
        f = {k: s[k] for k in ("fid", "kid", "precision", "recall", "classes")}
        val = ship_models.validation_bpp(model.history_["val_elbo"][best_at - 1])
        emit(f"{name:12s} {e:7d}  {val:7.4f}  "
             f"{f['fid'][0]:6.1f} ± {f['fid'][1]:4.1f}  {f['kid'][0]:6.2f} ± {f['kid'][1]:4.2f}"
             f"  {f['precision'][0]:.3f} ± {f['precision'][1]:.3f}  {f['recall'][0]:.3f} ± "
             f"{f['recall'][1]:.3f}  {f['classes'][0]:4.1f}  {s['test_bits_per_pixel']:8.4f}"
             f"  {cpu * e / n:10.1f}")
    if store is not None:
        store.unlink(missing_ok=True)  # every rung is scored: the run is over
    if record.get("segments"):
        emit(f"# {name}: the run stopped and went on from its checkpoint: {record['segments']} "
             f"segments, on {', '.join(record['segment_cpus'])}; its CPU seconds add them up")


def read_rows(path: Path | None = None) -> list[dict]:
    """The rungs in the results file, in file order: one dict per row, with ``model``,
    ``epoch``, ``val_bpp``, ``test_bpp``, ``cpu_s``, ``classes`` and, for each of FID, KID,
    precision and recall, its ``(mean, std)`` over the protocol's draws."""
    out = []
    # RESULTS as it is now (tests redirect it)
    for cells in results_file.table_rows(RESULTS if path is None else path, "model "):
        numbers = [float(c) for c in cells[2:]]  # val bpp, 4 × (mean, std), classes, bpp, CPU s
        row = {"model": cells[0], "epoch": int(cells[1]), "val_bpp": numbers[0],
               "classes": numbers[9], "test_bpp": numbers[10], "cpu_s": numbers[11]}
        row.update({k: (numbers[1 + 2 * i], numbers[2 + 2 * i])
                    for i, k in enumerate(("fid", "kid", "precision", "recall"))})
        out.append(row)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["vae_fashion"], choices=MODELS)
    parser.add_argument("--epochs", type=int, default=80)
    parser.add_argument("--rungs", type=int, nargs="+", default=[5, 10, 20, 40, 60, 80])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--save", action="store_true")
    parser.add_argument("--checkpoint-dir", type=Path, metavar="DIR",
                        help="keep the run in DIR as it goes; the same command goes on from "
                             "there after a stop")
    args = parser.parse_args(argv)
    for flag, value in (("--epochs", args.epochs), ("--threads", args.threads),
                        ("--rungs", min(args.rungs))):
        if value < 1:
            parser.error(f"{flag} must be >= 1, got {value}")
    models = args.models
    if args.save:
        done = {row["model"] for row in read_rows()}
        for name in [m for m in models if m in done]:
            print(f"{name} is already in {RESULTS.name}: skipped (delete its rows to run it again)")
        models = [m for m in models if m not in done]
        if not models:
            return 0
    torch.set_num_threads(args.threads)
    started = time.strftime("%Y-%m-%d %H:%M", time.gmtime())

    def emit(line: str) -> None:  # printed, and with --save appended to the results file
        print(line, flush=True)
        if args.save:
            with RESULTS.open("a", encoding="utf-8") as f:
                f.write(line + "\n")

    emit(f"# {started} UTC, {cpu_name()}, {os.cpu_count()} cores, torch {torch.__version__}, "
         f"{args.threads} thread{'s' if args.threads > 1 else ''}; --models {' '.join(models)} "
         f"--epochs {args.epochs} --rungs {' '.join(map(str, args.rungs))}")
    emit(HEADER)
    for name in models:
        emit(f"# {name}: recipe {({**ship_models.MODELS[name][2], 'epochs': args.epochs})}")
        ladder(name, args.epochs, sorted(set(args.rungs)), emit, args.checkpoint_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
