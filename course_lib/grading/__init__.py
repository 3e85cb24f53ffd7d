"""Checks for the exercise notebooks.

Each exercise asks the learner to write a function; the check cell after it passes that
function to a ``check_*`` function, which runs it on inputs of its own, compares with the
course's reference implementation and raises :class:`GradingError` with a message that says
what is wrong (not implemented, wrong shape, wrong values and where). A passing check prints
one line starting with ``✔``.

The checks of each chapter live in a submodule: :mod:`course_lib.grading.ch02`,
:mod:`course_lib.grading.gmm`, :mod:`course_lib.grading.mrf`.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["GradingError", "call_learner", "check_shape", "check_close", "passed"]


class GradingError(AssertionError):
    """Raised by a check when the learner's answer is missing or wrong."""


def _to_numpy(value, what: str) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        value = value.detach().cpu().numpy()
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GradingError(f"{what}: expected numbers, got {type(value).__name__}") from exc
    return arr


def call_learner(fn, *args, what: str = "your function", **kwargs):
    """Call the learner's ``fn``; turn a missing answer into a clear :class:`GradingError`."""
    if not callable(fn):
        raise GradingError(f"{what} should be a function, got {type(fn).__name__}")
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as exc:
        raise GradingError(
            f"{what} is not implemented yet: replace `raise NotImplementedError()` with your code"
        ) from exc


def check_shape(value, shape, what: str) -> np.ndarray:
    """Convert to a float array and raise unless its shape is ``shape``."""
    if value is None:
        raise GradingError(f"{what} is None: did you forget a `return`?")
    arr = _to_numpy(value, what)
    if arr.shape != tuple(shape):
        raise GradingError(f"{what} has shape {arr.shape}, expected {tuple(shape)}")
    return arr


def check_close(value, expected, what: str, *, rtol: float = 1e-5, atol: float = 1e-8, hint=""):
    """Raise unless ``value`` matches ``expected`` in shape and within tolerance."""
    expected = _to_numpy(expected, "expected")
    arr = check_shape(value, expected.shape, what)
    if not np.all(np.isfinite(arr)):
        raise GradingError(f"{what} contains NaN or infinite values")
    if not np.allclose(arr, expected, rtol=rtol, atol=atol):
        err = np.abs(arr - expected)
        where = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape)) if err.ndim else ()
        msg = (
            f"{what} is wrong: the largest difference is {err.max():.3g} at index {where} "
            f"(got {arr[where]:.6g}, expected {expected[where]:.6g})"
        )
        raise GradingError(msg + (f". Hint: {hint}" if hint else ""))
    return arr


def passed(message: str) -> None:
    """Print the line that tells the learner a check passed."""
    print(f"✔ {message}")
