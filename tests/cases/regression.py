"""Cases of the regression losses: L1, MSE, SmoothL1, Huber.

torch differentiates all four w.r.t. input, target and (functional ``weight=``)
weight; the module classes have no ``weight``. One thing torch does NOT do:
backward through ``huber_loss`` when input and target dtypes differ (its
kernel raises "Found dtype Double but expected Float"), so that mixed-dtype
case compares values only.
"""

import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, broadcastable, grid, shapes

from . import ALL_CAPABILITIES, Case, Extreme, Rejection

# second derivatives, torch.func, autocast and half precision: all converted (issue 16)
CAPABILITIES = ALL_CAPABILITIES

F64 = torch.float64


def _pair(draw, options):
    """input and target of one shape, or one of them broadcasting against the other."""
    shape = draw(shapes(0, 3))
    side = draw(st.sampled_from(("same", "target", "input")))
    input_shape = draw(broadcastable(shape)) if side == "input" else shape
    target_shape = draw(broadcastable(shape)) if side == "target" else shape
    return (draw.randn(*input_shape, scale=2.0), draw.randn(*target_shape)), {}


def _weighted_pair(draw, options):
    """``weight`` has input's shape (torch requires it); target may broadcast input up."""
    shape = draw(shapes(0, 3))
    input_shape = draw(broadcastable(shape)) if draw(st.booleans()) else shape
    return ((draw.randn(*input_shape, scale=2.0), draw.randn(*shape)),
            {"weight": draw.rand(*input_shape, low=0.1, high=2.0)})


def _mixed_dtypes(draw, options):
    """float32 input against a float64 target (promoted, except by huber_loss)."""
    shape = draw(shapes(1, 2))
    return (draw.randn(*shape, dtype=torch.float32), draw.randn(*shape, dtype=F64)), {}


def _integers(draw, options):
    shape = draw(shapes(1, 2))
    return (draw.randint(-5, 5, *shape), draw.randint(-5, 5, *shape)), {}


def _complex(draw, options):
    shape = draw(shapes(1, 2))
    return (torch.complex(draw.randn(*shape), draw.randn(*shape)),
            torch.complex(draw.randn(*shape), draw.randn(*shape))), {}


REDUCTION = grid(reduction=REDUCTIONS)

CASES = [
    Case("mse_loss", _pair, REDUCTION + list(LEGACY), module="MSELoss", grad=(0, 1),
         reference=True),
    # torch 2.13's weight= is functional only: MSELoss has no such argument.
    Case("mse_loss", _weighted_pair, REDUCTION, grad=(0, 1, "weight"), reference=True),
    Case("mse_loss", _mixed_dtypes, REDUCTION, grad=(1,), dtypes=(torch.float32,)),
    Case("l1_loss", _pair, REDUCTION + list(LEGACY), module="L1Loss", grad=(0, 1), reference=True),
    Case("l1_loss", _weighted_pair, REDUCTION, grad=(0, 1, "weight"), reference=True),
    Case("l1_loss", _mixed_dtypes, REDUCTION, grad=(1,), dtypes=(torch.float32,)),
    # integer tensors: 'none' and 'sum' stay integer in torch ('mean' is a rejection below)
    Case("l1_loss", _integers, grid(reduction=("none", "sum")), module="L1Loss", grad=(),
         dtypes=(F64,)),
    # complex: the loss is real; values only (the driver differentiates real tensors)
    Case("l1_loss", _complex, REDUCTION, module="L1Loss", grad=(), dtypes=(F64,)),
    # beta = 0 is torch's L1 branch; 0 as an int too
    Case("smooth_l1_loss", _pair,
         grid(reduction=REDUCTIONS, beta=(1.0, 0.25, 2.5, 0.0)) + [dict(beta=0)]
         + list(LEGACY) + [dict(size_average=False, beta=0.5)],
         module="SmoothL1Loss", grad=(0, 1), reference=True),
    Case("smooth_l1_loss", _mixed_dtypes, grid(reduction=("mean",), beta=(1.0, 0.0)), grad=(1,),
         dtypes=(torch.float32,)),
    Case("huber_loss", _pair, grid(reduction=REDUCTIONS, delta=(1.0, 0.25, 2.5)) + [dict(delta=3)],
         module="HuberLoss", grad=(0, 1), reference=True),
    # weighted Huber: a 'mean' divides by N, not by sum(weight) as L1/MSE do
    Case("huber_loss", _weighted_pair, grid(reduction=REDUCTIONS, delta=(1.0, 0.5)),
         grad=(0, 1, "weight"), reference=True),
    # huber_loss keeps input's dtype (float32 here); torch cannot differentiate this mix
    Case("huber_loss", _mixed_dtypes, grid(reduction=REDUCTIONS), grad=(), dtypes=(torch.float32,)),
    # the deprecated alias of 'mean', accepted with torch's warning (no reference: it spells 'mean')
    *(Case(name, _pair, [dict(reduction="elementwise_mean", **extra)], module=module, grad=(0, 1))
      for name, module, extra in (("l1_loss", "L1Loss", {}), ("mse_loss", "MSELoss", {}),
                                  ("smooth_l1_loss", "SmoothL1Loss", {}),
                                  ("smooth_l1_loss", "SmoothL1Loss", {"beta": 0.0}),
                                  ("huber_loss", "HuberLoss", {}))),
]


