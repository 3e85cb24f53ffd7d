"""The instructor's path from solutions/ to a graded submission, with nbgrader's own CLI.

solutions/ -> tools/nbgrader_source.py -> nbgrader generate_assignment (the student version)
-> two submissions (one solved, one handed back blank) -> nbgrader autograde -> the gradebook
holds full marks for the first and zero for the second. Uses the repository's
nbgrader_config.py, with the course directory in tmp_path (NBGRADER_COURSE_ROOT).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from _shared import ROOT

BIN = Path(sys.executable).parent
NOTEBOOK = "02_gaussian_mle.ipynb"


def _nbgrader(args, env):
    result = subprocess.run([str(BIN / "nbgrader"), *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


@pytest.mark.slow
def test_solutions_to_graded_submission(tmp_path, device):
    if not (BIN / "nbgrader").exists():
        pytest.skip("nbgrader's command line is not installed in this environment")
    course = tmp_path / "course"
    # nbgrader calls `alembic` by name to create the gradebook: the venv's bin must be on PATH.
    env = {**os.environ, "NBGRADER_COURSE_ROOT": str(course), "COURSE_DEVICE": device,
           "OMP_NUM_THREADS": "1", "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    subprocess.run([sys.executable, str(ROOT / "tools" / "nbgrader_source.py"), "--course",
                    str(course), "--chapter", "02"], check=True, env=env)
    source = course / "source" / "ch02"
    for other in source.glob("*.ipynb"):  # one notebook keeps the test short
        if other.name != NOTEBOOK:
            other.unlink()

    _nbgrader(["generate_assignment", "ch02", "--force"], env)
    released = course / "release" / "ch02" / NOTEBOOK
    text = released.read_text(encoding="utf-8")
    assert "raise NotImplementedError()" in text and "### BEGIN SOLUTION" not in text
    # The released notebook is the exercise that `make exercises` writes (same cells).
    exercise = json.loads((ROOT / "exercises" / NOTEBOOK).read_text(encoding="utf-8"))
    release = json.loads(text)
    code = lambda nb: [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]  # noqa: E731
    assert [s.strip() for s in map("".join, code(release))] == \
        [s.strip() for s in map("".join, code(exercise))]

    # alice solved it (her notebook has the answers), bob handed in the blank exercise.
    for student, src in (("alice", source / NOTEBOOK), ("bob", released)):
        dest = course / "submitted" / student / "ch02" / NOTEBOOK
        dest.parent.mkdir(parents=True)
        shutil.copyfile(src, dest)
    _nbgrader(["autograde", "ch02", "--create"], env)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}",
                   "image-generation-first-principles") as gb:
        alice = gb.find_submission("ch02", "alice")
        bob = gb.find_submission("ch02", "bob")
        assert alice.max_score >= 2
        assert alice.score == alice.max_score
        assert bob.score == 0
    assert (course / "autograded" / "alice" / "ch02" / NOTEBOOK).is_file()
