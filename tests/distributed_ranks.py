"""What each rank runs for tests/test_distributed.py, in processes started by ``run_on_gloo``.

Every rank builds the same full problem from the case's seed, takes its shard
of the head, runs ``vocab_parallel_cross_entropy`` forward and backward, and
compares the loss, the input gradient and its shard's weight and bias
gradients with the unsharded ``lossutils.functional.linear_cross_entropy``
and torch's ``F.linear_cross_entropy`` on the whole head. It returns the
differences (and any assertion failure as text); the test process judges.
"""

from __future__ import annotations

import contextlib

import torch
import torch.distributed as dist
import torch.nn.functional as F

import lossutils.functional as LF
from lossutils.distributed import CollectiveLog, vocab_parallel_cross_entropy

DTYPES = {"f64": torch.float64, "f32": torch.float32}
TOLERANCES = {"f64": dict(rtol=1e-12, atol=1e-14), "f32": dict(rtol=2e-5, atol=2e-6)}
QUANTITIES = ("loss", "input_grad", "weight_grad", "bias_grad")


def problem(case: dict):
    """The full problem of a case: ``x (N, F)``, head ``W (V, F)``, bias, targets, class weights."""
    dtype, V = DTYPES[case["dtype"]], sum(case["sizes"])
    n, f = case.get("n", 23), case.get("f", 6)
    gen = torch.Generator().manual_seed(case.get("seed", 0))
    x = torch.randn(n, f, generator=gen, dtype=dtype) * case.get("scale", 1.0)
    W = torch.randn(V, f, generator=gen, dtype=dtype) / f**0.5
    b = torch.randn(V, generator=gen, dtype=dtype)
    target = torch.randint(0, V, (n,), generator=gen)
    ignore = case.get("ignore", "none")
    if ignore == "default":
        target[::4] = -100
    elif ignore == "inside":  # a class of the vocabulary that counts for nothing
        target[::3] = min(3, V - 1)
    elif ignore == "all":
        target[:] = -100
    weight = torch.rand(V, generator=gen, dtype=dtype) + 0.1
    grad = torch.randn(n, generator=gen, dtype=dtype)  # for reduction='none'
    return x, W, b, target, weight, grad


def _options(case: dict, target, weight) -> dict:
    opts = dict(reduction=case.get("reduction", "mean"), label_smoothing=case.get("smoothing", 0.0))
    if case.get("weighted"):
        opts["weight"] = weight
    if case.get("ignore") == "inside":
        opts["ignore_index"] = min(3, sum(case["sizes"]) - 1)
    return opts


def _reference(fn, x, W, b, target, opts, grad, bias: bool):
    leaves = [t.clone().requires_grad_() for t in ((x, W, b) if bias else (x, W))]
    loss = fn(*leaves[:2], target, linear_bias=leaves[2] if bias else None, **opts)
    loss.backward(grad if loss.dim() else None)
    return [loss.detach(), *(t.grad for t in leaves)]


