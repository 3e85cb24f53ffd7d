"""Checks for the exercise notebooks.

Each exercise asks the learner to write a function; the check cell after it passes that
function to a ``check_*`` function, which runs it on inputs of its own, compares with the
course's reference implementation and raises :class:`GradingError` with a message that says
what is wrong (not implemented, wrong shape, wrong values and where). A passing check prints
one line starting with ``✔``.

The learner's code is untrusted input here, so the base helpers below guard against it:

- :func:`call_learner` passes deep copies of the arguments (the learner's function cannot
  change the grader's reference inputs) and stops a call that runs longer than
  :data:`TIME_LIMIT` seconds (``$COURSE_GRADING_TIME_LIMIT``, default 30) with a
  :class:`GradingError`;
- :func:`check_shape`, :func:`check_close`, :func:`check_finite`, :func:`check_scalar` and
  :func:`check_probability` refuse complex values, NaN/inf, strings and wrong shapes with a
  message naming what is wrong. A statistic goes through one of them before it is compared
  with a threshold, so that a NaN (for which every comparison is False) can never pass.

The checks of each chapter live in a submodule: :mod:`course_lib.grading.ch02`,
:mod:`course_lib.grading.gmm`, :mod:`course_lib.grading.mrf`.
"""

from __future__ import annotations

import copy
import ctypes
import math
import os
import signal
import sys
import threading
import time

import numpy as np
import torch

__all__ = [
    "GradingError",
    "TIME_LIMIT",
    "DEFAULT_TIME_LIMIT",
    "call_learner",
    "check_shape",
    "check_close",
    "check_finite",
    "check_scalar",
    "check_probability",
    "passed",
]


class GradingError(AssertionError):
    """Raised by a check when the learner's answer is missing or wrong."""


#: The time limit when ``$COURSE_GRADING_TIME_LIMIT`` is not set, in seconds.
DEFAULT_TIME_LIMIT = 30.0


def _default_time_limit() -> float:
    text = os.environ.get("COURSE_GRADING_TIME_LIMIT", "").strip()
    if not text:
        return DEFAULT_TIME_LIMIT
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not value > 0:
        raise ValueError(f"COURSE_GRADING_TIME_LIMIT must be a positive number of seconds, "
                         f"got {text!r}")
    return value


#: Seconds one call of a learner's function may take before :func:`call_learner` stops it.
#: Set ``$COURSE_GRADING_TIME_LIMIT`` (or assign this attribute) to change it; ``math.inf``
#: switches the limit off.
TIME_LIMIT: float = _default_time_limit()


# ===================================================================== answers -> arrays


def _describe(value) -> str:
    return f"{type(value).__name__} {value!r}" if len(repr(value)) < 60 else type(value).__name__


