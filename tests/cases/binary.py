"""Cases of the binary family: BCE on probabilities and on logits.

torch differentiates both w.r.t. input and target, and neither w.r.t.
``weight`` or ``pos_weight``: a weight that requires grad is an error (see
REJECTIONS), so no case differentiates one.
"""

import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, broadcastable, grid, shapes

from . import ALL_CAPABILITIES, COMPILE, Case, Extreme, Rejection

# second derivatives, torch.func, autocast and half precision (issue 16); the records named
# COMPILE also compile with torch.compile(fullgraph=True) (not the legacy flags: their
# deprecation warning is a warnings.warn, which Dynamo cannot trace)
CAPABILITIES = ALL_CAPABILITIES

F64 = torch.float64
REDUCTION = grid(reduction=REDUCTIONS)


def _targets(draw, shape):
    """Soft targets in [0, 1], or hard ones in {0, 1}."""
    if draw(st.booleans()):
        return draw.rand(*shape)
    return draw.randint(0, 2, *shape).to(draw.dtype)


def _probabilities(draw, options):
    """Soft targets strictly inside (0, 1): gradcheck perturbs them and BCE rejects 1 + eps."""
    shape = draw(shapes(0, 3))
    return (draw.rand(*shape, low=0.02, high=0.98), draw.rand(*shape, low=0.01, high=0.99)), {}


def _hard_probabilities(draw, options):
    """Targets in {0, 1}; only the input is differentiated (see ``_probabilities``)."""
    shape = draw(shapes(0, 3))
    return (draw.rand(*shape, low=0.02, high=0.98), draw.randint(0, 2, *shape).to(draw.dtype)), {}


def _weighted_probabilities(draw, options):
    """``weight`` of any shape that broadcasts to the target's."""
    (x, y), _ = _probabilities(draw, options)
    return (x, y), {"weight": draw.rand(*draw(broadcastable(x.shape)), low=0.1, high=2.0)}


def _logits(draw, options, weight=False, pos_weight=False, soft=False):
    shape = draw(shapes(0, 3))
    target = draw.randn(*shape, scale=2.0) if soft else _targets(draw, shape)
    kwargs = {}
    if weight:
        kwargs["weight"] = draw.rand(*draw(broadcastable(shape)), low=0.1, high=2.0)
    if pos_weight:
        # (C,) along the last dim is the usual form; any shape broadcasting to the input's works
        kwargs["pos_weight"] = draw.rand(*draw(broadcastable(shape)), low=0.2, high=4.0)
    return (draw.randn(*shape, scale=3.0), target), kwargs


def _logits_weighted(draw, options):
    return _logits(draw, options, weight=True)


def _logits_pos_weighted(draw, options):
    return _logits(draw, options, pos_weight=True)


def _logits_both(draw, options):
    return _logits(draw, options, weight=True, pos_weight=True)


def _logits_soft(draw, options):
    """torch accepts any real target with logits (no [0, 1] check), e.g. label noise or
    negatives."""
    return _logits(draw, options, soft=True, pos_weight=True)


def _logits_mixed(draw, options):
    """float32 logits, float64 targets: the loss takes target's dtype."""
    shape = draw(shapes(1, 2))
    return (draw.randn(*shape, dtype=torch.float32), draw.rand(*shape, dtype=F64)), {}


CASES = [
    Case("binary_cross_entropy", _probabilities, REDUCTION, module="BCELoss", grad=(0, 1),
         reference=True, capabilities=COMPILE),
    Case("binary_cross_entropy", _probabilities, list(LEGACY), module="BCELoss", grad=(0, 1),
         reference=True),
    Case("binary_cross_entropy", _weighted_probabilities, REDUCTION, module="BCELoss", grad=(0, 1),
         reference=True, capabilities=COMPILE),
    Case("binary_cross_entropy", _hard_probabilities, REDUCTION, module="BCELoss", grad=(0,),
         reference=True),
    Case("binary_cross_entropy_with_logits", _logits, REDUCTION, module="BCEWithLogitsLoss",
         grad=(0, 1), reference=True, capabilities=COMPILE),
    Case("binary_cross_entropy_with_logits", _logits, list(LEGACY), module="BCEWithLogitsLoss",
         grad=(0, 1), reference=True),
    Case("binary_cross_entropy_with_logits", _logits_weighted, REDUCTION,
         module="BCEWithLogitsLoss", grad=(0, 1), reference=True),
    Case("binary_cross_entropy_with_logits", _logits_pos_weighted, REDUCTION,
         module="BCEWithLogitsLoss", grad=(0, 1), reference=True),
    Case("binary_cross_entropy_with_logits", _logits_both, REDUCTION, module="BCEWithLogitsLoss",
         grad=(0, 1), reference=True, capabilities=COMPILE),
    Case("binary_cross_entropy_with_logits", _logits_both, [dict(reduce=False)],
         module="BCEWithLogitsLoss", grad=(0, 1), reference=True),
    Case("binary_cross_entropy_with_logits", _logits_soft, grid(reduction=("mean",)),
         module="BCEWithLogitsLoss", grad=(0, 1), reference=True),
    # No torch.func check here: under vmap torch's batch rule computes this mixed-dtype loss
    # in float64 (2e-7 from its own eager float32 log-sigmoid); lossutils keeps the eager
    # rounding, which no float64 tolerance can hold to torch's vmap.
    Case("binary_cross_entropy_with_logits", _logits_mixed, REDUCTION, grad=(1,),
         dtypes=(torch.float32,), capabilities=ALL_CAPABILITIES - {"func"}),
    # the deprecated alias of 'mean', accepted with torch's warning (no reference: it spells 'mean')
    Case("binary_cross_entropy", _weighted_probabilities, [dict(reduction="elementwise_mean")],
         module="BCELoss", grad=(0, 1)),
    Case("binary_cross_entropy_with_logits", _logits_both, [dict(reduction="elementwise_mean")],
         module="BCEWithLogitsLoss", grad=(0, 1)),
]


