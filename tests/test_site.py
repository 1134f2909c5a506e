"""The built site, in a real browser: every page of ``_build/html`` served over HTTP and opened in
headless Chromium (Playwright driving the system's ``chromium``; no browser download).

For every page: HTTP 200, no console errors or uncaught exceptions, no broken images, no error
outputs or tracebacks, no request to any host but the local server (no CDN: MathJax, the widget
bundle and the fonts are all in the book), and its maths rendered by the vendored MathJax
(``mjx-container``) when it has any. Chapter pages must show figures; chapter 1 must carry its
ipywidgets state and render the widgets from the vendored embed bundle, and the widgets of the
chapters must fit the text column. One screenshot of chapter 1 goes to ``_build/site-test/``.

What a reader gets (issue #18): every page, with all it loads, under 3 MB over the wire (the
server gzips text, as GitHub Pages does); every cell-output figure links to its full-resolution
image, and one wider than the text column sits in a full-width cell and is drawn wider than the
column; every table fits the column or scrolls in its own box, and no column carries a raw
snake_case name (``labels.COLUMN_LABELS`` gives the reader's); each chapter's provenance line
(this site's profile, a commit, the data) comes first under its title. The numbers go to
``_build/site-test/measurements/`` (``NICSPEC_SITE_MEASURES`` overrides it).

The browser is kept offline on purpose: every request to a host other than the local server is
recorded and aborted, as for a reader without internet; any such request fails the page.

Marked ``site`` and deselected by default: ``make site-test`` builds the smoke book, installs
Playwright and runs ``pytest -m site``. ``NICSPEC_SITE_DIR`` overrides the site folder,
``NICSPEC_CHROMIUM`` the browser.
"""

from __future__ import annotations

import functools
import http.server
import os
import re
import shutil
import threading
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest

pytestmark = pytest.mark.site

REPO = Path(__file__).resolve().parent.parent
SITE = Path(os.environ.get("NICSPEC_SITE_DIR", REPO / "_build" / "html"))
# A role or a target that Sphinx did not resolve shows up in the page's text as written.
LITERAL_MYST = re.compile(r"\{(?:doc|ref|glue:text|glue|numref|eq|cite)\}`|</book/[\w/.-]*>")
SHOTS = REPO / "_build" / "site-test"
CHAPTER_1 = "book/chapters/01_corruption_benchmark.html"
# A page that must have maths for the MathJax check to mean something (chapter 4's derivations).
MATH_PAGE = "book/chapters/04_lowpass_theory.html"
# Sphinx's markup of $...$ and $$...$$, which MathJax turns into <mjx-container>.
MATH_MARKUP = 'class="math notranslate nohighlight"'
WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCAL_HOST = "127.0.0.1"


def site_pages() -> list[str]:
    """Every HTML page of the site, relative to its root (theme templates under _static and the
    page sources under _sources are not pages)."""
    if not SITE.is_dir():
        return []
    return sorted(
        p.relative_to(SITE).as_posix()
        for p in SITE.rglob("*.html")
        if p.relative_to(SITE).parts[0] not in ("_static", "_sources", "_images")
    )


PAGES = site_pages()


def chromium_path() -> str:
    for candidate in (
        os.environ.get("NICSPEC_CHROMIUM"),
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
        shutil.which("google-chrome"),
    ):
        if candidate and Path(candidate).exists():
            return candidate
    pytest.fail("no chromium: apt-get install chromium (or set NICSPEC_CHROMIUM)")


# Served gzip-compressed to a browser that asks for it, as GitHub Pages (where the book is
# published) and any common static host serve text; images and fonts go as they are.
COMPRESSED_TYPES = (".html", ".js", ".css", ".json", ".svg", ".txt", ".csv", ".map")


@functools.lru_cache(maxsize=512)
def _gzipped(path: str, mtime: float) -> bytes:
    import gzip

    return gzip.compress(Path(path).read_bytes(), compresslevel=6, mtime=0)


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass

    def do_GET(self) -> None:
        path = Path(self.translate_path(self.path))
        wants = "gzip" in self.headers.get("Accept-Encoding", "")
        if not (wants and path.suffix in COMPRESSED_TYPES and path.is_file()):
            super().do_GET()
            return
        body = _gzipped(str(path), path.stat().st_mtime)
        self.send_response(200)
        self.send_header("Content-Type", self.guess_type(str(path)))
        self.send_header("Content-Encoding", "gzip")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """The site over HTTP on a free port of 127.0.0.1; yields the base URL."""
    if not (SITE / "index.html").exists():
        pytest.fail(f"no site at {SITE}: build it first (make site-test does)")
    handler = functools.partial(_QuietHandler, directory=str(SITE))
    httpd = http.server.ThreadingHTTPServer((LOCAL_HOST, 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOCAL_HOST}:{httpd.server_address[1]}/"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail("playwright is not installed: pip install -e '.[site]' (make site-test does)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_FLAGS)
        try:
            yield b
        finally:
            b.close()


