"""Peak memory and time of linear + cross-entropy at LLM scale: naive, torch, torch chunked and
lossutils.

Every (method, vocabulary size) pair runs forward + backward in a fresh child
process, so each peak belongs to that method alone. How peak CPU memory is
measured: the child imports torch, allocates the inputs (hidden states ``x``
``N x F``, head ``W`` ``V x F``, targets) and runs the method once on a tiny
problem (loading every kernel and library it needs); it then reads
``getrusage(RUSAGE_SELF).ru_maxrss`` as its baseline. After one full forward +
backward at the real size it reads ``ru_maxrss`` again: the difference is the
memory the loss itself needed at its peak (logits, saved activations,
gradients -- the gradients of ``x`` and ``W`` themselves, 80 MiB at
8192 x 512 and V = 32768 fp32, are part of every method's peak). ``ru_maxrss``
is the high-water mark of resident pages: exact to a page, but it counts
only what was touched, and large tensors are allocated with ``mmap`` and
given back on free, so it follows the allocations. Times are wall-clock
medians of ``--repeats`` forward + backward passes after the measured one.

    python benchmarks/linear_cross_entropy.py                       # the sweep of the chapter
    python benchmarks/linear_cross_entropy.py --vocab 4096 --repeats 2   # a quick look

Results go to ``benchmarks/results/linear_cross_entropy.{csv,json}`` (read by
chapters/07_llm_scale.md) and a table of ratios is printed.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

METHODS = ("naive", "torch", "torch_chunked", "lossutils")
RESULTS = Path(__file__).parent / "results"


def _naive(x, W, target):
    """The textbook way: full logits, log-softmax from max/exp/sum/log, then NLL; autograd keeps
    it all."""
    import torch

    logits = x @ W.T
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - torch.log(torch.exp(shifted).sum(dim=1, keepdim=True))
    return -log_probs.gather(1, target.unsqueeze(1)).mean()


def _loss_fn(method):
    import torch

    if method == "naive":
        return _naive
    if method == "lossutils":
        import lossutils.functional as LF

        return LF.linear_cross_entropy
    import torch.nn.functional as functional  # the benchmark calls torch's loss on purpose

    if method == "torch":
        return lambda x, W, t: functional.linear_cross_entropy(x, W, t)
    options = torch.nn.LinearCrossEntropyOptions()
    return lambda x, W, t: functional.linear_cross_entropy(x, W, t, options=options)


def _maxrss_mib() -> float:
    import resource

    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return kib / 1024


def child(method: str, tokens: int, hidden: int, vocab: int, repeats: int, threads: int) -> dict:
    """Runs in its own process: one measured pass (peak), then ``repeats`` timed passes."""
    import torch

    torch.set_num_threads(threads)
    gen = torch.Generator().manual_seed(0)
    fn = _loss_fn(method)
    # warm-up on a tiny problem: kernels, thread pool and lazily loaded libraries are in the
    # baseline
    small = (torch.randn(8, hidden, requires_grad=True),
             torch.randn(64, hidden, requires_grad=True))
    fn(*small, torch.randint(0, 64, (8,))).backward()
    del small
    x = (torch.randn(tokens, hidden, generator=gen) / hidden**0.5).requires_grad_()
    W = torch.randn(vocab, hidden, generator=gen).requires_grad_()
    target = torch.randint(0, vocab, (tokens,), generator=gen)
    base = _maxrss_mib()
    start = time.perf_counter()
    loss = fn(x, W, target)
    loss.backward()
    first = time.perf_counter() - start
    peak = _maxrss_mib() - base
    value = loss.item()
    times = []
    for _ in range(repeats):
        x.grad = W.grad = None
        start = time.perf_counter()
        fn(x, W, target).backward()
        times.append(time.perf_counter() - start)
    return dict(method=method, tokens=tokens, hidden=hidden, vocab=vocab, dtype="float32",
                threads=threads,
                peak_mib=round(peak, 1), time_s=round(statistics.median(times or [first]), 4),
                times_s=[round(t, 4) for t in times], first_s=round(first, 4), loss=value,
                logits_mib=tokens * vocab * 4 / 2**20)


def run_child(method, tokens, hidden, vocab, repeats, threads) -> dict:
    cmd = [sys.executable, __file__, "--child", method, str(tokens), str(hidden), str(vocab),
           str(repeats), str(threads)]
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"{method} V={vocab} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=8192)
    parser.add_argument("--hidden", type=int, default=512)
    parser.add_argument("--vocab", type=int, nargs="+", default=[4096, 8192, 16384, 32768])
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads per child (the machine is shared)")
    parser.add_argument("--out", type=Path, default=RESULTS / "linear_cross_entropy")
    parser.add_argument("--child", nargs=6, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        method, *nums = args.child
        print(json.dumps(child(method, *map(int, nums))))
        return
    rows = []
    for vocab in args.vocab:
        for method in args.methods:
            row = run_child(method, args.tokens, args.hidden, vocab, args.repeats, args.threads)
            rows.append(row)
            print(f"V={vocab:6d} {method:14s} peak {row['peak_mib']:8.1f} MiB  "
                  f"time {row['time_s']:7.3f} s  "
                  f"(runs {row['times_s']})", flush=True)
    print()
    print(f"{'V':>6s} {'method':14s} {'peak/chunked':>12s} {'time/chunked':>12s} "
          f"{'peak/torch':>10s} {'time/torch':>10s}")
    for vocab in args.vocab:
        by = {r["method"]: r for r in rows if r["vocab"] == vocab}
        for method, r in by.items():
            ratios = []
            for ref in ("torch_chunked", "torch"):
                b = by.get(ref)
                ratios += [r["peak_mib"] / b["peak_mib"] if b else float("nan"),
                           r["time_s"] / b["time_s"] if b else float("nan")]
            print(f"{vocab:6d} {method:14s} {ratios[0]:12.2f} {ratios[1]:12.2f} "
                  f"{ratios[2]:10.2f} {ratios[3]:10.2f}")
    meta = dict(date=datetime.now(UTC).isoformat(timespec="seconds"),
                python=platform.python_version(),
                machine=platform.machine(), cpus=os.cpu_count(), command=" ".join(sys.argv),
                torch=__import__("torch").__version__,
                peak_memory="ru_maxrss of a fresh child after one forward+backward minus its "
                            "ru_maxrss "
                            "after importing torch, a tiny warm-up pass and allocating the inputs")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(dict(meta=meta, rows=rows), indent=1))
    with args.out.with_suffix(".csv").open("w", newline="") as f:
        fields = [k for k in rows[0] if k != "times_s"]
        writer = csv.DictWriter(f, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    print(f"\nwrote {args.out.with_suffix('.csv')} and .json")


if __name__ == "__main__":
    main()
