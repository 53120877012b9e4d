"""The book: it builds from scratch with no warning and no cell error, and
every chapter runs on its own in a fresh kernel."""

from __future__ import annotations

import json
import pathlib
import re
import time

import jupytext
import nbformat
import pytest
from nbclient import NotebookClient

from conftest import ROOT
from execute_book import toc_files

pytestmark = pytest.mark.book


CHAPTERS = [f for f in toc_files() if f.startswith("chapters/")]


def test_book_builds_without_warnings_or_cell_errors(built_book):
    if not built_book.log:
        pytest.skip("BOOK_HTML given: reusing a build, its log is not available")
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "book-build.log").write_text(built_book.log)
    # Sphinx's own warnings and errors ("path:line: WARNING: ..."), and any
    # traceback (with what follows it); not the kernels' "[IPKernelApp]
    # WARNING | ..." start-up notes.
    lines = built_book.log.splitlines()
    problems = []
    for i, line in enumerate(lines):
        if re.search(r"(^|: |\x1b\[\d+m)(WARNING|ERROR|CRITICAL):", line):
            problems.append(line)
        elif "Traceback" in line:
            problems.append("\n".join(lines[max(i - 3, 0):i + 20]))
    report = "\n".join(problems[:40]) or built_book.log[-3000:]
    assert built_book.returncode == 0 and not problems, report


@pytest.mark.parametrize("page", toc_files())
def test_every_page_is_built_with_executed_outputs(built_book, page):
    html = (built_book.html / f"{page}.html").read_text()
    assert "<h1" in html
    if page.startswith("chapters/"):
        assert html.count('class="cell_output') >= 5, f"{page}: too few executed outputs"
        assert "<img" in html, f"{page}: no figure"
        assert "solution" in html and "exercise" in html, f"{page}: no exercises with solutions"


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_runs_alone_in_a_fresh_kernel(chapter):
    """Each chapter on its own (not after another one), in its own folder as
    Jupyter and the book build run it, offline."""
    path = ROOT / f"{chapter}.md"
    nb = jupytext.read(path)
    client = NotebookClient(nb, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
              if o.get("output_type") == "error"]
    assert not errors, errors[0].get("evalue")
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    timing = json.dumps({"chapter": chapter, "seconds": seconds})
    (artifacts / f"time-{pathlib.Path(chapter).name}.json").write_text(timing)
    nbformat.validate(nb)
    print(f"{chapter}: {seconds:.1f} s in a fresh kernel")
