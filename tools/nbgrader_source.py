"""Fill nbgrader's ``source/`` folder from ``solutions/``: one assignment per chapter.

``solutions/02_gaussian_mle.ipynb`` becomes ``<course>/source/ch02/02_gaussian_mle.ipynb``;
``<course>`` is the course directory of ``nbgrader_config.py`` (``_build/nbgrader``, or
``$NBGRADER_COURSE_ROOT``). Existing copies are replaced, so rerun it after editing a solution.
The graded cells keep their hidden tests (``### BEGIN HIDDEN TESTS``) in ``source/``:
``nbgrader generate_assignment`` removes them from ``release/`` (as ``make exercises`` does
from ``exercises/``) and ``nbgrader autograde`` restores them from the gradebook. Students get
the notebooks of the student release, never this folder (book/instructors.md, graded-class
mode).

Usage: ``python tools/nbgrader_source.py [--course DIR] [--chapter 02 ...]``; prints the
assignments it wrote.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def course_root() -> Path:
    return Path(os.environ.get("NBGRADER_COURSE_ROOT", ROOT / "_build" / "nbgrader"))


def fill_source(course: Path, chapters: list[str] | None = None) -> dict[str, list[Path]]:
    """Copy every solution notebook into ``course/source/chNN/``; return {assignment: files}."""
    written: dict[str, list[Path]] = {}
    for nb in sorted((ROOT / "solutions").glob("[0-9][0-9]_*.ipynb")):
        chapter = nb.name[:2]
        if chapters and chapter not in chapters:
            continue
        dest = course / "source" / f"ch{chapter}" / nb.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(nb, dest)
        written.setdefault(f"ch{chapter}", []).append(dest)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--course", type=Path, default=None)
    parser.add_argument("--chapter", action="append", help="e.g. 02 (repeatable)")
    args = parser.parse_args(argv)
    course = args.course or course_root()
    written = fill_source(course, args.chapter)
    if not written:
        print("no solution notebook found", file=sys.stderr)
        return 1
    for name, files in written.items():
        print(f"{course / 'source' / name}: {', '.join(f.name for f in files)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
