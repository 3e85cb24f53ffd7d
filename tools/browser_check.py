"""Open every page of the built book in headless Chromium, offline, as a reader would.

Run after ``make book`` (``make browser-test`` does both)::

    python tools/browser_check.py _build/html            # every page, desktop + phone width
    python tools/browser_check.py _build/html --only book/errata.html -v

Chromium (Debian's ``chromium`` package, or any Chrome/Chromium given by ``--chromium`` or
``$CHROMIUM``) is driven through the DevTools protocol over a WebSocket (the
``websocket-client`` package, already in requirements.txt); no Node.js, Puppeteer or
Playwright. The network is off: every host name resolves to nothing and every proxied
request goes to a closed port, and any request that is not ``file:``/``data:``/``blob:`` is
itself reported as a failure.

Each page is opened at two window widths (desktop 1280 px, phone 390 px with mobile
emulation). A page fails on

* ``console``   an error in the console: an uncaught exception, ``console.error``, a
                resource that failed to load (a 404 under ``file://``, a blocked request);
* ``network``   a request that would need the internet;
* ``math``      a formula MathJax did not typeset (``.math`` element without output, a
                MathJax error box, or TeX such as ``$x$`` or ``\\frac{`` left in the text);
* ``wide``      a display formula, table, image, code block or output wider than the text
                column that is not inside a horizontal scroll container (clipped or spilling),
                or a page that scrolls sideways;
* ``scroll``    at desktop width, a display formula or a table that needs a sideways scroll:
                its content is wider than the box it scrolls in (the formula's own
                ``mjx-container``, the table's scroll container). The line names the
                overflow in px and the start of the formula's TeX (the table's header). At
                phone width the same are listed and counted but do not fail;
* ``image``     an ``<img>`` that did not load (missing file, broken data);
* ``link``      an internal link to a file that does not exist or to an anchor (``#id``)
                that the target page does not have;
* ``layout``    more than one search box on the page;
* ``output``    a notebook cell whose executed notebook (``_build/jupyter_execute``) has an
                output that the rendered page shows as nothing (empty or zero-height output
                area, a widget that did not render).

A full-page screenshot of each page at each width is saved under ``_build/screenshots``
(``desktop/`` and ``phone/``, JPEG) with ``report.json``. The page count and run time are
printed at the end. Exit status: 0 if every page passes, 1 otherwise, 2 if Chromium cannot
be started.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlsplit

REPO_ROOT = Path(__file__).resolve().parent.parent

#: Window sizes: name -> (width, height, mobile emulation).
VIEWPORTS: dict[str, tuple[int, int, bool]] = {
    "desktop": (1280, 900, False),
    "phone": (390, 844, True),
}

#: The widths at which a display formula or a table that needs a sideways scroll (content
#: wider than the box it scrolls in) fails the page; at the other widths it is reported.
SCROLL_FAILS_AT = ("desktop",)

#: Chromium flags: headless, no sandbox (containers run as root), no GPU, and no network
#: (every host resolves to nothing; a proxied request goes to the closed port 9).
CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--no-default-browser-check", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--disable-extensions",
    "--disable-default-apps", "--mute-audio", "--hide-scrollbars",
    "--host-resolver-rules=MAP * ~NOTFOUND",
    "--proxy-server=http://127.0.0.1:9",
    "--proxy-bypass-list=<-loopback>",
]

#: URL schemes a page may load without the network.
LOCAL_SCHEMES = ("file:", "data:", "blob:", "about:", "chrome:", "chrome-error:",
                 "devtools:", "chrome-extension:")

#: Longest screenshot, in CSS pixels (very long pages are cut there).
MAX_SHOT_HEIGHT = 16000


# --------------------------------------------------------------------------------------
# The checks that run inside the page (one async function, returns plain JSON)
# --------------------------------------------------------------------------------------
PAGE_SCRIPT = r"""
async () => {
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  const problems = [];
  const add = (kind, detail) => problems.push({kind, detail});
  const snippet = (s, n = 80) => (s || '').replace(/\s+/g, ' ').trim().slice(0, n);

  // 1. Wait for what renders after load: MathJax, widgets, images, fonts.
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    try { await MathJax.startup.promise; } catch (e) { add('math', 'MathJax failed: ' + e); }
  }
  const viewTags = () => [...document.querySelectorAll(
      'script[type="application/vnd.jupyter.widget-view+json"]')];
  const rendered = s => { const p = s.previousElementSibling;
      return p && p.classList.contains('widget-subarea') && p.children.length > 0; };
  let t0 = performance.now();
  while (performance.now() - t0 < 15000 && !viewTags().every(rendered)) await sleep(100);
  for (const img of document.images) img.loading = 'eager';
  await Promise.all([...document.images].map(img => img.complete ? null :
      Promise.race([img.decode().catch(() => null), sleep(5000)])));
  if (document.fonts) await Promise.race([document.fonts.ready, sleep(5000)]);
  // MathJax typesets widget labels asynchronously: let it settle.
  if (window.MathJax && MathJax.startup && MathJax.startup.document) {
    await sleep(200);
    try { await MathJax.startup.document.typesetPromise?.(); } catch (e) {}
  }
  await sleep(100);

  const column = document.querySelector('article.bd-article') ||
                 document.querySelector('main') || document.body;
  const col = column.getBoundingClientRect();
  const visible = el => { const r = el.getBoundingClientRect();
      const cs = getComputedStyle(el);
      return r.width > 0 && r.height > 0 && cs.visibility !== 'hidden'; };
  const texOf = el => {
    try {
      const items = MathJax.startup.document.getMathItemsWithin(el);
      if (items.length) return items[0].math;
    } catch (e) {}
    return el.textContent;
  };

  // 2. Math.
  for (const el of document.querySelectorAll('.math')) {
    if (el.closest('pre, code, .highlight')) continue;
    if (!el.querySelector('mjx-container') && el.tagName !== 'MJX-CONTAINER')
      add('math', 'not typeset: ' + snippet(el.textContent));
  }
  for (const el of document.querySelectorAll('mjx-merror'))
    add('math', 'MathJax error: ' + snippet(el.getAttribute('data-mjx-error') || el.textContent));
  const skip = 'pre, code, script, style, textarea, mjx-container, .highlight, kbd, samp, ' +
               'noscript, #searchbox, .search, .bd-search';
  const texRe = /(\$\$?)[^$]*?[\\^_{}][^$]*?\1|\\\(|\\\[|\\(?:frac|mathcal|mathbb|sum|int|begin|mathrm|theta|alpha|mu|sigma)\b/;
  const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
  let node;
  const seenTex = new Set();
  while ((node = walker.nextNode())) {
    const p = node.parentElement;
    if (!p || p.closest(skip)) continue;
    const m = node.textContent.match(texRe);
    if (m && !seenTex.has(node.textContent) && visible(p)) {
      seenTex.add(node.textContent);
      add('math', 'TeX left in the text: ' + snippet(node.textContent, 100));
    }
  }

  // 3. Wide content: wider than the column and not inside a horizontal scroll container.
  const scrollerOf = el => {
    for (let a = el; a && a !== column.parentElement; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === 'auto' || ox === 'scroll') return a;
    }
    return null;
  };
  const clipperOf = el => {
    for (let a = el; a && a !== document.body; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === 'hidden' || ox === 'clip') return a;
    }
    return null;
  };
  const candidates = document.querySelectorAll(
      'mjx-container[display="true"], div.math, table, img, svg, pre, .cell_output > *, ' +
      '.output, .widget-subarea, figure, .jupyter-widgets');
  const reported = new Set();
  for (const el of candidates) {
    if (!column.contains(el) || !visible(el) || el.closest('mjx-container svg')) continue;
    if (el.tagName === 'svg' && el.closest('mjx-container')) continue;
    const r = el.getBoundingClientRect();
    const contentW = Math.max(r.width, el.scrollWidth || 0);
    const right = r.left + contentW;
    if (right <= col.right + 1.5 && r.left >= col.left - 1.5) continue;
    const sc = scrollerOf(el);
    if (sc) {
      const sr = sc.getBoundingClientRect();
      // A scroll container inside the column is fine if it really scrolls.
      const before = sc.scrollLeft;
      sc.scrollLeft = before + 8;
      const scrolls = sc.scrollLeft !== before || sc.scrollWidth <= sc.clientWidth + 1;
      sc.scrollLeft = before;
      if (sr.right <= col.right + 1.5 && sr.left >= col.left - 1.5 && scrolls) continue;
    }
    if ([...reported].some(o => o.contains(el))) continue;
    reported.add(el);
    const what = el.matches('mjx-container, div.math') ? 'formula ' + snippet(texOf(el), 70)
        : el.tagName.toLowerCase() + (el.className && typeof el.className === 'string'
            ? '.' + el.className.trim().split(/\s+/).slice(0, 2).join('.') : '') +
          ' ' + snippet(el.textContent, 50);
    const clip = clipperOf(el);
    add('wide', `${what}: ${Math.round(contentW)} px wide in a ${Math.round(col.width)} px ` +
        `column, ${clip ? 'clipped (cannot be scrolled to)' : 'spills out of the column'}`);
  }
  // 3b. Display formulas and tables that fit the page only through a sideways scroll: the
  //     content is wider than the box it scrolls in (the formula's own mjx-container, the
  //     table's scroll container). Measured with the box scrolled to the left.
  const scrolls = [];
  for (const el of document.querySelectorAll('mjx-container[display="true"]')) {
    if (!column.contains(el) || !visible(el)) continue;
    const m = el.querySelector(':scope > mjx-math');
    const need = Math.max(el.scrollWidth, m ? Math.ceil(m.getBoundingClientRect().width) : 0);
    const over = need - el.clientWidth;
    if (over > 1)
      scrolls.push({what: 'equation', overflow: Math.round(over), width: Math.round(need),
                    box: el.clientWidth, tex: snippet(texOf(el), 70)});
  }
  for (const el of document.querySelectorAll('table')) {
    if (!column.contains(el) || !visible(el) || el.closest('mjx-container')) continue;
    if (el.parentElement && el.parentElement.closest('table')) continue;  // a table in a table
    const sc = scrollerOf(el.parentElement);
    if (!sc) continue;  // not in a scroll container: section 3 reports it if it is too wide
    const before = sc.scrollLeft;
    sc.scrollLeft = 0;
    const sr = sc.getBoundingClientRect();
    const over = el.getBoundingClientRect().right - (sr.left + sc.clientLeft + sc.clientWidth);
    sc.scrollLeft = before;
    if (over > 1) {
      const head = [...el.querySelectorAll('th')].map(th => th.textContent.trim())
          .filter(Boolean).slice(0, 4).join(' | ');
      scrolls.push({what: 'table', overflow: Math.round(over),
                    width: Math.round(el.getBoundingClientRect().width), box: sc.clientWidth,
                    tex: snippet(head || el.textContent, 70)});
    }
  }

  const docW = document.scrollingElement.scrollWidth;
  if (docW > window.innerWidth + 1)
    add('wide', `the page scrolls sideways: ${docW} px wide in a ${window.innerWidth} px window`);

  // 4. Images.
  for (const img of document.images) {
    if (!img.complete || img.naturalWidth === 0)
      add('image', 'not loaded: ' + snippet(img.getAttribute('src'), 120));
  }

  // 5. Links and anchors (checked across pages by the caller).
  const links = [...new Set([...document.querySelectorAll('a[href]')].map(a => a.href))];
  const ids = [...document.querySelectorAll('[id]')].map(e => e.id)
      .concat([...document.querySelectorAll('a[name]')].map(e => e.getAttribute('name')));

  // 6. Notebook outputs, in page order (matched with the executed notebook by the caller).
  const cells = [...document.querySelectorAll('div.cell')].filter(c => !c.closest('div.cell div.cell'))
    .map(c => {
      const out = c.querySelector(':scope > .cell_output');
      let text = '', media = 0, height = 0;
      if (out) {
        text = out.innerText.trim();
        media = out.querySelectorAll('img, svg, canvas, iframe, table, .widget-subarea > *, ' +
                                     'mjx-container').length;
        height = out.getBoundingClientRect().height;
      }
      return {tags: c.className, has_output: !!out, text: text.slice(0, 60),
              text_len: text.length, media, height};
    });

  // 7. Things to report about the page itself.
  const searchBoxes = [...document.querySelectorAll(
      'input[type="search"], input[name="q"], .search-button-field')]
      .filter(e => visible(e) && !e.closest('dialog, #pst-search-dialog, .bd-search-container'))
      .length;
  if (searchBoxes > 1) add('layout', `${searchBoxes} search boxes on the page`);
  return {problems, scrolls, links, ids, cells, search_boxes: searchBoxes,
          title: document.title, height: document.scrollingElement.scrollHeight,
          width: docW};
}
"""


# --------------------------------------------------------------------------------------
# A minimal DevTools-protocol client
# --------------------------------------------------------------------------------------
class CDP:
    """One WebSocket to one page target; commands are synchronous, events are buffered."""

    def __init__(self, ws_url: str, timeout: float = 60.0):
        import websocket  # websocket-client

        self.ws = websocket.create_connection(ws_url, timeout=timeout, suppress_origin=True)
        self._id = 0
        self.events: list[dict] = []

    def send(self, method: str, params: dict | None = None, timeout: float = 60.0) -> dict:
        self._id += 1
        my_id = self._id
        self.ws.send(json.dumps({"id": my_id, "method": method, "params": params or {}}))
        deadline = time.monotonic() + timeout
        while True:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            msg = json.loads(self.ws.recv())
            if msg.get("id") == my_id:
                if "error" in msg:
                    raise RuntimeError(f"{method}: {msg['error']}")
                return msg.get("result", {})
            if "method" in msg:
                self.events.append(msg)
            if time.monotonic() > deadline:
                raise TimeoutError(f"{method}: no answer in {timeout} s")

    def wait_event(self, name: str, timeout: float) -> dict | None:
        """Return the first buffered or incoming event ``name`` (None on timeout)."""
        for ev in self.events:
            if ev["method"] == name:
                return ev
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.ws.settimeout(max(0.1, deadline - time.monotonic()))
            try:
                msg = json.loads(self.ws.recv())
            except Exception:  # websocket timeout
                return None
            if "method" in msg:
                self.events.append(msg)
                if msg["method"] == name:
                    return msg
        return None

    def drain(self, seconds: float = 0.05) -> None:
        """Read the events that are already on the wire."""
        self.wait_event("__none__", seconds)

    def close(self) -> None:
        try:
            self.ws.close()
        except Exception:
            pass


class Browser:
    """A headless Chromium with a DevTools port, closed with the ``with`` block."""

    def __init__(self, executable: str, extra_flags: list[str] | None = None):
        self.profile = tempfile.mkdtemp(prefix="browser-check-")
        cmd = [executable, *CHROMIUM_FLAGS, *(extra_flags or []),
               f"--user-data-dir={self.profile}", "--remote-debugging-port=0",
               "--remote-debugging-address=127.0.0.1", "about:blank"]
        self.proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                     text=True)
        self.port = None
        deadline = time.monotonic() + 60
        lines = []
        while time.monotonic() < deadline:
            line = self.proc.stderr.readline()
            if not line:
                if self.proc.poll() is not None:
                    break
                continue
            lines.append(line)
            m = re.search(r"DevTools listening on ws://[^:]+:(\d+)/", line)
            if m:
                self.port = int(m.group(1))
                break
        if self.port is None:
            self.close()
            raise RuntimeError(f"{executable} did not start a DevTools endpoint:\n"
                               + "".join(lines[-20:]))
        # Keep reading stderr so that Chromium never blocks on a full pipe.
        import threading
        threading.Thread(target=self.proc.stderr.read, daemon=True).start()

    def _http(self, path: str, method: str = "GET"):
        import urllib.request
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        req = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method)
        with opener.open(req, timeout=30) as r:
            body = r.read()
        try:
            return json.loads(body)
        except ValueError:
            return body.decode(errors="replace")

    def new_tab(self) -> tuple[str, str]:
        """Open a fresh tab; return (target id, its DevTools WebSocket URL).

        Every page is checked in a tab of its own, so that nothing a page leaves behind
        (a pending dialog, a busy script, a changed window size) affects the next one.
        """
        target = self._http("/json/new?about:blank", method="PUT")
        return target["id"], target["webSocketDebuggerUrl"]

    def close_tab(self, target_id: str) -> None:
        try:
            self._http(f"/json/close/{target_id}")
        except Exception:
            pass

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        shutil.rmtree(self.profile, ignore_errors=True)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def find_chromium(explicit: str | None = None) -> str | None:
    """The Chromium executable: ``explicit``, ``$CHROMIUM``, or the first one on PATH."""
    for cand in (explicit, os.environ.get("CHROMIUM")):
        if cand:
            return shutil.which(cand) or (cand if Path(cand).is_file() else None)
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable",
                 "chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


# --------------------------------------------------------------------------------------
# Pages, links, notebook outputs (plain Python)
# --------------------------------------------------------------------------------------
def book_pages(html_dir: Path) -> list[Path]:
    """Every HTML page of the build (not the theme's templates or copied sources)."""
    skip = {"_static", "_sources", "_images", "_downloads", "_panels_static"}
    return sorted(p for p in html_dir.rglob("*.html")
                  if p.relative_to(html_dir).parts[0] not in skip)


class _IdParser(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids: set[str] = set()

    def handle_starttag(self, tag, attrs):
        for k, v in attrs:
            if (k == "id" or (tag == "a" and k == "name")) and v:
                self.ids.add(v)


def ids_in_file(path: Path) -> set[str]:
    parser = _IdParser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    return parser.ids


def check_links(links_by_page: dict[str, list[str]], ids_by_file: dict[Path, set[str]],
                html_dir: Path) -> dict[str, list[str]]:
    """Broken internal links: {page: [problem]}. ``links`` are absolute ``file://`` URLs."""
    problems: dict[str, list[str]] = {}
    root = html_dir.resolve()
    for page, links in links_by_page.items():
        for link in links:
            if not link.startswith("file:"):
                continue  # external links are not followed (the network is off)
            url, frag = urldefrag(link)
            target = Path(unquote(urlsplit(url).path))
            shown = _relative(target, root)
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                problems.setdefault(page, []).append(f"link to a missing file: {shown}")
                continue
            if frag and target.suffix == ".html":
                if target not in ids_by_file:
                    ids_by_file[target] = ids_in_file(target)
                if unquote(frag) not in ids_by_file[target]:
                    problems.setdefault(page, []).append(
                        f"link to a missing anchor: {shown}#{frag}")
    return problems


def _relative(path: Path, root: Path) -> str:
    try:
        return path.resolve().relative_to(root).as_posix()
    except ValueError:
        return str(path)


def expected_outputs(html_dir: Path, page: Path) -> list[dict] | None:
    """For a notebook page, the code cells the page shows, with whether each has output.

    Reads the executed notebook that myst-nb wrote to ``_build/jupyter_execute``. Cells tagged
    ``remove-cell`` are not on the page; ``remove-output`` and stderr streams (dropped by
    ``execute.stderr_output: remove``) are not expected output. Returns None for a page
    that does not come from a notebook.
    """
    rel = page.relative_to(html_dir).with_suffix(".ipynb")
    nb_path = html_dir.parent / "jupyter_execute" / rel
    if not nb_path.is_file():
        return None
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cells = []
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        tags = set(cell.get("metadata", {}).get("tags", []))
        if tags & {"remove-cell", "remove_cell"}:
            continue
        outs = [o for o in cell.get("outputs", [])
                if not (o.get("output_type") == "stream" and o.get("name") == "stderr")]
        expected = bool(outs) and not (tags & {"remove-output", "remove_output"})
        cells.append({"expected": expected, "tags": sorted(tags),
                      "source": "".join(cell.get("source", ""))[:60]})
    return cells


def check_outputs(expected: list[dict], rendered: list[dict]) -> list[str]:
    """Problems where the notebook produced output and the page shows none."""
    if len(expected) != len(rendered):
        return [f"the executed notebook has {len(expected)} shown code cells, the page "
                f"{len(rendered)}: cannot match outputs"]
    found = []
    for i, (exp, got) in enumerate(zip(expected, rendered), start=1):
        if not exp["expected"]:
            continue
        collapsed = any(t in exp["tags"] for t in ("hide-output", "hide-cell"))
        src = exp["source"].replace("\n", " ")
        if not got["has_output"]:
            found.append(f"code cell {i} ({src!r}): the notebook has output, the page none")
        elif got["text_len"] == 0 and got["media"] == 0:
            found.append(f"code cell {i} ({src!r}): output area is empty")
        elif got["height"] < 1 and not collapsed:
            found.append(f"code cell {i} ({src!r}): output area has zero height")
    return found


# --------------------------------------------------------------------------------------
# The run
# --------------------------------------------------------------------------------------
@dataclass
class PageResult:
    page: str
    viewport: str
    problems: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    screenshot: str = ""
    search_boxes: int = 0
    #: what needs a sideways scroll where that is reported, not failed (see SCROLL_FAILS_AT)
    notes: list[dict] = field(default_factory=list)


def describe_scroll(item: dict) -> str:
    """One line for a formula or table that needs a sideways scroll (from the page script)."""
    what = "formula" if item["what"] == "equation" else "table"
    return (f"{what} {item['tex']!r} needs a sideways scroll: {item['overflow']} px wider "
            f"than its box ({item['width']} px in {item['box']} px)")


_REFRESH_RE = re.compile(r"""<meta[^>]+http-equiv=["']?refresh["']?[^>]*content=["']?\s*\d+\s*;\s*url=([^"'>\s]+)""",
                         re.I)


def redirect_target(page: Path) -> str | None:
    """The URL a redirect page (``<meta http-equiv="refresh" ... url=...>``) sends to."""
    m = _REFRESH_RE.search(page.read_text(encoding="utf-8", errors="replace")[:4000])
    return m.group(1) if m else None


def _console_problems(events: list[dict], page_url: str) -> list[dict]:
    found = []
    for ev in events:
        method, p = ev["method"], ev.get("params", {})
        if method == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            text = d.get("exception", {}).get("description") or d.get("text", "")
            where = d.get("url", "")
            found.append({"kind": "console", "detail":
                          f"uncaught exception: {text.splitlines()[0] if text else '?'}"
                          + (f" ({Path(urlsplit(where).path).name}:{d.get('lineNumber', 0) + 1})"
                             if where else "")})
        elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            args = " ".join(str(a.get("value", a.get("description", ""))) for a in
                            p.get("args", []))
            found.append({"kind": "console", "detail": f"console.{p['type']}: {args[:200]}"})
        elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            e = p["entry"]
            found.append({"kind": "console", "detail":
                          f"{e.get('source', 'log')}: {e.get('text', '')[:200]} "
                          f"{e.get('url', '')}".strip()})
        elif method == "Network.requestWillBeSent":
            url = p.get("request", {}).get("url", "")
            if not url.lower().startswith(LOCAL_SCHEMES):
                found.append({"kind": "network", "detail": f"request to {url[:200]}"})
    # One line per distinct message.
    unique, seen = [], set()
    for f in found:
        if f["detail"] not in seen:
            seen.add(f["detail"])
            unique.append(f)
    return unique


def check_page(cdp: CDP, url: str, viewport: str, shot: Path | None,
               load_timeout: float = 30.0) -> dict:
    width, height, mobile = VIEWPORTS[viewport]
    cdp.send("Emulation.setDeviceMetricsOverride",
             {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
    cdp.send("Emulation.setTouchEmulationEnabled", {"enabled": mobile})
    cdp.drain()
    cdp.events.clear()
    cdp.send("Page.navigate", {"url": url})
    loaded = cdp.wait_event("Page.loadEventFired", load_timeout)
    result = cdp.send("Runtime.evaluate", {"expression": f"({PAGE_SCRIPT})()",
                                           "awaitPromise": True, "returnByValue": True},
                      timeout=60)
    if "exceptionDetails" in result:
        raise RuntimeError(f"page script failed on {url}: {result['exceptionDetails']}")
    data = result["result"]["value"]
    cdp.drain(0.2)
    data["problems"] = ([] if loaded else [{"kind": "console", "detail":
                                            f"page did not finish loading in {load_timeout} s"}]) \
        + data["problems"] + _console_problems(cdp.events, url)
    if shot is not None:
        h = min(int(data.get("height") or height), MAX_SHOT_HEIGHT)
        w = max(width, int(data.get("width") or width))
        # Full page: make the window as tall as the page (as Puppeteer's fullPage does),
        # capture, and put the window back.
        cdp.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": max(h, height), "deviceScaleFactor": 1,
                  "mobile": mobile})
        time.sleep(0.3)
        img = cdp.send("Page.captureScreenshot",
                       {"format": "jpeg", "quality": 70,
                        "clip": {"x": 0, "y": 0, "width": w, "height": max(h, 1), "scale": 1}},
                       timeout=120)
        cdp.send("Emulation.setDeviceMetricsOverride",
                 {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})
        shot.parent.mkdir(parents=True, exist_ok=True)
        shot.write_bytes(base64.b64decode(img["data"]))
    return data


def run(html_dir: Path, chromium: str, shots_dir: Path | None, only: list[str] | None = None,
        viewports: list[str] | None = None, verbose: bool = False,
        notes: list[str] | None = None) -> tuple[int, list[str]]:
    """Check the book; return (pages checked, failure lines).

    A display formula or table that needs a sideways scroll fails the page at the widths in
    :data:`SCROLL_FAILS_AT`; at the other widths it is appended to ``notes`` (when given) as
    ``page [width] scroll: ...``, a line like a failure's.
    """
    html_dir = html_dir.resolve()
    pages = book_pages(html_dir)
    if only:
        wanted = {o.strip("/") for o in only}
        pages = [p for p in pages if p.relative_to(html_dir).as_posix() in wanted]
    if not pages:
        raise FileNotFoundError(f"no page to check under {html_dir}")
    viewports = viewports or list(VIEWPORTS)
    results: list[PageResult] = []
    links_by_page: dict[str, list[str]] = {}
    ids_by_file: dict[Path, set[str]] = {}
    with Browser(chromium) as browser:
        for page in pages:
            rel = page.relative_to(html_dir).as_posix()
            expected = expected_outputs(html_dir, page)
            target = redirect_target(page)
            if target is not None:  # e.g. index.html -> book/intro.html: check the target
                links_by_page[rel] = [urljoin(page.as_uri(), target)]
                continue
            for vp in viewports:
                t0 = time.monotonic()
                shot = (shots_dir / vp / (rel.replace("/", "__")[:-5] + ".jpg")
                        if shots_dir else None)
                tab, ws_url = browser.new_tab()
                cdp = CDP(ws_url)
                try:
                    for domain in ("Page", "Runtime", "Log", "Network"):
                        cdp.send(f"{domain}.enable")
                    data = check_page(cdp, page.as_uri(), vp, shot)
                except Exception as err:  # a hung or crashed page is a failure, not a crash
                    data = {"problems": [{"kind": "console", "detail":
                                          f"the page did not respond: {type(err).__name__}: "
                                          f"{err}"}], "scrolls": [], "links": [], "ids": [],
                            "cells": [], "search_boxes": 0}
                finally:
                    cdp.close()
                    browser.close_tab(tab)
                res = PageResult(rel, vp, data["problems"], time.monotonic() - t0,
                                 str(shot) if shot else "", data["search_boxes"])
                scrolls = [{"kind": "scroll", "detail": describe_scroll(item)}
                           for item in data.get("scrolls", [])]
                if vp in SCROLL_FAILS_AT:
                    res.problems += scrolls
                else:
                    res.notes += scrolls
                if vp == viewports[0]:
                    links_by_page[rel] = data["links"]
                    ids_by_file[page] = set(data["ids"])
                    if expected is not None and data["cells"] is not None:
                        res.problems += [{"kind": "output", "detail": d} for d in
                                         check_outputs(expected, data["cells"])]
                results.append(res)
                if verbose:
                    print(f"  {rel} [{vp}] {res.seconds:.1f} s, "
                          f"{len(res.problems)} problems", flush=True)
    for page, probs in check_links(links_by_page, ids_by_file, html_dir).items():
        res = next(r for r in results if r.page == page)
        res.problems += [{"kind": "link", "detail": d} for d in sorted(set(probs))]
    failures = []
    for res in results:
        for p in res.problems:
            failures.append(f"{res.page} [{res.viewport}] {p['kind']}: {p['detail']}")
        if notes is not None:
            notes += [f"{res.page} [{res.viewport}] {p['kind']}: {p['detail']}"
                      for p in res.notes]
    if shots_dir:
        shots_dir.mkdir(parents=True, exist_ok=True)
        (shots_dir / "report.json").write_text(json.dumps(
            [r.__dict__ for r in results], indent=1, ensure_ascii=False), encoding="utf-8")
    return len(pages), failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html_dir", nargs="?", type=Path, default=REPO_ROOT / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="folder for the screenshots (default: <html_dir>/../screenshots)")
    parser.add_argument("--no-screenshots", action="store_true")
    parser.add_argument("--chromium", default=None, help="Chromium executable")
    parser.add_argument("--only", action="append", help="check only this page (repeatable), "
                        "relative to html_dir, e.g. book/errata.html")
    parser.add_argument("--viewport", action="append", choices=list(VIEWPORTS))
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)

    chromium = find_chromium(args.chromium)
    if chromium is None:
        print("browser check: no Chromium found. Install it (Debian: apt-get install -y "
              "chromium) or pass --chromium / set $CHROMIUM.", file=sys.stderr)
        return 2
    if not args.html_dir.is_dir():
        print(f"browser check: {args.html_dir} does not exist; run 'make book' first.",
              file=sys.stderr)
        return 2
    shots = None if args.no_screenshots else \
        (args.screenshots or args.html_dir.resolve().parent / "screenshots")
    if shots is not None and shots.exists():
        shutil.rmtree(shots)
    t0 = time.monotonic()
    notes: list[str] = []
    try:
        n_pages, failures = run(args.html_dir, chromium, shots, args.only, args.viewport,
                                args.verbose, notes)
    except RuntimeError as err:
        print(f"browser check: {err}", file=sys.stderr)
        return 2
    seconds = time.monotonic() - t0
    n_vp = len(args.viewport or VIEWPORTS)
    for vp in args.viewport or VIEWPORTS:
        if vp in SCROLL_FAILS_AT:
            continue
        mine = [n for n in notes if f" [{vp}] " in n]
        n_eq = sum("] scroll: formula " in n for n in mine)
        print(f"{vp} width ({VIEWPORTS[vp][0]} px): {n_eq} display formulas and "
              f"{len(mine) - n_eq} tables need a sideways scroll (reported, not failed)"
              + (":" if mine else ""))
        for line in mine:
            print("  " + line)
    if failures:
        print(f"browser check FAILED: {len(failures)} problems on {n_pages} pages "
              f"x {n_vp} widths ({seconds:.0f} s):", file=sys.stderr)
        for line in failures:
            print("  " + line, file=sys.stderr)
    else:
        print(f"browser check passed: {n_pages} pages x {n_vp} widths, offline, in "
              f"{seconds:.0f} s" + (f"; screenshots in {_relative(shots, Path.cwd())}"
                                     if shots else ""))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
