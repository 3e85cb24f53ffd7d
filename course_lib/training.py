"""The one training machinery of the course's neural models (the GAN and the VAE).

Its pieces, each small enough to read in one go:

- :func:`minibatches`: an endless stream of shuffled mini-batches of row indices, reshuffled
  at every epoch by a ``torch.Generator`` (so the order is fixed by a seed);
- :func:`train_loop`: calls a model's ``step(t)`` ``n_steps`` times behind a ``tqdm`` progress
  bar that can be switched off, records every named scalar the step returns (the *history*,
  which :func:`course_lib.viz.plot_history` plots), and stops with :class:`DivergenceError`,
  naming the quantity and what to try, as soon as one of them is NaN or infinite;
- :func:`fit_cached`: ``model.fit(X, y)``, or the identical fit loaded from disk when the
  model, its hyperparameters, the data and the code are unchanged (checked, never trusted);
- :class:`RunCheckpoint`: a long fit's state on disk as it goes (``fit(X, y, checkpoint=path)``),
  so that a run that stopped goes on where it stopped, with the same result as one that did not;
- :func:`shipped_model`: a converged model that ships with the package
  (``course_lib/assets/models``, made by ``tools/ship_models.py``), verified by checksum and a
  sanity check on loading, trained again (with a warning) when either fails;
- :class:`NeuralEstimator`: the scikit-learn-shaped base class of the neural models: device
  placement through :func:`course_lib._core.resolve_device`, seeding (same ``random_state``,
  same result on the CPU), and ``save(path)`` / ``load(path)``, which store the weights as a
  state dict together with the hyperparameters and load them with ``weights_only=True``,
  refusing a file made for another model or another architecture.

A model owns its networks and its losses; it hands the loop a ``step`` function. The loop owns
nothing but the bookkeeping, so that the GAN chapter and the VAE chapter share it unchanged.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
import math
import os
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from numbers import Real
from pathlib import Path

import numpy as np
import torch
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from ._core import (
    MAX_SEED,
    ComplexDataError,
    cache_dir,
    check_bool,
    check_int,
    check_seed,
    cpu_name,
    dense_input_tags,
    load_verified,
    make_generator,
    resolve_device,
    save_verified,
    torch_bytes,
    write_files,
)
from ._core import progress as _progress  # `progress` is also an argument name below
from .data import load_digits

__all__ = [
    "DivergenceError",
    "minibatches",
    "train_loop",
    "seeded",
    "save_atomically",
    "save_checkpoint",
    "load_checkpoint",
    "NeuralEstimator",
    "CHECKPOINT_FORMAT",
    "fit_cached",
    "RunCheckpoint",
    "shipped_model",
    "SHIPPED_MODELS",
    "mlp",
    "per_sample_labels",
    "label_array",
    "one_hot",
]

#: Version of the checkpoint layout written by :func:`save_checkpoint`.
CHECKPOINT_FORMAT = 1


class DivergenceError(FloatingPointError):
    """Training produced a NaN or infinite value; raised by :func:`train_loop`."""


# ----------------------------------------------------------------------------- mini-batches


def minibatches(
    n_rows: int, batch_size: int, generator: torch.Generator, *, drop_last: bool = False
) -> Iterator[torch.Tensor]:
    """Yield index tensors of mini-batches forever, reshuffling at the start of every epoch.

    Parameters
    ----------
    n_rows : number of training rows.
    batch_size : rows per batch; larger than ``n_rows`` means one batch of every row.
    generator : the ``torch.Generator`` (on the CPU) that draws the permutations; the same
        seed gives the same sequence of batches.
    drop_last : drop the last, smaller batch of each epoch (useful when a loss is sensitive to
        the batch size, e.g. a discriminator with packing).
    """
    n_rows = check_int(n_rows, "n_rows", minimum=1)
    batch_size = check_int(batch_size, "batch_size", minimum=1)
    drop_last = check_bool(drop_last, "drop_last")
    batch_size = min(batch_size, n_rows)
    while True:
        order = torch.randperm(n_rows, generator=generator)
        for start in range(0, n_rows, batch_size):
            idx = order[start : start + batch_size]
            if drop_last and len(idx) < batch_size:
                break
            yield idx


# ----------------------------------------------------------------------------- the loop

_ADVICE = (
    "Try a smaller learning rate (lr), fewer steps, or check the data for extreme values; "
    "with a GAN, a gradient penalty (r1) also keeps the discriminator in check."
)


def _as_float(value) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"a step must return scalars, got a tensor of shape {tuple(value.shape)}")
        return float(value.detach().item())
    if isinstance(value, (Real, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    raise TypeError(f"a step must return numbers or 0-d tensors, got {type(value).__name__}")


def train_loop(
    step: Callable[[int], dict],
    n_steps: int,
    *,
    progress: bool = False,
    desc: str = "training",
    check: Iterable[str] | None = None,
    postfix_every: int = 50,
    start: int = 0,
    history: dict[str, list[float]] | None = None,
    checkpoint: Callable[[int, dict], None] | None = None,
    checkpoint_every: int = 1000,
) -> dict[str, list[float]]:
    """Run ``step(t)`` for ``t = start, …, n_steps - 1`` and return the history of its scalars.

    Parameters
    ----------
    step : function of the step index returning a dict ``{name: scalar}`` (floats or 0-d
        tensors: losses, penalties, learning rate, …). The names must be the same at every
        step. The function does the work (forward, backward, optimiser steps).
    n_steps : number of steps, >= 1.
    progress : show a ``tqdm.auto`` bar whose postfix shows the latest values.
    desc : label of the bar and of error messages (e.g. ``"GAN"``).
    check : the names whose values must stay finite (default: every name). A NaN or infinite
        value raises :class:`DivergenceError` naming it, the step and what to try.
    postfix_every : how often (in steps) the bar's postfix is refreshed.
    start, history : where a resumed run goes on: the steps already done and their history
        (extended in place), as a :class:`RunCheckpoint` saved them. Default: from the start.
    checkpoint : called as ``checkpoint(steps_done, history)`` after every ``checkpoint_every``
        steps (not after the last one): the model saves its run there.

    Returns
    -------
    dict name -> list of floats, one entry per step: the *history* that
    :func:`course_lib.viz.plot_history` plots.
    """
    n_steps = check_int(n_steps, "n_steps", minimum=1)
    progress = check_bool(progress, "progress")
    start = check_int(start, "start", minimum=0)
    checkpoint_every = check_int(checkpoint_every, "checkpoint_every", minimum=1)
    history = {} if history is None else history
    watched = None if check is None else set(check)
    bar = _progress(range(start, n_steps), progress, desc=desc, leave=False,
                    initial=start, total=n_steps)  # a resumed run's bar starts where it stopped
    try:
        for t in bar:
            values = step(t)
            if not isinstance(values, dict):
                raise TypeError(f"step must return a dict of named scalars, got {type(values).__name__}")
            for name, value in values.items():
                v = _as_float(value)
                if not math.isfinite(v) and (watched is None or name in watched):
                    raise DivergenceError(
                        f"{desc}: {name} became {v} at step {t + 1} of {n_steps}; training "
                        f"stopped. {_ADVICE}"
                    )
                history.setdefault(name, []).append(v)
            if progress and hasattr(bar, "set_postfix") and t % postfix_every == 0:
                bar.set_postfix({k: f"{vals[-1]:.3g}" for k, vals in history.items()}, refresh=False)
            if checkpoint is not None and (t + 1) % checkpoint_every == 0 and t + 1 < n_steps:
                checkpoint(t + 1, history)
    finally:
        if hasattr(bar, "close"):
            bar.close()
    return history


def label_array(labels, name: str = "labels") -> np.ndarray:
    """Class labels as a NumPy array of integers, booleans or strings: one rule for the GAN and
    the VAE. Whole-number floats (``1.0``) become integers; other floats, NaN or infinity,
    complex values and objects are refused, naming ``name``."""
    arr = labels.detach().cpu().numpy() if isinstance(labels, torch.Tensor) else np.asarray(labels)
    if arr.dtype.kind == "c":
        raise ComplexDataError(f"{name} must hold class labels, got complex values")
    if arr.dtype.kind == "f":
        if not np.isfinite(arr).all():
            raise ValueError(f"{name} contains NaN or infinite values; class labels expected")
        if np.all(arr == np.round(arr)):
            arr = arr.astype(np.int64)
    if arr.dtype.kind not in "biuU":
        raise ValueError(f"Unknown label type: {name} must hold class labels (integers or "
                         f"strings), got dtype {arr.dtype}")
    return arr


def per_sample_labels(labels: np.ndarray, n: int, name: str = "labels") -> np.ndarray:
    """The class labels asked of ``sample(n, labels)``, one per sample: a single label (a
    scalar) means every sample is of that class; otherwise ``labels`` must have shape ``(n,)``.
    The GAN and the VAE both use it, so they accept and refuse the same shapes."""
    if labels.ndim == 0:
        return np.full(n, labels.item(), dtype=labels.dtype)
    if labels.shape != (n,):
        raise ValueError(f"{name} must be one class label or an array of shape ({n},) (one "
                         f"label per sample), got shape {labels.shape}")
    return labels


def one_hot(idx: torch.Tensor | None, n_classes: int, device) -> torch.Tensor | None:
    """The one-hot rows ``(n, n_classes)`` (float32, on ``device``) of class indices ``idx``:
    what a conditional network takes beside its input. ``None`` (no labels) stays ``None``."""
    if idx is None:
        return None
    return torch.nn.functional.one_hot(idx.to(device), n_classes).to(torch.float32)


@contextlib.contextmanager
def seeded(seed: int):
    """Run a block with torch's global RNG seeded, then restore the caller's RNG state.

    ``torch.nn`` layers draw their initial weights from the global generator; building the
    networks inside ``with seeded(seed):`` makes them depend on ``seed`` only.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed) % (MAX_SEED + 1))
        yield


