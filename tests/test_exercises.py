"""Exercises: generated from solutions/, free of solutions, and their checks fail on a blank.

The solution notebooks themselves are executed by nbval (``make test``), which proves that
every check passes on the reference answer. Each chapter's tests/test_grading_*.py proves that
every check also fails on plausible wrong answers.
"""

import re
import subprocess
import sys

import nbformat
import pytest
from _shared import ROOT
from nbclient import NotebookClient

SOLUTIONS = sorted((ROOT / "solutions").glob("*.ipynb"))
EXERCISES = ROOT / "exercises"


def nbgrader_meta(cell):
    return cell.get("metadata", {}).get("nbgrader", {})


def test_there_are_exercises():
    assert len(SOLUTIONS) >= 2, "every chapter has at least two exercises"


def test_exercises_in_sync_with_solutions():
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "make_exercises.py"), "--check"],
        capture_output=True, text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_solution_notebook_is_well_formed(solution):
    nb = nbformat.read(solution, as_version=4)
    nbformat.validate(nb)
    solution_cells = [c for c in nb.cells if nbgrader_meta(c).get("solution")]
    check_cells = [c for c in nb.cells if nbgrader_meta(c).get("grade")]
    assert solution_cells, "no nbgrader solution cell"
    assert len(check_cells) >= len(solution_cells), "each answer is followed by a check"
    ids = [nbgrader_meta(c)["grade_id"] for c in nb.cells if nbgrader_meta(c)]
    assert len(ids) == len(set(ids)), "grade_id values must be unique"
    for cell in solution_cells:
        assert "### BEGIN SOLUTION" in cell.source and "### END SOLUTION" in cell.source
    for cell in check_cells:
        assert "check_" in cell.source, "a check cell calls a course_lib.grading check"
        # Graded-class mode (book/instructors.md): the check is imported afresh in the cell
        # and called through the module, so an answer cell cannot rebind or patch it; the
        # hidden tests catch a library function replaced by the notebook.
        assert re.search(r"del _sys\.modules\[_name\]\nfrom course_lib\.grading import \w+ "
                         r"as _grading\n", cell.source), "the check is not imported afresh"
        assert re.search(r"^(\w+ = )?_grading\.check_\w+\(", cell.source, re.M), \
            "the check is not called through the freshly imported module"
        assert "### BEGIN HIDDEN TESTS" in cell.source and "### END HIDDEN TESTS" in cell.source
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "strip outputs"


@pytest.mark.parametrize("solution", SOLUTIONS, ids=lambda p: p.stem)
def test_exercise_has_no_solution_and_its_checks_fail_on_the_blank(solution):
    """Run the generated exercise as a learner who has written nothing yet."""
    exercise = EXERCISES / solution.name
    nb = nbformat.read(exercise, as_version=4)
    text = "\n".join(c.source for c in nb.cells)
    assert "BEGIN SOLUTION" not in text and "END SOLUTION" not in text
    assert "HIDDEN TESTS" not in text and "solutions/" not in text, "hidden tests or a path to the answers"
    assert "NotImplementedError" in text

    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(EXERCISES)}}).execute()
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        meta = nbgrader_meta(cell)
        if meta.get("grade"):
            assert errors, f"check {meta['grade_id']} passed on a blank answer"
            assert errors[0].ename == "GradingError", (
                f"check {meta['grade_id']} failed with {errors[0].ename}, not a GradingError "
                f"that tells the learner what to do: {errors[0].evalue}"
            )
        elif not meta.get("solution"):
            assert not errors, f"a non-exercise cell failed: {errors[0].ename}: {errors[0].evalue}"
