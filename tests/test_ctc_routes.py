"""CTC's two routes, each against torch: probability space (``_ctc_linear``) and log space.

The case table's CTC inputs are small and normalised, so most of them take the
probability-space route; here every batch runs both ways (the log-space route forced by
making :func:`_ctc_linear.fits` refuse), over a table of corners: lengths that differ,
empty targets, repeated labels, impossible alignments, ``zero_infinity``, every
reduction, float32 and float64, concatenated and unbatched targets, another blank, a
label equal to the blank. Then the boundary of the route itself, a second backward
through a retained graph (which runs the forward again), and the forward alone.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import lossutils.functional as LF
from lossutils.functional import _ctc_linear as linear

F64 = torch.float64


def _log_probs(t, n, c, seed, dtype=F64, scale=2.0):
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(t, n, c, generator=gen, dtype=dtype) * scale).log_softmax(2)


# (name, targets as lists, input lengths, classes, frames, keywords)
BATCHES = [
    ("uniform", [[1, 2, 3], [4, 4], [2]], [8, 8, 8], 5, 8, {}),
    ("ragged-frames", [[1, 2, 3], [4, 4], [2]], [8, 5, 3], 5, 8, {}),
    ("empty-targets", [[], [3, 1], []], [6, 6, 2], 4, 6, {}),
    ("repeats", [[2, 2, 2], [1, 1], [3, 1, 3]], [7, 5, 4], 4, 7, {}),
    ("impossible", [[1, 1, 1], [2, 3]], [4, 5], 4, 5, {}),
    ("impossible-zero-infinity", [[1, 1, 1], [2, 3]], [4, 5], 4, 5, {"zero_infinity": True}),
    ("blank-2", [[1, 0, 3], [3, 3]], [6, 6], 4, 6, {"blank": 2}),
    ("label-equals-blank-inside", [[1, 0, 3], [0, 2]], [6, 5], 4, 6, {"blank": 0}),
    ("one-frame", [[1], []], [1, 1], 3, 1, {}),
]


def _call(fn, log_probs, labels, frames, layout, **kw):
    lengths = [len(seq) for seq in labels]
    if layout == "concatenated":
        targets = torch.tensor([c for seq in labels for c in seq], dtype=torch.int64)
    else:
        targets = torch.tensor([seq + [1] * (max(lengths, default=0) - len(seq)) for seq in labels]
                               or [[]], dtype=torch.int64)
        if targets.dim() == 2 and targets.size(1) == 0:
            targets = torch.zeros(len(labels), 1, dtype=torch.int64)
    return fn(log_probs, targets, torch.tensor(frames), torch.tensor(lengths), **kw)


def _run(fn, log_probs, labels, frames, layout, reduction, **kw):
    x = log_probs.detach().requires_grad_()
    out = _call(fn, x, labels, frames, layout, reduction=reduction, **kw)
    grad_out = torch.linspace(0.5, 1.5, out.numel(), dtype=out.dtype).view(out.shape)
    (grad,) = torch.autograd.grad(out, x, grad_out)
    return out, grad


@pytest.fixture(params=["probability", "log"])
def route(request, monkeypatch):
    """Which route the batch takes; the spy records that the probability route ran."""
    taken = []
    if request.param == "log":
        monkeypatch.setattr(linear, "fits", lambda *a: False)
    else:
        alpha = linear.alpha
        monkeypatch.setattr(linear, "alpha", lambda *a: taken.append(1) or alpha(*a))
    return request.param, taken


@pytest.mark.parametrize("dtype", [torch.float32, F64])
@pytest.mark.parametrize("reduction", ["none", "mean", "sum"])
@pytest.mark.parametrize("layout", ["padded", "concatenated"])
@pytest.mark.parametrize("name, labels, frames, classes, t, kw", BATCHES,
                         ids=[b[0] for b in BATCHES])
def test_both_routes_match_torch(route, name, labels, frames, classes, t, kw, layout, reduction,
                                 dtype):
    log_probs = _log_probs(t, len(labels), classes, seed=len(name), dtype=dtype)
    ours = _run(LF.ctc_loss, log_probs, labels, frames, layout, reduction, **kw)
    theirs = _run(F.ctc_loss, log_probs, labels, frames, layout, reduction, **kw)
    tol = dict(rtol=1e-7, atol=1e-10) if dtype == F64 else dict(rtol=1e-5, atol=1e-5)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, equal_nan=True, **tol)
    kind, taken = route
    blank = kw.get("blank", 0)
    blank_last = any(seq and seq[-1] == blank for seq in labels)
    assert bool(taken) == (kind == "probability" and not blank_last)


def test_unbatched_takes_the_probability_route(route):
    log_probs = _log_probs(6, 1, 4, seed=3)[:, 0]
    kind, taken = route
    for fn in (LF.ctc_loss, F.ctc_loss):
        x = log_probs.detach().requires_grad_()
        out = fn(x, torch.tensor([1, 2, 2]), (6,), (3,), reduction="none")
        out.backward()
        if fn is LF.ctc_loss:
            ours = out, x.grad
    torch.testing.assert_close(ours[0], out, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(ours[1], x.grad, rtol=1e-7, atol=1e-10)
    assert bool(taken) == (kind == "probability")


@pytest.mark.parametrize("dtype, bound", [(torch.float32, 85.0), (F64, 700.0)])
def test_the_route_holds_exactly_where_no_probability_underflows(dtype, bound):
    t = 6
    log_probs = _log_probs(t, 2, 4, seed=5, dtype=dtype)
    lo = log_probs.min().item()
    just_in = log_probs * (bound / t / -lo) * 0.999  # T min log y just above -B
    just_out = log_probs * (bound / t / -lo) * 1.001
    assert linear.fits(just_in, t) and not linear.fits(just_out, t)
    big = log_probs.clone()
    big[0, 0, 0] = (bound / t) - math.log(3.0) + 0.01  # too large a log-probability
    assert not linear.fits(big, t)
    assert not linear.fits(torch.full((t, 2, 4), float("-inf"), dtype=dtype), t)
    assert not linear.fits(torch.full((t, 2, 4), float("nan"), dtype=dtype), t)
    # at the edge the probabilities are as small as the dtype allows: still torch's numbers
    labels, frames = [[1, 2], [3]], [t, t]
    ours = _run(LF.ctc_loss, just_in, labels, frames, "padded", "none")
    theirs = _run(F.ctc_loss, just_in, labels, frames, "padded", "none")
    tol = dict(rtol=1e-7, atol=1e-10) if dtype == F64 else dict(rtol=1e-4, atol=1e-5)
    for a, b in zip(ours, theirs, strict=True):
        torch.testing.assert_close(a, b, **tol)


def test_a_retained_graph_differentiates_twice():
    x = _log_probs(7, 3, 5, seed=9).requires_grad_()
    args = (torch.tensor([[1, 2, 3], [4, 4, 1], [2, 1, 1]]), torch.tensor([7, 6, 7]),
            torch.tensor([3, 2, 1]))
    out = LF.ctc_loss(x, *args)
    (first,) = torch.autograd.grad(out, x, retain_graph=True)
    (second,) = torch.autograd.grad(out, x)  # the first backward used the forward's rows up
    (theirs,) = torch.autograd.grad(F.ctc_loss(x, *args), x)
    torch.testing.assert_close(first, theirs, rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(second, first, rtol=0, atol=0)


def test_the_forward_alone_keeps_nothing():
    log_probs = _log_probs(7, 2, 5, seed=2)
    args = (torch.tensor([[1, 2], [3, 3]]), torch.tensor([7, 7]), torch.tensor([2, 2]))
    with torch.no_grad():
        ours = LF.ctc_loss(log_probs, *args, reduction="none")
    torch.testing.assert_close(ours, F.ctc_loss(log_probs, *args, reduction="none"),
                               rtol=1e-7, atol=1e-10)
    assert ours.grad_fn is None
