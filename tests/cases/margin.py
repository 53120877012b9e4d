"""Cases of the multi-class margins: ``multi_margin_loss`` and ``multilabel_margin_loss``
(the soft margins, ranking and embedding hinges, triplets and distances have case files
of their own: soft_margin.py, ranking.py, triplet.py, distance.py).

Drawn inputs are continuous, so no hinge sits exactly on its kink and
gradcheck proves each backward; the kinks themselves (a margin met exactly,
NaN scores, zero vectors, anchor = positive, overflow) are fixed inputs in
EXTREMES, compared with torch value for value.
"""

import math

import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, grid

from . import ALL_CAPABILITIES, Case, Extreme, Rejection

F64 = torch.float64


def _t(*values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def _classes(draw, options, weighted=False):
    """(N, C) or (C) scores (or a 0-d score, C = 1) and int64 class indices."""
    kind = draw(st.sampled_from(["batch", "vector", "scalar"]))
    c = 1 if kind == "scalar" else draw(st.integers(1, 5))
    if kind == "batch":
        n = draw(st.integers(1, 4))
        input, target = draw.randn(n, c, scale=1.5), draw.randint(0, c, n)
    else:
        input = draw.randn(c, scale=1.5) if kind == "vector" else draw.randn()
        target = draw.randint(0, c, *draw(st.sampled_from([(), (1,)])))
    kwargs = {"weight": draw.rand(c, low=0.1, high=2.0)} if weighted else {}
    return (input, target), kwargs


def _label_lists(draw, options):
    """(N, C) or (C) scores; each target row lists some classes, then -1, then ignored junk."""
    c = draw(st.integers(1, 5))
    rows = draw(st.sampled_from([None, 1, 2, 4]))
    target = []
    for _ in range(rows or 1):
        k = draw(st.integers(0, c))
        listed = torch.randperm(c, generator=draw.gen)[:k]
        if k >= 2 and draw(st.booleans()):
            listed[1] = listed[0]  # a class listed twice counts twice
        junk = draw.randint(-1, c, c - k - 1) if k < c else torch.empty(0, dtype=torch.long)
        target.append(torch.cat([listed, torch.tensor([-1] if k < c else [], dtype=torch.long),
                                 junk]))
    target = torch.stack(target) if rows else target[0]
    return (draw.randn(*target.shape, scale=1.5), target), {}


def _multi_class_hinge(op):
    """Every capability, and what torch itself cannot do for the multi-class hinges: its
    C++ kernels have no backward of their backward, no forward-mode derivative and no
    float16/bfloat16 version on the CPU."""
    second = f"torch has no derivative of {op}_backward (derivatives.yaml)"
    forward = f"torch has no forward-mode derivative of {op}"
    half = f"torch's CPU kernel of {op} exists for float32 and float64 only"
    return dict(capabilities=ALL_CAPABILITIES, torch_cannot={
        "gradgradcheck": second, "second": second, "jacfwd": forward, "hessian": forward,
        "half:float16": half, "half:bfloat16": half})


CASES = [
    Case("multi_margin_loss", _classes,
         grid(reduction=REDUCTIONS, p=(1, 2), margin=(1.0, 0.3)) + list(LEGACY),
         module="MultiMarginLoss", **_multi_class_hinge("multi_margin_loss")),
    # weight is a constant for torch (it refuses weight.requires_grad), so not in grad.
    Case("multi_margin_loss", lambda d, o: _classes(d, o, weighted=True),
         grid(reduction=REDUCTIONS, p=(1, 2)), module="MultiMarginLoss",
         **_multi_class_hinge("multi_margin_loss")),
    Case("multilabel_margin_loss", _label_lists, grid(reduction=REDUCTIONS) + list(LEGACY),
         module="MultiLabelMarginLoss", **_multi_class_hinge("multilabel_margin_loss")),
]


# --------------------------------------------------------------------------- rejections


def _r(name, build, match, id, module=None, **module_kwargs):
    return Rejection(name, build, match=match, id=id, module=module, module_kwargs=module_kwargs)


_x34, _y34 = lambda: torch.randn(3, 4), lambda: torch.randint(0, 2, (3, 4)).float() * 2 - 1

REJECTIONS = [
    # multi_margin_loss
    _r("multi_margin_loss", lambda: ((_x34(), torch.tensor([0, 1, 2])), {"p": 3}), "got p=3", "p",
       "MultiMarginLoss", p=3),
    _r("multi_margin_loss",
       lambda: ((_x34(), torch.tensor([0, 1, 2])), {"weight": torch.ones(1, 4)}),
       r"weight must be one-dimensional.* got weight of shape \(1, 4\)", "weight-2d",
       "MultiMarginLoss", weight=torch.ones(1, 4)),
    _r("multi_margin_loss", lambda: ((_x34(), torch.tensor([0, 1, 2])), {"weight": torch.ones(3)}),
       r"inconsistent weight size, expected 4 but got \[3\]", "weight-size"),
    _r("multi_margin_loss",
       lambda: ((_x34(), torch.tensor([0, 1, 2])), {"weight": torch.ones(4, dtype=F64)}),
       r"expected scalar type Float but found Double: multi_margin_loss needs weight "
       r"\(torch.float64\) in "
       r"input's dtype \(torch.float32\)", "weight-dtype"),
    _r("multi_margin_loss",
       lambda: ((_x34(), torch.tensor([0, 1, 2])), {"weight": torch.ones(4, requires_grad=True)}),
       "not differentiable with respect to argument 'weight'", "weight-requires-grad"),
    _r("multi_margin_loss", lambda: ((_x34(), torch.tensor([0, 1])), {}),
       r"expected target of shape \(3,\), got \(2,\) for input of shape \(3, 4\)", "target-size"),
    _r("multi_margin_loss", lambda: ((_x34(), torch.tensor([[0], [1], [2]])), {}),
       r"expected target of shape \(3,\), got \(3, 1\)", "target-2d"),
    _r("multi_margin_loss", lambda: ((_x34(), torch.tensor([0, 1, 4])), {}),
       r"class indices in \[0, 4\), got values from 0 to 4", "target-range"),
    _r("multi_margin_loss", lambda: ((_x34(), torch.tensor([0.0, 1.0, 2.0])), {}),
       "expected scalar type Long but found Float: multi_margin_loss needs target to hold class "
       "indices as "
       "int64, got torch.float32", "float-target"),
    _r("multi_margin_loss",
       lambda: ((torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.long)), {}),
       r"got: \[2, 3, 4\] \(multi_margin_loss: input must be \(C\) or \(N, C\)", "3d-input"),
    _r("multi_margin_loss", lambda: ((torch.randn(3, 0), torch.zeros(3, dtype=torch.long)), {}),
       r"got: \[3, 0\]", "no-classes"),
    _r("multi_margin_loss", lambda: ((_x34().half(), torch.tensor([0, 1, 2])), {}),
       "not implemented for 'Half': multi_margin_loss needs a float32 or float64 input, "
       "got torch.float16",
       "half-input"),
    # multilabel_margin_loss
    _r("multilabel_margin_loss", lambda: ((_x34(), torch.zeros(3, 3, dtype=torch.long)), {}),
       r"inconsistent target size: \[3, 3\] for input of size: \[3, 4\]", "target-shape",
       "MultiLabelMarginLoss"),
    _r("multilabel_margin_loss", lambda: ((torch.randn(4), torch.zeros(3, dtype=torch.long)), {}),
       r"inconsistent target size: \[3\] for input of size: \[4\]", "target-shape-1d"),
    _r("multilabel_margin_loss", lambda: ((torch.randn(4), torch.tensor([0, -1, 7, -5])), {}),
       r"indices in \[0, 4\) or -1 padding, got values from -5 to 7", "target-range-after-padding"),
    _r("multilabel_margin_loss", lambda: ((_x34(), torch.zeros(3, 4)), {}),
       "expected scalar type Long but found Float: .*int64, got torch.float32", "float-target"),
    _r("multilabel_margin_loss",
       lambda: ((torch.randn(2, 3, 4), torch.zeros(2, 3, 4, dtype=torch.long)), {}),
       r"got: \[2, 3, 4\]", "3d-input"),
    _r("multilabel_margin_loss",
       lambda: ((torch.ones(3, 4, dtype=torch.long), torch.zeros(3, 4, dtype=torch.long)), {}),
       "not implemented for 'Long': multilabel_margin_loss needs a float32 or float64 input, "
       "got torch.int64",
       "integer-input"),
]


