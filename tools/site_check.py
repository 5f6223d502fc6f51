"""Check the rendered book in a real browser, with the network blocked.

    python tools/site_check.py _build/check/_build/html [--screenshots DIR] [--pages GLOB ...]

Serves the built HTML on 127.0.0.1, drives the system's headless Chromium (Debian's ``chromium``
and ``chromium-driver``; no browser is ever downloaded) through Selenium, and fails on

* a MathJax error, or TeX left unrendered in the page;
* an unresolved reference (``??``) or a citation left as plain text (``{Author et al., 2001}``);
* a broken local link, anchor or image, or any request that leaves the machine;
* a JavaScript error in the console;
* a code block, output, table, image or display equation wider than its column at 1400 px,
  or anything clipped;
* at 390 px (a phone): a page wider than the screen, content cut off, or a navigation button
  (chapter list, page contents) that does not open its drawer.

It prints what it measured on every page and exits with 1 if anything failed.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import http.server
import json
import os
import re
import shutil
import socketserver
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

DESKTOP = (1400, 900)
PHONE = (390, 844)
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--hide-scrollbars",
    # Every host name but the local server's address fails to resolve: nothing is fetched.
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
]
SKIPPED_DIRS = {"_static", "_sources", "_images", "_downloads"}

# TeX that MathJax should have typeset: math delimiters and control words outside code.
RAW_TEX = re.compile(r"\\[()\[\]]|\$\$|\\begin\{|\\(?:[A-Za-z]{2,})\b")
# A citation written as text instead of a role: {Cristianini et al., 2001}.
RAW_CITATION = re.compile(r"\{[A-Z][^{}\n]{0,80}?, (?:1[89]|20)\d\d[a-z]?\}")
UNRESOLVED = re.compile(r"\?\?")


def raw_tex_snippets(text: str, width: int = 30) -> list[str]:
    """Pieces of ``text`` around TeX that should have been typeset."""
    return [text[max(0, m.start() - width): m.end() + width] for m in RAW_TEX.finditer(text)]


def raw_citations(text: str) -> list[str]:
    return RAW_CITATION.findall(text)


def local_target(root: Path, base_url: str, url: str) -> tuple[Path, str] | None:
    """The file (and fragment) a same-site URL points at, or None for another site or scheme."""
    parts = urlsplit(url)
    base = urlsplit(base_url)
    if parts.scheme not in ("http", "https") or parts.netloc != base.netloc:
        return None
    path = root / unquote(parts.path).lstrip("/")
    if parts.path.endswith("/") or path.is_dir():
        path = path / "index.html"
    return path, unquote(parts.fragment)


@functools.lru_cache(maxsize=None)
def html_ids(path: Path) -> frozenset[str]:
    text = path.read_text(encoding="utf-8", errors="replace")
    return frozenset(re.findall(r"""\s(?:id|name)=["']([^"']+)["']""", text))


def is_redirect(path: Path) -> bool:
    head = path.read_text(encoding="utf-8", errors="replace")[:2000].lower()
    return 'http-equiv="refresh"' in head


def find_pages(root: Path, patterns: list[str]) -> list[str]:
    pages = []
    for path in sorted(root.rglob("*.html")):
        rel = path.relative_to(root).as_posix()
        if SKIPPED_DIRS & set(path.relative_to(root).parts[:-1]):
            continue
        if patterns and not any(fnmatch.fnmatch(rel, p) for p in patterns):
            continue
        pages.append(rel)
    return pages


# --- the browser ------------------------------------------------------------------------------


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the signature of the base class
        pass


def serve(root: Path) -> tuple[socketserver.TCPServer, str]:
    handler = functools.partial(QuietHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}/"


def start_browser(profile: str):
    os.environ.setdefault("SE_AVOID_STATS", "true")
    os.environ.setdefault("SE_OFFLINE", "true")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={profile}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    return driver


def set_viewport(driver, width: int, height: int, phone: bool) -> None:
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": phone},
    )


WAIT_FOR_RENDERING = """
const done = arguments[arguments.length - 1];
const start = performance.now();
function settle(status) {
  document.fonts.ready.then(() => requestAnimationFrame(() => requestAnimationFrame(
    () => done({status, ms: Math.round(performance.now() - start)}))));
}
(function poll() {
  const hasMath = document.querySelector('.math') !== null;
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    MathJax.startup.promise.then(() => settle('typeset'), e => settle('error: ' + e));
  } else if (!hasMath && performance.now() - start > 300) {
    settle('no math');
  } else if (performance.now() - start > 30000) {
    settle(window.MathJax ? 'MathJax did not start' : 'MathJax not loaded');
  } else {
    setTimeout(poll, 50);
  }
})();
"""

# Text that a reader sees, without code, scripts and typeset formulas.
MEASURE_TEXT = """
const skip = 'PRE, CODE, SCRIPT, STYLE, TEXTAREA, NOSCRIPT, MJX-CONTAINER, KBD, SAMP';
const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT, {
  acceptNode(node) {
    const p = node.parentElement;
    if (!p || p.closest(skip) || p.closest('.highlight, [hidden], .headerlink'))
      return NodeFilter.FILTER_REJECT;
    return NodeFilter.FILTER_ACCEPT;
  }});