def run_case(case: dict, group=None, log: CollectiveLog | None = None):
    """One case on this rank: ``{quantity: (ours, lossutils', torch's)}``, None off ``group``."""
    rank = dist.get_rank(group)
    if rank < 0:
        return None
    x, W, b, target, weight, grad = problem(case)
    opts = _options(case, target, weight)
    bias = case.get("bias", False)
    start = sum(case["sizes"][:rank])
    stop = start + case["sizes"][rank]
    xs = x.clone().requires_grad_(case.get("input_grad", True))
    Ws = W[start:stop].clone().requires_grad_()
    bs = b[start:stop].clone().requires_grad_() if bias else None
    layout = dict(vocab_start=start, vocab_size=W.shape[0]) if case.get("explicit") else {}
    chunks = {k: case[k] for k in ("chunk_size", "vocab_chunk_size") if k in case}
    target_in = target.to(torch.uint8) if case.get("uint8") else target
    with log if log is not None else contextlib.nullcontext():  # the log slows every op down
        loss = vocab_parallel_cross_entropy(xs, Ws, target_in, bias_shard=bs, group=group, **opts,
                                            **layout, **chunks)
        loss.backward(grad if loss.dim() else None)
    ours = [loss.detach(), xs.grad, Ws.grad, bs.grad if bias else None]
    out = {}
    for name, fn in (("lossutils", LF.linear_cross_entropy), ("torch", F.linear_cross_entropy)):
        ref = _reference(fn, x, W, b, target, opts, grad, bias)
        ref[2] = ref[2][start:stop]
        if bias:
            ref[3] = ref[3][start:stop]
        if not case.get("input_grad", True):
            ref[1] = None
        out[name] = ref
    def pick(values, i):
        return values[i] if i < len(values) else None

    return {q: (ours[i], pick(out["lossutils"], i), pick(out["torch"], i))
            for i, q in enumerate(QUANTITIES)}


def compare(case: dict, values: dict) -> dict:
    """Largest absolute difference per quantity against each reference, and failures as text."""
    report = {"diff": {}, "failures": []}
    for q, (ours, *refs) in values.items():
        for ref_name, ref in zip(("lossutils", "torch"), refs, strict=True):
            if ref is None and ours is None:
                continue
            try:
                assert ours is not None and ref is not None, f"{q}: one side is missing"
                torch.testing.assert_close(ours, ref, equal_nan=True, **TOLERANCES[case["dtype"]])
            except AssertionError as err:
                report["failures"].append(f"{q} vs {ref_name}: {err}")
                continue
            both = ~(ours.isnan() & ref.isnan())
            diff = (ours - ref)[both].abs().max().item() if both.any() else 0.0
            key = f"{q} vs {ref_name}"
            report["diff"][key] = max(report["diff"].get(key, 0.0), diff)
    return report


def run_table(cases: list[dict], subgroup: list[int] | None = None) -> list[dict | None]:
    """Every case on the whole world, or on a new group of the ranks ``subgroup`` (None off it)."""
    if subgroup is None:
        return [compare(c, run_case(c)) for c in cases]
    group = dist.new_group(subgroup)  # every rank must call it, members or not
    reports = []
    for c in cases:
        values = run_case(c, group)
        reports.append(None if values is None else compare(c, values))
    dist.destroy_process_group(group)
    return reports


def collectives(cases: list[dict]) -> list[list[tuple[str, int]]]:
    """For each case, the collectives this rank issued: ``(op, bytes sent)`` in order."""
    out = []
    for case in cases:
        log = CollectiveLog()
        run_case(case, log=log)
        out.append([(c.op, c.sent_bytes) for c in log.calls])
    return out


def largest_tensor(case: dict) -> int:
    """The most elements of any tensor made during forward + backward of the sharded loss."""
    from test_linear_cross_entropy import _LargestTensor

    x, W, b, target, _, _ = problem(case)
    rank = dist.get_rank()
    start = sum(case["sizes"][:rank])
    Ws = W[start:start + case["sizes"][rank]].clone().requires_grad_()
    x.requires_grad_()
    with _LargestTensor() as mode:
        loss = vocab_parallel_cross_entropy(x, Ws, target, chunk_size=case["chunk_size"],
                                            vocab_chunk_size=case["vocab_chunk_size"])
        loss.backward()
    return mode.largest


def gradcheck_input() -> bool:
    """``torch.autograd.gradcheck`` of the loss in the (replicated) input, float64.

    Every rank perturbs the same entry of ``x`` at the same time, so the finite
    differences are those of the one loss all ranks compute. (A shard of the
    head cannot be checked this way: the ranks would perturb different
    entries at once; its gradient is compared with torch's autograd instead.)
    """
    case = dict(dtype="f64", sizes=[3, 2, 4][: dist.get_world_size()], n=5, f=3)
    x, W, b, target, weight, _ = problem(case)
    rank = dist.get_rank()
    start = sum(case["sizes"][:rank])
    W_shard = W[start:start + case["sizes"][rank]]
    target[1] = -100

    def loss(x):
        return vocab_parallel_cross_entropy(x, W_shard, target, weight=weight, reduction="none",
                                            label_smoothing=0.1, chunk_size=2, vocab_chunk_size=2)

    return torch.autograd.gradcheck(loss, (x.requires_grad_(),))


