"""vocab_parallel_cross_entropy on real gloo process groups (2 and 3 CPU processes on loopback).

One spawn per world size runs everything on its ranks (tests/distributed_ranks.py):
a table of cases (reduction x ignore_index x label smoothing x class weights x
uneven shards x float64/float32, the chunkings rotating through them), each
compared on every rank with the unsharded lossutils and torch losses -- the
loss, the input gradient and the rank's rows of the weight and bias
gradients; the collectives issued and their bytes against the formula; the
largest tensor made; and, on 3 ranks, a subgroup and the argument errors.
``run_on_gloo`` bounds each spawn in time, so a hung rank fails the test.
"""

from __future__ import annotations

import itertools
import re
import time

import pytest
import torch
from torch.multiprocessing.spawn import ProcessRaisedException

import distributed_ranks as ranks
from lossutils.distributed import run_on_gloo, shard_bounds, vocab_parallel_cross_entropy

TIMEOUT = 300  # seconds for one spawn of every check; about 10 s on an idle 2-core machine

SHARDS = {2: [[5, 5], [6, 5], [2, 9]], 3: [[4, 3, 3], [7, 0, 4], [1, 1, 9]]}
CHUNKINGS = [{}, dict(chunk_size=5), dict(chunk_size=4, vocab_chunk_size=2),
             dict(chunk_size=23, vocab_chunk_size=1), dict(chunk_size=7, vocab_chunk_size=3)]


def _table(shards: list[list[int]]) -> list[dict]:
    """Every combination of the options, the shards and chunkings rotating through them
    (every dtype meets every shard layout), plus the odd ones out."""
    cases = []
    grid = itertools.product(("mean", "sum", "none"), ("none", "default", "inside"), (0.0, 0.15),
                             (False, True), ("f64", "f32"))
    for i, (reduction, ignore, smoothing, weighted, dtype) in enumerate(grid):
        cases.append(dict(reduction=reduction, ignore=ignore, smoothing=smoothing,
                          weighted=weighted, dtype=dtype, sizes=shards[i % len(shards)], seed=i,
                          **CHUNKINGS[i % len(CHUNKINGS)]))
    uneven = shards[1]
    for dtype in ("f64", "f32"):
        cases += [
            dict(dtype=dtype, sizes=uneven, bias=True, smoothing=0.1, weighted=True, chunk_size=6),
            dict(dtype=dtype, sizes=uneven, explicit=True, reduction="sum", vocab_chunk_size=2),
            dict(dtype=dtype, sizes=uneven, input_grad=False, weighted=True),
            dict(dtype=dtype, sizes=uneven, uint8=True, reduction="none", smoothing=0.2),
            dict(dtype=dtype, sizes=uneven, scale=30.0, smoothing=0.1, chunk_size=3),  # logits ~100
            dict(dtype=dtype, sizes=uneven, n=1, weighted=True, reduction="none"),
            *(dict(dtype=dtype, sizes=uneven, ignore="all", reduction=r, weighted=True)
              for r in ("mean", "sum", "none")),
        ]
    return cases


def _formula(case: dict, world: int) -> list[tuple[str, int]]:
    """The collectives one call must issue, with the bytes this rank sends."""
    n, f, b = case.get("n", 23), case.get("f", 6), 8 if case["dtype"] == "f64" else 4
    calls = [] if case.get("explicit") else [("allgather_", 7 * 8)]  # 7 int64: the handshake
    calls += [("allreduce_", n * b), ("allreduce_", 2 * n * b)]  # forward: max; sum-exp + target
    if case.get("input_grad", True):
        calls.append(("allreduce_", n * f * b))  # backward: the input gradient
    return calls


TABLES = {world: _table(shards) for world, shards in SHARDS.items()}
# run on a subgroup of two in the world of three, ranks listed out of order (group rank != rank)
SUBGROUP, SUBGROUP_CASES = [2, 0], TABLES[2][::4]

COMM_CASES = [dict(dtype="f64"), dict(dtype="f32", smoothing=0.1, weighted=True, reduction="none"),
              dict(dtype="f64", explicit=True), dict(dtype="f32", input_grad=False)]
MEMORY_CASE = dict(dtype="f32", n=64, f=4, chunk_size=8, vocab_chunk_size=32)

# name -> (exception type, message on the ranks that raise their own error, ranks that do)
ERRORS = {
    "target_out_of_range": ("IndexError", r"Target 10 is out of bounds.*\[0, 10\)", None),
    "shard_in_features_on_rank_1": ("RuntimeError",
                                    r"weight_shard must be \(V_r, 6\).*got \(3, 7\)", [1]),
    "in_features_differ_across_ranks": ("RuntimeError", r"same in_features F.*\[6, 6, 7\]", None),
    "rows_differ_across_ranks": ("RuntimeError", r"same input rows N.*\[22, 23, 23\]", None),
    "targets_differ_across_ranks": ("RuntimeError", r"same target", None),
    "dtype_differs_across_ranks": ("RuntimeError", r"same input dtype.*torch\.float32", None),
    "weight_is_the_shard": ("RuntimeError", r"whole vocabulary, shape \(10,\).*\[4, 3, 3\]", None),
    "bad_reduction": ("ValueError", r"average is not a valid value for reduction", None),
    "label_smoothing_above_one": ("RuntimeError", r"label_smoothing must be between 0.0 and 1.0",
                                  None),
    "vocab_start_without_vocab_size": ("ValueError", r"must be given together", None),
    "shard_outside_explicit_vocab": ("ValueError", r"must lie in \[0, vocab_size\) = \[0, 10\)",
                                     None),
    "chunk_size_zero": ("ValueError", r"chunk_size must be a positive int or None, got 0", None),
    "weight_requires_grad": ("RuntimeError",
                             r"not differentiable with respect to the class weights", None),
    "float_target": ("RuntimeError", r"class indices \(int64 or uint8\), got dtype torch\.float64",
                     None),
}