def _to_numpy(value, what: str) -> np.ndarray:
    """The learner's answer as a float64 array; complex values, strings and objects refused."""
    if value is None:
        raise GradingError(f"{what} is None: did you forget a `return`?")
    if isinstance(value, torch.Tensor):
        if value.is_complex():
            raise GradingError(f"{what} is complex (dtype {value.dtype}): expected real numbers. "
                               "A square root or logarithm of a negative number?")
        value = value.detach().cpu().numpy()
    if isinstance(value, (str, bytes)):
        raise GradingError(f"{what}: expected numbers, got the string {value!r}")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as exc:  # e.g. a ragged list
        raise GradingError(f"{what}: expected an array of numbers, got {_describe(value)} "
                           f"({exc})") from exc
    if arr.dtype.kind == "c" or (arr.dtype == object and any(isinstance(v, complex)
                                                             for v in arr.ravel())):
        raise GradingError(f"{what} is complex (dtype {arr.dtype}): expected real numbers. "
                           "A square root or logarithm of a negative number?")
    if arr.dtype.kind not in "biufO":
        raise GradingError(f"{what}: expected numbers, got dtype {arr.dtype} from "
                           f"{_describe(value)}")
    try:
        return np.asarray(arr, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise GradingError(f"{what}: expected numbers, got {_describe(value)}") from exc


def _first_bad(arr: np.ndarray) -> str:
    bad = ~np.isfinite(arr)
    n_bad = int(bad.sum())
    if arr.ndim == 0:
        return f"is {arr.item()}"
    idx = tuple(int(i) for i in np.argwhere(bad)[0])
    kinds = sorted({"NaN" if np.isnan(v) else "inf" for v in arr[bad].ravel()[:1000]})
    return (f"contains {' and '.join(kinds)} ({n_bad} of {arr.size} values; the first at "
            f"index {idx} is {arr[idx]})")


def check_finite(value, what: str, *, hint: str = "") -> np.ndarray:
    """The answer as a float64 array; raise unless every value is a finite real number."""
    arr = _to_numpy(value, what)
    if not np.all(np.isfinite(arr)):
        hint = hint or ("look for a division by zero, a log of 0 or an overflow "
                        "(exp of a large number)")
        raise GradingError(f"{what} {_first_bad(arr)}: expected finite numbers. Hint: {hint}")
    return arr


def check_shape(value, shape, what: str, *, finite: bool = False) -> np.ndarray:
    """Convert to a real float array and raise unless its shape is ``shape``.

    Complex values, strings and objects are always refused. With ``finite=True`` NaN/inf are
    refused too; the default leaves them to the caller, which can then give a hint specific to
    the exercise (``check_close``, ``check_scalar`` and ``check_probability`` always refuse
    them)."""
    if value is None:
        raise GradingError(f"{what} is None: did you forget a `return`?")
    arr = _to_numpy(value, what)
    if arr.shape != tuple(shape):
        raise GradingError(f"{what} has shape {arr.shape}, expected {tuple(shape)}")
    if finite:
        check_finite(arr, what)
    return arr


def check_close(value, expected, what: str, *, rtol: float = 1e-5, atol: float = 1e-8, hint=""):
    """Raise unless ``value`` matches ``expected`` in shape and within tolerance.

    ``value`` must be real and finite; ``expected`` (the reference) may hold ``±inf`` where the
    answer must hold the same infinity (e.g. a log-probability of exactly 0).
    """
    expected = _to_numpy(expected, "expected")
    arr = check_shape(value, expected.shape, what, finite=False)
    inf_expected = np.isinf(expected)
    if np.isnan(expected).any():
        raise ValueError("check_close: the reference contains NaN (a bug in the grader)")
    if np.any(np.isnan(arr) | (np.isinf(arr) & ~inf_expected)):
        check_finite(np.where(inf_expected, 0.0, arr), what, hint=hint)
    if inf_expected.any() and not np.array_equal(arr[inf_expected], expected[inf_expected]):
        idx = tuple(int(i) for i in np.argwhere(inf_expected & (arr != expected))[0])
        raise GradingError(f"{what} is wrong at index {idx}: got {arr[idx]:.6g}, expected "
                           f"{expected[idx]}" + (f". Hint: {hint}" if hint else ""))
    a = np.where(inf_expected, 0.0, arr)
    e = np.where(inf_expected, 0.0, expected)
    if not np.allclose(a, e, rtol=rtol, atol=atol):
        err = np.abs(a - e)
        where = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape)) if err.ndim else ()
        msg = (
            f"{what} is wrong: the largest difference is {err.max():.3g} at index {where} "
            f"(got {arr[where]:.6g}, expected {expected[where]:.6g})"
        )
        raise GradingError(msg + (f". Hint: {hint}" if hint else ""))
    return arr


def check_scalar(value, what: str, *, minimum: float | None = None,
                 maximum: float | None = None) -> float:
    """The answer as one finite real number (a Python/NumPy number, a 0-d or one-element
    array or tensor), within ``[minimum, maximum]`` when given; a :class:`GradingError`
    otherwise. Use it before comparing a learner's statistic with a threshold."""
    arr = _to_numpy(value, what)
    if arr.size != 1:
        raise GradingError(f"{what} should be one number, got an array of shape {arr.shape}")
    x = float(check_finite(arr.reshape(()), what))
    if minimum is not None and x < minimum:
        raise GradingError(f"{what} is {x:.6g}, below its smallest possible value {minimum}")
    if maximum is not None and x > maximum:
        raise GradingError(f"{what} is {x:.6g}, above its largest possible value {maximum}")
    return x


def check_probability(value, what: str) -> float:
    """One finite number in [0, 1] (a probability, a p-value): NaN never passes."""
    return check_scalar(value, what, minimum=0.0, maximum=1.0)


# ===================================================================== calling the learner


class _TimeUp(BaseException):
    """Raised inside the learner's code when its time is up.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that a learner's ``except Exception``
    does not swallow it.
    """


def _copy_input(x, memo: dict):
    """A deep copy of one argument; tensors are detached clones (a non-leaf tensor, which
    ``copy.deepcopy`` refuses, included); what cannot be copied (a module, a generator of
    Python values) is passed as it is."""
    if id(x) in memo:
        return memo[id(x)]
    if isinstance(x, torch.Tensor):
        out = x.detach().clone()
        if x.requires_grad and x.is_leaf:
            out.requires_grad_(True)
    elif isinstance(x, np.ndarray):
        out = x.copy()
    elif isinstance(x, (list, tuple)) and type(x) in (list, tuple):
        out = type(x)(_copy_input(v, memo) for v in x)
    elif type(x) is dict:
        out = {k: _copy_input(v, memo) for k, v in x.items()}
    else:
        try:
            out = copy.deepcopy(x)
        except Exception:
            out = x
    memo[id(x)] = out
    return out


