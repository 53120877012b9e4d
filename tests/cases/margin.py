"""Cases of the margin family: soft/multi-label/multi-class margins, ranking,
hinge and cosine embeddings, the triplet losses and the two distances they use.

Drawn inputs are continuous, so no hinge sits exactly on its kink and
gradcheck proves each backward; the kinks themselves (a margin met exactly,
NaN scores, zero vectors, anchor = positive, overflow) are fixed inputs in
EXTREMES, compared with torch value for value.
"""

import math

import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, broadcastable, grid, shapes

from . import ALL_CAPABILITIES, Case, Extreme, Rejection

F64 = torch.float64


def _t(*values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def _squash(draw, shape):
    """``shape`` with some sides set to 1 (same number of dims): broadcasts back to ``shape``."""
    ones = draw(st.lists(st.booleans(), min_size=len(shape), max_size=len(shape)))
    return tuple(1 if one else n for n, one in zip(shape, ones, strict=True))


# --------------------------------------------------------------------------- samples


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


def _ranking(draw, options):
    """x1, x2, y of the same number of dims (0 to 2), each side maybe 1 (broadcast)."""
    shape = draw(shapes(0, 2))
    s1, s2, s3 = (_squash(draw, shape) for _ in range(3))
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


def _triplet(draw, options):
    """anchor, positive, negative: (N, D) or (D), one of them maybe broadcasting over a side."""
    n, d = draw(st.integers(1, 4)), draw(st.integers(1, 5))
    shape = (n, d) if draw(st.booleans()) else (d,)
    sides = [shape, shape, shape]
    if draw(st.booleans()):
        sides[draw(st.integers(0, 2))] = _squash(draw, shape)
    return tuple(draw.randn(*s) for s in sides), {}


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


# User distance functions for triplet_margin_with_distance_loss (plain torch ops:
# both libraries call the same one, so this tests the composition around it).
def l1_distance(x, y):
    return (x - y).abs().sum(-1)


def cosine_distance(x, y):
    return 1 - (x * y).sum(-1) / ((x * x).sum(-1) * (y * y).sum(-1)).sqrt()


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
    Case("soft_margin_loss", _soft_margin, grid(reduction=REDUCTIONS) + list(LEGACY),
         module="SoftMarginLoss"),
    Case("multilabel_soft_margin_loss", _multilabel, grid(reduction=REDUCTIONS) + list(LEGACY),
         module="MultiLabelSoftMarginLoss", grad=(0, 1)),
    # d/d weight is checked functionally; the module test cannot differentiate a
    # constructor argument (a buffer), hence a second record for the module.
    Case("multilabel_soft_margin_loss", lambda d, o: _multilabel(d, o, weighted=True),
         grid(reduction=REDUCTIONS), grad=(0, 1, "weight")),
    Case("multilabel_soft_margin_loss", lambda d, o: _multilabel(d, o, weighted=True),
         [dict(reduction="sum")], module="MultiLabelSoftMarginLoss", grad=(0, 1), examples=3),
    Case("margin_ranking_loss", _ranking,
         grid(reduction=REDUCTIONS, margin=(0.0, 0.5)) + list(LEGACY),
         module="MarginRankingLoss", grad=(0, 1, 2)),
    Case("hinge_embedding_loss", _hinge,
         grid(reduction=REDUCTIONS, margin=(1.0, 2.0)) + list(LEGACY), module="HingeEmbeddingLoss"),
    Case("cosine_embedding_loss", _cosine_pair,
         grid(reduction=REDUCTIONS, margin=(0.0, 0.5, -0.5)) + list(LEGACY),
         module="CosineEmbeddingLoss", grad=(0, 1)),
    Case("multi_margin_loss", _classes,
         grid(reduction=REDUCTIONS, p=(1, 2), margin=(1.0, 0.3)) + list(LEGACY),
         module="MultiMarginLoss", **_multi_class_hinge("multi_margin_loss")),
    # weight is a constant for torch (it refuses weight.requires_grad), so not in grad.
    Case("multi_margin_loss", lambda d, o: _classes(d, o, weighted=True),
         grid(reduction=REDUCTIONS, p=(1, 2)), module="MultiMarginLoss",
         **_multi_class_hinge("multi_margin_loss")),
    Case("multilabel_margin_loss", _label_lists, grid(reduction=REDUCTIONS) + list(LEGACY),
         module="MultiLabelMarginLoss", **_multi_class_hinge("multilabel_margin_loss")),
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
    Case("pairwise_distance", _distance_pair,
         grid(p=(2, 1, 3, 1.5, 0.5, math.inf, -math.inf, 0)) + [dict(keepdim=True), dict(eps=0.0),
                                                                dict(eps=0.1, p=1)],
         grad=(0, 1), examples=6),
    # eps only matters below it, where torch's gradient is not the derivative
    # (the clamp is hidden from autograd): that lives in EXTREMES, not under gradcheck.
    Case("cosine_similarity", _similarity_pair, [{}, dict(dim=0), dict(dim=-1)], grad=(0, 1)),
]


