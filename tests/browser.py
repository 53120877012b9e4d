"""Helpers for the browser tests: serve a built site locally, drive Debian's
Chromium through playwright, and record everything a page does.

Never ``playwright install``: the tests use the system's ``/usr/bin/chromium``
(``apt-get install chromium``; ``make test`` installs it under ``CI=true``).
"""

from __future__ import annotations

import functools
import http.server
import pathlib
import socketserver
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from urllib.parse import urlsplit

CHROMIUM = pathlib.Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-gpu"]
NO_CHROMIUM = ("browser tests need Debian's Chromium at /usr/bin/chromium: run "
               "`apt-get install chromium` "
               "as root (`CI=true make test` does it); never `playwright install`")

FIGURE = ".lossutils-figure"
# What ipywidgets leaves on a page: its views, its saved state, the require.js
# loader its embed manager needs. None may appear without a kernel.
WIDGET_SELECTORS = (".jupyter-widgets", ".widget-slider", ".widget-output", ".widget-box",
                    'script[type="application/vnd.jupyter.widget-view+json"]',
                    'script[type="application/vnd.jupyter.widget-state+json"]',
                    'script[src*="require"]', 'script[src*="embed-amd"]')


class _Handler(http.server.SimpleHTTPRequestHandler):
    prefix = "/"

    def log_message(self, *args):  # the tests report failures themselves
        pass

    def translate_path(self, path):
        # Like GitHub Pages: the site lives under its prefix, anything else is missing.
        if not path.startswith(self.prefix):
            return str(pathlib.Path(self.directory) / "__outside_the_site_prefix__")
        return super().translate_path("/" + path[len(self.prefix):])


@contextmanager
def serve(directory: pathlib.Path, prefix: str = "/"):
    """Serve ``directory`` at ``http://127.0.0.1:<free port><prefix>``; yields that URL."""
    prefix = "/" + prefix.strip("/") + "/" if prefix.strip("/") else "/"
    handler = functools.partial(type("Handler", (_Handler,), {"prefix": prefix}),
                                directory=str(directory))
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}{prefix}"
    finally:
        server.shutdown()
        server.server_close()


def pages(site: pathlib.Path) -> list[str]:
    """Every HTML page of the site, as paths relative to its root."""
    relative = (p.relative_to(site) for p in site.rglob("*.html"))
    return sorted(p.as_posix() for p in relative
                  if "_static" not in p.parts and "_sources" not in p.parts)


# The pydata theme's colour modes: the page loads in the book's default (light);
# the reader's switch in the header moves it to dark (and on to "auto").
MODES = ("light", "dark")


@dataclass
class Visit:
    """What one page did while loading."""

    page: str
    console_errors: list[str] = field(default_factory=list)
    page_errors: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    foreign: list[str] = field(default_factory=list)
    bytes_by_url: dict[str, int] = field(default_factory=dict)
    figures: list[str] = field(default_factory=list)
    figure_markup_bytes: int = 0
    widgets: list[str] = field(default_factory=list)
    empty_figures: list[str] = field(default_factory=list)
    modes: dict[str, dict] = field(default_factory=dict)  # colour mode -> rendered_mode()
    axe: dict[str, list[dict]] = field(default_factory=dict)  # colour mode -> axe's violations

    @property
    def problems(self) -> list[str]:
        return ([f"console error: {m}" for m in self.console_errors]
                + [f"page error: {m}" for m in self.page_errors]
                + [f"failed request: {m}" for m in self.failed]
                + [f"request to another host: {m}" for m in self.foreign]
                + [f"widget without a kernel: {m}" for m in self.widgets]
                + [f"figure drew no line: {m}" for m in self.empty_figures])

    @property
    def weight(self) -> int:
        return sum(self.bytes_by_url.values())


