"""``lossutils.nn.AdaptiveLogSoftmaxWithLoss`` against ``torch.nn.AdaptiveLogSoftmaxWithLoss``.

One table of configurations (clusters, ``div_value``, ``head_bias``) drives the
parity checks: forward ``(output, loss)``, the gradient of every argument and
parameter, ``log_prob`` and ``predict``, in float32 and float64, for a single
row and for batches (empty ones too) whose targets hypothesis draws. Then the
``state_dict`` both ways, torch's refusals, ``gradcheck`` / ``gradgradcheck``
and second derivatives against torch's.
"""

from __future__ import annotations

import re
import warnings
from typing import NamedTuple

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch.func import functional_call

import lossutils.functional as LF
import lossutils.nn as LN
from lossutils.functional.adaptive import TargetLogProbFunction, target_log_prob
from strategies import Draw


class Config(NamedTuple):
    in_features: int
    n_classes: int
    cutoffs: tuple[int, ...]
    div_value: float = 4.0
    head_bias: bool = False


CONFIGS = [
    Config(16, 20, (4,)),  # one tail cluster
    Config(16, 20, (4, 10), 2.0, True),  # two clusters, a head bias
    Config(32, 100, (5, 20, 60)),  # three clusters, the default div_value
    Config(8, 10, (1, 2, 3, 4, 5, 6, 7, 8, 9), 1.5, True),  # one class per cluster
    Config(16, 20, (4, 10), 16.0),  # projections of width 0: each tail is uniform
    Config(6, 7, (6,), 2.0),  # a last cluster of a single class
]
IDS = [f"{c.in_features}-{c.n_classes}-{list(c.cutoffs)}-div{c.div_value}"
       + ("-bias" if c.head_bias else "") for c in CONFIGS]
# float64: rounding only (lossutils' log-softmax sums in another order than ATen's);
# float32: a few ulps of the largest entry, as for lossutils.functional.log_softmax itself.
TOLERANCE = {torch.float64: dict(rtol=1e-10, atol=1e-12),
             torch.float32: dict(rtol=1e-5, atol=1e-5)}


def pair(config: Config, dtype=torch.float64, seed: int = 0):
    """torch's module and ours, built from the same seed (hence the same weights)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch's "Initializing zero-element tensors is a no-op"
        torch.manual_seed(seed)
        theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(*config, dtype=dtype)
        torch.manual_seed(seed)
        ours = LN.AdaptiveLogSoftmaxWithLoss(*config, dtype=dtype)
    return theirs, ours


def targets(draw: Draw, config: Config, n: int) -> torch.Tensor:
    """``n`` targets, all from one region (head only, one cluster) or from everywhere."""
    bounds = [0, *config.cutoffs, config.n_classes]
    region = draw(st.sampled_from(["all", *range(len(bounds) - 1)]), label="targets from")
    low, high = (0, config.n_classes) if region == "all" else bounds[region:region + 2]
    return draw.randint(low, high, n)


def run(module, x, target, grad_seed=1):
    """forward, then the gradients of ``loss + <output, g>`` w.r.t. input and parameters."""
    x = x.detach().clone().requires_grad_()
    out = module(x, target)
    g = torch.randn(out.output.shape, generator=torch.Generator().manual_seed(grad_seed),
                    dtype=x.dtype)
    wrt = [x, *module.parameters()]
    grads = torch.autograd.grad(out.loss + (out.output * g).sum(), wrt, allow_unused=True)
    return out, [torch.zeros_like(t) if d is None else d for t, d in zip(wrt, grads, strict=True)]


def assert_same_run(ours, theirs, dtype):
    (out, grads), (out_t, grads_t) = ours, theirs
    assert type(out).__name__ == type(out_t).__name__ == "_ASMoutput"
    assert out._fields == out_t._fields == ("output", "loss")
    for a, b in zip([*out, *grads], [*out_t, *grads_t], strict=True):
        assert a.shape == b.shape and a.dtype == b.dtype
        torch.testing.assert_close(a, b, equal_nan=True, **TOLERANCE[dtype])


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_forward_gradients_log_prob_predict_match_torch(config, dtype):
    theirs, ours = pair(config, dtype)

    @settings(max_examples=4)
    @given(data=st.data())
    def check(data):
        draw = Draw(data, dtype)
        n = draw(st.sampled_from([None, 0, 1, 2, 7, 33]), label="batch")  # None: one row, ()
        x = draw.randn(*((config.in_features,) if n is None else (n, config.in_features)),
                       scale=draw(st.sampled_from([0.5, 3.0, 30.0]), label="scale"))
        target = targets(draw, config, 1 if n is None else n)
        target = target[0] if n is None else target
        assert_same_run(run(ours, x, target), run(theirs, x, target), dtype)
        if n is None:
            return
        # log_prob: values and gradients; predict: the same classes
        xs = [x.detach().clone().requires_grad_() for _ in range(2)]
        lp, lp_t = ours.log_prob(xs[0]), theirs.log_prob(xs[1])
        torch.testing.assert_close(lp, lp_t, **TOLERANCE[dtype])
        g = torch.randn(lp.shape, generator=torch.Generator().manual_seed(2), dtype=dtype)
        (lp * g).sum().backward()
        (lp_t * g).sum().backward()
        torch.testing.assert_close(xs[0].grad, xs[1].grad, **TOLERANCE[dtype])
        assert torch.equal(ours.predict(x), theirs.predict(x))

    check()


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_predict_agrees_with_log_prob(config):
    """predict scores the tails only where the head's best entry is a cluster: every mix of
    rows (all in the shortlist, all in clusters, both) gives log_prob's argmax."""
    _, ours = pair(config)
    with torch.no_grad():
        ours.head.weight.mul_(8.0)  # decisive head scores: rows land in every region
        x = torch.randn(64, config.in_features, generator=torch.Generator().manual_seed(3))
        x = x.to(torch.float64)
        best = ours.log_prob(x).argmax(1)
        in_head = best < config.cutoffs[0]
        for rows in (x, x[in_head], x[~in_head]):
            assert torch.equal(ours.predict(rows), ours.log_prob(rows).argmax(1))