def everything(world: int) -> dict:
    """Runs on each rank: the whole battery for this world size."""
    out = {"table": ranks.run_table(TABLES[world])}
    out["comm"] = ranks.collectives([dict(c, sizes=SHARDS[world][1]) for c in COMM_CASES])
    sizes = [hi - lo for lo, hi in shard_bounds(512, world)]
    out["largest"] = ranks.largest_tensor(dict(MEMORY_CASE, sizes=sizes))
    out["gradcheck"] = ranks.gradcheck_input()
    out["second"] = ranks.second_derivative_refused()
    if world == 3:
        out["subgroup"] = ranks.run_table(SUBGROUP_CASES, subgroup=SUBGROUP)
        out["errors"] = ranks.errors(list(ERRORS))
    return out


@pytest.mark.parametrize("world", [2, 3])
def test_sharded_loss_and_gradients_equal_unsharded(world, capsys):
    start = time.monotonic()
    results = run_on_gloo(everything, world, world, timeout=TIMEOUT)
    elapsed = time.monotonic() - start
    table = TABLES[world]
    failures, worst = [], {}
    for rank, result in enumerate(results):
        labelled = list(zip(table, result["table"], strict=True))
        if world == 3:
            labelled += [(dict(c, subgroup=True), r)
                         for c, r in zip(SUBGROUP_CASES, result["subgroup"], strict=True)]
        for case, report in labelled:
            if report is None:  # this rank is not in the subgroup
                assert case.get("subgroup") and rank == 1
                continue
            failures += [f"rank {rank} {case}: {f}" for f in report["failures"]]
            for key, d in report["diff"].items():
                worst[(case["dtype"], key)] = max(worst.get((case["dtype"], key), 0.0), d)
    assert not failures, f"{len(failures)} mismatches, first: " + "\n".join(failures[:5])
    with capsys.disabled():
        print(f"\n{world} ranks, {len(table)} cases (+ subgroup/errors), {elapsed:.1f} s; "
              "largest |sharded - unsharded|:")
        for (dtype, key), d in sorted(worst.items()):
            print(f"  {dtype} {key:24s} {d:.3g}")

    for rank, result in enumerate(results):
        assert result["gradcheck"], rank
        # refused, with the reason, rather than a second derivative missing the other shards
        assert result["second"] is not None and "second derivatives are not supported" in \
            result["second"] and "all-reduce of the input gradient" in result["second"], rank
        for case, calls in zip(COMM_CASES, result["comm"], strict=True):
            assert calls == _formula(case, world), (rank, case, calls)
        V_r = shard_bounds(512, world)[rank][1] - shard_bounds(512, world)[rank][0]
        n, f = MEMORY_CASE["n"], MEMORY_CASE["f"]
        chunk = MEMORY_CASE["chunk_size"] * MEMORY_CASE["vocab_chunk_size"]
        # the shard's logits (n x V_r) never exist; the largest tensors are the shard's
        # weight gradient, the input gradient and one chunk of logits
        assert result["largest"] <= max(chunk, V_r * f, n * f, 2 * n) < n * V_r, result["largest"]

    if world == 3:
        for rank, (raised, after) in enumerate(r["errors"] for r in results):
            assert not after["failures"], after["failures"]  # the group still works afterwards
            for (name, (kind, pattern, own)), got in zip(ERRORS.items(), raised, strict=True):
                assert got is not None, f"{name}: rank {rank} raised nothing"
                if own is not None and rank not in own:
                    kind = "RuntimeError"
                    pattern = rf"rank {own[0]} of the group rejected .*{pattern}"
                assert got[0] == kind, (name, rank, got)
                assert re.search(pattern, got[1]), (name, rank, got[1])


def test_shard_bounds_split_like_tensor_split():
    for V, P in [(10, 3), (11, 2), (2, 3), (32768, 3), (7, 1)]:
        bounds = shard_bounds(V, P)
        pieces = torch.arange(V).tensor_split(P)
        assert [(int(p[0]), int(p[-1]) + 1) if len(p) else (lo, lo)
                for p, (lo, _) in zip(pieces, bounds, strict=True)] == bounds


def test_needs_an_initialized_group():
    assert not torch.distributed.is_initialized()
    x, W, y = torch.randn(3, 4), torch.randn(5, 4), torch.tensor([0, 1, 2])
    with pytest.raises(RuntimeError, match="needs an initialized torch.distributed process group"):
        vocab_parallel_cross_entropy(x, W, y)


def test_a_failing_rank_stops_the_others():
    # rank 1 raises while rank 0 waits for it in an all-reduce: the call fails, it does not hang
    with pytest.raises(ProcessRaisedException, match="rank 1 failed with:(.|\n)*on purpose"):
        run_on_gloo(ranks.fail_on_rank_1, 2, timeout=TIMEOUT)


def test_a_hung_rank_times_out():
    start = time.monotonic()
    with pytest.raises(TimeoutError, match=r"ranks \[0\] of 1 still running after 10 s"):
        run_on_gloo(time.sleep, 1, 3600, timeout=10)
    assert time.monotonic() - start < 20


def test_run_on_gloo_validates_its_arguments():
    with pytest.raises(ValueError, match="world_size must be a positive int, got 0"):
        run_on_gloo(time.sleep, 0)
    with pytest.raises(ValueError, match="timeout must be positive seconds, got -1"):
        run_on_gloo(time.sleep, 1, timeout=-1)
