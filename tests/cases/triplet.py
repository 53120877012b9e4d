"""Cases of the triplet losses: ``triplet_margin_loss`` and
``triplet_margin_with_distance_loss`` (with torch's distance, or a caller's own).

Drawn inputs are continuous, so no hinge sits on its kink; anchor = positive
(a tie under ``swap``), a hinge met exactly and infinite distances are fixed
inputs in EXTREMES.
"""

import math

import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, grid

from . import ALL_CAPABILITIES, Case, Extreme
from ._margins import BIG, F64, A, N, rejection, squash, t64, x34

# second derivatives, torch.func, autocast and half precision: all converted (issue 16)
CAPABILITIES = ALL_CAPABILITIES


def _triplet(draw, options):
    """anchor, positive, negative: (N, D) or (D), one of them maybe broadcasting over a side."""
    n, d = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    shape = (n, d) if draw(st.booleans()) else (d,)
    sides = [shape, shape, shape]
    if draw(st.booleans()):
        sides[draw(st.integers(0, 2))] = squash(draw, shape)
    return tuple(draw.randn(*s) for s in sides), {}


# User distance functions for triplet_margin_with_distance_loss (plain torch ops:
# both libraries call the same one, so this tests the composition around it).
def l1_distance(x, y):
    return (x - y).abs().sum(-1)


def cosine_distance(x, y):
    return 1 - (x * y).sum(-1) / ((x * x).sum(-1) * (y * y).sum(-1)).sqrt()


CASES = [
    Case("triplet_margin_loss", _triplet,
         grid(reduction=REDUCTIONS, swap=(False, True)) + grid(p=(1, 3, 0.5, math.inf, 0),
                                                               swap=(False, True))
         + [dict(margin=0.3, eps=0.0), dict(margin=2.0, eps=1e-3, swap=True)] + list(LEGACY),
         module="TripletMarginLoss", grad=(0, 1, 2), examples=6),
    Case("triplet_margin_with_distance_loss", _triplet,
         grid(distance_function=(None, l1_distance, cosine_distance), swap=(False, True),
              reduction=REDUCTIONS)
         + [dict(margin=0.25, swap=True)],
         module="TripletMarginWithDistanceLoss", grad=(0, 1, 2), examples=5),
]

REJECTIONS = [
    # triplet_margin_loss
    rejection("triplet_margin_loss", lambda: ((x34(), x34(), x34()), {"margin": 0.0}),
              "margin must be greater than 0, got 0.0", "margin", "TripletMarginLoss", margin=0.0),
    rejection("triplet_margin_loss", lambda: ((x34(), torch.randn(4), x34()), {}),
              r"anchor 2D, positive 1D, and negative 2D inputs \(anchor of shape \(3, 4\), "
              r"positive of shape \(4,\)",
              "dims", "TripletMarginLoss"),
    rejection("triplet_margin_loss", lambda: ((x34(), torch.randn(2, 4), x34()), {}),
              r"positive of shape \(2, 4\), negative of shape \(3, 4\) cannot be broadcast",
              "batch-mismatch"),
    rejection("triplet_margin_loss", lambda: ((x34(), x34(), x34()), {"reduction": "avg"}),
              "avg is not a valid value", "bad-reduction"),
    # triplet_margin_with_distance_loss
    rejection("triplet_margin_with_distance_loss",
              lambda: ((x34(), x34(), x34()), {"reduction": "elementwise_mean"}),
              "elementwise_mean is not a valid value for reduction", "elementwise-mean-is-no-alias",
              "TripletMarginWithDistanceLoss", reduction="elementwise_mean"),
    rejection("triplet_margin_with_distance_loss",
              lambda: ((x34(), x34(), x34()), {"margin": -1.0}),
              "margin must be greater than 0, got -1.0", "margin", "TripletMarginWithDistanceLoss",
              margin=-1.0),
    rejection("triplet_margin_with_distance_loss", lambda: ((x34(), torch.randn(4), x34()), {}),
              "anchor 2D, positive 1D, and negative 2D inputs", "dims"),
]

EXTREMES = [
    # triplet: anchor = positive, distance eps * sqrt(D) (or exactly 0 with eps=0); with swap,
    # d(a,n) = d(p,n) ties
    *[Extreme("triplet_margin_loss", lambda: ((A, A.clone(), N), {}),
              id=f"anchor-is-positive-{label}",
              options=dict(margin=10.0, reduction="sum", **o), grad=(0, 1, 2))
      for label, o in [("p2", {}), ("p2-swap", dict(swap=True)), ("p2-eps0", dict(eps=0.0)),
                       ("p2-eps0-swap", dict(eps=0.0, swap=True)),
                       ("p1-eps0-swap", dict(p=1, eps=0.0, swap=True)),
                       ("pinf-swap", dict(p=math.inf, swap=True))]],
    Extreme("triplet_margin_with_distance_loss", lambda: ((A, A.clone(), N), {}),
            id="anchor-is-positive-swap",
            options=dict(margin=10.0, swap=True, reduction="none"), grad=(0, 1, 2)),
    Extreme("triplet_margin_loss", lambda: ((BIG, torch.zeros(1, 3, dtype=F64), BIG * 0.5), {}),
            id="infinite-distances-are-nan", grad=(0, 1, 2)),
    Extreme("triplet_margin_loss",
            lambda: ((t64(0.0, 0.0).reshape(2, 1), t64(1.0, 0.5).reshape(2, 1),
                      t64(2.0, 3.0).reshape(2, 1)), {}),
            id="on-the-margin", options=dict(p=1, eps=0.0, reduction="sum"), grad=(0, 1, 2)),
]