# --------------------------------------------------------------------------- extremes


EXTREMES = [
    # the C++ multi-class kernels test z > 0 strictly, so z = 0 and NaN add nothing
    Extreme("multi_margin_loss",
            lambda: ((_t(0.0, 1.0, 0.25, math.nan).reshape(1, 4), torch.tensor([1])), {}),
            id="on-the-margin-and-nan", options=dict(reduction="none")),
    Extreme("multilabel_margin_loss", lambda: ((_t(0.0, 1.0, math.nan, 0.5).reshape(1, 4),
                                                torch.tensor([[1, -1, 0, 0]])), {}),
            id="on-the-margin-and-nan", options=dict(reduction="none")),
    Extreme("multilabel_margin_loss",
            lambda: ((_t(0.1, 0.2, 0.3).reshape(1, 3), torch.tensor([[0, 0, -1]])), {}),
            id="a-class-listed-twice-counts-twice"),
    # empty batches: only 'none' is meaningful (torch's mean/sum read uninitialised memory)
    Extreme("multi_margin_loss",
            lambda: ((torch.randn(0, 4, dtype=F64), torch.zeros(0, dtype=torch.long)), {}),
            id="empty-batch", options=dict(reduction="none")),
    Extreme("multilabel_margin_loss", lambda: ((torch.randn(0, 4, dtype=F64),
                                                torch.zeros(0, 4, dtype=torch.long)), {}),
            id="empty-batch", options=dict(reduction="none")),
]
