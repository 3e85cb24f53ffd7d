"""The book's text files: glossary well-formed and sorted, references cited exist."""

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_glossary_rows_have_three_columns_and_are_sorted():
    text = (ROOT / "book" / "glossary.md").read_text(encoding="utf-8")
    rows = [r for r in text.splitlines() if r.startswith("| ") and not r.startswith("| English")]
    assert len(rows) >= 20
    for row in rows:
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        assert len(cells) == 3 and all(cells), f"glossary row needs 3 non-empty cells: {row}"
    result = subprocess.run([sys.executable, str(ROOT / "tools" / "sort_glossary.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout


def test_every_citation_is_in_the_bibliography():
    bib = (ROOT / "book" / "references.bib").read_text(encoding="utf-8")
    keys = set(re.findall(r"@\w+\{([^,]+),", bib))
    sources = list((ROOT / "book").glob("*.md")) + list((ROOT / "notebooks").glob("*.ipynb"))
    cited = set()
    for path in sources:
        for group in re.findall(r"\{cite(?::\w+)?\}`([^`]+)`", path.read_text(encoding="utf-8")):
            cited.update(k.strip() for k in group.split(","))
    missing = sorted(cited - keys)
    assert not missing, f"cited but not in book/references.bib: {missing}"
    assert cited, "the book cites its sources"
