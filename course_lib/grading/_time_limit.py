"""The grader's time limit: a learner's function that runs too long is stopped, so that an
endless loop fails its check instead of hanging the notebook.

:func:`call_with_time_limit` raises :class:`TimeUp` inside the learner's code when the time
is up. :class:`TimeUp` is a ``BaseException``, like ``KeyboardInterrupt``, so that a
learner's ``except Exception`` does not swallow it. It gets there in one of two ways:

**SIGALRM, on the main thread.** Where the course runs code (a Jupyter kernel, the kernels
of nbval and nbgrader, a pytest or pytest-xdist worker) it runs on the main thread, and
there a real-time timer (``signal.setitimer``) interrupts the learner's code: a loop of
Python code at its next instruction, a C call when it returns to Python (``time.sleep`` at
once: the signal wakes it). A bare ``except:`` (or ``except BaseException``) in the
learner's loop swallows that :class:`TimeUp`, so the timer fires again every
:data:`_REPEAT` seconds, and from its second firing on a trace function raises
:class:`TimeUp` on every line of the learner's frames: the exception then also leaves the
``except`` clause. The timer alone never stops such a loop: the proof is the case
``_swallowing_loop`` of ``test_time_limit_stops_endless_learners_on_the_main_thread`` in
``tests/test_robustness.py``.

**The fallback, a trace function with a deadline**, wherever SIGALRM cannot be used: a
thread other than the main one, a platform without ``setitimer``, or a SIGALRM handler or
timer that someone else already set. The same trace function is installed for the whole
call and raises :class:`TimeUp` on the first line the learner's code runs after the
deadline (``tests/test_robustness.py::test_time_limit_off_the_main_thread``). Its limits,
stated plainly:

- the learner's code runs traced, so pure-Python code is slower than without the limit;
- a long C call (a huge matrix product, ``time.sleep(1e6)``) is not interrupted: the
  check fails only once it has returned;
- CPython removes a trace function that raises, so a bare ``except:`` that swallows the
  first :class:`TimeUp` inside a loop leaves that loop running without a limit.

Nothing in the course calls a check off the main thread; the fallback is there so that such
a call still gets a limit in the common case (a loop without a bare ``except:``) and never
leaves the learner's code running behind the check's back.
"""

from __future__ import annotations

import math
import os
import signal
import sys
import threading
import time

#: The time limit when ``$COURSE_GRADING_TIME_LIMIT`` is not set, in seconds.
DEFAULT_TIME_LIMIT = 30.0

#: The longest time limit, in seconds (about 11.6 days): a longer one (``1e12``) is
#: clamped to it, since the timers cannot represent it; ``inf`` switches the limit off.
MAX_TIME_LIMIT = 1e6

#: Seconds between the timer's firings after the first (see the module's docstring).
_REPEAT = 0.1


class TimeUp(BaseException):
    """Raised inside the learner's code when its time is up.

    A ``BaseException`` (like ``KeyboardInterrupt``) so that a learner's ``except Exception``
    does not swallow it.
    """


def time_limit_from_env() -> float:
    """``$COURSE_GRADING_TIME_LIMIT`` in seconds (:data:`DEFAULT_TIME_LIMIT` when unset),
    clamped to :data:`MAX_TIME_LIMIT`; a value that is not a positive number is an error."""
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


def checked_limit(limit) -> float:
    """``limit`` as a float number of seconds, clamped to :data:`MAX_TIME_LIMIT` (``inf``
    stays: no limit); a bool, a non-number or a non-positive number is a ``ValueError``."""
    if isinstance(limit, bool) or not isinstance(limit, (int, float)) or not limit > 0:
        raise ValueError(f"time_limit must be a positive number of seconds, got {limit!r}")
    return float(limit) if math.isinf(limit) else min(float(limit), MAX_TIME_LIMIT)


def call_with_time_limit(fn, args, kwargs, limit: float):
    """``fn(*args, **kwargs)``, stopped with :class:`TimeUp` after ``limit`` seconds
    (``inf``: no limit); SIGALRM where it can be used, the trace-function fallback elsewhere."""
    if math.isinf(limit):
        return fn(*args, **kwargs)
    if _can_use_alarm():
        return _call_with_alarm(fn, args, kwargs, limit)
    return _call_with_deadline_trace(fn, args, kwargs, limit)


class _LineTracer:
    """A trace function that raises :class:`TimeUp` on each line run after ``deadline``
    (on ``time.monotonic()``'s clock) until it is switched off.

    It raises on "line" events only: the first line run after a swallowed :class:`TimeUp`
    is inside the ``except`` clause, so the new one leaves it. Switched off, it does nothing,
    so that a frame that kept it (a generator's, resumed later) is not stopped after the
    call is over.
    """

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.on = True

    def __call__(self, frame, event, arg):
        if not self.on:
            return None
        if event == "line" and time.monotonic() >= self.deadline:
            raise TimeUp()
        return self


def _can_use_alarm() -> bool:
    """SIGALRM is usable: Unix, main thread, and nobody else is using the real-time timer."""
    if not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        return False
    try:
        return signal.getsignal(signal.SIGALRM) in (signal.SIG_DFL, signal.SIG_IGN, None) and \
            signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)
    except (ValueError, OSError):
        return False


def _trace_up_to(frame, stop, tracer: _LineTracer) -> None:
    """Trace ``frame`` and its callers up to ``stop`` (not included) with ``tracer``, and
    every frame they call from now on."""
    while frame is not None and frame is not stop:
        frame.f_trace = tracer
        frame = frame.f_back
    sys.settrace(tracer)


def _call_with_alarm(fn, args, kwargs, limit: float):
    """Run ``fn`` on this (main) thread; SIGALRM raises :class:`TimeUp` inside it, and from
    its second firing on (the first was swallowed) every line of the learner's frames does."""
    own_frame = sys._getframe()
    tracer = _LineTracer(deadline=-math.inf)  # once installed, every line raises
    old_trace = sys.gettrace()
    fired = 0

    def on_alarm(signum, frame):
        nonlocal fired
        if not tracer.on:  # the call is over: a late firing is ignored
            return
        fired += 1
        if fired > 1:
            _trace_up_to(frame, own_frame, tracer)
        raise TimeUp()

    previous = signal.signal(signal.SIGALRM, on_alarm)
    try:
        try:
            signal.setitimer(signal.ITIMER_REAL, limit, _REPEAT)
            return fn(*args, **kwargs)
        finally:  # a firing inside this clause leaves it early: the outer one repeats it
            tracer.on = False
            signal.setitimer(signal.ITIMER_REAL, 0.0, 0.0)
    finally:
        tracer.on = False
        signal.setitimer(signal.ITIMER_REAL, 0.0, 0.0)
        if fired > 1:
            sys.settrace(old_trace)
        signal.signal(signal.SIGALRM, previous)


def _call_with_deadline_trace(fn, args, kwargs, limit: float):
    """The fallback: run ``fn`` traced by a :class:`_LineTracer` whose deadline is ``limit``
    seconds from now (limits in the module's docstring)."""
    tracer = _LineTracer(deadline=time.monotonic() + limit)
    old_trace = sys.gettrace()
    sys.settrace(tracer)
    try:
        return fn(*args, **kwargs)
    finally:
        tracer.on = False
        sys.settrace(old_trace)
