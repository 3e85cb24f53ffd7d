"""Checks for the exercise notebooks.

Each exercise asks the learner to write a function; the check cell after it passes that
function to a ``check_*`` function, which runs it on inputs of its own, compares with the
course's reference implementation and raises :class:`GradingError` with a message that says
what is wrong (not implemented, wrong shape, wrong values and where). A passing check prints
one line starting with ``✔``.

The learner's code is untrusted input here, so the base helpers below guard against it:

- :func:`call_learner` (and :func:`run_learner`, what the checks use) passes deep copies of
  the arguments and rejects a function that changed them in place; stops a call that runs
  longer than :data:`TIME_LIMIT` seconds (``$COURSE_GRADING_TIME_LIMIT``, default 30,
  clamped to :data:`MAX_TIME_LIMIT`) with a :class:`GradingError`; turns ``sys.exit()`` and
  the other ``BaseException`` subclasses (not ``KeyboardInterrupt``) into a :class:`GradingError`;
  makes the course's own answer to the exercise raise while the learner's function runs
  (wrapping it is not an answer); and puts back, and reports, what the learner's code
  changed globally (functions of the course's modules, NumPy and torch; torch's default
  dtype and gradient mode; the global random generators);
- :func:`grading_check` runs each check with its references restored to what they were at
  import, in float32 with gradients on whatever an earlier cell set, and with a seed drawn
  per run for the inputs it adds to its fixed ones (``$COURSE_GRADING_SEED`` repeats a run;
  a failure message ends with the seed);
- :func:`check_shape`, :func:`check_close`, :func:`check_finite`, :func:`check_scalar`,
  :func:`as_number` and :func:`check_probability` accept only real numbers (plain NumPy
  arrays, torch tensors, Python and NumPy numbers, lists of them): complex values, NaN/inf,
  strings, object arrays and objects with ``__array__`` are refused with a message naming
  what is wrong. A statistic goes through one of them before it is compared with a
  threshold, so that a NaN (for which every comparison is False) can never pass;
- every message has a short first line (what is wrong) and the hint on the lines after it
  (:func:`format_message`), so that ``nbgrader validate``, which cuts lines at 90 columns,
  shows all of it.

In-process grading cannot stop a learner who reads the grader's own frames or objects
(``inspect``, ``gc``): nbgrader's hidden tests, run where the learner's code is not, are the
answer to that.

The checks of each chapter live in a submodule: :mod:`course_lib.grading.ch02`,
:mod:`course_lib.grading.gmm`, :mod:`course_lib.grading.mrf`, :mod:`course_lib.grading.gan`,
:mod:`course_lib.grading.vae`.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import functools
import inspect
import math
import os
import random
import secrets
import signal
import sys
import textwrap
import threading
import time
import types
import warnings

import numpy as np
import torch

__all__ = [
    "GradingError",
    "TIME_LIMIT",
    "DEFAULT_TIME_LIMIT",
    "GradingWarning",
    "call_learner",
    "run_learner",
    "run_seed",
    "grading_check",
    "protect",
    "original",
    "as_number",
    "format_message",
    "check_shape",
    "check_close",
    "check_finite",
    "check_scalar",
    "check_probability",
    "passed",
]


#: Width of a message's first line and of the lines after it. ``nbgrader validate`` shows
#: each line of a failed cell's traceback indented by 4 and cut at 87 characters; the
#: traceback's last line is ``GradingError: <first line>``, so the first line gets 69
#: characters and each following line 83. The feedback page shows them in a box that does
#: not wrap.
FIRST_LINE_WIDTH = 69
LINE_WIDTH = 83


def format_message(message: str) -> str:
    """A check's message laid out for ``nbgrader validate`` and the feedback page.

    The first line says what is wrong (at most :data:`FIRST_LINE_WIDTH` characters); the hint
    (from ``"Hint: "`` on) and any further details follow on lines of at most
    :data:`LINE_WIDTH` characters. Line breaks already in ``message`` start new paragraphs.
    """
    text = str(message).strip()
    paragraphs = []
    for para in text.split("\n"):
        head, sep, hint = para.partition(" Hint: ")
        if not sep and para.startswith("Hint: "):
            head, hint, sep = "", para[len("Hint: "):], True
        if head.strip():
            paragraphs.append(head.strip())
        if sep:
            paragraphs.append("Hint: " + hint.strip())
    lines: list[str] = []
    for para in paragraphs:
        if not lines:
            first = textwrap.wrap(para, FIRST_LINE_WIDTH, break_on_hyphens=False) or [""]
            lines.append(first[0])
            rest = para[len(first[0]):].strip()
            if rest:
                lines += textwrap.wrap(rest, LINE_WIDTH, break_on_hyphens=False)
        else:
            lines += textwrap.wrap(para, LINE_WIDTH, break_on_hyphens=False,
                                   subsequent_indent="  ")
    return "\n".join(lines)


class GradingError(AssertionError):
    """Raised by a check when the learner's answer is missing or wrong.

    The message is laid out by :func:`format_message`: a short first line with what is
    wrong, the hint on the following lines.
    """

    def __init__(self, message: str = ""):
        super().__init__(format_message(message))


class GradingWarning(UserWarning):
    """A check found (and undid) something the learner's code did that is not an error of the
    answer itself: the global random state reseeded, a library function replaced in an
    earlier cell."""


#: The time limit when ``$COURSE_GRADING_TIME_LIMIT`` is not set, in seconds.
DEFAULT_TIME_LIMIT = 30.0

#: The longest time limit, in seconds (about 11.6 days): a longer one (``1e12``) is
#: clamped to it, since the timers cannot represent it; ``inf`` switches the limit off.
MAX_TIME_LIMIT = 1e6


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
    return value if math.isinf(value) else min(value, MAX_TIME_LIMIT)


#: Seconds one call of a learner's function may take before :func:`call_learner` stops it.
#: Set ``$COURSE_GRADING_TIME_LIMIT`` (or assign this attribute) to change it; ``math.inf``
#: switches the limit off; values above :data:`MAX_TIME_LIMIT` are clamped to it.
TIME_LIMIT: float = _default_time_limit()


# ===================================================================== answers -> arrays


def _describe(value) -> str:
    try:
        text = repr(value)
    except Exception:  # a learner's object whose repr fails
        text = "?" * 100
    return f"{type(value).__name__} {text}" if len(text) < 60 else type(value).__name__


_NUMPY_SCALARS = (np.integer, np.floating, np.bool_)


def _leaf_to_numpy(value, what: str) -> np.ndarray:
    """One answer that is not a list: an exact ndarray, tensor or number, as an ndarray.

    Only the plain types are accepted (``type(x) is np.ndarray``, ``torch.Tensor`` or
    ``torch.nn.Parameter``, Python and NumPy numbers): a subclass or an object with
    ``__array__`` runs the learner's code when it is converted, and could fetch its values
    from the grader at that moment."""
    t = type(value)
    if t is torch.Tensor or t is torch.nn.Parameter:
        if value.is_complex():
            raise GradingError(f"{what} is complex (dtype {value.dtype}): expected real "
                               "numbers. A square root or logarithm of a negative number?")
        if value.device.type == "meta":
            raise GradingError(f"{what} is a tensor on the 'meta' device, which holds no "
                               "values: compute it on the CPU (or the GPU)")
        if value.layout != torch.strided:
            raise GradingError(f"{what} is a {value.layout} tensor: return a dense one "
                               "(.to_dense())")
        value = value.detach().cpu()
        if value.dtype.is_floating_point and value.dtype != torch.float64:
            value = value.to(torch.float64)
        return value.numpy()
    if t is np.ndarray:
        if value.dtype.kind == "c":
            raise GradingError(f"{what} is complex (dtype {value.dtype}): expected real "
                               "numbers. A square root or logarithm of a negative number?")
        if value.dtype.kind not in "biuf":
            raise GradingError(f"{what}: expected numbers, got an array of dtype "
                               f"{value.dtype}")
        return value
    if t is bool:
        raise GradingError(f"{what}: expected a number, got the bool {value!r}")
    if t in (int, float) or (isinstance(value, _NUMPY_SCALARS)
                             and t.__module__ == "numpy"):
        return np.asarray(value)
    if t is complex or isinstance(value, np.complexfloating):
        raise GradingError(f"{what} is complex ({value!r}): expected real numbers. A square "
                           "root or logarithm of a negative number?")
    if isinstance(value, (str, bytes)):
        raise GradingError(f"{what}: expected numbers, got the string {value!r}")
    raise GradingError(f"{what}: expected a NumPy array, a torch tensor or a number, got "
                       f"{_describe(value)}")


def _to_numpy(value, what: str) -> np.ndarray:
    """The learner's answer as a float64 array.

    Accepted: a NumPy array of real numbers, a torch tensor (on any device), a Python or
    NumPy number, and lists or tuples of these. Refused with a :class:`GradingError`: None,
    complex values, strings, object arrays, and any other object (a subclass, an object with
    ``__array__``), whose conversion would run code of the learner's."""
    if value is None:
        raise GradingError(f"{what} is None: did you forget a `return`?")
    if type(value) in (list, tuple):
        def convert(v, depth):
            if depth > 32:
                raise GradingError(f"{what}: lists nested too deeply")
            if type(v) in (list, tuple):
                return [convert(x, depth + 1) for x in v]
            return _leaf_to_numpy(v, what)
        try:
            arr = np.array(convert(value, 0), dtype=np.float64)
        except (TypeError, ValueError) as exc:  # e.g. a ragged list
            raise GradingError(f"{what}: expected an array of numbers, got "
                               f"{_describe(value)} ({exc})") from exc
        return arr
    return np.asarray(_leaf_to_numpy(value, what), dtype=np.float64)