@pytest.mark.parametrize("config", CONFIGS, ids=IDS)
def test_state_dict_loads_both_ways(config):
    theirs, ours = pair(config, seed=1)
    assert repr(ours) == repr(theirs)
    assert [(k, v.shape) for k, v in ours.state_dict().items()] == \
        [(k, v.shape) for k, v in theirs.state_dict().items()]
    # same seed, same creation order: the same initial weights
    for a, b in zip(ours.state_dict().values(), theirs.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    # torch's trained weights into ours, and ours back into a fresh torch module
    _, fresh = pair(config, seed=2)
    fresh.load_state_dict(theirs.state_dict(), strict=True)
    back, _ = pair(config, seed=3)
    back.load_state_dict(fresh.state_dict(), strict=True)
    x = torch.randn(5, config.in_features, dtype=torch.float64)
    y = torch.arange(5) * (config.n_classes - 1) // 4
    assert torch.equal(fresh(x, y).output, ours(x, y).output)
    assert torch.equal(back(x, y).output, theirs(x, y).output)
    for attr in ("in_features", "n_classes", "cutoffs", "div_value", "head_bias",
                 "shortlist_size", "n_clusters", "head_size"):
        assert getattr(ours, attr) == getattr(theirs, attr), attr
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "Initializing zero-element tensors is a no-op"
        ours.reset_parameters()
    assert not torch.equal(ours.head.weight, theirs.head.weight)


# ------------------------------------------------------------------ refusals

BAD_CUTOFFS = [[], [3, 3], [0, 3], [3, 10], [5, 2], [2.5], [-1], [3.0, 6.0]]


@pytest.mark.parametrize("cutoffs", BAD_CUTOFFS, ids=[str(c) for c in BAD_CUTOFFS])
def test_bad_cutoffs_raise_as_torch(cutoffs):
    with pytest.raises(Exception) as theirs:
        torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)
    with pytest.raises(type(theirs.value), match=re.escape(str(theirs.value))):
        LN.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs)


def _long(*values):
    return torch.tensor(values, dtype=torch.long)


BAD_CALLS = {  # (input, target): what forward refuses
    "target-2d": (torch.randn(4, 8), torch.zeros(4, 1, dtype=torch.long)),
    "batch-mismatch": (torch.randn(4, 8), torch.zeros(3, dtype=torch.long)),
    "input-3d": (torch.randn(4, 2, 8), torch.zeros(4, dtype=torch.long)),
    "input-1d-target-1d": (torch.randn(8), torch.zeros(8, dtype=torch.long)),
    "input-2d-target-0d": (torch.randn(4, 8), torch.tensor(1)),
    "target-negative": (torch.randn(4, 8), _long(0, -1, 7, 9)),
    "target-too-large": (torch.randn(4, 8), _long(0, 10, 7, 9)),
    "target-too-large-0d": (torch.randn(8), torch.tensor(10)),
    "target-float": (torch.randn(4, 8), torch.tensor([0.0, 4, 7, 9])),
    "target-float-head-only": (torch.randn(2, 8), torch.tensor([0.0, 1])),
    "target-int16": (torch.randn(4, 8), _long(0, 4, 7, 9).short()),
    "wrong-width": (torch.randn(4, 7), _long(0, 4, 7, 9)),
    "wrong-dtype": (torch.randn(4, 8, dtype=torch.float64), _long(0, 4, 7, 9)),
}


