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


# ipykernel's shutdown race, not the book's: a kernel asked to shut down flushes stdout
# after its iostream pipe has closed, and tornado logs the ZMQError (seen once in three
# clean builds, with every page executed and built). Only a traceback through
# ipykernel's control handler that ends in exactly this error is excused.
_KERNEL_SHUTDOWN_RACE = ("ERROR:tornado.general:Uncaught exception in ZMQStream callback",
                         "dispatch_control", "zmq.error.ZMQError: Socket operation on non-socket")


def build_problems(log: str) -> list[str]:
    """Sphinx's own warnings and errors ("path:line: WARNING: ..."), and any traceback
    (with what follows it); not the kernels' "[IPKernelApp] WARNING | ..." start-up notes,
    nor a traceback of the kernel shutdown race above."""
    lines = log.splitlines()
    problems, skip_until = [], -1
    for i, line in enumerate(lines):
        if i <= skip_until:
            continue
        if line == _KERNEL_SHUTDOWN_RACE[0] and i + 1 < len(lines) \
                and lines[i + 1].startswith("Traceback"):
            end = next((j for j in range(i + 2, len(lines))
                        if not lines[j].startswith(" ")), len(lines) - 1)
            block = lines[i:end + 1]
            if any(_KERNEL_SHUTDOWN_RACE[1] in b for b in block) \
                    and block[-1] == _KERNEL_SHUTDOWN_RACE[2]:
                skip_until = end
                continue
        if re.search(r"(^|: |\x1b\[\d+m)(WARNING|ERROR|CRITICAL):", line):
            problems.append(line)
        elif "Traceback" in line:
            problems.append("\n".join(lines[max(i - 3, 0):i + 20]))
    return problems


def test_build_problems_excuse_only_the_kernel_shutdown_race():
    race = [_KERNEL_SHUTDOWN_RACE[0], "Traceback (most recent call last):",
            '  File "ipykernel/kernelbase.py", line 372, in dispatch_control',
            "    await self.process_control(msg)", _KERNEL_SHUTDOWN_RACE[2]]
    other = [_KERNEL_SHUTDOWN_RACE[0], "Traceback (most recent call last):",
             '  File "ipykernel/kernelbase.py", line 372, in dispatch_control',
             "RuntimeError: something else"]
    sphinx = "chapters/x.md:3: WARNING: undefined label"
    assert build_problems("\n".join(["ok", *race, "done"])) == []
    assert len(build_problems("\n".join(other))) == 2  # the ERROR line and its traceback
    assert build_problems("\n".join([*race, sphinx])) == [sphinx]


def test_book_builds_without_warnings_or_cell_errors(built_book):
    if not built_book.log:
        pytest.skip("BOOK_HTML given: reusing a build, its log is not available")
    artifacts = ROOT / "test-artifacts"
    artifacts.mkdir(exist_ok=True)
    (artifacts / "book-build.log").write_text(built_book.log)
    problems = build_problems(built_book.log)
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
