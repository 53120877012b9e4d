"""The built site in a real browser (Debian's Chromium, headless, offline).

Every page of ``built_book`` is served from 127.0.0.1 and loaded once:
no console error, no page error, no failed request, no request to any other
host (those are aborted), no ipywidget without a kernel, math typeset by the
vendored MathJax, every interactive figure drawn. Then every control of every
interactive figure is moved (keyboard or click) and its chart must change and
still draw all its lines; and once more with the keyboard alone, from the top
of the page. Full-page screenshots and the before/after charts go to
test-artifacts/browser/ (look at them); page weights to weights.json there.

Accessibility (WCAG 2.1 AA): axe-core (from npm, pinned by
tests/axe/package-lock.json; see tests/accessibility.py) runs on every page in
the light mode, then again after a click on the theme's colour switch in the
dark mode; no serious or critical
violation may remain (the counts per page, mode and impact go to axe.json).
The figures' names, descriptions and labelled controls are checked as
Chromium exposes them to assistive technology.
"""

from __future__ import annotations

import html.parser
import json
import os
import pathlib
import re
import shutil
from urllib.parse import urlsplit

import pytest
import yaml

from accessibility import FAILING, IMPACTS, axe_source_or_none, by_impact, require_axe, run_axe
from browser import (
    CHROMIUM,
    CHROMIUM_ARGS,
    FIGURE,
    MODES,
    NO_CHROMIUM,
    WIDGET_SELECTORS,
    Visit,
    chart_png,
    line_paths,
    open_page,
    pages,
    rendered_mode,
    serve,
    settle,
    switch_to,
    wait_changed,
    wait_for_figures,
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
        if os.environ.get("CI") == "true":  # CI must run them (make test installs chromium)
            pytest.fail(f"CI=true, and {NO_CHROMIUM}")
        pytest.skip(NO_CHROMIUM)
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="playwright is in requirements-test.txt")
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                     args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


def _open(browser, base_url, name, visit):
    return open_page(browser, base_url, name, visit)


@pytest.fixture(scope="session")
def visits(browser, base_url, site) -> dict[str, Visit]:
    """Every page loaded once, with what it did; then axe-core in the light mode, a
    click on the colour switch, axe-core in the dark mode; a full-page screenshot in each."""
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # no stale screenshot from an earlier run
    ARTIFACTS.mkdir(parents=True)
    axe = axe_source_or_none()  # without it the axe tests skip (require_axe), the rest run
    result = {}
    for name in pages(site):
        visit = result[name] = Visit(name)
        context, page = _open(browser, base_url, name, visit)
        try:
            settle(page, visit)
            visit.widgets = [s for s in WIDGET_SELECTORS if page.query_selector(s)]
            for mode in MODES:
                if mode != "light":
                    switch_to(page, mode)
                visit.modes[mode] = rendered_mode(page)
                if axe:
                    visit.axe[mode] = run_axe(page, axe)
                # Every page in the light mode; in the dark one the pages with figures
                # (a full-page screenshot of a long page costs as much as axe-core).
                if mode == "light" or page.query_selector(f".cell_output img, {FIGURE}"):
                    suffix = "" if mode == "light" else f"-{mode}"
                    page.screenshot(path=ARTIFACTS / f"{name.replace('/', '__')}{suffix}.png",
                                    full_page=True)
        finally:
            context.close()
        blocks = FIGURE_BLOCK.findall((site / name).read_text())
        visit.figure_markup_bytes = sum(len(m.encode()) for m in blocks)
    return result


def test_every_page_loads_clean_and_offline(visits):
    assert visits, "the site has no pages"
    problems = {name: v.problems for name, v in visits.items() if v.problems}
    assert not problems, json.dumps(problems, indent=1)[:6000]


def test_axe_ran_on_every_page_in_both_colour_modes(visits):
    require_axe()
    assert {"index.html", "intro.html", "notation.html", "bibliography.html", "404.html",
            "api/functional.html", "chapters/05_kl_divergence.html"} <= set(visits)
    assert not [name for name, v in visits.items() if set(v.axe) != set(MODES)]


