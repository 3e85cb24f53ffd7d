"""Tests of the offline book build: tools/offline_assets.py, _config.yml, package.json, _toc.yml.

The checker is tested on small hand-written HTML trees (a CDN script, a missing local file, a
clean page, ...). The copy step and a tiny end-to-end `jupyter-book build` need node_modules
(`npm ci`) and are skipped without it.
"""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml
from _shared import ROOT

NODE_MODULES = ROOT / "node_modules"
needs_node_modules = pytest.mark.skipif(
    not (NODE_MODULES / "mathjax").is_dir(),
    reason="node_modules is absent: run 'npm ci' (make npm) to test the copy step")


def _load_tool():
    spec = importlib.util.spec_from_file_location("offline_assets",
                                                  ROOT / "tools" / "offline_assets.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


oa = _load_tool()


def _page(body_head: str = "", body: str = "") -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'>{body_head}</head>"
            f"<body>{body}</body></html>")


@pytest.fixture
def site(tmp_path):
    """A minimal built book: two pages and the local assets a clean page refers to."""
    html = tmp_path / "html"
    (html / "_static" / "npm" / "mathjax").mkdir(parents=True)
    (html / "_static" / "npm" / "html-manager").mkdir(parents=True)
    (html / "_static" / "npm" / "mathjax" / "tex-chtml.js").write_text("// mathjax\n")
    (html / "_static" / "npm" / "html-manager" / "embed.js").write_text("// widgets\n")
    (html / "_static" / "fonts").mkdir()
    (html / "_static" / "fonts" / "a.woff2").write_bytes(b"\0")
    (html / "_static" / "theme.css").write_text(
        "/* url(https://example.org/in-a-comment.css) */\n"
        "@font-face { src: url('fonts/a.woff2') format('woff2'); }\n"
        ".x { background: url(data:image/png;base64,AAAA); }\n")
    (html / "book").mkdir()
    clean = _page(
        '<link rel="stylesheet" href="../_static/theme.css?v=1234" />'
        '<link rel="next" href="https://example.org/not-a-load.html" />'
        '<script>window.MathJax = {"options": {}}</script>'
        '<script defer="defer" src="../_static/npm/mathjax/tex-chtml.js?v=20daa33d"></script>'
        '<script src="../_static/npm/html-manager/embed.js?v=c3d01ddf"></script>'
        '<script>const THEBE_JS_URL = "https://unpkg.com/thebe@0.8.2/lib/index.js"; '
        'const thebe_selector = ".thebe,.cell"</script>',
        '<a href="https://github.com/jupyter-widgets/ipywidgets">a link is not a load</a>'
        '<img src="data:image/png;base64,AAAA" alt="inline" />'
        '<script type="application/vnd.jupyter.widget-state+json">{"state": {}}</script>')
    (html / "book" / "clean.html").write_text(clean)
    (html / "index.html").write_text(_page('<meta http-equiv="Refresh" '
                                           'content="0; url=book/clean.html" />'))
    # Theme templates copied into _static are not pages and must not be scanned.
    (html / "_static" / "webpack-macros.html").write_text(
        _page('<script src="{{ pathto(\'_static/x.js\', 1) }}"></script>'))
    return html


def test_clean_build_passes(site):
    assert oa.check_build(site) == {}
    assert oa.main(["--check", str(site)]) == 0


def test_cdn_script_is_flagged(site, capsys):
    # What myst-nb and Sphinx write by default (CDN require.js, html-manager and MathJax).
    (site / "book" / "cdn.html").write_text(_page(
        '<script src="https://cdnjs.cloudflare.com/ajax/libs/require.js/2.3.4/require.min.js">'
        '</script>'
        '<script src="https://cdn.jsdelivr.net/npm/@jupyter-widgets/html-manager@1.0.6/dist/'
        'embed-amd.js" data-jupyter-widgets-cdn="https://cdn.jsdelivr.net/npm/"></script>'
        '<script async="async" src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/'
        'tex-mml-chtml.js"></script>'))
    problems = oa.check_build(site)
    assert list(problems) == ["book/cdn.html"]
    text = "\n".join(problems["book/cdn.html"])
    assert "require.min.js" in text and "embed-amd.js" in text and "tex-mml-chtml.js" in text
    assert "data-jupyter-widgets-cdn" in text  # the CDN fallback attribute itself
    assert oa.main(["--check", str(site)]) == 1
    err = capsys.readouterr().err
    assert "book/cdn.html" in err and "https://cdn.jsdelivr.net/npm/mathjax@3" in err


