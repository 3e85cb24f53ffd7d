"""The student release of the course: the repository without its answers (graded-class mode).

Self-study uses the repository as it is, answers included (``solutions/``, the worked answers
of the pen-and-paper exercises in a dropdown under each question). A graded class hands its
students a *release* instead, made by one command::

    python tools/student_release.py build DEST [--git]   # or: make student-release DEST=...
    python tools/student_release.py check DEST           # exit 1 if any solution content remains

and, at grading time, ``python tools/student_release.py suspicious NOTEBOOK...`` lists the
answer cells of submitted notebooks that touch the kernel, the import system or the checks
(what the graded cells cannot defend against: book/instructors.md, graded-class mode).

``build`` copies the files git tracks (the working tree's version of each) into ``DEST``, which
must not exist or be empty, and

- leaves out the answers and the instructor's material: ``solutions/``, ``tests/`` (their
  fixtures are correct answers), ``.ci/``, ``nbgrader_config.py``, ``book/instructors.md`` and
  the tools that read ``solutions/`` (see ``EXCLUDED``);
- strips from every book page, and from the markdown cells of every notebook (a chapter
  notebook is a page of the book), the worked answers (a ``:class: dropdown`` admonition, the
  form the pen-and-paper answers take) and every region between ``<!-- student-release: cut -->``
  and ``<!-- student-release: end -->`` (text for instructors or about the answers); a link to
  a page left out becomes plain text;
- sets ``repository.url`` in ``_config.yml`` (the launch buttons) to ``--repository-url`` or
  empty, never the course repository's;
- drops the instructors' page from ``_toc.yml`` and the Makefile's targets that need the
  removed files (tests, exercises, benchmarks' regeneration, lint), writes a README for
  students, and in ``course_lib`` names the exercise notebooks instead of their solutions;
- keeps everything else: ``course_lib`` (the library the students use; its checks compare with
  the library's own implementations, which is what the chapters teach), the chapter notebooks,
  ``exercises/``, the book, ``binder/``, ``benchmarks/``;
- then runs ``check`` on the result, and with ``--git`` makes ``DEST`` a git repository with one
  commit, ready to push to the release repository that students clone.

``check`` fails (exit 1, one line per finding) on: a ``solutions`` folder or notebook; nbgrader's
solution or hidden-test markers; the text ``solutions/`` (a path to the answers); a worked
answer in a markdown page or a notebook's markdown cell; an exercise's answer cell without
``raise NotImplementedError()``; and any answer code of ``solutions/*.ipynb`` (two consecutive
non-trivial lines between the solution markers) found in a notebook or markdown file of the
release. Run from the course repository (or with ``--solutions DIR``) so that it knows the
answers it looks for. (The licence files keep naming ``solutions/`` in their scope: they
cover the course repository as well.)
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: Paths (files, or folders with a trailing slash) that the release leaves out.
EXCLUDED = (
    "solutions/",
    "tests/",
    ".ci/",
    "nbgrader_config.py",
    "book/instructors.md",
    "tools/make_exercises.py",      # reads solutions/
    "tools/nbgrader_source.py",     # copies solutions/ into nbgrader's source/
    "tools/generated.py",           # regenerates exercises/ and the tests' tables
    "tools/time_notebooks.py",      # times the solution notebooks
    "tools/student_release.py",     # this tool: it names solutions/ throughout
)

#: Makefile targets that need an excluded file; the release's Makefile does not have them.
DROPPED_TARGETS = ("browser-test", "test-unit", "test-notebooks", "test", "test-gpu",
                   "exercises", "bench", "regen", "check-generated", "lint",
                   "student-release", "check-student-release")

#: Answer lines that a chapter notebook shows on purpose, by file: ``check`` reports them as
#: notes, not failures. Chapter 2 derives and codes the maximum-likelihood Gaussian (eq. (2.7))
#: that Exercise 2.1's ``fit_gaussian`` asks for again: in a graded class, grade 2.1's
#: log-likelihood and treat its fit as practice (book/instructors.md, graded-class mode).
SHOWN_IN_CHAPTERS = {
    "notebooks/02_images_and_evaluation.ipynb": {
        "X = np.asarray(X, dtype=np.float64)",
        "mean = X.mean(axis=0)",
        "centred = X - mean # subtract the mean from every row",
    },
}

CUT_BEGIN = "<!-- student-release: cut -->"
CUT_END = "<!-- student-release: end -->"

SOLUTION_MARKERS = ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
TEXT_SUFFIXES = {".py", ".md", ".ipynb", ".txt", ".yml", ".yaml", ".toml", ".cfg", ".json",
                 ".sh", ".css", ".html", ".rst", ""}

README = """\
# Image Generation from First Principles: student release

