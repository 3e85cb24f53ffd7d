"""Reading the tables in the benchmarks' results files (``benchmarks/results/*.txt``).

A results file holds, for every run of its script, comment lines (``#``: when, where, the recipe),
a header line and one row per result, the numbers with their spreads written ``mean ± std``.
"""

from __future__ import annotations

from pathlib import Path


def table_rows(path: Path, header: str) -> list[list[str]]:
    """The rows of the tables in ``path``, in file order, each split into its cells with the
    ``±`` signs dropped (a ``mean ± std`` is two cells): every line that is not blank, not a
    comment and not a header (a line that starts with ``header``). No file, no rows."""
    if not path.exists():
        return []
    return [line.replace("±", " ").split() for line in path.read_text(encoding="utf-8").splitlines()
            if line.strip() and not line.startswith(("#", header))]