# --------------------------------------------------------------------------- rejections


def _r(name, build, match, id, module=None, **module_kwargs):
    return Rejection(name, build, match=match, id=id, module=module, module_kwargs=module_kwargs)


_x34, _y34 = lambda: torch.randn(3, 4), lambda: torch.randint(0, 2, (3, 4)).float() * 2 - 1

REJECTIONS = [
    # soft_margin_loss
    _r("soft_margin_loss", lambda: ((_x34(), _y34()), {"reduction": "avg"}),
       "avg is not a valid value for reduction",
       "bad-reduction", "SoftMarginLoss", reduction="avg"),
    _r("soft_margin_loss", lambda: ((torch.randn(4), _y34()), {}),
       r"target of shape \(3, 4\) must broadcast to input's shape \(4,\)", "target-widens-input"),
    _r("soft_margin_loss", lambda: ((torch.randn(3), torch.ones(4)), {}),
       r"input of shape \(3,\), target of shape \(4,\) cannot be broadcast", "shapes"),
    _r("soft_margin_loss", lambda: ((torch.arange(3), torch.ones(3)), {}),
       "output type Long: soft_margin_loss needs a floating-point input, got torch.int64",
       "integer-input"),
    _r("soft_margin_loss", lambda: ((torch.randn(3), torch.ones(3, requires_grad=True)), {}),
       "not differentiable with respect to argument 'target'", "target-requires-grad"),
    # multilabel_soft_margin_loss
    _r("multilabel_soft_margin_loss", lambda: ((_x34(), _y34()), {"reduction": "elementwise_mean"}),
       "elementwise_mean is not valid", "elementwise-mean-is-no-alias", "MultiLabelSoftMarginLoss",
       reduction="elementwise_mean"),
    _r("multilabel_soft_margin_loss", lambda: ((torch.tensor(1.0), torch.tensor(1.0)), {}),
       "needs input of shape \\(C\\) or \\(N, C\\), got a 0-d tensor", "scalar-input"),
    _r("multilabel_soft_margin_loss", lambda: ((_x34(), _y34()), {"weight": torch.ones(3)}),
       r"input of shape \(3, 4\), target of shape \(3, 4\), weight of shape \(3,\) "
       "cannot be broadcast",
       "weight-size"),
    _r("multilabel_soft_margin_loss", lambda: ((_x34(), torch.ones(2, 4)), {}),
       r"target of shape \(2, 4\) cannot be broadcast", "target-shape"),
    _r("multilabel_soft_margin_loss", lambda: ((torch.ones(3, 4, dtype=torch.long), _y34()), {}),
       "input must be a floating-point tensor", "integer-input"),
    # margin_ranking_loss
    _r("margin_ranking_loss", lambda: ((torch.randn(3), torch.randn(3, 1), torch.ones(3)), {}),
       r"same number of dimensions, got input1 of shape \(3,\), input2 of shape \(3, 1\)", "dims",
       "MarginRankingLoss"),
    _r("margin_ranking_loss", lambda: ((torch.randn(3), torch.randn(4), torch.ones(3)), {}),
       r"input2 of shape \(4,\), target of shape \(3,\) cannot be broadcast", "shapes"),
    _r("margin_ranking_loss",
       lambda: ((torch.randn(3), torch.randn(3), torch.ones(3)), {"reduction": "x"}),
       "x is not a valid value for reduction", "bad-reduction"),
    # hinge_embedding_loss
    _r("hinge_embedding_loss", lambda: ((_x34(), torch.ones(5)), {}),
       r"input of shape \(3, 4\), target of shape \(5,\) cannot be broadcast", "shapes",
       "HingeEmbeddingLoss"),
    _r("hinge_embedding_loss", lambda: ((_x34(), _y34()), {"reduction": "avg"}),
       "avg is not a valid value", "bad-reduction"),
    # cosine_embedding_loss
    _r("cosine_embedding_loss", lambda: ((_x34(), _x34(), torch.ones(3, 1)), {}),
       r"multi-target not supported: cosine_embedding_loss got target of shape \(3, 1\)",
       "2d-target", "CosineEmbeddingLoss"),
    _r("cosine_embedding_loss", lambda: ((torch.randn(4), torch.randn(4), torch.ones(1)), {}),
       r"1D target tensor expects 2D input tensors, but found inputs with sizes \[4\] and \[4\]",
       "1d-inputs-1d-target"),
    _r("cosine_embedding_loss", lambda: ((_x34(), _x34(), torch.tensor(1.0)), {}),
       r"0D target tensor expects 1D input tensors", "2d-inputs-0d-target"),
    _r("cosine_embedding_loss", lambda: ((_x34(), torch.randn(2, 4), torch.ones(3)), {}),
       r"input1 of shape \(3, 4\), input2 of shape \(2, 4\) cannot be broadcast", "batch-mismatch"),
    _r("cosine_embedding_loss", lambda: ((_x34(), torch.randn(3, 5), torch.ones(3)), {}),
       r"input1 of shape \(3, 4\), input2 of shape \(3, 5\) cannot be broadcast", "dim-mismatch"),
    _r("cosine_embedding_loss", lambda: ((_x34(), _x34(), torch.ones(2)), {}),
       r"cosines of shape \(3,\), target of shape \(2,\) cannot be broadcast", "target-size"),
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
    # triplet_margin_loss
    _r("triplet_margin_loss", lambda: ((_x34(), _x34(), _x34()), {"margin": 0.0}),
       "margin must be greater than 0, got 0.0", "margin", "TripletMarginLoss", margin=0.0),
    _r("triplet_margin_loss", lambda: ((_x34(), torch.randn(4), _x34()), {}),
       r"anchor 2D, positive 1D, and negative 2D inputs \(anchor of shape \(3, 4\), "
       r"positive of shape \(4,\)",
       "dims", "TripletMarginLoss"),
    _r("triplet_margin_loss", lambda: ((_x34(), torch.randn(2, 4), _x34()), {}),
       r"positive of shape \(2, 4\), negative of shape \(3, 4\) cannot be broadcast",
       "batch-mismatch"),
    _r("triplet_margin_loss", lambda: ((_x34(), _x34(), _x34()), {"reduction": "avg"}),
       "avg is not a valid value", "bad-reduction"),
    # triplet_margin_with_distance_loss
    _r("triplet_margin_with_distance_loss",
       lambda: ((_x34(), _x34(), _x34()), {"reduction": "elementwise_mean"}),
       "elementwise_mean is not a valid value for reduction", "elementwise-mean-is-no-alias",
       "TripletMarginWithDistanceLoss", reduction="elementwise_mean"),
    _r("triplet_margin_with_distance_loss", lambda: ((_x34(), _x34(), _x34()), {"margin": -1.0}),
       "margin must be greater than 0, got -1.0", "margin", "TripletMarginWithDistanceLoss",
       margin=-1.0),
    _r("triplet_margin_with_distance_loss", lambda: ((_x34(), torch.randn(4), _x34()), {}),
       "anchor 2D, positive 1D, and negative 2D inputs", "dims"),
    # the distances
    _r("pairwise_distance", lambda: ((_x34(), torch.randn(3, 5)), {}),
       r"x1 of shape \(3, 4\), x2 of shape \(3, 5\) cannot be broadcast", "shapes"),
    _r("cosine_similarity", lambda: ((_x34(), torch.randn(3, 5)), {}),
       r"x1 of shape \(3, 4\), x2 of shape \(3, 5\) cannot be broadcast", "shapes"),
    _r("cosine_similarity",
       lambda: ((torch.ones(3, 4, dtype=torch.long), torch.ones(3, 4, dtype=torch.long)), {}),
       "must have a floating-point common dtype, got torch.int64", "integer-inputs"),
    _r("cosine_similarity", lambda: ((torch.randn(4), torch.randn(4)), {}),
       "Dimension out of range", "dim-range"),
    _r("pairwise_distance", lambda: ((torch.randn(3, 0), torch.randn(3, 0)), {"p": math.inf}),
       r"inf norm of an empty dimension is undefined .* shape \(3, 0\)", "inf-norm-of-nothing"),
]


