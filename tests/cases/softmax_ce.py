"""Cases of the softmax family and the cross-entropy losses: softmax, log_softmax, nll_loss,
cross_entropy."""

import math

import numpy as np
import torch
from hypothesis import strategies as st

from strategies import LEGACY, REDUCTIONS, grid

from . import ALL_CAPABILITIES, COMPILE, Case, Extreme, Rejection

# second derivatives, torch.func, autocast and half precision: all converted (issue 16)
CAPABILITIES = ALL_CAPABILITIES

INF = math.inf


def _label(options, weighted=False):
    parts = [f"{k}={getattr(v, '__name__', v)!r}" if not isinstance(v, torch.dtype) else f"{k}={v}"
             for k, v in options.items()]
    return ",".join((["weight"] if weighted else []) + parts) or "defaults"


# ------------------------------------------------------------------ softmax family


def _logits(draw, options):
    """A tensor of 1 to 3 dims (at least 2 when ``dim=1``), sides 1..4."""
    ndim = draw(st.integers(2 if options.get("dim") == 1 else 1, 3))
    shape = tuple(draw(st.integers(1, 4)) for _ in range(ndim))
    return (draw.randn(*shape, scale=3.0),), {}


def _softmax_cases(name, module):
    dims = [dict(dim=0), dict(dim=-1), dict(dim=1),
            {}]  # no dim: the deprecated implicit choice, with its warning
    return [
        Case(name, _logits, dims, module=module, reference=True, examples=4),
        # dtype= casts first; the gradient flows back through the cast. Upcasts only: a float32
        # result held to float64's tolerances, or gradcheck through a float32 cast, cannot pass.
        Case(name, _logits, [dict(dim=-1, dtype=torch.float64), dict(dim=0, dtype=torch.float64)],
             examples=4, dtypes=(torch.float32,)),
        # torch's argument parser reads dim through __index__: NumPy integers, 0-d integer tensors
        Case(name, _logits, [dict(dim=np.int64(0)), dict(dim=torch.tensor(-1))], examples=2),
    ]


def _images(draw, options):
    """(C, H, W) or (N, C, H, W), sides 1..3: what Softmax2d takes."""
    shape = tuple(draw(st.integers(1, 3)) for _ in range(draw(st.integers(3, 4))))
    return (draw.randn(*shape, scale=3.0),), {}


# ------------------------------------------------------------------ class-index targets


def _layout(draw):
    """(input shape, target shape): (C,) with a 0-d target, (N, C), or (N, C, d1[, d2])."""
    c = draw(st.integers(1, 5), label="classes")
    kind = draw(st.sampled_from(["1d", "2d", "kd"]), label="layout")
    if kind == "1d":
        return (c,), ()
    n = draw(st.integers(1, 4), label="batch")
    extra = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2))) if kind == "kd" else ()
    return (n, c, *extra), (n, *extra)


def _class_index_sample(weighted):
    def sample(draw, options):
        shape, tshape = _layout(draw)
        c = shape[0] if len(shape) == 1 else shape[1]
        target = draw.randint(0, c, *tshape)
        # about a quarter of the targets carry the ignore_index (torch's default -100 too)
        ignored = draw.rand(*tshape, dtype=torch.float64) < 0.25
        target = torch.where(ignored, options.get("ignore_index", -100), target)
        target.view(-1)[0] = 0  # one counted target: 'mean' is finite (all-ignored is an Extreme)
        kwargs = {"weight": draw.rand(c, low=0.1, high=2.0)} if weighted else {}
        return (draw.randn(*shape, scale=2.0), target), kwargs

    return sample


def _class_cases(name, module, options, weighted_options, **kw):
    return [
        Case(name, _class_index_sample(False), options, module=module, reference=True,
             id_options=_label, **kw),
        # torch: the gradient w.r.t. the weight of a class-index loss is not implemented (weight
        # not in grad)
        Case(name, _class_index_sample(True), weighted_options, module=module, reference=True,
             id_options=lambda o: _label(o, weighted=True), **kw),
    ]


# ------------------------------------------------------------------ class-probability targets


def _probability_sample(weighted):
    def sample(draw, options):
        shape, _ = _layout(draw)
        kwargs = {"weight": draw.rand(shape[0] if len(shape) == 1 else shape[1], low=0.1,
                                      high=2.0)} \
            if weighted else {}
        probs = draw.simplex(*shape, dim=0 if len(shape) == 1 else 1)
        return (draw.randn(*shape, scale=2.0), probs), kwargs

    return sample


