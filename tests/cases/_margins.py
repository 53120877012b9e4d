"""Small pieces the margin-family case files share (distance, triplet, ranking,
soft_margin): fixed tensors, a shape that broadcasts back, and the Rejection shorthand."""

import torch
from hypothesis import strategies as st

from . import Rejection

F64 = torch.float64


def t64(*values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def squash(draw, shape):
    """``shape`` with some sides set to 1 (same number of dims): broadcasts back to ``shape``."""
    ones = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    return tuple(1 if one else n for n, one in zip(shape, ones, strict=True))


def rejection(name, build, match, id, module=None, **module_kwargs):
    return Rejection(name, build, match=match, id=id, module=module, module_kwargs=module_kwargs)


def x34():
    return torch.randn(3, 4)


def y34():
    """Targets in {1, -1}."""
    return torch.randint(0, 2, (3, 4)).float() * 2 - 1


# Embeddings for the fixed inputs: two rows of three features, and a row whose norm overflows.
A = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]], dtype=F64)
N = torch.tensor([[1.0, 1.0, -1.0], [0.0, 2.0, 1.0]], dtype=F64)
BIG = torch.tensor([[1e200, -1e200, 3.0]], dtype=F64)
