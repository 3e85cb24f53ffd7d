"""The feature network: a small digit CNN, built, shipped with the package and verified.

FID, KID and precision/recall compare images through a fixed feature network (Inception-v3
for photographs); for the 8×8 digits the course uses :class:`DigitCNN`, whose 128
penultimate activations are the features (:func:`digit_features`) and whose 10 logits label
the digits (:func:`predict_digits`, :func:`class_accuracy`).

Its trained weights ship with the package (``course_lib/assets/``, made by
``tools/ship_classifier.py`` with :func:`_train_classifier`, on the CPU with a fixed seed), so
every machine scores with the same features and nothing is ever downloaded.
:func:`digit_classifier` finds a usable network in this order:

1. the shipped file, if its SHA-256 matches and the network passes the sanity check
   (:func:`_classifier_problem`: finite weights, test accuracy ≥ :data:`CLASSIFIER_MIN_ACCURACY`);
2. a network trained earlier on this machine, from the cache folder, verified the same way;
3. a network trained now (a few seconds, one CPU thread, seed 0), saved to the cache with
   its SHA-256 beside it.

A damaged file is reported with a warning and skipped, never used. The checks and the
warning are :func:`course_lib._core.load_verified`'s, shared with ``training.fit_cached`` and
the shipped models. The chain itself (:func:`_verified_network`, for a :class:`_Network`), the
training loop (:func:`_train_network`) and the sanity check (:func:`_accuracy_problem`) serve
every feature network of the course: the Fashion-MNIST one (:mod:`course_lib.metrics.fashion`)
uses them as they are.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .._core import (
    cache_dir,
    check_choice,
    check_images,
    load_verified,
    resolve_device,
    save_verified,
)
from ..data import load_digits

# ===================================================================== the network


class DigitCNN(nn.Module):
    """A small CNN for the 8×8 digits; its 128 penultimate activations are the FID features.

    ``(N,1,8,8)`` → conv 3×3 (32) → conv 3×3 (32) → max-pool → conv 3×3 (64) → max-pool
    → 256 → fully connected 128 (ReLU: the *features*) → 10 logits.
    """

    n_features = 128

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 32, 3, padding=1)
        self.conv3 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 2 * 2, self.n_features)
        self.fc2 = nn.Linear(self.n_features, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.conv1(x))
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)  # 8x8 -> 4x4
        x = F.max_pool2d(F.relu(self.conv3(x)), 2)  # 4x4 -> 2x2
        return F.relu(self.fc1(x.flatten(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.features(x))


# ===================================================================== its configuration and files

_CLASSIFIER_VERSION = "v1"
# Everything that determines the trained weights; its hash names the cache file, so changing
# any of it retrains instead of loading stale weights.
_CLASSIFIER_CONFIG = {
    "version": _CLASSIFIER_VERSION,
    "architecture": "conv32-conv32-pool-conv64-pool-fc128-fc10",
    "seed": 0,
    "epochs": 20,
    "batch_size": 64,
    "lr": 3e-3,
    "weight_decay": 1e-4,
    "augment": "shift1",
    "split": "train",
    "threads": 1,
}
_CLASSIFIER_MEMO: dict = {}  # (cache file, device) -> trained module, per process

#: Where the shipped weights live (``course_lib/assets``); their file name carries the
#: configuration's hash, so a changed configuration finds no shipped file and trains its own.
_ASSETS = Path(__file__).resolve().parent.parent / "assets"


def _config_file_name(stem: str, config: dict) -> str:
    """``<stem>_<version>_<hash of the configuration>.pt``: one name per configuration."""
    digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode("utf-8")).hexdigest()[:12]
    return f"{stem}_{config['version']}_{digest}.pt"


def _classifier_file_name() -> str:
    """``digit_cnn_<version>_<hash of the configuration>.pt``: one name per configuration."""
    return _config_file_name("digit_cnn", _CLASSIFIER_CONFIG)


def _classifier_path() -> Path:
    """The cache file a classifier trained on this machine is saved to."""
    return cache_dir() / _classifier_file_name()


def _shipped_classifier_path() -> Path:
    """The weights shipped with the package (``tools/ship_classifier.py`` writes them)."""
    return _ASSETS / _classifier_file_name()


def _file_digest(path: Path) -> str:
    """The SHA-256 of a file, as ``.sha256`` files and ``digit_cnn.json`` record it."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ===================================================================== training


