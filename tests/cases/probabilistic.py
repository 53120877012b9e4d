"""Cases of the probabilistic family: kl_div, poisson_nll_loss, gaussian_nll_loss.

Drawn inputs stay where every gradient is the true derivative (targets > 0,
var > eps), so gradcheck can prove the backwards; the places where torch's
gradient is nan or is not a derivative (target 0, var clamped at eps) are
fixed inputs in EXTREMES, compared with torch value for value.
"""

import math

import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, broadcastable, grid, shapes

from . import ALL_CAPABILITIES, Case, Extreme, Rejection

# second derivatives, torch.func, autocast and half precision: all converted (issue 16)
CAPABILITIES = ALL_CAPABILITIES

F64 = torch.float64


def _probabilities(draw, shape):
    """Positive entries summing to one along the last dim (any shape, 0-dim included)."""
    w = draw.rand(*shape, low=0.05, high=1.0)
    return w / w.sum(dim=-1, keepdim=True) if len(shape) else w


def _kl_pair(draw, options):
    """log-probabilities and a target; either side may broadcast against the other."""
    shape = draw(shapes(0, 3))
    small = draw(broadcastable(shape)) if draw(st.booleans()) else shape
    input_shape, target_shape = (small, shape) if draw(st.booleans()) else (shape, small)
    input = torch.log(_probabilities(draw, input_shape)) + draw.randn(*input_shape, scale=0.1)
    target = _probabilities(draw, target_shape)
    return (input, torch.log(target) if options.get("log_target") else target), {}


def _poisson_pair(draw, options):
    """log-rates (or rates > 0) and positive targets on both sides of the Stirling cut at 1."""
    shape = draw(shapes(0, 3))
    target_shape = draw(broadcastable(shape)) if draw(st.booleans()) else shape
    log_input = options.get("log_input", True)
    input = draw.randn(*shape) if log_input else draw.rand(*shape, low=0.1, high=3.0)
    return (input, draw.rand(*target_shape, low=0.05, high=5.0)), {}


def _var_shape(draw, shape, tensor=True):
    """One of the var shapes torch accepts for an input of ``shape`` (None: a float var)."""
    kinds = (["same"] + (["drop-last", "one-side"] if shape else [])) if tensor else ["float"]
    kind = draw(st.sampled_from(kinds))
    if kind == "drop-last":
        return shape[:-1]
    if kind == "one-side":
        i = draw(st.integers(0, len(shape) - 1))
        return shape[:i] + (1,) + shape[i + 1:]
    return None if kind == "float" else shape


def _gaussian_triple(draw, options, tensor=True):
    """mean, target (maybe broadcasting) and a variance above eps, as a tensor (of one of the
    shapes torch accepts) or a float."""
    shape = draw(shapes(0, 3))
    target_shape = draw(broadcastable(shape)) if draw(st.booleans()) else shape
    low = options.get("eps", 1e-6) + 0.05
    var_shape = _var_shape(draw, shape, tensor)
    var = draw(st.floats(low, 2.0)) if var_shape is None else draw.rand(*var_shape, low=low,
                                                                        high=2.0)
    return (draw.randn(*shape), draw.randn(*target_shape), var), {}


def _gaussian_float_var(draw, options):
    return _gaussian_triple(draw, options, tensor=False)


def _gaussian_wide_var(draw, options):
    """Variances past 256 (v^2 overflows float16) and residuals up to about 40: torch's
    float16 var gradient, (d^2 / v) / v, stays finite; a v * v would be inf."""
    shape = draw(shapes(1, 2))
    var = draw.rand(*shape, low=256.0, high=4000.0)
    return (draw.randn(*shape, scale=20.0), draw.randn(*shape, scale=20.0), var), {}


# torch tests the sign of a var tensor in Python (torch.any(var < 0)): vmap over a batched var
# refuses that data-dependent branch, in torch and (mirrored) in lossutils
VAR_SIGN = {"vmap": "torch's gaussian_nll_loss branches on torch.any(var < 0) in Python: "
                    "data-dependent control flow, which vmap refuses for a batched var"}


CASES = [
    Case("kl_div", _kl_pair,
         grid(reduction=("none", "mean", "sum", "batchmean"), log_target=(False, True))
         + list(LEGACY), module="KLDivLoss", grad=(0, 1), reference=True),
    Case("poisson_nll_loss", _poisson_pair,
         grid(log_input=(True, False), full=(False, True), reduction=REDUCTIONS)
         + [dict(log_input=False, eps=0.5)] + list(LEGACY),
         module="PoissonNLLLoss", grad=(0, 1)),
    Case("gaussian_nll_loss", _gaussian_triple,
         grid(full=(False, True), reduction=REDUCTIONS) + [dict(eps=0.3)],
         module="GaussianNLLLoss", grad=(0, 1, 2), torch_cannot=VAR_SIGN),
    Case("gaussian_nll_loss", _gaussian_float_var, grid(reduction=REDUCTIONS) + [dict(eps=0.3)],
         module="GaussianNLLLoss", grad=(0, 1)),
    Case("gaussian_nll_loss", _gaussian_wide_var, grid(reduction=REDUCTIONS), grad=(0, 1, 2),
         torch_cannot=VAR_SIGN),
]


