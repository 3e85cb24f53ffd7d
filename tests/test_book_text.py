"""The book's text files: glossary well-formed and sorted, references cited exist."""

import os
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


# ------------------------------------------------------------------------ one numbering scheme
#
# Sphinx numbers the book (_toc.yml: the teaching parts are `numbered`; _config.yml: numfig,
# math_numfig, numfig_secnum_depth 1): chapters count on across parts, and the labelled
# equations of a chapter are (c.1), (c.2), ... in the order the pages of the chapter are read
# (the chapter page, then the pages nested under it). Docstrings cite an equation as
# "eq. (3.3) [gmm-estep]": the number the reader sees and the label it has in the sources.

import json  # noqa: E402

import pytest  # noqa: E402
import yaml  # noqa: E402

EQ_LABEL = re.compile(r"^\s*\$\$\s*\(([A-Za-z0-9_-]+)\)\s*$", re.M)
# A docstring citation: eq. (3.3) [gmm-estep], or eq. (3.3) alone.
CITED = re.compile(r"\b[Ee]qs?\.\s*\((\d+)\.(\d+)\)(?:\s*\[([A-Za-z0-9_-]+)\])?")
# Citations in the old style, by label only: eq. (gmm-estep), eq. gmm-estep, (eq-fid).
OLD_STYLE = re.compile(r"\b[Ee]qs?\.\s*\(?(?:eq|gmm|mrf|gan|vae)-[a-z0-9-]+|\((?:eq|gmm|mrf|gan|vae)-[a-z0-9-]+\)")


def _source_text(path: Path) -> str:
    """The text of a book page: a Markdown file, or the Markdown cells of a notebook."""
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return "\n".join("".join(c["source"]) for c in cells if c["cell_type"] == "markdown")
    return path.read_text(encoding="utf-8")


def _page(entry: str) -> Path:
    for suffix in (".md", ".ipynb"):
        if (ROOT / (entry + suffix)).exists():
            return ROOT / (entry + suffix)
    raise AssertionError(f"_toc.yml names {entry}, which is neither .md nor .ipynb")


def _walk(entry: dict):
    """The pages of a toc entry in reading order: the page, then its sections, depth first."""
    yield _page(entry["file"])
    for sub in entry.get("sections", []):
        yield from _walk(sub)


def book_chapters():
    """[(chapter number or None, [pages in reading order])] for every chapter of _toc.yml."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    chapters, number = [], 0
    for part in toc["parts"]:
        for chapter in part["chapters"]:
            if part.get("numbered"):
                number += 1
            chapters.append((number if part.get("numbered") else None, list(_walk(chapter))))
    return chapters


def equation_numbers() -> dict:
    """{label: "c.k"} for every labelled display equation of the numbered chapters."""
    numbers = {}
    for chapter, pages in book_chapters():
        k = 0
        for page in pages:
            for label in EQ_LABEL.findall(_source_text(page)):
                assert label not in numbers, f"equation label {label} defined twice"
                if chapter is not None:
                    k += 1
                    numbers[label] = f"{chapter}.{k}"
    return numbers


def _docstring_sources():
    """course_lib's modules, the benchmarks and the tests (but this file, whose comments show
    the old style), and the cells of the notebooks and exercises (their code cites equations
    as the library does; the exercises' text by number)."""
    return (sorted((ROOT / "course_lib").rglob("*.py")) + sorted((ROOT / "notebooks").glob("*.ipynb"))
            + sorted((ROOT / "solutions").glob("*.ipynb")) + sorted((ROOT / "benchmarks").glob("*.py"))
            + [p for p in sorted((ROOT / "tests").glob("*.py")) if p.name != Path(__file__).name])


def _lines(path: Path):
    if path.suffix == ".ipynb":
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        return [line for c in cells for line in "".join(c["source"]).splitlines()]
    return path.read_text(encoding="utf-8").splitlines()


def _citations():
    """[(file:line, "c.k", label or None)] for every equation cited in course_lib."""
    found = []
    for path in _docstring_sources():
        for i, line in enumerate(_lines(path), 1):
            for m in CITED.finditer(line):
                found.append((f"{path.relative_to(ROOT)}:{i}", f"{m[1]}.{m[2]}", m[3]))
    return found


def test_numbering_config_numbers_the_teaching_parts_and_the_equations():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    numbered = [p["caption"] for p in toc["parts"] if p.get("numbered")]
    assert numbered == ["Foundations", "Statistical models", "Neural models", "Synthesis"]
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))["sphinx"]["config"]
    assert config["numfig"] is True and config["math_numfig"] is True
    assert config["numfig_secnum_depth"] == 1


def test_chapter_numbers_are_the_file_prefixes():
    """"Chapter 5" in prose and 05_gan.md/.ipynb name the same chapter."""
    for chapter, pages in book_chapters():
        if chapter is None:
            continue
        for page in pages:
            assert int(page.name[:2]) == chapter, f"{page.name} is in chapter {chapter}"


def test_no_hand_typed_numbers_in_headings():
    """Sphinx numbers the headings; a typed "## 2.1 ..." would read "2.1. 2.1 ..."."""
    heading = re.compile(r"^#{1,6} +(\d+\.(?:\d+\.?)*) ", re.M)
    for _chapter, pages in book_chapters():
        for page in pages:
            text = re.sub(r"```.*?```", "", _source_text(page), flags=re.S)
            bad = heading.findall(text)
            assert not bad, f"{page.name}: headings numbered by hand: {bad}"