@pytest.mark.parametrize("name", list(BAD_CALLS))
def test_bad_calls_raise_as_torch(name):
    x, target = BAD_CALLS[name]
    theirs, ours = pair(Config(8, 10, (3, 6), 2.0), dtype=torch.float32)
    with pytest.raises(Exception) as err:
        theirs(x, target)
    # torch's message first (ours may add the shapes after it)
    with pytest.raises(type(err.value), match=re.escape(str(err.value).strip())):
        ours(x, target)


@pytest.mark.parametrize("method", ["log_prob", "predict"])
@pytest.mark.parametrize("shape", [(8,), (2, 3, 8), ()], ids=["1d", "3d", "0d"])
def test_log_prob_and_predict_refuse_as_torch(method, shape):
    theirs, ours = pair(Config(8, 10, (3, 6), 2.0), dtype=torch.float32)
    x = torch.randn(shape)
    outcome = []
    for module in (theirs, ours):
        try:
            outcome.append(getattr(module, method)(x))
        except Exception as err:  # the same exception type, or the same result
            outcome.append(type(err))
    if isinstance(outcome[0], torch.Tensor):
        assert torch.equal(*outcome)
    else:
        assert outcome[0] is outcome[1]


def test_int32_targets_and_empty_batch_match_torch():
    theirs, ours = pair(Config(8, 10, (3, 6), 2.0))
    x = torch.randn(6, 8, dtype=torch.float64)
    y = torch.tensor([0, 2, 3, 5, 6, 9], dtype=torch.int32)
    assert_same_run(run(ours, x, y), run(theirs, x, y), torch.float64)
    empty = run(ours, x[:0], y[:0].long())
    assert empty[0].output.shape == (0,) and empty[0].loss.isnan()  # a mean over nothing
    assert_same_run(empty, run(theirs, x[:0], y[:0].long()), torch.float64)


# ------------------------------------------------------------------ derivatives


