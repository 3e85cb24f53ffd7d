"""Serve the book's JavaScript locally, so that math and widgets render with no internet.

Jupyter Book 1 (Sphinx + myst-nb) loads two pieces of JavaScript from CDNs by default:
MathJax 3 (Sphinx's ``mathjax_path``) and, on pages with ipywidgets, require.js plus
``@jupyter-widgets/html-manager`` (myst-nb's ``nb_ipywidgets_js``). This course installs
them from the npm registry instead (``package.json`` + ``package-lock.json``, ``npm ci``)
and this file puts them into the built book. It is used in three ways:

1. As a **Sphinx extension** (``_config.yml``: ``sphinx.local_extensions``). When an HTML
   build starts, it copies the files listed in :data:`ASSETS` from ``node_modules`` into
   ``<outdir>/_static/npm/``. Sphinx resolves a relative ``mathjax_path`` or
   ``nb_ipywidgets_js`` key against ``_static/``, so ``_config.yml`` names them as
   ``npm/...`` (not ``vendor/``: the pydata theme ships ``_static/vendor/fontawesome``).
   The files are deliberately NOT in a source ``_static`` folder: Jupyter
   Book 1 would then add every ``.js`` found there to every page.
2. ``python tools/offline_assets.py`` checks that ``node_modules`` holds every needed file
   (a fast failure before the long notebook execution). ``--copy DIR`` copies them to DIR.
3. ``python tools/offline_assets.py --check _build/html`` scans every built HTML page and
   exits with status 1, listing pages and URLs, if a page loads a script, stylesheet, font,
   image or frame from the network (``http(s)://`` or ``//host``), or refers to a local
   asset that is missing from the build.

Widgets: html-manager's ``dist/embed.js`` is used, not ``embed-amd.js``. Both bundle the
``@jupyter-widgets/base``, ``controls`` and ``output`` modules; ``embed-amd.js`` needs
require.js and fetches any other widget module from a CDN (``data-jupyter-widgets-cdn``),
while ``embed.js`` needs no require.js and never fetches a module (an unknown widget module
fails with "Could not load module"). The course uses only the built-in widgets. The font
files next to ``embed.js`` (Font Awesome, for button icons) are found relative to the
script's own URL (webpack ``publicPath: auto``), so they are copied alongside it.
"""

from __future__ import annotations

import argparse
import posixpath
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Name of the folder under ``<outdir>/_static`` that receives the files.
VENDOR_DIR = "npm"

#: What the book needs from node_modules: (source under node_modules, destination under
#: ``_static/npm``). A source ending in "/" is a folder, copied whole.
ASSETS: list[tuple[str, str]] = [
    # MathJax 3: the TeX-input / CommonHTML-output component ...
    ("mathjax/es5/tex-chtml.js", "mathjax/tex-chtml.js"),
    # ... the TeX extensions it loads on demand (autoload: \boldsymbol, \cancel, ...),
    ("mathjax/es5/input/tex/extensions/", "mathjax/input/tex/extensions/"),
    # ... the CommonHTML web fonts (found relative to tex-chtml.js),
    ("mathjax/es5/output/chtml/fonts/woff-v2/", "mathjax/output/chtml/fonts/woff-v2/"),
    # ... and what its right-click menu loads when a reader turns accessibility on.
    ("mathjax/es5/ui/", "mathjax/ui/"),
    ("mathjax/es5/a11y/", "mathjax/a11y/"),
    ("mathjax/es5/sre/", "mathjax/sre/"),
    ("mathjax/LICENSE", "mathjax/LICENSE"),
    ("mathjax/package.json", "mathjax/package.json"),
    # The ipywidgets HTML manager (embeds base + controls + output widgets).
    ("@jupyter-widgets/html-manager/dist/embed.js", "html-manager/embed.js"),
    ("@jupyter-widgets/html-manager/dist/embed.js.LICENSE.txt",
     "html-manager/embed.js.LICENSE.txt"),
    ("@jupyter-widgets/html-manager/dist/*.woff2", "html-manager/"),
    ("@jupyter-widgets/html-manager/dist/*.woff", "html-manager/"),
    ("@jupyter-widgets/html-manager/dist/*.ttf", "html-manager/"),
    ("@jupyter-widgets/html-manager/dist/*.eot", "html-manager/"),
    ("@jupyter-widgets/html-manager/dist/*.svg", "html-manager/"),
    # The package manifests record which versions the book was built with.
    ("@jupyter-widgets/html-manager/package.json", "html-manager/package.json"),
]

