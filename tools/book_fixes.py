"""Sphinx extension: what the book's pages need beyond Jupyter Book 1's defaults.

Registered in ``_config.yml`` (``sphinx.local_extensions: {book_fixes: tools}``). It

1. adds the course's stylesheet ``book/css/course.css`` to every page (wide formulas and
   tables scroll inside the text column, one search box, consecutive text outputs of a cell
   read as one block, a font stack with CJK fallbacks for the Chinese terms);
2. removes duplicated ``<script>`` tags from every page: Jupyter Book 1 registers
   sphinx-thebe's and sphinx-togglebutton's inline scripts twice, and the second
   ``const THEBE_JS_URL = ...`` is a SyntaxError in the console of every page;
3. gives ipywidgets' HTML manager the MathJax 2 call it makes (``MathJax.Hub.Queue``) on top
   of the book's MathJax 3, so that widget labels are typeset instead of raising a
   TypeError;
4. sets the theme's ``default_mode`` (``html_context``) to ``auto`` when nothing sets it:
   an empty mode makes the theme log "Got invalid theme mode" on a reader's first visit;
5. when ``repository.url`` in ``_config.yml`` is empty, takes the repository URL from the
   clone's ``origin`` remote, so that the launch buttons (Binder, JupyterHub, Colab) and the
   repository button work in any fork without editing the configuration;
6. applies ``tools/nbclient_fix.py`` before the notebooks are executed (myst-nb runs them in
   this process): a cell that displays a widget could stall the build for its whole timeout.

Nothing here is a ``.js`` file under a ``_static`` folder (Jupyter Book 1 would inject every
such file into every page): the one script is inline.
"""

from __future__ import annotations

from pathlib import Path

#: ``book/css/course.css`` (relative to the book's root) is copied into ``_static``; the
#: folder holds no ``.js``.
CSS_FILE = "course.css"

#: ipywidgets' html-manager (1.x) typesets labels with ``MathJax.Hub.Queue(["Typeset",
#: MathJax.Hub, el])``, MathJax 2's API. Map it to MathJax 3's ``typesetPromise``. Runs at
#: DOMContentLoaded: after the deferred MathJax script, before html-manager renders widgets
#: (on the window's load event).
MATHJAX2_SHIM = """\
document.addEventListener("DOMContentLoaded", function () {
  var MJ = window.MathJax;
  if (!MJ || MJ.Hub || !MJ.startup || !MJ.startup.promise) { return; }
  MJ.Hub = {Queue: function () {
    Array.prototype.forEach.call(arguments, function (job) {
      if (Array.isArray(job) && job[0] === "Typeset" && job[2]) {
        MJ.startup.promise = MJ.startup.promise
          .then(function () { return MJ.typesetPromise([job[2]]); })
          .catch(function (err) { console.warn("MathJax could not typeset a widget", err); });
      }
    });
  }};
});"""


def repository_url_from_git(root: Path) -> str | None:
    """``https://host/owner/name`` of the ``origin`` remote of the clone at ``root``, or None."""
    import re
    import subprocess

    try:
        url = subprocess.run(["git", "-C", str(root), "remote", "get-url", "origin"],
                             capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    m = re.match(r"^(?:https?://|ssh://)?(?:[^@/]+@)?([^/:]+)[:/]([^/]+)/([^/]+?)(?:\.git)?/?$",
                 url)
    if not m or m.group(1) not in ("github.com", "gitlab.com", "bitbucket.org"):
        return None
    return f"https://{m.group(1)}/{m.group(2)}/{m.group(3)}"


def _on_config_inited(app, config) -> None:
    css_dir = Path(app.confdir) / "book" / "css"
    if (css_dir / CSS_FILE).is_file():
        static = list(config.html_static_path or [])
        if str(css_dir) not in static:
            config.html_static_path = [*static, str(css_dir)]
        app.add_css_file(CSS_FILE)
    options = config.html_theme_options
    if isinstance(options, dict) and not options.get("repository_url"):
        url = repository_url_from_git(Path(app.confdir))
        if url:
            options["repository_url"] = url
            options.setdefault("repository_branch", "main")
        elif isinstance(options.get("launch_buttons"), dict):
            # No repository: launch buttons cannot be built (sphinx-book-theme would fail on
            # every notebook page), so the book has none.
            options["launch_buttons"] = {
                **options["launch_buttons"], "binderhub_url": "", "jupyterhub_url": "",
                "colab_url": "", "jupyterlite_url": "", "thebe": False}
    if isinstance(options, dict) and options.get("repository_url"):
        # With a repository (from _config.yml or from git), every page links to it.
        options["use_repository_button"] = True
    # pydata-sphinx-theme reads the default colour mode from html_context, not theme options.
    context = dict(config.html_context or {})
    context.setdefault("default_mode", "auto")
    config.html_context = context


def _asset_key(asset) -> tuple:
    attrs = getattr(asset, "attributes", {}) or {}
    return (getattr(asset, "filename", str(asset)) or "",  # inline: None or ""
            tuple(sorted((k, str(v)) for k, v in attrs.items())))


def dedupe(assets: list) -> list:
    """``assets`` without repeats (same file or inline body and same attributes), in order."""
    seen, out = set(), []
    for asset in assets:
        key = _asset_key(asset)
        if key not in seen:
            seen.add(key)
            out.append(asset)
    return out


def _on_page_context(app, pagename, templatename, context, doctree) -> None:
    for name in ("script_files", "css_files"):
        if isinstance(context.get(name), list):
            context[name] = dedupe(context[name])


def setup(app):
    # myst-nb executes the notebooks in this process, through nbclient: poll for each cell's
    # reply in slices, so that a widget cell cannot stall the build for its whole timeout.
    import nbclient_fix

    nbclient_fix.apply()
    app.connect("config-inited", _on_config_inited)
    # Priority 501: after the MathJax configuration and loader (priority 500).
    app.add_js_file(None, body=MATHJAX2_SHIM, priority=501)
    app.connect("html-page-context", _on_page_context, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}
