"""Shipped models (course_lib.training.shipped_model): verified on loading, retrained when not.

These tests ship a tiny model into a temporary assets folder, so that they test the machinery
in seconds; tests/test_generated.py checks the real assets against models.json.
"""

import hashlib
import json
import warnings

import numpy as np
import pytest

from course_lib import training
from course_lib.training import shipped_model, shipped_training_data
from course_lib.vae import VAE

# The retrained model must equal the shipped one bit for bit, which the course promises on the
# CPU only: the whole module runs there.
pytestmark = pytest.mark.cpu_only("a retrained model equals the shipped one bit for bit on the "
                                  "CPU only")

TINY = {"latent_dim": 2, "hidden": [16], "epochs": 1, "batch_size": 256, "random_state": 0}


@pytest.fixture
def assets(tmp_path, monkeypatch):
    """A folder with one shipped tiny VAE (record written as tools/ship_models.py does)."""
    folder = tmp_path / "models"
    folder.mkdir()
    monkeypatch.setattr(training, "SHIPPED_MODELS", folder)
    monkeypatch.setenv("COURSE_CACHE_DIR", str(tmp_path / "cache"))
    record = {"class": "VAE", "params": TINY,
              "data": {"split": "train", "labels": False, "dequantize": True, "noise_seed": 0}}
    X, y = shipped_training_data(record)
    model = VAE(**{**TINY, "hidden": tuple(TINY["hidden"])}, device="cpu", progress=False).fit(X)
    model.save(folder / "tiny.pt")
    sample = model.sample(500, seed=0)
    record.update({"file": "tiny.pt",
                   "sha256": hashlib.sha256((folder / "tiny.pt").read_bytes()).hexdigest(),
                   "input_shape": list(sample.shape[1:]),
                   "sanity": {"seed": 0, "mean_image": sample.mean(0).ravel().tolist(),
                              "tolerance": 0.1}})
    (folder / "models.json").write_text(json.dumps({"tiny": record}))
    return folder, model


def test_a_verified_model_loads_and_samples_as_shipped(assets):
    folder, model = assets
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loaded = shipped_model("tiny", device="cpu")
    np.testing.assert_array_equal(loaded.sample(20, seed=3), model.sample(20, seed=3))


def test_a_damaged_file_is_reported_and_the_model_retrained(assets):
    folder, model = assets
    data = bytearray((folder / "tiny.pt").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (folder / "tiny.pt").write_bytes(bytes(data))
    with pytest.warns(RuntimeWarning, match="checksum does not match"):
        again = shipped_model("tiny", device="cpu")
    # the same record, the same seed: the retrained model is the shipped one, on the CPU
    np.testing.assert_array_equal(again.sample(20, seed=3), model.sample(20, seed=3))


def test_a_model_that_fails_the_sanity_check_is_not_used(assets):
    folder, _ = assets
    records = json.loads((folder / "models.json").read_text())
    records["tiny"]["sanity"]["mean_image"] = [0.9] * 64  # not what the weights produce
    (folder / "models.json").write_text(json.dumps(records))
    with pytest.warns(RuntimeWarning, match="mean sample differs"):
        shipped_model("tiny", device="cpu")


def test_a_missing_file_is_retrained_and_an_unknown_name_refused(assets):
    folder, _ = assets
    (folder / "tiny.pt").unlink()
    with pytest.warns(RuntimeWarning, match="the file is missing"):
        shipped_model("tiny", device="cpu")
    with pytest.raises(ValueError, match="name: no shipped model 'nope'"):
        shipped_model("nope")