def _t(*values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def _two(n=3, m=None):
    return lambda: ((torch.randn(n), torch.randn(n if m is None else m)), {})


REJECTIONS = [
    # bad reduction strings, functional and module
    *(Rejection(name, lambda: ((torch.randn(3), torch.randn(3)), {"reduction": "avg"}),
                match="avg is not a valid value for reduction", id="bad-reduction", module=module,
                module_kwargs={"reduction": "avg"})
      for name,
      module in (("mse_loss", "MSELoss"), ("l1_loss", "L1Loss"), ("smooth_l1_loss", "SmoothL1Loss"),
                           ("huber_loss", "HuberLoss"))),
    # with a weight, torch checks the string itself: even 'elementwise_mean' is refused
    *(Rejection(name, lambda: ((torch.randn(3), torch.randn(3)),
                               {"reduction": "elementwise_mean", "weight": torch.ones(3)}),
                match="Invalid reduction mode: elementwise_mean", id="weighted-elementwise-mean")
      for name in ("mse_loss", "l1_loss", "huber_loss")),
    # shapes that do not broadcast (torch warns, then broadcast_tensors raises)
    *(Rejection(name, _two(3, 4), id="shapes",
                match=r"input of shape \(3,\), target of shape \(4,\) cannot be broadcast")
      for name in ("mse_loss", "l1_loss", "smooth_l1_loss", "huber_loss")),
    Rejection("smooth_l1_loss",
              lambda: ((torch.randn(3), torch.randn(3)), {"beta": 0.0, "reduction": "avg"}),
              match="avg is not a valid value for reduction", id="beta0-bad-reduction"),
    # weight must have input's own size (not the broadcast size)
    *(Rejection(name, lambda: ((torch.randn(3), torch.randn(3)), {"weight": torch.ones(2)}),
                match=r"weight of shape \(2,\) and input of shape \(3,\)", id="weight-shape")
      for name in ("mse_loss", "l1_loss", "huber_loss")),
    *(Rejection(name, lambda: ((torch.randn(3), torch.randn(2, 3)), {"weight": torch.ones(2, 3)}),
                match=r"weight of shape \(2, 3\) and input of shape \(3,\)",
                id="weight-of-broadcast-shape")
      for name in ("mse_loss", "l1_loss", "huber_loss")),
    # beta / delta out of range (NaN included) and of the wrong type
    Rejection("smooth_l1_loss", lambda: ((torch.randn(3), torch.randn(3)), {"beta": -0.5}),
              match=r"negative values for beta: got beta=-0.5", id="negative-beta",
              module="SmoothL1Loss", module_kwargs={"beta": -0.5}),
    Rejection("smooth_l1_loss", lambda: ((torch.randn(3), torch.randn(3)), {"beta": float("nan")}),
              match=r"negative values for beta: got beta=nan", id="nan-beta"),
    Rejection("smooth_l1_loss", lambda: ((torch.randn(3), torch.randn(3)), {"beta": "1"}),
              match=r"argument 'beta' must be a real number", id="str-beta"),
    Rejection("huber_loss", lambda: ((torch.randn(3), torch.randn(3)), {"delta": 0.0}),
              match=r"non-positive values for delta: got delta=0.0", id="zero-delta",
              module="HuberLoss", module_kwargs={"delta": 0.0}),
    Rejection("huber_loss", lambda: ((torch.randn(3), torch.randn(3)), {"delta": -1}),
              match=r"non-positive values for delta: got delta=-1", id="negative-delta",
              module="HuberLoss", module_kwargs={"delta": -1}),
    Rejection("huber_loss",
              lambda: ((torch.randn(3), torch.randn(3)), {"delta": -1.0, "weight": torch.ones(3)}),
              match=r"non-positive values for delta", id="weighted-negative-delta"),
    Rejection("huber_loss",
              lambda: ((torch.randn(3), torch.randn(3)), {"delta": torch.tensor([2.0])}),
              match=r"argument 'delta' must be a real number .*shape \(1,\)", id="tensor-delta"),
    Rejection("huber_loss", lambda: ((torch.randn(3), torch.randn(3)), {"delta": "2"}),
              match=r"delta.* must be a (real number|float or int)", id="str-delta",
              module="HuberLoss", module_kwargs={"delta": "2"}),
    # dtypes torch's kernels refuse
    Rejection("mse_loss", lambda: ((torch.arange(3), torch.arange(3)), {}),
              match="mse_loss needs floating-point input and target", id="integer-input"),
    Rejection("mse_loss",
              lambda: ((torch.ones(3, dtype=torch.complex64), torch.ones(3, dtype=torch.complex64)),
                                   {}),
              match="mse_loss needs floating-point input and target", id="complex-input"),
    Rejection("smooth_l1_loss", lambda: ((torch.arange(3), torch.arange(3)), {}),
              match="smooth_l1_loss needs floating-point", id="integer-input"),
    Rejection("huber_loss", lambda: ((torch.arange(3), torch.arange(3)), {}),
              match="huber_loss needs floating-point", id="integer-input"),
    Rejection("huber_loss", lambda: ((torch.arange(3), torch.arange(3.0)), {}),
              match="huber_loss returns input's dtype", id="integer-input-float-target"),
    Rejection("l1_loss", lambda: ((torch.arange(3), torch.arange(3)), {}),
              match="l1_loss with reduction='mean' needs floating-point", id="integer-mean"),
    # l1 subtracts first, and torch's subtraction refuses bool tensors
    *(Rejection(name, lambda a=a, b=b, kw=kw: ((a(), b()), dict(kw)),
                match=rf"Subtraction, the `-` operator, with {words}.*target of dtype {t}",
                id=f"bool-{which}{'-weighted' if 'weight' in kw else ''}")
      for name, kw in (("l1_loss", {}), ("l1_loss", {"weight": torch.ones(3)}),
                       ("smooth_l1_loss", {"beta": 0.0}))
      for a, b, which, words, t in (
          (lambda: torch.randn(3), lambda: torch.tensor([True, False, True]), "target",
           "a bool tensor", "torch.bool"),
          (lambda: torch.tensor([True, False, True]), lambda: torch.randn(3), "input",
           "a bool tensor", "torch.float32"),
          (lambda: torch.tensor([True, False, True]), lambda: torch.tensor([False] * 3), "both",
           "two bool tensors", "torch.bool"))),
]


def _kinks():
    """Residuals exactly at 0 and at +-1, +-2 (the kinks for beta/delta 1 and 2), and large ones."""
    return (_t(0.0, 1.0, -1.0, 2.0, -2.0, 0.5, 1e300), torch.zeros(7, dtype=F64)), {}


def _infinite():
    """inf residuals (loss inf, slope finite or inf) and inf - inf = nan."""
    x = _t(float("inf"), -float("inf"), float("inf"), 1.0)
    y = _t(0.0, 0.0, float("inf"), float("nan"))
    return (x, y), {}


def _empty():
    return (torch.empty(0), torch.empty(0)), {}


EXTREMES = [
    Extreme("mse_loss", lambda: ((_t(1e200, -1e200, 0.0), torch.zeros(3, dtype=F64)), {}),
            id="overflow-to-inf"),
    Extreme("mse_loss", _empty, id="empty-mean-is-nan"),
    Extreme("mse_loss", _infinite, id="inf-residuals", options={"reduction": "none"}, grad=(0, 1)),
    Extreme("l1_loss", _infinite, id="inf-residuals", options={"reduction": "none"}, grad=(0, 1)),
    Extreme("l1_loss", _kinks, id="kinks-sum", options={"reduction": "sum"}, grad=(0, 1)),
    Extreme("l1_loss", _empty, id="empty-mean-is-nan"),
    Extreme("l1_loss", lambda: ((_t(1.0, 2.0), _t(1.0, 0.0)), {"weight": _t(0.0, 0.0)}),
            id="zero-weights-mean-is-nan", grad=(0, 1, "weight")),
    Extreme("smooth_l1_loss", _kinks, id="kinks-beta1", options={"reduction": "sum"}, grad=(0, 1)),
    Extreme("smooth_l1_loss", _kinks, id="kinks-beta2", options={"reduction": "none", "beta": 2.0},
            grad=(0, 1)),
    # beta = 0 goes through L1: the slope at d = 0 is 0, not 0/0
    Extreme("smooth_l1_loss", _kinks, id="kinks-beta0", options={"reduction": "sum", "beta": 0.0},
            grad=(0, 1)),
    Extreme("smooth_l1_loss", _kinks, id="beta-inf-is-zero",
            options={"reduction": "none", "beta": float("inf")}, grad=(0, 1)),
    Extreme("smooth_l1_loss",
            lambda: ((_t(0.0, 1e-310, -1e-300, 1.0), torch.zeros(4, dtype=F64)), {}),
            id="tiny-beta", options={"reduction": "none", "beta": 1e-300}, grad=(0, 1)),
    Extreme("smooth_l1_loss", _infinite, id="inf-residuals", options={"reduction": "none"},
            grad=(0, 1)),
    Extreme("smooth_l1_loss", _empty, id="empty-mean-is-nan"),
    Extreme("huber_loss", _kinks, id="kinks-delta1", options={"reduction": "sum"}, grad=(0, 1)),
    Extreme("huber_loss", _kinks, id="kinks-delta2", options={"reduction": "none", "delta": 2.0},
            grad=(0, 1)),
    Extreme("huber_loss", _kinks, id="delta-inf-is-half-mse",
            options={"reduction": "none", "delta": float("inf")}, grad=(0, 1)),
    Extreme("huber_loss", _infinite, id="inf-residuals", options={"reduction": "none"},
            grad=(0, 1)),
    Extreme("huber_loss",
            lambda: ((_t(3.0, -0.5, float("inf")), _t(0.0, 0.0, 0.0)),
                     {"weight": _t(2.0, 0.5, 1.0)}),
            id="weighted-inf", options={"reduction": "mean"}, grad=(0, 1, "weight")),
    Extreme("huber_loss", _empty, id="empty-mean-is-nan"),
]
