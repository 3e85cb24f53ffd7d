"""Train a feature network and write the weights that ship with the package.

    .venv/bin/python tools/ship_classifier.py                    # the digit classifier
    .venv/bin/python tools/ship_classifier.py --dataset fashion  # the Fashion-MNIST network

Writes ``course_lib/assets/<stem>_<version>_<config hash>.pt`` (``torch.save`` of the state
dict), its SHA-256 beside it, and ``<stem>.json``: how, where and with what it was made and the
accuracies it reaches (``digit_cnn``: ``DigitCNN``, ``_CLASSIFIER_CONFIG`` in
``course_lib/metrics/features.py``; ``fashion_cnn``: ``FashionCNN``, ``_FASHION_CONFIG`` in
``course_lib/metrics/fashion.py``). Run it after changing a configuration or an architecture,
and commit the new files (it deletes the old ones): every FID, KID, precision and recall in the
book is computed with these features, so the book changes with them. The Fashion-MNIST network
is trained on the full training set only (Debian's ``dataset-fashion-mnist``), never on the
shipped subset.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from course_lib._core import cpu_name, save_verified
from course_lib.data import load_fashion_mnist
from course_lib.metrics import fashion, features

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Shipped:
    """What the tool needs of one feature network."""

    stem: str  # file names: <stem>_<version>_<hash>.pt and <stem>.json
    network: object  # () -> features._Network
    config: dict
    by: str
    accuracy: object  # (split) -> accuracy of the shipped network on that split
    data: object  # () -> a line saying which training data were used, or SystemExit


def _fashion_data() -> str:
    """Where the training images came from; the full training set or an error."""
    _, _, source = load_fashion_mnist("train", verbose=False, return_source=True)
    if source.is_subset:
        raise SystemExit(f"{source}: the shipped network is trained on the full training set")
    return str(source)


NETWORKS = {
    "digits": Shipped(
        "digit_cnn", features._digit_network, features._CLASSIFIER_CONFIG,
        "course_lib.metrics.features._train_classifier",
        lambda split: features.classifier_accuracy(split, device="cpu"),
        lambda: "course_lib.data.load_digits('train')"),
    "fashion": Shipped(
        "fashion_cnn", fashion._fashion_network, fashion._FASHION_CONFIG,
        "course_lib.metrics.fashion._train_fashion",
        lambda split: fashion.fashion_classifier_accuracy(split, device="cpu"),
        _fashion_data),
}


def ship(spec: Shipped) -> dict:
    """Train the network, check it, write its files; return its record."""
    net = spec.network()
    data = spec.data()
    start = time.process_time()
    model = net.train()
    cpu_seconds = time.process_time() - start
    why = net.problem(model)
    if why is not None:
        raise SystemExit(f"the trained {net.label} fails its sanity check: {why}")
    path = features._ASSETS / net.file_name
    for old in path.parent.glob(f"{spec.stem}_*.pt*"):
        if old.name not in (path.name, path.name + ".sha256"):
            old.unlink()
    save_verified(model.state_dict(), path)  # the weights and <file>.sha256, never via a symlink
    net.memo.clear()
    return {
        "file": path.name,
        "sha256": features._file_digest(path),
        "config": spec.config,
        "made": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "by": f"tools/ship_classifier.py ({spec.by}, one CPU thread)",
        "data": data,
        "cpu_seconds": round(cpu_seconds, 1),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "accuracy": {split: round(spec.accuracy(split), 4) for split in ("train", "test")},
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=sorted(NETWORKS), default="digits",
                        help="which feature network to train and ship (default: digits)")
    spec = NETWORKS[parser.parse_args(argv).dataset]
    info = ship(spec)
    (features._ASSETS / f"{spec.stem}.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
