"""Cases of linear_cross_entropy: class indices, probabilities, K-dimensional heads, torch's
options.

Every sample is small (N <= 6 rows, C <= 6 classes, F <= 4 features), so
lossutils' default chunking (torch's ``aspect_ratio:2`` rule) already cuts
the rows into chunks of 1 to 4 that need not divide N; chunk sizes chosen by
hand, vocabulary blocks and medium sizes are in tests/test_linear_cross_entropy.py
(``chunk_size`` is not an argument torch accepts, so it cannot be an option here).
"""

import math

import torch
from hypothesis import strategies as st

from strategies import REDUCTIONS, grid

from . import ALL_CAPABILITIES, Case, Extreme, Rejection

CAPABILITIES = ALL_CAPABILITIES

Options = torch.nn.LinearCrossEntropyOptions


def _label(options):
    parts = []
    for key, value in options.items():
        if isinstance(value, Options):
            value = f"Options(batch_chunk_size={value.batch_chunk_size})"
        parts.append(f"{key}={value}")
    return ",".join(parts) or "defaults"


def _shapes(draw, kdim: bool):
    """(input shape, linear_weight shape, logits shape): unbatched, batched (N >= 1) or
    K-dimensional."""
    f = draw(st.integers(1, 4), label="in_features")
    c = draw(st.integers(1, 6), label="classes")
    if kdim:
        n = draw(st.integers(1, 4), label="batch")
        extra = tuple(draw(st.lists(st.integers(1, 3), min_size=1, max_size=2),
                           label="out_features"))
        return (n, f), (c, *extra, f), (n, c, *extra)
    if draw(st.booleans(), label="unbatched"):
        return (f,), (c, f), (c,)
    n = draw(st.integers(1, 6), label="batch")  # the empty batch is an Extreme (its mean is nan)
    return (n, f), (c, f), (n, c)


def _sample(probabilities: bool, bias: bool, kdim: bool = False, weighted=None):
    def sample(draw, options):
        xs, ws, logits = _shapes(draw, kdim)
        c = ws[0]
        if probabilities:
            target = draw.simplex(*logits, dim=0 if len(logits) == 1 else 1)
        else:
            tshape = logits[:1] + logits[2:] if len(logits) > 1 else ()
            target = draw.randint(0, c, *tshape)
            # about a quarter of the rows are ignored (torch's default -100, or the option's value)
            ignored = draw.rand(*tshape, dtype=torch.float64) < 0.25
            target = torch.where(ignored, options.get("ignore_index") or -100, target)
            if target.numel():
                # one counted row, so 'mean' is finite (all-ignored is an Extreme)
                target.view(-1)[0] = 0
        kwargs = {}
        if bias:
            kwargs["linear_bias"] = draw.randn(*ws[:-1])
        if weighted if weighted is not None else draw(st.booleans(), label="weighted"):
            kwargs["weight"] = draw.rand(c, low=0.1, high=2.0)
        return (draw.randn(*xs), draw.randn(*ws), target), kwargs

    return sample


def _wide_probabilities(draw, options):
    """float32 hidden states, float64 probabilities: torch widens the loss to float64."""
    (x, W, _), kwargs = _sample(True, bias=True, weighted=False)(draw, options)
    t = draw.rand(*x.shape[:-1], W.shape[0], low=0.05, dtype=torch.float64)
    return (x, W, t / t.sum(-1, keepdim=True)), kwargs


SMOOTHED = grid(reduction=REDUCTIONS, label_smoothing=(0.0, 0.25))
CLASS_OPTIONS = SMOOTHED + [dict(ignore_index=2), dict(ignore_index=-1, reduction="none"),
                            dict(reduction="elementwise_mean")]
# torch's own chunked path: lossutils takes its batch_chunk_size; with label smoothing both ignore
# the options with the same warning
CHUNKED_OPTIONS = [dict(options=Options(batch_chunk_size=2), reduction=r) for r in REDUCTIONS] + [
    dict(options=Options(), reduction="mean"),
    dict(options=Options(batch_chunk_size=3), label_smoothing=0.1)]

