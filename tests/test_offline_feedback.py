"""tools/offline_feedback.py: nbgrader's feedback pages render their mathematics offline."""

import importlib.util
import shutil
import subprocess
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("offline_feedback", ROOT / "tools" / "offline_feedback.py")
offline_feedback = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(offline_feedback)

FAKE_MATHJAX = "/* MathJax 3 stand-in */ window.loaded = true;"


def _page(tmp_path: Path) -> Path:
    """An HTML page with the MathJax block nbconvert writes (the one the feedback pages have)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell(
        "Inline $x^2 + \\sigma$ and a display $$\\log p(x) = \\tfrac12$$")])
    html, _ = HTMLExporter().from_notebook_node(nb)
    path = tmp_path / "feedback" / "alice" / "ch02a" / "page.html"
    path.parent.mkdir(parents=True)
    path.write_text(html, encoding="utf-8")
    return path


def test_nbgrader_feedback_pages_use_nbconverts_default_mathjax_block():
    """The premise of the tool: nbgrader's feedback template calls nbconvert's mathjax() macro
    without a URL, so it loads MathJax from the CDN whatever nbconvert is configured with."""
    import nbgrader
    template = (Path(nbgrader.__file__).parent / "server_extensions" / "formgrader" / "templates"
                / "feedback" / "index.html.j2").read_text()
    assert "{{ mathjax() }}" in template


def test_the_cdn_block_is_replaced_by_inline_mathjax_once(tmp_path):
    page = _page(tmp_path)
    mathjax = tmp_path / "tex-svg.js"
    mathjax.write_text(FAKE_MATHJAX)
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" in page.read_text()
    assert offline_feedback.main([str(tmp_path / "feedback"), "--mathjax", str(mathjax)]) == 0
    html = page.read_text()
    assert "cdnjs.cloudflare.com/ajax/libs/mathjax" not in html
    assert "text/x-mathjax-config" not in html
    assert FAKE_MATHJAX in html and offline_feedback.MARK in html
    assert "inlineMath: [['$', '$']" in html
    # a second run leaves the page as it is
    assert offline_feedback.main([str(page), "--mathjax", str(mathjax)]) == 0
    assert page.read_text() == html


def test_a_page_without_the_block_is_reported_not_guessed(tmp_path, capsys):
    page = tmp_path / "other.html"
    page.write_text("<html><script src='https://example.org/MathJax.js'></script></html>")
    mathjax = tmp_path / "tex-svg.js"
    mathjax.write_text(FAKE_MATHJAX)
    assert offline_feedback.main([str(page), "--mathjax", str(mathjax)]) == 1
    assert "no-mathjax-block" in capsys.readouterr().out
    assert page.read_text().startswith("<html><script src='https://example.org")


def test_missing_mathjax_says_how_to_get_it(tmp_path, capsys):
    page = _page(tmp_path)
    assert offline_feedback.main([str(page), "--mathjax", str(tmp_path / "none.js")]) == 2
    assert "make npm" in capsys.readouterr().err


def test_a_bundle_that_would_close_the_script_tag_is_refused():
    with pytest.raises(ValueError, match="</script"):
        offline_feedback.inline_block("var s = '</script>';")


def test_the_rewritten_page_renders_its_mathematics_offline(tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None or not offline_feedback.MATHJAX.is_file():
        pytest.skip("needs Debian's chromium and the npm MathJax (make npm); .ci/run has both")
    page = _page(tmp_path)
    assert offline_feedback.main([str(page)]) == 0
    cmd = [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=5000",
           "--dump-dom", page.as_uri()]
    if shutil.which("unshare"):
        probe = subprocess.run(["unshare", "-rn", "true"], capture_output=True)
        if probe.returncode == 0:
            cmd = ["unshare", "-rn", *cmd]  # no network: MathJax must come from the page itself
    dom = subprocess.run(cmd, capture_output=True, text=True, timeout=120).stdout
    assert dom.count('<mjx-container class="MathJax') >= 2, "MathJax did not typeset the page"
