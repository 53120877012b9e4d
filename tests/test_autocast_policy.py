"""lossutils' autocast policy table (lossutils/_autocast.py) against the installed torch.

CPU autocast runs for real in tests/test_capabilities.py. There is no GPU here,
so the CUDA policy is checked three ways: the macro lists of the installed
``ATen/autocast_mode.h`` (what torch's CUDA autocast registers), the
dispatcher's autocast kernels for every op in the table, and torch run on
FakeTensors placed on ``cuda`` with CUDA autocast switched on (the dispatcher's
AutocastCUDA wrappers run; no kernel does): the output dtype of every loss of
the converted families equals torch's. What stays unverified without a GPU:
the values CUDA kernels compute.
"""

from __future__ import annotations

import contextlib
import pathlib
import re
import warnings

import pytest
import torch
import torch.nn.functional as F

import lossutils.functional as LF
from lossutils import _autocast

HEADER = pathlib.Path(torch.__file__).parent / "include" / "ATen" / "autocast_mode.h"
MACROS = {"AT_FORALL_LOWER_PRECISION_FP": _autocast.LOWER, "AT_FORALL_FP32": _autocast.FP32,
          "AT_FORALL_FP32_SET_OPT_DTYPE": _autocast.SET_OPT_DTYPE,
          "AT_FORALL_PROMOTE": _autocast.PROMOTE}


def _macro(text: str, name: str) -> set[str]:
    body = re.search(rf"#define {name}\(_\)((?:[^\n]*\\\n)*[^\n]*)", text)
    assert body, f"{name} not found in {HEADER}"
    return set(re.findall(r"_\((\w+)", body.group(1)))


@pytest.mark.skipif(not HEADER.exists(), reason="this torch build ships no ATen headers")
def test_cuda_table_is_the_headers_macro_lists():
    text = HEADER.read_text()
    listed = {policy: {op for op, p in _autocast.POLICIES["cuda"].items() if p == policy}
              for policy in MACROS.values()}
    for macro, policy in MACROS.items():
        ops = _macro(text, macro)
        assert listed[policy] <= ops, (macro, listed[policy] - ops)
        # every loss (and norm, distance, reduction) torch lists is in lossutils' table
        relevant = {op for op in ops if re.search(
            r"loss$|norm|dist$|similarity|softmax|logsumexp|^(sum|prod|exp|log|pow|dot|mm|bmm)$",
            op)} - {"native_layer_norm"}
        assert relevant <= listed[policy], (macro, relevant - listed[policy])


def _has_autocast_kernel(op: str, key: str) -> bool:
    """Whether any overload of ``aten::op`` has a kernel for dispatch key ``key``."""
    def registered(name: str) -> bool:
        try:
            return torch._C._dispatch_has_kernel_for_dispatch_key(name, key)
        except RuntimeError:  # an overload only TorchScript knows (sub.int)
            return False

    return any(registered(f"aten::{op}" if o == "default" else f"aten::{op}.{o}")
               for o in getattr(torch.ops.aten, op).overloads())


@pytest.mark.parametrize("device_type, key", [("cpu", "AutocastCPU"), ("cuda", "AutocastCUDA")])
def test_every_listed_op_has_an_autocast_kernel(device_type, key):
    for op in _autocast.POLICIES[device_type]:
        assert _has_autocast_kernel(op, key), f"{op}: no {key} kernel in torch {torch.__version__}"


def test_unlisted_ops_have_none():
    """CPU autocast leaves softmax alone; CUDA has no cross_entropy_loss kernel (it
    decomposes: COMPOSITES); neither has one for the weighted branches' arithmetic."""
    for op in ("softmax", "log_softmax", "sub", "abs", "mul", "sum", "div"):
        assert not _has_autocast_kernel(op, "AutocastCPU"), op
    for op in ("cross_entropy_loss", "sub", "abs", "mul", "div"):
        assert not _has_autocast_kernel(op, "AutocastCUDA"), op


