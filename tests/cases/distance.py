"""Cases of the two distances, ``pairwise_distance`` and ``cosine_similarity``.

Drawn inputs are continuous; the hard points (equal rows with ``eps=0``, norms
below ``eps``, overflowing norms) are fixed inputs in EXTREMES, compared with
torch value for value.
"""

import math

import torch
from hypothesis import strategies as st

from strategies import broadcastable, grid, shapes

from . import ALL_CAPABILITIES, Case, Extreme
from ._margins import BIG, F64, A, N, rejection, x34

# second derivatives, torch.func, autocast and half precision: all converted (issue 16)
CAPABILITIES = ALL_CAPABILITIES


def _distance_pair(draw, options):
    """x1, x2 of 1 to 3 dims; either may broadcast against the other (a 0-d one included)."""
    shape = draw(shapes(1, 3))
    other = draw(broadcastable(shape))
    return ((draw.randn(*shape), draw.randn(*other)) if draw(st.booleans())
            else (draw.randn(*other), draw.randn(*shape))), {}


def _similarity_pair(draw, options):
    """Two tensors broadcasting to at least ``dim + 1`` dims (or 0-d with dim=0)."""
    dims_needed = 2 if options.get("dim", 1) == 1 else 1
    shape = draw(shapes(dims_needed, 3))
    return (draw.randn(*shape), draw.randn(*draw(broadcastable(shape)))), {}



CASES = [
    Case("pairwise_distance", _distance_pair,
         grid(p=(2, 1, 3, 1.5, 0.5, math.inf, -math.inf, 0)) + [dict(keepdim=True), dict(eps=0.0),
                                                                dict(eps=0.1, p=1)],
         grad=(0, 1), examples=6),
    # eps only matters below it, where torch's gradient is not the derivative
    # (the clamp is hidden from autograd): that lives in EXTREMES, not under gradcheck.
    Case("cosine_similarity", _similarity_pair, [{}, dict(dim=0), dict(dim=-1)], grad=(0, 1)),
]

REJECTIONS = [
    rejection("pairwise_distance", lambda: ((x34(), torch.randn(3, 5)), {}),
              r"x1 of shape \(3, 4\), x2 of shape \(3, 5\) cannot be broadcast", "shapes"),
    rejection("cosine_similarity", lambda: ((x34(), torch.randn(3, 5)), {}),
              r"x1 of shape \(3, 4\), x2 of shape \(3, 5\) cannot be broadcast", "shapes"),
    rejection("cosine_similarity",
              lambda: ((torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.long)),
                       {}),
              "must have a floating-point common dtype, got torch.int64", "integer-inputs"),
    rejection("cosine_similarity", lambda: ((torch.randn(4), torch.randn(4)), {}),
              "Dimension out of range", "dim-range"),
    rejection("pairwise_distance",
              lambda: ((torch.randn(3, 0), torch.randn(3, 0)), {"p": math.inf}),
              r"inf norm of an empty dimension is undefined .* shape \(3, 0\)",
              "inf-norm-of-nothing"),
]

EXTREMES = [
    # cosine_similarity: a norm below eps is clamped, but its gradient is not
    Extreme("cosine_similarity",
            lambda: ((torch.tensor([[0.0, 0.0, 0.0], [1e-9, 0.0, 0.0]], dtype=F64),
                                           torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]],
                                                        dtype=F64)), {}),
            id="norms-below-eps", grad=(0, 1)),
    Extreme("cosine_similarity", lambda: ((A, N), {}), id="every-norm-below-eps",
            options=dict(eps=5.0), grad=(0, 1)),
    Extreme("cosine_similarity", lambda: ((BIG, BIG), {}), id="huge-norms", grad=(0, 1)),
    Extreme("pairwise_distance", lambda: ((A, A.clone()), {}), id="equal-rows-eps0",
            options=dict(eps=0.0), grad=(0, 1)),
    Extreme("pairwise_distance",
            lambda: ((torch.tensor([[1e20, -1e20, 3.0]]), torch.zeros(1, 3)), {}),
            id="float32-overflow-p3", options=dict(p=3), grad=(0, 1)),
]