CASES = [
    Case("linear_cross_entropy", _sample(False, bias=True), CLASS_OPTIONS,
         grad=(0, 1, "linear_bias"), id_options=_label),
    Case("linear_cross_entropy", _sample(False, bias=False), SMOOTHED[:3], grad=(0, 1),
         id_options=_label),
    # torch's chunked path: autocast and half precision against it here; it cannot do second
    # derivatives, grad, jacrev or hessian (it raises) and its jacfwd is wrong, so lossutils'
    # are checked against torch's default path in tests/test_linear_cross_entropy.py
    Case("linear_cross_entropy", _sample(False, bias=True), CHUNKED_OPTIONS,
         grad=(0, 1, "linear_bias"), id_options=_label,
         capabilities=frozenset({"autocast", "half"})),
    # probabilities: differentiable in the target and the class weight too, as in torch
    Case("linear_cross_entropy", _sample(True, bias=True, weighted=True), SMOOTHED,
         grad=(0, 1, 2, "linear_bias", "weight"), id_options=_label),
    Case("linear_cross_entropy", _sample(True, bias=False, weighted=False), SMOOTHED[:3],
         grad=(0, 1, 2), id_options=_label),
    # torch's chunked path and probabilities: from torch 2.14 it takes them for 'mean'/'sum' when
    # the target needs no gradient, else (and always on 2.13) both ignore the options with the
    # same warning (whose words changed in 2.14)
    Case("linear_cross_entropy", _sample(True, bias=True, weighted=False), CHUNKED_OPTIONS[:3],
         grad=(0, 1, "linear_bias"), id_options=lambda o: "target-no-grad," + _label(o),
         capabilities=frozenset({"autocast", "half"})),
    # (torch.func here against torch's default path, in tests/test_linear_cross_entropy.py:
    # under jacfwd the target needs no gradient, so torch 2.14's chunked path runs, wrongly)
    Case("linear_cross_entropy", _sample(True, bias=True, weighted=False), CHUNKED_OPTIONS[:3],
         grad=(0, 1, 2, "linear_bias"), id_options=_label,
         capabilities=frozenset({"second", "autocast", "half"})),
    Case("linear_cross_entropy", _wide_probabilities, SMOOTHED[:3], grad=(0, 1, 2, "linear_bias"),
         id_options=lambda o: "float64-target," + _label(o), dtypes=(torch.float32,)),
    Case("linear_cross_entropy", _sample(False, bias=True, kdim=True), SMOOTHED,
         grad=(0, 1, "linear_bias"), id_options=_label, examples=4),
    Case("linear_cross_entropy", _sample(True, bias=True, kdim=True), grid(reduction=REDUCTIONS),
         grad=(0, 1, 2, "linear_bias"), id_options=_label, examples=4),
]


def _xw(n=4, f=3, c=5, dtype=torch.float32):
    return torch.randn(n, f, dtype=dtype), torch.randn(c, f, dtype=dtype)


def _reject(id, match, build):
    return Rejection("linear_cross_entropy", build, match=match, id=id)


