"""Cases of the regression losses: L1, MSE, Huber, SmoothL1."""

import torch

from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, broadcastable, grid, shapes

from . import Case, Extreme, Rejection


def _pair(draw, options):
    """input and target of one shape, or target broadcasting against input."""
    shape = draw(shapes(0, 3))
    target_shape = draw(broadcastable(shape)) if draw(st.booleans()) else shape
    return (draw.randn(*shape), draw.randn(*target_shape)), {}


def _weighted_pair(draw, options):
    shape = draw(shapes(0, 3))
    return (draw.randn(*shape), draw.randn(*shape)), {"weight": draw.rand(*shape, low=0.1, high=2.0)}


CASES = [
    Case("mse_loss", _pair, grid(reduction=REDUCTIONS) + list(LEGACY), module="MSELoss",
         grad=(0, 1), reference=True),
    # torch 2.13's weight= is functional only: MSELoss has no such argument.
    Case("mse_loss", _weighted_pair, grid(reduction=REDUCTIONS), grad=(0, 1, "weight")),
]

REJECTIONS = [
    Rejection("mse_loss", lambda: ((torch.randn(3), torch.randn(3)), {"reduction": "avg"}),
              match="avg is not a valid value for reduction", id="bad-reduction", module="MSELoss",
              module_kwargs={"reduction": "avg"}),
    Rejection("mse_loss", lambda: ((torch.randn(3), torch.randn(4)), {}),
              match=r"input of shape \(3,\) and target of shape \(4,\)", id="shapes"),
    Rejection("mse_loss", lambda: ((torch.randn(3), torch.randn(3)), {"weight": torch.ones(2)}),
              match=r"weight has shape \(2,\), input has shape \(3,\)", id="weight-shape"),
    Rejection("mse_loss", lambda: ((torch.arange(3), torch.arange(3)), {}),
              match="input must be a floating-point tensor", id="integer-input"),
]

EXTREMES = [
    Extreme("mse_loss", lambda: ((torch.tensor([1e200, -1e200, 0.0], dtype=torch.float64),
                                  torch.zeros(3, dtype=torch.float64)), {}), id="overflow-to-inf"),
    Extreme("mse_loss", lambda: ((torch.empty(0), torch.empty(0)), {}), id="empty-mean-is-nan"),
]
