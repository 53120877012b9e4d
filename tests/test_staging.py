"""Row statistics staged in the output buffer (``lossutils._staging``) and the fast backward of
the softmax family that uses them.

The case table draws tensors below ``MIN_ELEMENTS``, where nothing is staged; here the
threshold is lowered so that every block structure runs on small shapes (one block before
the last row, several, a single row, shapes that cannot stage), then one training-size
backward runs at the real threshold, and its peak memory is counted.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import lossutils.functional as LF
from conftest import ROOT
from lossutils import _staging

SHAPES = [(1, 2), (2, 2), (3, 2), (2, 3), (5, 3), (8, 10), (37, 5), (200, 3), (1000, 2),
          (4, 3, 5), (6,), (3, 1)]


@pytest.mark.parametrize("m, c", [(1, 2), (2, 2), (3, 2), (8, 10), (37, 5), (1000, 2),
                                  (1024, 500)])
def test_blocks_never_overwrite_a_statistic_still_to_be_read(m, c):
    out = torch.arange(m * c, dtype=torch.float64).view(m, c)
    tail = _staging.tail(out)
    assert tail.flatten().tolist() == list(range(m * c - m, m * c))  # row i's at entry i
    found = _staging.blocks(out)
    rows = [r for block, _ in found for r in range(m)[block]]
    assert rows == list(range(m))  # every row once, in order
    for i, (block, stats) in enumerate(found):
        later = {r for b, _ in found[i:] for r in range(m)[b]}  # not yet written
        if isinstance(stats, float):  # the last row, read as a number
            assert (block, stats) == (slice(m - 1, m), float(m * c - 1))
            continue
        positions = [int(v) for v in stats.flatten().tolist()]
        assert positions == tail.flatten().tolist()[block]  # the block's own statistics
        assert {p // c for p in positions} <= later - set(range(m)[block])


@pytest.fixture
def stage_small(monkeypatch):
    monkeypatch.setattr(_staging, "MIN_ELEMENTS", 0)


def _backward(fn, x, dim, g, create_graph=False):
    x = x.detach().requires_grad_()
    (grad,) = torch.autograd.grad(fn(x, dim=dim), x, g, create_graph=create_graph)
    return grad.detach()


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_staged_backward_matches_torch_and_the_differentiable_one(stage_small, name, dtype,
                                                                   shape):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=dtype) * 3
    g = torch.randn(shape, generator=gen, dtype=dtype)
    # the case table's tolerances (float32: torch's defaults)
    tol = {} if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-10)
    for dim in range(len(shape)):
        fast = _backward(getattr(LF, name), x, dim, g)
        torch.testing.assert_close(fast, _backward(getattr(F, name), x, dim, g), **tol)
        if dtype == torch.float64:  # the recorded (differentiable) backward: the same numbers
            recorded = _backward(getattr(LF, name), x, dim, g, create_graph=True)
            torch.testing.assert_close(fast, recorded, rtol=1e-12, atol=1e-14)


class _NewStorages(TorchDispatchMode):
    """The bytes of every new storage an op returns while active (storages of ``known``, and
    views or in-place results of them, excluded)."""

    def __init__(self, *known):
        super().__init__()
        self.seen = {t.untyped_storage().data_ptr() for t in known}
        self.bytes = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in out if isinstance(out, (tuple, list)) else (out,):
            if isinstance(t, torch.Tensor) and t.untyped_storage().data_ptr() not in self.seen:
                self.seen.add(t.untyped_storage().data_ptr())
                self.bytes += t.untyped_storage().nbytes()
        return out


@pytest.mark.parametrize("name", ["softmax", "log_softmax"])
def test_training_size_backward_needs_no_row_of_sums(name):
    """At 1,024 x 500 (above ``MIN_ELEMENTS``) the backward allocates its result and nothing
    else: no ``(1024, 1)`` tensor of row sums."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 500, generator=gen)
    g = torch.randn(1024, 500, generator=gen)
    y = getattr(LF, name)(x.requires_grad_(), dim=1)
    with _NewStorages(x, g, y) as new:
        (grad,) = torch.autograd.grad(y, x, g)
    assert new.bytes == grad.numel() * grad.element_size()
    torch.testing.assert_close(grad, _backward(getattr(F, name), x, 1, g))


@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("shape", [(2, 2), (3, 2), (8, 10), (37, 5), (40, 5), (30, 3)], ids=str)
def test_staged_multi_margin_matches_torch(stage_small, p, reduction, dtype, shape):
    """(40, 5) and (37, 5) have 8 last rows to read one by one, (30, 3) ten: not staged."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(shape, generator=gen, dtype=dtype) * 2
    x[1, 1], x[0, 0] = float("nan"), float("inf")  # hinges that torch's z > 0 test drops
    target = torch.randint(0, shape[1], shape[:1], generator=gen)
    g = torch.tensor(1.7, dtype=dtype)
    grads = []
    for lib in (LF, F):
        leaf = x.clone().requires_grad_()
        loss = lib.multi_margin_loss(leaf, target, p=p, margin=0.7, reduction=reduction)
        grads.append(torch.autograd.grad(loss, leaf, g)[0])
    tol = {} if dtype == torch.float32 else dict(rtol=1e-7, atol=1e-10)
    torch.testing.assert_close(*grads, equal_nan=True, **tol)


def test_training_size_multi_margin_needs_only_its_hinge_buffer():
    """At 1,024 x 500 the forward allocates the hinges and the loss, the backward nothing:
    the hinges become the gradient (no row of x_y - margin, of sums, no 0-d scale)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(1024, 500, generator=gen).requires_grad_()
    target = torch.randint(0, 500, (1024,), generator=gen)
    g = torch.tensor(1.0)
    with _NewStorages(x, target, g) as new:
        loss = LF.multi_margin_loss(x, target)
        forward = new.bytes
        (grad,) = torch.autograd.grad(loss, x, g)
    assert (forward, new.bytes) == (x.numel() * 4 + 4, x.numel() * 4 + 4)
    leaf = x.detach().requires_grad_()
    (want,) = torch.autograd.grad(F.multi_margin_loss(leaf, target), leaf)
    torch.testing.assert_close(grad, want)


def test_the_tiny_staging_benchmark_measures_both_paths(monkeypatch):
    """benchmarks/tiny_staging.py, one quick round: both paths of each staged loss at 8 x 10,
    the staged one at torch's memory (the benchmark's own count of live storages), and the
    library's threshold and torch's thread count back afterwards."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import tiny_staging

    threads = torch.get_num_threads()
    result = tiny_staging.main(["--threads", str(threads % 2 + 1), "--rounds", "1",
                                "--repeats", "1", "--warmup", "0"])
    assert _staging.MIN_ELEMENTS == result["min_elements"] == 1 << 14
    assert torch.get_num_threads() == threads
    paths = {(r["loss"], r["path"]): r for r in result["rows"]}
    assert set(paths) == {(name, path) for name in tiny_staging.STAGED_LOSSES
                          for path in ("small", "staged")}
    for name in tiny_staging.STAGED_LOSSES:
        assert paths[name, "staged"]["memory_ratio"] <= 1.0
        assert paths[name, "small"]["size"] == "8x10"
