"""What a reader of the published site relies on: launch buttons that open the
chapter, downloads, the Binder environment, the Colab install cell, internal
links that resolve, a 404 page and an API reference with every name."""

from __future__ import annotations

import builtins
import html.parser
import pathlib
import re
import sys
import types
import urllib.parse

import jupytext
import pytest

import lossutils
from conftest import ROOT
from test_book import CHAPTERS

pytestmark = pytest.mark.book


class Links(html.parser.HTMLParser):
    """Every href/src of a page, and every id it defines."""

    def __init__(self):
        super().__init__()
        self.links, self.ids = [], set()

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key):
                self.links.append((tag, attrs[key]))


def parse(path: pathlib.Path) -> Links:
    parser = Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_launch_buttons_open_this_chapter(built_book, chapter):
    links = [href for _, href in parse(built_book.html / f"{chapter}.html").links]
    binder = [h for h in links if "mybinder.org" in h]
    colab = [h for h in links if "colab.research.google.com" in h]
    assert binder and colab, f"{chapter}: no Binder/Colab button"
    # Binder opens the MyST markdown from the repository...
    urlpath = urllib.parse.parse_qs(urllib.parse.urlparse(binder[0]).query)["urlpath"][0]
    assert urlpath == f"lab/tree/{chapter}.md" and (ROOT / f"{chapter}.md").exists()
    # ...Colab the executed notebook the deploy publishes on the notebooks branch.
    assert colab[0].endswith(f"/blob/notebooks/{chapter}.ipynb")
    assert (built_book.html.parent / "jupyter_execute" / f"{chapter}.ipynb").exists()


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_downloads_exist(built_book, chapter):
    links = {href for _, href in parse(built_book.html / f"{chapter}.html").links}
    for suffix in (".ipynb", ".md"):
        name = f"_sources/{chapter}{suffix}"
        assert any(link.endswith(name) for link in links), f"no {suffix} download on {chapter}"
        assert (built_book.html / name).exists()


def _pins(path: pathlib.Path) -> dict[str, str]:
    pins = {}
    for line in path.read_text().splitlines():
        m = re.match(r"^([A-Za-z0-9_.\-]+)==([^\s#]+)", line.strip())
        if m:
            pins[m.group(1).lower()] = m.group(2)
    return pins


def test_binder_pins_match_requirements():
    book, binder = _pins(ROOT / "requirements.txt"), _pins(ROOT / "binder" / "requirements.txt")
    assert binder.pop("torch") == book.pop("torch") + "+cpu"  # the CPU build, from PyTorch's index
    for name, version in binder.items():
        assert book.get(name) == version, (
            f"binder pins {name}=={version}, requirements.txt {book.get(name)}")
    for needed in ("jupytext", "ipywidgets", "numpy", "matplotlib"):
        assert needed in binder
    assert "-e ." in (ROOT / "binder" / "requirements.txt").read_text()


def _install_cell(chapter: str) -> str:
    nb = jupytext.read(ROOT / f"{chapter}.md")
    code = [c for c in nb.cells if c.cell_type == "code"]
    tags = code[0].metadata.get("tags", [])
    assert "remove-cell" in tags, f"{chapter}: first cell must be the install cell"
    return code[0].source


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_install_cell_is_a_no_op_where_lossutils_imports(chapter, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(check_call=lambda *a, **k: calls.append(a))
    monkeypatch.setitem(sys.modules, "subprocess", fake)
    exec(_install_cell(chapter), {})
    assert calls == []


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_install_cell_installs_lossutils_where_it_is_missing(chapter, monkeypatch):
    calls = []
    fake = types.SimpleNamespace(check_call=lambda args, **k: calls.append(args))
    monkeypatch.setitem(sys.modules, "subprocess", fake)
    real_import = builtins.__import__

    def no_lossutils(name, *args, **kwargs):
        if name.split(".")[0] == "lossutils":
            raise ImportError("lossutils is not installed (simulated Colab)")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_lossutils)
    exec(_install_cell(chapter), {})
    assert len(calls) == 1 and calls[0][1:4] == ["-m", "pip", "install"]
    assert any(arg.startswith("lossutils @ git+https://github.com/") for arg in calls[0])


def _site_pages(html_dir: pathlib.Path):
    return sorted(p for p in html_dir.rglob("*.html")
                  if "_static" not in p.parts and p.name != "404.html")


def test_internal_links_resolve(built_book):
    broken = []
    pages = {page: parse(page) for page in _site_pages(built_book.html)}
    ids = {page: parsed.ids for page, parsed in pages.items()}
    for page, parsed in pages.items():
        for _, link in parsed.links:
            url = urllib.parse.urlparse(link)
            if url.scheme or link.startswith(("//", "mailto:", "javascript:", "data:")):
                continue
            target = (page.parent / urllib.parse.unquote(url.path)).resolve() if url.path else page
            if target.is_dir():
                target = target / "index.html"
            if not target.exists():
                broken.append(f"{page.relative_to(built_book.html)}: {link}")
            elif (url.fragment and target.suffix == ".html" and target in ids
                  and url.fragment not in ids[target]):
                broken.append(f"{page.relative_to(built_book.html)}: {link} (no such anchor)")
    assert not broken, "\n".join(broken[:30])


def test_404_page_exists(built_book):
    page = (built_book.html / "404.html").read_text()
    assert "Page not found" in page or "404" in page


@pytest.mark.parametrize("namespace", ["functional", "nn", "reference"])
def test_api_reference_documents_every_public_name(built_book, namespace):
    module = getattr(lossutils, namespace)
    ids = parse(built_book.html / "api" / f"{namespace}.html").ids
    documented = {i.rsplit(".", 1)[-1] for i in ids if i.startswith(f"lossutils.{namespace}.")}
    missing = [name for name in module.__all__ if name not in documented]
    assert not missing, f"undocumented in api/{namespace}: {missing}"