def _is_local(url: str) -> bool:
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or parts.hostname == LOCAL_HOST


class Visit:
    """One page opened in the browser, with what went wrong while it loaded."""

    def __init__(self, browser: object, url: str, redirect: bool = False) -> None:
        self.context = browser.new_context(viewport={"width": 1280, "height": 1600})
        # Offline reader: requests to other hosts fail at once, whatever the machine can reach.
        self.context.route(
            lambda u: not _is_local(u), lambda route: route.abort("internetdisconnected")
        )
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.external_failures: list[str] = []
        self.external_requests: list[str] = []
        self.page.on("request", self._request)
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda exc: self.errors.append(f"uncaught: {exc}"))
        self.page.on("requestfailed", self._request_failed)
        self.page.on("response", self._response)
        self.response = self.page.goto(url, wait_until="load", timeout=60_000)
        if redirect:
            # a redirect page (index.html): test the page it leads to, once that has loaded
            self.page.wait_for_url(lambda u: u != url, wait_until="load", timeout=30_000)

    def _console(self, msg: object) -> None:
        if msg.type != "error":
            return
        source = (msg.location or {}).get("url", "")
        # "Failed to load resource" for an aborted external request: the offline case, allowed.
        if msg.text.startswith("Failed to load resource") and source and not _is_local(source):
            return
        self.errors.append(f"console: {msg.text} ({source})")

    def _request(self, request: object) -> None:
        if not _is_local(request.url):
            self.external_requests.append(request.url)

    def _request_failed(self, request: object) -> None:
        if _is_local(request.url):
            self.errors.append(f"request failed: {request.url} ({request.failure})")
        else:
            self.external_failures.append(request.url)

    def _response(self, response: object) -> None:
        if _is_local(response.url) and response.status >= 400:
            self.errors.append(f"HTTP {response.status}: {response.url}")

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: object, server: str) -> Iterator[object]:
    opened: list[Visit] = []

    def _open(page: str) -> Visit:
        html = (SITE / page).read_text(encoding="utf-8", errors="replace")[:2000].lower()
        v = Visit(browser, server + page, redirect='http-equiv="refresh"' in html)
        opened.append(v)
        return v

    yield _open
    for v in opened:
        v.close()


def test_site_has_pages() -> None:
    assert PAGES, f"no HTML pages under {SITE}: build the book first"
    assert "index.html" in PAGES
    assert CHAPTER_1 in PAGES, "chapter 1 is missing from the site"


# Make images load now, lazy ones included; resolve to the sources that did not decode.
_BROKEN_IMAGES = """
async () => {
  const imgs = [...document.images];
  for (const img of imgs) img.loading = "eager";
  await Promise.all(imgs.map((img) => img.decode().catch(() => null)));
  return {
    count: imgs.length,
    broken: imgs.filter((img) => !(img.naturalWidth > 0)).map((img) => img.currentSrc || img.src),
  };
}
"""

# Error outputs of executed cells, as myst-nb renders them.
_ERROR_OUTPUTS = """
() => {
  const bad = [...document.querySelectorAll(".output.error, .output.traceback")];
  const stderr = [...document.querySelectorAll(".output.stderr")].filter(
    (el) => /Error|Exception/.test(el.textContent)
  );
  return [...bad, ...stderr].map((el) => el.textContent.slice(0, 300));
}
"""