REJECTIONS = [
    _reject("input-3d",
            r"input must be \(in_features,\) or \(N, in_features\), got shape \(1, 4, 3\)",
            lambda: ((torch.randn(1, 4, 3), torch.randn(5, 3), torch.tensor([0, 1, 2, 3])), {})),
    _reject("weight-1d", r"linear_weight must be \(C, in_features\), got shape \(5,\)",
            lambda: ((torch.randn(4, 3), torch.randn(5), torch.tensor([0, 1, 2, 3])), {})),
    _reject("in-features", r"input has shape \(4, 3\), linear_weight has shape \(5, 4\)",
            lambda: ((torch.randn(4, 3), torch.randn(5, 4), torch.tensor([0, 1, 2, 3])), {})),
    _reject("bias-shape", r"expected linear_bias shape \(5,\), got \(4,\)",
            lambda: ((*_xw(), torch.tensor([0, 1, 2, 3])), {"linear_bias": torch.zeros(4)})),
    _reject("kdim-unbatched",
            r"requires batched input, \(N, 3\), got unbatched input with shape \(3,\)",
            lambda: ((torch.randn(3), torch.randn(5, 2, 3), torch.tensor([0, 1])), {})),
    _reject("probabilities-ignore-index",
            r"target has the logits' shape \(4, 5\), so it holds probabilities",
            lambda: ((*_xw(), torch.rand(4, 5)), {"ignore_index": 1})),
    _reject("bad-reduction", "avg is not a valid value for reduction",
            lambda: ((*_xw(), torch.tensor([0, 1, 2, 3])), {"reduction": "avg"})),
    _reject("float-class-target",
            r"class-index targets must be int64 \(or uint8\), got target of dtype torch.float32",
            lambda: ((*_xw(), torch.tensor([0.0, 1, 2, 3])), {})),
    _reject("integer-probabilities", r"a target of the logits' shape \(4, 5\) holds probabilities",
            lambda: ((*_xw(), torch.ones(4, 5, dtype=torch.long)), {})),
    _reject("batch-size", r"target of shape \(3,\)",
            lambda: ((*_xw(), torch.tensor([0, 1, 2])), {})),
    _reject("kdim-target", r"target must have shape \(4, 2\) for logits of shape \(4, 5, 2\)",
            lambda: ((torch.randn(4, 3), torch.randn(5, 2, 3), torch.zeros(4, 3, dtype=torch.long)),
                     {})),
    _reject("weight-shape", r"weight tensor of shape: \[4\]",
            lambda: ((*_xw(), torch.tensor([0, 1, 2, 3])), {"weight": torch.ones(4)})),
    _reject("weight-dtype", r"weight has dtype torch.float64, input has dtype torch.float32",
            lambda: ((*_xw(), torch.tensor([0, 1, 2, 3])),
                     {"weight": torch.ones(5, dtype=torch.float64)})),
    _reject("label-smoothing", r"label_smoothing must be between 0.0 and 1.0. Got: 1.5",
            lambda: ((*_xw(), torch.tensor([0, 1, 2, 3])), {"label_smoothing": 1.5})),
    _reject("out-of-bounds", r"Target 7 is out of bounds.*class indices must lie in \[0, 5\)",
            lambda: ((*_xw(), torch.tensor([0, 1, 7, 3])), {})),
    _reject("weight-dtype-mismatch",
            r"linear_weight has dtype torch.float64, input has dtype torch.float32",
            lambda: ((torch.randn(4, 3), torch.randn(5, 3, dtype=torch.float64),
                      torch.tensor([0, 1, 2, 3])), {})),
    _reject("class-weight-requires-grad", r"not differentiable with respect to argument 'weight'",
            lambda: ((*_xw(), torch.tensor([0, 1, 2, 3])),
                     {"weight": torch.ones(5, requires_grad=True)})),
    _reject("options-conflict", r"batch_chunk_size \(=3\) and chunking_method \('aspect_ratio'\)",
            lambda: ((*_xw(), torch.tensor([0, 1, 2, 3])),
                     {"options": Options(batch_chunk_size=3, chunking_method="aspect_ratio")})),
]


def _extreme(id, build, **options):
    return Extreme("linear_cross_entropy", build, id=id, options=options,
                   grad=(0, 1, "linear_bias"))


def _huge_logits():
    x, W = _xw(dtype=torch.float64)
    return (x * 1e4, W,
            torch.tensor([0, 1, 2, 3])), {"linear_bias": torch.zeros(5, dtype=torch.float64)}


def _minus_inf_class(target):
    def build():
        x, W = _xw(dtype=torch.float64)
        bias = torch.tensor([0.0, -math.inf, 0.0, 1.0, 2.0], dtype=torch.float64)
        return (x, W, torch.tensor(target)), {"linear_bias": bias}

    return build


EXTREMES = [
    # logits of order 1e4: exp would overflow without the running max
    _extreme("huge-logits", _huge_logits),
    _extreme("huge-logits-smoothed", _huge_logits, label_smoothing=0.2, reduction="sum"),
    # a class whose logit is -inf: probability 0, loss finite unless it is the target
    _extreme("minus-inf-class", _minus_inf_class([0, 2, 3, 4])),
    _extreme("minus-inf-target", _minus_inf_class([0, 1, 3, 4]), reduction="none"),
    _extreme("all-ignored-mean-is-nan",
             lambda: ((*_xw(dtype=torch.float64), torch.full((4,), -100)),
                      {"linear_bias": torch.zeros(5, dtype=torch.float64)})),
    _extreme("all-ignored-smoothed",
             lambda: ((*_xw(dtype=torch.float64), torch.full((4,), -100)),
                      {"linear_bias": torch.zeros(5, dtype=torch.float64)}), label_smoothing=0.3),
    _extreme("empty-batch",
             lambda: ((torch.empty(0, 3, dtype=torch.float64),
                       torch.randn(5, 3, dtype=torch.float64),
                       torch.empty(0, dtype=torch.long)),
                      {"linear_bias": torch.zeros(5, dtype=torch.float64)})),
]