def test_each_colour_mode_really_renders(visits):
    """The theme applied the mode: its attribute on <html>, a light or a dark page."""
    wrong = []
    for name, v in visits.items():
        for mode, r in v.modes.items():
            rgb = [int(c) for c in r["background"][r["background"].index("(") + 1:-1].split(",")]
            if r["theme"] != mode or (sum(rgb[:3]) / 3 < 128) != (mode == "dark"):
                wrong.append(f"{name} [{mode}]: data-theme={r['theme']}, body {r['background']}")
    assert not wrong, "\n".join(wrong)


def test_no_serious_or_critical_accessibility_violation(visits):
    """axe-core (WCAG 2.0/2.1 A and AA, and best practices) on every page in both modes.
    The counts per page, mode and impact are printed and written to axe.json."""
    require_axe()
    table = [f"{'page':45s} {'mode':5s} " + " ".join(f"{i:>8s}" for i in IMPACTS)]
    report, failures = {}, []
    for name, v in visits.items():
        for mode, violations in v.axe.items():
            counts = by_impact(violations)
            report[f"{name} [{mode}]"] = {"counts": counts, "violations": violations}
            table.append(f"{name:45s} {mode:5s} " + " ".join(f"{counts[i]:8d}" for i in IMPACTS))
            failures += [f"{name} [{mode}] {x['impact']} {x['id']} ({x['help']}): "
                         f"{len(x['nodes'])} elements, e.g. "
                         + "; ".join(" ".join(n["target"]) for n in x["nodes"][:3])
                         + f"\n    {x['nodes'][0]['summary']}"
                         for x in violations if x["impact"] in FAILING]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    (ARTIFACTS / "axe.json").write_text(json.dumps(report, indent=1, ensure_ascii=False))
    print("\n".join(table))
    assert not failures, "\n".join(failures[:40])


def test_each_chapter_shows_its_interactive_figure(visits):
    built = {name: v for name, v in visits.items() if name in EXPECTED_FIGURES}
    for name, v in built.items():
        wanted = EXPECTED_FIGURES[name]
        assert any(f"lossutils-{wanted}-" in f for f in v.figures), (
            f"{name}: no {wanted} figure ({v.figures})")


def _figures_on_fresh_pages(browser, base_url, visits):
    """(page name, page, figure id) for every interactive figure of the site, each
    page opened afresh, with its figures drawn."""
    for name, visit in visits.items():
        if not visit.figures:
            continue
        context, page = _open(browser, base_url, name, Visit(name))
        try:
            wait_for_figures(page)
            for figure in visit.figures:
                yield name, page, figure
        finally:
            context.close()


def test_every_control_changes_its_figure(browser, base_url, visits):
    moved, problems = [], []
    for name, page, figure in _figures_on_fresh_pages(browser, base_url, visits):
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
    print("\n".join(moved))
    assert moved or not any(v.figures for v in visits.values())
    assert not problems, "\n".join(problems)


def _chart_state(page, figure: str) -> str:
    return page.eval_on_selector(f"#{figure} svg.marks", "svg => svg.innerHTML")


def _wait_chart_changed(page, figure: str, before: str) -> bool:
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:  # Vega redraws asynchronously after the input event
        page.wait_for_function(
            "([sel, before]) => document.querySelector(sel).innerHTML !== before",
            arg=[f"#{figure} svg.marks", before], timeout=5000)
        return True
    except PlaywrightTimeout:
        return False


_FOCUS = """() => { const e = document.activeElement;
    const figure = e && e.closest('.lossutils-figure');
    return {figure: figure ? figure.id : null, type: e.type || e.tagName.toLowerCase(),
            name: e.getAttribute('aria-label') || e.value, value: e.value,
            checked: !!e.checked}; }"""


