"""lossutils builds every loss itself: its source may not reach torch's.

An AST scan of every module in lossutils: no import of torch.nn.functional,
torch.special or torch._C._nn; no attribute access to torch's loss, softmax,
log-softmax, logsumexp, distance or similarity functions in any spelling
(``F.x``, ``torch.x``, ``tensor.x()``, ``torch.nn.XLoss``); every loss a
``torch.autograd.Function`` subclass with a hand-written ``backward``.
"""

from __future__ import annotations

import ast
import pathlib
import re

import pytest

import lossutils

ROOT = pathlib.Path(lossutils.__file__).parent
SOURCES = sorted(ROOT.rglob("*.py"))

FORBIDDEN_ATTRIBUTES = {
    "softmax", "log_softmax", "logsumexp", "softmin", "cross_entropy", "nll_loss", "kl_div",
    "binary_cross_entropy", "binary_cross_entropy_with_logits", "ctc_loss", "pairwise_distance",
    "cosine_similarity", "cdist", "linear_cross_entropy", "_nn", "special", "functional",
}
FORBIDDEN_MODULES = ("torch.nn.functional", "torch.special", "torch._C._nn",
                     "torch.nn.modules.loss")
LOSS_NAME = re.compile(r"^[a-z0-9_]+_loss$|^[A-Z][A-Za-z0-9]*Loss$|^(Log)?Softmax$")


def _violations(path: pathlib.Path, root: pathlib.Path = ROOT) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        where = f"{path.relative_to(root.parent)}:{getattr(node, 'lineno', '?')}"
        if isinstance(node, ast.Import):
            found += [f"{where} imports {a.name}" for a in node.names
                      if a.name.startswith(FORBIDDEN_MODULES)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [f"{node.module}.{a.name}" for a in node.names]
            found += [f"{where} imports {n}" for n in names if n.startswith(FORBIDDEN_MODULES)]
            if node.module.startswith("torch"):
                found += [f"{where} imports {n}" for n, a in zip(names, node.names, strict=True)
                          if a.name in FORBIDDEN_ATTRIBUTES or LOSS_NAME.match(a.name)]
        elif isinstance(node, ast.Attribute):
            # Any `.softmax`, `.nll_loss`, `.MSELoss` ... reaches torch's version:
            # lossutils' own functions are always imported by name, never by
            # attribute (except an object's own, through self/cls).
            base = node.value.id if isinstance(node.value, ast.Name) else None
            if base in {"self", "cls"}:
                continue
            if node.attr in FORBIDDEN_ATTRIBUTES or LOSS_NAME.match(node.attr):
                found.append(f"{where} uses .{node.attr}")
    return found


@pytest.mark.parametrize("path", SOURCES, ids=[str(p.relative_to(ROOT.parent)) for p in SOURCES])
def test_lossutils_never_reaches_torch_losses(path):
    assert _violations(path) == []


def test_the_scan_catches_each_spelling(tmp_path):
    """The rule above must be able to fail: each forbidden spelling is caught."""
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import torch\nimport torch.nn.functional as F\nfrom torch.special import log_softmax\n"
        "F.cross_entropy\ntorch.logsumexp\nx.softmax\ntorch._C._nn.nll_loss\ntorch.nn.MSELoss\n"
    )
    assert len(_violations(bad, root=tmp_path)) >= 7


def _functions():
    import torch

    import lossutils.functional  # noqa: F401

    seen = set()
    stack = [torch.autograd.Function]
    while stack:
        cls = stack.pop()
        for sub in cls.__subclasses__():
            stack.append(sub)
            if sub.__module__.startswith("lossutils"):
                seen.add(sub)
    return sorted(seen, key=lambda c: c.__qualname__)


def test_every_function_writes_its_own_backward():
    functions = _functions()
    assert len(functions) >= 1
    for fn in functions:
        assert "backward" in vars(fn), f"{fn.__qualname__} has no hand-written backward"
        assert fn.__doc__ and fn.__doc__.strip(), (
            f"{fn.__qualname__} has no docstring with its math")
