"""The built site in a real browser (Debian's Chromium, headless, offline).

Every page of ``built_book`` is served from 127.0.0.1 and loaded once:
no console error, no page error, no failed request, no request to any other
host (those are aborted), no ipywidget without a kernel, math typeset by the
vendored MathJax, every interactive figure drawn. Then every control of every
interactive figure is moved (keyboard or click) and its chart must change and
still draw all its lines. Full-page screenshots and the before/after charts go
to test-artifacts/browser/ (look at them); page weights to weights.json there.
"""

from __future__ import annotations

import html.parser
import json
import pathlib
import re
import shutil
from urllib.parse import urlsplit

import pytest
import yaml

from browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FIGURE,
    NO_CHROMIUM,
    WIDGET_SELECTORS,
    Visit,
    chart_png,
    line_paths,
    pages,
    serve,
    wait_changed,
    wait_for_figures,
    watch,
)
from conftest import ROOT

pytestmark = pytest.mark.browser

ARTIFACTS = ROOT / "test-artifacts" / "browser"
BUDGET = 1_000_000  # bytes an interactive figure may add to a page (scripts + its data)
# Where each chapter asks for its interactive figure (lossutils.interactive.figures).
EXPECTED_FIGURES = {
    "chapters/03_2_why_cross_entropy.html": "ce-temperature",
    "chapters/04_loss_family.html": "regression-losses",
    "chapters/05_kl_divergence.html": "kl-gaussian-fit",
    "chapters/06_training.html": "training-lr",
}
FIGURE_BLOCK = re.compile(r'<div class="lossutils-figure".*?</script>.*?</script>', re.S)


@pytest.fixture(scope="session")
def site(built_book) -> pathlib.Path:
    html = built_book.html
    if not (html / "index.html").is_file():
        pytest.fail(f"no built site at {html}")
    return html