const parts = [];
while (walker.nextNode()) parts.push(walker.currentNode.nodeValue);
const mml = Array.from(document.querySelectorAll('mjx-assistive-mml')).map(e => e.textContent);
const math = document.querySelectorAll('span.math, div.math');
return {
  text: parts.join(' '),
  mathElements: math.length,
  untypeset: Array.from(math).filter(e => !e.querySelector('mjx-container'))
                  .map(e => e.textContent.trim().slice(0, 80)),
  typeset: document.querySelectorAll('mjx-container').length,
  mathErrors: Array.from(document.querySelectorAll('mjx-merror, [data-mjx-error]'))
                  .map(e => (e.getAttribute('data-mjx-error') || e.textContent).slice(0, 80)),
  unresolvedInMath: mml.filter(t => t.includes('???')).length,
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.href),
  resources: Array.from(document.querySelectorAll(
      'link[href], script[src], img[src], source[src], iframe[src]'))
      .map(e => e.href || e.src),
  images: Array.from(document.images).map(i => ({src: i.currentSrc || i.src,
      ok: i.complete && i.naturalWidth > 0, lazy: i.loading === 'lazy'})),
  duplicateIds: (() => {
    const seen = new Map();
    for (const e of document.querySelectorAll('[id]')) seen.set(e.id, (seen.get(e.id) || 0) + 1);
    return Array.from(seen).filter(([, n]) => n > 1).map(([id, n]) => id + ' x' + n);
  })(),
};
"""

# Blocks that must fit the text column: where they stick out, scroll, or are clipped.
MEASURE_BLOCKS = """
const article = document.querySelector('article.bd-article') || document.querySelector('main')
    || document.body;
const cs = getComputedStyle(article);
const box = article.getBoundingClientRect();
const colLeft = box.left + parseFloat(cs.paddingLeft);
const colRight = box.right - parseFloat(cs.paddingRight);
const column = Math.round(colRight - colLeft);
const kinds = [
  ['equation', 'mjx-container[display="true"]'],
  ['output', 'div.cell_output pre'],
  ['code', 'pre'],
  ['table', 'table'],
  ['image', 'img'],
];
function describe(e) {
  const where = e.closest('[id]');
  const text = (e.closest('div.math') || e).textContent || e.getAttribute('src') || '';
  return (where ? '#' + where.id + ': ' : '') + text.replace(/\\s+/g, ' ').trim().slice(0, 70);
}
function clippedBy(e, r) {
  for (let a = e.parentElement; a && a !== document.body; a = a.parentElement) {
    const s = getComputedStyle(a);
    if (s.overflowX === 'hidden' || s.overflowX === 'clip') {
      const ar = a.getBoundingClientRect();
      if (r.right > ar.right + 1 || r.left < ar.left - 1) return a.tagName.toLowerCase() + '.' +
          Array.from(a.classList).join('.');
    }
  }
  return null;
}
// The width of the ink of a typeset formula (its glyphs), plus its equation number if any: a
// numbered equation's box always spans the column, whatever the formula needs.
function inkWidth(e) {
  let left = Infinity, right = -Infinity;
  for (const c of e.querySelectorAll('mjx-c')) {
    const q = c.getBoundingClientRect();
    if (q.width > 0) { left = Math.min(left, q.left); right = Math.max(right, q.right); }
  }
  return right > left ? right - left : 0;
}
function formulaWidth(e) {
  const table = e.querySelector('mjx-mtable > mjx-table'), labels = e.querySelector('mjx-labels');
  if (table && labels) return inkWidth(table) + inkWidth(labels) + 16;
  return inkWidth(e.querySelector('mjx-math') || e);
}
function scroller(e) {
  for (let a = e; a && a !== article; a = a.parentElement) {
    const s = getComputedStyle(a);
    if ((s.overflowX === 'auto' || s.overflowX === 'scroll') && a.scrollWidth > a.clientWidth + 1)
      return a;
  }
  return null;
}
const out = {column, viewport: innerWidth,
             pageWidth: document.documentElement.scrollWidth, blocks: {}};
