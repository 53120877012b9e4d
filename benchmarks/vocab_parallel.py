"""Communication and peak memory per rank of vocabulary-parallel cross-entropy, P = 1, 2, 3.

Two ways to get the loss of ``x @ W.T`` when the ``V x F`` head ``W`` is split
by rows over ``P`` ranks (every rank holds the same ``N x F`` hidden states):

* ``vocab_parallel``: ``lossutils.distributed.vocab_parallel_cross_entropy``
  -- each rank works on its ``N x V_r`` logits chunk by chunk and sends three
  numbers per row in forward; backward all-reduces the ``N x F`` input gradient.
* ``gather_logits``: the baseline -- each rank computes its ``N x V_r``
  logits, all-gathers them into the full ``N x V`` logits (padded to the
  largest shard when the split is uneven), and runs torch's cross-entropy on
  them; backward takes its own columns of the logits' gradient and
  all-reduces the input gradient (the same ``N x F`` all-reduce).

Each (method, P) runs on P fresh processes (``run_on_gloo``: gloo on loopback,
one torch thread each). On every rank, one forward + backward is measured:

* **communication**: every ``torch.distributed`` collective it issues, caught by
  ``lossutils.distributed.CollectiveLog`` (a dispatch mode: it sees the
  ``c10d::`` operators whoever calls them), with the bytes this rank sends and
  receives; the script checks them against the formula and fails if they differ;
* **peak tensor memory**: a dispatch mode follows every tensor storage created
  during the step (its bytes, until it is freed) and keeps the largest total
  alive at once: the step's own memory, inputs excluded, gradients included;
* **peak resident memory**: the kernel's high-water mark ``VmHWM`` (reset just
  before the step through ``/proc/self/clear_refs``) minus the resident set
  before it, as ``benchmarks/cross_entropy_memory.py`` measures (it also
  counts gloo's buffers and the allocator's slack);
* **time**: wall clock and process CPU time of ``--repeats`` more steps
  (median). P processes share the machine's cores: with P = 3 on 2 cores the
  ranks wait for each other, and other jobs' load moves wall times by tens
  of percent; CPU time is the steadier of the two. Read both loosely.

    python benchmarks/vocab_parallel.py                               # N=4096, F=512, V=32768
    python benchmarks/vocab_parallel.py --tokens 512 --vocab 4096     # a quick look

Results go to ``benchmarks/results/vocab_parallel.json`` (one row per rank).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch
import torch.distributed as dist
from torch.autograd import Function

sys.path.insert(0, str(Path(__file__).parent))
from _measure import LiveTensors
from cross_entropy_memory import _reset_peak, _rss_kib

from lossutils.distributed import (
    CollectiveLog,
    run_on_gloo,
    shard_bounds,
    vocab_parallel_cross_entropy,
)

METHODS = ("vocab_parallel", "gather_logits")
RESULTS = Path(__file__).parent / "results"
MIB = 2**20


class _CopyToGroup(Function):
    """Identity forward; backward all-reduces the gradient (the input is used on every rank)."""

    @staticmethod
    def forward(ctx, x):
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        grad = grad.contiguous()
        dist.all_reduce(grad)
        return grad


class _GatherLogits(Function):
    """All-gather the ranks' ``N x V_r`` logits into ``N x V``; backward keeps its own columns."""

    @staticmethod
    def forward(ctx, local, sizes):
        rank, widest = dist.get_rank(), max(sizes)
        padded = local.new_zeros(local.shape[0], widest)
        padded[:, : local.shape[1]] = local
        pieces = [torch.empty_like(padded) for _ in sizes]
        dist.all_gather(pieces, padded)
        ctx.columns = (sum(sizes[:rank]), sum(sizes[: rank + 1]))
        return torch.cat([p[:, :n] for p, n in zip(pieces, sizes, strict=True)], dim=1)

    @staticmethod
    def backward(ctx, grad):
        lo, hi = ctx.columns
        return grad[:, lo:hi], None


def _gather_logits_loss(x, W_shard, target, sizes):
    logits = _GatherLogits.apply(_CopyToGroup.apply(x) @ W_shard.T, sizes)
    return torch.nn.functional.cross_entropy(logits, target)  # the baseline: torch's own loss


def _step(method, x, W_shard, target, sizes):
    if method == "vocab_parallel":
        loss = vocab_parallel_cross_entropy(x, W_shard, target)
    else:
        loss = _gather_logits_loss(x, W_shard, target, sizes)
    loss.backward()
    return loss


def expected_collectives(method: str, N: int, F: int, sizes: list[int], itemsize: int):
    """The formula: ``(op, bytes sent, bytes received)`` of each collective, in order."""
    P = len(sizes)
    if method == "vocab_parallel":
        return [("allgather_", 7 * 8, 7 * 8 * P),  # handshake: shard sizes and checks, int64
                ("allreduce_", N * itemsize, N * itemsize),  # row maxima
                ("allreduce_", 2 * N * itemsize, 2 * N * itemsize),  # sum of exps, target term
                ("allreduce_", N * F * itemsize, N * F * itemsize)]  # input gradient
    piece = N * max(sizes) * itemsize
    return [("allgather_", piece, piece * P),  # the logits, padded to the widest shard
            ("allreduce_", N * F * itemsize, N * F * itemsize)]


