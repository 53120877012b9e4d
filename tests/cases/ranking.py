"""Cases of the ranking and embedding hinges: ``margin_ranking_loss``,
``hinge_embedding_loss`` and ``cosine_embedding_loss``.

Drawn inputs are continuous, so no hinge sits on its kink; a margin met
exactly, NaN distances, zero vectors and overflowing norms are fixed inputs
in EXTREMES.
"""

import math

import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, broadcastable, grid, shapes

from . import ALL_CAPABILITIES, Case, Extreme
from ._margins import BIG, F64, rejection, squash, t64, x34, y34

# second derivatives, torch.func, autocast and half precision: all converted (issue 16)
CAPABILITIES = ALL_CAPABILITIES


def _ranking(draw, options):
    """x1, x2, y of the same number of dims (0 to 2), each side maybe 1 (broadcast)."""
    shape = draw(shapes(0, 2))
    s1, s2, s3 = (squash(draw, shape) for _ in range(3))
    return (draw.randn(*s1), draw.randn(*s2), draw.signs(*s3)), {}


def _hinge(draw, options):
    """distances >= 0 and targets in {1, -1} (sometimes also 0: torch then adds both terms);
    either may broadcast against the other."""
    shape = draw(shapes(0, 3))
    small = draw(broadcastable(shape)) if draw(st.booleans()) else shape
    input_shape, target_shape = (shape, small) if draw(st.booleans()) else (small, shape)
    target = (draw.randint(-1, 2, *target_shape).to(draw.dtype) if draw(st.booleans())
              else draw.signs(*target_shape))
    return (draw.rand(*input_shape, high=3.0), target), {}


def _cosine_pair(draw, options):
    """(N, D) pairs with an (N) target, maybe one side (1, D); or one (D) pair with a 0-d target."""
    n, d = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    if draw(st.booleans()):
        return (draw.randn(d), draw.randn(d), draw.signs()), {}
    s1, s2 = (((1, d) if draw(st.booleans()) else (n, d)) for _ in range(2))
    t = draw(st.sampled_from([n, 1]))  # one target for the whole batch broadcasts too
    target = draw.randint(-1, 2, t).to(draw.dtype) if draw(st.booleans()) else draw.signs(t)
    return (draw.randn(*s1), draw.randn(*s2), target), {}


CASES = [
    Case("margin_ranking_loss", _ranking,
         grid(reduction=REDUCTIONS, margin=(0.0, 0.5)) + list(LEGACY),
         module="MarginRankingLoss", grad=(0, 1, 2)),
    Case("hinge_embedding_loss", _hinge,
         grid(reduction=REDUCTIONS, margin=(1.0, 2.0)) + list(LEGACY),
         module="HingeEmbeddingLoss"),
    Case("cosine_embedding_loss", _cosine_pair,
         grid(reduction=REDUCTIONS, margin=(0.0, 0.5, -0.5)) + list(LEGACY),
         module="CosineEmbeddingLoss", grad=(0, 1)),
]

REJECTIONS = [
    # margin_ranking_loss
    rejection("margin_ranking_loss",
              lambda: ((torch.randn(3), torch.randn(3, 1), torch.ones(3)), {}),
              r"same number of dimensions, got input1 of shape \(3,\), input2 of shape \(3, 1\)",
              "dims", "MarginRankingLoss"),
    rejection("margin_ranking_loss", lambda: ((torch.randn(3), torch.randn(4), torch.ones(3)), {}),
              r"input2 of shape \(4,\), target of shape \(3,\) cannot be broadcast", "shapes"),
    rejection("margin_ranking_loss",
              lambda: ((torch.randn(3), torch.randn(3), torch.ones(3)), {"reduction": "x"}),
              "x is not a valid value for reduction", "bad-reduction"),
    # hinge_embedding_loss
    rejection("hinge_embedding_loss", lambda: ((x34(), torch.ones(5)), {}),
              r"input of shape \(3, 4\), target of shape \(5,\) cannot be broadcast", "shapes",
              "HingeEmbeddingLoss"),
    rejection("hinge_embedding_loss", lambda: ((x34(), y34()), {"reduction": "avg"}),
              "avg is not a valid value", "bad-reduction"),
    # cosine_embedding_loss
    rejection("cosine_embedding_loss", lambda: ((x34(), x34(), torch.ones(3, 1)), {}),
              r"multi-target not supported: cosine_embedding_loss got target of shape \(3, 1\)",
              "2d-target", "CosineEmbeddingLoss"),
    rejection("cosine_embedding_loss",
              lambda: ((torch.randn(4), torch.randn(4), torch.ones(1)), {}),
              r"1D target tensor expects 2D input tensors, but found inputs with sizes \[4\] and "
              r"\[4\]", "1d-inputs-1d-target"),
    rejection("cosine_embedding_loss", lambda: ((x34(), x34(), torch.tensor(1.0)), {}),
              r"0D target tensor expects 1D input tensors", "2d-inputs-0d-target"),
    rejection("cosine_embedding_loss", lambda: ((x34(), torch.randn(2, 4), torch.ones(3)), {}),
              r"input1 of shape \(3, 4\), input2 of shape \(2, 4\) cannot be broadcast",
              "batch-mismatch"),
    rejection("cosine_embedding_loss", lambda: ((x34(), torch.randn(3, 5), torch.ones(3)), {}),
              r"input1 of shape \(3, 4\), input2 of shape \(3, 5\) cannot be broadcast",
              "dim-mismatch"),
    rejection("cosine_embedding_loss", lambda: ((x34(), x34(), torch.ones(2)), {}),
              r"cosines of shape \(3,\), target of shape \(2,\) cannot be broadcast",
              "target-size"),
]


def _pair_with_zero_rows():
    """Row 0 of input1 is the zero vector; row 2 of both is zero."""
    x1 = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [0.0, 0.0, 0.0]], dtype=F64)
    x2 = torch.tensor([[0.3, -1.2, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=F64)
    return x1, x2


EXTREMES = [
    # cosine_embedding_loss: a zero vector has cos = 0 and, through 1e-12, a finite ~1e6
    # gradient; tight tolerances, since eps = 1e-12 in float64 instead of torch's float32
    # 1e-12 is off by only 2e-9 relative.
    *[Extreme("cosine_embedding_loss",
              lambda: ((*_pair_with_zero_rows(), t64(1.0, -1.0, 1.0)), {}),
              id=f"zero-vectors-margin={m}", options=dict(margin=m, reduction="sum"), grad=(0, 1),
              rtol=1e-12, atol=1e-12)
      for m in (0.0, -0.5)],
    Extreme("cosine_embedding_loss", lambda: ((BIG, BIG, t64(1.0)), {}), id="overflow-is-nan",
            grad=(0, 1)),
    Extreme("cosine_embedding_loss", lambda: ((BIG * 1e-50, BIG * 1e-50, t64(-1.0)), {}),
            id="product-of-norms-overflows", grad=(0, 1)),
    Extreme("margin_ranking_loss", lambda: ((t64(1.0, 2.0), t64(1.0, 1.0), t64(1.0, -1.0)), {}),
            id="on-the-margin", options=dict(reduction="sum"), grad=(0, 1, 2)),
    Extreme("hinge_embedding_loss",
            lambda: ((t64(1.0, 0.5, math.nan, 2.0), t64(-1.0, -1.0, -1.0, 0.0)), {}),
            id="on-the-margin-nan-and-target-0", options=dict(reduction="none")),
]