@pytest.mark.parametrize("snippet, expected", [
    ('<link rel="stylesheet" href="//unpkg.com/x/style.css">', "//unpkg.com/x/style.css"),
    ('<link rel="preconnect" href="https://fonts.gstatic.com">', "fonts.gstatic.com"),
    ('<style>@import url("https://fonts.googleapis.com/css?family=Roboto");</style>',
     "fonts.googleapis.com"),
    ('<script>var s = document.createElement("script"); '
     's.src = "https://cdn.jsdelivr.net/npm/thing.js";</script>', "cdn.jsdelivr.net"),
    ('<img src="http://example.org/picture.png">', "http://example.org/picture.png"),
])
def test_other_network_loads_are_flagged(site, snippet, expected):
    (site / "book" / "remote.html").write_text(_page(snippet))
    problems = oa.check_build(site)
    assert list(problems) == ["book/remote.html"]
    assert any(expected in p for p in problems["book/remote.html"])


def test_missing_local_asset_is_flagged(site, capsys):
    (site / "_static" / "npm" / "mathjax" / "tex-chtml.js").unlink()
    problems = oa.check_build(site)
    assert list(problems) == ["book/clean.html"]
    assert problems["book/clean.html"] == [
        "<script src>: missing local file ../_static/npm/mathjax/tex-chtml.js?v=20daa33d"]
    assert oa.main(["--check", str(site)]) == 1
    assert "book/clean.html" in capsys.readouterr().err


def test_stylesheet_contents_are_checked(site):
    css = site / "_static" / "theme.css"
    css.write_text(css.read_text() + "@import url(https://cdn.jsdelivr.net/npm/x.css);\n"
                   "@font-face { src: url(fonts/missing.woff); }\n")
    problems = oa.check_build(site)["book/clean.html"]
    assert any("network URL https://cdn.jsdelivr.net/npm/x.css" in p for p in problems)
    assert any("missing local file fonts/missing.woff" in p for p in problems)
    assert not any("in-a-comment" in p for p in problems)


def test_absolute_local_path_is_flagged(site):
    (site / "book" / "abs.html").write_text(_page('<script src="/_static/x.js"></script>'))
    assert "absolute path" in oa.check_build(site)["book/abs.html"][0]


def test_thebe_url_is_flagged_only_with_a_launch_button(site):
    page = site / "book" / "clean.html"
    page.write_text(page.read_text().replace(
        "</body>", '<button onclick="initThebeSBT()">Live Code</button></body>'))
    problems = oa.check_build(site)
    assert any("unpkg.com/thebe" in p for p in problems["book/clean.html"])


def test_check_of_an_empty_folder_fails(tmp_path):
    with pytest.raises(FileNotFoundError, match="html_dir"):
        oa.check_build(tmp_path)
    assert oa.main(["--check", str(tmp_path)]) == 1


def test_copy_without_node_modules_names_npm_ci(tmp_path):
    with pytest.raises(FileNotFoundError, match="npm ci"):
        oa.copy_assets(tmp_path / "node_modules", tmp_path / "out")
    assert oa.main(["--node-modules", str(tmp_path / "node_modules")]) == 1