@pytest.mark.parametrize("page", PAGES or ["<no site>"])
def test_page(visit: object, page: str) -> None:
    if page == "<no site>":
        pytest.fail(f"no HTML pages under {SITE}")
    v = visit(page)
    assert v.response is not None and v.response.status == 200, f"{page}: not HTTP 200"
    images = v.page.evaluate(_BROKEN_IMAGES)
    assert not images["broken"], f"{page}: images that do not load: {images['broken']}"
    if page.startswith("book/chapters/"):
        assert images["count"] > 0, f"{page}: a chapter without a single figure"
    text = v.page.inner_text("body")
    assert "Traceback (most recent call last)" not in text, f"{page}: a traceback on the page"
    literal = LITERAL_MYST.findall(text)
    assert not literal, f"{page}: MyST roles or targets rendered literally: {literal[:3]}"
    if page.startswith("book/chapters/"):
        assert "Computed with the" in text and "profile, code" in text, (
            f"{page}: no provenance line (profile, code version, data) at its top"
        )
    assert not v.page.evaluate(_ERROR_OUTPUTS), f"{page}: error outputs on the page"
    if MATH_MARKUP in (SITE / page).read_text(encoding="utf-8", errors="replace"):
        _assert_math_renders(v, page)
    v.page.wait_for_timeout(200)  # late console errors and requests from deferred scripts
    assert not v.errors, f"{page}: " + "\n".join(v.errors)
    assert not v.external_requests, f"{page}: requests to other hosts (a CDN?): " + ", ".join(
        sorted(set(v.external_requests))
    )


# MathJax 3: rendered formulas, formulas it could not parse, and where the script came from.
_MATH_STATE = """
() => ({
  rendered: document.querySelectorAll("mjx-container").length,
  errors: [...document.querySelectorAll("mjx-merror")].map((e) => e.textContent.slice(0, 100)),
  scripts: [...document.scripts].map((s) => s.src).filter((src) => /mathjax/i.test(src)),
  version: window.MathJax && window.MathJax.version,
})
"""


def _assert_math_renders(v: Visit, page: str) -> None:
    """The page's maths is typeset by the vendored MathJax 3, offline, without TeX errors."""
    try:
        v.page.wait_for_selector("mjx-container", state="attached", timeout=30_000)
    except Exception:  # playwright's TimeoutError
        pytest.fail(f"{page}: has maths but no mjx-container (MathJax did not run): {v.errors}")
    v.page.wait_for_function("() => window.MathJax && window.MathJax.startup && "
                             "window.MathJax.startup.promise", timeout=30_000)  # fmt: skip
    v.page.evaluate("() => window.MathJax.startup.promise")
    state = v.page.evaluate(_MATH_STATE)
    assert state["rendered"] > 0, f"{page}: no rendered maths"
    assert not state["errors"], f"{page}: MathJax errors: {state['errors']}"
    assert state["scripts"] and all(_is_local(src) for src in state["scripts"]), state["scripts"]
    assert str(state["version"]).startswith("3."), f"{page}: MathJax {state['version']}"


def test_maths_is_vendored_and_renders(visit: object) -> None:
    """At least one page (chapter 4) has maths, and it renders from book/_static/mathjax."""
    html = (SITE / MATH_PAGE).read_text(encoding="utf-8")
    assert MATH_MARKUP in html, f"{MATH_PAGE} has no maths any more: pick another MATH_PAGE"
    assert "_static/mathjax/es5/tex-mml-chtml.js" in html, "MathJax is not the vendored copy"
    assert "cdn.jsdelivr.net" not in html
    v = visit(MATH_PAGE)
    _assert_math_renders(v, MATH_PAGE)
    v.page.wait_for_timeout(300)  # the fonts of the typeset maths
    assert not v.errors, "\n".join(v.errors)
    assert not v.external_requests, v.external_requests


def test_chapter1_widgets(visit: object) -> None:
    """Chapter 1 saves its ipywidgets state and the vendored embed bundle renders it offline."""
    html = (SITE / CHAPTER_1).read_text(encoding="utf-8")
    assert f'type="{WIDGET_STATE}"' in html, "chapter 1 lost its widget state"
    assert "_static/jupyter-widgets/embed.js" in html, "the widget renderer is not the vendored one"
    v = visit(CHAPTER_1)
    v.page.wait_for_selector(".jupyter-widgets.widget-container, .widget-vbox", timeout=30_000)
    rendered = v.page.locator(".jupyter-widgets").count()
    assert rendered > 0, "the widgets of chapter 1 did not render"
    assert not v.errors, "\n".join(v.errors)
    SHOTS.mkdir(parents=True, exist_ok=True)
    v.page.screenshot(path=str(SHOTS / "chapter1.png"))
    widget = v.page.locator(".widget-vbox").first
    widget.scroll_into_view_if_needed()
    widget.screenshot(path=str(SHOTS / "chapter1-widget.png"))


