"""Cases of the soft margins: ``soft_margin_loss`` and ``multilabel_soft_margin_loss``.

Overflowing scores and an empty batch are fixed inputs in EXTREMES.
"""

import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, broadcastable, grid, shapes

from . import ALL_CAPABILITIES, Case, Extreme
from ._margins import rejection, t64, x34, y34

# second derivatives, torch.func, autocast and half precision, for every record (issue 16)
CAPABILITIES = ALL_CAPABILITIES


def _soft_margin(draw, options):
    """input of any shape; targets in {1, -1}, maybe broadcasting *to* input."""
    shape = draw(shapes(0, 3))
    target_shape = draw(broadcastable(shape)) if draw(st.booleans()) else shape
    return (draw.randn(*shape, scale=2.0), draw.signs(*target_shape)), {}


def _multilabel(draw, options, weighted=False):
    """(C), (N, C) or (N, d, C) scores; labels in {0, 1} or soft labels in [0, 1]."""
    shape = draw(shapes(1, 3))
    target = draw.randint(0, 2, *shape).to(draw.dtype) if draw(st.booleans()) else draw.rand(*shape)
    # weight is usually per class (C); any shape broadcasting against input works in torch
    weight_shape = draw(st.sampled_from([shape[-1:], shape])) if weighted else None
    kwargs = {"weight": draw.rand(*weight_shape, low=0.1, high=2.0)} if weighted else {}
    return (draw.randn(*shape, scale=2.0), target), kwargs


# torch's soft_margin_loss_backward has a reverse-mode derivative but no forward-mode one
NO_FORWARD_GRADIENT = {"hessian": "torch.func.hessian is forward over reverse: torch defines no "
                                  "forward derivative of soft_margin_loss_backward"}


CASES = [
    Case("soft_margin_loss", _soft_margin, grid(reduction=REDUCTIONS) + list(LEGACY),
         module="SoftMarginLoss", torch_cannot=NO_FORWARD_GRADIENT),
    Case("multilabel_soft_margin_loss", _multilabel, grid(reduction=REDUCTIONS) + list(LEGACY),
         module="MultiLabelSoftMarginLoss", grad=(0, 1)),
    # d/d weight is checked functionally; the module test cannot differentiate a
    # constructor argument (a buffer), hence a second record for the module.
    Case("multilabel_soft_margin_loss", lambda d, o: _multilabel(d, o, weighted=True),
         grid(reduction=REDUCTIONS), grad=(0, 1, "weight")),
    Case("multilabel_soft_margin_loss", lambda d, o: _multilabel(d, o, weighted=True),
         [dict(reduction="sum")], module="MultiLabelSoftMarginLoss", grad=(0, 1), examples=3),
]

REJECTIONS = [
    # soft_margin_loss
    rejection("soft_margin_loss", lambda: ((x34(), y34()), {"reduction": "avg"}),
              "avg is not a valid value for reduction",
              "bad-reduction", "SoftMarginLoss", reduction="avg"),
    rejection("soft_margin_loss", lambda: ((torch.randn(4), y34()), {}),
              r"target of shape \(3, 4\) must broadcast to input's shape \(4,\)",
              "target-widens-input"),
    rejection("soft_margin_loss", lambda: ((torch.randn(3), torch.ones(4)), {}),
              r"input of shape \(3,\), target of shape \(4,\) cannot be broadcast", "shapes"),
    rejection("soft_margin_loss", lambda: ((torch.arange(3), torch.ones(3)), {}),
              "output type Long: soft_margin_loss needs a floating-point input, got torch.int64",
              "integer-input"),
    rejection("soft_margin_loss",
              lambda: ((torch.randn(3), torch.ones(3, requires_grad=True)), {}),
              "not differentiable with respect to argument 'target'", "target-requires-grad"),
    # multilabel_soft_margin_loss
    rejection("multilabel_soft_margin_loss",
              lambda: ((x34(), y34()), {"reduction": "elementwise_mean"}),
              "elementwise_mean is not valid", "elementwise-mean-is-no-alias",
              "MultiLabelSoftMarginLoss", reduction="elementwise_mean"),
    rejection("multilabel_soft_margin_loss",
              lambda: ((torch.tensor(1.0), torch.tensor(1.0)), {}),
              "needs input of shape \\(C\\) or \\(N, C\\), got a 0-d tensor", "scalar-input"),
    rejection("multilabel_soft_margin_loss", lambda: ((x34(), y34()), {"weight": torch.ones(3)}),
              r"input of shape \(3, 4\), target of shape \(3, 4\), weight of shape \(3,\) "
              "cannot be broadcast",
              "weight-size"),
    rejection("multilabel_soft_margin_loss", lambda: ((x34(), torch.ones(2, 4)), {}),
              r"target of shape \(2, 4\) cannot be broadcast", "target-shape"),
    rejection("multilabel_soft_margin_loss",
              lambda: ((torch.ones(3, 4, dtype=torch.long), y34()), {}),
              "input must be a floating-point tensor", "integer-input"),
]

EXTREMES = [
    # soft margins: torch's log1p(exp(-yx)) overflows (inf loss, nan gradient); log-sigmoid does not
    Extreme("soft_margin_loss",
            lambda: ((torch.tensor([1000.0, -1000.0, 30.0]), torch.tensor([-1.0, -1.0, 1.0])), {}),
            id="exp-overflow"),
    Extreme("multilabel_soft_margin_loss",
            lambda: ((t64(1e4, -1e4, 50.0, -50.0).reshape(1, 4),
                      t64(0.0, 1.0, 1.0, 0.0).reshape(1, 4)), {}),
            id="large-scores-stay-finite", grad=(0, 1)),
    Extreme("soft_margin_loss", lambda: ((torch.empty(0), torch.empty(0)), {}),
            id="empty-mean-is-nan"),
]