@needs_node_modules
def test_copy_step_copies_what_the_config_names(tmp_path):
    assert oa.missing_sources(NODE_MODULES) == []
    dest = tmp_path / "npm"
    written = oa.copy_assets(NODE_MODULES, dest)
    assert all(p.is_file() for p in written)
    pairs = {
        "mathjax/tex-chtml.js": "mathjax/es5/tex-chtml.js",
        "mathjax/input/tex/extensions/boldsymbol.js":
            "mathjax/es5/input/tex/extensions/boldsymbol.js",
        "mathjax/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff":
            "mathjax/es5/output/chtml/fonts/woff-v2/MathJax_Main-Regular.woff",
        "html-manager/embed.js": "@jupyter-widgets/html-manager/dist/embed.js",
    }
    for copied, source in pairs.items():
        assert (dest / copied).read_bytes() == (NODE_MODULES / source).read_bytes(), copied
    # Every web font the widget bundle refers to (relative to its own URL) is copied too.
    embed = (dest / "html-manager" / "embed.js").read_text(encoding="utf-8")
    fonts = {p.name for p in (NODE_MODULES / "@jupyter-widgets/html-manager/dist").iterdir()
             if p.suffix in {".woff2", ".woff", ".ttf", ".eot", ".svg"} and p.name in embed}
    assert fonts and all((dest / "html-manager" / f).is_file() for f in fonts)
    # The bundle contains the built-in widgets, so it never needs a CDN for them.
    assert "@jupyter-widgets/controls" in embed and "IntSliderModel" in embed
    # A second copy is a no-op that returns the same files.
    assert oa.copy_assets(NODE_MODULES, dest) == written
    # The paths that _config.yml gives Sphinx exist among the copied files.
    sphinx = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    for rel in [sphinx["mathjax_path"], *sphinx["nb_ipywidgets_js"]]:
        assert rel.startswith(oa.VENDOR_DIR + "/")
        assert (tmp_path / rel).is_file(), rel


# --------------------------------------------------------------------------------------
# _config.yml, package.json, _toc.yml
# --------------------------------------------------------------------------------------
def test_config_parses_and_keeps_sphinx_out_of_non_sources():
    config = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert config["only_build_toc_files"] is True
    excluded = set(config["exclude_patterns"])
    for folder in (".venv", "_build", "node_modules", "exercises", "solutions"):
        assert folder in excluded, folder
    sphinx = config["sphinx"]
    assert sphinx["local_extensions"] == {"offline_assets": "tools", "book_fixes": "tools"}
    assert sphinx["recursive_update"] is False
    assert "://" not in sphinx["config"]["mathjax_path"]
    assert all("://" not in key for key in sphinx["config"]["nb_ipywidgets_js"])


def test_jupyter_book_turns_config_into_offline_sphinx_settings():
    """Jupyter Book's own config merge keeps no CDN URL for MathJax or the widgets."""
    from jupyter_book.config import get_final_config

    sphinx_config, _ = get_final_config(user_yaml=ROOT / "_config.yml", sourcedir=ROOT,
                                        cli_config={"latex_individualpages": False},
                                        validate=True, raise_on_invalid=True)
    assert sphinx_config["mathjax_path"] == "npm/mathjax/tex-chtml.js"
    assert sphinx_config["nb_ipywidgets_js"] == {"npm/html-manager/embed.js": {}}
    assert "offline_assets" in sphinx_config["extensions"]
    # Only the toc files are built; the excluded folders reach Sphinx.
    assert sphinx_config["external_toc_exclude_missing"] is True
    assert {".venv", "node_modules", "_build"} <= set(sphinx_config["exclude_patterns"])
    # No source `_static` folder: Jupyter Book would inject every .js in it into every page.
    assert not (ROOT / "_static").exists()
    assert "html_js_files" not in sphinx_config or not sphinx_config["html_js_files"]


def test_npm_versions_are_pinned_and_locked():
    package = json.loads((ROOT / "package.json").read_text())
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert set(package["dependencies"]) == {"mathjax", "@jupyter-widgets/html-manager"}
    for name, version in package["dependencies"].items():
        assert version[0].isdigit(), f"{name} must be pinned exactly, not {version!r}"
        assert lock["packages"][f"node_modules/{name}"]["version"] == version
    assert package["dependencies"]["mathjax"].startswith("3.")
    assert lock["packages"][""]["dependencies"] == package["dependencies"]