def _t(*values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


def _kl(input, target, **kw):
    return lambda: ((input, target), kw)


REJECTIONS = [
    Rejection("kl_div", _kl(torch.randn(3), torch.rand(3), reduction="avg"),
              match=r"avg is not a valid value for reduction.*'batchmean'", id="bad-reduction",
              module="KLDivLoss", module_kwargs={"reduction": "avg"}),
    Rejection("kl_div", _kl(torch.randn(3), torch.rand(4)),
              match=r"input of shape \(3,\), target of shape \(4,\) cannot be broadcast",
              id="shapes"),
    Rejection("kl_div", _kl(torch.randn(2, 3), torch.rand(3, 3)),
              match=r"input of shape \(2, 3\), target of shape \(3, 3\) cannot be broadcast",
              id="shapes-2d"),
    Rejection("kl_div", _kl(torch.arange(3), torch.rand(3)),
              match=r"Integral inputs not supported.*input dtype torch.int64", id="integer-input"),
    Rejection("kl_div", _kl(torch.randn(3), torch.arange(3)),
              match=r"target dtype torch.int64", id="integer-target"),
    Rejection("kl_div", _kl(torch.randn(3, dtype=torch.complex64), torch.rand(3)),
              match=r"Complex inputs not supported.*input dtype torch.complex64",
              id="complex-input"),
    Rejection("poisson_nll_loss", lambda: ((torch.randn(3), torch.rand(3)), {"reduction": "avg"}),
              match="avg is not a valid value for reduction", id="bad-reduction",
              module="PoissonNLLLoss", module_kwargs={"reduction": "avg"}),
    # poisson_nll_loss checks reduction itself: torch's deprecated alias is not accepted here.
    Rejection("poisson_nll_loss",
              lambda: ((torch.randn(3), torch.rand(3)), {"reduction": "elementwise_mean"}),
              match="elementwise_mean is not a valid value for reduction", id="elementwise-mean"),
    Rejection("poisson_nll_loss", lambda: ((torch.randn(3), torch.rand(4)), {}),
              match=r"input of shape \(3,\), target of shape \(4,\) cannot be broadcast",
              id="shapes"),
    Rejection("gaussian_nll_loss",
              lambda: ((torch.randn(3, 4), torch.randn(3, 4), -torch.rand(3, 4)), {}),
              match="var has negative entry/entries: var must be non-negative", id="negative-var",
              module="GaussianNLLLoss"),
    Rejection("gaussian_nll_loss", lambda: ((torch.randn(3, 4), torch.randn(3, 4), -0.5), {}),
              match=r"var has negative entry/entries.*got -0.5", id="negative-float-var"),
    Rejection("gaussian_nll_loss",
              lambda: ((torch.randn(3, 4), torch.randn(3, 4), torch.rand(2, 4)), {}),
              match=r"var is of incorrect size: var has shape \(2, 4\), input has shape \(3, 4\)",
              id="var-size", module="GaussianNLLLoss"),
    Rejection("gaussian_nll_loss",
              lambda: ((torch.randn(3, 4), torch.randn(3, 4), torch.rand(1, 1)), {}),
              match=r"var has shape \(1, 1\), input has shape \(3, 4\)", id="var-two-sides-of-1"),
    Rejection("gaussian_nll_loss",
              lambda: ((torch.randn(3, 4), torch.randn(3, 4), torch.rand(4)), {}),
              match=r"var has shape \(4,\), input has shape \(3, 4\)", id="var-drops-first-dim"),
    Rejection("gaussian_nll_loss",
              lambda: ((torch.randn(3, 4), torch.randn(3, 4), torch.rand(())), {}),
              match=r"var has shape \(\), input has shape \(3, 4\)", id="scalar-tensor-var-2d"),
    Rejection("gaussian_nll_loss",
              lambda: ((torch.randn(3), torch.randn(3), torch.rand(3)), {"reduction": "avg"}),
              match="avg is not valid", id="bad-reduction", module="GaussianNLLLoss",
              module_kwargs={"reduction": "avg"}),
    # torch tests `isinstance(var, float)`: an int var falls through to torch.any(int < 0).
    Rejection("gaussian_nll_loss", lambda: ((torch.randn(3), torch.randn(3), 1), {}),
              match="var must be a Tensor or a float, got int", id="int-var"),
    Rejection("gaussian_nll_loss",
              lambda: ((torch.randn(3), torch.randn(3), torch.ones(3, dtype=torch.int64)), {}),
              match=r"var of dtype torch.int64 cannot be clamped in place at eps=1e-06",
              id="integer-var-tensor"),
]


EXTREMES = [
    # y = 0: the loss is 0 (0 log 0 = 0) but torch's gradient w.r.t. the target is 0/0 = nan.
    Extreme("kl_div", lambda: ((_t(-1.0, -2.0, -0.5), _t(0.0, 0.5, 0.5)), {}), id="target-zeros",
            options=dict(reduction="none"), grad=(0, 1)),
    Extreme("kl_div", lambda: ((_t(-1.0, -2.0, -0.5), _t(0.0, 0.0, 1.0)), {}),
            id="target-zeros-sum", options=dict(reduction="sum"), grad=(0, 1)),
    # log_target with -inf: e^{-inf} (-inf - x) = 0 * -inf = nan, as in torch.
    Extreme("kl_div", lambda: ((_t(-1.0, -2.0, -0.5), _t(-math.inf, -1.0, -0.5)), {}),
            id="log-target-neg-inf", options=dict(reduction="none", log_target=True), grad=(0, 1)),
    Extreme("kl_div", lambda: ((_t(-1.0, -2.0), _t(-0.5, 1.5)), {}), id="negative-target-is-nan",
            options=dict(reduction="none"), grad=(0, 1)),
    Extreme("kl_div", lambda: ((_t(-1e300, -0.5), _t(0.5, 0.5)), {}), id="huge-log-input",
            options=dict(reduction="batchmean"), grad=(0, 1)),
    Extreme("kl_div", lambda: ((torch.tensor(-0.7, dtype=F64), torch.tensor(0.3, dtype=F64)), {}),
            id="batchmean-0dim-not-divided", options=dict(reduction="batchmean"), grad=(0, 1)),
    Extreme("kl_div", lambda: ((torch.empty(0, 3, dtype=F64), torch.empty(0, 3, dtype=F64)), {}),
            id="batchmean-empty-is-nan", options=dict(reduction="batchmean")),
    # exp(800) overflows to inf; exp(-800) underflows to 0, leaving -y x.
    Extreme("poisson_nll_loss", lambda: ((_t(800.0, -800.0, 30.0), _t(2.0, 3.0, 0.0)), {}),
            id="huge-log-input", options=dict(reduction="none"), grad=(0, 1)),
    Extreme("poisson_nll_loss",
            lambda: ((_t(0.5, 0.5, 0.5, 0.5, 0.5), _t(0.0, 0.5, 1.0, 1.0 + 1e-12, 7.0)), {}),
            id="full-target-zero-and-cut", options=dict(full=True, reduction="none"), grad=(0, 1)),
    Extreme("poisson_nll_loss", lambda: ((_t(0.0, 0.0, -1.0), _t(0.0, 2.0, 0.0)), {}),
            id="rate-zero-eps-zero",
            options=dict(log_input=False, eps=0.0, reduction="none"), grad=(0, 1)),
    Extreme("poisson_nll_loss", lambda: ((_t(1e300, 1e-300), _t(3.0, 3.0)), {}), id="huge-rate",
            options=dict(log_input=False, full=True, reduction="sum"), grad=(0, 1)),
    # var below eps is clamped, yet its gradient is passed straight through (not zeroed).
    Extreme("gaussian_nll_loss", lambda: ((_t(0.0, 1.0), _t(0.5, 0.0), _t(1e-9, 2.0)), {}),
            id="var-clamped-at-eps", options=dict(reduction="none"), grad=(0, 1, 2), rtol=1e-12),
    Extreme("gaussian_nll_loss", lambda: ((_t(0.0, 1.0), _t(0.5, 1.0), _t(0.0, 2.0)), {}),
            id="var-zero-eps-zero", options=dict(eps=0.0, reduction="none"), grad=(0, 1, 2)),
    Extreme("gaussian_nll_loss", lambda: ((_t(1e200, 0.0), _t(-1e200, 0.0), _t(1.0, 1.0)), {}),
            id="overflow", options=dict(reduction="sum", full=True), grad=(0, 1, 2)),
    Extreme("gaussian_nll_loss", lambda: ((_t(0.0, 1.0), _t(0.5, 0.0), 0.0), {}),
            id="float-var-zero", options=dict(reduction="mean"), grad=(0, 1)),
]