def _can_use_alarm() -> bool:
    """SIGALRM is usable: Unix, main thread, and nobody else is using the real-time timer."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    try:
        return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None) and \
            signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    except (ValueError, OSError):
        return False


def _call_with_alarm(fn, args, kwargs, limit: float):
    """Run ``fn`` on this (main) thread; SIGALRM raises :class:`_TimeUp` inside it.

    Used in a Jupyter kernel and a pytest(-xdist) worker, which run code on the main thread.
    If the learner's code swallows the exception (a bare ``except:`` inside a loop), the timer
    fires again 0.1 s later and installs a trace function that raises on every line of the
    learner's frames, so the exception also leaves the ``except`` clause.
    """
    own_frame = sys._getframe()
    fired = [0]
    done = [False]
    old_trace = sys.gettrace()

    def tracer(frame, event, arg):
        # Raise on a "line" event only: CPython drops a trace function that raises, and the
        # first line run after the swallowed exception is inside the `except` clause.
        if done[0]:
            return None
        if event == "line":
            raise _TimeUp()
        return tracer

    def on_alarm(signum, frame):
        if done[0]:
            return
        fired[0] += 1
        if fired[0] > 1:  # the first _TimeUp was swallowed
            f = frame
            while f is not None and f is not own_frame:
                f.f_trace = tracer
                f = f.f_back
            sys.settrace(tracer)
        raise _TimeUp()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, limit, 0.1)
            return fn(*args, **kwargs)
        finally:
            done[0] = True
            signal.setitimer(signal.ITIMER_REAL, 0.0, 0.0)
    finally:
        done[0] = True
        signal.setitimer(signal.ITIMER_REAL, 0.0, 0.0)
        if fired[0] > 1:
            sys.settrace(old_trace)
        signal.signal(signal.SIGALRM, previous)


def _call_in_thread(fn, args, kwargs, limit: float):
    """Run ``fn`` in a daemon thread, wait ``limit`` seconds, then stop it by raising
    :class:`_TimeUp` in that thread (effective at its next Python instruction)."""
    result: dict = {}

    def target():
        try:
            result["value"] = fn(*args, **kwargs)
        except _TimeUp:
            result["timeout"] = True
        except BaseException as exc:  # handed over to the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=target, name="course-grading-learner", daemon=True)
    worker.start()
    worker.join(limit)
    if worker.is_alive():
        deadline = time.monotonic() + 2.0
        while worker.is_alive() and time.monotonic() < deadline:
            ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(worker.ident),
                                                       ctypes.py_object(_TimeUp))
            worker.join(0.1)
        raise _TimeUp()
    if "error" in result:
        raise result["error"]
    if result.get("timeout"):
        raise _TimeUp()
    return result.get("value")


def call_learner(fn, *args, what: str = "your function", time_limit: float | None = None,
                 **kwargs):
    """Call the learner's ``fn`` on deep copies of ``args``/``kwargs``, guarding the grader.

    - a missing answer (``raise NotImplementedError()``) becomes a clear :class:`GradingError`;
    - the learner's function gets copies: modifying its inputs in place cannot change the
      grader's reference data;
    - a call running longer than ``time_limit`` seconds (default :data:`TIME_LIMIT`) is
      stopped with a :class:`GradingError` (an endless loop does not hang the notebook). On
      the main thread (a notebook, a test) this uses ``SIGALRM``; elsewhere the function runs
      in a helper thread, which is stopped at its next Python instruction.
    """
    if not callable(fn):
        raise GradingError(f"{what} should be a function, got {type(fn).__name__}")
    limit = TIME_LIMIT if time_limit is None else time_limit
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {limit!r}")
    memo: dict = {}
    args = tuple(_copy_input(a, memo) for a in args)
    kwargs = {k: _copy_input(v, memo) for k, v in kwargs.items()}
    try:
        if math.isinf(limit):
            return fn(*args, **kwargs)
        if _can_use_alarm():
            return _call_with_alarm(fn, args, kwargs, float(limit))
        return _call_in_thread(fn, args, kwargs, float(limit))
    except NotImplementedError as exc:
        raise GradingError(
            f"{what} is not implemented yet: replace `raise NotImplementedError()` with your code"
        ) from exc
    except _TimeUp:
        raise GradingError(
            f"{what} did not return within {limit:g} seconds and was stopped. Look for a loop "
            "that never ends (a `while` whose condition never becomes False) or work that grows "
            "much faster than the input; the reference takes well under a second. "
            "(COURSE_GRADING_TIME_LIMIT sets the limit.)"
        ) from None


def passed(message: str) -> None:
    """Print the line that tells the learner a check passed."""
    print(f"✔ {message}")