def test_target_log_prob_gradcheck_gradgradcheck_and_forward_mode():
    """Both outputs of the Function (the picked log-probabilities and the whole log-softmax):
    gradcheck (reverse, forward mode, vmap over the backward), gradgradcheck, torch's values."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 5, dtype=torch.float64, generator=gen, requires_grad=True)
    t = torch.tensor([0, 4, 2, 2, 1, 3])
    both = lambda z: TargetLogProbFunction.apply(z, t)  # noqa: E731
    picked = lambda z: target_log_prob(z, t)  # noqa: E731
    for f in (both, picked):
        assert torch.autograd.gradcheck(f, x, check_forward_ad=True, check_batched_grad=True)
        assert torch.autograd.gradgradcheck(f, x, check_fwd_over_rev=True)
    want = F.log_softmax(x, 1)
    torch.testing.assert_close(both(x)[1], want, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(picked(x), want.gather(1, t[:, None]).squeeze(1), rtol=1e-14,
                               atol=1e-14)
    assert isinstance(picked(x).grad_fn, TargetLogProbFunction._backward_cls)


def _as_function(module, names):
    """The module as a function of (input, *parameters), for gradcheck."""
    def f(x, *params):
        return functional_call(module, dict(zip(names, params, strict=True)), (x, TARGET))
    return f


TARGET = torch.tensor([0, 1, 4, 6, 8, 9, 2])


@pytest.mark.parametrize("config", [Config(6, 10, (2, 6), 2.0, True), Config(4, 10, (3,), 2.0)],
                         ids=["two-clusters-bias", "one-cluster"])
def test_module_gradcheck_and_gradgradcheck(config):
    _, ours = pair(config)
    names = [n for n, _ in ours.named_parameters()]
    params = [p.detach().clone().requires_grad_() for p in ours.parameters()]
    x = torch.randn(len(TARGET), config.in_features, dtype=torch.float64, requires_grad=True)
    f = _as_function(ours, names)
    assert torch.autograd.gradcheck(lambda *a: tuple(f(*a)), (x, *params))
    assert torch.autograd.gradgradcheck(lambda *a: f(*a).loss, (x, *params))


def _hvp(module, x, target, use_log_prob=False):
    """Hessian-vector products of a scalar of the module w.r.t. input and every parameter."""
    x = x.detach().clone().requires_grad_()
    wrt = [x, *module.parameters()]
    if use_log_prob:
        value = (module.log_prob(x).exp() * torch.linspace(0, 1, module.n_classes,
                                                           dtype=x.dtype)).sum()
    else:
        out = module(x, target)
        value = out.loss + out.output.sin().sum()  # sin: a non-linear use of each output
    # allow_unused: a cluster no target falls in has no gradient (None in torch as in ours)
    grads = torch.autograd.grad(value, wrt, create_graph=True, allow_unused=True)
    vs = [torch.randn(p.shape, generator=torch.Generator().manual_seed(i), dtype=p.dtype)
          for i, p in enumerate(wrt)]
    used = [(g * v).sum() for g, v in zip(grads, vs, strict=True) if g is not None]
    hvp = torch.autograd.grad(sum(used), wrt, allow_unused=True)
    return [torch.zeros_like(t) if h is None else h for t, h in zip(wrt, hvp, strict=True)]


@pytest.mark.parametrize("config", CONFIGS[:4], ids=IDS[:4])
def test_second_derivatives_match_torch(config):
    """Hessian-vector products through forward's loss and output, and through log_prob
    (lossutils' log_softmax directly), equal torch's."""
    theirs, ours = pair(config)
    x = torch.randn(9, config.in_features, dtype=torch.float64,
                    generator=torch.Generator().manual_seed(4))
    y = torch.randint(0, config.n_classes, (9,), generator=torch.Generator().manual_seed(5))
    for a, b in zip(_hvp(ours, x, y), _hvp(theirs, x, y), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)
    for a, b in zip(_hvp(ours, x, y, True), _hvp(theirs, x, y, True), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_torch_func_grad_and_jvp_match_torch():
    theirs, ours = pair(CONFIGS[1])
    x = torch.randn(7, 16, dtype=torch.float64)
    y = torch.tensor([0, 3, 4, 9, 10, 19, 5])
    params = {k: v.detach() for k, v in theirs.named_parameters()}
    grads = [torch.func.grad(lambda p, m=m: functional_call(m, p, (x, y)).loss)(params)
             for m in (ours, theirs)]
    for k in params:
        torch.testing.assert_close(grads[0][k], grads[1][k], rtol=1e-10, atol=1e-12)
    tangent = torch.randn_like(x)
    jvps = [torch.func.jvp(lambda z, m=m: m(z, y).output, (x,), (tangent,))[1]
            for m in (ours, theirs)]
    torch.testing.assert_close(jvps[0], jvps[1], rtol=1e-10, atol=1e-12)


def _log_softmax_vmaps() -> bool:
    """Whether lossutils.functional.log_softmax runs under vmap yet (its Function had no vmap
    rule when this test was written); TargetLogProbFunction's forward calls it."""
    try:
        torch.func.vmap(lambda z: LF.log_softmax(z, 0))(torch.randn(2, 3))
    except RuntimeError as err:
        assert "LogSoftmaxFunction" in str(err) and "vmap" in str(err)
        return False
    return True


def test_torch_func_transforms_of_target_log_prob_match_torch():
    """jacrev (vmap over the hand-written backward) works now; the transforms that vmap the
    forward (jacfwd, hessian, vmap) work once lossutils' log_softmax has a vmap rule, and
    until then refuse with torch's clear error."""
    x = torch.randn(4, 5, dtype=torch.float64, generator=torch.Generator().manual_seed(6))
    t = torch.tensor([0, 4, 2, 2])
    ours = lambda z: target_log_prob(z, t)  # noqa: E731
    theirs = lambda z: F.log_softmax(z, 1).gather(1, t[:, None]).squeeze(1)  # noqa: E731
    batch = torch.stack([x, 2 * x])  # vmap: one problem per entry of the batch dimension
    transforms = {"jacrev": (torch.func.jacrev, x)}
    later = {"jacfwd": (torch.func.jacfwd, x),
             "hessian": (lambda f: torch.func.hessian(lambda z: f(z).square().sum()), x),
             "vmap": (torch.func.vmap, batch)}
    if _log_softmax_vmaps():
        transforms |= later
    else:
        for transform, value in later.values():
            with pytest.raises(RuntimeError, match="LogSoftmaxFunction.*vmap"):
                transform(ours)(value)
    for name, (transform, value) in transforms.items():
        torch.testing.assert_close(transform(ours)(value), transform(theirs)(value), rtol=1e-12,
                                   atol=1e-12, msg=name)