def _prob_label(weighted):
    return lambda o: _label({"target": "probs", **o}, weighted=weighted)


# ignore_index: torch's default -100 (the sample plants some) and 1, a real class
CE_OPTIONS = grid(reduction=REDUCTIONS, label_smoothing=[0.0, 0.25]) + [
    dict(reduction="mean", label_smoothing=0.25, ignore_index=1),
    dict(reduction="none", ignore_index=1)]
CE_WEIGHTED = grid(reduction=REDUCTIONS, label_smoothing=[0.0, 0.25], ignore_index=[1])
# label_smoothing at its edges: 1.0 is all uniform; torch silently treats a negative value as 0
CE_EDGES = [dict(reduction="mean", label_smoothing=1.0),
            dict(reduction="none", label_smoothing=-0.5)]

CASES = [
    *_softmax_cases("softmax", "Softmax"),
    *_softmax_cases("log_softmax", "LogSoftmax"),
    # Softmax2d is softmax over dim -3 (the channels) of a 3-d or 4-d input
    Case("softmax", _images, [dict(dim=-3)], module="Softmax2d", module_options=lambda o: {},
         examples=3),
    *_class_cases("nll_loss", "NLLLoss",
                  grid(reduction=REDUCTIONS) + [dict(reduction="mean", ignore_index=1)],
                  grid(reduction=REDUCTIONS, ignore_index=[1]), examples=4, capabilities=COMPILE),
    Case("nll_loss", _class_index_sample(False), [dict(size_average=False), dict(reduce=False)],
         module="NLLLoss", examples=2),
    *_class_cases("cross_entropy", "CrossEntropyLoss", CE_OPTIONS, CE_WEIGHTED, examples=4,
                  capabilities=COMPILE),
    *_class_cases("cross_entropy", "CrossEntropyLoss", CE_EDGES, CE_EDGES, examples=3),
    Case("cross_entropy", _class_index_sample(False),
         list(LEGACY) + [dict(reduction="elementwise_mean")],
         module="CrossEntropyLoss", examples=2),
    # probabilities are differentiable targets in torch, and so is the weight there
    Case("cross_entropy", _probability_sample(False),
         grid(reduction=REDUCTIONS, label_smoothing=[0.0, 0.2]),
         module="CrossEntropyLoss", grad=(0, 1), reference=True, examples=4,
         id_options=_prob_label(False), capabilities=COMPILE),
    # (the module test differentiates positional arguments only: the weight is a constructor
    # argument)
    Case("cross_entropy", _probability_sample(True),
         grid(reduction=REDUCTIONS, label_smoothing=[0.2]),
         grad=(0, 1, "weight"), reference=True, examples=4, id_options=_prob_label(True),
         capabilities=COMPILE),
    Case("cross_entropy", _probability_sample(True), [dict(reduction="mean")],
         module="CrossEntropyLoss", grad=(0, 1), examples=2, id_options=_prob_label(True)),
]


# ------------------------------------------------------------------ rejections


def _ce(input, target, **kwargs):
    return lambda: ((input() if callable(input) else input, target), kwargs)


def R(name, build, match, id, module=None, **module_kwargs):
    return Rejection(name, build, match=match, id=id, module=module, module_kwargs=module_kwargs)


X, T = torch.randn(3, 5), torch.tensor([1, 0, 4])

