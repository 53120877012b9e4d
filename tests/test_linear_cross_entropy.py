"""linear_cross_entropy checks that do not fit the case table.

The table (tests/cases/linear_cross_entropy.py) holds tiny samples and
torch's arguments only. Here: lossutils' own ``chunk_size`` /
``vocab_chunk_size`` (chunks that divide N and chunks that do not, one class
per block, everything in one block) against torch on medium sizes, the claim
that no ``N x V`` tensor is ever created, repeated backward, and the module
class against torch's with the same parameters.
"""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import lossutils.functional as LF
import lossutils.nn as LN
import test_capabilities as capabilities
from cases import ALL_CAPABILITIES, CAPABILITY_CHECKS, CASES
from strategies import Draw
from test_losses import _label

Options = torch.nn.LinearCrossEntropyOptions


def _problem(n=97, f=16, c=300, dtype=torch.float64, seed=0, probabilities=False):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=gen, dtype=dtype)
    W = torch.randn(c, f, generator=gen, dtype=dtype) / f**0.5
    b = torch.randn(c, generator=gen, dtype=dtype)
    if probabilities:
        t = torch.rand(n, c, generator=gen, dtype=dtype)
        target = t / t.sum(1, keepdim=True)
    else:
        target = torch.randint(0, c, (n,), generator=gen)
        target[::7] = -100
    weight = torch.rand(c, generator=gen, dtype=dtype) + 0.1
    return x, W, b, target, weight


def _value_and_grads(fn, x, W, b, target, kwargs, seed=1):
    x, W, b = (t.detach().clone().requires_grad_() for t in (x, W, b))
    loss = fn(x, W, target, linear_bias=b, **kwargs)
    g = torch.randn(loss.shape, generator=torch.Generator().manual_seed(seed), dtype=loss.dtype)
    return (loss, *torch.autograd.grad(loss, (x, W, b), g))


CHUNKS = [dict(chunk_size=4), dict(chunk_size=10), dict(chunk_size=97), dict(chunk_size=500),
          dict(chunk_size=32, vocab_chunk_size=64), dict(chunk_size=13, vocab_chunk_size=7),
          dict(chunk_size=97, vocab_chunk_size=1)]
OPTIONS = [{}, dict(reduction="sum"), dict(reduction="none"),
           dict(label_smoothing=0.2, weight=True),
           dict(weight=True, ignore_index=5), dict(reduction="none", label_smoothing=0.1)]


@pytest.mark.parametrize("chunks", CHUNKS, ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
@pytest.mark.parametrize("options", OPTIONS,
                         ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "mean")
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32], ids=["f64", "f32"])
def test_every_chunking_matches_torch_on_medium_sizes(chunks, options, dtype):
    x, W, b, target, weight = _problem(dtype=dtype)
    options = {k: (weight if k == "weight" else v) for k, v in options.items()}
    if "ignore_index" in options:
        target = target.clamp(min=0)
    theirs = _value_and_grads(F.linear_cross_entropy, x, W, b, target, options)
    ours = _value_and_grads(LF.linear_cross_entropy, x, W, b, target, {**options, **chunks})
    tol = dict(rtol=1e-7, atol=1e-10) if dtype == torch.float64 else dict(rtol=2e-5, atol=2e-6)
    for a, t in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, t, **tol)


@pytest.mark.parametrize("chunks", CHUNKS[1::2],
                         ids=lambda c: ",".join(f"{k}={v}" for k, v in c.items()))
def test_probabilities_and_their_gradients_in_every_chunking(chunks):
    x, W, b, target, weight = _problem(probabilities=True)
    outs = []
    for fn, extra in ((F.linear_cross_entropy, {}), (LF.linear_cross_entropy, chunks)):
        leaves = [t.detach().clone().requires_grad_() for t in (x, W, b, target, weight)]
        x_, W_, b_, t_, w_ = leaves
        loss = fn(x_, W_, t_, linear_bias=b_, weight=w_, label_smoothing=0.1, reduction="sum",
                  **extra)
        outs.append((loss, *torch.autograd.grad(loss, leaves)))
    for a, t in zip(*outs, strict=True):
        torch.testing.assert_close(a, t, rtol=1e-7, atol=1e-10)


