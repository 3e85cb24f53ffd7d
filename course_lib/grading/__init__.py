"""Checks for the exercise notebooks.

Each exercise asks the learner to write a function; the check cell after it passes that
function to a ``check_*`` function, which runs it on inputs of its own, compares with the
course's reference implementation and raises :class:`GradingError` with a message that says
what is wrong (not implemented, wrong shape, wrong values and where). A passing check prints
one line starting with ``✔``.

The learner's code is untrusted input here, so the helpers guard against it. This module
holds the two entry points, :func:`call_learner` (one call of the learner's function) and
:func:`grading_check` (one run of a check); each concern behind them has a module of its
own, whose names are re-exported here:

- ``_messages``: :class:`GradingError`, :class:`GradingWarning` and the layout of every
  message (:func:`format_message`: a short first line, the hint on the lines after it);
- ``_answers``: the learner's answers as arrays and the comparisons (:func:`check_shape`,
  :func:`check_close`, :func:`check_finite`, :func:`check_scalar`, :func:`as_number`,
  :func:`check_probability`), which refuse what is not a real number, NaN included;
- ``_time_limit``: stopping a call that runs longer than :data:`TIME_LIMIT` seconds
  (SIGALRM on the main thread, one fallback elsewhere, and that fallback's limits);
- ``_guards``: the snapshots of what the learner's code may not change (the course's
  functions, NumPy's and torch's; torch's default dtype and gradient mode; the random
  generators) and putting them back; the course's own answer made to raise.

The checks of each chapter live in a submodule: :mod:`course_lib.grading.ch02`,
:mod:`course_lib.grading.gmm`, :mod:`course_lib.grading.mrf`, :mod:`course_lib.grading.gan`,
:mod:`course_lib.grading.vae`.
"""

from __future__ import annotations

import copy
import functools
import inspect
import os
import secrets
import warnings

import numpy as np
import torch

from ._answers import _to_numpy as _to_numpy
from ._answers import (
    as_number,
    check_close,
    check_finite,
    check_probability,
    check_scalar,
    check_shape,
    check_tuple,
)
from ._answers import check_log_determinant_rule as check_log_determinant_rule
from ._answers import extreme_covariances as extreme_covariances
from ._guards import (
    global_state,
    notebook_functions_in_the_library,
    original,
    protect,
    protected_values,
    references_blocked,
    restore_global_state,
    restore_protected,
    set_rng_states,
)
from ._messages import FIRST_LINE_WIDTH as FIRST_LINE_WIDTH
from ._messages import LINE_WIDTH as LINE_WIDTH
from ._messages import (
    GradingError,
    GradingWarning,
    format_message,
)
from ._time_limit import (
    DEFAULT_TIME_LIMIT,
    TimeUp,
    call_with_time_limit,
    checked_limit,
    time_limit_from_env,
)
from ._time_limit import MAX_TIME_LIMIT as MAX_TIME_LIMIT

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
    "check_tuple",
    "passed",
]
# The names imported above as ``x as x`` are re-exported for the chapters' checks and the
# tests without being part of ``__all__``.

#: Seconds one call of a learner's function may take before :func:`call_learner` stops it.
#: Set ``$COURSE_GRADING_TIME_LIMIT`` (or assign this attribute) to change it; ``math.inf``
#: switches the limit off; values above :data:`MAX_TIME_LIMIT` are clamped to it.
TIME_LIMIT: float = time_limit_from_env()


# ===================================================================== calling the learner


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
        return bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if type(a) in (list, tuple) and type(b) is type(a):
        return len(a) == len(b) and all(_values_equal(x, y) is not False for x, y in zip(a, b))
    if type(a) is dict and type(b) is dict:
        return a.keys() == b.keys() and all(_values_equal(a[k], b[k]) is not False for k in a)
    return None


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
      stopped with a :class:`GradingError` (an endless loop does not hang the notebook); how,
      and where that has limits, is in :mod:`course_lib.grading._time_limit`;
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
    limit = checked_limit(TIME_LIMIT if time_limit is None else time_limit)
    memo: dict = {}
    passed_args = tuple(_copy_input(a, memo) for a in args)
    passed_kwargs = {k: _copy_input(v, memo) for k, v in kwargs.items()}
    before, protected_before = global_state(), protected_values()
    try:
        with references_blocked(references) as called:
            result, failure = _run(fn, passed_args, passed_kwargs, what, limit)
    finally:  # KeyboardInterrupt included
        replaced = restore_protected(protected_before)
        changes = restore_global_state(before)
    _raise_for_changed_globals(what, called, replaced, changes)
    if failure is not None:
        if isinstance(failure, GradingError):
            raise failure from failure.__cause__
        raise failure
    if inputs_unchanged:
        _raise_for_changed_inputs(fn, what, (args, kwargs), (passed_args, passed_kwargs),
                                  arg_names)
    for kind, description in changes:
        if kind == "warning":
            warnings.warn(GradingWarning(format_message(
                f"{what} {description}. The check put it back.")), stacklevel=2)
    return result


def _run(fn, args, kwargs, what: str, limit: float):
    """``(result, failure)``: the learner's call under the time limit, with what it raised
    turned into what the check raises (its own ``Exception`` as it is; ``KeyboardInterrupt``
    is raised at once)."""
    try:
        return call_with_time_limit(fn, args, kwargs, limit), None
    except KeyboardInterrupt:
        raise
    except NotImplementedError as exc:
        failure = GradingError(
            f"{what} is not implemented yet. Hint: replace `raise NotImplementedError()` "
            "with your code")
        failure.__cause__ = exc
    except TimeUp:
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
    return None, failure


def _raise_for_changed_globals(what: str, called: list[str], replaced: list[str],
                               changes: list[tuple[str, str]]) -> None:
    """A :class:`GradingError` for the first thing, already undone, that makes the answer
    unfair: a call of the course's answer, a replaced library function, a global setting
    changed (warnings are left to the caller)."""
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


def _raise_for_changed_inputs(fn, what: str, originals, passed, arg_names) -> None:
    """A :class:`GradingError` naming the inputs the learner's function changed in place
    (``originals`` and ``passed``: the grader's and the learner's ``(args, kwargs)``; the
    positional ones named by ``arg_names``, else by ``fn``'s signature)."""
    try:
        params = [p.name for p in inspect.signature(fn).parameters.values()
                  if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    except (TypeError, ValueError):
        params = []
    names = list(arg_names) if arg_names else params
    changed = [f"`{names[i]}`" if i < len(names) else f"argument {i + 1}"
               for i, (a, b) in enumerate(zip(originals[0], passed[0]))
               if _values_equal(a, b) is False]
    changed += [f"`{k}`" for k in originals[1]
                if _values_equal(originals[1][k], passed[1][k]) is False]
    if changed:
        raise GradingError(
            f"{what} changed its input {', '.join(changed)} in place. Hint: work on a "
            "copy (x = x.copy(), or x.clone() for a tensor) or use operations that return "
            "new arrays (x = x - m, not x -= m); a function that changes its arguments "
            "breaks the code that calls it")


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
        replaced = restore_protected()
        foreign = notebook_functions_in_the_library()
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
        state = global_state()
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
            set_rng_states(state["rng"])

    return wrapper


def passed(message: str) -> None:
    """Print the line that tells the learner a check passed."""
    print(f"✔ {message}")
