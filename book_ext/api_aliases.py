"""Resolve the public spellings of lossutils' names in cross-references.

The API reference documents each object where it is defined
(``lossutils.functional.regression.mse_loss``, next to the autograd Function
that carries its gradient), while readers and docstrings use the public
spelling, ``lossutils.functional.mse_loss`` -- or, inside a docstring of the
same namespace, just ``mse_loss``. This handler maps a reference that Sphinx
could not resolve onto the documented object, so both spellings link.
"""

from __future__ import annotations

import importlib

NAMESPACES = ("lossutils.functional", "lossutils.nn", "lossutils.reference")


def _defining_name(target: str) -> str | None:
    for namespace in NAMESPACES:
        module = importlib.import_module(namespace)
        name = target.removeprefix(namespace + ".")
        head, _, rest = name.partition(".")
        if head in getattr(module, "__all__", ()):
            obj = getattr(module, head)
            full = f"{obj.__module__}.{head}"
            return f"{full}.{rest}" if rest else full
    return None


def _resolve(app, env, node, contnode):
    if node.get("refdomain") != "py":
        return None
    target = node.get("reftarget", "")
    full = _defining_name(target)
    if full is None or full == target:
        return None
    domain = env.get_domain("py")
    return domain.resolve_xref(env, node["refdoc"], app.builder, node["reftype"], full, node,
                               contnode)


def setup(app):
    app.connect("missing-reference", _resolve)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