The course's book, chapter notebooks, exercises and its library `course_lib`, for a class
whose exercises are graded. The exercises' answers and the worked answers of the
pen-and-paper exercises are not part of this release.

- `make lab` opens JupyterLab on the chapter notebooks (it first installs the pinned Python
  environment in `.venv`, Python 3.11).
- `make book` builds the book into `_build/html` (it also needs `npm`).
- The exercises are in `exercises/`: replace each `raise NotImplementedError()` with your code,
  then run the check cell below it; `book/exercises.md` lists them.

Made by the course's `tools/student_release.py` from {source}.
"""


# ------------------------------------------------------------------------------ transforms


def strip_worked_answers(text: str) -> str:
    """Remove every dropdown admonition (the worked answers) and every cut region."""
    lines = text.split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() == CUT_BEGIN:
            j = i + 1
            while j < len(lines) and lines[j].strip() != CUT_END:
                j += 1
            if j == len(lines):
                raise ValueError(f"{CUT_BEGIN} at line {i + 1} has no {CUT_END}")
            i = j + 1
            continue
        fence = re.match(r"^(:{3,})\{[\w-]+\}", line)
        if fence:
            end = _fence_end(lines, i, len(fence.group(1)))
            options = lines[i + 1:end]
            if any(re.match(r"^:class:.*\bdropdown\b", o.strip()) for o in options[:4]):
                i = end + 1
                while out and not out[-1].strip() and i < len(lines) and not lines[i].strip():
                    i += 1                      # one blank line between the neighbours
                continue
        out.append(line)
        i += 1
    result = "\n".join(out)
    if result == text:
        return text
    return result.rstrip("\n") + "\n" * (len(text) - len(text.rstrip("\n")))


def _fence_end(lines: list[str], start: int, n_colons: int) -> int:
    """Index of the line that closes the colon fence opened at ``start`` (nesting counted)."""
    depth = 0
    for k in range(start, len(lines)):
        stripped = lines[k].strip()
        if re.match(r"^:{3,}\{", stripped):
            depth += 1
        elif re.fullmatch(r":{3,}", stripped) and len(stripped) >= n_colons:
            depth -= 1
            if depth == 0:
                return k
    raise ValueError(f"the colon fence opened at line {start + 1} is never closed")


def _excluded_pages() -> dict[str, tuple[str, set[str]]]:
    """{page name: (its title, the labels it defines)} of the book pages the release leaves out."""
    pages = {}
    for rel in EXCLUDED:
        path = ROOT / rel
        if rel.startswith("book/") and rel.endswith(".md") and path.is_file():
            text = path.read_text(encoding="utf-8")
            title = re.search(r"^# (.+)$", text, re.M)
            pages[path.stem] = (title.group(1).strip() if title else path.stem,
                                set(re.findall(r"^\(([\w-]+)\)=\s*$", text, re.M)))
    return pages


def unlink_excluded_pages(text: str, pages: dict[str, tuple[str, set[str]]]) -> str:
    """Cross-references to a left-out page (``{doc}`` to it, ``{ref}`` to its labels) become
    plain text (the link's own text, else the page's title in italics), so that the release's
    book still builds with ``-W -n``."""
    def replace(match: re.Match) -> str:
        role, label, target = match.group(1), match.group(2), match.group(3).strip()
        for name, (title, labels) in pages.items():
            if (role == "doc" and target.rsplit("/", 1)[-1] == name) or \
                    (role != "doc" and target in labels):
                return label.strip() if label and label.strip() else f"*{title}*"
        return match.group(0)
    return re.sub(r"\{(doc|ref|numref)\}`(?:([^`<]*)<)?([^`>]+)>?`", replace, text)


def strip_notebook(text: str, pages: dict[str, tuple[str, set[str]]]) -> str:
    """A notebook's JSON with its markdown cells treated as the book's pages are (a chapter
    notebook is a page of the book, and some hold a pen-and-paper exercise); ``text`` itself
    when nothing changes, so that the file is copied byte for byte."""
    nb = json.loads(text)
    changed = False
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        new = unlink_excluded_pages(strip_worked_answers(source), pages)
        if new != source:
            cell["source"] = new.splitlines(keepends=True)
            changed = True
    if not changed:
        return text
    return json.dumps(nb, sort_keys=True, indent=1, ensure_ascii=False) + "\n"


def filter_makefile(text: str) -> str:
    """The Makefile without the rules (and their comments) of ``DROPPED_TARGETS``."""
    out: list[str] = []
    lines = text.split("\n")
    i = 0
    while i < len(lines):
        line = lines[i]
        rule = re.match(r"^([\w.-]+)\s*:(?!=)", line)
        if rule and rule.group(1) in DROPPED_TARGETS:
            while out and out[-1].startswith("#"):   # the comment paragraph above the rule
                out.pop()
            i += 1
            while i < len(lines) and (lines[i].startswith("\t") or lines[i].endswith("\\")):
                i += 1
            continue
        header = re.match(r"^#\s+make ([\w-]+)", line)
        if header and header.group(1) in DROPPED_TARGETS:
            i += 1
            while i < len(lines) and re.match(r"^#\s{6,}\S", lines[i]):
                i += 1
            continue
        if line.startswith(".PHONY:"):
            block = [line]
            while block[-1].endswith("\\"):
                i += 1
                block.append(lines[i])
            names = " ".join(b.rstrip("\\") for b in block).split()[1:]
            out.append(".PHONY: " + " ".join(n for n in names if n not in DROPPED_TARGETS))
            i += 1
            continue
        if rule and not line.startswith("\t"):        # drop the removed prerequisites
            target, _, rest = line.partition(":")
            prereqs = [w for w in rest.split() if w not in DROPPED_TARGETS]
            if prereqs != rest.split():
                line = f"{target}: {' '.join(prereqs or ['venv'])}"
        out.append(line)
        i += 1
    return re.sub(r"\n{3,}", "\n\n", "\n".join(out))


def _toc_without_excluded(text: str) -> str:
    excluded = {e[:-3] for e in EXCLUDED if e.endswith(".md")}
    return "\n".join(line for line in text.split("\n")
                     if not (re.match(r"^\s*- file:\s*(\S+)", line)
                             and re.match(r"^\s*- file:\s*(\S+)", line).group(1) in excluded))


def _config_without_excluded(text: str, repository_url: str = "") -> str:
    """_config.yml without ``solutions`` and with the release's own ``repository.url``: empty
    unless given, so that the launch buttons of a book built from a clone of the release follow
    its ``origin`` (tools/book_fixes.py), never the course repository's URL."""
    text = "\n".join(line for line in text.split("\n")
                     if line.strip() not in ('- "solutions"', "- solutions"))
    return re.sub(r'^(repository:\s*\n(?:\s*#.*\n)*\s+url:\s*).*$',
                  lambda m: m.group(1) + json.dumps(repository_url), text, count=1, flags=re.M)


