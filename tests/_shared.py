"""Constants and helpers shared by the test files: one definition each.

The tests import it as ``from _shared import ...`` (pytest puts ``tests/`` on ``sys.path``).
The ``device`` fixture itself lives in ``conftest.py``; its logic is :func:`device_for_tests`,
a plain function so that ``tests/test_core.py`` can check it with any environment value.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import torch

#: The repository's root folder.
ROOT = Path(__file__).resolve().parent.parent

#: The CPU, for tests that must stay there whatever ``COURSE_DEVICE`` says. Every such test
#: carries ``@pytest.mark.cpu_only(reason)`` saying why (a call outside any test, in a table
#: built at collection time, says why in a comment).
CPU = "cpu"


def load_script(relative_path: str) -> ModuleType:
    """A script of the repository that is not a package module (a benchmark, a tool), imported
    from its file so that a test can call its functions."""
    path = ROOT / relative_path
    spec = importlib.util.spec_from_file_location(path.stem, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def device_for_tests(course_device: str | None) -> str:
    """The device the tests run on, given the value of ``COURSE_DEVICE`` (``None``: unset).

    ``cpu`` when unset, empty or ``cpu``: a plain ``make test`` tests the CPU, where the course
    promises bit-exact results, even on a machine with a GPU. ``cuda`` when ``COURSE_DEVICE``
    is ``cuda`` (``make test-gpu``), and then a ``RuntimeError`` if PyTorch sees no GPU: never
    a silent fallback to the CPU. ``auto`` as in the course: the GPU if there is one. Any other
    value is a ``ValueError``.
    """
    choice = (course_device or "").strip().lower()
    if choice in ("", "cpu"):
        return "cpu"
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError(
                "COURSE_DEVICE=cuda but torch.cuda.is_available() is False: the tests were asked "
                "to run on a CUDA GPU and PyTorch sees none. Unset COURSE_DEVICE (or set it to "
                "cpu) to test the CPU."
            )
        return "cuda"
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    raise ValueError(
        f"COURSE_DEVICE must be 'cpu', 'cuda', 'auto' or unset, got {course_device!r}"
    )
