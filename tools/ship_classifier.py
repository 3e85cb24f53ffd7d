"""Train the digit classifier and write the weights that ship with the package.

    .venv/bin/python tools/ship_classifier.py

Writes ``course_lib/assets/digit_cnn_<version>_<config hash>.pt`` (``torch.save`` of the
state dict), its SHA-256 beside it, and ``digit_cnn.json``: how, where and with what it was made
and the accuracies it reaches. Run it after changing ``_CLASSIFIER_CONFIG`` or ``DigitCNN``
(``course_lib/metrics/features.py``), and commit the new files (delete the old ones): every FID,
KID, precision and recall in the book is computed with these features, so the book changes
with them.
"""

from __future__ import annotations

import argparse
import datetime
import json
import platform
from pathlib import Path

import torch

from course_lib._core import cpu_name, save_verified
from course_lib.metrics import features

ROOT = Path(__file__).resolve().parents[1]



def main(argv=None) -> None:
    argparse.ArgumentParser(description=__doc__.splitlines()[0]).parse_args(argv)
    model = features._train_classifier()
    why = features._classifier_problem(model)
    if why is not None:
        raise SystemExit(f"the trained classifier fails its sanity check: {why}")
    path = features._shipped_classifier_path()
    for old in path.parent.glob("digit_cnn_*.pt*"):
        if old.name not in (path.name, path.name + ".sha256"):
            old.unlink()
    save_verified(model.state_dict(), path)  # the weights and <file>.sha256, never via a symlink
    digest = features._file_digest(path)
    features._CLASSIFIER_MEMO.clear()
    info = {
        "file": path.name,
        "sha256": digest,
        "config": features._CLASSIFIER_CONFIG,
        "made": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "by": "tools/ship_classifier.py (course_lib.metrics.features._train_classifier, one CPU thread)",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "cpu": cpu_name(),
        "accuracy": {split: round(features.classifier_accuracy(split, device="cpu"), 4)
                     for split in ("train", "test")},
    }
    (path.parent / "digit_cnn.json").write_text(json.dumps(info, indent=2) + "\n")
    print(json.dumps(info, indent=2))


if __name__ == "__main__":
    main()