def repository_url(config_text: str) -> str:
    match = re.search(r'^repository:\s*\n(?:\s*#.*\n)*\s+url:\s*"?([^"\n]*)"?', config_text,
                      re.M)
    return match.group(1).strip() if match else ""


def _library_names_exercises(text: str) -> str:
    # course_lib's docstrings say which notebooks a chapter's checks serve: in the release,
    # the exercise notebooks (same names) instead of their solutions.
    return re.sub(r"\bsolutions/(\d\d_[\w*.-]*\.ipynb)", r"exercises/\1", text)


def _is_excluded(rel: str) -> bool:
    return any(rel == e or (e.endswith("/") and rel.startswith(e)) for e in EXCLUDED)


def _source_description() -> str:
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, check=True,
                                capture_output=True, text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=ROOT, check=True, capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return "the course repository"
    return f"commit {commit} of the course repository" + (
        " (with uncommitted changes)" if dirty.strip() else "")


def tracked_files() -> list[str]:
    result = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True, capture_output=True)
    return [p for p in result.stdout.decode().split("\0") if p and (ROOT / p).is_file()]


def course_repository_url(root: Path = ROOT) -> str:
    """The course repository's URL as its book's launch buttons get it: ``repository.url`` of
    its _config.yml or, where that is empty, the URL of the clone's ``origin`` remote (the
    same rule as tools/book_fixes.py); "" where neither gives one."""
    url = repository_url((root / "_config.yml").read_text(encoding="utf-8"))
    if url:
        return url
    tools = str(Path(__file__).resolve().parent)
    if tools not in sys.path:
        sys.path.insert(0, tools)
    from book_fixes import repository_url_from_git

    return repository_url_from_git(root) or ""


