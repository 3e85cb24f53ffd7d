"""The student release of the graded-class mode (tools/student_release.py, issue 24).

The release of the current repository holds no solution content (the checker finds none), while
every kind of solution content planted into it makes the checker fail; its exercises run
against its own copy of course_lib; its book pages keep their questions, lose their worked
answers and stay valid (fences closed, every page, document and label they name present).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from _shared import ROOT

sys.path.insert(0, str(ROOT / "tools"))
import student_release as sr  # noqa: E402

TOOL = ROOT / "tools" / "student_release.py"


@pytest.fixture(scope="module")
def release(tmp_path_factory) -> Path:
    dest = tmp_path_factory.mktemp("release") / "course"
    result = subprocess.run([sys.executable, str(TOOL), "build", str(dest), "--git"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no solution content found" in result.stdout
    return dest


def _copy(release: Path, tmp_path: Path) -> Path:
    dest = tmp_path / "planted"
    shutil.copytree(release, dest, ignore=shutil.ignore_patterns(".git"))
    return dest


def test_the_release_holds_no_solution_content(release):
    assert sr.check(release) == []
    assert not (release / "solutions").exists() and not (release / "tests").exists()
    assert not (release / "book" / "instructors.md").exists()
    assert not (release / "nbgrader_config.py").exists()
    # What students need stays: the library with its checks, the exercises, notebooks, book.
    assert (release / "course_lib" / "grading" / "__init__.py").is_file()
    exercises = sorted(p.name for p in (release / "exercises").glob("*.ipynb"))
    assert exercises == sorted(p.name for p in (ROOT / "solutions").glob("*.ipynb"))
    assert (release / "notebooks").is_dir() and (release / "book" / "exercises.md").is_file()
    for path in release.rglob("*"):
        if (path.is_file() and ".git" not in path.parts and path.suffix in (".md", ".ipynb")
                and not path.name.startswith("LICENSE")):   # a licence's scope names folders
            text = path.read_text(encoding="utf-8")
            assert "solutions/" not in text, path
            assert "student-release:" not in text, path


def test_the_release_is_a_git_repository_with_one_clean_commit(release):
    log = subprocess.run(["git", "log", "--oneline"], cwd=release, capture_output=True,
                         text=True, check=True).stdout.splitlines()
    status = subprocess.run(["git", "status", "--porcelain"], cwd=release, capture_output=True,
                            text=True, check=True).stdout
    assert len(log) == 1 and "Student release" in log[0] and status == ""


def _plant_solution_folder(root: Path):
    (root / "solutions").mkdir()
    shutil.copy(ROOT / "solutions" / "06_iwae.ipynb", root / "solutions")


def _plant_marker(root: Path):
    path = root / "exercises" / "06_iwae.ipynb"
    nb = nbformat.read(path, as_version=4)
    answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
    answer.source = answer.source.replace("# YOUR CODE HERE", "### BEGIN SOLUTION\n    ### END SOLUTION")
    nbformat.write(nb, path)


def _plant_answer_code(root: Path):
    """The solution's answer cell, markers removed, in place of the exercise's blank."""
    solved = nbformat.read(ROOT / "solutions" / "03_estep_logsumexp.ipynb", as_version=4)
    path = root / "exercises" / "03_estep_logsumexp.ipynb"
    nb = nbformat.read(path, as_version=4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c for c in solved.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in nb.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if grade_id == "e_step":
            cell.source = "\n".join(line for line in answers[grade_id].source.split("\n")
                                    if "SOLUTION" not in line)
    nbformat.write(nb, path)


def _plant_answer_in_markdown(root: Path):
    solved = nbformat.read(ROOT / "solutions" / "06_iwae.ipynb", as_version=4)
    answer = next(c for c in solved.cells if c.metadata.get("nbgrader", {}).get("solution"))
    body = "\n".join(line for line in answer.source.split("\n") if "SOLUTION" not in line)
    with (root / "book" / "faq.md").open("a", encoding="utf-8") as f:
        f.write(f"\n```python\n{body}\n```\n")


def _plant_worked_answer(root: Path):
    shutil.copy(ROOT / "book" / "05_gan.md", root / "book" / "05_gan.md")


def _plant_worked_answer_in_a_notebook(root: Path):
    shutil.copy(ROOT / "notebooks" / "02_images_and_evaluation.ipynb", root / "notebooks")


def _plant_pointer(root: Path):
    path = root / "exercises" / "02_gaussian_mle.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source = "Generated from `solutions/02_gaussian_mle.ipynb` by `make exercises`."
    nbformat.write(nb, path)


PLANTS = {
    "solutions folder": (_plant_solution_folder, "a solutions file"),
    "solution marker": (_plant_marker, "BEGIN SOLUTION"),
    "answer code in an answer cell": (_plant_answer_code, "answer code of a solution notebook"),
    "answer cell not blank": (_plant_answer_code, "is not blank"),
    "answer code in a page": (_plant_answer_in_markdown, "answer code of a solution notebook"),
    "worked answer": (_plant_worked_answer, "a worked answer"),
    "worked answer in a notebook": (_plant_worked_answer_in_a_notebook, "a worked answer"),
    "path to the answers": (_plant_pointer, "names the answers' folder"),
}


@pytest.mark.parametrize("plant", PLANTS, ids=lambda name: name.replace(" ", "-"))
def test_planted_solution_content_makes_the_check_fail(release, tmp_path, plant):
    planted = _copy(release, tmp_path)
    assert sr.check(planted) == []
    make, expected = PLANTS[plant]
    make(planted)
    findings = sr.check(planted)
    assert any(expected in f for f in findings), findings


def test_the_releases_launch_buttons_never_point_at_the_course_repository(release, tmp_path):
    course = "https://github.com/someone/course"
    config = (ROOT / "_config.yml").read_text(encoding="utf-8")
    config = re.sub(r'^(repository:\s*\n(?:\s*#.*\n)*\s+url:\s*).*$', rf'\1"{course}"',
                    config, count=1, flags=re.M)
    assert sr.repository_url(config) == course
    assert sr.repository_url(sr._config_without_excluded(config)) == ""
    assert sr.repository_url(sr._config_without_excluded(config, "https://x.org/r")) == \
        "https://x.org/r"
    planted = _copy(release, tmp_path)
    assert sr.check(planted, course_url=course) == []
    (planted / "_config.yml").write_text(config, encoding="utf-8")
    findings = sr.check(planted, course_url=course)
    assert len(findings) == 1 and "launch buttons" in findings[0], findings


def test_the_course_url_defaults_to_the_clones_origin_where_the_config_has_none(tmp_path):
    # The launch buttons follow the `origin` remote when _config.yml names no URL
    # (tools/book_fixes.py): check() must then guard that URL, not "" (which guards nothing).
    course = tmp_path / "course"
    course.mkdir()
    (course / "_config.yml").write_text('repository:\n  url: ""\n', encoding="utf-8")
    assert sr.course_repository_url(course) == ""  # not a git clone, no URL in the config
    subprocess.run(["git", "init", "-q", str(course)], check=True)
    subprocess.run(["git", "-C", str(course), "remote", "add", "origin",
                    "git@github.com:someone/course.git"], check=True)
    assert sr.course_repository_url(course) == "https://github.com/someone/course"
    (course / "_config.yml").write_text('repository:\n  url: "https://github.com/a/b"\n',
                                        encoding="utf-8")
    assert sr.course_repository_url(course) == "https://github.com/a/b"


def test_the_checker_exits_non_zero_on_a_planted_solution(release, tmp_path):
    planted = _copy(release, tmp_path)
    run = lambda: subprocess.run([sys.executable, str(TOOL), "check", str(planted)],  # noqa: E731
                                 capture_output=True, text=True, timeout=120)
    clean = run()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    _plant_worked_answer(planted)
    dirty = run()
    assert dirty.returncode == 1 and "05_gan.md" in dirty.stdout, dirty.stdout


def test_the_exercises_run_against_the_releases_course_lib(release, monkeypatch):
    """Exercise 2.1 in the release, its first answer filled in: that check passes (with the
    release's own course_lib, not the repository's), the blank second one fails with a
    GradingError, as in exercises/."""
    from nbclient import NotebookClient

    solved = nbformat.read(ROOT / "solutions" / "02_gaussian_mle.ipynb", as_version=4)
    nb = nbformat.read(release / "exercises" / "02_gaussian_mle.ipynb", as_version=4)
    answer = next(c for c in solved.cells
                  if c.metadata.get("nbgrader", {}).get("grade_id") == "fit_gaussian")
    for cell in nb.cells:
        if cell.metadata.get("nbgrader", {}).get("grade_id") == "fit_gaussian":
            cell.source = answer.source
    nb.cells.append(nbformat.v4.new_code_cell("import course_lib\nprint(course_lib.__file__)"))
    monkeypatch.setenv("PYTHONPATH", str(release))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    NotebookClient(nb, timeout=120, kernel_name="python3", allow_errors=True,
                   resources={"metadata": {"path": str(release / "exercises")}}).execute()
    graded = [c for c in nb.cells if c.metadata.get("nbgrader", {}).get("grade")]
    errors = [[o for o in c.outputs if o.output_type == "error"] for c in graded]
    assert errors[0] == [], errors[0]
    assert len(errors[1]) == 1 and errors[1][0].ename == "GradingError", errors[1]
    where = "".join(o.get("text", "") for o in nb.cells[-1].outputs)
    assert Path(where.strip()).resolve().is_relative_to(release.resolve()), where


def _labels(root: Path) -> set[str]:
    labels = set()
    for path in list(root.glob("book/*.md")) + list(root.glob("notebooks/*.ipynb")):
        text = path.read_text(encoding="utf-8")
        if path.suffix == ".ipynb":
            text = "\n".join(c.source for c in nbformat.reads(text, as_version=4).cells
                             if c.cell_type == "markdown")
        labels |= set(re.findall(r"^\(([\w-]+)\)=\s*$", text, re.M))
        labels |= set(re.findall(r"^:label:\s*([\w-]+)", text, re.M))
        labels |= set(re.findall(r"\)\s*\(([\w-]+)\)\s*$", text, re.M))   # $$ ... $$ (label)
        labels |= set(re.findall(r"^\$\$\s*\(([\w-]+)\)", text, re.M))
    return labels


def test_the_releases_book_pages_stay_valid(release):
    toc = (release / "_toc.yml").read_text(encoding="utf-8")
    for name in re.findall(r"- file:\s*(\S+)", toc):
        assert any((release / f"{name}{ext}").is_file() for ext in (".md", ".ipynb")), name
    labels = _labels(release)
    original_labels = _labels(ROOT)
    for page in sorted((release / "book").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        lines = text.split("\n")
        for k, line in enumerate(lines):                   # every colon fence is closed
            fence = re.match(r"^(:{3,})\{", line.strip())
            if fence:
                sr._fence_end(lines, k, len(fence.group(1)))
        for target in re.findall(r"\{doc\}`(?:[^`<]*<)?([^`>]+)>?`", text):
            base = (page.parent / target).resolve()
            assert any(Path(f"{base}{ext}").is_file() for ext in (".md", ".ipynb")), \
                f"{page.name}: {{doc}} {target}"
        for target in re.findall(r"\{(?:ref|numref)\}`(?:[^`<]*<)?([^`>]+)>?`", text):
            # a label the repository defines must still be defined in the release
            assert target in labels or target not in original_labels, \
                f"{page.name}: {{ref}} {target}"
        original = (ROOT / "book" / page.name).read_text(encoding="utf-8")
        # the questions stay, the worked answers go
        assert text.count("Pen-and-paper exercise") == original.count("Pen-and-paper exercise")
        assert ":class: dropdown" not in text and "Worked answer" not in text
    questions = 0
    for path in sorted((release / "notebooks").glob("*.ipynb")):   # pages of the book too
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        original = "\n".join(c.source for c in nbformat.read(ROOT / "notebooks" / path.name,
                                                              as_version=4).cells
                             if c.cell_type == "markdown")
        assert text.count("Pen-and-paper exercise") == original.count("Pen-and-paper exercise")
        assert ":class: dropdown" not in text and "Worked answer" not in text, path.name
        questions += text.count("Pen-and-paper exercise")
    assert questions >= 1, "Chapter 2's pen-and-paper exercise is in its notebook"


def test_strip_worked_answers_removes_dropdowns_and_cut_regions_only():
    page = "\n".join([
        "# Title", "",
        ":::{admonition} Exercise", "Question?", ":::", "",
        ":::{admonition} Worked answer", ":class: dropdown", "$$", "a = b", "$$",
        "::::{note}", "nested", "::::", ":::", "",
        ":::{admonition} A tip", ":class: tip", "Keep me.", ":::", "",
        "Before.", sr.CUT_BEGIN, "For instructors.", sr.CUT_END, "After.",
    ])
    out = sr.strip_worked_answers(page)
    assert "Question?" in out and "Keep me." in out and "Before." in out and "After." in out
    assert "a = b" not in out and "nested" not in out and "Worked answer" not in out
    assert "For instructors." not in out and "student-release" not in out
    with pytest.raises(ValueError):
        sr.strip_worked_answers("text\n" + sr.CUT_BEGIN + "\nnever closed\n")
    with pytest.raises(ValueError):
        sr.strip_worked_answers(":::{admonition} Worked answer\n:class: dropdown\nopen\n")


def test_links_to_a_left_out_page_become_plain_text():
    pages = {"instructors": ("For instructors", {"graded-class-mode"})}
    text = ("See {doc}`instructors`, {doc}`the kit <../book/instructors>`, "
            "{ref}`graded-class-mode`, {ref}`the mode <graded-class-mode>` and {doc}`faq`.")
    assert sr.unlink_excluded_pages(text, pages) == (
        "See *For instructors*, the kit, *For instructors*, the mode and {doc}`faq`.")


def test_the_releases_makefile_keeps_the_students_targets_only(release):
    text = (release / "Makefile").read_text(encoding="utf-8")
    for target in sr.DROPPED_TARGETS:
        assert not re.search(rf"^{re.escape(target)}\s*:", text, re.M), target
    assert "solutions" not in text and not re.search(r"^\t.*\btests\b", text, re.M)
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    env = {**os.environ, "MAKEFLAGS": ""}
    dry = subprocess.run(["make", "-n", "all", "venv", "lab", "book", "clean"], cwd=release,
                         capture_output=True, text=True, env=env, timeout=60)
    assert dry.returncode == 0, dry.stdout + dry.stderr


def test_suspicious_lists_the_answer_cells_that_touch_the_checks(tmp_path):
    """At grading time: the attacks of tests/test_nbgrader.py are listed, honest answers not."""
    attacks = {
        "rebind-and-patch": "import course_lib.grading.ch02 as _g\n_g.check_fit_gaussian = print",
        "kernel": "get_ipython().input_transformers_cleanup.append(lambda lines: [])",
        "setattr": "import course_lib.metrics as m\nsetattr(m, 'fid', len)",
    }
    honest = [ROOT / "solutions" / p.name for p in sorted((ROOT / "exercises").glob("*.ipynb"))]
    assert sr.suspicious_answers(honest) == []
    for name, lines in attacks.items():
        nb = nbformat.read(ROOT / "exercises" / "02_gaussian_mle.ipynb", as_version=4)
        answer = next(c for c in nb.cells if c.metadata.get("nbgrader", {}).get("solution"))
        answer.source += "\n" + lines
        path = tmp_path / f"{name}.ipynb"
        nbformat.write(nb, path)
        found = sr.suspicious_answers([path])
        assert len(found) == 1 and "fit_gaussian" in found[0], (name, found)
    result = subprocess.run([sys.executable, str(TOOL), "suspicious", *map(str, honest)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout
    result = subprocess.run([sys.executable, str(TOOL), "suspicious", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1 and "setattr" in result.stdout, result.stdout
