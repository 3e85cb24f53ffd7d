"""Make nbgrader's feedback pages render their mathematics offline.

    nbgrader generate_feedback ch02a
    .venv/bin/python tools/offline_feedback.py grades/feedback      # every *.html below it

``nbgrader generate_feedback`` writes HTML pages that load MathJax 2 from a CDN
(cdnjs.cloudflare.com): without the internet a learner sees raw LaTeX. nbgrader's feedback
template calls nbconvert's ``mathjax()`` macro without a URL, so no configuration option
changes it. This tool rewrites each page in place: the CDN script and its MathJax-2
configuration are replaced by a MathJax 3 configuration and the whole of MathJax 3's
``tex-svg.js`` inline (from the npm package the book uses, ``node_modules/mathjax``; about
2 MB per page). The SVG output needs no font files, so the page renders anywhere, opened from
disk or served by Jupyter. Pages already rewritten are left as they are; a page whose MathJax
block is not the one nbconvert writes is reported, not guessed at.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MATHJAX = ROOT / "node_modules" / "mathjax" / "es5" / "tex-svg.js"
MARK = "<!-- course_lib: MathJax 3 inline (tools/offline_feedback.py) -->"

# nbconvert's base/mathjax.html.j2: the CDN script, then its text/x-mathjax-config block
_CDN_BLOCK = re.compile(
    r'<script src="https://cdnjs\.cloudflare\.com/ajax/libs/mathjax/[^"]*"> ?</script>\s*'
    r'<!-- MathJax configuration -->\s*<script type="text/x-mathjax-config">.*?</script>',
    re.DOTALL)

# the same delimiters and options nbconvert gives MathJax 2, in MathJax 3's form
_CONFIG = """<script>
window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
        processEscapes: true, processEnvironments: true, tags: 'ams'},
  svg: {fontCache: 'global'}
};
</script>"""


def inline_block(mathjax_js: str) -> str:
    if "</script" in mathjax_js.lower():
        raise ValueError("the MathJax bundle contains '</script': it cannot be inlined as is")
    return f"{MARK}\n{_CONFIG}\n<script>\n{mathjax_js}\n</script>"


def rewrite(html: str, block: str) -> tuple[str, str]:
    """``(new_html, status)``: status is ``rewritten``, ``already`` or ``no-mathjax-block``."""
    if MARK in html:
        return html, "already"
    new, n = _CDN_BLOCK.subn(lambda _m: block, html, count=1)
    return (new, "rewritten") if n else (html, "no-mathjax-block")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", type=Path,
                        help="feedback HTML files, or folders searched for *.html")
    parser.add_argument("--mathjax", type=Path, default=MATHJAX,
                        help="MathJax 3's tex-svg.js (default: the npm package, `make npm`)")
    args = parser.parse_args(argv)
    if not args.mathjax.is_file():
        print(f"MathJax not found at {args.mathjax}: run `make npm` (npm ci) first, or pass "
              "--mathjax", file=sys.stderr)
        return 2
    block = inline_block(args.mathjax.read_text(encoding="utf-8"))
    files = []
    for path in args.paths:
        if path.is_dir():
            files += sorted(path.rglob("*.html"))
        elif path.is_file():
            files.append(path)
        else:
            print(f"{path}: no such file or folder", file=sys.stderr)
            return 2
    problems = 0
    for f in files:
        new, status = rewrite(f.read_text(encoding="utf-8"), block)
        if status == "rewritten":
            f.write_text(new, encoding="utf-8")
        elif status == "no-mathjax-block":
            problems += 1
        print(f"{status:>16}  {f}")
    if not files:
        print("no HTML files found", file=sys.stderr)
        return 1
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
