"""What the learner's code may not change: snapshots of the grader's world, and putting it back.

- the functions and classes of the course's modules (and the attributes of their classes),
  and those of numpy, numpy.linalg, math, torch and torch.nn.functional, as they were when
  the grading modules were first imported (:func:`protect`, :func:`original`,
  :func:`restore_protected`);
- the course's own answer to an exercise, made to raise while the learner's function runs
  (:func:`references_blocked`);
- torch's default dtype and gradient mode, NumPy's error handling and the global random
  generators (:func:`global_state`, :func:`restore_global_state`).

In-process grading cannot stop a learner who reads the grader's own frames or objects
(``inspect``, ``gc``): nbgrader's hidden tests, run where the learner's code is not, are the
answer to that.
"""

from __future__ import annotations

import contextlib
import math
import random
import sys
import types

import numpy as np
import torch

from ._messages import GradingError

#: (owner, name) -> the object found there when the grading modules were imported: the
#: functions and classes of the course's modules (and the attributes of their classes),
#: and those of numpy, numpy.linalg, math, torch and torch.nn.functional, which the checks
#: compute with. A learner's code that replaces one of them is undone and reported.
#: Kept on the ``course_lib`` package, not here: the graded cells of the exercises import
#: ``course_lib.grading`` afresh, and a fresh snapshot would take a function an answer cell
#: had replaced for the course's own.
_STORE = sys.modules[__name__.partition(".")[0]].__dict__.setdefault(
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


def notebook_functions_in_the_library() -> list[str]:
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


def protected_values() -> dict:
    """The protected attributes as they are now."""
    return {key: vars(key[0]).get(key[1], _MISSING) for key in _PRISTINE}


def restore_protected(values: dict | None = None) -> list[str]:
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
    """The body a blocked reference runs: it runs with the reference's globals, not this
    module's, so it imports what it needs and finds this module by name."""
    import sys as _sys

    raise _sys.modules["course_lib.grading._guards"]._reference_called(_sys._getframe(0))


@contextlib.contextmanager
def references_blocked(references):
    """While inside, each function in ``references`` raises (and records) a
    :class:`GradingError` when called, however the learner reached it (``course_lib.gmm.e_step``,
    ``from course_lib.gmm import e_step`` before the check, a method): its code object is
    swapped for a guard's, which keeps the function object and every name bound to it.

    Yields a list that, once the block is left, holds the names of the references called in
    it (even if the learner's code caught their error)."""
    called: list[str] = []
    n_calls = len(_REFERENCE_CALLS)
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
        yield called
    finally:
        for fn, code in swapped:
            fn.__code__ = code
        called += _REFERENCE_CALLS[n_calls:]
        del _REFERENCE_CALLS[n_calls:]


def _rng_states() -> dict:
    state = {"numpy": np.random.get_state(), "torch": torch.get_rng_state(),
             "random": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["torch.cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_states(state: dict) -> None:
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


def global_state() -> dict:
    return {"dtype": torch.get_default_dtype(), "grad": torch.is_grad_enabled(),
            "errstate": np.geterr(), "rng": _rng_states()}


def restore_global_state(before: dict) -> list[tuple[str, str]]:
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
        set_rng_states(before["rng"])
    return changes