# Every top-level widget of the page (not nested in another) against the text column: its box,
# the right edge of anything inside it, and whether it overflows (scrollWidth).
_WIDGET_FIT = """
() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const a = article.getBoundingClientRect();
  const pad = parseFloat(getComputedStyle(article).paddingRight) || 0;
  const column = {left: a.left, right: a.right - pad, width: article.clientWidth};
  const tops = [...document.querySelectorAll(".cell_output .jupyter-widgets")].filter(
    (el) => !el.parentElement.closest(".jupyter-widgets")
  );
  return {
    column,
    widgets: tops.map((el) => {
      const r = el.getBoundingClientRect();
      let right = r.right;
      for (const child of el.querySelectorAll("*")) {
        const c = child.getBoundingClientRect();
        if (c.width > 0 && c.height > 0) right = Math.max(right, c.right);
      }
      return {
        text: el.textContent.trim().slice(0, 60),
        width: r.width,
        right,
        overflow: el.scrollWidth - el.clientWidth,
        selects: el.querySelectorAll("select").length,
        gallery: el.textContent.includes("clean") && el.textContent.includes("corrupted"),
      };
    }),
  };
}
"""


def _widgets_fit(v: Visit, page: str) -> list[dict]:
    """Assert that every rendered top-level widget of a page lies inside the text column."""
    v.page.wait_for_selector(".jupyter-widgets.widget-container, .widget-vbox", timeout=30_000)
    v.page.wait_for_timeout(300)  # images decoded, layout settled
    fit = v.page.evaluate(_WIDGET_FIT)
    column = fit["column"]
    assert fit["widgets"], f"{page}: no widget rendered"
    for w in fit["widgets"]:
        where = f"{page}: widget {w['text']!r}"
        assert w["width"] <= column["width"] + 1, f"{where} is {w['width']:.0f} px wide, " \
            f"the text column {column['width']:.0f} px"  # fmt: skip
        assert w["right"] <= column["right"] + 1, f"{where} reaches x={w['right']:.0f}, " \
            f"past the text column's right edge {column['right']:.0f}"  # fmt: skip
        assert w["overflow"] <= 1, f"{where} overflows its box by {w['overflow']} px"
    return fit["widgets"]


def test_chapter1_gallery_fits_the_text_column(visit: object) -> None:
    """The gallery (image, corruption and severity menus over two previews) is no wider than
    the column of text it sits in, at the default viewport."""
    v = visit(CHAPTER_1)
    widgets = _widgets_fit(v, CHAPTER_1)
    galleries = [w for w in widgets if w["selects"] == 3 and w["gallery"]]
    assert galleries, f"no gallery among the widgets of chapter 1: {widgets}"


WIDGET_PAGES = [
    p for p in PAGES
    if p.startswith("book/chapters/")
    and f'type="{WIDGET_STATE}"' in (SITE / p).read_text(encoding="utf-8", errors="replace")
]  # fmt: skip


@pytest.mark.parametrize("page", WIDGET_PAGES or ["<no widgets>"])
def test_chapter_widgets_fit_the_text_column(visit: object, page: str) -> None:
    if page == "<no widgets>":
        pytest.skip("no chapter saved widget state")
    _widgets_fit(visit(page), page)


SUMMARY = "book/chapters/07_claims.html"