def test_no_equation_environments_that_take_a_number_silently():
    """Numbered amsmath environments and {math} directives would shift every later number."""
    env = re.compile(r"\\begin\{(equation|align|gather|multline|flalign|alignat)\}|:label:")
    for _chapter, pages in book_chapters():
        for page in pages:
            assert not env.search(_source_text(page)), f"{page.name}: use $$ ... $$ (label)"


def test_every_equation_cited_in_a_docstring_is_the_number_the_book_shows():
    numbers = equation_numbers()
    assert len(numbers) >= 40, "the book's labelled equations were not found"
    by_number = {v: k for k, v in numbers.items()}
    citations = _citations()
    assert len(citations) >= 40, "course_lib cites the book's equations by number"
    for where, number, label in citations:
        assert number in by_number, f"{where}: eq. ({number}) is not an equation of the book"
        if label is not None:
            assert label in numbers, f"{where}: no equation is labelled {label}"
            assert numbers[label] == number, (
                f"{where}: [{label}] is eq. ({numbers[label]}) in the book, not ({number})")


def test_no_docstring_cites_an_equation_by_label_only():
    for path in _docstring_sources():
        for i, line in enumerate(_lines(path), 1):
            if re.match(r"^\s*(\$\$\s*)?\([A-Za-z0-9_-]+\)=?\s*$", line):
                continue  # where a label is defined: $$ (label), or a target (label)=
            stripped = CITED.sub("", line)
            assert not OLD_STYLE.search(stripped), (
                f"{path.relative_to(ROOT)}:{i}: cite the number the reader sees, "
                f"e.g. eq. (3.3) [gmm-estep]: {line.strip()}")


@pytest.mark.book_html
def test_built_book_shows_the_cited_numbers():
    """In the built HTML, each cited label carries the cited number.

    Marked ``book_html``: ``make test`` deselects it (it runs before the book is built) and
    ``make browser-test`` runs it on the last build, with ``COURSE_REQUIRE_BOOK=1`` so that a
    missing build fails instead of skipping. A plain ``pytest tests`` skips it without a build.
    """
    html = ROOT / "_build" / "html"
    if not (html / "index.html").exists():
        if os.environ.get("COURSE_REQUIRE_BOOK") == "1":
            pytest.fail("no built book in _build/html: run `make book` first")
        pytest.skip("no built book in _build/html (make book); the source-level tests cover this")
    shown = {}
    eqno = re.compile(r'<span class="eqno">\((\d+\.\d+)\)<a class="headerlink" '
                      r'href="#equation-([A-Za-z0-9_-]+)"')
    for page in html.rglob("*.html"):
        for number, label in eqno.findall(page.read_text(encoding="utf-8")):
            shown[label] = number
    assert shown == equation_numbers(), "the built book numbers its equations differently"
    for where, number, label in _citations():
        assert number in shown.values(), f"{where}: the built book has no eq. ({number})"
        if label is not None:
            assert shown.get(label) == number, f"{where}: the book shows [{label}] as ({shown.get(label)})"


def test_exercises_are_numbered_by_chapter_in_the_book_and_the_notebooks():
    """book/exercises.md, the exercise notebooks' titles and the pen-and-paper admonitions use
    one scheme: exercise c.k belongs to chapter c, the k are 1, 2, ... and c.A is on paper."""
    text = (ROOT / "book" / "exercises.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| (\d+)\.(\d+) `(\d\d)_(\w+)` \|", text, re.M)
    names = sorted(p.stem for p in (ROOT / "solutions").glob("*.ipynb"))
    assert sorted(f"{c}_{n}" for _, _, c, n in rows) == names, "every exercise has one numbered row"
    by_chapter = {}
    for chapter, k, prefix, name in rows:
        assert int(chapter) == int(prefix), f"exercise {chapter}.{k} is {prefix}_{name}"
        by_chapter.setdefault(chapter, []).append(int(k))
        title = json.loads((ROOT / "solutions" / f"{prefix}_{name}.ipynb").read_text(
            encoding="utf-8"))["cells"][0]["source"][0]
        assert re.match(rf"# Exercise {chapter}\.{k}\b", title), f"{prefix}_{name}: {title!r}"
    for chapter, ks in by_chapter.items():
        assert ks == list(range(1, len(ks) + 1)), f"chapter {chapter}'s exercises are {ks}"
    # the first table names each notebook of exercises/ (its header says so)
    first_table = re.findall(r"^\| (\d+\.\d+) \| `(\w+)\.ipynb` \|", text, re.M)
    assert "| Notebook (in `exercises/`) |" in text
    assert first_table == [(f"{c}.{k}", f"{p}_{n}") for c, k, p, n in rows]
    # pen and paper: "exercise c.A" in the admonition of the page of chapter c
    for chapter, pages in book_chapters():
        if chapter is None:
            continue
        found = re.findall(r"Pen-and-paper exercise (\d+)\.A", "".join(_source_text(p) for p in pages))
        assert all(int(c) == chapter for c in found), f"chapter {chapter} holds exercises {found}"
