"""Accessibility checks that need no browser: axe-core is installed from npm at
the pinned release, unmodified, and never ships with the site; every image of
the built site has real alt text. (axe-core itself runs on every page, in both
colour modes, in test_browser.py.)"""

from __future__ import annotations

import html.parser
import json
import re

import pytest

from accessibility import (
    AXE_DIR,
    AXE_PACKAGE,
    alt_problem,
    pinned_version,
    published_sri,
    require_axe,
    sri,
)
from browser import pages


def test_axe_is_pinned_to_one_release():
    """An exact version in package.json, the same in the lock, with npm's sha512 there."""
    wanted = json.loads((AXE_DIR / "package.json").read_text())["devDependencies"]["axe-core"]
    assert re.fullmatch(r"\d+\.\d+\.\d+", wanted), f"axe-core {wanted!r} is a range, not a pin"
    lock = json.loads((AXE_DIR / "package-lock.json").read_text())["packages"]
    assert lock["node_modules/axe-core"]["integrity"].startswith("sha512-")
    assert pinned_version() == wanted
    assert set(lock) == {"", "node_modules/axe-core"}, "axe-core alone, nothing else from npm"


def test_installed_axe_is_the_pinned_release_unmodified():
    source = require_axe()
    version = pinned_version()
    assert source.startswith(f"/*! axe v{version}\n")
    assert sri((AXE_PACKAGE / "axe.min.js").read_bytes()) == published_sri(version)


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
