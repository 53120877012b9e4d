"""The chapter sources as files: what a save from JupyterLab (jupytext) leaves
unchanged, and what every figure cell must carry.

A chapter is MyST markdown that JupyterLab opens as a notebook through
jupytext (``make lab``, Binder). Saving re-serialises the whole file, so a
source written in any other form than jupytext's own (a ``caption: |`` block,
no blank line after ``:tags:``) comes back as a diff of dozens of lines the
author never touched. The sources are kept in the form jupytext writes.
"""

from __future__ import annotations

import difflib

import jupytext
import pytest

from conftest import ROOT

CHAPTERS = sorted(p.relative_to(ROOT).as_posix() for p in (ROOT / "chapters").glob("*.md"))


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_jupytext_round_trip_leaves_the_chapter_unchanged(chapter):
    text = (ROOT / chapter).read_text()
    again = jupytext.writes(jupytext.reads(text, fmt="md:myst"), fmt="md:myst")
    diff = list(difflib.unified_diff(text.splitlines(), again.splitlines(), "source",
                                     "after a jupytext save", lineterm="", n=1))
    assert again == text, (
        f"{chapter}: saving from JupyterLab would rewrite it ({len(diff)} diff lines); write "
        "cell metadata the way jupytext does, e.g. run jupytext.writes(jupytext.reads(text, "
        "fmt='md:myst'), fmt='md:myst') once and review the diff:\n" + "\n".join(diff[:40]))
