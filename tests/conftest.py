"""What every test file shares: the ``device`` fixture and the ``cpu_only`` marker.

``make test`` runs the tests on the CPU; ``make test-gpu`` (``COURSE_DEVICE=cuda``) runs every
test that takes the ``device`` fixture on the GPU. A test that must stay on the CPU uses
``_shared.CPU`` and says why with ``@pytest.mark.cpu_only("reason")``;
``pytest -m cpu_only --collect-only -q`` lists them.

With ``COURSE_DEVICE`` unset, the session sets it to ``cpu``: code the tests leave at
``device=None`` (the course's default, which reads ``COURSE_DEVICE``) then runs on the same device
as the fixture, on a machine with a GPU too. ``COURSE_DEVICE=cuda`` without a GPU stops the
session at once with one clear error (as ``make test-gpu`` does before it starts pytest).

Scheduling: ``make test`` runs two pytest-xdist workers, each taking one whole file (a test file,
a notebook) at a time, in the order of the item list (``--no-loadscope-reorder``; by default xdist
would sort the files by their number of tests, which sent the slowest file, seven tests that
retrain the shipped digit GANs, to the end). ``RUN_FIRST`` lists the files that take most of
the time, slowest first; the others follow in collection order. Starting the long ones first
leaves the short ones to fill the end, so that neither worker waits on the other.
"""

from __future__ import annotations

import os

import pytest
from _shared import device_for_tests


def pytest_configure(config):
    if not os.environ.get("COURSE_DEVICE", "").strip():
        os.environ["COURSE_DEVICE"] = "cpu"
    try:  # COURSE_DEVICE=cuda without a GPU: one clear error, not one per test
        device_for_tests(os.environ["COURSE_DEVICE"])
    except (RuntimeError, ValueError) as exc:
        raise pytest.UsageError(str(exc)) from exc
    config.addinivalue_line(
        "markers",
        "cpu_only(reason): runs on the CPU whatever COURSE_DEVICE says; the reason says why",
    )


#: The files that take most of ``make test``, slowest first, with their seconds in one run with
#: ``--durations=0`` on the 2-core CI machine (an AMD EPYC, 2026-12-07); tests/test_schedule.py
#: checks that each one still exists.
RUN_FIRST = (
    "tests/test_shipped_reproducible.py",  # 314 s
    "tests/test_exercises.py",  # 116 s
    "notebooks/05_gan.ipynb",  # 97 s
    "tests/test_nbgrader.py",  # 72 s
    "notebooks/08_fashion.ipynb",  # 63 s
    "notebooks/07_capstone.ipynb",  # 56 s
    "notebooks/06_vae.ipynb",  # 50 s
)


def _file_rank(item) -> int:
    path = item.nodeid.split("::")[0]
    return RUN_FIRST.index(path) if path in RUN_FIRST else len(RUN_FIRST)


def pytest_collection_modifyitems(items):
    items.sort(key=_file_rank)  # stable: within a file (a notebook's cells) the order is kept
    for item in items:
        for mark in item.iter_markers("cpu_only"):
            if not (mark.args and isinstance(mark.args[0], str) and mark.args[0].strip()):
                raise pytest.UsageError(f"{item.nodeid}: cpu_only needs a reason, "
                                        '@pytest.mark.cpu_only("why")')


@pytest.fixture(scope="session")
def device() -> str:
    """``"cpu"``, or ``"cuda"`` under ``COURSE_DEVICE=cuda`` (an error if there is no GPU)."""
    return device_for_tests(os.environ.get("COURSE_DEVICE"))
