"""Check the built book in a real browser: headless Chromium driven by Playwright.

Usage::

    python -m book.check                                   # build/book -> build/book-check/
    python -m book.check --site build/book-smoke --screenshots build/book-check

The site is served on loopback and every HTML page reachable from ``index.html`` is opened (at
1280 x 900 CSS pixels and again at a phone's 390 x 844). :func:`check_site` returns what it found,
per page: console errors and failed requests, links to pages or anchors that do not exist, images
that did not load or are blank, whether a notebook page holds its "Recorded metrics" table, and
whether body text overflows the phone's width. It also searches for a term with the book's own
search page. A screenshot of each page goes to ``--screenshots``.

The browser is the system's Chromium (Debian: ``apt-get install chromium``), found on the PATH or
at ``$RECLIB_CHROMIUM``; Playwright's own browser download is never used.
"""

from __future__ import annotations

import argparse
import functools
import http.server
import json
import os
import shutil
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urldefrag, urljoin, urlparse

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome")
# flags for a machine without network: no background connections that would fail and be logged
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP, PHONE = {"width": 1280, "height": 900}, {"width": 390, "height": 844}
#: an image is blank when fewer than this share of its pixels differ from its corner pixel
MIN_INK_SHARE = 0.01

# runs in the page: links, ids, images (with the share of pixels unlike the corner) and overflow
PAGE_FACTS = """() => {
  const ink = (img) => {
    if (!img.complete || img.naturalWidth === 0) return -1;
    const c = document.createElement('canvas');
    c.width = Math.min(img.naturalWidth, 400); c.height = Math.min(img.naturalHeight, 400);
    const g = c.getContext('2d'); g.drawImage(img, 0, 0, c.width, c.height);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let differ = 0;
    for (let i = 0; i < d.length; i += 4)
      if (Math.abs(d[i] - d[0]) + Math.abs(d[i+1] - d[1]) + Math.abs(d[i+2] - d[2]) > 30) differ++;
    return differ / (d.length / 4);
  };
  return {
    links: [...document.querySelectorAll('a[href]')].map(a => a.href),
    ids: [...document.querySelectorAll('[id]')].map(e => e.id),
    images: [...document.querySelectorAll('img')].map(img => ({src: img.src, ink: ink(img),
      figure: !!img.closest('.cell_output, .output')})),
    metrics_table: !!document.querySelector('section#recorded-metrics table'),
  };
}"""
# runs at phone width: the page must not scroll sideways, and no text of the article may run past
# the screen unless it sits in its own scrolling box (a wide table, a code block, a cell's output)
OVERFLOW = """() => {
  const width = document.documentElement.clientWidth;
  const scrolls = (e) => { for (let s = e.parentElement; s; s = s.parentElement) {
      const o = getComputedStyle(s).overflowX; if (o === 'auto' || o === 'scroll' || o === 'hidden') return true; }
    return false; };
  const wide = [...document.querySelectorAll('article p, article li, article dt, article dd, article h1, article h2, article h3')]
    .filter(e => (e.getBoundingClientRect().right > width + 1 || e.scrollWidth > e.clientWidth + 1) && !scrolls(e))
    .map(e => e.textContent.trim().slice(0, 60));
  return {page_scrolls_sideways: document.documentElement.scrollWidth > width + 1, wide_text: wide};
}"""


def find_chromium() -> str | None:
    """The system Chromium's path: ``$RECLIB_CHROMIUM``, else the first of :data:`CHROMIUM_NAMES`
    on the PATH; ``None`` when there is none."""
    given = os.environ.get("RECLIB_CHROMIUM")
    if given:
        return given
    return next((path for name in CHROMIUM_NAMES if (path := shutil.which(name))), None)