def build(dest: Path, *, make_git: bool = False, url: str = "") -> list[str]:
    """Write the release into ``dest``; return the paths written, relative to ``dest``."""
    if dest.exists() and any(dest.iterdir()):
        raise SystemExit(f"{dest} exists and is not empty: give a new folder")
    if dest.resolve().is_relative_to(ROOT.resolve()):
        raise SystemExit(f"{dest} is inside the course repository: give a folder outside it")
    written = []
    left_out_pages = _excluded_pages()
    for rel in tracked_files():
        if _is_excluded(rel):
            continue
        src, dst = ROOT / rel, dest / rel
        dst.parent.mkdir(parents=True, exist_ok=True)
        if rel == "README.md":
            dst.write_text(README.format(source=_source_description()), encoding="utf-8")
        elif rel == "Makefile":
            dst.write_text(filter_makefile(src.read_text(encoding="utf-8")), encoding="utf-8")
        elif rel == "_toc.yml":
            dst.write_text(_toc_without_excluded(src.read_text(encoding="utf-8")),
                           encoding="utf-8")
        elif rel == "_config.yml":
            dst.write_text(_config_without_excluded(src.read_text(encoding="utf-8"), url),
                           encoding="utf-8")
        elif rel.startswith("book/") and rel.endswith(".md"):
            text = strip_worked_answers(src.read_text(encoding="utf-8"))
            dst.write_text(unlink_excluded_pages(text, left_out_pages), encoding="utf-8")
        elif rel.endswith(".ipynb"):
            dst.write_text(strip_notebook(src.read_text(encoding="utf-8"), left_out_pages),
                           encoding="utf-8")
        elif rel.startswith("course_lib/") and rel.endswith(".py"):
            dst.write_text(_library_names_exercises(src.read_text(encoding="utf-8")),
                           encoding="utf-8")
        else:
            shutil.copy2(src, dst)
        written.append(rel)
    if make_git:
        git = ["git", "-c", "user.name=course release", "-c", "user.email=release@localhost"]
        subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
        subprocess.run(["git", "add", "-A"], cwd=dest, check=True)
        subprocess.run([*git, "commit", "-q", "-m",
                        f"Student release, from {_source_description()}"], cwd=dest, check=True)
    return written


