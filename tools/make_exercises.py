"""Generate exercises/ from solutions/ with nbgrader's ClearSolutions preprocessor.

Every ``### BEGIN SOLUTION`` … ``### END SOLUTION`` region of a solution cell (a cell whose
metadata says ``nbgrader.solution: true``) becomes ``raise NotImplementedError()``; outputs
and execution counts are cleared. This is the same transformation as::

    jupyter nbconvert --to notebook \
        --Exporter.preprocessors='["nbgrader.preprocessors.ClearSolutions"]' solutions/X.ipynb

run through nbconvert's Python API so that the result is byte-for-byte reproducible.

Usage: ``python tools/make_exercises.py [--check] [--out DIR]``. ``--check`` regenerates into
a temporary folder and exits 1 if exercises/ differs (what the tests and CI run).
"""

from __future__ import annotations

import argparse
import filecmp
import sys
import tempfile
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor
from nbgrader.preprocessors import ClearSolutions

ROOT = Path(__file__).resolve().parent.parent
SOLUTIONS = ROOT / "solutions"
EXERCISES = ROOT / "exercises"

BANNER = (
    "> **Exercise notebook.** Generated from `solutions/{name}` by `make exercises`; do not edit "
    "by hand. Replace each `raise NotImplementedError()` with your code, then run the check "
    "cell below it."
)


def convert(src: Path) -> nbformat.NotebookNode:
    """The exercise version of one solution notebook."""
    nb = nbformat.read(src, as_version=4)
    resources: dict = {}
    nb, resources = ClearSolutions().preprocess(nb, resources)
    nb, resources = ClearOutputPreprocessor().preprocess(nb, resources)
    for cell in nb.cells:
        cell.pop("execution_count", None) if cell.cell_type != "code" else None
        if cell.cell_type == "code":
            cell.execution_count = None
    banner = nbformat.v4.new_markdown_cell(BANNER.format(name=src.name))
    banner.id = "exercise-banner"
    banner.metadata["tags"] = ["generated"]
    nb.cells.insert(0, banner)
    return nb


def write_all(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for src in sorted(SOLUTIONS.glob("*.ipynb")):
        dst = out / src.name
        nbformat.write(convert(src), dst)
        written.append(dst)
    return written


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if exercises/ is stale")
    parser.add_argument("--out", type=Path, default=EXERCISES)
    args = parser.parse_args(argv)
    if not args.check:
        for old in args.out.glob("*.ipynb"):
            if not (SOLUTIONS / old.name).exists():
                old.unlink()
        for path in write_all(args.out):
            print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        fresh = write_all(Path(tmp))
        stale = [p.name for p in fresh if not (EXERCISES / p.name).exists()
                 or not filecmp.cmp(p, EXERCISES / p.name, shallow=False)]
        extra = sorted({p.name for p in EXERCISES.glob("*.ipynb")} - {p.name for p in fresh})
    if stale or extra:
        print(f"exercises/ is out of date (stale: {stale}, extra: {extra}); run 'make exercises'")
        return 1
    print(f"exercises/ is in sync with solutions/ ({len(fresh)} notebooks)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
