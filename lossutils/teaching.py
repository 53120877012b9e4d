"""Small helpers the course pages share: source listings, a difference, the lecture's MLP.

Nothing here computes a loss. The pages use these helpers so that each of them
runs on its own (in a fresh kernel, in Binder or Colab) without repeating the
same ten lines, and so that a listing of library code shows one function, not
a file, and fails loudly when the code it quotes has changed.
"""

from __future__ import annotations

import inspect
import textwrap

import numpy as np
import torch
from torch import nn

__all__ = ["MLP", "Listing", "max_diff", "require_quoted", "show_source"]


class Listing:
    """Source code that renders highlighted in a notebook and as plain text elsewhere.

    Defined in :doc:`/chapters/01_module`.
    """

    def __init__(self, code: str, name: str = "") -> None:
        self.code, self.name = code, name

    def _repr_markdown_(self) -> str:
        return f"```python\n{self.code}```"

    def __repr__(self) -> str:
        return self.code

    def __str__(self) -> str:
        return self.code


def show_source(obj, start: str | None = None, stop: str | None = None) -> Listing:
    """The source of ``obj``, or the excerpt from the line containing ``start``
    through the first later line containing ``stop``.

    A page that quotes library code shows one function (or a few lines of it);
    when the markers are no longer in the source the page fails to build,
    instead of showing code the text no longer describes.

    Defined in :doc:`/chapters/01_module`; excerpts from :doc:`/chapters/02_2_function` on.

    Raises:
        ValueError: ``start`` or ``stop`` is not in the source of ``obj``.
    """
    lines = inspect.getsource(obj).splitlines(keepends=True)
    name = getattr(obj, "__qualname__", repr(obj))
    first, last = 0, len(lines) - 1
    if start is not None:
        first = next((i for i, line in enumerate(lines) if start in line), None)
        if first is None:
            raise ValueError(f"show_source: {start!r} is not in the source of {name}")
    if stop is not None:
        last = next((i for i in range(first, len(lines)) if stop in lines[i]), None)
        if last is None:
            raise ValueError(f"show_source: {stop!r} is not in the source of {name} "
                             f"after {start!r}")
    return Listing(textwrap.dedent("".join(lines[first:last + 1])), name)


def require_quoted(objects, *quoted: str) -> None:
    """Fail unless every string in ``quoted`` occurs in the source of ``objects``.

    The text of a page quotes lines of library code; this guard makes the build
    fail when the library drifts from the text.

    Defined in :doc:`/chapters/02_2_function`.

    Raises:
        AssertionError: naming each quoted fragment that is missing.
    """
    objects = objects if isinstance(objects, (list, tuple)) else [objects]
    source = "".join(inspect.getsource(obj) for obj in objects)
    missing = [q for q in quoted if q not in source]
    names = ", ".join(getattr(obj, "__qualname__", repr(obj)) for obj in objects)
    assert not missing, f"quoted lines no longer in the source of {names}: {missing}"


def max_diff(a, b) -> float:
    """Largest absolute difference of two tensors or arrays, as a float.

    Defined in :doc:`/chapters/03_1_backward`.
    """
    a = a.detach().cpu().numpy() if torch.is_tensor(a) else np.asarray(a)
    b = b.detach().cpu().numpy() if torch.is_tensor(b) else np.asarray(b)
    return float(np.max(np.abs(a.astype(np.float64) - b.astype(np.float64))))


class MLP(nn.Module):
    """The lecture's 784 -> 256 -> 10 perceptron, He-initialised with zero biases.

    ``init_weight`` / ``init_bias`` pick the initialisers ("he", "zero"); any
    other value keeps ``nn.Linear``'s defaults.

    Defined in :doc:`/chapters/01_module`.
    """

    def __init__(self, input_features=784, hidden_size=256, output_features=10,
                 init_weight="he", init_bias="zero"):
        super().__init__()              # first: it creates the registries
        self.init_weight = init_weight  # a str: stays a plain attribute
        self.init_bias = init_bias
        self.linear1 = nn.Linear(input_features, hidden_size)  # a Module: registered
        self.linear2 = nn.Linear(hidden_size, output_features)
        self.init_params()

    def init_params(self):
        for layer in (self.linear1, self.linear2):
            if self.init_weight == "he":
                nn.init.kaiming_normal_(layer.weight, nonlinearity="relu")
            if self.init_bias == "zero":
                nn.init.zeros_(layer.bias)

    def forward(self, x):
        # ReLU is applied as a function, not stored as a child module:
        # it has no state and never shows up in the module tree.
        return self.linear2(torch.relu(self.linear1(x)))