#: Strings that prove the widget bundle contains the built-in widget modules.
EMBED_MUST_CONTAIN = ("@jupyter-widgets/controls", "@jupyter-widgets/base", "IntSliderModel")


# --------------------------------------------------------------------------------------
# Copy step
# --------------------------------------------------------------------------------------
def _expand(node_modules: Path, source: str) -> list[tuple[Path, str]]:
    """Return (file, relative destination suffix) pairs for one ASSETS source entry."""
    if source.endswith("/"):
        folder = node_modules / source
        if not folder.is_dir():
            return []
        return [(f, f.relative_to(folder).as_posix())
                for f in sorted(folder.rglob("*")) if f.is_file()]
    if any(ch in source for ch in "*?["):
        parent, pattern = source.rsplit("/", 1)
        return [(f, f.name) for f in sorted((node_modules / parent).glob(pattern))
                if f.is_file()]
    path = node_modules / source
    return [(path, "")] if path.is_file() else []


def missing_sources(node_modules: Path | str) -> list[str]:
    """ASSETS entries that are absent from ``node_modules`` (empty list: all present)."""
    node_modules = Path(node_modules)
    missing = [src for src, _ in ASSETS if not _expand(node_modules, src)]
    embed = node_modules / "@jupyter-widgets/html-manager/dist/embed.js"
    if embed.is_file():
        text = embed.read_text(encoding="utf-8", errors="replace")
        missing += [f"{embed.name} does not contain {s!r}"
                    for s in EMBED_MUST_CONTAIN if s not in text]
    return missing


def copy_assets(node_modules: Path | str, dest: Path | str) -> list[Path]:
    """Copy every file of :data:`ASSETS` from ``node_modules`` into ``dest``.

    A file already present with the same size and modification time is not copied again.
    Returns the destination paths. Raises FileNotFoundError (naming ``npm ci``) if
    ``node_modules`` lacks a needed file.
    """
    node_modules, dest = Path(node_modules), Path(dest)
    missing = missing_sources(node_modules)
    if missing:
        raise FileNotFoundError(
            f"node_modules={str(node_modules)!r} lacks what the offline book needs: "
            + ", ".join(missing)
            + ". Run 'npm ci' in the repository root (or 'make npm')."
        )
    written = []
    for source, target in ASSETS:
        for path, suffix in _expand(node_modules, source):
            out = dest / target / suffix if target.endswith("/") else dest / target
            st = path.stat()
            if not (out.is_file() and out.stat().st_size == st.st_size
                    and int(out.stat().st_mtime) == int(st.st_mtime)):
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, out)
            written.append(out)
    return written


# --------------------------------------------------------------------------------------
# Sphinx extension
# --------------------------------------------------------------------------------------
def _copy_on_builder_inited(app) -> None:
    """Sphinx ``builder-inited`` hook: fill ``<outdir>/_static/npm`` for HTML builds."""
    from sphinx.errors import ExtensionError
    from sphinx.util import logging

    if getattr(app.builder, "format", None) != "html":
        return
    node_modules = Path(app.config.offline_assets_node_modules or
                        Path(app.confdir) / "node_modules")
    try:
        files = copy_assets(node_modules, Path(app.outdir) / "_static" / VENDOR_DIR)
    except FileNotFoundError as err:
        raise ExtensionError(str(err)) from None
    logging.getLogger(__name__).info(
        "[offline_assets] %d files from %s in _static/%s", len(files), node_modules,
        VENDOR_DIR)


def setup(app):
    """Register the extension (``sphinx.local_extensions: {offline_assets: tools}``)."""
    app.add_config_value("offline_assets_node_modules", "", "env")
    app.connect("builder-inited", _copy_on_builder_inited)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


# --------------------------------------------------------------------------------------
# Check step
# --------------------------------------------------------------------------------------
#: <link rel=...> values that make the browser fetch the href.
_LOADING_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon",
                 "shortcut", "apple-touch-icon", "mask-icon", "manifest", "preconnect",
                 "dns-prefetch"}
#: tag -> attributes whose URL the browser loads.
_LOADING_ATTRS = {"script": ("src",), "img": ("src", "srcset"), "source": ("src", "srcset"),
                  "iframe": ("src",), "embed": ("src",), "object": ("data",),
                  "video": ("src", "poster"), "audio": ("src",), "track": ("src",),
                  "input": ("src",)}