def _toc_files(entry) -> list[str]:
    files = [entry["file"]] if "file" in entry else []
    if "root" in entry:
        files.append(entry["root"])
    for key in ("parts", "chapters", "sections"):
        for child in entry.get(key, []):
            files += _toc_files(child)
    return files


def test_toc_files_exist__FAILS_UNTIL_ALL_CHAPTERS_LAND():
    """Every page named in _toc.yml exists (.md or .ipynb).

    WANTED FAILURE while the chapters are being written: this test fails until every
    page listed in _toc.yml has been added. Do not skip or xfail it.
    """
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    files = _toc_files(toc)
    assert files and toc["root"] in files
    missing = [f for f in files if not any((ROOT / (f + s)).is_file()
                                           for s in ("", ".md", ".ipynb"))]
    assert missing == [], f"_toc.yml names pages that do not exist yet: {missing}"


# --------------------------------------------------------------------------------------
# End to end: a two-page book built with the real _config.yml, then checked
# --------------------------------------------------------------------------------------
@pytest.mark.slow
@needs_node_modules
def test_tiny_book_builds_offline(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    book = tmp_path / "bk"
    (book / "book").mkdir(parents=True)
    (book / "notebooks").mkdir()
    shutil.copy(ROOT / "_config.yml", book)
    shutil.copytree(ROOT / "tools", book / "tools",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "book" / "css", book / "book" / "css")
    (book / "node_modules").symlink_to(NODE_MODULES)
    bib = ROOT / "book" / "references.bib"
    (book / "book" / "references.bib").write_text(bib.read_text() if bib.is_file() else "")
    (book / "_toc.yml").write_text(textwrap.dedent("""\
        format: jb-book
        root: book/intro
        chapters:
          - file: notebooks/widgets
        """))
    (book / "book" / "intro.md").write_text(textwrap.dedent("""\
        # Intro

        $$
        \\log p(x) = -\\tfrac{1}{2} x^\\top x
        $$ (tiny-eq)

        See {eq}`tiny-eq`.
        """))
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3",
                                 "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Widgets\n\nInline $x^2$.", id="md"),
                nbformat.v4.new_code_cell("import ipywidgets as w\nw.IntSlider(value=3)",
                                          id="slider")]
    nbformat.write(nb, book / "notebooks" / "widgets.ipynb")

    jb = Path(sys.executable).with_name("jupyter-book")
    result = subprocess.run([str(jb), "build", str(book), "-W", "-n", "--keep-going"],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    html = book / "_build" / "html"
    assert oa.check_build(html) == {}
    intro = (html / "book" / "intro.html").read_text()
    widgets = (html / "notebooks" / "widgets.html").read_text()
    assert "_static/npm/mathjax/tex-chtml.js" in intro
    assert "_static/npm/html-manager/embed.js" in widgets
    assert "application/vnd.jupyter.widget-state+json" in widgets
    assert "IntSliderModel" in widgets
    for text in (intro, widgets):
        assert "cdn.jsdelivr.net" not in text and "cdnjs.cloudflare.com" not in text
        # tools/book_fixes.py: the course stylesheet, sphinx-thebe's inline script once
        assert "_static/course.css" in text
        assert text.count("const THEBE_JS_URL") <= 1
    assert (html / "_static" / "course.css").is_file()

    # The built pages pass the browser check (no console error, math typeset, the widget
    # rendered, ...) in real Chromium, when it is installed.
    spec = importlib.util.spec_from_file_location("browser_check",
                                                  ROOT / "tools" / "browser_check.py")
    bc = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("browser_check", bc)  # its dataclasses need the module registered
    spec.loader.exec_module(bc)
    chromium = bc.find_chromium()
    if chromium is None:
        pytest.skip("no Chromium: the browser part of this test did not run")
    n_pages, failures = bc.run(html, chromium, None)
    assert n_pages >= 2 and failures == []