REJECTIONS = [
    # target dtype
    R("cross_entropy", _ce(X, T.float()),
      r"expected target dtype to be Long or Byte, but got Float: .*int64 or torch.uint8.* "
      r"dtype torch.float32",
      "float-target-with-class-index-shape", module="CrossEntropyLoss"),
    R("cross_entropy", _ce(X, T.int()), r"got target of dtype torch.int32", "int32-target"),
    R("cross_entropy", _ce(X, torch.zeros(3, 5, dtype=torch.long)),
      r"Expected floating point type for target with class probabilities, got Long: .*torch.int64",
      "integer-probabilities"),
    R("cross_entropy", _ce(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.uint8)),
      r"expected scalar type Long but found Byte: .*must be torch.int64, "
      r"got target of dtype torch.uint8",
      "uint8-target-with-spatial-input"),
    R("nll_loss", _ce(X, T.float()), r"got target of dtype torch.float32", "float-target"),
    # target shape
    R("cross_entropy", _ce(X, torch.tensor([1, 0])),
      r"batch_size \(3\) to match target batch_size \(2\)",
      "batch-size-mismatch", module="CrossEntropyLoss"),
    R("cross_entropy", _ce(X, torch.tensor(1)), r"batch_size \(3\) .*target of shape \(\)",
      "0d-target-2d-input"),
    R("cross_entropy", _ce(X, torch.zeros(3, 2, dtype=torch.long)),
      r"0D or 1D target tensor expected.*target of shape \(3, 2\)", "2d-target"),
    R("cross_entropy", _ce(torch.randn(5), torch.tensor([1, 2])),
      r"1D target must have size 1.*target of shape \(2,\)", "1d-input-long-target"),
    # torch's forward accepts a (1,) target for a (C,) input, but not with smoothing and 'none'
    R("cross_entropy",
      _ce(torch.randn(5), torch.tensor([2]), label_smoothing=0.1, reduction="none"),
      r"needs a 0-d target for a 1-d input .*target of shape \(1,\)",
      "1d-input-1-element-target-smoothing"),
    R("cross_entropy", _ce(torch.randn(2, 3, 4), torch.zeros(2, 5, dtype=torch.long)),
      r"expected target size \[2, 4\], got \[2, 5\]", "kdim-target-shape"),
    R("cross_entropy", _ce(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, dtype=torch.long)),
      r"spatial targets .*dimension 2", "4d-input-2d-target"),
    R("nll_loss", _ce(torch.randn(2, 3, 4), torch.zeros(3, 4, dtype=torch.long)),
      r"batch_size \(2\) to match target batch_size \(3\)", "kdim-batch-mismatch"),
    # class index range
    R("cross_entropy", _ce(X, torch.tensor([1, 0, 5])), r"Target 5 is out of bounds.*\[0, 4\]",
      "class-index-too-large", module="CrossEntropyLoss"),
    R("cross_entropy", _ce(X, torch.tensor([1, 0, -1])),
      r"Target -1 is out of bounds.*ignore_index=-100", "negative-class-index"),
    R("cross_entropy", _ce(X, torch.tensor([1, 7, 5]), ignore_index=7, label_smoothing=0.1),
      r"Target 5 is out of bounds", "out-of-range-with-smoothing"),
    R("nll_loss", _ce(torch.randn(2, 3, 4), torch.full((2, 4), 3)), r"Target 3 is out of bounds",
      "kdim-out-of-range", module="NLLLoss"),
    # reduction, weight, label_smoothing, ignore_index
    R("cross_entropy", _ce(X, T, reduction="avg"), "avg is not a valid value for reduction",
      "bad-reduction", module="CrossEntropyLoss", reduction="avg"),
    R("nll_loss", _ce(X, T, reduction="avg"), "avg is not a valid value for reduction",
      "bad-reduction", module="NLLLoss", reduction="avg"),
    R("cross_entropy", _ce(X, T, weight=torch.ones(4)), r"all 5 classes .*weight of shape \(4,\)",
      "weight-length", module="CrossEntropyLoss", weight=torch.ones(4)),
    R("cross_entropy", _ce(X, torch.rand(3, 5), weight=torch.ones(4)),
      r"all 5 classes .*weight of shape \(4,\)", "weight-length-probabilities"),
    R("nll_loss",
      _ce(torch.randn(2, 3, 4), torch.zeros(2, 4, dtype=torch.long), weight=torch.ones(4)),
      r"all 3 classes .*weight of shape \(4,\)", "kdim-weight-length"),
    R("cross_entropy", _ce(X, T, weight=torch.ones(5, dtype=torch.float64)),
      r"expected scalar type Float but found Double: weight must have the input's dtype "
      r"\(torch.float32\), "
      r"got torch.float64", "weight-dtype"),
    R("cross_entropy", _ce(X, T, label_smoothing=1.5),
      r"label_smoothing must be between 0.0 and 1.0, got 1.5",
      "label-smoothing-above-one", module="CrossEntropyLoss", label_smoothing=1.5),
    R("cross_entropy", _ce(X, torch.rand(3, 5), label_smoothing=2.0), r"label_smoothing .*got 2.0",
      "label-smoothing-above-one-probabilities"),
    R("cross_entropy", _ce(X, torch.rand(3, 5), ignore_index=1),
      r"ignore_index=1 is not supported for floating-point \(probability\) targets",
      "probabilities-ignore-index"),
    # input
    R("cross_entropy", _ce(torch.tensor(1.0), torch.tensor([0])), r"0-d input", "0d-input",
      module="CrossEntropyLoss"),
    R("cross_entropy", _ce(torch.tensor(1.0), torch.tensor(0.5)), r"0-d input",
      "0d-input-0d-probability"),
    R("nll_loss", _ce(torch.tensor(1.0), torch.tensor(0)), r"1 or more dimensions \(got 0\)",
      "0d-input"),
    R("cross_entropy", _ce(torch.arange(15).view(3, 5), T),
      r"input must be a floating-point tensor.*torch.int64", "integer-input"),
    R("nll_loss", _ce(torch.arange(15).view(3, 5), T), r"input must be a floating-point tensor",
      "integer-input"),
    R("softmax", lambda: ((torch.randn(2, 3),), {"dim": 2}),
      r"dim 2 is out of range for input of shape \(2, 3\) \(expected to be in range of \[-2, 1\]\)",
      "dim-out-of-range", module="Softmax", dim=2),
    R("log_softmax", lambda: ((torch.randn(2, 3),), {"dim": -3}), r"dim -3 is out of range",
      "dim-out-of-range", module="LogSoftmax", dim=-3),
    R("softmax", lambda: ((torch.tensor(2.0),), {"dim": 1}),
      r"\(expected to be in range of \[-1, 0\]\)", "0d-dim-1"),
    R("softmax", lambda: ((torch.arange(3),), {"dim": 0}), r"input must be a floating-point tensor",
      "integer-input"),
    R("log_softmax", lambda: ((torch.randn(3),), {"dim": "a"}),
      r"argument 'dim' must be int, not str", "dim-str"),
    R("softmax", lambda: ((torch.randn(2, 3),), {"dim": torch.tensor([1])}),
      r"argument 'dim' must be int, not Tensor", "dim-1d-tensor"),
    R("log_softmax", lambda: ((torch.randn(2, 3),), {"dim": torch.tensor(True)}),
      r"argument 'dim' must be int, not Tensor", "dim-bool-tensor"),
    R("softmax", lambda: ((torch.randn(2, 3),), {"dim": np.bool_(True)}),
      r"argument 'dim' must be int, not numpy.bool", "dim-numpy-bool"),
    R("softmax", lambda: ((torch.randn(2, 3),), {"dim": 1.0}),
      r"argument 'dim' must be int, not float", "dim-float"),
    # Softmax2d refuses a 2-d input (and softmax over its dim 2 is out of range)
    R("softmax", lambda: ((torch.randn(2, 3),), {"dim": 2}),
      r"dim 2 is out of range|Softmax2d: expected input to be 3D or 4D, got 2D instead "
      r"\(input of shape \(2, 3\)", "softmax2d-2d-input", module="Softmax2d"),
    # a weight that requires grad: torch's nll_loss has no derivative for it
    *(R(name, _ce(input, target, weight=torch.rand(c, requires_grad=True), **kw),
        rf"The function '{op}' is not differentiable with respect to argument 'weight'",
        f"weight-requires-grad-{input.dim()}d{'-smoothing' if kw else ''}")
      for name, kw in (("nll_loss", {}), ("cross_entropy", {}),
                       ("cross_entropy", {"label_smoothing": 0.1}))
      for input, target, c, op in (
          (X, T, 5, "nll_loss_forward"),
          (torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long), 3,
           "nll_loss2d_forward"))),
]


