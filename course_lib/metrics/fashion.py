"""The Fashion-MNIST feature network: the digit classifier's counterpart for 28×28 images.

:class:`FashionCNN` plays for Fashion-MNIST the part :class:`~course_lib.metrics.DigitCNN`
plays for the 8×8 digits: its 128 penultimate activations are the features of FID, KID and
precision/recall (:func:`fashion_features`), its 10 logits label the clothes
(:func:`predict_fashion`). It is trained by the same code as the digit classifier
(``features._train_network``: Adam, cosine schedule, one-pixel shifts, one CPU thread, seed 0),
shipped in ``course_lib/assets/`` by ``tools/ship_classifier.py --dataset fashion``, and found
by the same verified chain (:func:`fashion_classifier`): the shipped file, else the cache, else
trained now and cached (minutes on the full training set, where the digits take seconds); a
damaged file is reported with a warning and never used.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._core import cache_dir, resolve_device
from ..data import load_fashion_mnist
from . import features as _features
from .features import _accuracy_problem, _check_shaped_images, _Network, _network_features

# ===================================================================== the network


class FashionCNN(nn.Module):
    """A small CNN for 28×28 Fashion-MNIST images; its 128 penultimate activations are the
    features.

    ``(N,1,28,28)`` → conv 5×5 (16) → max-pool → conv 3×3 (32) → max-pool → conv 3×3 (64)
    → max-pool → 576 → fully connected 128 (ReLU: the *features*) → 10 logits.
    """

    n_features = 128

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 5, padding=2)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 3 * 3, self.n_features)
        self.fc2 = nn.Linear(self.n_features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)  # 28x28 -> 14x14
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 14x14 -> 7x7
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)  # 7x7 -> 3x3
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


# ===================================================================== its configuration and files

# Everything that determines the trained weights; its hash names the file (shipped and cached).
_FASHION_CONFIG = {
    "version": "v1",
    "architecture": "conv5x5-16-pool-conv32-pool-conv64-pool-fc128-fc10",
    "seed": 0,
    "epochs": 8,
    "batch_size": 128,
    "lr": 2e-3,
    "weight_decay": 1e-4,
    "augment": "shift1",
    "split": "train",
    "threads": 1,
}
_FASHION_MEMO: dict = {}  # (cache file, device) -> trained module, per process

#: The sanity check: the first :data:`FASHION_CHECK_SIZE` images of the test split that
#: ``load_fashion_mnist`` finds (Debian's 10,000, or the shipped subset's 2,000) must be labelled
#: correctly at least this often, after training and after every load. It is a check that the
#: network works, below the accuracy the shipped one reaches (``fashion_cnn.json``), so that a
#: network trained on the shipped subset's 8,000 training images passes it too.
FASHION_MIN_ACCURACY = 0.8
#: How many test images the sanity check labels (all of the shipped subset's test split).
FASHION_CHECK_SIZE = 2000


def _fashion_file_name() -> str:
    """``fashion_cnn_<version>_<hash of the configuration>.pt``."""
    return _features._config_file_name("fashion_cnn", _FASHION_CONFIG)


def _fashion_path() -> Path:
    """The cache file a network trained on this machine is saved to."""
    return cache_dir() / _fashion_file_name()


def _shipped_fashion_path() -> Path:
    """The weights shipped with the package (``tools/ship_classifier.py --dataset fashion``)."""
    return _features._ASSETS / _fashion_file_name()


def _train_fashion() -> FashionCNN:
    """Train :class:`FashionCNN` on the training split that ``load_fashion_mnist`` finds."""
    X, y = load_fashion_mnist(_FASHION_CONFIG["split"], verbose=False)
    return _features._train_network(FashionCNN, X, y, _FASHION_CONFIG)


def _fashion_problem(model: FashionCNN) -> str | None:
    """Why ``model`` must not be used (non-finite weights, low accuracy on the check's
    test images), or None."""
    X, y = load_fashion_mnist("test", verbose=False)
    return _accuracy_problem(model, X[:FASHION_CHECK_SIZE], y[:FASHION_CHECK_SIZE],
                             FASHION_MIN_ACCURACY)


def _fashion_network() -> _Network:
    """The Fashion-MNIST network's ``_Network``, for the shared load/verify/train chain."""
    return _Network("Fashion-MNIST classifier", _fashion_file_name(), FashionCNN,
                    _train_fashion, _fashion_problem, _FASHION_MEMO)


def fashion_classifier(device=None) -> FashionCNN:
    """The trained Fashion-MNIST CNN in eval mode, on ``device``, frozen.

    The same chain as :func:`~course_lib.metrics.digit_classifier`: the shipped weights if
    their checksum matches and the network passes the sanity check (:data:`FASHION_MIN_ACCURACY`
    on :data:`FASHION_CHECK_SIZE` test images); else a network trained earlier on this machine,
    from the cache folder, verified the same way; else one trained now (one CPU thread, several
    minutes on the full training set) and cached. A damaged file is reported and skipped.
    """
    return _features._verified_network(_fashion_network(), device)


# ===================================================================== what it says about images


def _check_fashion_images(X, name: str, device) -> torch.Tensor:
    """``X`` as float32 images ``(N, 1, 28, 28)`` in [0, 1] on ``device``, or a clear error."""
    return _check_shaped_images(X, name, device, (1, 28, 28), "Fashion-MNIST images")


@torch.no_grad()
def _fashion_cnn_features(X, device) -> torch.Tensor:
    """The network's features of the images ``X``, a float32 tensor on ``device``."""
    x = _check_fashion_images(X, "X", device)
    return _network_features(fashion_classifier(device), x, 1024)


@torch.no_grad()
def _fashion_labels_of_features(features: torch.Tensor, device) -> np.ndarray:
    """The labels the network's last layer gives to features of :func:`_fashion_cnn_features`."""
    return fashion_classifier(device).fc2(features).argmax(1).cpu().numpy()


def fashion_features(X, device=None) -> np.ndarray:
    """Penultimate-layer features ``(N, 128)`` (float64) of images ``(N, 1, 28, 28)`` in [0, 1]."""
    return _fashion_cnn_features(X, resolve_device(device)).cpu().numpy().astype(np.float64)


def predict_fashion(X, device=None) -> np.ndarray:
    """The network's class (0-9, ``data.FASHION_MNIST_CLASSES``) of each image."""
    device = resolve_device(device)
    return _fashion_labels_of_features(_fashion_cnn_features(X, device), device)


def fashion_classifier_accuracy(split: str = "test", device=None) -> float:
    """Fraction of the images of ``split`` ("train" or "test", as ``load_fashion_mnist`` finds
    them) that the network labels correctly."""
    X, y = load_fashion_mnist(split, verbose=False)
    return float((predict_fashion(X, device) == y).mean())
