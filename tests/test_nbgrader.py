"""The instructor's path from solutions/ to a graded submission, with nbgrader's own CLI.

solutions/ -> tools/nbgrader_source.py -> nbgrader generate_assignment (the student version)
-> submissions -> nbgrader autograde -> the gradebook holds full marks for the solved one and
zero for the blank one and for blanks that try to disarm the test cells (issue 24): an answer
cell that rebinds the check's name, one that monkeypatches the check in
``course_lib.grading``, and correct answers that also replace a function of ``course_lib`` or
NumPy (caught by the hidden tests, which the release leaves out and autograde restores). Uses the
repository's nbgrader_config.py, with the course directory in tmp_path (NBGRADER_COURSE_ROOT).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _shared import ROOT

BIN = Path(sys.executable).parent
NOTEBOOK = "02_gaussian_mle.ipynb"
CHECKS = ("check_fit_gaussian", "check_gaussian_log_likelihood")

# What each attacker adds at the end of the first answer cell of the notebook.
REBIND = "\n".join(f'{name} = lambda *args, **kwargs: print("\u2714 passed")' for name in CHECKS)
MONKEYPATCH = "import course_lib.grading.ch02 as _g\n" + "\n".join(
    f'_g.{name} = lambda *args, **kwargs: print("\u2714 passed")' for name in CHECKS)
REPLACE_LIBRARY = "import course_lib.metrics as _m\n_m.fid = lambda *args, **kwargs: 0.0"
# A wrapper that returns what NumPy's function returns: the answer stays right, and the checks
# (imported afresh after this cell) take the wrapper for NumPy's own function.
REPLACE_NUMPY = ("_slogdet = np.linalg.slogdet\n"
                 "np.linalg.slogdet = lambda a: _slogdet(a)")


def _with_lines(notebook: dict, grade_id: str, lines: str) -> dict:
    """A copy of the notebook with ``lines`` appended to the answer cell ``grade_id``."""
    nb = json.loads(json.dumps(notebook))
    cells = [c for c in nb["cells"]
             if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == grade_id]
    assert len(cells) == 1, grade_id
    source = "".join(cells[0]["source"])
    cells[0]["source"] = source.rstrip("\n") + "\n\n\n" + lines + "\n"
    return nb


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
    # The hidden tests are in the source (the gradebook keeps them), not in the release.
    assert "### BEGIN HIDDEN TESTS" in (source / NOTEBOOK).read_text(encoding="utf-8")
    assert "HIDDEN TESTS" not in text and "_replaced" not in text
    # The released notebook is the exercise that `make exercises` writes (same cells).
    exercise = json.loads((ROOT / "exercises" / NOTEBOOK).read_text(encoding="utf-8"))
    release = json.loads(text)
    code = lambda nb: [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]  # noqa: E731
    assert [s.strip() for s in map("".join, code(release))] == \
        [s.strip() for s in map("".join, code(exercise))]

    # alice solved it (her notebook has the answers), bob handed in the blank exercise; carol
    # and dave handed in the blank with a line that disarms the checks of the old test cells
    # (`check_x(answer)` by a name the answer cell can rebind or patch); erin and frank solved
    # it and replaced a function of course_lib, or of NumPy, on the way.
    solved = json.loads((source / NOTEBOOK).read_text(encoding="utf-8"))
    submissions = {
        "alice": solved,
        "bob": release,
        "carol": _with_lines(release, "fit_gaussian", REBIND),
        "dave": _with_lines(release, "fit_gaussian", MONKEYPATCH),
        "erin": _with_lines(solved, "fit_gaussian", REPLACE_LIBRARY),
        "frank": _with_lines(solved, "fit_gaussian", REPLACE_NUMPY),
    }
    for student, nb in submissions.items():
        dest = course / "submitted" / student / "ch02" / NOTEBOOK
        dest.parent.mkdir(parents=True)
        dest.write_text(json.dumps(nb), encoding="utf-8")
    _nbgrader(["autograde", "ch02", "--create"], env)

    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}",
                   "image-generation-first-principles") as gb:
        alice = gb.find_submission("ch02", "alice")
        assert alice.max_score >= 2
        assert alice.score == alice.max_score
        scores = {student: gb.find_submission("ch02", student).score
                  for student in ("bob", "carol", "dave", "erin", "frank")}
        assert scores == {"bob": 0, "carol": 0, "dave": 0, "erin": 0, "frank": 0}
    assert (course / "autograded" / "alice" / "ch02" / NOTEBOOK).is_file()


@pytest.mark.slow
def test_the_attacks_disarm_test_cells_that_call_the_check_by_name():
    """The control of the test above: carol's and dave's lines are real attacks.

    carol's blank passes every check of the old test cells (the check imported once at the top,
    then ``check_x(answer)``), dave's every check of test cells that import the grading module
    without loading it afresh; with the current test cells, both fail every check.
    """
    from nbclient import NotebookClient

    exercise = json.loads((ROOT / "exercises" / NOTEBOOK).read_text(encoding="utf-8"))
    graded = lambda cell: cell.get("metadata", {}).get("nbgrader", {}).get("grade")  # noqa: E731

    def old_style(nb):
        nb = json.loads(json.dumps(nb))
        nb["cells"][1]["source"] = ("".join(nb["cells"][1]["source"]) + "\nfrom "
                                    "course_lib.grading.ch02 import " + ", ".join(CHECKS))
        for cell in filter(graded, nb["cells"]):
            call = [line for line in "".join(cell["source"]).split("\n") if "_grading.check_" in line]
            cell["source"] = call[0].replace("_grading.", "")
        return nb

    def not_afresh(nb):
        nb = json.loads(json.dumps(nb))
        for cell in filter(graded, nb["cells"]):
            lines = "".join(cell["source"]).split("\n")
            cell["source"] = "\n".join(x for x in lines if "_sys.modules" not in x)
        return nb

    def failed_checks(nb):
        nb = nbformat.reads(json.dumps(nb), as_version=4)
        NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                       resources={"metadata": {"path": str(ROOT / "exercises")}}).execute()
        return [any(o.output_type == "error" for o in c.outputs)
                for c in nb.cells if graded(c)]

    assert "from course_lib.grading" not in "".join(exercise["cells"][1]["source"])
    for attack, weaker_cells in ((REBIND, old_style), (MONKEYPATCH, not_afresh)):
        attacked = _with_lines(exercise, "fit_gaussian", attack)
        assert failed_checks(weaker_cells(attacked)) == [False, False], attack
        assert failed_checks(attacked) == [True, True], attack
