"""Every public name of lossutils' three namespaces is documented, the way torch documents it.

A name whose docstring is an expression (``r\"\"\"...\"\"\" + TEXT``) has no
``__doc__`` at all, and the API reference then shows a bare signature: each
name here must carry a real docstring. The module classes follow torch's
order -- the unreduced loss :math:`l_n`, the reductions, ``Args``, ``Shape``,
``Examples`` -- and every function and class shows an example, which
``make test`` runs as a doctest.
"""

from __future__ import annotations

import inspect
import re

import pytest

import lossutils
import lossutils.nn as LN

NAMESPACES = ("functional", "nn", "reference")
PUBLIC = [(ns, name) for ns in NAMESPACES for name in getattr(lossutils, ns).__all__]
# The unreduced loss in a math block: l_n, l_i, l_{n,c} or torch's \text{loss}_n.
UNREDUCED = re.compile(r"\bl_(?:n|i|\{n,\s*c\})|\\text\{loss\}_n")


def _sections(doc: str, *headings: str) -> list[int]:
    """Where each heading starts in ``doc`` (-1 if missing)."""
    return [doc.find(h) for h in headings]


@pytest.mark.parametrize("namespace, name", PUBLIC, ids=[f"{ns}.{n}" for ns, n in PUBLIC])
def test_every_public_name_has_a_docstring(namespace, name):
    obj = getattr(getattr(lossutils, namespace), name)
    doc = obj.__doc__  # the object's own: a class does not inherit its base's docstring
    assert doc and len(doc.split()) >= 5, f"lossutils.{namespace}.{name} has no real docstring"


@pytest.mark.parametrize("namespace, name", [p for p in PUBLIC if p[0] != "reference"],
                         ids=[f"{ns}.{n}" for ns, n in PUBLIC if ns != "reference"])
def test_every_function_and_module_shows_an_example(namespace, name):
    doc = inspect.cleandoc(getattr(getattr(lossutils, namespace), name).__doc__ or "")
    examples = doc.find("Examples:")
    assert examples >= 0 and ">>> " in doc[examples:], f"{namespace}.{name}: no Examples: section"


LOSS_CLASSES = [n for n in LN.__all__ if not n.startswith("_") and issubclass(getattr(LN, n),
                                                                              LN._Loss)]
OTHER_MODULES = [n for n in LN.__all__ if not n.startswith("_") and n not in LOSS_CLASSES]


@pytest.mark.parametrize("name", LOSS_CLASSES)
def test_loss_classes_document_in_torchs_order(name):
    """l_n in a math block, then what each reduction returns, then Args, Shape, Examples."""
    doc = inspect.cleandoc(getattr(LN, name).__doc__)
    math, none, args, shape, examples = _sections(doc, ".. math::", "``'none'``", "Args:",
                                                   "Shape:", "Examples:")
    assert math >= 0 and UNREDUCED.search(doc[math:none]), f"{name}: no l_n in a math block first"
    assert all(a < b for a, b in [(math, none), (none, args), (args, shape), (shape, examples)]), (
        f"{name}: sections out of torch's order (l_n, reductions, Args, Shape, Examples)")
    for reduction in ("``'mean'``", "``'sum'``"):
        assert none < doc.find(reduction) < args, f"{name}: does not say what {reduction} returns"


@pytest.mark.parametrize("name", OTHER_MODULES)
def test_other_modules_document_in_torchs_order(name):
    """Softmax, LogSoftmax and the distances: their math, then Args, Shape, Examples."""
    doc = inspect.cleandoc(getattr(LN, name).__doc__)
    positions = _sections(doc, ".. math::", "Args:", "Shape:", "Examples:")
    assert positions[0] >= 0 and positions == sorted(positions), f"{name}: sections out of order"


def test_the_order_check_can_fail():
    """A docstring in the wrong order (Shape before Args) or without l_n is caught."""
    bad = ".. math:: x\n\n``'none'`` ``'mean'`` ``'sum'``\n\nShape:\n\nArgs:\n\nExamples:\n"
    math, none, args, shape, examples = _sections(bad, ".. math::", "``'none'``", "Args:",
                                                   "Shape:", "Examples:")
    assert not UNREDUCED.search(bad[math:none]) and not args < shape