@contextmanager
def serve(folder: Path) -> Iterator[str]:
    """Serve ``folder`` over HTTP on 127.0.0.1 (a free port) for the ``with`` block; yield its URL."""
    class QuietHandler(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

    handler = functools.partial(QuietHandler, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


@contextmanager
def chromium_page(chromium: str | None = None) -> Iterator[object]:
    """A Playwright browser context running the system Chromium, headless."""
    from playwright.sync_api import sync_playwright

    chromium = chromium or find_chromium()
    if chromium is None:
        raise FileNotFoundError("no Chromium found: install it (Debian: apt-get install chromium) "
                                "or set RECLIB_CHROMIUM to its path")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_context(viewport=DESKTOP)
        finally:
            browser.close()


def _page_name(url: str, base: str) -> str:
    return urlparse(url).path.removeprefix(urlparse(base).path) or "index.html"


def _visit(context: object, url: str, base: str, shots: Path) -> dict:
    """Open one page at desktop and phone width; return what :func:`check_site` records of it."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda err: errors.append(f"page error: {err}"))
    page.on("requestfailed", lambda req: errors.append(f"request failed: {req.url}"))
    page.on("response", lambda res: errors.append(f"HTTP {res.status}: {res.url}") if res.status >= 400 else None)
    page.goto(url, wait_until="load")      # the load event waits for scripts, styles and images
    try:                                     # (not "networkidle": half a second idle per page)
        page.wait_for_function("() => [...document.images].every(img => img.complete)", timeout=30_000)
    except PlaywrightTimeout:
        errors.append("images still loading 30 s after the load event")
    facts = page.evaluate(PAGE_FACTS)
    name = _page_name(url, base)
    page.screenshot(path=str(shots / (name.replace("/", "__").removesuffix(".html") + ".png")))
    page.set_viewport_size(PHONE)
    overflow = page.evaluate(OVERFLOW)
    page.close()
    return {"errors": errors, "overflow": overflow, **facts}


def search_hits(context: object, base: str, term: str) -> int:
    """How many results the book's own search page lists for ``term``."""
    page = context.new_page()
    page.goto(urljoin(base, f"search.html?q={term}"))
    page.wait_for_selector("#search-results ul.search li", timeout=20_000)
    hits = page.locator("#search-results ul.search li").count()
    page.close()
    return hits


def check_site(site: Path, screenshots: Path, search_term: str = "NDCG") -> dict:
    """Open every page of the built book ``site``; return ``{"pages": {name: problems}, "search_hits"}``.

    ``problems`` lists, per page: ``errors`` (console errors, page errors, failed requests, HTTP
    errors), ``broken_links`` (internal links to a missing page or anchor), ``bad_images`` (not
    loaded, or with less than :data:`MIN_INK_SHARE` of their pixels drawn), ``metrics_table``
    (notebook pages only: whether the recorded-metrics table is there) and ``overflow`` (at the
    phone width). The PNG files already in ``screenshots`` are removed first. Raises
    ``FileNotFoundError`` without Chromium or without ``site/index.html``.
    """
    site, screenshots = Path(site), Path(screenshots)
    if not (site / "index.html").is_file():
        raise FileNotFoundError(f"{site / 'index.html'} does not exist: build the book first (make book)")
    screenshots.mkdir(parents=True, exist_ok=True)
    for old in screenshots.glob("*.png"):                 # no screenshot of an earlier check remains
        old.unlink()
    with serve(site) as base, chromium_page() as context:
        seen: dict[str, dict] = {}
        # every page of the site, whether or not a link leads to it (the indexes, the search page);
        # _static/ and the like hold the theme's files, some of them HTML templates, not pages
        queue = [urljoin(base, "index.html")] + [urljoin(base, path.relative_to(site).as_posix())
                                                 for path in sorted(site.rglob("*.html"))
                                                 if not path.relative_to(site).parts[0].startswith("_")]
        while queue:
            url = queue.pop(0)
            if url in seen:
                continue
            seen[url] = _visit(context, url, base, screenshots)
            for link in seen[url]["links"]:
                target = urldefrag(link)[0]
                if target.startswith(base) and target.endswith(".html") and target not in seen:
                    queue.append(target)
        ids = {url: set(facts["ids"]) for url, facts in seen.items()}
        pages = {}
        for url, facts in seen.items():
            broken = sorted({link for link in facts["links"] if link.startswith(base)
                             and _broken(link, site, base, ids)})
            name = _page_name(url, base)
            pages[name] = {
                "errors": facts["errors"], "broken_links": broken, "overflow": facts["overflow"],
                "bad_images": [img["src"] for img in facts["images"]
                               if img["ink"] < 0 or (img["figure"] and img["ink"] < MIN_INK_SHARE)],
                "figures": sum(img["figure"] for img in facts["images"]),
                **({"metrics_table": facts["metrics_table"]} if name.startswith("notebooks/") else {}),
            }
        return {"pages": pages, "search_hits": search_hits(context, base, search_term)}


def _broken(link: str, site: Path, base: str, ids: dict[str, set[str]]) -> bool:
    """Whether an internal ``link`` points at a missing file or at an anchor its page lacks."""
    target, anchor = urldefrag(link)
    anchor = unquote(anchor)
    path = site / unquote(urlparse(target).path.removeprefix(urlparse(base).path))
    if path.is_dir():
        path = path / "index.html"
    if not path.is_file():
        return True
    known = ids.get(target)
    return bool(anchor) and known is not None and anchor not in known


def problems(report: dict) -> list[str]:
    """Every failed check of a :func:`check_site` report as one line each; empty when all pass."""
    lines = [] if report["search_hits"] > 0 else ["search found nothing"]
    for name, page in report["pages"].items():
        lines += [f"{name}: {error}" for error in page["errors"]]
        lines += [f"{name}: broken link {link}" for link in page["broken_links"]]
        lines += [f"{name}: blank or missing image {src}" for src in page["bad_images"]]
        if page.get("metrics_table") is False:
            lines.append(f"{name}: no recorded-metrics table")
        if page["overflow"]["page_scrolls_sideways"] or page["overflow"]["wide_text"]:
            lines.append(f"{name}: overflows a phone's width {page['overflow']}")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m book.check", description=__doc__.split("\n")[0])
    parser.add_argument("--site", type=Path, default=ROOT / "build" / "book")
    parser.add_argument("--screenshots", type=Path, default=ROOT / "build" / "book-check")
    args = parser.parse_args(argv)
    try:
        report = check_site(args.site, args.screenshots)
    except FileNotFoundError as err:
        print(f"{parser.prog}: error: {err}", file=sys.stderr)
        return 2
    (args.screenshots / "report.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    found = problems(report)
    print("\n".join(found) if found else
          f"{len(report['pages'])} pages checked, no problem; search hits: {report['search_hits']}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
