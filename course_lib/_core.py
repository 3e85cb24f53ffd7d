"""Private helpers shared by every model: device, seeding, input validation, progress.

Models import from here; nothing here imports a model.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterable, Sequence
from numbers import Integral, Real

import numpy as np
import torch

__all__ = [
    "get_device",
    "seed_everything",
    "as_tensor",
    "as_numpy",
    "check_int",
    "check_real",
    "check_choice",
    "check_images",
    "check_binary",
    "progress",
]

_DEVICE_ENV = "COURSE_DEVICE"


def get_device() -> torch.device:
    """Return the torch device the course runs on.

    Reads the environment variable ``COURSE_DEVICE``:

    - ``cpu``: always the CPU;
    - ``cuda``: the GPU; raises ``RuntimeError`` if none is available (never a silent
      fallback to the CPU);
    - unset or empty: the GPU if one is available, else the CPU.
    """
    choice = os.environ.get(_DEVICE_ENV, "").strip().lower()
    if choice in ("", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                f"{_DEVICE_ENV}=cuda but torch.cuda.is_available() is False: "
                "no CUDA GPU is visible to PyTorch. Unset COURSE_DEVICE or set it to cpu."
            )
        return torch.device("cuda")
    raise ValueError(f"{_DEVICE_ENV} must be 'cpu', 'cuda' or unset, got {choice!r}")


def resolve_device(device) -> torch.device:
    """``None`` means :func:`get_device`; otherwise anything ``torch.device`` accepts."""
    if device is None:
        return get_device()
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device must be 'cpu', 'cuda' or a torch.device, got {device!r}") from exc
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device={device!r} was asked for but no CUDA GPU is available")
    return dev


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, NumPy's global generator and PyTorch (CPU and CUDA).

    With the same seed, every computation of the course gives the same result on the CPU.
    """
    seed = check_int(seed, "seed", minimum=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)


def make_generator(seed, device="cpu") -> torch.Generator:
    """A torch.Generator seeded from ``seed`` (an int) or, for ``None``, from torch's global RNG."""
    gen = torch.Generator(device=device)
    if seed is None:
        gen.manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    else:
        gen.manual_seed(check_int(seed, "seed", minimum=0))
    return gen


# ---------------------------------------------------------------- validation


def check_int(value, name: str, *, minimum: int | None = None, maximum: int | None = None) -> int:
    """Return ``value`` as an int, or raise naming ``name``. Booleans are refused."""
    if isinstance(value, bool) or not isinstance(value, (Integral, np.integer)):
        raise TypeError(f"{name} must be an integer, got {type(value).__name__} {value!r}")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {value}")
    if maximum is not None and value > maximum:
        raise ValueError(f"{name} must be <= {maximum}, got {value}")
    return value


def check_real(
    value,
    name: str,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    strict_min: bool = False,
    strict_max: bool = False,
) -> float:
    """Return ``value`` as a finite float within the bounds, or raise naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (Real, np.floating, np.integer)):
        if isinstance(value, torch.Tensor) and value.numel() == 1:
            value = value.item()
        else:
            raise TypeError(f"{name} must be a real number, got {type(value).__name__} {value!r}")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"{name} must be finite, got {value}")
    if minimum is not None and (value <= minimum if strict_min else value < minimum):
        raise ValueError(f"{name} must be {'>' if strict_min else '>='} {minimum}, got {value}")
    if maximum is not None and (value >= maximum if strict_max else value > maximum):
        raise ValueError(f"{name} must be {'<' if strict_max else '<='} {maximum}, got {value}")
    return value


def check_choice(value, name: str, options: Sequence[str]):
    """Raise unless ``value`` is one of ``options``."""
    if value not in options:
        raise ValueError(f"{name} must be one of {list(options)}, got {value!r}")
    return value


def as_tensor(
    x,
    name: str,
    *,
    ndim: int | Sequence[int] | None = None,
    dtype: torch.dtype = torch.float32,
    device=None,
    finite: bool = True,
    min_value: float | None = None,
    max_value: float | None = None,
) -> torch.Tensor:
    """Convert a NumPy array, a tensor or a nested list to a tensor, checking it.

    Raises ``TypeError`` for what cannot be converted and ``ValueError`` naming ``name`` for a
    wrong rank, NaN/inf values (when ``finite``) or values outside ``[min_value, max_value]``.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    else:
        try:
            arr = np.asarray(x)
        except Exception as exc:  # pragma: no cover - exotic inputs
            raise TypeError(f"{name} must be an array or tensor, got {type(x).__name__}") from exc
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise TypeError(f"{name} must hold numbers, got dtype {arr.dtype}")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if t.dim() not in allowed:
            want = " or ".join(str(a) for a in allowed)
            raise ValueError(f"{name} must have {want} dimensions, got shape {tuple(t.shape)}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)})")
    t = t.to(device=device if device is not None else t.device, dtype=dtype)
    if finite and dtype.is_floating_point and not torch.isfinite(t).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    if min_value is not None and bool((t < min_value).any()):
        raise ValueError(f"{name} must be >= {min_value}, found {t.min().item():.4g}")
    if max_value is not None and bool((t > max_value).any()):
        raise ValueError(f"{name} must be <= {max_value}, found {t.max().item():.4g}")
    return t


def as_numpy(x, name: str, *, ndim=None, dtype=np.float64, finite: bool = True) -> np.ndarray:
    """Like :func:`as_tensor` but returns a NumPy array (on the CPU)."""
    torch_dtype = {np.float64: torch.float64, np.float32: torch.float32}.get(dtype, torch.float64)
    return as_tensor(x, name, ndim=ndim, dtype=torch_dtype, device="cpu", finite=finite).numpy()


def check_images(x, name: str = "X", *, device=None, dtype=torch.float32) -> torch.Tensor:
    """Images ``(N, C, H, W)`` with values in [0, 1]; returns a float tensor."""
    return as_tensor(x, name, ndim=4, dtype=dtype, device=device, min_value=0.0, max_value=1.0)


def check_binary(x, name: str, *, values=(0, 1)) -> None:
    """Raise unless every entry of tensor/array ``x`` is one of ``values``."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    ok = torch.zeros_like(t, dtype=torch.bool)
    for v in values:
        ok |= t == v
    if not bool(ok.all()):
        bad = t[~ok].flatten()[:3].tolist()
        raise ValueError(f"{name} must contain only the values {tuple(values)}, found e.g. {bad}")


def progress(iterable: Iterable, enabled: bool = True, **kwargs):
    """Wrap ``iterable`` in a ``tqdm.auto`` progress bar when ``enabled``."""
    if not enabled:
        return iterable
    from tqdm.auto import tqdm

    return tqdm(iterable, **kwargs)
