"""Hypothesis strategies shared by every test: shapes, tensors, option grids.

Case files draw their inputs through these, so a shape rule (how small, how
many dims) is changed in one place.
"""

from __future__ import annotations

import itertools

import torch
from hypothesis import strategies as st

DTYPES = (torch.float64, torch.float32)


def dims(min_value: int = 1, max_value: int = 5):
    return st.integers(min_value, max_value)


def shapes(min_dims: int = 0, max_dims: int = 3, min_side: int = 1, max_side: int = 5):
    """A tensor shape; ``min_side=0`` allows empty tensors."""
    return st.lists(st.integers(min_side, max_side), min_size=min_dims,
                    max_size=max_dims).map(tuple)


def seeds():
    return st.integers(0, 2**31 - 1)


class Draw:
    """Tensor factory for one hypothesis example: a seeded generator plus ``data.draw``.

    Values come from a torch generator seeded by hypothesis, so an example is
    reproducible from its seed while hypothesis shrinks shapes and options.
    """

    def __init__(self, data, dtype: torch.dtype):
        self.data = data
        self.dtype = dtype
        self.gen = torch.Generator().manual_seed(data.draw(seeds(), label="seed"))

    def __call__(self, strategy, label=None):
        return self.data.draw(strategy, label=label)

    def randn(self, *shape, scale: float = 1.0, dtype=None):
        return torch.randn(shape, generator=self.gen, dtype=dtype or self.dtype) * scale

    def rand(self, *shape, low: float = 0.0, high: float = 1.0, dtype=None):
        return low + (high - low) * torch.rand(shape, generator=self.gen, dtype=dtype or self.dtype)

    def randint(self, low: int, high: int, *shape):
        return torch.randint(low, high, shape, generator=self.gen)

    def signs(self, *shape):
        """Targets in {-1, 1} in the working dtype."""
        return self.randint(0, 2, *shape).to(self.dtype) * 2 - 1

    def simplex(self, *shape, dim: int = -1):
        """Rows of probabilities (positive, summing to one along ``dim``)."""
        w = self.rand(*shape, low=0.05, high=1.0)
        return w / w.sum(dim=dim, keepdim=True)


def grid(**axes) -> list[dict]:
    """Every combination of the option values: ``grid(reduction=[...], beta=[...])``."""
    keys = list(axes)
    return [dict(zip(keys, values, strict=True))
            for values in itertools.product(*(axes[k] for k in keys))]


REDUCTIONS = ("none", "mean", "sum")

# The legacy flags and what they mean (torch warns for each).
LEGACY = (
    dict(size_average=False),
    dict(reduce=False),
    dict(size_average=True, reduce=True),
    dict(size_average=False, reduce=True),
)


def broadcastable(shape: tuple):
    """A shape that broadcasts to ``shape``: some sides set to 1, some leading dims dropped."""
    return st.tuples(
        st.integers(0, len(shape)),
        st.lists(st.booleans(), min_size=len(shape), max_size=len(shape))
    ).map(lambda t: tuple(1 if one else n for n, one in zip(shape, t[1], strict=True))[t[0]:])


HALF_DTYPES = (torch.float16, torch.bfloat16)


def cast_floating(tree, dtype: torch.dtype):
    """Every floating-point tensor in ``tree`` (a tuple, list or dict of arguments) in
    ``dtype``; everything else as it is."""
    if isinstance(tree, torch.Tensor):
        return tree.to(dtype) if tree.is_floating_point() else tree
    if isinstance(tree, dict):
        return {k: cast_floating(v, dtype) for k, v in tree.items()}
    if isinstance(tree, (tuple, list)):
        return type(tree)(cast_floating(v, dtype) for v in tree)
    return tree


def batch_of(t: torch.Tensor, size: int = 3) -> torch.Tensor:
    """``size`` samples of ``t`` stacked on a new leading dim, for ``vmap``: floating
    tensors scaled by 0.75^k, 1, 0.75, 0.5625, ... (positive and at most 1: weights stay
    weights and probabilities stay in [0, 1], where binary_cross_entropy checks them); other
    tensors (class indices) repeated."""
    if not t.is_floating_point():
        return torch.stack([t] * size)
    return torch.stack([t * 0.75 ** k for k in range(size)])