# --------------------------------------------------------------------------- extremes


def _pair_with_zero_rows():
    """Row 0 of input1 is the zero vector; row 2 of both is zero."""
    x1 = torch.tensor([[0.0, 0.0, 0.0], [1.0, -2.0, 0.5], [0.0, 0.0, 0.0]], dtype=F64)
    x2 = torch.tensor([[0.3, -1.2, 2.0], [0.0, 0.0, 0.0], [0.0, 0.0, 0.0]], dtype=F64)
    return x1, x2


_A = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]], dtype=F64)
_N = torch.tensor([[1.0, 1.0, -1.0], [0.0, 2.0, 1.0]], dtype=F64)
_BIG = torch.tensor([[1e200, -1e200, 3.0]], dtype=F64)

EXTREMES = [
    # cosine_embedding_loss: a zero vector has cos = 0 and, through 1e-12, a finite ~1e6
    # gradient; tight tolerances, since eps = 1e-12 in float64 instead of torch's float32
    # 1e-12 is off by only 2e-9 relative.
    *[Extreme("cosine_embedding_loss", lambda: ((*_pair_with_zero_rows(), _t(1.0, -1.0, 1.0)), {}),
              id=f"zero-vectors-margin={m}", options=dict(margin=m, reduction="sum"), grad=(0, 1),
              rtol=1e-12, atol=1e-12)
      for m in (0.0, -0.5)],
    Extreme("cosine_embedding_loss", lambda: ((_BIG, _BIG, _t(1.0)), {}), id="overflow-is-nan",
            grad=(0, 1)),
    Extreme("cosine_embedding_loss", lambda: ((_BIG * 1e-50, _BIG * 1e-50, _t(-1.0)), {}),
            id="product-of-norms-overflows", grad=(0, 1)),
    # cosine_similarity: a norm below eps is clamped, but its gradient is not
    Extreme("cosine_similarity",
            lambda: ((torch.tensor([[0.0, 0.0, 0.0], [1e-9, 0.0, 0.0]], dtype=F64),
                                           torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]],
                                                        dtype=F64)), {}),
            id="norms-below-eps", grad=(0, 1)),
    Extreme("cosine_similarity", lambda: ((_A, _N), {}), id="every-norm-below-eps",
            options=dict(eps=5.0), grad=(0, 1)),
    Extreme("cosine_similarity", lambda: ((_BIG, _BIG), {}), id="huge-norms", grad=(0, 1)),
    # triplet: anchor = positive, distance eps * sqrt(D) (or exactly 0 with eps=0); with swap,
    # d(a,n) = d(p,n) ties
    *[Extreme("triplet_margin_loss", lambda: ((_A, _A.clone(), _N), {}),
              id=f"anchor-is-positive-{label}",
              options=dict(margin=10.0, reduction="sum", **o), grad=(0, 1, 2))
      for label, o in [("p2", {}), ("p2-swap", dict(swap=True)), ("p2-eps0", dict(eps=0.0)),
                       ("p2-eps0-swap", dict(eps=0.0, swap=True)),
                       ("p1-eps0-swap", dict(p=1, eps=0.0, swap=True)),
                       ("pinf-swap", dict(p=math.inf, swap=True))]],
    Extreme("triplet_margin_with_distance_loss", lambda: ((_A, _A.clone(), _N), {}),
            id="anchor-is-positive-swap",
            options=dict(margin=10.0, swap=True, reduction="none"), grad=(0, 1, 2)),
    Extreme("triplet_margin_loss", lambda: ((_BIG, torch.zeros(1, 3, dtype=F64), _BIG * 0.5), {}),
            id="infinite-distances-are-nan", grad=(0, 1, 2)),
    Extreme("pairwise_distance", lambda: ((_A, _A.clone()), {}), id="equal-rows-eps0",
            options=dict(eps=0.0), grad=(0, 1)),
    Extreme("pairwise_distance",
            lambda: ((torch.tensor([[1e20, -1e20, 3.0]]), torch.zeros(1, 3)), {}),
            id="float32-overflow-p3", options=dict(p=3), grad=(0, 1)),
    # soft margins: torch's log1p(exp(-yx)) overflows (inf loss, nan gradient); log-sigmoid does not
    Extreme("soft_margin_loss",
            lambda: ((torch.tensor([1000.0, -1000.0, 30.0]), torch.tensor([-1.0, -1.0, 1.0])), {}),
            id="exp-overflow"),
    Extreme("multilabel_soft_margin_loss", lambda: ((_t(1e4, -1e4, 50.0, -50.0).reshape(1, 4),
                                                     _t(0.0, 1.0, 1.0, 0.0).reshape(1, 4)), {}),
            id="large-scores-stay-finite", grad=(0, 1)),
    Extreme("soft_margin_loss", lambda: ((torch.empty(0), torch.empty(0)), {}),
            id="empty-mean-is-nan"),
    # hinges exactly on the margin: clamp_min passes the gradient at u = 0 ...
    Extreme("margin_ranking_loss", lambda: ((_t(1.0, 2.0), _t(1.0, 1.0), _t(1.0, -1.0)), {}),
            id="on-the-margin", options=dict(reduction="sum"), grad=(0, 1, 2)),
    Extreme("triplet_margin_loss", lambda: ((_t(0.0, 0.0).reshape(2, 1), _t(1.0, 0.5).reshape(2, 1),
                                             _t(2.0, 3.0).reshape(2, 1)), {}),
            id="on-the-margin", options=dict(p=1, eps=0.0, reduction="sum"), grad=(0, 1, 2)),
    Extreme("hinge_embedding_loss",
            lambda: ((_t(1.0, 0.5, math.nan, 2.0), _t(-1.0, -1.0, -1.0, 0.0)), {}),
            id="on-the-margin-nan-and-target-0", options=dict(reduction="none")),
    # ... the C++ multi-class kernels test z > 0 strictly, so z = 0 and NaN add nothing
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