def test_summary_page_lists_verdicts_and_its_downloads_resolve(visit: object) -> None:
    import csv

    assert SUMMARY in PAGES, "the summary page (The paper's claims, verdict by verdict) is missing"
    v = visit(SUMMARY)
    text = v.page.inner_text("body")
    assert "verdict by verdict" in text and "Every check" in text
    links = v.page.eval_on_selector_all(
        "a.nicspec-download", "els => els.map(e => e.getAttribute('href'))"
    )
    assert sorted(Path(h).name for h in links) == ["claims.csv", "records.csv"]
    page_dir = (SITE / SUMMARY).parent
    for href in links:
        target = (page_dir / href).resolve()
        assert target.is_file(), f"{SUMMARY}: download {href} is not in the site"
        with target.open(newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert rows, f"{href}: no rows (the chapters published nothing?)"
        if target.name == "claims.csv":
            assert {"chapter", "claim", "verdict", "interval"} <= set(rows[0])
            assert all(r["verdict"] for r in rows), f"{href}: a check without a verdict"
        else:
            assert {"key", "image_id", "bpp"} <= set(rows[0])


# --- legibility: page weights, figure and table widths, column names, provenance ----------------

# A page, with everything it loads (images, scripts, styles, fonts), stays under this many bytes.
PAGE_LIMIT = 3_000_000
# A cell-output figure wider than this (its natural width, px) must get the full-width layout
# (book/_ext/nicspec_book.py: WIDE_PX).
WIDE_PX = 800
MEASURES = Path(os.environ.get("NICSPEC_SITE_MEASURES", SHOTS / "measurements"))


def site_profile() -> str:
    """The profile the site was built with, from its folder (_build/html: quick)."""
    return "quick" if SITE.name == "html" else SITE.name.removeprefix("html-")


def _record(kind: str, page: str, data: object) -> None:
    """Keep what a test measured in _build/site-test/measurements/<kind>.json (for reports)."""
    import json

    MEASURES.mkdir(parents=True, exist_ok=True)
    path = MEASURES / f"{kind}.json"
    found = json.loads(path.read_text()) if path.exists() else {}
    found[page] = data
    path.write_text(json.dumps(found, indent=1, sort_keys=True))


# Bytes the page loaded: the document and every resource, as they came over the wire
# (encodedBodySize: text gzip-compressed as a static host sends it) and as the browser had them
# (decodedBodySize), after lazy images were made to load and late scripts had run.
_PAGE_WEIGHT = """
() => {
  const nav = performance.getEntriesByType("navigation")[0];
  const res = performance.getEntriesByType("resource");
  const wire = (e) => e.encodedBodySize || 0;
  const full = (e) => e.decodedBodySize || e.encodedBodySize || 0;
  const by = {};
  for (const e of res) {
    const kind = e.initiatorType || "other";
    by[kind] = (by[kind] || 0) + wire(e);
  }
  const sum = (f) => res.reduce((a, e) => a + f(e), 0);
  return {html: wire(nav), html_decoded: full(nav), resources: sum(wire),
          resources_decoded: sum(full), by, count: res.length};
}
"""


@pytest.mark.parametrize("page", PAGES or ["<no site>"])
def test_page_weight(visit: object, page: str) -> None:
    """Every page, with all it loads, weighs under PAGE_LIMIT over the wire (the widget chapters
    were 8-9 MB, uncompressed); its uncompressed weight is recorded beside it."""
    if page == "<no site>":
        pytest.fail(f"no HTML pages under {SITE}")
    v = visit(page)
    v.page.evaluate(_BROKEN_IMAGES)  # every image loaded, lazy ones too
    v.page.wait_for_load_state("networkidle")
    w = v.page.evaluate(_PAGE_WEIGHT)
    total = w["html"] + w["resources"]
    decoded = w["html_decoded"] + w["resources_decoded"]
    _record("weights", page, {**w, "total": total, "total_decoded": decoded})
    assert total < PAGE_LIMIT, (
        f"{page}: {total / 1e6:.2f} MB over the wire with what it loads (HTML "
        f"{w['html'] / 1e6:.2f} MB, {w['by']}), over {PAGE_LIMIT / 1e6:.0f} MB"
    )


# Every figure of a cell output: natural and rendered width, whether its cell is full-width, the
# link around it; and the text column's width.
_FIGURES = """
() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const column = article.clientWidth - (parseFloat(getComputedStyle(article).paddingLeft) || 0)
    - (parseFloat(getComputedStyle(article).paddingRight) || 0);
  const imgs = [...article.querySelectorAll("img")].filter(
    (img) => !img.closest(".jupyter-widgets") && !!img.closest(".cell_output, figure")
  );
  return {
    column,
    figures: imgs.map((img) => {
      const link = img.closest("a.nicspec-fullres");
      return {
        src: img.getAttribute("src"),
        natural: img.naturalWidth,
        rendered: img.getBoundingClientRect().width,
        full_width: !!img.closest("div.cell.tag_full-width, figure.nicspec-full-width"),
        href: link ? link.getAttribute("href") : null,
      };
    }),
  };
}
"""

CHAPTER_PAGES = [p for p in PAGES if p.startswith("book/chapters/")]


@pytest.mark.parametrize("page", PAGES or ["<no site>"])
def test_figures_are_wide_enough_and_open_at_full_resolution(visit: object, page: str) -> None:
    """A figure (a cell output, a ``figure`` directive) wider than the text column is in the
    full-width layout and drawn wider than the column; every figure links to its
    full-resolution image, which the site serves."""
    if page == "<no site>":
        pytest.fail(f"no HTML pages under {SITE}")
    v = visit(page)
    v.page.evaluate(_BROKEN_IMAGES)
    found = v.page.evaluate(_FIGURES)
    _record("figures", page, found)
    column = found["column"]
    for f in found["figures"]:
        where = f"{page}: figure {f['src']} ({f['natural']} px)"
        assert f["href"], f"{where} does not link to its full-resolution image"
        target = (SITE / page).parent / f["href"]
        assert target.resolve().is_file(), f"{where}: link {f['href']} is not in the site"
        if f["natural"] > WIDE_PX:
            assert f["full_width"], f"{where} is not in the full-width layout"
            assert f["rendered"] > column + 1 or f["rendered"] >= f["natural"] - 1, (
                f"{where} is drawn {f['rendered']:.0f} px wide, no wider than the text column "
                f"({column:.0f} px)"
            )
    for f in found["figures"]:  # the link opens the same picture at its natural size
        if f["href"]:
            r = v.page.request.get(urljoin(v.page.url, f["href"]))
            assert r.status == 200, f"{page}: {f['href']}: HTTP {r.status}"
            break


# Every table of the article: the box it sits in, whether it scrolls there, and its headers.
_TABLES = """
() => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const a = article.getBoundingClientRect();
  const pad = parseFloat(getComputedStyle(article).paddingRight) || 0;
  const right = a.right - pad;
  const scrolls = (el) => ["auto", "scroll"].includes(getComputedStyle(el).overflowX);
  return [...article.querySelectorAll("table")].map((t) => {
    let box = t.parentElement;
    while (box && box !== article && !scrolls(box)) box = box.parentElement;
    const inBox = box && box !== article;
    const b = (inBox ? box : t).getBoundingClientRect();
    return {
      headers: [...t.querySelectorAll("thead th")].map((th) => th.textContent.trim()),
      // a header that is a name in code font (a chapter's file name) is meant as written
      raw: [...t.querySelectorAll("thead th")].filter((th) => !th.querySelector("code")).map(
        (th) => th.textContent.trim()).filter((h) => /^[a-z0-9]+(_[a-zA-Z0-9]+)+\b/.test(h)),
      width: t.scrollWidth,
      box_right: b.right,
      column_right: right,
      scrolls: !!inBox,
      fits: t.getBoundingClientRect().right <= right + 1,
      full_width: !!t.closest("div.cell.tag_full-width"),
    };
  });
}
"""


@pytest.mark.parametrize("page", PAGES or ["<no site>"])
def test_tables_fit_or_scroll_in_their_box_with_readers_names(visit: object, page: str) -> None:
    """A table is no wider than the text column, or scrolls inside a box that is; its columns
    carry the reader's names (no raw snake_case names such as ``bd_rate_psnr_pct``)."""
    if page == "<no site>":
        pytest.fail(f"no HTML pages under {SITE}")
    v = visit(page)
    tables = v.page.evaluate(_TABLES)
    _record("tables", page, tables)
    for k, t in enumerate(tables):
        where = f"{page}: table {k + 1} ({', '.join(t['headers'][:4])}, ...)"
        if not t["full_width"]:
            assert t["fits"] or (t["scrolls"] and t["box_right"] <= t["column_right"] + 1), (
                f"{where} runs past the text column and does not scroll in its own box"
            )
        assert not t["raw"], f"{where}: raw column names {t['raw']}"


@pytest.mark.parametrize("page", CHAPTER_PAGES or ["<no chapters>"])
def test_provenance_line_is_at_the_top_and_names_this_profile(visit: object, page: str) -> None:
    """The first paragraph under a chapter's title says which profile (this site's), which
    commit and which data produced the page, before its first section."""
    if page == "<no chapters>":
        pytest.fail(f"no chapter pages under {SITE}")
    v = visit(page)
    found = v.page.evaluate(
        """() => {
          const article = document.querySelector("article.bd-article") || document.body;
          const p = [...article.querySelectorAll("p")].find(
            (el) => el.textContent.includes("Computed with the"));
          const h2 = article.querySelector("h2");
          return {
            text: p ? p.textContent : null,
            before_sections: !!p && (!h2 || !!(p.compareDocumentPosition(h2) & 4)),
          };
        }"""
    )
    assert found["text"], f"{page}: no provenance line"
    text = found["text"]
    assert f"the {site_profile()} profile" in text, f"{page}: not this site's profile: {text}"
    assert re.search(r"code [0-9a-f]{7,}", text), f"{page}: no commit in {text!r}"
    assert "data" in text, f"{page}: does not say which data: {text!r}"
    assert found["before_sections"], f"{page}: the provenance line is not at the top"