# ---------------------------------------------------------------------------------- check


def _normalise(line: str) -> str:
    return " ".join(line.split())


def answer_fingerprints(solutions: Path) -> set[tuple[str, str]]:
    """Every pair of consecutive non-trivial answer lines of the solution notebooks."""
    pairs: set[tuple[str, str]] = set()
    for path in sorted(solutions.glob("*.ipynb")):
        for cell in json.loads(path.read_text(encoding="utf-8"))["cells"]:
            source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
            inside, lines = False, []
            for line in source.split("\n"):
                if "BEGIN SOLUTION" in line:
                    inside = True
                elif "END SOLUTION" in line:
                    inside = False
                elif inside:
                    text = _normalise(line)
                    if len(text) >= 12 and not text.startswith(("#", '"""', "'''")):
                        lines.append(text)
            pairs.update(zip(lines, lines[1:]))
    return pairs


def _code_lines(path: Path) -> list[str]:
    if path.suffix == ".ipynb":
        nb = json.loads(path.read_text(encoding="utf-8"))
        lines = []
        for cell in nb.get("cells", []):
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            lines += source.split("\n") + [""]
        return [_normalise(x) for x in lines]
    return [_normalise(x) for x in path.read_text(encoding="utf-8").split("\n")]


def check(release: Path, solutions: Path | None = ROOT / "solutions",
          notes: list[str] | None = None, course_url: str | None = None) -> list[str]:
    """Findings of solution content in ``release``; an empty list means none.

    Answer lines listed in ``SHOWN_IN_CHAPTERS`` are appended to ``notes`` instead.
    ``course_url`` is the course repository's URL (default: :func:`course_repository_url`),
    which the release's launch buttons must not use.
    """
    if course_url is None:
        course_url = course_repository_url()
    findings = []
    notes = [] if notes is None else notes
    fingerprints = answer_fingerprints(solutions) if solutions and solutions.is_dir() else set()
    files = sorted(p for p in release.rglob("*") if p.is_file() and ".git" not in p.parts)
    for path in files:
        rel = path.relative_to(release).as_posix()
        if "solutions" in path.relative_to(release).parts or "solution" in path.stem.lower():
            findings.append(f"{rel}: a solutions file")
        if path.suffix not in TEXT_SUFFIXES:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for marker in SOLUTION_MARKERS:
            if marker in text:
                findings.append(f"{rel}: nbgrader's marker '{marker}'")
        # A licence's scope names every folder of the course repository: not a pointer to answers.
        pointers = [] if path.name.startswith("LICENSE") else re.finditer(r"\bsolutions/", text)
        for match in pointers:
            line = text.count("\n", 0, match.start()) + 1
            findings.append(f"{rel}:{line}: names the answers' folder ('solutions/')")
        if rel == "_config.yml":
            if course_url and repository_url(text) == course_url:
                findings.append(f"{rel}: repository.url is the course repository's ({course_url}):"
                                " the launch buttons would hand out the answers")
        if path.suffix == ".md":
            findings += _worked_answer_findings(rel, text)
        if path.suffix == ".ipynb":
            findings += _answer_cell_findings(rel, text)
        if fingerprints and path.suffix in (".ipynb", ".md"):
            lines = _code_lines(path)
            shown = SHOWN_IN_CHAPTERS.get(rel, set())
            for a, b in zip(lines, lines[1:]):
                if (a, b) not in fingerprints:
                    continue
                if a in shown and b in shown:
                    notes.append(f"{rel}: shows answer code on purpose: {a!r} / {b!r}")
                else:
                    findings.append(f"{rel}: answer code of a solution notebook: {a!r} / {b!r}")
                    break
    return findings