def as_number(value, what: str) -> float:
    """One real number (a Python or NumPy number, a one-element array or tensor) as a float;
    NaN and infinity are kept (the caller decides). Strings, bools and other objects are
    refused with a :class:`GradingError`."""
    arr = _to_numpy(value, what)
    if arr.size != 1:
        raise GradingError(f"{what} should be one number, got an array of shape {arr.shape}")
    return float(arr.reshape(()))


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
        raise GradingError(f"{what} is wrong.\nAt index {idx}: got {arr[idx]:.6g}, expected "
                           f"{expected[idx]}" + (f". Hint: {hint}" if hint else ""))
    a = np.where(inf_expected, 0.0, arr)
    e = np.where(inf_expected, 0.0, expected)
    if not np.allclose(a, e, rtol=rtol, atol=atol):
        err = np.abs(a - e)
        where = tuple(int(i) for i in np.unravel_index(np.argmax(err), err.shape)) if err.ndim else ()
        msg = (
            f"{what} is wrong.\nThe largest difference is {err.max():.3g}, at index {where}: "
            f"got {arr[where]:.6g}, expected {expected[where]:.6g}"
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


# ===================================================================== shared inputs


def extreme_covariances(rng):
    """(X, mean, cov, description): 64-D Gaussians whose determinant is outside float64's
    range, small variances (det about 1e-352, 0.0 in float64) and large ones (about 1e+353,
    inf), so that ``log(det(cov))`` is infinite while ``slogdet`` or a Cholesky factor is
    exact. The same rule ("no explicit determinant") as exercise 2.1's check."""
    out = []
    for variances, description in ((np.geomspace(1e-8, 1e-3, 64), "small variances"),
                                   (np.geomspace(1e3, 1e8, 64), "large variances")):
        q, _ = np.linalg.qr(rng.standard_normal((64, 64)))
        cov = (q * variances) @ q.T
        cov = (cov + cov.T) / 2
        mean = rng.uniform(-1, 1, size=64)
        X = rng.multivariate_normal(mean, cov, size=5)
        out.append((X, mean, cov, description))
    return out


def check_log_determinant_rule(got, expected, cov, what: str, description: str) -> None:
    """The rule of every exercise that evaluates a Gaussian density: never an explicit
    determinant. ``got`` is the answer on a covariance whose determinant under- or
    overflows; a non-finite answer gets the hint, a finite one is compared."""
    got = check_shape(got, expected.shape, what)
    if not np.all(np.isfinite(got)):
        exponent = np.linalg.slogdet(cov)[1] / np.log(10)
        raise GradingError(
            f"{what} is not finite ({description}). Hint: det Σ is about 10^{exponent:.0f}, "
            "outside the range of float64, so det() gives 0 or inf and its log is infinite. "
            "Never compute an explicit determinant: take log det Σ = 2 Σ log diag(L) from "
            "the Cholesky factor L (or np.linalg.slogdet)")
    check_close(got, expected, f"{what} ({description})", rtol=1e-6, atol=1e-6,
                hint="the small cases passed, so look for a numerically fragile step: solve "
                     "with the Cholesky factor and take log det Σ from it")



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


# ===================================================================== guarding the grader


#: (owner, name) -> the object found there when the grading modules were imported: the
#: functions and classes of the course's modules (and the attributes of their classes),
#: and those of numpy, numpy.linalg, math, torch and torch.nn.functional, which the checks
#: compute with. A learner's code that replaces one of them is undone and reported.
#: Kept on the ``course_lib`` package, not here: the graded cells of the exercises import
#: ``course_lib.grading`` afresh, and a fresh snapshot would take a function an answer cell
#: had replaced for the course's own.
_STORE = sys.modules[__name__.rpartition(".")[0]].__dict__.setdefault(
    "_grading_store", {"pristine": {}, "owners": [], "calls": []})
_PRISTINE: dict = _STORE["pristine"]
_PROTECTED_OWNERS: list = _STORE["owners"]


def _snapshot_owner(owner) -> None:
    if any(o is owner for o in _PROTECTED_OWNERS):
        return
    _PROTECTED_OWNERS.append(owner)
    for name, value in list(vars(owner).items()):
        if isinstance(value, types.ModuleType) or name.startswith("__"):
            continue
        if callable(value) or isinstance(value, (staticmethod, classmethod, property)):
            _PRISTINE[(owner, name)] = value


def protect(module) -> None:
    """Record the functions and classes of ``module`` (and the attributes of the classes it
    defines) as they are now: what the checks compute their references with. Each grading
    submodule calls it at import for its reference module."""
    _snapshot_owner(module)
    for value in list(vars(module).values()):
        if isinstance(value, type) and getattr(value, "__module__", None) == module.__name__:
            _snapshot_owner(value)


for _module in (np, np.linalg, math, torch, torch.nn.functional):
    _snapshot_owner(_module)
for _name, _module in list(sys.modules.items()):
    if _name.startswith("course_lib.") and not _name.startswith("course_lib.grading") \
            and _module is not None:
        protect(_module)


def original(owner, name: str):
    """``owner.name`` as it was when the grading modules were first imported (the course's
    own function, even if a cell has replaced it since)."""
    protect(owner) if isinstance(owner, types.ModuleType) else _snapshot_owner(owner)
    return _PRISTINE.get((owner, name), getattr(owner, name))


def _notebook_functions_in_the_library() -> list[str]:
    """The functions of the course's modules (and their classes) that were defined in the
    notebook (``__module__ == "__main__"``): replacements the snapshot cannot undo because
    they were made before it was taken."""
    out = []
    for owner in _PROTECTED_OWNERS:
        if not _owner_name(owner).startswith("course_lib"):
            continue
        for name, value in list(vars(owner).items()):
            if callable(value) and getattr(value, "__module__", None) == "__main__":
                out.append(f"{_owner_name(owner)}.{name}")
    return out


def _owner_name(owner) -> str:
    if isinstance(owner, types.ModuleType):
        return owner.__name__
    return f"{owner.__module__}.{owner.__qualname__}"


def _protected_values() -> dict:
    """The protected attributes as they are now."""
    return {key: vars(key[0]).get(key[1], _MISSING) for key in _PRISTINE}


def _restore_protected(values: dict | None = None) -> list[str]:
    """Put back every protected attribute that was replaced or deleted since ``values`` (by
    default: since the grading modules were imported); return their names."""
    reference = _PRISTINE if values is None else values
    changed = []
    for (owner, name), value in list(reference.items()):
        if value is _MISSING:
            continue
        current = vars(owner).get(name, _MISSING)
        if current is value:
            continue
        package = _owner_name(owner).split(".")[0]
        if str(getattr(current, "__module__", "") or "").split(".")[0] == package:
            reference[(owner, name)] = current  # the library's own rebinding (torch wraps
            continue                            # some functions when it loads a part)
        setattr(owner, name, value)
        changed.append(f"{_owner_name(owner)}.{name}")
    return changed


_MISSING = object()


class _ReferenceCalled(GradingError):
    """Raised inside the learner's code when it calls one of the course's references."""


_REFERENCE_CALLS: list = _STORE["calls"]  # shared by every import of this module


def _reference_called(frame) -> GradingError:
    name = f"{frame.f_globals.get('__name__', '?')}.{frame.f_code.co_qualname}"
    _REFERENCE_CALLS.append(name)
    return _ReferenceCalled(f"your function calls {name}, the course's own answer")


def _guard_template(*args, **kwargs):
    import sys as _sys

    raise _sys.modules["course_lib.grading"]._reference_called(_sys._getframe(0))


@contextlib.contextmanager
def _references_blocked(references):
    """While inside, each function in ``references`` raises (and records) a
    :class:`GradingError` when called, however the learner reached it (``course_lib.gmm.e_step``,
    ``from course_lib.gmm import e_step`` before the check, a method): its code object is
    swapped for a guard's, which keeps the function object and every name bound to it."""
    swapped = []
    try:
        for ref in references:
            fn = getattr(ref, "__func__", ref)
            code = getattr(fn, "__code__", None)
            if code is None or code.co_freevars or any(f is fn for f, _ in swapped):
                continue
            guard = _guard_template.__code__.replace(
                co_name=code.co_name, co_qualname=code.co_qualname,
                co_filename=code.co_filename, co_firstlineno=code.co_firstlineno)
            swapped.append((fn, code))
            fn.__code__ = guard
        yield
    finally:
        for fn, code in swapped:
            fn.__code__ = code


def _rng_states() -> dict:
    state = {"numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "random": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch.cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_states(state: dict) -> None:
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    random.setstate(state["random"])
    if "torch.cuda" in state:
        torch.cuda.set_rng_state_all(state["torch.cuda"])


def _same_rng_states(a: dict, b: dict) -> list[str]:
    """The names of the generators whose state differs between ``a`` and ``b``."""
    out = []
    na, nb = a["numpy"], b["numpy"]
    if not (na[0] == nb[0] and np.array_equal(na[1], nb[1]) and tuple(na[2:]) == tuple(nb[2:])):
        out.append("numpy's (np.random)")
    if not torch.equal(a["torch"], b["torch"]):
        out.append("torch's")
    if a["random"] != b["random"]:
        out.append("Python's random")
    if "torch.cuda" in a and "torch.cuda" in b and not all(
            torch.equal(x, y) for x, y in zip(a["torch.cuda"], b["torch.cuda"])):
        out.append("torch's CUDA")
    return out


def _global_state() -> dict:
    return {"dtype": torch.get_default_dtype(), "grad": torch.is_grad_enabled(),
            "errstate": np.geterr(), "rng": _rng_states()}


def _restore_global_state(before: dict) -> list[tuple[str, str]]:
    """Put the global state back as in ``before``; return what had changed, as
    (kind, description) with kind ``"error"`` or ``"warning"``."""
    changes = []
    if torch.get_default_dtype() != before["dtype"]:
        changes.append(("error", f"changed torch's default dtype to "
                                 f"{torch.get_default_dtype()} (torch.set_default_dtype)"))
        torch.set_default_dtype(before["dtype"])
    if torch.is_grad_enabled() != before["grad"]:
        changes.append(("error", "switched gradient tracking "
                        + ("off (torch.set_grad_enabled(False)); use `with torch.no_grad():` "
                           "instead" if before["grad"] else "on")))
        torch.set_grad_enabled(before["grad"])
    if np.geterr() != before["errstate"]:
        changes.append(("warning", "changed NumPy's floating-point error handling "
                        "(np.seterr); use `with np.errstate(...):` instead"))
        np.seterr(**before["errstate"])
    rngs = _same_rng_states(before["rng"], _rng_states())
    if rngs:
        changes.append(("warning", f"used or reseeded the global random number generator "
                        f"({', '.join(rngs)}); draw from the inputs you are given or from "
                        "your own generator (np.random.default_rng, torch.Generator)"))
        _set_rng_states(before["rng"])
    return changes


def _values_equal(a, b) -> bool | None:
    """Whether two inputs hold the same values (None: cannot tell)."""
    if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        a, b = a.detach(), b.detach()
        if a.device != b.device:
            b = b.to(a.device)
        if a.is_floating_point() or a.is_complex():
            return bool(((a == b) | (torch.isnan(a) & torch.isnan(b))).all())
        return bool(torch.equal(a, b))
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        return bool(np.array_equal(a, b))
    if type(a) in (list, tuple) and type(b) is type(a):
        if len(a) != len(b):
            return False
        return all(_values_equal(x, y) is not False for x, y in zip(a, b))
    if type(a) is dict and type(b) is dict:
        if a.keys() != b.keys():
            return False
        return all(_values_equal(a[k], b[k]) is not False for k in a)
    return None


def _changed_inputs(fn, originals, passed_args, orig_kwargs, passed_kwargs,
                    names=None) -> list[str]:
    """The names of the arguments the learner's function changed in place."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = list(names) if names else params
    changed = []
    for i, (a, b) in enumerate(zip(originals, passed_args)):
        if _values_equal(a, b) is False:
            changed.append(f"`{names[i]}`" if i < len(names) else f"argument {i + 1}")
    for k in orig_kwargs:
        if _values_equal(orig_kwargs[k], passed_kwargs[k]) is False:
            changed.append(f"`{k}`")
    return changed


def _convert_base_exception(exc: BaseException, what: str) -> GradingError:
    if isinstance(exc, SystemExit):
        did = f"called sys.exit({exc.code!r})" if exc.code is not None else "called sys.exit()"
        return GradingError(f"{what} {did} (SystemExit), which would stop the notebook. "
                            "Hint: return the answer instead; report a problem with an "
                            "exception such as ValueError")
    name = type(exc).__name__
    detail = f": {exc}" if str(exc) else ""
    return GradingError(f"{what} raised {name}{detail}. Hint: {name} is a BaseException "
                        "that stops programs, not a result; return the answer (or raise an "
                        "Exception such as ValueError)")


def call_learner(fn, *args, what: str = "your function", time_limit: float | None = None,
                 references=(), inputs_unchanged: bool = False, arg_names=None, **kwargs):
    """Call the learner's ``fn`` on deep copies of ``args``/``kwargs``, guarding the grader.

    - a missing answer (``raise NotImplementedError()``) becomes a clear :class:`GradingError`;
    - the learner's function gets copies: modifying its inputs in place cannot change the
      grader's reference data; with ``inputs_unchanged=True`` (what the checks pass) a
      function that changed an input is rejected with a :class:`GradingError` naming it;
    - a call running longer than ``time_limit`` seconds (default :data:`TIME_LIMIT`) is
      stopped with a :class:`GradingError` (an endless loop does not hang the notebook). On
      the main thread (a notebook, a test) this uses ``SIGALRM``; elsewhere (the one
      fallback) the function runs in a helper thread, which is stopped at its next Python
      instruction;
    - ``sys.exit()``, ``SystemExit``, ``GeneratorExit`` and the other ``BaseException`` subclasses
      raised by the learner's code become a :class:`GradingError` naming them;
      ``KeyboardInterrupt`` still stops the check;
    - each function in ``references`` (the course's own answer to the exercise) raises while
      the learner's function runs, and a call to one is reported even if the learner's code
      catches the error: wrapping the reference is not an answer;
    - global state is put back as it was and reported: the functions of the course's
      modules, NumPy and torch that the learner's code replaced (a :class:`GradingError`),
      torch's default dtype and gradient mode (a :class:`GradingError`), the global random
      number generators and NumPy's error handling (a :class:`GradingWarning`).
    """
    if not callable(fn):
        raise GradingError(f"{what} should be a function, got {type(fn).__name__}")
    limit = TIME_LIMIT if time_limit is None else time_limit
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {limit!r}")
    limit = float(limit) if math.isinf(limit) else min(float(limit), MAX_TIME_LIMIT)
    memo: dict = {}
    passed_args = tuple(_copy_input(a, memo) for a in args)
    passed_kwargs = {k: _copy_input(v, memo) for k, v in kwargs.items()}
    before = _global_state()
    protected_before = _protected_values()
    n_calls = len(_REFERENCE_CALLS)
    failure: BaseException | None = None
    result = None
    try:
        with _references_blocked(references):
            if math.isinf(limit):
                result = fn(*passed_args, **passed_kwargs)
            elif _can_use_alarm():
                result = _call_with_alarm(fn, passed_args, passed_kwargs, limit)
            else:
                result = _call_in_thread(fn, passed_args, passed_kwargs, limit)
    except KeyboardInterrupt:
        _restore_protected(protected_before)
        _restore_global_state(before)
        raise
    except NotImplementedError as exc:
        failure = GradingError(
            f"{what} is not implemented yet. Hint: replace `raise NotImplementedError()` "
            "with your code")
        failure.__cause__ = exc
    except _TimeUp:
        failure = GradingError(
            f"{what} did not return within {limit:g} seconds and was stopped. Hint: look "
            "for a loop that never ends (a `while` whose condition never becomes False) or "
            "work that grows much faster than the input; the reference takes well under a "
            "second. (COURSE_GRADING_TIME_LIMIT sets the limit.)")
    except Exception as exc:  # the learner's own error: shown as it is
        failure = exc
    except BaseException as exc:  # SystemExit, GeneratorExit, a learner's own BaseException
        failure = _convert_base_exception(exc, what)
        failure.__cause__ = exc
    replaced = _restore_protected(protected_before)
    changes = _restore_global_state(before)
    called = _REFERENCE_CALLS[n_calls:]
    del _REFERENCE_CALLS[n_calls:]
    if called:
        raise GradingError(
            f"{what} calls {called[0]}, the course's own answer. Hint: the exercise "
            "is to write this computation yourself; the check compares it with the course's "
            "version, so calling it (or wrapping it) is not an answer") from None
    if replaced:
        raise GradingError(
            f"{what} replaced {', '.join(replaced[:3])}" + (" and more" if len(replaced) > 3
                                                            else "")
            + ". Hint: the check put the original back; a function should compute its answer "
            "without changing the libraries it uses") from None
    errors = [d for kind, d in changes if kind == "error"]
    if errors:
        raise GradingError(f"{what} {errors[0]}. Hint: the check put it back; a change of "
                           "global state in a function leaks into the rest of the notebook")
    if failure is not None:
        if isinstance(failure, GradingError):
            raise failure from failure.__cause__
        raise failure
    if inputs_unchanged:
        changed = _changed_inputs(fn, args, passed_args, kwargs, passed_kwargs, arg_names)
        if changed:
            raise GradingError(
                f"{what} changed its input {', '.join(changed)} in place. Hint: work on a "
                "copy (x = x.copy(), or x.clone() for a tensor) or use operations that return "
                "new arrays (x = x - m, not x -= m); a function that changes its arguments "
                "breaks the code that calls it")
    for kind, description in changes:
        if kind == "warning":
            warnings.warn(GradingWarning(format_message(
                f"{what} {description}. The check put it back.")), stacklevel=2)
    return result


def run_learner(fn, *args, what: str = "your function", references=(), **kwargs):
    """:func:`call_learner` as every check calls it: inputs must stay unchanged."""
    return call_learner(fn, *args, what=what, references=references, inputs_unchanged=True,
                        **kwargs)


# ===================================================================== one check's run


#: ``$COURSE_GRADING_SEED``: when set, the seed of every check's random inputs; when unset
#: each check draws a fresh one (shown in the message when the check fails).
_SEED_ENV = "COURSE_GRADING_SEED"
_RUN: dict = {"depth": 0, "seed": None}


def _draw_seed() -> int:
    text = os.environ.get(_SEED_ENV, "").strip()
    if text:
        try:
            seed = int(text)
        except ValueError:
            seed = -1
        if not 0 <= seed < 2**63:
            raise ValueError(f"{_SEED_ENV} must be a whole number from 0 to 2**63 - 1, "
                             f"got {text!r}")
        return seed
    return secrets.randbelow(2**32)  # the OS's entropy: leaves the global generators alone


def run_seed() -> int:
    """The seed of the random inputs of the check that is running (drawn per check run)."""
    if _RUN["seed"] is None:
        raise RuntimeError("run_seed() is only available while a check runs")
    return _RUN["seed"]


def grading_check(check):
    """Decorator for a check function: runs it in a fixed environment and leaves none behind.

    - the functions of the course's modules, NumPy and torch replaced before the check (in an
      earlier cell) are put back first, with a :class:`GradingWarning`, so that the check's
      references are the course's own;
    - torch's default dtype is float32 while the check runs where an earlier cell set a
      low-precision one (``torch.set_default_dtype(torch.float16)``; float64 is kept), and
      gradients are on; the references use explicit dtypes; the notebook's settings and its
      random generators are restored afterwards, so a check neither depends on nor changes
      them;
    - a seed is drawn for the check's random inputs (:func:`run_seed`; ``$COURSE_GRADING_SEED``
      fixes it) and shown on the last line of a failure message.
    """

    @functools.wraps(check)
    def wrapper(*args, **kwargs):
        if _RUN["depth"]:
            return check(*args, **kwargs)
        replaced = _restore_protected()
        foreign = _notebook_functions_in_the_library()
        if foreign:
            raise GradingError(
                f"{foreign[0]} is a function from your notebook, not the course's. Hint: a "
                "cell replaced it before the course's was recorded, so the check cannot "
                "compute its reference: restart the kernel and run the notebook without "
                "replacing course_lib's functions")
        if replaced:
            warnings.warn(GradingWarning(format_message(
                f"{', '.join(replaced[:3])} had been replaced (in an earlier cell?). The "
                "check uses the course's own and has put it back.")), stacklevel=2)
        state = _global_state()
        _RUN["seed"] = _draw_seed()
        _RUN["depth"] += 1
        try:
            if state["dtype"] not in (torch.float32, torch.float64):  # float16, bfloat16
                torch.set_default_dtype(torch.float32)
            torch.set_grad_enabled(True)
            return check(*args, **kwargs)
        except GradingError as exc:
            exc.args = (f"{exc.args[0] if exc.args else ''}\n(Seed {_RUN['seed']}: "
                        f"{_SEED_ENV}={_RUN['seed']} repeats these inputs.)",)
            raise
        finally:
            _RUN["depth"] -= 1
            _RUN["seed"] = None
            torch.set_default_dtype(state["dtype"])
            torch.set_grad_enabled(state["grad"])
            np.seterr(**state["errstate"])
            _set_rng_states(state["rng"])

    return wrapper


def passed(message: str) -> None:
    """Print the line that tells the learner a check passed."""
    print(f"✔ {message}")