class _LargestTensor(TorchDispatchMode):
    """Records the largest number of elements of any tensor an op returns."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_no_tensor_of_n_by_v_elements_is_ever_made(reduction):
    n, f, c = 256, 8, 2048  # logits would be 524288 elements; W is 16384, x 2048
    x, W, b, target, _ = _problem(n, f, c, dtype=torch.float32)
    x.requires_grad_(), W.requires_grad_()
    with _LargestTensor() as mode:
        loss = LF.linear_cross_entropy(x, W, target, reduction=reduction, chunk_size=16,
                                       vocab_chunk_size=512)
        loss.backward(torch.ones_like(loss))
    assert mode.largest <= max(16 * 512, c * f), mode.largest
    with _LargestTensor() as mode:  # the check can fail: torch's reference path builds the logits
        F.linear_cross_entropy(x, W, target, reduction=reduction).sum().backward()
    assert mode.largest >= n * c


def test_repeated_backward_recomputes_what_was_consumed():
    x, W, b, target, _ = _problem(dtype=torch.float64)
    x.requires_grad_(), W.requires_grad_()
    loss = LF.linear_cross_entropy(x, W, target, chunk_size=8)
    first = torch.autograd.grad(loss, (x, W), retain_graph=True)
    second = torch.autograd.grad(loss, (x, W), torch.tensor(2.0, dtype=torch.float64))
    for g1, g2 in zip(first, second, strict=True):
        torch.testing.assert_close(2 * g1, g2, rtol=1e-12, atol=1e-14)


def test_chunk_size_is_validated():
    x, W, b, target, _ = _problem(dtype=torch.float32)
    for name, bad in (("chunk_size", 0), ("vocab_chunk_size", -3), ("chunk_size", 2.5)):
        with pytest.raises(ValueError, match=f"{name} must be a positive int or None, got {bad!r}"):
            LF.linear_cross_entropy(x, W, target, **{name: bad})


@pytest.mark.parametrize("kwargs", [{}, dict(bias=True, reduction="sum", label_smoothing=0.1),
                                    dict(out_features=(2, 3), bias=True, ignore_index=1,
                                         reduction="none"),
                                    dict(options=Options(batch_chunk_size=4))], ids=str)
def test_module_matches_torch(kwargs):
    weight = torch.rand(7) + 0.5
    torch.manual_seed(0)
    theirs = torch.nn.LinearCrossEntropyLoss(5, 7, weight=weight, **kwargs)
    ours = LN.LinearCrossEntropyLoss(5, 7, weight=weight, **kwargs)
    ours.load_state_dict(theirs.state_dict())
    assert isinstance(ours, LN._Loss) and not isinstance(ours, torch.nn.modules.loss._Loss)
    assert repr(ours) == repr(theirs) and list(ours.state_dict()) == list(theirs.state_dict())
    x = torch.randn(9, 5, dtype=torch.float32)
    target = torch.randint(0, 7, (9, *kwargs.get("out_features", ())))
    values = []
    for module in (ours, theirs):
        module.zero_grad()
        out = module(x, target)
        out.sum().backward()
        values.append((out, *(p.grad for p in module.parameters())))
    for a, t in zip(*values, strict=True):
        torch.testing.assert_close(a, t)


@pytest.mark.parametrize("build, error, match", [
    (lambda M: M(5, 7, weight=torch.ones(6)), RuntimeError,
     r"expected weight shape to be \(7,\), got \(6,\)"),
    (lambda M: M(5, 7, label_smoothing=1.5), RuntimeError,
     r"expected label_smoothing to be in range \[0, 1\]"),
])
def test_module_rejects_what_torch_rejects(build, error, match):
    with pytest.raises(error):
        build(torch.nn.LinearCrossEntropyLoss)
    with pytest.raises(error, match=match):
        build(LN.LinearCrossEntropyLoss)


def test_module_chunk_size_is_in_its_repr():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        module = LN.LinearCrossEntropyLoss(4, 6, chunk_size=2)
    assert "chunk_size=2, vocab_chunk_size=None" in repr(module)


class _TorchDefaultPath:
    """torch.nn.functional with ``linear_cross_entropy``'s ``options`` dropped: torch's default
    path, which is ``cross_entropy(linear(...))`` exactly."""

    @staticmethod
    def linear_cross_entropy(*args, options=None, **kwargs):
        return F.linear_cross_entropy(*args, **kwargs)


WITH_OPTIONS = [(case, options) for case in CASES for options in case.options
                if "options" in options and case.capabilities != ALL_CAPABILITIES]


@pytest.mark.parametrize("check", [*CAPABILITY_CHECKS["second"], *CAPABILITY_CHECKS["func"]])
@pytest.mark.parametrize("case, options", WITH_OPTIONS,
                         ids=[_label(c, o) for c, o in WITH_OPTIONS])
def test_options_keep_every_capability(case, options, check, monkeypatch):
    """With ``options``, torch's chunked path cannot differentiate twice, nor run
    ``torch.func.grad``, ``jacrev`` or ``hessian`` (it raises), and its ``jacfwd`` is wrong
    (forward mode is documented unsupported; from torch 2.14 this also hits probability
    targets, whose tangent is no ``requires_grad``). lossutils' ``options`` only pick the
    chunk size, so every capability stays: the capability checks of
    tests/test_capabilities.py, against torch's default path."""
    monkeypatch.setattr(capabilities, "F", _TorchDefaultPath)

    def run_check(data, skip):
        args, kwargs = case.sample(Draw(data, torch.float64), options)
        if skip:
            return
        if check in CAPABILITY_CHECKS["second"]:
            capabilities._check_second(case, options, args, kwargs, check)
        else:
            capabilities._check_func(case, options, args, kwargs, check)

    capabilities._second_example(run_check)


@pytest.mark.parametrize("check", ["second", "grad", "jacrev", "hessian"])
def test_torch_chunked_path_cannot(check):
    """Why the test above compares with torch's default path: with ``options`` (class indices),
    torch's chunked path raises for these."""
    x, W, b = torch.randn(3, 2), torch.randn(4, 2), torch.randn(4)

    def f(x):
        return F.linear_cross_entropy(x, W, torch.tensor([0, 1, 3]), linear_bias=b,
                                      options=torch.nn.LinearCrossEntropyOptions(),
                                      reduction="sum")

    with pytest.raises(RuntimeError):
        if check == "second":
            x.requires_grad_()
            first, = torch.autograd.grad(f(x), x, create_graph=True)
            torch.autograd.grad(first.sum(), x)
        else:
            getattr(torch.func, check)(f)(x)