def _worked_answer_findings(rel: str, text: str) -> list[str]:
    found = []
    lines = text.split("\n")
    for k, line in enumerate(lines):
        if re.match(r"^:{3,}\{[\w-]+\}", line.strip()) and (
                "worked answer" in line.lower()
                or any(re.match(r"^:class:.*\bdropdown\b", o.strip()) for o in lines[k + 1:k + 5])):
            found.append(f"{rel}:{k + 1}: a worked answer (dropdown): {line.strip()}")
        if re.match(r"^(```+|:{3,})\{dropdown\}", line.strip()):
            found.append(f"{rel}:{k + 1}: a dropdown block: {line.strip()}")
    return found


def _answer_cell_findings(rel: str, text: str) -> list[str]:
    try:
        nb = json.loads(text)
    except json.JSONDecodeError:
        return [f"{rel}: not a valid notebook"]
    found = []
    for k, cell in enumerate(nb.get("cells", [])):
        if cell.get("cell_type") == "markdown":
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            found += [f.replace(f"{rel}:", f"{rel} (cell {k}), line ", 1)
                      for f in _worked_answer_findings(rel, source)]
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("solution") or cell.get("cell_type") != "code":
            continue
        source = cell.get("source", "")
        source = "".join(source) if isinstance(source, list) else source
        if "raise NotImplementedError()" not in source:
            found.append(f"{rel}: answer cell {meta.get('grade_id')!r} is not blank "
                         "(no `raise NotImplementedError()`)")
    return found


#: What an answer cell has no reason to touch: the kernel, the import system, the checks.
SUSPICIOUS = re.compile(r"get_ipython|sys\.modules|builtins|importlib|meta_path|__import__"
                        r"|course_lib\.grading|setattr|globals\(\)")


def suspicious_answers(paths: list[Path]) -> list[str]:
    """``path: grade_id: what`` for every answer cell of the notebooks that matches SUSPICIOUS."""
    found = []
    for path in paths:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        for cell in nb.get("cells", []):
            meta = cell.get("metadata", {}).get("nbgrader", {})
            source = cell.get("source", "")
            source = "".join(source) if isinstance(source, list) else source
            hits = sorted(set(SUSPICIOUS.findall(source))) if meta.get("solution") else []
            if hits:
                found.append(f"{path}: {meta.get('grade_id')}: {', '.join(hits)}")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="write the student release into DEST, then check it")
    b.add_argument("dest", type=Path)
    b.add_argument("--git", action="store_true", help="make DEST a git repository (one commit)")
    b.add_argument("--repository-url", default="", help="the release repository's URL, for "
                   "the book's launch buttons (default: empty, i.e. the clone's origin)")
    c = sub.add_parser("check", help="exit 1 if RELEASE contains solution content")
    c.add_argument("release", type=Path)
    c.add_argument("--solutions", type=Path, default=ROOT / "solutions",
                   help="the solution notebooks whose answer code to look for")
    s = sub.add_parser("suspicious", help="list the answer cells of submitted notebooks that "
                       "touch the kernel, the import system or the checks (exit 1 if any)")
    s.add_argument("notebooks", type=Path, nargs="+")
    args = parser.parse_args(argv)
    if args.command == "suspicious":
        found = suspicious_answers(args.notebooks)
        print("\n".join(found) if found else "no answer cell touches the kernel or the checks")
        return 1 if found else 0
    if args.command == "build":
        written = build(args.dest, make_git=args.git, url=args.repository_url)
        print(f"wrote {len(written)} files to {args.dest}")
        notes: list[str] = []
        findings = check(args.dest, notes=notes)
    else:
        if not args.release.is_dir():
            print(f"{args.release} is not a folder", file=sys.stderr)
            return 2
        notes = []
        findings = check(args.release, args.solutions, notes=notes)
    for line in notes:
        print("note:", line)
    for line in findings:
        print(line)
    if findings:
        print(f"FAILED: {len(findings)} finding(s) of solution content", file=sys.stderr)
        return 1
    print("no solution content found")
    return 0


if __name__ == "__main__":
    sys.exit(main())
