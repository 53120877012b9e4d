"""The chunked fast forward of the regression losses (``_regression_passes``) against torch.

The case table draws small tensors, which take one or two fresh chunks; here the chunk
size is shrunk so that every path of ``reduced_residual`` runs on a few hundred elements:
many chunks, an uneven last chunk, buffers reused from chunk to chunk, a target broadcast
up to the input, and Huber's promoted residual rounded to the input's dtype.
"""

from __future__ import annotations

from contextlib import nullcontext

import pytest
import torch
import torch.nn.functional as F

import lossutils.functional as LF
from lossutils._precision import upcast
from lossutils._reduction import scalar_product
from lossutils.functional import _regression_passes as passes

LOSSES = [("l1_loss", {}), ("mse_loss", {}), ("smooth_l1_loss", {}),
          ("smooth_l1_loss", {"beta": 0.4}), ("huber_loss", {}), ("huber_loss", {"delta": 0.7})]


@pytest.fixture(params=[(12, 10 ** 6), (12, 10)], ids=["fresh-chunks", "reused-buffers"])
def small_chunks(request, monkeypatch):
    chunk, reuse = request.param
    monkeypatch.setattr(passes, "CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr(passes, "CHUNK_ELEMENTS_THREADED", chunk)
    monkeypatch.setattr(passes, "REUSE_ELEMENTS", reuse)


@pytest.mark.filterwarnings("error")  # e.g. an out= buffer of the wrong size, resized
@pytest.mark.parametrize("name, options", LOSSES, ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={w}" for k, w in v.items()) or "defaults")
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_chunked_forward_matches_torch(small_chunks, name, options, reduction, dtype):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(23, 5, generator=gen, dtype=dtype) * 2  # 23 rows: an uneven last chunk
    for target in (torch.randn(23, 5, generator=gen, dtype=dtype),
                   torch.randn(1, 5, generator=gen, dtype=dtype)):  # broadcast up to x
        assert len(passes.row_chunks(x, 1)) > 2
        with pytest.warns(UserWarning) if target.shape != x.shape else nullcontext():
            ours = getattr(LF, name)(x, target, reduction=reduction, **options)
        with pytest.warns(UserWarning) if target.shape != x.shape else nullcontext():
            theirs = getattr(F, name)(x, target, reduction=reduction, **options)
        torch.testing.assert_close(ours, theirs, rtol=1e-6 if dtype == torch.float32 else 1e-12,
                                   atol=0)


def test_huber_rounds_a_promoted_residual_to_the_input_dtype(small_chunks):
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(23, 5, generator=gen) * 2
    y = torch.randn(23, 5, generator=gen, dtype=torch.float64)
    ours, theirs = LF.huber_loss(x, y, reduction="sum"), F.huber_loss(x, y, reduction="sum")
    assert ours.dtype == theirs.dtype == torch.float32
    torch.testing.assert_close(ours, theirs, rtol=1e-6, atol=0)



@pytest.fixture(params=[(1, 12), (2, 12), (2, 10 ** 6)],
                ids=["1-thread", "2-threads", "2-threads-halves"])
def kept_slopes(request, monkeypatch):
    """Chunks of 12 elements (with two threads, also chunks as big as the tensor: two
    halves) and no size floor: the slope-keeping forward on small tensors."""
    threads, chunk = request.param
    monkeypatch.setattr(passes, "CHUNK_ELEMENTS", chunk)
    monkeypatch.setattr(passes, "CHUNK_ELEMENTS_THREADED", chunk)
    monkeypatch.setattr(passes, "REUSE_ELEMENTS", 1)
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("rows", [2, 3, 5, 23, 64, 100])
@pytest.mark.parametrize("step", [1, 2, 3, 7, 32, 256])
def test_clip_chunks_leave_room_for_each_temporary(rows, step):
    sizes = passes.clip_chunks(rows, step)
    assert sum(sizes) == rows and min(sizes) >= 1 and max(sizes) <= step
    for k, n in enumerate(sizes[:-1]):  # its temporary fits in the rows after it
        assert n <= sum(sizes[k + 1:])
    assert 2 * sizes[-1] <= rows  # the last borrows the first rows, none of its own


KEPT = [("huber_loss", {}), ("huber_loss", {"delta": 0.7}), ("huber_loss", {"delta": 3.0}),
        ("smooth_l1_loss", {})]


@pytest.mark.parametrize("name, options", KEPT, ids=lambda v: v if isinstance(v, str) else
                         ",".join(f"{k}={w}" for k, w in v.items()) or "defaults")
@pytest.mark.parametrize("reduction", ["sum", "mean"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("grads", ["input", "target", "both"])
def test_kept_slope_matches_torch_and_the_differentiable_backward(kept_slopes, name, options,
                                                                   reduction, dtype, grads):
    gen = torch.Generator().manual_seed(2)
    x0 = torch.randn(23, 5, generator=gen, dtype=dtype) * 2
    y0 = torch.randn(23, 5, generator=gen, dtype=dtype)
    scale = torch.tensor(0.37, dtype=dtype)

    def run(fn, create_graph=False):
        x = x0.clone().requires_grad_(grads != "target")
        y = y0.clone().requires_grad_(grads != "input")
        out = fn(x, y, reduction=reduction, **options)
        if fn.__module__.startswith("lossutils"):  # the forward kept the slope
            assert out.grad_fn.kept_slope is not None
        leaves = [t for t in (x, y) if t.requires_grad]
        return out, torch.autograd.grad(out, leaves, scale, create_graph=create_graph)

    (ours, grads_ours), (theirs, grads_theirs) = run(getattr(LF, name)), run(getattr(F, name))
    tol = dict(rtol=1e-6, atol=0) if dtype == torch.float32 else dict(rtol=1e-12, atol=0)
    torch.testing.assert_close(ours, theirs, **tol)
    for g, g_t in zip(grads_ours, grads_theirs, strict=True):
        torch.testing.assert_close(g, g_t, **tol)
    _, grads_recorded = run(getattr(LF, name), create_graph=True)  # the differentiable backward
    for g, g_r in zip(grads_ours, grads_recorded, strict=True):
        assert torch.equal(g, g_r.detach())


def test_kept_slope_serves_one_backward_then_the_slope_is_recomputed(kept_slopes):
    gen = torch.Generator().manual_seed(3)
    x = (torch.randn(23, 5, generator=gen) * 2).requires_grad_()
    y = torch.randn(1, 5, generator=gen).expand(23, 5)  # a broadcast target: rows of one row
    out = LF.huber_loss(x, y)
    assert not hasattr(out, passes.SLOPE_ATTR)  # setup_context took it off the output
    assert out.grad_fn.kept_slope is not None
    first, = torch.autograd.grad(out, x, retain_graph=True)
    second, = torch.autograd.grad(out, x)
    expected, = torch.autograd.grad(F.huber_loss(x, y), x)
    assert torch.equal(first, second)
    torch.testing.assert_close(first, expected, rtol=1e-6, atol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_scalar_scale_is_the_tensor_quotient(dtype):
    # as residual_grad's differentiable twin forms it: the incoming gradient upcast (float32
    # for halves), divided by the count
    gen = torch.Generator().manual_seed(4)
    scale = 10.0 ** torch.randint(-20, 20, (200,), generator=gen)
    if dtype in (torch.float16, torch.bfloat16):
        scale = scale.clamp(1e-4, 1e4)  # within the half's range
    grads = (torch.randn(200, generator=gen, dtype=torch.float64) * scale).to(dtype)
    counts = [1, 3, 7, 1000, 2 ** 24 + 1, 3 ** 17, 10 ** 9 + 7]
    for g in grads:
        for count in counts:
            expected = (upcast(g) / count).item()
            compute = upcast(g).dtype
            assert passes.scalar_scale(g.item(), "mean", count, compute) == expected
            assert passes.scalar_scale(g.item(), "sum", count, compute) == g.item()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_scalar_product_is_the_tensor_product(dtype):
    # multi_margin_loss's staged backward scales by grad_output * factor as a number
    gen = torch.Generator().manual_seed(5)
    scale = 10.0 ** torch.randint(-30, 38, (200,), generator=gen)
    grads = (torch.randn(200, generator=gen, dtype=torch.float64) * scale).to(dtype)
    factors = [1.0, 2.0, 1 / 3, 2 / 7, 1 / 512_000, 1.9, 1e-30]
    for g in [*grads, torch.tensor(torch.finfo(dtype).max, dtype=dtype)]:
        for factor in factors:
            assert scalar_product(g.item(), factor, dtype) == (g * factor).item()
