"""Sort the glossary table of book/glossary.md alphabetically (case-insensitive), in place.

Rows with the same English term are merged: the first keeps its place, later duplicates are
reported and dropped. ``--check`` only reports (exit 1) if the table is not sorted.
"""

from __future__ import annotations

import sys
from pathlib import Path

GLOSSARY = Path(__file__).resolve().parent.parent / "book" / "glossary.md"


def split(text: str):
    lines = text.rstrip("\n").split("\n")
    start = next(i for i, line in enumerate(lines) if line.startswith("|---"))
    head, rows = lines[: start + 1], [r for r in lines[start + 1 :] if r.strip()]
    return head, rows


def key(row: str) -> str:
    return row.strip("|").split("|")[0].strip().lower()


def main(argv: list[str]) -> int:
    head, rows = split(GLOSSARY.read_text(encoding="utf-8"))
    seen, unique = set(), []
    for row in rows:
        if key(row) in seen:
            print(f"duplicate glossary term dropped: {key(row)}")
            continue
        seen.add(key(row))
        unique.append(row)
    ordered = sorted(unique, key=key)
    if "--check" in argv:
        if ordered != rows:
            print("book/glossary.md is not sorted or has duplicates: run tools/sort_glossary.py")
            return 1
        return 0
    GLOSSARY.write_text("\n".join(head + ordered) + "\n", encoding="utf-8")
    print(f"{len(ordered)} glossary terms")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
