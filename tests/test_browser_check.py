"""tools/browser_check.py and tools/book_fixes.py.

The pure-Python parts (links and anchors, notebook outputs, redirects, script de-duplication)
are tested on hand-made files. The in-browser checks run on a tiny hand-written site in real
headless Chromium: each page carries one defect that the check must report, and one clean
page must pass. They are skipped when no Chromium is installed (``.ci/run`` installs it).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def _load(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


bc = _load("browser_check")
bf = _load("book_fixes")


# ---------------------------------------------------------------- pure Python


def test_check_links_files_and_anchors(tmp_path):
    (tmp_path / "a.html").write_text('<h1 id="top">A</h1><a name="old">x</a>')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "index.html").write_text("<p id='here'>")
    base = tmp_path.as_uri()
    links = {"b.html": [f"{base}/a.html#top", f"{base}/a.html#old", f"{base}/a.html",
                        f"{base}/sub/", f"{base}/sub/#here", "https://example.org/x",
                        f"{base}/a.html#nope", f"{base}/missing.html"]}
    problems = bc.check_links(links, {}, tmp_path)
    assert problems == {"b.html": ["link to a missing anchor: a.html#nope",
                                   "link to a missing file: missing.html"]}


def test_redirect_target(tmp_path):
    page = tmp_path / "index.html"
    page.write_text('<meta http-equiv="Refresh" content="0; url=book/intro.html" />')
    assert bc.redirect_target(page) == "book/intro.html"
    page.write_text("<p>no redirect</p>")
    assert bc.redirect_target(page) is None


def _nb(cells):
    return {"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5}


def test_expected_outputs_and_check(tmp_path):
    html = tmp_path / "html"
    (html / "nb").mkdir(parents=True)
    page = html / "nb" / "x.html"
    page.write_text("")
    code = lambda src, outs, tags=(): {"cell_type": "code", "source": src, "outputs": outs,  # noqa: E731
                                       "metadata": {"tags": list(tags)}}
    out = {"output_type": "stream", "name": "stdout", "text": "hi"}
    err = {"output_type": "stream", "name": "stderr", "text": "progress"}
    nb = _nb([code("a", [out]), code("b", [err]), code("c", [out], ["remove-cell"]),
              code("d", [out], ["remove-output"]), {"cell_type": "markdown", "source": "m"},
              code("e", [out], ["hide-output"])])
    (tmp_path / "jupyter_execute" / "nb").mkdir(parents=True)
    (tmp_path / "jupyter_execute" / "nb" / "x.ipynb").write_text(json.dumps(nb))
    exp = bc.expected_outputs(html, page)
    assert [c["expected"] for c in exp] == [True, False, False, True]
    assert bc.expected_outputs(html, html / "other.html") is None

    shown = {"has_output": True, "text_len": 2, "media": 0, "height": 20.0}
    none = {"has_output": False, "text_len": 0, "media": 0, "height": 0.0}
    empty = {"has_output": True, "text_len": 0, "media": 0, "height": 10.0}
    collapsed = {"has_output": True, "text_len": 2, "media": 0, "height": 0.0}
    assert bc.check_outputs(exp, [shown, none, none, collapsed]) == []
    problems = bc.check_outputs(exp, [none, none, none, shown])
    assert len(problems) == 1 and "code cell 1 ('a')" in problems[0]
    assert "output area is empty" in bc.check_outputs(exp, [empty, none, none, shown])[0]
    assert "cannot match" in bc.check_outputs(exp, [shown])[0]


def test_console_problems_are_deduplicated_and_network_flagged():
    events = [
        {"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {
            "exception": {"description": "SyntaxError: boom\n at x"}, "url": "file:///a/b.js",
            "lineNumber": 3}}},
        {"method": "Runtime.exceptionThrown", "params": {"exceptionDetails": {
            "exception": {"description": "SyntaxError: boom"}, "url": "file:///a/b.js",
            "lineNumber": 3}}},
        {"method": "Runtime.consoleAPICalled", "params": {"type": "log", "args": []}},
        {"method": "Runtime.consoleAPICalled", "params": {"type": "error",
                                                          "args": [{"value": "bad"}]}},
        {"method": "Network.requestWillBeSent", "params": {"request": {
            "url": "https://cdn.example.org/x.js"}}},
        {"method": "Network.requestWillBeSent", "params": {"request": {"url": "file:///x"}}},
        {"method": "Network.requestWillBeSent", "params": {"request": {"url": "data:,x"}}},
    ]
    found = bc._console_problems(events, "file:///a/page.html")
    assert [f["kind"] for f in found] == ["console", "console", "network"]
    assert "b.js:4" in found[0]["detail"] and "console.error: bad" in found[1]["detail"]


def test_book_fixes_dedupe_keeps_order():
    class JS(str):
        def __new__(cls, filename, **attributes):
            obj = super().__new__(cls, filename or "")
            obj.filename, obj.attributes = filename, attributes
            return obj

    a, b = JS(None, body="const X = 1"), JS("", body="const X = 1")
    c, d = JS("x.js"), JS("x.js", defer="defer")
    assert bf.dedupe([c, a, d, b, JS("x.js")]) == [c, a, d]


def test_book_css_exists_and_is_plain_css():
    css = (ROOT / "book" / "css" / "course.css").read_text()
    assert css.count("{") == css.count("}")
    assert "overflow-x: auto" in css and "Noto Sans CJK SC" in css
    assert "http" not in css.replace("https://", "").lower() or "url(" not in css
    # No JavaScript next to it: Jupyter Book 1 would inject any .js of a _static folder.
    assert not list((ROOT / "book" / "css").glob("*.js"))


# ---------------------------------------------------------------- in Chromium

CHROMIUM = bc.find_chromium()
needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="no Chromium installed "
                                    "(apt-get install chromium; .ci/run installs it)")

_HEAD = ('<!DOCTYPE html><html><head><meta charset="utf-8">'
         '<meta name="viewport" content="width=device-width, initial-scale=1">'
         "<style>article{max-width:600px;margin:0 auto}</style></head><body>"
         '<article class="bd-article">')
_TAIL = "</article></body></html>"
_PNG = ("data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8"
        "z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==")


def _site(tmp_path):
    html = tmp_path / "html"
    html.mkdir()
    pages = {
        "clean.html": f'<h1 id="t">Clean</h1><p>Text <a href="#t">here</a>, '
                      f'<a href="other.html#x">there</a>.</p><img src="{_PNG}">'
                      '<div style="overflow-x:auto"><pre style="white-space:pre">'
                      + "wide " * 300 + "</pre></div>",
        # A table wider than the column: it scrolls inside its container, which is reported
        # at phone width and fails at desktop width (test_browser_check_command_line).
        "table.html": '<div style="overflow-x:auto"><table><tr><th>score</th></tr><tr>'
                      '<td style="white-space:nowrap">' + "wide " * 300 + "</td></tr></table></div>",
        "other.html": '<p id="x">other</p>',
        "console.html": "<script>console.error('something broke')</script>"
                        "<script>undefined_function()</script>",
        "image.html": '<img src="missing.png" alt="gone">',
        "link.html": '<a href="other.html#nowhere">bad anchor</a><a href="gone.html">x</a>',
        "wide.html": '<div style="overflow:hidden"><pre style="overflow:visible;'
                     'white-space:pre">' + "x" * 400 + "</pre></div>",
        "tex.html": r"<p>The mean is $\mu_k$ and \(\frac{1}{2}\) stays raw.</p>",
        "network.html": '<img src="https://example.org/pic.png">',
        "search.html": '<input type="search" name="q"><form><input type="search"></form>',
        "index.html": '<meta http-equiv="refresh" content="0; url=clean.html">',
    }
    for name, body in pages.items():
        text = body if name == "index.html" else _HEAD + body + _TAIL
        (html / name).write_text(text, encoding="utf-8")
    return html


@needs_chromium
def test_browser_check_finds_each_defect(tmp_path):
    html = _site(tmp_path)
    notes: list[str] = []
    n_pages, failures = bc.run(html, CHROMIUM, tmp_path / "shots", viewports=["phone"],
                               notes=notes)
    assert n_pages == 11
    by_page: dict[str, list[str]] = {}
    for line in failures:
        page, rest = line.split(" [phone] ", 1)
        by_page.setdefault(page, []).append(rest)
    assert "clean.html" not in by_page and "other.html" not in by_page
    assert "index.html" not in by_page
    # At phone width a table that needs a sideways scroll is reported, not failed.
    assert "table.html" not in by_page
    assert len(notes) == 1 and notes[0].startswith(
        "table.html [phone] scroll: table 'score' needs a sideways scroll: ")
    assert any("console.error: something broke" in p for p in by_page["console.html"])
    assert any("undefined_function" in p for p in by_page["console.html"])
    assert any(p.startswith("image: not loaded: missing.png") for p in by_page["image.html"])
    assert sorted(p for p in by_page["link.html"] if p.startswith("link")) == [
        "link: link to a missing anchor: other.html#nowhere",
        "link: link to a missing file: gone.html"]
    assert any(p.startswith("wide:") and "clipped" in p for p in by_page["wide.html"])
    assert any(p.startswith("math: TeX left in the text") for p in by_page["tex.html"])
    assert any(p.startswith("network: request to https://example.org/pic.png")
               for p in by_page["network.html"])
    assert by_page["search.html"] == ["layout: 2 search boxes on the page"]
    shots = sorted(p.name for p in (tmp_path / "shots" / "phone").iterdir())
    assert "clean.jpg" in shots and len(shots) == 10
    assert (tmp_path / "shots" / "phone" / "clean.jpg").read_bytes()[:2] == b"\xff\xd8"


@needs_chromium
def test_browser_check_command_line(tmp_path, capsys):
    html = _site(tmp_path)
    code = bc.main([str(html), "--only", "clean.html", "--no-screenshots"])
    assert code == 0
    assert "1 pages x 2 widths" in capsys.readouterr().out
    assert bc.main([str(html), "--only", "image.html", "--no-screenshots"]) == 1
    capsys.readouterr()
    assert bc.main([str(html), "--only", "table.html", "--no-screenshots"]) == 1
    err = capsys.readouterr().err
    assert "table.html [desktop] scroll: table 'score' needs a sideways scroll" in err
    assert "table.html [phone]" not in err
    assert bc.main([str(tmp_path / "nothing")]) == 2


MATHJAX = ROOT / "node_modules" / "mathjax" / "es5" / "tex-chtml.js"
needs_mathjax = pytest.mark.skipif(not MATHJAX.is_file(), reason="no MathJax in node_modules "
                                   "(npm ci)")

#: 60 terms on one line: far wider than the 600 px column at any width.
_LONG = " + ".join(f"a_{{{i}}}" for i in range(1, 61))
#: The same sum broken over aligned lines of six terms: fits a phone's column.
_BROKEN = (r"\begin{aligned} s &= " + r" \\ &\quad + ".join(
    " + ".join(f"a_{{{i}}}" for i in range(j, j + 6)) for j in range(1, 61, 6))
    + r"\end{aligned}")


def _math_site(tmp_path):
    """Pages typeset by the course's MathJax, styled by the course's stylesheet."""
    html = tmp_path / "html"
    html.mkdir()
    css = (ROOT / "book" / "css" / "course.css").as_uri()
    head = _HEAD.replace("</head>", f'<link rel="stylesheet" href="{css}">'
                         f'<script defer src="{MATHJAX.as_uri()}"></script></head>')
    pages = {
        "eq_wide.html": f'<p>A long sum:</p><div class="math">\\[{_LONG}\\]</div>',
        "eq_fit.html": f'<p>The same sum:</p><div class="math">\\[{_BROKEN}\\]</div>'
                       r'<div class="math">\[x^2 + y^2 = 1\]</div>',
    }
    for name, body in pages.items():
        (html / name).write_text(head + body + _TAIL, encoding="utf-8")
    return html


@needs_chromium
@needs_mathjax
def test_browser_check_measures_formula_overflow(tmp_path, capsys):
    """A display formula wider than its box fails at desktop width, naming the overflow and
    the start of its TeX; at phone width it is counted and listed; a fitting one passes."""
    html = _math_site(tmp_path)
    notes: list[str] = []
    n_pages, failures = bc.run(html, CHROMIUM, None, notes=notes)
    assert n_pages == 2
    assert len(failures) == 1, failures
    m = re.fullmatch(r"eq_wide\.html \[desktop\] scroll: formula '(.*)' needs a sideways "
                     r"scroll: (\d+) px wider than its box \((\d+) px in (\d+) px\)", failures[0])
    assert m, failures[0]
    tex, over, width, box = m.group(1), *map(int, m.groups()[1:])
    assert tex.startswith("a_{1} + a_{2} + a_{3}")
    assert 500 <= box <= 600 and width > 1200 and abs(over - (width - box)) <= 1
    # At phone width: reported, not failed; the broken-up sum and x^2 + y^2 = 1 fit.
    assert len(notes) == 1 and notes[0].startswith(
        "eq_wide.html [phone] scroll: formula 'a_{1} + a_{2}")
    # The command line prints the phone count and fails on the desktop overflow.
    assert bc.main([str(html), "--no-screenshots"]) == 1
    out, err = capsys.readouterr()
    assert "phone width (390 px): 1 display formulas and 0 tables need a sideways scroll" in out
    assert "eq_wide.html [desktop] scroll: formula" in err and "eq_fit.html" not in err
    assert bc.main([str(html), "--no-screenshots", "--only", "eq_fit.html"]) == 0
    assert "0 display formulas and 0 tables" in capsys.readouterr().out


@pytest.mark.parametrize("remote, expected", [
    ("https://github.com/someone/course.git", "https://github.com/someone/course"),
    ("git@github.com:someone/course.git", "https://github.com/someone/course"),
    ("ssh://git@gitlab.com/group/course", "https://gitlab.com/group/course"),
    ("/srv/git/course.git", None),
])
def test_repository_url_from_git(tmp_path, remote, expected):
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    assert bf.repository_url_from_git(tmp_path) is None  # no origin yet
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    assert bf.repository_url_from_git(tmp_path) == expected


@pytest.mark.parametrize("url_in_config", [True, False])
def test_repository_button_follows_the_one_url_setting(tmp_path, url_in_config):
    """repository.url in _config.yml (or, when empty, git's origin) turns on the repository
    button and keeps the launch buttons; with neither, the launch buttons are switched off."""
    from types import SimpleNamespace

    url = "https://github.com/someone/course"
    options = {"launch_buttons": {"binderhub_url": "https://mybinder.org", "colab_url": "x"},
               "use_repository_button": False}
    if url_in_config:
        options["repository_url"] = url
    config = SimpleNamespace(html_static_path=[], html_theme_options=options, html_context={})
    app = SimpleNamespace(confdir=str(tmp_path), add_css_file=lambda *a, **k: None)
    bf._on_config_inited(app, config)  # tmp_path is no git clone: no origin to fall back on
    assert options["use_repository_button"] is url_in_config
    assert (options["launch_buttons"]["binderhub_url"] == "https://mybinder.org") is url_in_config
