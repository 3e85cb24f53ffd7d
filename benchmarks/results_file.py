"""Reading and appending to the tables in the benchmarks' results files (``benchmarks/results/*.txt``).

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


class Appender:
    """Prints one run's rows and, where ``path`` is given, appends each to it as soon as it is
    done, under the run's ``header_lines`` (its comment and table header; printed at once):
    written before the first row, and again before a row if the file grew since this run's last
    write (another run, started beside this one on the other core, appended its own), so that
    every row stands under its own run's header."""

    def __init__(self, path: Path | None, header_lines: list[str]):
        self.path, self.header_lines, self._written = path, header_lines, None
        print("\n".join(header_lines), flush=True)

    def add(self, row: str) -> None:
        print(row, flush=True)
        if self.path is None:
            return
        with self.path.open("a", encoding="utf-8") as f:
            again = self.path.stat().st_size != self._written
            f.write(("\n".join(self.header_lines) + "\n" if again else "") + row + "\n")
        self._written = self.path.stat().st_size
