"""How the public namespaces (functional, nn, reference) gather their names."""

from __future__ import annotations

import importlib


def reexport(namespace: dict, families: tuple[str, ...]) -> list[str]:
    """Import each family module of the package whose globals are ``namespace``,
    copy its public names (its ``__all__``) into the package, return them sorted.

    Through importlib, not ``from . import family``: several family modules
    share their name with the function they define (``softmax``,
    ``cross_entropy``, ...), and once re-exported the package attribute is the
    function, as in torch.
    """
    modules = [importlib.import_module(f"{namespace['__name__']}.{family}") for family in families]
    names = {name: getattr(module, name) for module in modules for name in module.__all__}
    namespace.update(names)
    return sorted(names)