# ------------------------------------------------------------------ extreme inputs


def _e(input, target=None, **kwargs):
    args = (input,) if target is None else (input, target)
    return lambda: (tuple(a.clone() for a in args), kwargs)


BIG = torch.tensor([[1e4, -1e4, 0.0, 1e4 - 1], [-1e4, 1e4, 1e4, 3.0], [1e4, 1e4 - 0.5, -1e4, 1e4]])
WITH_NEG_INF = torch.tensor([[-INF, 0.0, 1.0, 2.0], [0.5, -INF, -INF, 0.0], [3.0, 1.0, -INF, -INF]])
ALL_NEG_INF = torch.tensor([[-INF, -INF, -INF], [0.0, 1.0, 2.0]])


def _extremes():
    out = []
    for red in REDUCTIONS:
        for ls in (0.0, 0.3):
            out += [
                Extreme("cross_entropy", _e(BIG, torch.tensor([0, 2, 3])),
                        f"logits-1e4-{red}-ls{ls}",
                        options=dict(reduction=red, label_smoothing=ls)),
                Extreme("cross_entropy", _e(BIG.double() * 1e250, torch.tensor([3, 1, 1])),
                        f"logits-1e254-float64-{red}-ls{ls}",
                        options=dict(reduction=red, label_smoothing=ls)),
                # -inf on a non-target class is finite (p = 0); on the target it is an infinite loss
                # with a finite gradient; smoothing makes every row with a -inf infinite
                Extreme("cross_entropy", _e(WITH_NEG_INF, torch.tensor([2, 0, 2])),
                        f"neg-inf-logits-{red}-ls{ls}",
                        options=dict(reduction=red, label_smoothing=ls)),
                Extreme("cross_entropy",
                        _e(torch.randn(4, 3, generator=torch.Generator().manual_seed(1)),
                                            torch.full((4,), -100)), f"all-ignored-{red}-ls{ls}",
                        options=dict(reduction=red, label_smoothing=ls)),
            ]
    return out