#: Hosts that serve JavaScript, CSS or fonts; flagged wherever they appear in a <script>
#: or <style> body, or in any attribute of a <script> tag (e.g. data-jupyter-widgets-cdn).
CDN_HOSTS = ("cdn.jsdelivr.net", "unpkg.com", "cdnjs.cloudflare.com", "fonts.googleapis.com",
             "fonts.gstatic.com", "ajax.googleapis.com", "code.jquery.com",
             "stackpath.bootstrapcdn.com", "maxcdn.bootstrapcdn.com", "polyfill.io",
             "www.googletagmanager.com", "plausible.io", "thebe.readthedocs.org",
             "mybinder.org", "cdn.plot.ly", "mathjax.rstudio.com")
_CDN_RE = re.compile(r"(?:https?:)?//(?:" + "|".join(re.escape(h) for h in CDN_HOSTS)
                     + r")[^\s\"'`)<>]*")
_CSS_URL_RE = re.compile(r"""url\(\s*(['"]?)(.*?)\1\s*\)|@import\s+(['"])(.*?)\3""")


def _is_remote(url: str) -> bool:
    return bool(re.match(r"^(?:[a-z][a-z0-9+.-]*:)?//", url.strip(), re.I)) and \
        not url.strip().lower().startswith("file:")


def _is_inert(url: str) -> bool:
    """URLs that load nothing from anywhere: empty, in-page anchors, data:, blob:, about:."""
    url = url.strip()
    return (not url or url.startswith("#") or
            url.lower().startswith(("data:", "blob:", "about:", "javascript:", "mailto:")))