def test_figure_controls_work_from_the_keyboard_alone(browser, base_url, visits):
    """A reader with only a keyboard: Tab from the top of the page until the focus is
    on the figure's first control, then for every control arrow keys change it and
    the chart, Tab moves on to the next; the last Tab reaches the text description,
    which Enter opens. No mouse, no element.focus()."""
    log, problems = [], []
    for name, page, figure in _figures_on_fresh_pages(browser, base_url, visits):
        controls = page.eval_on_selector_all(
            f"#{figure} .vega-bind", "bs => bs.map(b => b.querySelector('input').type)")
        tabs, focus = 0, page.evaluate(_FOCUS)
        while focus["figure"] != figure and tabs < 600:
            page.keyboard.press("Tab")
            tabs, focus = tabs + 1, page.evaluate(_FOCUS)
        if focus["figure"] != figure:
            problems.append(f"{name}: {tabs} Tabs never reached {figure}")
            continue
        log.append(f"{name}: {tabs} Tabs from the top reach {figure}")
        for i, kind in enumerate(controls):
            if i:
                page.keyboard.press("Tab")
                focus = page.evaluate(_FOCUS)
            if focus["figure"] != figure or focus["type"] != kind:
                problems.append(f"{name}: Tab to control {i} of {figure} focused {focus}")
                break
            before, old = _chart_state(page, figure), focus
            at_end = kind == "range" and page.evaluate(
                "() => { const e = document.activeElement;"
                " return +e.value + 3 * +e.step > +e.max; }")
            for _ in range(3):
                page.keyboard.press("ArrowLeft" if at_end else "ArrowRight")
            focus = page.evaluate(_FOCUS)
            changed = _wait_chart_changed(page, figure, before)
            log.append(f"  {focus['name']}: {old['value']} -> {focus['value']}, "
                       f"chart {'redrawn' if changed else 'UNCHANGED'}")
            if focus["value"] == old["value"] or not changed:
                problems.append(f"{name}: arrow keys on {focus['name']!r}: value "
                                f"{old['value']} -> {focus['value']}, chart changed "
                                f"{changed}")
        page.keyboard.press("Tab")
        summary = page.evaluate("() => document.activeElement.tagName")
        page.keyboard.press("Enter")
        opened = page.eval_on_selector(f"#{figure} details", "d => d.open")
        if summary != "SUMMARY" or not opened:
            problems.append(f"{name}: after the controls, Tab focused {summary}; "
                            f"Enter opened the text description: {opened}")
    print("\n".join(log))
    assert log and not problems, "\n".join(problems)


def test_figures_and_their_controls_are_named_and_described(browser, base_url, visits):
    """What a screen reader gets from each figure, as Chromium computes it: a named
    figure described by its text, the chart an image with a name, each slider named
    by its label and range, each group of radio buttons a named radiogroup."""
    problems, seen = [], 0
    for name, page, figure in _figures_on_fresh_pages(browser, base_url, visits):
        root = page.locator(f"#{figure}")
        described = root.evaluate(
            "f => (document.getElementById(f.getAttribute('aria-describedby')) || {})"
            ".textContent || ''")
        if root.get_attribute("role") != "figure" or not root.get_attribute("aria-label") \
                or "Control:" not in described or "Panel 1" not in described:
            problems.append(f"{name}: {figure} is not a named, described figure")
        chart = root.locator("svg.marks")
        if chart.get_attribute("role") != "img" or not chart.get_attribute("aria-label"):
            problems.append(f"{name}: {figure}'s chart has no role=img with a name")
        for bind in root.locator(".vega-bind").all():
            seen += 1
            label = bind.locator(".vega-bind-name").inner_text().strip()
            if bind.locator("input[type=range]").count():
                target = root.get_by_role("slider", name=label)
                accessible = target.first.get_attribute("aria-label") or ""
                if target.count() != 1 or " from " not in accessible:
                    problems.append(f"{name}: slider {label!r} named {accessible!r}")
            else:
                group = root.get_by_role("radiogroup", name=label)
                radios = group.get_by_role("radio")
                if group.count() != 1 or radios.count() < 2:
                    problems.append(f"{name}: no radiogroup named {label!r} with radios")
    assert seen and not problems, "\n".join(problems)


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
