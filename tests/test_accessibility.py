"""Accessibility checks that need no browser: the vendored axe-core is the pinned
release and never ships with the site, and every image of the built site has
real alt text. (axe-core itself runs on every page, in both colour modes, in
test_browser.py.)"""

from __future__ import annotations

import html.parser

import pytest

from accessibility import AXE_DIR, AXE_VERSION, alt_problem, axe_source, drifted
from browser import pages


def test_vendored_axe_is_the_pinned_release():
    assert drifted() == [], "tests/vendor/axe-core changed: see its README.md to update"
    assert axe_source().startswith(f"/*! axe v{AXE_VERSION}\n")
    assert f"axe-core@{AXE_VERSION}" in (AXE_DIR / "README.md").read_text()


@pytest.fixture(scope="module")
def site(built_book):
    html = built_book.html
    if not (html / "index.html").is_file():
        pytest.fail(f"no built site at {html}")
    return html


class _Images(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.images: list[dict] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.images.append(dict(attrs))


@pytest.mark.book
def test_every_image_on_the_site_has_real_alt_text(site):
    """An <img> without alt, with an empty one, or with a file name (myst-nb's
    default for a cell's output is the image's path) fails."""
    bad, seen = [], 0
    for name in pages(site):
        parser = _Images()
        parser.feed((site / name).read_text())
        for img in parser.images:
            seen += 1
            problem = alt_problem(img.get("alt"))
            if problem:
                bad.append(f"{name}: <img src={img.get('src')!r}>: {problem}")
    assert seen, "no image on the site at all?"
    assert not bad, f"{len(bad)} of {seen} images:\n" + "\n".join(bad)


@pytest.mark.book
def test_axe_is_not_shipped_with_the_site(site):
    shipped = [p.relative_to(site).as_posix() for p in site.rglob("*.js")
               if "axe" in p.name.lower() or "Deque Systems" in p.read_text(errors="ignore")]
    assert not shipped, shipped