for (const [kind, selector] of kinds) {
  const found = {count: 0, widest: 0, wrapped: 0, tooWide: [], clipped: [], scrolling: []};
  for (const e of article.querySelectorAll(selector)) {
    if (kind === 'code' && e.closest('.cell_output')) continue;
    const r = e.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    found.count += 1;
    // The natural width of the content: the typeset formula, or the box's scrollable width.
    const content = kind === 'equation' ? formulaWidth(e) : Math.max(r.width, e.scrollWidth);
    if (e.tagName === 'PRE') {  // lines wrapped at spaces: more rows on screen than in the text
      const s = getComputedStyle(e);
      const rows = (e.clientHeight - parseFloat(s.paddingTop) - parseFloat(s.paddingBottom))
          / parseFloat(s.lineHeight);
      const lines = e.textContent.replace(/\\n$/, '').split('\\n').length;
      if (Math.round(rows) > lines) found.wrapped += 1;
    }
    found.widest = Math.max(found.widest, content / (colRight - colLeft));
    const clip = clippedBy(e, r);
    const scroll = scroller(e);
    if (clip) found.clipped.push(describe(e) + ' (clipped by ' + clip + ')');
    if (r.right > Math.min(colRight, innerWidth) + 1 && !scroll)
      found.tooWide.push(describe(e) + ` (${Math.round(r.width)} px in a ${column} px column)`);
    else if (scroll) found.scrolling.push(describe(e) +
        ` (${scroll.scrollWidth} px in a ${scroll.clientWidth} px box)`);
  }
  out.blocks[kind] = found;
}
return out;
"""

OPEN_DRAWER = """
const [kind] = arguments;
const dialog = document.getElementById('pst-' + kind + '-sidebar-modal');
const sidebar = document.getElementById('pst-' + kind + '-sidebar');
for (const container of [dialog, sidebar]) {
  if (!container) continue;
  const r = container.getBoundingClientRect();
  const open = container.tagName === 'DIALOG' ? container.open
      : (r.width > 100 && r.right > 100 && r.left < innerWidth - 100);
  if (!open) continue;
  const links = Array.from(container.querySelectorAll('a[href]')).filter(a => {
    const q = a.getBoundingClientRect();
    return q.width > 0 && q.height > 0 && q.left >= -1 && q.right <= innerWidth + 1;
  });
  return {open: true, links: links.length, first: links.slice(0, 3).map(a => a.textContent.trim())};
}
return {open: false, links: 0, first: []};
"""


@dataclass
class PageReport:
    page: str
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    phone_scrolling: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def fail(self, message: str) -> None:
        self.failures.append(message)


def console_errors(driver, base_url: str) -> list[str]:
    errors = []
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            errors.append(entry["message"].replace(base_url, "/")[:200])
    return errors


def external_requests(driver, base_url: str) -> list[str]:
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            if url.startswith(("http:", "https:", "ws:", "wss:")) and not url.startswith(base_url):
                urls.append(url)
    return urls


def check_text(report: PageReport, measured: dict) -> None:
    text = measured["text"]
    snippets = raw_tex_snippets(text)
    if snippets or measured["untypeset"]:
        report.fail(f"raw TeX left in the page: {(snippets + measured['untypeset'])[:3]}")
    if measured["mathErrors"]:
        report.fail(f"{len(measured['mathErrors'])} MathJax errors: {measured['mathErrors'][:3]}")
    unresolved = len(UNRESOLVED.findall(text)) + measured["unresolvedInMath"]
    if unresolved:
        i = text.find("??")
        example = text[max(0, i - 40): i + 10]
        report.fail(f"{unresolved} unresolved references ('??'), e.g. {example!r}")
    citations = raw_citations(text)
    if citations:
        report.fail(f"citations left as plain text: {citations[:3]}")
    if measured["duplicateIds"]:
        report.fail(f"duplicate HTML ids: {measured['duplicateIds'][:5]}")
    report.notes.append(
        f"math: {measured['typeset']} of {measured['mathElements']} formulas typeset, "
        f"{len(measured['mathErrors'])} MathJax errors, {len(snippets)} raw TeX, "
        f"{unresolved} '??', {len(citations)} plain-text citations"
    )


def check_links(report: PageReport, measured: dict, root: Path, base_url: str) -> None:
    local = external = 0
    broken = []
    for url in measured["links"] + measured["resources"]:
        target = local_target(root, base_url, url)
        if target is None:
            external += url.startswith(("http:", "https:"))
            continue
        local += 1
        path, fragment = target
        if not path.is_file():
            broken.append(url.replace(base_url, "/"))
        elif fragment and path.suffix == ".html" and fragment not in html_ids(path):
            broken.append(url.replace(base_url, "/"))
    bad_images = [i["src"].replace(base_url, "/") for i in measured["images"] if not i["ok"]]
    if broken:
        report.fail(f"{len(broken)} broken local links: {sorted(set(broken))[:5]}")
    if bad_images:
        report.fail(f"{len(bad_images)} images that do not load: {bad_images[:5]}")
    report.notes.append(
        f"links: {local} local ({len(broken)} broken), {external} to other sites (not followed);"
        f" images {len(measured['images']) - len(bad_images)}/{len(measured['images'])} loaded;"
        f" {len(measured['duplicateIds'])} duplicate HTML ids"
    )


def check_blocks(report: PageReport, blocks: dict, width: int) -> list[str]:
    scrolling = []
    counted = 0
    widest, wrapped = [], []
    for kind, found in blocks["blocks"].items():
        counted += found["count"]
        if found["count"] and kind in ("equation", "output", "code"):
            widest.append(f"{kind} {found['widest']:.0%}")
        if found["wrapped"]:
            wrapped.append(f"{found['wrapped']} {kind}")
        for item in found["clipped"]:
            report.fail(f"{width} px: {kind} cut off: {item}")
        for item in found["tooWide"]:
            report.fail(f"{width} px: {kind} wider than the column: {item}")
        if width >= DESKTOP[0]:
            for item in found["scrolling"]:
                report.fail(f"{width} px: {kind} wider than its column (scrolls): {item}")
        else:
            scrolling += [f"{kind} {item}" for item in found["scrolling"]]
    # (A phone's layout viewport grows with too-wide content: compare with the screen's width.)
    if blocks["pageWidth"] > width + 1:
        report.fail(f"{width} px: the page is {blocks['pageWidth']} px wide")
    summary = f"{counted} blocks in a {blocks['column']} px column"
    if widest:
        summary += " (widest " + ", ".join(widest) + ")"
    if wrapped:
        summary += ", long lines wrapped in " + " and ".join(wrapped) + " blocks"
    return [summary] + scrolling


def check_drawer(driver, report: PageReport, kind: str, required: bool) -> str:
    from selenium.webdriver.common.by import By

    buttons = [b for b in driver.find_elements(By.CSS_SELECTOR, f"button.{kind}-toggle")
               if b.is_displayed() and b.size["width"] > 0]
    if not buttons:
        if required:
            report.fail(f"390 px: no visible {kind} navigation button")
        return f"no {kind} button"
    buttons[0].click()
    state = {"open": False}
    for _ in range(20):
        time.sleep(0.1)
        state = driver.execute_script(OPEN_DRAWER, kind)
        if state["open"] and state["links"]:
            break
    label = "chapter list" if kind == "primary" else "page contents"
    if not (state["open"] and state["links"]):
        report.fail(f"390 px: the {label} button does not open the {label}")
        return f"{label} does not open"
    return f"{label} opens ({state['links']} links)"


def screenshot(driver, path: Path, width: int, full: bool) -> None:
    if full:
        height = min(driver.execute_script("return document.documentElement.scrollHeight"), 12000)
        set_viewport(driver, width, height, width < 700)
        time.sleep(0.3)
    driver.save_screenshot(str(path))


def check_page(driver, root, base_url, page, shots: Path | None) -> PageReport:
    report = PageReport(page)
    start = time.perf_counter()
    url = base_url + page
    driver.get_log("browser")
    driver.get_log("performance")

    set_viewport(driver, *DESKTOP, phone=False)
    driver.get(url)
    rendering = driver.execute_async_script(WAIT_FOR_RENDERING)
    if rendering["status"] not in ("typeset", "no math"):
        report.fail(f"MathJax: {rendering['status']}")
    measured = driver.execute_script(MEASURE_TEXT)
    check_text(report, measured)
    check_links(report, measured, root, base_url)
    desktop = check_blocks(report, driver.execute_script(MEASURE_BLOCKS), DESKTOP[0])
    typeset = ("no formulas" if rendering["status"] == "no math"
               else f"MathJax done {rendering['ms']} ms after load")
    report.notes.append(f"1400 px: {desktop[0]}; {typeset}")
    stem = page.replace("/", "-").removesuffix(".html")
    if shots:
        for mode in ("light", "dark"):
            driver.execute_script("document.documentElement.dataset.theme = arguments[0];", mode)
            screenshot(driver, shots / f"{stem}-1400-{mode}.png", DESKTOP[0], full=True)
        set_viewport(driver, *DESKTOP, phone=False)

    set_viewport(driver, *PHONE, phone=True)
    driver.get(url)
    driver.execute_async_script(WAIT_FOR_RENDERING)
    phone_blocks = driver.execute_script(MEASURE_BLOCKS)
    phone = check_blocks(report, phone_blocks, PHONE[0])
    report.phone_scrolling = phone[1:]
    if shots:
        for mode in ("light", "dark"):
            driver.execute_script("document.documentElement.dataset.theme = arguments[0];", mode)
            screenshot(driver, shots / f"{stem}-390-{mode}.png", PHONE[0], full=True)
        set_viewport(driver, *PHONE, phone=True)
        driver.get(url)
        driver.execute_async_script(WAIT_FOR_RENDERING)
    has_nav = page != "search.html"
    navigation = check_drawer(driver, report, "primary", required=has_nav)
    if shots:
        driver.save_screenshot(str(shots / f"{stem}-390-drawer.png"))
    contents = ""
    if driver.find_elements("css selector", "button.secondary-toggle"):
        driver.get(url)
        driver.execute_async_script(WAIT_FOR_RENDERING)
        contents = ", " + check_drawer(driver, report, "secondary", required=False)
    report.notes.append(
        f"390 px: page {phone_blocks['pageWidth']} px wide, {phone[0]}; {navigation}{contents}; "
        f"{len(phone) - 1} blocks scroll in their own box"
    )

    errors = list(dict.fromkeys(console_errors(driver, base_url)))  # each once, in order
    requests = sorted(set(external_requests(driver, base_url)))
    for message in errors:
        report.fail(f"console error: {message}")
    for request in requests:
        report.fail(f"request to another site (the page is not self-contained): {request}")
    report.notes.append(f"browser: {len(errors)} console errors, "
                        f"{len(requests)} requests to other sites (network blocked)")
    report.seconds = time.perf_counter() - start
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path, help="the built HTML (e.g. _build/check/_build/html)")
    parser.add_argument("--pages", nargs="*", default=[], help="glob patterns of pages to check")
    parser.add_argument("--screenshots", type=Path, help="write PNG screenshots of each page here")
    parser.add_argument("--verbose", action="store_true", help="list what scrolls on phones")
    args = parser.parse_args(argv)

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not (Path(p).exists() or shutil.which(p))]
    if missing:
        print(f"site-check: {', '.join(missing)} not found; install Debian's chromium and "
              "chromium-driver (apt-get install chromium chromium-driver)")
        return 1
    root = args.root.resolve()
    if not (root / "index.html").is_file():
        print(f"site-check: no built book in {root} (run `make book-check` first)")
        return 1
    pages = find_pages(root, args.pages)
    failed_pages, failures = 0, 0
    redirects = [p for p in pages if is_redirect(root / p)]
    for page in redirects:
        target = re.search(r'url=([^"\']+)', (root / page).read_text(encoding="utf-8"))
        if target and (root / page).parent.joinpath(target[1]).is_file():
            print(f"ok   {page}: redirects to {target[1]}")
        else:
            print(f"FAIL {page}: redirects to a missing page")
            failed_pages, failures = failed_pages + 1, failures + 1
    pages = [p for p in pages if p not in redirects]
    if args.screenshots:
        args.screenshots.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    server, base_url = serve(root)
    profile = tempfile.mkdtemp(prefix="site-check-")
    driver = start_browser(profile)
    try:
        for page in pages:
            report = check_page(driver, root, base_url, page, args.screenshots)
            status = "FAIL" if report.failures else "ok  "
            print(f"{status} {page} ({report.seconds:.1f} s)")
            for note in report.notes:
                print(f"       {note}")
            for failure in report.failures:
                print(f"       FAILED: {failure}")
            if args.verbose:
                for item in report.phone_scrolling:
                    print(f"       390 px scrolls: {item}")
            failures += len(report.failures)
            failed_pages += bool(report.failures)
    finally:
        driver.quit()
        server.shutdown()
        shutil.rmtree(profile, ignore_errors=True)
    seconds = time.perf_counter() - started
    total = len(pages) + len(redirects)
    print(f"site-check: {total} pages in {seconds:.0f} s, {failures} problems")
    print(f"site-check: {total - failed_pages} passed, {failed_pages} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