def measure(method: str, N: int, F: int, V: int, repeats: int) -> dict:
    """Runs on each rank: one measured forward + backward, then ``repeats`` timed ones."""
    rank, P = dist.get_rank(), dist.get_world_size()
    sizes = [hi - lo for lo, hi in shard_bounds(V, P)]
    lo = sum(sizes[:rank])
    # warm-up on a tiny problem: kernels, gloo's pairs and lazy libraries load outside the step
    gen = torch.Generator().manual_seed(0)  # the same inputs on every rank
    tiny = [max(n // 64, 1) for n in sizes]
    with CollectiveLog(), LiveTensors():  # the modes' own lazy imports happen here too
        _step(method, torch.randn(8, F, requires_grad=True),
              torch.randn(tiny[rank], F, requires_grad=True),
              torch.randint(0, sum(tiny), (8,), generator=gen), tiny)
    x = (torch.randn(N, F, generator=gen) / F**0.5).requires_grad_()
    W = torch.randn(V, F, generator=gen)
    W_shard = W[lo:lo + sizes[rank]].clone().requires_grad_()
    del W
    target = torch.randint(0, V, (N,), generator=gen)
    reset = _reset_peak()
    base = _rss_kib()[0]
    log, live = CollectiveLog(), LiveTensors(x, W_shard, target)
    start = time.perf_counter()
    with log, live:
        loss = _step(method, x, W_shard, target, sizes)
    first = time.perf_counter() - start
    peak_rss = (_rss_kib()[1] - base) / 1024 if reset else float("nan")
    times, cpu = [], []
    for _ in range(repeats):
        x.grad = W_shard.grad = None
        dist.barrier()
        start, start_cpu = time.perf_counter(), time.process_time()
        _step(method, x, W_shard, target, sizes)
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    calls = [(c.op, c.sent_bytes, c.received_bytes) for c in log.calls]
    return dict(method=method, ranks=P, rank=rank, shard_rows=sizes[rank], loss=loss.item(),
                peak_tensor_mib=live.peak / MIB, peak_rss_mib=peak_rss, first_s=first,
                time_s=statistics.median(times) if times else first, times_s=times,
                cpu_s=statistics.median(cpu) if cpu else float("nan"),
                collectives=calls, sent_bytes=sum(c[1] for c in calls),
                received_bytes=sum(c[2] for c in calls),
                formula=expected_collectives(method, N, F, sizes, x.element_size()))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=4096)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=1, help="timed steps after the measured one")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per (method, P) run")
    parser.add_argument("--out", type=Path, default=RESULTS / "vocab_parallel.json")
    args = parser.parse_args(argv)
    N, F, V = args.tokens, args.hidden, args.vocab
    print(f"N={N} tokens, F={F}, V={V}, float32: logits N x V = {N * V * 4 / MIB:.0f} MiB, "
          f"input N x F = {N * F * 4 / MIB:.0f} MiB, head V x F = {V * F * 4 / MIB:.0f} MiB")
    rows = []
    for P in args.ranks:
        for method in args.methods:
            started = time.perf_counter()
            got = run_on_gloo(measure, P, method, N, F, V, args.repeats, timeout=args.timeout)
            for r in got:
                if [tuple(c) for c in r["collectives"]] != [tuple(c) for c in r["formula"]]:
                    raise AssertionError(f"{method} P={P} rank {r['rank']}: collectives "
                                         f"{r['collectives']} differ from the formula "
                                         f"{r['formula']}")
            rows += got
            worst = max(got, key=lambda r: r["peak_tensor_mib"])
            print(f"P={P} {method:15s} sent/rank {got[0]['sent_bytes'] / MIB:9.3f} MiB "
                  f"({len(got[0]['collectives'])} collectives)  peak tensors/rank "
                  f"{worst['peak_tensor_mib']:8.1f} MiB  peak RSS/rank "
                  f"{max(r['peak_rss_mib'] for r in got):8.1f} MiB  time "
                  f"{max(r['time_s'] for r in got):6.2f} s (cpu "
                  f"{max(r['cpu_s'] for r in got):6.2f} s)  loss {got[0]['loss']:.6f}  "
                  f"[{time.perf_counter() - started:.0f} s]", flush=True)
    _ratios(rows)
    meta = dict(date=datetime.now(UTC).isoformat(timespec="seconds"),
                python=platform.python_version(), machine=platform.machine(), cpus=os.cpu_count(),
                torch=torch.__version__, command=" ".join(sys.argv), tokens=N, hidden=F, vocab=V,
                dtype="float32", threads_per_rank=1, backend="gloo (loopback)",
                shards={P: [hi - lo for lo, hi in shard_bounds(V, P)] for P in args.ranks},
                peak_tensor="largest total of tensor storages alive at once among those created "
                            "during one forward+backward (a TorchDispatchMode), per rank",
                peak_rss="VmHWM after the step minus VmRSS before it (clear_refs reset), per rank",
                communication="bytes each rank passes to / gets from the collectives, recorded by "
                              "lossutils.distributed.CollectiveLog and checked against the formula")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    print(f"\nwrote {args.out}")


def _ratios(rows: list[dict]) -> None:
    """gather_logits / vocab_parallel, per P: bytes sent and peak tensor memory per rank."""
    by = {(r["method"], r["ranks"]): r for r in rows if r["rank"] == 0}
    print(f"\n{'P':>2s} {'sent gather/vp':>15s} {'forward bytes gather/vp':>24s} "
          f"{'peak gather/vp':>15s}")
    for P in sorted({p for _, p in by}):
        vp, ga = by.get(("vocab_parallel", P)), by.get(("gather_logits", P))
        if vp and ga:
            fwd_vp = sum(c[1] for c in vp["collectives"][:3])
            fwd_ga = ga["collectives"][0][1]
            print(f"{P:2d} {ga['sent_bytes'] / vp['sent_bytes']:15.2f} {fwd_ga / fwd_vp:24.1f} "
                  f"{ga['peak_tensor_mib'] / vp['peak_tensor_mib']:15.2f}")


if __name__ == "__main__":
    main()
