"""The checks of the VAE's inputs: its hyperparameters, declared in one table, and the data
given to fit and to the fitted model (the decoder's support, the fitted shape, the labels of a
conditional model, latent vectors).
"""

from __future__ import annotations

import numpy as np
import torch

from .._core import Flag, Float, Int, OneOf, as_tensor, check_input, check_int, check_params
from ..training import one_hot
from .likelihoods import DATA_PRESETS, LIKELIHOODS
from .networks import PRIORS

# ====================================================================== hyperparameters


def _network_factory(value, name: str):
    """``encoder``/``decoder``: None (the default MLP) or a callable building the network."""
    if value is not None and not callable(value):
        raise TypeError(f"{name} must be None or a callable (in_features, out_features)"
                        f" -> nn.Module, got {type(value).__name__}")
    return value


def _widths(value, name: str) -> tuple:
    """``hidden``: the widths of the hidden layers, a tuple of positive integers."""
    hidden = tuple(value) if value is not None else ()
    for h in hidden:
        check_int(h, "hidden (each width)", minimum=1)
    return hidden


#: The hyperparameters of :class:`VAE` and what each may be, checked in this order by
#: :func:`course_lib._core.check_params` (``random_state`` and ``device`` are checked where
#: they are used).
HYPERPARAMETERS = {
    "progress": Flag(),
    "latent_dim": Int(minimum=1),
    "likelihood": OneOf(LIKELIHOODS),
    "hidden": _widths,
    "architecture": OneOf(("mlp", "conv")),
    "epochs": Int(minimum=1),
    "batch_size": Int(minimum=1),
    "lr": Float(minimum=0.0, strict_min=True),
    "prior": OneOf(PRIORS),
    "n_components": Int(minimum=1),
    "conditional_prior": Flag(),
    "dropout": Float(minimum=0.0, maximum=1.0, strict_max=True),
    "weight_decay": Float(minimum=0.0),
    "kl_warmup": Int(minimum=0),
    "free_bits": Float(minimum=0.0),
    "train_samples": Int(minimum=1),
    "ema": Float(minimum=0.0, maximum=1.0, strict_max=True),
    "validation_fraction": Float(minimum=0.0, maximum=1.0, strict_max=True),
    "n_iter_no_change": Int(minimum=1),
    "n_levels": Int(minimum=2),
    "encoder": _network_factory,
    "decoder": _network_factory,
}


def check_hyperparameters(model) -> tuple:
    """Check every hyperparameter of ``model`` (the table, then the rules that join two);
    return the hidden widths as a tuple."""
    params = check_params(model, HYPERPARAMETERS)
    if model.free_bits > 0 and model.train_samples > 1:
        raise ValueError("free_bits applies to the ELBO (train_samples=1), got "
                         f"train_samples={model.train_samples}")
    if model.conditional_prior and model.prior != "vamp":
        raise ValueError("conditional_prior=True needs prior='vamp' (its pseudo-inputs carry "
                         f"the classes), got prior={model.prior!r}")
    return params["hidden"]


# ====================================================================== data


def check_data(model, X, name="X", *, reset=False) -> torch.Tensor:
    """``X`` as a float32 tensor on the CPU, checked against the decoder's support and (after
    fit, ``reset=False``) the fitted shape."""
    X = check_input(X, name, min_samples=2 if reset else 1)
    X = as_tensor(X, name, ndim=(2, 4), dtype=torch.float32, device="cpu")
    if not reset:
        _check_fitted_shape(model, X, name)
    if DATA_PRESETS[model.likelihood].levels:
        lo, hi = float(X.min()), float(X.max())
        if lo < 0.0 or hi > 1.0:
            raise ValueError(
                f"{name} must be in [0, 1] for likelihood={model.likelihood!r} (grey levels, "
                f"dequantised or level/{model.n_levels - 1}), found values in [{lo:.4g}, "
                f"{hi:.4g}]")
    elif model.likelihood == "bernoulli":
        if not bool(((X == 0) | (X == 1)).all()):
            raise ValueError(f"{name} must contain only 0 and 1 for likelihood='bernoulli' "
                             "(binarise it first, e.g. X > 0.5)")
    return X


def _check_fitted_shape(model, X, name) -> None:
    """Samples of the fitted model's shape, with scikit-learn's wording for a wrong width."""
    want = tuple(model.input_shape_)
    n_features = int(np.prod(X.shape[1:]))
    if n_features != model.n_features_in_:
        raise ValueError(f"{name} has {n_features} features, but VAE is expecting "
                         f"{model.n_features_in_} features as input (samples of shape "
                         f"{want}, like the training data); got shape {tuple(X.shape)}")
    if tuple(X.shape[1:]) != want:
        raise ValueError(f"{name} must have shape (N, {', '.join(map(str, want))}) like "
                         f"the training data, got {tuple(X.shape)}")


def net_device(model) -> torch.device:
    """The device of the fitted networks."""
    return next(model.decoder_.parameters()).device


def fitted_input(model, X, labels, name="X"):
    """``(x, y1h)`` for a fitted model: X checked against it and flattened to (N, D) on the
    networks' device, and the one-hot labels (None for an unconditional model; a conditional
    model requires them)."""
    X = check_data(model, X, name)
    x = X.reshape(len(X), -1).to(net_device(model))
    return x, label_one_hot(model, labels, len(x))


def label_one_hot(model, labels, n):
    """One-hot ``labels`` of n samples for a conditional model (required), None for an
    unconditional one."""
    idx = model._label_index(labels, n, "labels", missing="error")
    return None if idx is None else one_hot(idx, len(model.classes_), net_device(model))


def latent_tensor(model, Z, device) -> torch.Tensor:
    """Latent vectors Z (N, latent_dim) as a float32 tensor on ``device``, or a clear error."""
    z = as_tensor(Z, "Z", ndim=2, dtype=torch.float32, device=device)
    if z.shape[1] != model.latent_dim:
        raise ValueError(f"Z must have latent_dim={model.latent_dim} columns, "
                         f"got shape {tuple(z.shape)}")
    return z