def test_decide_follows_each_policy():
    h, b, f, d = torch.float16, torch.bfloat16, torch.float32, torch.float64
    assert _autocast.decide("mse_loss", "cpu", [b, f, None]) == ([f, f, None], None)
    assert _autocast.decide("softmax", "cpu", [b]) == ([None], None)
    assert _autocast.decide("softmax", "cuda", [h], dtype=d) == ([None], d)
    assert _autocast.decide("softmax", "cuda", [None]) == ([None], None)  # float64: not eligible
    assert _autocast.decide("mm", "cuda", [f, f], autocast_dtype=h) == ([h, h], None)
    assert _autocast.decide("dot", "cuda", [h, f], autocast_dtype=h) == ([f, f], None)
    assert _autocast.decide("l1_loss[weighted]", "cuda", [b, b, b], reduction="none") == (
        [None] * 3, None)
    assert _autocast.decide("l1_loss[weighted]", "cuda", [b, b, b], reduction="sum") == (
        [f] * 3, None)
    with pytest.raises(RuntimeError, match="unsafe to autocast"):
        _autocast.decide("binary_cross_entropy", "cuda", [h, h])


@contextlib.contextmanager
def _fake_cuda_autocast(dtype):
    from torch._subclasses.fake_tensor import FakeTensorMode

    with FakeTensorMode():
        before = (torch.is_autocast_enabled("cuda"), torch.get_autocast_dtype("cuda"))
        # torch.autocast("cuda") refuses without a GPU; the dispatcher's switch does not
        torch.set_autocast_enabled("cuda", True)
        torch.set_autocast_dtype("cuda", dtype)
        try:
            yield
        finally:
            torch.set_autocast_enabled("cuda", before[0])
            torch.set_autocast_dtype("cuda", before[1])


def _calls(x, t, w, c, y):
    """(name, args, kwargs) of every loss of the converted families, on cuda arguments."""
    out = [("softmax", (x, 1), {}), ("log_softmax", (x, 1), {}),
           ("softmax", (x, 1), {"dtype": torch.float64}),
           ("nll_loss", (x, y), {}), ("nll_loss", (x, y), {"weight": c}),
           ("cross_entropy", (x, y), {"label_smoothing": 0.1}),
           ("cross_entropy", (x, y), {"weight": c}),
           ("cross_entropy", (x, t), {"weight": c, "label_smoothing": 0.2})]
    for name in ("l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss"):
        for reduction in ("none", "mean", "sum"):
            out.append((name, (x, t), {"reduction": reduction}))
            if name != "smooth_l1_loss":
                out.append((name, (x, t), {"reduction": reduction, "weight": w}))
    for reduction in ("none", "mean", "sum"):
        out.append(("binary_cross_entropy_with_logits", (x, t),
                    {"reduction": reduction, "weight": w, "pos_weight": c}))
        out.append(("poisson_nll_loss", (x, t), {"reduction": reduction}))
        out.append(("poisson_nll_loss", (x, t), {"reduction": reduction, "log_input": False,
                                                 "full": True}))
        # a float var: torch's test of a var tensor's sign reads values FakeTensors lack
        out.append(("gaussian_nll_loss", (x, t, 0.5), {"reduction": reduction, "full": True}))
    for reduction in ("none", "batchmean", "sum"):
        out.append(("kl_div", (x, t), {"reduction": reduction}))
        out.append(("kl_div", (x, t), {"reduction": reduction, "log_target": True}))
    return out


@pytest.mark.parametrize("low", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("arg_dtype", [torch.float16, torch.bfloat16, torch.float32,
                                       torch.float64])
def test_cuda_autocast_output_dtypes_match_torch(low, arg_dtype):
    with _fake_cuda_autocast(low):
        x = torch.empty(4, 5, device="cuda", dtype=arg_dtype)
        t, w = torch.empty_like(x), torch.empty_like(x)
        c = torch.empty(5, device="cuda", dtype=arg_dtype)  # class weights
        y = torch.zeros(4, dtype=torch.long, device="cuda")
        for name, args, kwargs in _calls(x, t, w, c, y):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                theirs = getattr(F, name)(*args, **kwargs)
                ours = getattr(LF, name)(*args, **kwargs)
            assert ours.dtype == theirs.dtype, (name, kwargs, ours.dtype, theirs.dtype)
            assert ours.device.type == "cuda" and ours.shape == theirs.shape


def test_binary_cross_entropy_is_refused_under_cuda_autocast_like_torch():
    with _fake_cuda_autocast(torch.float16):
        x = torch.empty(3, device="cuda", dtype=torch.float16)
        with pytest.raises(RuntimeError) as theirs:
            F.binary_cross_entropy(x, x)
        with pytest.raises(RuntimeError) as ours:
            _autocast.cast("binary_cross_entropy", x, x)
        with pytest.raises(RuntimeError) as loss:
            LF.binary_cross_entropy(x, x)
    assert str(ours.value) == str(loss.value) == str(theirs.value)
