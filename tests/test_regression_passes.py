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