def mlp(sizes, activation=torch.nn.ReLU, dropout: float = 0.0) -> torch.nn.Sequential:
    """A multilayer perceptron: ``Linear`` layers of the given ``sizes`` (input, hidden...,
    output) with ``activation()`` between them, none after the last, each followed by
    ``nn.Dropout(dropout)`` when ``dropout`` > 0 (the dropout layers hold no weights: the same
    seed gives the same initial weights with or without them). The default networks of the
    GAN and the VAE are built with it."""
    sizes = [check_int(s, "sizes[i]", minimum=1) for s in sizes]
    if len(sizes) < 2:
        raise ValueError(f"sizes must hold at least an input and an output size, got {sizes}")
    layers: list[torch.nn.Module] = []
    for i in range(len(sizes) - 1):
        layers.append(torch.nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers += [activation(), torch.nn.Dropout(dropout)] if dropout else [activation()]
    return torch.nn.Sequential(*layers)


# ----------------------------------------------------------------------------- checkpoints


def save_atomically(obj, path, *, checksum: bool = False) -> None:
    """``torch.save(obj)`` to ``path`` through :func:`course_lib._core.write_files`.

    A reader never sees half a file, even if the process dies while writing; a symlink at
    ``path`` is replaced, never followed; a full disk is an ``OSError`` naming the folder and
    the space needed, and leaves nothing behind. ``checksum``: also write the file's SHA-256
    to ``<path>.sha256`` (:func:`course_lib._core.save_verified`).
    """
    if checksum:
        save_verified(obj, path)
    else:
        write_files({Path(path): torch_bytes(obj)})


def _plain(value) -> bool:
    """True for the values ``torch.load(weights_only=True)`` reads back: numbers, strings,
    None, booleans, and lists/tuples/dicts of them."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(isinstance(k, str) and _plain(v) for k, v in value.items())
    return False


def save_checkpoint(path, *, kind: str, params: dict, meta: dict, state: dict,
                    checksum: bool = False) -> None:
    """Write ``{"format", "kind", "params", "meta", "state"}`` with :func:`save_atomically`
    (``checksum``: with its SHA-256 beside it).

    ``params`` and ``meta`` must hold plain values (numbers, strings, lists, dicts);
    ``state`` maps names to state dicts of tensors (one per network or optimiser).
    """
    for name, d in (("params", params), ("meta", meta)):
        if not _plain(d):
            raise TypeError(f"{name} must hold only numbers, strings, lists and dicts")
    save_atomically(
        {"format": CHECKPOINT_FORMAT, "kind": kind, "params": params, "meta": meta, "state": state},
        path, checksum=checksum,
    )


def load_checkpoint(path, *, kind: str) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``.

    Raises ``FileNotFoundError`` for a missing file and ``ValueError`` for a file that is not a
    checkpoint of the course, is damaged, or was written for another kind of model.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no checkpoint at {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated, corrupt, or not a torch file at all
        raise ValueError(f"path: {path} is not a readable checkpoint "
                         f"({type(exc).__name__}: {exc})") from exc
    if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"path: {path} is not a course_lib checkpoint (format {CHECKPOINT_FORMAT})")
    if ckpt.get("kind") != kind:
        raise ValueError(
            f"path: {path} holds a {ckpt.get('kind')!r} model, not a {kind!r}; load it with "
            f"{ckpt.get('kind')}.load"
        )
    return ckpt


# ----------------------------------------------------------------------------- the estimator


#: The neural model classes by name (filled as they are defined): shipped_model reads a class
#: name from a record and must not import gan.py or vae.py (they import this module).
_MODEL_CLASSES: dict[str, type] = {}


class NeuralEstimator(BaseEstimator):
    """Base class of the course's neural models (scikit-learn's estimator shape).

    Subclasses take hyperparameters only in ``__init__`` (including ``random_state`` and
    ``device``) and implement:

    - ``_networks_state()`` -> dict name -> ``state_dict()`` of each network;
    - ``_checkpoint_meta()`` -> plain dict of what :meth:`save` must remember besides the
      hyperparameters (data shape, number of classes, standardisation constants, ...);
    - ``_restore(meta, state)`` -> rebuild the networks from the hyperparameters and ``meta``
      and load ``state`` into them (``load_state_dict(strict=True)``), setting the fitted
      attributes.

    and set fitted attributes (names ending in ``_``) only at the very end of ``fit``, so that
    a ``fit`` that raises leaves the model as it was.
    """

    #: attribute whose presence means "fitted" (subclasses may override)
    _fitted_attribute = "history_"

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        _MODEL_CLASSES[cls.__name__] = cls  # for shipped_model, which cannot import the models

    def __sklearn_tags__(self):
        """What the neural models take (scikit-learn's estimator tags): dense real arrays
        ``(N, D)`` or images ``(N, C, H, W)``, no NaN, no sparse matrices; ``y`` is optional
        (labels make a model conditional)."""
        return dense_input_tags(super().__sklearn_tags__(), two_d_array=True)

    # ---------------------------------------------------------------- device and seed
    def _target_device(self) -> torch.device:
        return resolve_device(getattr(self, "device", None))

    def _training_seed(self) -> int:
        """An int seed from ``random_state`` (``None``: a fresh one from torch's global RNG)."""
        rs = getattr(self, "random_state", None)
        if rs is None:
            return int(torch.randint(0, 2**62, (1,)).item())
        return check_seed(rs, "random_state")

    @staticmethod
    def _seeded_generator(seed: int, device) -> torch.Generator:
        """A generator on ``device`` seeded from ``seed``. Models derive several streams from
        one ``random_state`` (``seed``, ``seed + 1``, ...): the seed is taken modulo 2**64, so
        that every valid ``random_state`` up to ``MAX_SEED = 2**64 - 1`` works."""
        return make_generator(int(seed) % (MAX_SEED + 1), device)

    def _open_run(self, checkpoint, X, y):
        """For ``fit(..., checkpoint=path)``: the run's :class:`RunCheckpoint` (None without a
        path), what a stopped run left in it (``(meta, state)``, or None for a fresh start) and
        the fit's seed: the stopped run's (drawn afresh when ``random_state`` is None), or a
        new one."""
        run_file = None if checkpoint is None else RunCheckpoint(checkpoint, self, X, y)
        loaded = None if run_file is None else run_file.load()
        seed = self._training_seed() if loaded is None else int(loaded[0]["seed"])
        return run_file, loaded, seed

    def _sampling_generator(self, seed, device) -> torch.Generator:
        """The generator that a sampling method draws from. With ``seed``, a fresh one seeded
        by it (same seed, same samples). With ``seed=None``, the model's own stream: started
        from ``random_state`` by ``fit`` (or on first use) and continued by every call, so two
        calls differ and a model with a ``random_state`` repeats the same sequence of calls."""
        if seed is None:
            if getattr(self, "_rng_", None) is None or self._rng_.device.type != device.type:
                self._rng_ = self._seeded_generator(self._training_seed(), device)
            return self._rng_
        return self._seeded_generator(check_seed(seed, allow_none=False), device)

    def _check_fitted(self) -> None:
        check_is_fitted(self, self._fitted_attribute)  # scikit-learn's NotFittedError message

    # ---------------------------------------------------------------- labels
    # A model fitted with labels ``y`` is conditional: ``classes_`` holds the sorted classes,
    # and every method that takes ``labels`` turns them into indices into ``classes_`` here.

    @staticmethod
    def _fit_labels(y, n: int) -> tuple[np.ndarray | None, torch.Tensor | None]:
        """``fit``'s labels as ``(classes_, indices into classes_)``; ``(None, None)`` without
        labels (an unconditional model)."""
        if y is None:
            return None, None
        y_arr = label_array(y, "y")
        if y_arr.shape != (n,):
            raise ValueError(f"y must have shape ({n},) (one label per row of X), got {y_arr.shape}")
        classes, inv = np.unique(y_arr, return_inverse=True)
        return classes, torch.as_tensor(inv.reshape(-1), dtype=torch.long)

    def _label_index(self, labels, n: int, name: str = "labels", *,
                     missing: str = "cycle") -> torch.Tensor | None:
        """Indices into ``classes_`` of ``labels`` (one label for all ``n`` rows, or one per
        row); ``None`` for an unconditional model. When a conditional model gets no labels,
        ``missing`` says what happens: ``"cycle"`` takes the classes in turn
        (``classes_[i % n_classes]``, what ``sample`` does), ``"error"`` refuses."""
        classes = getattr(self, "classes_", None)
        if classes is None:
            if labels is not None:
                raise ValueError(f"{name} given but the model was fitted without labels "
                                 "(it is not conditional)")
            return None
        if labels is None:
            if missing == "error":
                raise ValueError(f"{name} is required: the model is conditional (fitted with y)")
            return torch.arange(n) % len(classes)
        arr = per_sample_labels(label_array(labels, name), n, name)
        idx = np.clip(np.searchsorted(classes, arr), 0, len(classes) - 1)
        unknown = arr[classes[idx] != arr]
        if len(unknown):
            raise ValueError(f"{name} contains {unknown[0].item()!r}, which is not one of the "
                             f"classes seen by fit: {classes.tolist()}")
        return torch.as_tensor(idx, dtype=torch.long)

    # ---------------------------------------------------------------- save / load
    def _networks_state(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _checkpoint_meta(self) -> dict:  # pragma: no cover - abstract
        raise NotImplementedError

    def _restore(self, meta: dict, state: dict) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def save(self, path, *, checksum: bool = False) -> None:
        """Save the fitted model: weights (state dicts), hyperparameters and shapes.

        Written atomically with ``torch.save``; read back with :meth:`load`. A model built
        with user-supplied networks saves their weights, and :meth:`load` then needs the same
        networks passed again as keyword arguments. ``checksum``: also write the file's
        SHA-256 to ``<path>.sha256`` (what :func:`fit_cached` verifies).
        """
        self._check_fitted()
        state = {
            name: {k: v.detach().cpu() for k, v in sd.items()}
            for name, sd in self._networks_state().items()
        }
        meta = dict(self._checkpoint_meta())
        meta["history"] = {k: [float(x) for x in v] for k, v in getattr(self, "history_", {}).items()}
        # the hyperparameters a checkpoint can store (user-supplied networks cannot)
        params = {k: v for k, v in self.get_params(deep=False).items() if _plain(v)}
        save_checkpoint(path, kind=type(self).__name__, params=params, meta=meta, state=state,
                        checksum=checksum)

    @classmethod
    def load(cls, path, **params):
        """Load a model saved by :meth:`save` (``weights_only=True``: no code is executed).

        ``params`` override stored hyperparameters (e.g. ``device="cpu"``, or the user's own
        networks when the model was built with them). Raises ``ValueError`` naming the problem
        when the file holds another kind of model or weights that do not fit the architecture.
        """
        ckpt = load_checkpoint(path, kind=cls.__name__)
        valid = cls().get_params(deep=False)
        stored = {k: tuple(v) if isinstance(valid[k], tuple) and isinstance(v, list) else v
                  for k, v in ckpt["params"].items() if k in valid}  # tuples come back as lists
        unknown = set(params) - set(valid)
        if unknown:
            raise TypeError(f"{cls.__name__}.load got unknown hyperparameters {sorted(unknown)}")
        model = cls(**{**stored, **params})
        meta = dict(ckpt["meta"])
        history = meta.pop("history", {})
        try:
            model._restore(meta, ckpt["state"])
        except (RuntimeError, KeyError, TypeError, ValueError) as exc:
            raise ValueError(
                f"path: the weights in {path} do not fit the architecture of this "
                f"{cls.__name__} (hyperparameters {stored}): {exc}"
            ) from exc
        model.history_ = history
        return model


# ----------------------------------------------------------------------------- cached fits


def _digest_arrays(*arrays) -> str:
    h = hashlib.sha256()
    for a in arrays:
        if a is None:
            h.update(b"none")
            continue
        arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else np.asarray(a)
        h.update(str((arr.dtype, arr.shape)).encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def _source_digest(model) -> str:
    """SHA-256 of the source of the model's module and of the machinery it relies on (this
    module, the convolutional networks, the checks and seeding of ``_core``). A model defined
    in a package of its own (``course_lib/vae/``) is the source of every module of it."""
    model_file = Path(inspect.getfile(inspect.getmodule(type(model))))
    package = inspect.getmodule(type(model)).__package__ or ""
    files = sorted(model_file.parent.glob("*.py")) if "." in package else [model_file]
    here = Path(inspect.getfile(train_loop))
    h = hashlib.sha256()
    for path in (*files, here, here.with_name("convnets.py"), here.with_name("_core.py")):
        h.update(path.read_bytes())
    return h.hexdigest()


def _key_params(model) -> dict:
    """The model's hyperparameters as plain values: a ``torch.device`` as the string it
    names, a NumPy number as the Python number."""
    params = model.get_params(deep=False)
    return {k: str(v) if isinstance(v, torch.device) else v.item() if isinstance(v, np.generic)
            else v for k, v in params.items()}


def _run_key(model, X, y) -> str:
    """What a fit's result depends on, as one string: the model's class and hyperparameters
    (``progress`` aside; the device as the kind it resolves to, so that ``None`` and ``"cpu"``
    on a machine without a GPU are one run), the data (and labels), the source code of the
    model and of the machinery it uses, torch's version. The key of :func:`fit_cached` and of
    :class:`RunCheckpoint`."""
    params = {k: v for k, v in _key_params(model).items() if k != "progress"}
    if "device" in params:
        params["device"] = model._target_device().type
    return json.dumps(
        {
            "class": type(model).__qualname__,
            "params": params,
            "data": _digest_arrays(X, y),
            "source": _source_digest(model),
            "torch": torch.__version__,
        },
        sort_keys=True,
    )


def fit_cached(model: NeuralEstimator, X, y=None, *, folder=None) -> NeuralEstimator:
    """``model.fit(X, y)``, or the same fit loaded from disk if it was done before.

    The cache key hashes everything the fitted weights depend on: the model's class and
    hyperparameters, the data (and labels), the source code of the model's module and of this
    training module, and torch's version. Change any of them and the model is trained again.
    The file is written atomically with its SHA-256 beside it; on loading, a file whose checksum
    does not match, that cannot be read or that does not fit the architecture is reported with a
    warning and the model is trained again (never used). Models built with user-supplied
    networks are always trained (their code is not in the key).

    Returns the fitted model: ``model`` itself after a fit, or a new instance loaded from the
    cache (with the same hyperparameters and its training ``history_``).
    """
    if not isinstance(model, NeuralEstimator):
        raise TypeError(f"model must be a course_lib neural model, got {type(model).__name__}")
    params = _key_params(model)
    if any(not _plain(v) for v in params.values()):  # user-supplied networks: not cacheable
        return model.fit(X, y)
    key = _run_key(model, X, y)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    folder = Path(folder) if folder is not None else cache_dir() / "models"
    path = folder / f"{type(model).__name__}_{digest}.pt"
    cached = load_verified(path, lambda p: type(model).load(p, **params),
                           label=f"cached model {path}", then="training again", stacklevel=2)
    if cached is not None:
        return cached
    model.fit(X, y)
    try:
        model.save(path, checksum=True)
    except OSError as exc:  # a read-only folder or a full disk: the fitted model is still good
        warnings.warn(f"could not cache the fitted model at {path}: {exc}", stacklevel=2)
    return model


# ----------------------------------------------------------------------------- resumable fits


class RunCheckpoint:
    """One long ``fit`` kept on disk as it goes, so that it can stop (a closed laptop, a time
    limit, a crash) and later go on where it stopped, with the same result, to the last bit on
    the CPU, as a run that never stopped.

    ``fit(X, y, checkpoint=path)`` makes one; the model hands it the whole state of its run
    (networks, optimisers, the noise generators' states, the position in the stream of
    minibatches, the history) every so often, :meth:`save` writes it atomically, and the next
    ``fit`` with the same ``path`` reads it back with :meth:`load` and goes on from there.
    The file belongs to one run only: the class, hyperparameters, data, source code and torch's
    version (the key of :func:`fit_cached`, :func:`_run_key`) are stored with it, and a file
    made by any other run is refused, never used. The model saves its seed too, so that a run
    with ``random_state=None`` goes on with the seed it drew. :meth:`finish` deletes the file
    once the fit has succeeded and says what the earlier segments cost. The same result means
    on the same processor and thread count: elsewhere the arithmetic rounds differently (the
    record names each segment's processor), and GPU kernels are not bit-reproducible.
    """

    def __init__(self, path, model, X, y=None):
        if not isinstance(path, (str, Path)) or not str(path):
            raise TypeError(f"checkpoint must be a file path (str or pathlib.Path), got "
                            f"{type(path).__name__} {path!r}")
        for name, value in _key_params(model).items():
            if isinstance(value, torch.nn.Module):
                raise ValueError(f"checkpoint: a model built with networks of your own "
                                 f"({name}) cannot be resumed (their code is not part of what "
                                 f"identifies the run)")
            if not _plain(value):
                raise ValueError(f"checkpoint: the hyperparameter {name} holds a "
                                 f"{type(value).__name__}, which a checkpoint cannot store")
        path = Path(path)
        if path.is_dir():
            raise ValueError(f"checkpoint: {path} is a folder; name a file in it")
        try:  # a folder that cannot be written is found now, not after hours of training
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise PermissionError(f"checkpoint: cannot create the folder {path.parent} "
                                  f"({exc})") from exc
        if not os.access(path.parent, os.W_OK):
            raise PermissionError(f"checkpoint: cannot write in {path.parent}")
        self.path = path
        self.kind = f"{type(model).__name__} run"
        self.key = _run_key(model, X, y)
        self.earlier = {"segments": 0, "done": 0, "cpu_s": 0.0, "wall_s": 0.0, "machines": []}
        self._wall0, self._cpu0 = time.perf_counter(), time.process_time()

    def load(self) -> tuple[dict, dict] | None:
        """``(meta, state)`` as the model saved them, or None when there is no file yet.
        Raises ``ValueError`` naming ``checkpoint`` for a damaged file or one of another run."""
        if not self.path.exists():
            return None
        try:
            ckpt = load_checkpoint(self.path, kind=self.kind)
        except (FileNotFoundError, ValueError) as exc:
            raise ValueError(f"checkpoint: {str(exc).removeprefix('path: ')}; delete the "
                             f"file to start afresh") from exc
        if ckpt["meta"].get("key") != self.key:
            raise ValueError(f"checkpoint: {self.path} holds the state of another run (other "
                             f"hyperparameters, data, code or torch version); delete it to "
                             f"start afresh, or name another file")
        self.earlier = dict(ckpt["meta"]["spent"])
        return ckpt["meta"]["run"], ckpt["state"]

    def spent(self, done: int) -> dict:
        """The run's cost so far: segments, steps (or epochs) done, CPU and wall seconds of
        this process's segment added to the earlier ones', and the processor of each segment
        (a run resumed on another processor is still a valid run, but rounds differently
        from one that never stopped: the record says so)."""
        return {"segments": self.earlier["segments"] + 1, "done": int(done),
                "cpu_s": self.earlier["cpu_s"] + time.process_time() - self._cpu0,
                "wall_s": self.earlier["wall_s"] + time.perf_counter() - self._wall0,
                "machines": [*self.earlier["machines"], cpu_name()]}

    def save(self, done: int, meta: dict, state: dict) -> None:
        """Write the run's state after ``done`` steps (or epochs): ``meta`` plain values,
        ``state`` tensors and state dicts (:func:`save_checkpoint`)."""
        save_checkpoint(self.path, kind=self.kind, params={},
                        meta={"key": self.key, "spent": self.spent(done), "run": meta},
                        state=state)

    def finish(self) -> dict | None:
        """Delete the file (the fit succeeded). Returns what the earlier segments of a resumed
        run cost (``segments``, ``done``: where this segment began, ``cpu_s``, ``wall_s``,
        ``machines``: the processor of each), or None when the fit ran in one go."""
        self.path.unlink(missing_ok=True)
        return dict(self.earlier) if self.earlier["segments"] else None


def skip_batches(batches: Iterator, n: int) -> None:
    """Draw and drop the first ``n`` minibatches of a fresh stream: a resumed run's stream is
    then where the stopped run's was (the permutations come from the same seeded generator)."""
    for _ in range(int(n)):
        next(batches)


# ----------------------------------------------------------------------------- shipped models

#: Where the converged models that ship with the package live: ``<name>.pt`` (a checkpoint of
#: :meth:`NeuralEstimator.save`), ``<name>.pt.sha256``, and ``models.json``, the record of how
#: each was made (class, hyperparameters, data, seed, CPU time, scores), written by
#: ``tools/ship_models.py``.
SHIPPED_MODELS = Path(__file__).resolve().parent / "assets" / "models"


def shipped_records() -> dict:
    """``models.json``: name -> the record of one shipped model (empty if there is none)."""
    path = SHIPPED_MODELS / "models.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def shipped_training_data(record: dict):
    """The data a shipped model was fitted on, from its record: ``(X, y or None)``."""
    spec = record["data"]
    if spec.get("dataset", "digits") == "fashion":  # Chapter 8's models
        from .data import load_fashion_mnist

        X, y = load_fashion_mnist(spec["split"], verbose=False)
    else:
        X, y = load_digits(spec["split"], dequantize=spec["dequantize"], seed=spec["noise_seed"])
    return X, (y if spec["labels"] else None)


def _sanity_problem(model, record: dict) -> str | None:
    """Why a loaded model's samples do not look like the shipped ones, or None.

    The check is device independent: 500 samples (the classes in turn for a conditional model)
    must be finite, in [0, 1], and their mean image must lie within ``tolerance`` (largest
    absolute pixel difference) of the mean image recorded when the model was shipped.
    """
    check = record["sanity"]
    try:
        images = np.asarray(model.sample(500, seed=check["seed"]), dtype=np.float64)
    except Exception as exc:  # a model that cannot sample is not usable
        return f"sampling failed ({type(exc).__name__}: {exc})"
    if images.shape[1:] != tuple(record["input_shape"]):
        return f"samples have shape {images.shape[1:]}, expected {tuple(record['input_shape'])}"
    if not np.isfinite(images).all() or images.min() < 0 or images.max() > 1:
        return "samples are not finite numbers in [0, 1]"
    diff = np.abs(images.mean(0).ravel() - np.asarray(check["mean_image"])).max()
    if not diff <= check["tolerance"]:
        return (f"the mean sample differs from the shipped one by {diff:.3f} "
                f"(tolerance {check['tolerance']})")
    return None


def shipped_model(name: str, *, device=None, progress: bool = False) -> NeuralEstimator:
    """A converged model shipped with the package, e.g. ``shipped_model("gan_digits")``.

    Loads ``course_lib/assets/models/<name>.pt`` after checking its SHA-256, then checks that its
    samples look like those recorded when it was shipped (:func:`_sanity_problem`). If the file
    is missing, damaged or fails the check, it warns and trains the same model from its record
    instead (through :func:`fit_cached`: minutes the first time, then cached). ``device``: where
    the model runs (``None``: :func:`course_lib.get_device`). ``shipped_records()[name]`` says how
    the model was made and the scores it reached.
    """
    records = shipped_records()
    if name not in records:
        raise ValueError(f"name: no shipped model {name!r}; the shipped models are "
                         f"{sorted(records)}")
    record = records[name]
    cls = _MODEL_CLASSES.get(record["class"])
    if cls is None:
        raise ValueError(f"name: {name!r} is a {record['class']}, which is not imported "
                         f"(import course_lib.{record['class'].lower()} first)")
    device = resolve_device(device)
    path = SHIPPED_MODELS / record["file"]

    def load(p):
        model = cls.load(p, device=device, progress=progress)
        why = _sanity_problem(model, record)
        if why is not None:
            raise ValueError(why)
        return model

    model = load_verified(path, load, label=f"shipped model {name!r} ({path.name})",
                          then="training it again from its record", expected=record["sha256"],
                          against="models.json", missing_ok=False, category=RuntimeWarning)
    if model is not None:
        return model
    X, y = shipped_training_data(record)
    model = cls(**record["params"], device=device, progress=progress)
    return fit_cached(model, X, y)