@pytest.fixture(scope="session")
def base_url(site):
    """The site served under the path GitHub Pages serves it from (its 404 page
    links absolutely to that prefix)."""
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    prefix = config.get("sphinx", {}).get("config", {}).get("notfound_urls_prefix") or "/"
    with serve(site, prefix) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.skip(NO_CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is in requirements-test.txt")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser, base_url, name, visit):
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    page = context.new_page()
    watch(page, base_url, visit)
    page.goto(base_url + name, wait_until="load")
    page.wait_for_load_state("networkidle")
    return context, page


@pytest.fixture(scope="session")
def visits(browser, base_url, site) -> dict[str, Visit]:
    """Every page loaded once, with what it did; a full-page screenshot of each."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # no stale screenshot from an earlier run
    ARTIFACTS.mkdir(parents=True)
    result = {}
    for name in pages(site):
        visit = result[name] = Visit(name)
        context, page = _open(browser, base_url, name, visit)
        try:
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
            visit.widgets = [s for s in WIDGET_SELECTORS if page.query_selector(s)]
            page.wait_for_load_state("networkidle")
            page.screenshot(path=ARTIFACTS / (name.replace("/", "__") + ".png"), full_page=True)
        finally:
            context.close()
        blocks = FIGURE_BLOCK.findall((site / name).read_text())
        visit.figure_markup_bytes = sum(len(m.encode()) for m in blocks)
    return result


def test_every_page_loads_clean_and_offline(visits):
    assert visits, "the site has no pages"
    problems = {name: v.problems for name, v in visits.items() if v.problems}
    assert not problems, json.dumps(problems, indent=1)[:6000]


def test_each_chapter_shows_its_interactive_figure(visits):
    built = {name: v for name, v in visits.items() if name in EXPECTED_FIGURES}
    for name, v in built.items():
        wanted = EXPECTED_FIGURES[name]
        assert any(f"lossutils-{wanted}-" in f for f in v.figures), (
            f"{name}: no {wanted} figure ({v.figures})")


def test_every_control_changes_its_figure(browser, base_url, visits):
    moved, problems = [], []
    for name, visit in visits.items():
        if not visit.figures:
            continue
        context, page = _open(browser, base_url, name, Visit(name))
        try:
            wait_for_figures(page)
            for figure in visit.figures:
                controls = page.locator(
                    f"#{figure} .vega-bindings input, #{figure} .vega-bindings select")
                assert controls.count() > 0, f"{name}: figure {figure} has no controls"
                for i in range(controls.count()):
                    control = controls.nth(i)
                    kind = control.evaluate("e => e.type")
                    if kind == "radio" and control.is_checked():
                        continue  # moving to each other option covers the group
                    label = f"{figure} {kind} #{i}"
                    before, lines_before = chart_png(page, figure), line_paths(page, figure)
                    value_before = control.input_value() if kind != "radio" else "off"
                    if kind == "range":
                        # Keyboard: five steps right (left when already near the end).
                        at_end = control.evaluate("e => +e.value + 5 * +e.step > +e.max")
                        control.focus()
                        for _ in range(5):
                            control.press("ArrowLeft" if at_end else "ArrowRight")
                    elif kind == "radio":
                        control.check()
                    else:
                        options = control.evaluate("e => Array.from(e.options).map(o => o.value)")
                        control.select_option(next(o for o in options if o != value_before))
                    value_after = control.input_value() if kind != "radio" else "on"
                    after = wait_changed(page, figure, before)
                    slug = f"{name.replace('/', '__')}-{label.replace(' ', '_')}"
                    (ARTIFACTS / f"{slug}-before.png").write_bytes(before)
                    (ARTIFACTS / f"{slug}-after.png").write_bytes(after)
                    lines_after = line_paths(page, figure)
                    moved.append(f"{name}: {label} {value_before} -> {value_after}")
                    if value_after == value_before:
                        problems.append(f"{name}: {label} did not move")
                    elif after == before:
                        problems.append(f"{name}: {label} {value_before} -> {value_after} "
                                        "left the chart unchanged")
                    elif len(lines_after) != len(lines_before) or not all(lines_after):
                        problems.append(f"{name}: {label} -> {value_after} lost lines "
                                        f"({len(lines_before)} before, "
                                        f"{sum(map(bool, lines_after))} after)")
        finally:
            context.close()
    print("\n".join(moved))
    assert moved or not any(v.figures for v in visits.values())
    assert not problems, "\n".join(problems)


def test_an_interactive_figure_adds_at_most_1_mb_to_its_page(visits):
    report = {}
    for name, v in visits.items():
        vega = sum(n for url, n in v.bytes_by_url.items() if "/_static/vega/" in urlsplit(url).path)
        report[name] = {"page_bytes": v.weight, "figures": len(v.figures), "vega_bytes": vega,
                        "figure_markup_bytes": v.figure_markup_bytes}
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "weights.json").write_text(json.dumps(report, indent=1))
    for name, r in report.items():
        print(f"{name:45s} {r['page_bytes']:>10,d} B  figures {r['figures']}  "
              f"added {r['vega_bytes'] + r['figure_markup_bytes']:,d} B")
        if r["figures"]:
            assert r["vega_bytes"] > 0, f"{name}: the figure's page did not load vega"
            assert r["vega_bytes"] + r["figure_markup_bytes"] <= BUDGET, f"{name}: {r}"
        else:
            assert r["vega_bytes"] == 0, f"{name}: vega loaded on a page without a figure"


class _Sources(html.parser.HTMLParser):
    """Every URL a page makes the browser fetch by itself."""

    FETCHING_RELS = {"stylesheet", "preload", "modulepreload", "prefetch", "icon", "shortcut",
                     "apple-touch-icon", "manifest", "mask-icon"}

    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag in {"script", "img", "iframe", "source", "video", "audio", "embed", "input",
                   "track"}:
            srcset = [u.split()[0] for u in (a.get("srcset") or "").split(",") if u.strip()]
            self.urls += [a.get("src") or "", *srcset]
        elif tag == "link" and set((a.get("rel") or "").lower().split()) & self.FETCHING_RELS:
            self.urls.append(a.get("href") or "")
        elif tag == "object":
            self.urls.append(a.get("data") or "")


def _third_party(url: str) -> bool:
    return url.startswith("//") or urlsplit(url).scheme in ("http", "https")


def test_no_page_or_stylesheet_loads_from_another_host(site):
    """Static check of the built files (the browser test sees only what ran)."""
    bad = []
    for name in pages(site):
        parser = _Sources()
        text = (site / name).read_text()
        parser.feed(text)
        bad += [f"{name}: {u}" for u in parser.urls if _third_party(u)]
        bad += [f"{name}: {m}" for m in re.findall(r"""url\(\s*['"]?((?:https?:)?//[^)'"]+)""",
                                                   text)]
    for css in site.rglob("*.css"):
        for m in re.findall(r"""(?:url\(\s*['"]?|@import\s+['"])((?:https?:)?//[^)'"]+)""",
                            css.read_text()):
            bad.append(f"{css.relative_to(site)}: {m}")
    assert not bad, "\n".join(bad)