def watch(page, base: str, visit: Visit) -> None:
    """Record errors and requests of ``page``; requests to any other host are
    aborted (so nothing leaves the machine) and recorded."""
    local = urlsplit(base).netloc

    def route(r):
        url = r.request.url
        scheme = urlsplit(url).scheme
        if scheme in ("data", "blob", "about") or urlsplit(url).netloc == local:
            r.continue_()
        else:
            visit.foreign.append(url)
            r.abort()

    def on_response(response):
        if response.status >= 400:
            visit.failed.append(f"{response.status} {response.url}")
        elif 300 <= response.status < 400:
            return  # a redirect has no body: what it leads to is counted when it arrives
        elif urlsplit(response.url).netloc == local:
            # Weighed by its header, not by reading the body: a page that moves on at once
            # (index.html's refresh) has no body left to read. The local server sends the
            # header with every file, so a response without one is a failure, never a 0.
            length = response.headers.get("content-length")
            if length is None:
                visit.failed.append(f"no Content-Length to weigh {response.url}")
            else:
                visit.bytes_by_url[response.url] = int(length)

    def on_failed(request):
        if request.url not in visit.foreign:
            visit.failed.append(f"{request.failure} {request.url}")

    page.route("**/*", route)
    page.on("console", lambda m: visit.console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: visit.page_errors.append(str(e)))
    page.on("response", on_response)
    page.on("requestfailed", on_failed)


def wait_for_figures(page, timeout_ms: int = 20000) -> None:
    """Until every interactive figure has drawn its chart (an SVG with marks)."""
    page.wait_for_function(
        f"""() => Array.from(document.querySelectorAll('{FIGURE}'))
                 .every(f => f.querySelector('svg.marks g.mark-line path'))""", timeout=timeout_ms)


def line_paths(page, figure_id: str) -> list[str]:
    """The ``d`` attribute of every line the figure draws."""
    return page.eval_on_selector_all(f"#{figure_id} svg.marks g.mark-line path",
                                     "els => els.map(e => e.getAttribute('d') || '')")


def chart_png(page, figure_id: str) -> bytes:
    """A screenshot of the chart alone (not the controls, whose read-outs change too)."""
    return page.locator(f"#{figure_id} svg.marks").screenshot(animations="disabled")


def wait_changed(page, figure_id: str, before: bytes, timeout_s: float = 5.0) -> bytes:
    """Screenshots of the chart until it differs from ``before`` (Vega redraws
    asynchronously after an input event) or the time is up; returns the last."""
    deadline = time.monotonic() + timeout_s
    while True:
        after = chart_png(page, figure_id)
        if after != before or time.monotonic() > deadline:
            return after
        page.wait_for_timeout(100)


def open_page(browser, base_url: str, name: str, visit: Visit):
    """A fresh browser context showing page ``name``; returns (context, page)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    watch(page, base_url, visit)
    page.goto(base_url + name, wait_until="load")
    page.wait_for_load_state("networkidle")
    return context, page


def settle(page, visit: Visit) -> None:
    """Wait until the page is as a reader sees it: its interactive figures drawn and
    its math typeset (problems go to ``visit``)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    if page.query_selector(FIGURE):
        try:
            wait_for_figures(page)
        except PlaywrightTimeout as error:  # vega missing, or the spec rejected
            visit.page_errors.append(f"an interactive figure was not drawn: {error}")
        visit.figures = page.eval_on_selector_all(FIGURE, "els => els.map(e => e.id)")
        visit.empty_figures = [f for f in visit.figures if not any(line_paths(page, f))]
    if page.query_selector(".math"):
        # MathJax typesets after load; its promise settles when it is done.
        page.wait_for_function(
            "() => window.MathJax && MathJax.startup && MathJax.startup.promise")
        page.evaluate("() => MathJax.startup.promise")
        if not page.query_selector("mjx-container") or page.query_selector("mjx-merror"):
            visit.page_errors.append("math on the page was not typeset by MathJax")
    page.wait_for_load_state("networkidle")


def rendered_mode(page) -> dict:
    """The theme's colour mode as applied: data-theme on <html>, the page's background."""
    return page.evaluate("""() => ({
        theme: document.documentElement.dataset.theme,
        background: getComputedStyle(document.body).backgroundColor})""")


def switch_to(page, mode: str) -> None:
    """Click the theme's colour-mode switch in the header (light -> dark -> auto) until
    the page shows ``mode``, as a reader does."""
    switch = page.locator(".theme-switch-button:visible").first
    for _ in range(len(MODES) + 1):
        if rendered_mode(page)["theme"] == mode and \
                page.evaluate("() => document.documentElement.dataset.mode") == mode:
            return
        switch.click()
        # Away from the switch, so that its tooltip closes; and the theme's colours
        # change with CSS transitions: measure them once they end.
        page.mouse.move(0, 0)
        page.evaluate("() => document.activeElement && document.activeElement.blur()")
        page.wait_for_function("() => document.getAnimations().length === 0"
                               " && !document.querySelector('.tooltip')")
    raise AssertionError(f"the colour switch never reached {mode!r}: {rendered_mode(page)}")
