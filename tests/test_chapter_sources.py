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
import re

import jupytext
import pytest

from accessibility import alt_problem
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


# A cell that makes a matplotlib figure shows it as its output.
_MAKES_FIGURE = re.compile(r"\bplt\.(subplots|figure|show)\(|\bfig\.savefig\(")


def _figure_cells(chapter):
    nb = jupytext.reads((ROOT / chapter).read_text(), fmt="md:myst")
    for index, cell in enumerate(nb.cells):
        mystnb = cell.metadata.get("mystnb", {})
        if cell.cell_type == "code" and ("figure" in mystnb or _MAKES_FIGURE.search(cell.source)):
            yield index, mystnb


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_every_figure_cell_has_alt_text(chapter):
    """Each figure a chapter draws carries ``mystnb: image: alt:`` (myst-nb puts it on
    the <img>; without it the alt text is the image's file path), next to its
    ``figure`` caption and name; the alt text says what the figure shows, in more
    than a few words, and is not the caption again."""
    problems = []
    for index, mystnb in _figure_cells(chapter):
        where = f"cell {index} ({mystnb.get('figure', {}).get('name', 'no figure name')})"
        alt = mystnb.get("image", {}).get("alt")
        caption = mystnb.get("figure", {}).get("caption")
        if "figure" not in mystnb:
            problems.append(f"{where}: draws a figure without `mystnb: figure:` (caption, name)")
        if not isinstance(alt, str):
            problems.append(f"{where}: no `mystnb: image: alt:`")
        elif alt_problem(alt, min_words=8) or alt.strip() == caption:
            problems.append(f"{where}: {alt_problem(alt, min_words=8) or 'alt is the caption'}")
    assert not problems, f"{chapter}:\n" + "\n".join(problems)


def test_some_figures_are_checked():
    assert sum(len(list(_figure_cells(c))) for c in CHAPTERS) >= 20


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_a_listing_is_the_last_expression_of_its_cell(chapter):
    """A notebook cell displays only its last expression: a second bare show_source(...)
    in the same cell would hide the first listing from the reader."""
    nb = jupytext.reads((ROOT / chapter).read_text(), fmt="md:myst")
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        bare = [line for line in cell.source.splitlines() if line.startswith("show_source(")]
        assert len(bare) <= 1, (f"{chapter}, cell {index}: {len(bare)} bare show_source calls, "
                                "only the last is displayed; give each its own cell")