EXTREMES = [
    *_extremes(),
    Extreme("cross_entropy", _e(torch.randn(4, 3, generator=torch.Generator().manual_seed(2)),
                                torch.tensor([1, 1, 1, 1]), weight=torch.tensor([1.0, 2.0, 3.0])),
            "all-ignored-in-range-index-weighted",
            options=dict(ignore_index=1, label_smoothing=0.1)),
    Extreme("cross_entropy", _e(torch.tensor([0.5, -1.0, 2.0]), torch.tensor(-100)),
            "1d-input-ignored-target", options=dict(label_smoothing=0.2)),
    Extreme("cross_entropy", _e(ALL_NEG_INF, torch.tensor([0, 1])), "all-neg-inf-row-is-nan",
            options=dict(reduction="none")),
    Extreme("cross_entropy", _e(torch.empty(0, 3), torch.empty(0, dtype=torch.long)),
            "empty-batch-mean-is-nan"),
    Extreme("cross_entropy", _e(torch.empty(0, 3), torch.empty(0, 3)),
            "empty-batch-probabilities-mean-is-nan"),
    Extreme("cross_entropy", _e(BIG, torch.softmax(BIG / 1e4, 1)), "logits-1e4-probabilities",
            options=dict(label_smoothing=0.1)),
    # a zero probability on a -inf logit: 0 * -inf is nan in torch too
    Extreme("cross_entropy", _e(WITH_NEG_INF, torch.tensor([[0.0, 0.5, 0.25, 0.25]] * 3)),
            "neg-inf-logit-zero-probability-is-nan", options=dict(reduction="none")),
    Extreme("nll_loss",
            _e(torch.randn(3, 4, generator=torch.Generator().manual_seed(3)), torch.full((3,), 2)),
            "nll-all-ignored-mean-is-nan", options=dict(ignore_index=2)),
    Extreme("softmax", _e(BIG), "softmax-1e4", options=dict(dim=1)),
    Extreme("log_softmax", _e(BIG), "log_softmax-1e4", options=dict(dim=1)),
    Extreme("softmax", _e(WITH_NEG_INF), "softmax-neg-inf", options=dict(dim=1)),
    Extreme("log_softmax", _e(WITH_NEG_INF), "log_softmax-neg-inf", options=dict(dim=1)),
    Extreme("log_softmax", _e(ALL_NEG_INF), "log_softmax-all-neg-inf-row-is-nan",
            options=dict(dim=1)),
    Extreme("softmax", _e(torch.tensor([[INF, 0.0, 1.0]])), "softmax-pos-inf-is-nan",
            options=dict(dim=1)),
    Extreme("softmax", _e(torch.empty(3, 0)), "softmax-empty-dim", options=dict(dim=1)),
    # float16 and bfloat16 sum in float32, as torch's kernels do: 70,000 ones pass 65504
    Extreme("softmax", _e(torch.zeros(70_000, dtype=torch.float16)), "float16-70000-equal-logits",
            options=dict(dim=0), rtol=0, atol=0),
    Extreme("softmax", _e(torch.zeros(2, 70_000, dtype=torch.bfloat16)),
            "bfloat16-70000-equal-logits", options=dict(dim=1), rtol=0, atol=0),
    # float32 logits, bfloat16 probabilities: the target's row sum is formed in float32
    Extreme("cross_entropy",
            _e(torch.randn(6, 50, generator=torch.Generator().manual_seed(4)) * 3,
               torch.softmax(torch.randn(6, 50, generator=torch.Generator().manual_seed(5)), 1)
               .to(torch.bfloat16)),
            "float32-logits-bfloat16-probabilities", options=dict(label_smoothing=0.1),
            grad=(0, 1)),
]