def errors(names: list[str]) -> tuple[list[tuple[str, str] | None], dict]:
    """Each bad call of ``names`` on this rank: ``(exception type, message)``, or None if none;
    then a good call, to show that the group still works after them."""
    out = []
    for name in names:
        try:
            _bad_call(name)
            out.append(None)
        except Exception as err:  # the test process checks type and message
            out.append((type(err).__name__, str(err)))
    case = dict(dtype="f64", sizes=[4, 3, 3][: dist.get_world_size()], weighted=True)
    return out, compare(case, run_case(case))


def _bad_call(name: str) -> None:
    """One wrong way to call the loss (on every rank, or on one rank only); shards 4/3/3."""
    rank = dist.get_rank()
    case = dict(dtype="f64", sizes=[4, 3, 3][: dist.get_world_size()])
    x, W, b, target, weight, _ = problem(case)
    start = sum(case["sizes"][:rank])
    Ws = W[start:start + case["sizes"][rank]]
    kw = {}
    if name == "target_out_of_range":
        target[5] = W.shape[0]
    elif name == "shard_in_features_on_rank_1" and rank == 1:
        Ws = torch.randn(3, x.shape[1] + 1, dtype=x.dtype)
    elif name == "in_features_differ_across_ranks" and rank == 2:
        x, Ws = torch.randn(x.shape[0], 7, dtype=x.dtype), torch.randn(3, 7, dtype=x.dtype)
    elif name == "rows_differ_across_ranks" and rank == 0:
        x, target = x[:-1], target[:-1]
    elif name == "targets_differ_across_ranks" and rank == 1:
        target = target.roll(1)
    elif name == "dtype_differs_across_ranks" and rank == 1:
        x, Ws = x.float(), Ws.float()
    elif name == "weight_is_the_shard":
        kw["weight"] = weight[start:start + Ws.shape[0]]
    elif name == "bad_reduction":
        kw["reduction"] = "average"
    elif name == "label_smoothing_above_one":
        kw["label_smoothing"] = 1.5
    elif name == "vocab_start_without_vocab_size":
        kw["vocab_start"] = start
    elif name == "shard_outside_explicit_vocab":
        kw.update(vocab_start=start + 8, vocab_size=W.shape[0])
    elif name == "chunk_size_zero":
        kw["chunk_size"] = 0
    elif name == "weight_requires_grad":
        kw["weight"] = weight.requires_grad_()
    elif name == "float_target":
        target = target.double()
    vocab_parallel_cross_entropy(x, Ws, target, **kw)


def fail_on_rank_1() -> None:
    """Rank 1 raises while rank 0 waits for it in an all-reduce that never completes."""
    if dist.get_rank() == 1:
        raise ValueError("rank 1 fails on purpose")
    dist.all_reduce(torch.ones(1))


def second_derivative_refused() -> str | None:
    """The message of the error a recorded backward (``create_graph=True``) raises, or None
    when it raises nothing."""
    case = dict(dtype="f64", sizes=[3, 2, 4][: dist.get_world_size()], n=5, f=3)
    x, W, _, target, _, _ = problem(case)
    rank = dist.get_rank()
    start = sum(case["sizes"][:rank])
    x.requires_grad_()
    loss = vocab_parallel_cross_entropy(x, W[start:start + case["sizes"][rank]], target)
    try:
        torch.autograd.grad(loss, x, create_graph=True)
    except RuntimeError as err:
        return str(err)
    return None