def _random_shifts(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Shift each image by -1, 0 or +1 pixel in each direction (zeros come in at the border)."""
    n, _, h, w = x.shape
    padded = F.pad(x, (1, 1, 1, 1))
    dy = torch.randint(0, 3, (n,), generator=generator)
    dx = torch.randint(0, 3, (n,), generator=generator)
    out = torch.empty_like(x)
    for oy in range(3):
        for ox in range(3):
            mask = (dy == oy) & (dx == ox)
            out[mask] = padded[mask, :, oy : oy + h, ox : ox + w]
    return out


def _train_classifier() -> DigitCNN:
    """Train :class:`DigitCNN` on the training split, on the CPU, deterministically."""
    return _train_network(DigitCNN, *load_digits(_CLASSIFIER_CONFIG["split"]), _CLASSIFIER_CONFIG)


def _train_network(build, X: np.ndarray, y: np.ndarray, cfg: dict) -> nn.Module:
    """A network ``build()`` trained on images ``X`` with labels ``y`` as ``cfg`` says, on the
    CPU, deterministically; shared by the course's feature networks.

    Runs on one CPU thread: the networks are small, so one thread is nearly as fast on an idle
    machine, far faster on a busy one (parallel test workers), and the float summation order,
    hence the weights, does not depend on the machine's number of cores.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _train_one_thread(build, torch.from_numpy(X), torch.from_numpy(y), cfg)
    finally:
        torch.set_num_threads(threads)


def _train_one_thread(build, X: torch.Tensor, y: torch.Tensor, cfg: dict) -> nn.Module:
    """Adam with a cosine schedule and random one-pixel shifts, as ``cfg`` says."""
    # Weight initialisation uses torch's global RNG: fork it so the caller's RNG is untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg["seed"])
        model = build()
    gen = torch.Generator().manual_seed(cfg["seed"])
    opt = torch.optim.Adam(model.parameters(), lr=cfg["lr"], weight_decay=cfg["weight_decay"])
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=cfg["epochs"])
    model.train()
    for _ in range(cfg["epochs"]):
        order = torch.randperm(len(X), generator=gen)
        for start in range(0, len(X), cfg["batch_size"]):
            idx = order[start : start + cfg["batch_size"]]
            xb = _random_shifts(X[idx], gen)
            loss = F.cross_entropy(model(xb), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
        sched.step()
    return model.eval()


# ===================================================================== verification

#: The digit classifier must label at least this fraction of the test split correctly,
#: after training and after every load from the cache; otherwise it is not used (the
#: accuracies the shipped network reaches are recorded in ``course_lib/assets/digit_cnn.json``).
CLASSIFIER_MIN_ACCURACY = 0.95


@dataclass(frozen=True)
class _Network:
    """One feature network as the shared machinery sees it: how to build, train and check
    it, and where its files and its per-process memo are. Made at each call
    (:func:`_digit_network`), so that what a test replaces in this module is what is used."""

    label: str  # "digit classifier": how warnings and errors name it
    file_name: str  # the file name of its weights, shipped and cached
    build: Callable[[], nn.Module]  # an untrained network
    train: Callable[[], nn.Module]  # a trained network (minutes at most, one CPU thread)
    problem: Callable[[nn.Module], str | None]  # why it must not be used, or None
    memo: dict  # (cache file, device) -> trained module, per process


def _digit_network() -> _Network:
    """The digit classifier's :class:`_Network`."""
    return _Network("digit classifier", _classifier_file_name(), DigitCNN, _train_classifier,
                    _classifier_problem, _CLASSIFIER_MEMO)


def _accuracy_problem(model: nn.Module, X: np.ndarray, y: np.ndarray,
                      minimum: float) -> str | None:
    """Why ``model`` must not be used (non-finite weights or outputs, an accuracy on the
    labelled images ``X``, ``y`` below ``minimum``), or None."""
    if not all(bool(torch.isfinite(p).all()) for p in model.state_dict().values()):
        return "its weights contain NaN or infinite values"
    device = next(model.parameters()).device  # check it where it is; never move the caller's model
    with torch.no_grad():
        logits = model.eval()(torch.from_numpy(X).to(device)).cpu()
    if not bool(torch.isfinite(logits).all()):
        return "its outputs contain NaN or infinite values"
    accuracy = float((logits.argmax(1) == torch.from_numpy(y)).float().mean())
    if accuracy < minimum:
        return f"its test accuracy is {accuracy:.3f} < {minimum}"
    return None


def _classifier_problem(model: DigitCNN) -> str | None:
    """Why ``model`` must not be used (non-finite weights, low test accuracy), or None."""
    return _accuracy_problem(model, *load_digits("test"), CLASSIFIER_MIN_ACCURACY)


def _load_network(net: _Network, path: Path) -> nn.Module:
    """The network stored at ``path``; a ``ValueError`` says why it must not be used."""
    model = net.build()
    try:
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    except Exception as exc:  # unreadable, or made for another architecture
        raise ValueError(f"it cannot be loaded ({type(exc).__name__})") from exc
    why = net.problem(model)
    if why is not None:
        raise ValueError(why)
    return model


def _load_verified_network(net: _Network, path: Path, what: str = "cached") -> nn.Module | None:
    """The network stored at ``path`` if the file is intact and the network passes the
    sanity check; ``None`` if there is no file.

    The file's SHA-256 is stored next to it (``.sha256``) when it is written: a truncated or
    altered file, a file for another architecture or a network with broken weights is reported
    with a warning (``what``: "cached" or "shipped") and ``None`` is returned, so that the
    caller falls back (shipped → cache → training). The checks are
    :func:`course_lib._core.load_verified`'s, shared with the cached fits.
    """
    then = "retraining it" if what == "cached" else "using the cache or retraining"
    return load_verified(path, lambda p: _load_network(net, p),
                         label=f"the {what} {net.label} {path}", then=then, stacklevel=4)


def _train_and_cache(net: _Network, path: Path) -> nn.Module:
    """A network trained now, checked, and saved to ``path`` (with its ``.sha256``)."""
    # The caller may be inside torch.no_grad() (e.g. digit_features): training needs grads.
    with torch.inference_mode(False), torch.enable_grad():
        model = net.train()
    why = net.problem(model)
    if why is not None:  # pragma: no cover - the configurations pass it
        raise RuntimeError(f"the {net.label} failed its sanity check after training: {why}")
    try:
        save_verified(model.state_dict(), path)
    except OSError as exc:  # a read-only or full cache folder costs a retraining next time
        warnings.warn(f"could not cache the {net.label} at {path}: {exc}", stacklevel=4)
    return model


def _verified_network(net: _Network, device) -> nn.Module:
    """``net``'s trained network in eval mode on ``device``, frozen: the shipped file, else
    the cached one, else trained now and cached; each file verified, a damaged one reported
    and skipped. Memoised per process in ``net.memo``."""
    device = resolve_device(device)
    path = cache_dir() / net.file_name
    key = (str(path), str(device))
    if key in net.memo:
        return net.memo[key]
    model = _load_verified_network(net, _ASSETS / net.file_name, "shipped")
    if model is None:
        model = _load_verified_network(net, path)
    if model is None:
        model = _train_and_cache(net, path)
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    net.memo[key] = model
    return model


def digit_classifier(device=None) -> DigitCNN:
    """The trained digit CNN in eval mode, on ``device`` (``None``: :func:`get_device`).

    Loads the weights shipped in ``course_lib/assets/`` (``weights_only=True``) and verifies
    them: the checksum, finite weights, and a test accuracy of at least
    :data:`CLASSIFIER_MIN_ACCURACY`. Without a usable shipped file (reported if damaged), it
    uses a classifier trained on this machine: loaded from the cache folder
    (``$COURSE_CACHE_DIR``, else ``<repo>/.cache``, else ``~/.cache/course_lib``, else a
    temporary folder) and verified the same way, or trained on the CPU (seed 0, a few
    seconds) and saved there with its SHA-256 beside it. A file that fails is reported and
    rebuilt, never used. The module is memoised per process: do not modify it in place.
    """
    return _verified_network(_digit_network(), device)


# ===================================================================== what it says about images


def _check_shaped_images(X, name: str, device, shape: tuple, what: str) -> torch.Tensor:
    """``X`` as float32 images ``(N, *shape)`` in [0, 1] on ``device``, or a clear error
    calling them ``what``."""
    x = check_images(X, name, device=device)
    if tuple(x.shape[1:]) != shape:
        raise ValueError(f"{name} must be {what} of shape (N, {', '.join(map(str, shape))}), "
                         f"got {tuple(x.shape)}")
    return x


def _check_digit_images(X, name: str, device) -> torch.Tensor:
    """``X`` as float32 digit images ``(N, 1, 8, 8)`` in [0, 1] on ``device``, or a clear error."""
    return _check_shaped_images(X, name, device, (1, 8, 8), "digit images")


@torch.no_grad()
def _network_features(model: nn.Module, x: torch.Tensor, chunk: int) -> torch.Tensor:
    """``model.features`` of the images ``x``, ``chunk`` images at a time."""
    return torch.cat([model.features(x[i : i + chunk]) for i in range(0, len(x), chunk)])


@torch.no_grad()
def digit_features(X, device=None) -> np.ndarray:
    """Penultimate-layer features ``(N, 128)`` of the digit CNN for images ``(N, 1, 8, 8)`` in [0, 1].

    Deterministic: no augmentation or dropout at inference time. Returned as float64 NumPy.
    """
    return _cnn_features(X, resolve_device(device)).cpu().numpy().astype(np.float64)


@torch.no_grad()
def _cnn_features(X, device) -> torch.Tensor:
    """The CNN's features of the images ``X`` as a float32 tensor on ``device``; the class
    logits are ``digit_classifier(device).fc2`` of them."""
    x = _check_digit_images(X, "X", device)
    return _network_features(digit_classifier(device), x, 4096)


@torch.no_grad()
def predict_digits(X, device=None) -> np.ndarray:
    """The digit classifier's label (0-9) of each image ``(N, 1, 8, 8)`` in [0, 1]."""
    device = resolve_device(device)
    return _labels_of_features(_cnn_features(X, device), device)


@torch.no_grad()
def _labels_of_features(features: torch.Tensor, device) -> np.ndarray:
    """The labels that the classifier's last layer gives to features of :func:`_cnn_features`."""
    return digit_classifier(device).fc2(features).argmax(1).cpu().numpy()


@torch.no_grad()
def classifier_accuracy(split: str = "test", device=None) -> float:
    """Fraction of the digits of ``split`` ("train", "test" or "all") the CNN labels correctly."""
    check_choice(split, "split", ("train", "test", "all"))
    device = resolve_device(device)
    X, y = load_digits(split)
    logits = digit_classifier(device)(torch.from_numpy(X).to(device))
    return float((logits.argmax(dim=1).cpu() == torch.from_numpy(y)).float().mean())


def class_accuracy(images, labels, device=None) -> float:
    """Fraction of ``images`` that the digit classifier labels as the requested ``labels``.

    The check of a conditional generator: ask for digit ``labels[i]``, get ``images[i]``.
    """
    pred = predict_digits(images, device=device)
    labels = np.asarray(labels)
    if labels.shape != pred.shape or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be {len(pred)} integers (one per image), got {labels.shape}")
    if labels.min() < 0 or labels.max() > 9:
        raise ValueError("labels must be digit classes 0..9")
    return float((pred == labels).mean())