class _PageScanner(HTMLParser):
    """Collect the URLs that one HTML page makes the browser load."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.loads: list[tuple[str, str]] = []     # (what, url) fetched by the page
        self.cdn_mentions: list[tuple[str, str]] = []  # CDN URLs in script/style text
        self.on_demand: list[tuple[str, str]] = []  # CDN URLs fetched only on a click
        self._in: str | None = None

    def handle_starttag(self, tag, attrs):
        attrs = {k: (v or "") for k, v in attrs}
        if tag == "link":
            rels = set(attrs.get("rel", "").lower().split())
            if rels & _LOADING_RELS and attrs.get("href"):
                self.loads.append((f"<link rel={attrs['rel']}>", attrs["href"]))
        for name in _LOADING_ATTRS.get(tag, ()):
            value = attrs.get(name, "")
            urls = [part.split()[0] for part in value.split(",") if part.split()] \
                if name == "srcset" else [value]
            self.loads += [(f"<{tag} {name}>", u) for u in urls if u]
        if tag == "script":
            for name, value in attrs.items():
                if name != "src" and _is_remote(value):
                    self.loads.append((f"<script {name}>", value))
        if tag in ("script", "style"):
            self._in = tag

    def handle_endtag(self, tag):
        if tag == self._in:
            self._in = None

    def handle_data(self, data):
        if self._in == "style":
            for url in _css_urls(data):
                self.loads.append(("<style> url()", url))
        elif self._in == "script":
            for match in _CDN_RE.finditer(data):
                # sphinx-thebe declares `const THEBE_JS_URL = "https://unpkg.com/..."` on
                # every page but fetches it only when a reader presses the "Live Code"
                # launch button (calls initThebe...). check_build flags it only if the
                # page has that button (launch_buttons.thebe: true in _config.yml).
                before = data[:match.start()].rstrip().rstrip("\"'").rstrip()
                if before.endswith("THEBE_JS_URL ="):
                    self.on_demand.append(("<script> THEBE_JS_URL", match.group(0)))
                else:
                    self.cdn_mentions.append(("<script> text", match.group(0)))


def _css_urls(css: str) -> list[str]:
    css = re.sub(r"/\*.*?\*/", "", css, flags=re.S)  # ignore comments
    return [m.group(2) if m.group(2) is not None else m.group(4)
            for m in _CSS_URL_RE.finditer(css)]


def _resolve_local(url: str, referrer: Path) -> Path:
    path = unquote(urlsplit(url).path)
    return Path(posixpath.normpath((referrer.parent / path).as_posix()))


def check_build(html_dir: Path | str) -> dict[str, list[str]]:
    """Scan every ``*.html`` under ``html_dir``; return {page: [problem, ...]} (empty: OK).

    A problem is a network load (``http(s)://`` or ``//host`` in a loading position, or a
    known CDN host anywhere in a script/style body), a local asset that does not exist, an
    absolute ``/path`` (it breaks under ``file://``), or a remote/missing ``url()`` or
    ``@import`` inside a local stylesheet the page loads.
    """
    html_dir = Path(html_dir).resolve()
    # Theme templates copied into _static (e.g. webpack-macros.html) are not pages.
    pages = sorted(p for p in html_dir.rglob("*.html")
                   if p.relative_to(html_dir).parts[0] != "_static")
    if not pages:
        raise FileNotFoundError(f"html_dir={str(html_dir)!r} contains no .html page")
    problems: dict[str, list[str]] = {}
    css_cache: dict[Path, list[str]] = {}
    for page in pages:
        scanner = _PageScanner()
        text = page.read_text(encoding="utf-8", errors="replace")
        scanner.feed(text)
        found = [f"{what}: network URL {url}" for what, url in scanner.cdn_mentions]
        if "initThebe" in text:  # a thebe launch button: the reader can trigger the load
            found += [f"{what}: network URL {url}" for what, url in scanner.on_demand]
        for what, url in scanner.loads:
            if _is_inert(url):
                continue
            if _is_remote(url):
                found.append(f"{what}: network URL {url}")
                continue
            if url.startswith("/") or url.lower().startswith("file:"):
                found.append(f"{what}: absolute path {url} (breaks when opened from disk)")
                continue
            target = _resolve_local(url, page)
            if not target.is_file():
                found.append(f"{what}: missing local file {url}")
            elif target.suffix == ".css":
                if target not in css_cache:
                    css_cache[target] = _check_css(target, html_dir)
                found += css_cache[target]
        if found:
            problems[page.relative_to(html_dir).as_posix()] = sorted(set(found))
    return problems


def _check_css(css_file: Path, html_dir: Path, depth: int = 0) -> list[str]:
    """Remote or missing url()/@import targets of one local stylesheet (and its imports)."""
    found = []
    name = css_file.relative_to(html_dir).as_posix() if css_file.is_relative_to(html_dir) \
        else str(css_file)
    for url in _css_urls(css_file.read_text(encoding="utf-8", errors="replace")):
        if _is_inert(url):
            continue
        if _is_remote(url):
            found.append(f"{name}: network URL {url}")
            continue
        target = _resolve_local(url, css_file)
        if not target.is_file():
            found.append(f"{name}: missing local file {url}")
        elif target.suffix == ".css" and depth < 5:
            found += _check_css(target, html_dir, depth + 1)
    return found


# --------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--node-modules", type=Path, default=REPO_ROOT / "node_modules",
                        help="where 'npm ci' installed the packages (default: %(default)s)")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--copy", metavar="DIR", type=Path,
                       help="copy the assets into DIR (e.g. _build/html/_static/npm)")
    group.add_argument("--check", metavar="HTML_DIR", type=Path,
                       help="scan a built book for network loads and missing local assets")
    args = parser.parse_args(argv)

    if args.check is not None:
        try:
            problems = check_build(args.check)
        except FileNotFoundError as err:
            print(f"offline check: {err}", file=sys.stderr)
            return 1
        n_pages = sum(1 for p in Path(args.check).rglob("*.html")
                      if p.relative_to(args.check).parts[0] != "_static")
        if problems:
            print(f"offline check FAILED: {len(problems)} of {n_pages} pages need the "
                  "network or miss a local file:", file=sys.stderr)
            for page, found in problems.items():
                print(f"  {page}", file=sys.stderr)
                for item in found:
                    print(f"    {item}", file=sys.stderr)
            return 1
        print(f"offline check passed: {n_pages} pages load nothing from the network")
        return 0

    if args.copy is not None:
        try:
            files = copy_assets(args.node_modules, args.copy)
        except FileNotFoundError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        print(f"copied {len(files)} files into {args.copy}")
        return 0

    missing = missing_sources(args.node_modules)
    if missing:
        print(f"error: {args.node_modules} lacks: {', '.join(missing)}. "
              "Run 'npm ci' in the repository root (or 'make npm').", file=sys.stderr)
        return 1
    print(f"offline assets present in {args.node_modules}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