def _t(*values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def _pair(x, y):
    return lambda: ((x.clone(), y.clone()), {})


BCE, BCEL = "binary_cross_entropy", "binary_cross_entropy_with_logits"

REJECTIONS = [
    *(Rejection(name, lambda: ((torch.rand(3), torch.rand(3)), {"reduction": "avg"}),
                match="avg is not a valid value for reduction", id="bad-reduction", module=module,
                module_kwargs={"reduction": "avg"})
      for name, module in ((BCE, "BCELoss"), (BCEL, "BCEWithLogitsLoss"))),
    # no broadcasting of target: ValueError in both
    *(Rejection(name, lambda: ((torch.rand(3), torch.rand(1)), {}),
                match=r"target of shape \(1,\) and input of shape \(3,\)", id="target-size",
                module=module)
      for name, module in ((BCE, "BCELoss"), (BCEL, "BCEWithLogitsLoss"))),
    Rejection(BCE, lambda: ((torch.rand(2, 3), torch.rand(3, 2)), {}),
              match=r"target of shape \(3, 2\) and input of shape \(2, 3\)",
              id="target-transposed"),
    # probabilities outside [0, 1], NaN included, in input and in target
    Rejection(BCE, _pair(_t(0.5, 1.5), _t(1.0, 0.0)),
              match="input should be between 0 and 1, got 1.5",
              id="input-above-one", module="BCELoss"),
    Rejection(BCE, _pair(_t(-1e-9, 0.5), _t(1.0, 0.0)),
              match="input should be between 0 and 1, got -1e-09", id="input-negative"),
    Rejection(BCE, _pair(_t(float("nan")), _t(1.0)),
              match="input should be between 0 and 1, got nan", id="input-nan"),
    Rejection(BCE, _pair(_t(0.5, 0.5), _t(1.0, 2.0)),
              match="target should be between 0 and 1, got 2.0", id="target-above-one"),
    # weight: must broadcast to the target's shape without growing it
    Rejection(BCE, lambda: ((torch.rand(2, 3), torch.rand(2, 3)), {"weight": torch.rand(2)}),
              match=r"weight of shape \(2,\) does not broadcast to the target's shape \(2, 3\)",
              id="weight-shape", module="BCELoss", module_kwargs={"weight": torch.rand(2)}),
    Rejection(BCE, lambda: ((torch.rand(2, 3), torch.rand(2, 3)), {"weight": torch.rand(4, 2, 3)}),
              match=r"weight of shape \(4, 2, 3\) does not broadcast to the input's shape \(2, 3\)",
              id="weight-grows-shape"),
    # a leading 1 still grows the shape: torch refuses weight (1, 3) for a (3,) input
    *(Rejection(name, lambda: ((torch.rand(3), torch.rand(3)), {"weight": torch.rand(1, 3)}),
                match=r"weight of shape \(1, 3\) does not broadcast to the input's shape \(3,\)",
                id="weight-leading-one")
      for name in (BCE, BCEL)),
    Rejection(BCEL, lambda: ((torch.randn(3), torch.rand(3)), {"pos_weight": torch.rand(1, 3)}),
              match=r"pos_weight of shape \(1, 3\) does not broadcast to the input's shape \(3,\)",
              id="pos-weight-leading-one"),
    *(Rejection(name,
                lambda: ((torch.rand(2, 3), torch.rand(2, 3)),
                         {"weight": torch.rand(3, requires_grad=True)}),
                match="not differentiable with respect to argument 'weight'",
                id="weight-requires-grad")
      for name in (BCE, BCEL)),
    # dtypes: BCE needs target of input's dtype and a floating input
    Rejection(BCE, lambda: ((torch.rand(3), torch.rand(3, dtype=F64)), {}),
              match=r"needs target of input's dtype \(torch.float32\), got torch.float64",
              id="dtype-mismatch"),
    Rejection(BCE, lambda: ((torch.ones(3, dtype=torch.long), torch.ones(3, dtype=torch.long)), {}),
              match="input must be a floating-point tensor", id="integer-input"),
    # logits: weight / pos_weight must broadcast to the input's shape
    Rejection(BCEL, lambda: ((torch.randn(2, 3), torch.rand(2, 3)), {"weight": torch.rand(2)}),
              match=r"weight of shape \(2,\) does not broadcast to the input's shape \(2, 3\)",
              id="weight-shape", module="BCEWithLogitsLoss",
              module_kwargs={"weight": torch.rand(2)}),
    Rejection(BCEL, lambda: ((torch.randn(3), torch.rand(3)), {"weight": torch.rand(4, 3)}),
              match=r"weight of shape \(4, 3\) does not broadcast to the input's shape \(3,\)",
              id="weight-grows-shape"),
    Rejection(BCEL, lambda: ((torch.randn(2, 3), torch.rand(2, 3)), {"pos_weight": torch.rand(2)}),
              match=r"pos_weight of shape \(2,\) does not broadcast to the input's shape \(2, 3\)",
              id="pos-weight-not-last-dim", module="BCEWithLogitsLoss",
              module_kwargs={"pos_weight": torch.rand(2)}),
    Rejection(BCEL, lambda: ((torch.randn(3), torch.rand(3)), {"pos_weight": torch.rand(4, 3)}),
              match=r"pos_weight of shape \(4, 3\) does not broadcast to the input's shape \(3,\)",
              id="pos-weight-grows-shape"),
    Rejection(BCEL, lambda: ((torch.randn(2, 3), torch.rand(2, 3)),
                             {"pos_weight": torch.rand(3, requires_grad=True)}),
              match="not differentiable with respect to argument 'pos_weight'",
              id="pos-weight-requires-grad"),
    Rejection(BCEL, lambda: ((torch.ones(3, dtype=torch.long), torch.rand(3)), {}),
              match="needs floating-point logits", id="integer-input"),
    Rejection(BCEL, lambda: ((torch.randn(3), torch.ones(3, dtype=torch.long)), {}),
              match="target must be floating-point", id="integer-target"),
]


def _edges(dtype=F64):
    """Probabilities at exactly 0 and 1 (the -100 clamp), tiny ones below e^-100, and 1/2."""
    x = _t(0.0, 1.0, 0.0, 1.0, 0.5, 1e-50, 1.0 - 1e-16, 0.0, 1.0, dtype=dtype)
    y = _t(0.0, 1.0, 1.0, 0.0, 0.5, 1.0, 0.0, 0.5, 0.5, dtype=dtype)
    return (x, y), {}


def _big_logits(dtype=F64, pos_weight=None):
    x = _t(1e4, -1e4, 1e4, -1e4, 1e3, -1e3, 40.0, -40.0, 0.0, dtype=dtype)
    y = _t(1.0, 0.0, 0.0, 1.0, 0.5, 0.5, 0.0, 1.0, 0.5, dtype=dtype)
    kwargs = {} if pos_weight is None else {"pos_weight": torch.full((9,), pos_weight, dtype=dtype)}
    return (x, y), kwargs


EXTREMES = [
    Extreme(BCE, _edges, id="clamp-at-100", options={"reduction": "none"}, grad=(0, 1)),
    Extreme(BCE, _edges, id="clamp-at-100-sum", options={"reduction": "sum"}, grad=(0, 1)),
    Extreme(BCE, lambda: _edges(torch.float32), id="clamp-at-100-float32",
            options={"reduction": "none"}, grad=(0, 1)),
    Extreme(BCE, lambda: (_edges()[0], {"weight": torch.linspace(0, 2, 9, dtype=F64)}),
            id="clamp-weighted-mean", grad=(0, 1)),
    Extreme(BCE, lambda: ((torch.empty(0), torch.empty(0)), {}), id="empty-mean-is-nan"),
    Extreme(BCEL, _big_logits, id="logits-1e4", options={"reduction": "none"}, grad=(0, 1)),
    Extreme(BCEL, lambda: _big_logits(torch.float32), id="logits-1e4-float32",
            options={"reduction": "none"}, grad=(0, 1)),
    Extreme(BCEL, lambda: _big_logits(pos_weight=3.0), id="logits-1e4-pos-weight", grad=(0, 1)),
    Extreme(BCEL, lambda: _big_logits(torch.float32, pos_weight=0.25),
            id="logits-1e4-pos-weight-float32", options={"reduction": "sum"}, grad=(0, 1)),
    # infinite logits: 0 * inf in (1 - y) x gives NaN in torch too
    Extreme(BCEL,
            lambda: ((_t(float("inf"), -float("inf"), float("inf"), -float("inf")),
                      _t(1.0, 0.0, 0.0, 1.0)),
                           {}), id="infinite-logits", options={"reduction": "none"}, grad=(0, 1)),
    Extreme(BCEL, lambda: ((torch.empty(0), torch.empty(0)), {}), id="empty-mean-is-nan"),
]
