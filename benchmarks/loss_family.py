"""Every loss of ``lossutils.functional``, forward + backward, against torch's, side by side.

    python benchmarks/loss_family.py                       # all losses, 1 and 2 threads
    python benchmarks/loss_family.py --threads 1 --only ctc smooth_l1
    python benchmarks/loss_family.py --json benchmarks/results/loss_family.json

For each loss and size, in ONE process, torch's function and lossutils' run
alternately (which one goes first alternates too, so a change in the machine's
load hits both alike): a few warm-up steps, then ``--repeats`` timed samples
each, and the median of each is compared. A step is ``out = loss(*inputs);
out.backward(grad)`` with the gradients dropped afterwards, as
``zero_grad(set_to_none=True)`` does. Tiny inputs take microseconds, so a sample
times as many steps as fill about 5 ms and reports the time per step.

Peak memory is the most bytes of tensor storage alive at once during one step
(inputs and the incoming gradient excluded, gradients included), followed by a
dispatch mode (``_measure.LiveTensors``). It sees every tensor an operator returns, but not
the temporaries an ATen kernel allocates inside itself: torch's fused kernels
look leaner than they are, lossutils' composed ones do not, so a memory ratio
at or below 1 here is at or below 1 in truth.

Sizes are training-like (a batch of 1,024 over 500 classes, 512 x 2,048
regression targets, a 16 x 10 x 96 x 96 segmentation map, CTC with T = 150,
N = 8, C = 40, S = 50, 128 x 200 margin scores, ...) plus a tiny 8 x 10 size
where per-call overhead dominates. The summary prints the geometric mean and
the worst time ratio (training-like sizes), the worst tiny ratio and the worst
memory ratio, against the targets of issue 14: geometric mean <= 1.2, no loss
over 2x, tiny <= 4x, memory never above torch's. Nothing here asserts: read
the table with the machine's load in mind (run it twice).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _measure import LiveTensors

import lossutils.functional as LF

TARGETS = {"geomean": 1.2, "worst": 2.0, "tiny": 4.0, "memory": 1.0}
SAMPLE_SECONDS = 5e-3


@dataclass(frozen=True)
class Bench:
    """One loss at one size: ``make(gen)`` returns ``(args, kwargs)``, with the tensors the
    loss is differentiated in already requiring grad; ``options`` are non-tensor keywords."""

    name: str
    size: str
    make: Callable[[torch.Generator], tuple[tuple, dict]]
    options: dict | None = None
    tiny: bool = False


def _leaf(t: torch.Tensor) -> torch.Tensor:
    return t.detach().requires_grad_()


def _randn(gen, *shape, scale=1.0):
    return torch.randn(*shape, generator=gen) * scale


def _classes(gen, n, c, *rest):
    """Class indices in [0, c) of shape (n, *rest)."""
    return torch.randint(0, c, (n, *rest), generator=gen)


def _signs(gen, *shape):
    return torch.randint(0, 2, shape, generator=gen).float() * 2 - 1


def _counts(gen, n, c):
    """Poisson counts with rates in [0, 4)."""
    return torch.poisson(torch.rand(n, c, generator=gen) * 4, generator=gen)


def _probs(gen, n, c):
    return torch.softmax(_randn(gen, n, c), 1)


def _multilabel_targets(gen, n, c):
    """Class indices first in each row, then -1 (the rest ignored), as multilabel_margin wants."""
    target = torch.full((n, c), -1, dtype=torch.long)
    for row in range(n):
        k = int(torch.randint(1, max(2, c // 10), (), generator=gen))
        target[row, :k] = torch.randperm(c, generator=gen)[:k]
    return target


def _ctc(t, n, c, s):
    def make(gen):
        log_probs = _leaf(torch.log_softmax(_randn(gen, t, n, c), 2))
        targets = torch.randint(1, c, (n, s), generator=gen)
        lengths = torch.randint(max(1, s // 2), s + 1, (n,), generator=gen)
        return (log_probs, targets, torch.full((n,), t, dtype=torch.long), lengths), {}

    return make


def _family(n: int, c: int, size: str, tiny: bool = False) -> list[Bench]:
    """Every loss at an (n, c) size: classification losses over n x c scores, elementwise
    losses over n x c values, embedding losses over n vectors of c features."""
    x = lambda gen: _leaf(_randn(gen, n, c, scale=2))  # noqa: E731 (a one-line maker)
    y = lambda gen: _randn(gen, n, c)  # noqa: E731
    pair = lambda gen: ((x(gen), y(gen)), {})  # noqa: E731
    benches = [
        Bench("softmax", size, lambda g: ((x(g),), {}), {"dim": 1}),
        Bench("log_softmax", size, lambda g: ((x(g),), {}), {"dim": 1}),
        Bench("cross_entropy", size, lambda g: ((x(g), _classes(g, n, c)), {})),
        Bench("nll_loss", size, lambda g: ((x(g), _classes(g, n, c)), {})),
        Bench("kl_div", size, lambda g: ((_leaf(torch.log_softmax(_randn(g, n, c), 1)),
                                          _probs(g, n, c)), {}), {"reduction": "batchmean"}),
        Bench("multi_margin_loss", size, lambda g: ((x(g), _classes(g, n, c)), {})),
        Bench("multilabel_margin_loss", size, lambda g: ((x(g), _multilabel_targets(g, n, c)), {})),
        Bench("multilabel_soft_margin_loss", size,
              lambda g: ((x(g), torch.randint(0, 2, (n, c), generator=g).float()), {})),
        Bench("l1_loss", size, pair),
        Bench("mse_loss", size, pair),
        Bench("smooth_l1_loss", size, pair),
        Bench("huber_loss", size, pair),
        Bench("binary_cross_entropy", size,
              lambda g: ((_leaf(torch.rand(n, c, generator=g).clamp(1e-3, 1 - 1e-3)),
                          torch.rand(n, c, generator=g)), {})),
        Bench("binary_cross_entropy_with_logits", size,
              lambda g: ((x(g), torch.rand(n, c, generator=g)), {})),
        Bench("soft_margin_loss", size, lambda g: ((x(g), _signs(g, n, c)), {})),
        Bench("poisson_nll_loss", size,
              lambda g: ((x(g), _counts(g, n, c)), {})),
        Bench("gaussian_nll_loss", size,
              lambda g: ((x(g), y(g), _leaf(torch.rand(n, c, generator=g) + 0.1)), {})),
        Bench("margin_ranking_loss", size, lambda g: ((x(g), x(g), _signs(g, n, c)), {})),
        Bench("hinge_embedding_loss", size, lambda g: ((x(g), _signs(g, n, c)), {})),
        Bench("cosine_embedding_loss", size, lambda g: ((x(g), x(g), _signs(g, n)), {})),
        Bench("pairwise_distance", size, lambda g: ((x(g), x(g)), {})),
        Bench("cosine_similarity", size, lambda g: ((x(g), x(g)), {})),
        Bench("triplet_margin_loss", size, lambda g: ((x(g), x(g), x(g)), {})),
        Bench("triplet_margin_with_distance_loss", size, lambda g: ((x(g), x(g), x(g)), {})),
    ]
    return [Bench(b.name, b.size, b.make, b.options, tiny) for b in benches]


def benches() -> list[Bench]:
    """The table: training-like sizes per family, then every loss at the tiny size."""
    by_size = {  # which losses each training-like (n, c) size is for
        (1024, 500): {"softmax", "log_softmax", "cross_entropy", "nll_loss", "kl_div",
                      "multi_margin_loss", "multilabel_soft_margin_loss"},
        (512, 2048): {"l1_loss", "mse_loss", "smooth_l1_loss", "huber_loss",
                      "binary_cross_entropy", "binary_cross_entropy_with_logits",
                      "soft_margin_loss", "poisson_nll_loss", "gaussian_nll_loss"},
        (128, 200): {"margin_ranking_loss", "hinge_embedding_loss", "cosine_embedding_loss",
                     "pairwise_distance", "cosine_similarity", "triplet_margin_loss",
                     "triplet_margin_with_distance_loss", "multi_margin_loss",
                     "multilabel_margin_loss"},
        (64, 1000): {"multilabel_margin_loss"},
    }
    table = [b for (n, c), names in by_size.items() for b in _family(n, c, f"{n}x{c}")
             if b.name in names]
    seg = (16, 10, 96, 96)  # N, C, H, W: a label per pixel
    table += [Bench(name, "16x10x96x96",
                    lambda g: ((_leaf(_randn(g, *seg)), _classes(g, 16, 10, 96, 96)), {}))
              for name in ("cross_entropy", "nll_loss")]
    table.append(Bench("ctc_loss", "T150 N8 C40 S50", _ctc(150, 8, 40, 50)))
    table.append(Bench("linear_cross_entropy", "N1024 F256 V8192",
                       lambda g: ((_leaf(_randn(g, 1024, 256)), _leaf(_randn(g, 8192, 256) / 16),
                                   _classes(g, 1024, 8192)), {})))
    table += _family(8, 10, "8x10", tiny=True)
    table.append(Bench("ctc_loss", "T10 N8 C10 S3", _ctc(10, 8, 10, 3), tiny=True))
    table.append(Bench("linear_cross_entropy", "N8 F10 V10",
                       lambda g: ((_leaf(_randn(g, 8, 10)), _leaf(_randn(g, 10, 10)),
                                   _classes(g, 8, 10)), {}), tiny=True))
    return table


class Step:
    """One forward + backward of ``fn`` on fixed inputs, gradients dropped afterwards."""

    def __init__(self, fn, args, kwargs, options):
        self.fn, self.args, self.kwargs, self.options = fn, args, kwargs, options or {}
        self.leaves = [t for t in (*args, *kwargs.values())
                       if isinstance(t, torch.Tensor) and t.requires_grad]
        out = fn(*args, **kwargs, **self.options)
        gen = torch.Generator().manual_seed(1)
        self.grad = torch.randn(out.shape, generator=gen, dtype=out.dtype)

    def __call__(self) -> None:
        self.fn(*self.args, **self.kwargs, **self.options).backward(self.grad)
        for t in self.leaves:
            t.grad = None


def _per_step(step: Step, inner: int) -> float:
    start = time.perf_counter()
    for _ in range(inner):
        step()
    return (time.perf_counter() - start) / inner


def _peak_bytes(step: Step) -> int:
    # The incoming gradient is an input too: LiveTensors counts a storage the first time an
    # op returns it, so a view of it (a slice, a reshape) would otherwise count it whole.
    with LiveTensors(step.grad, *step.leaves, *[t for t in (*step.args, *step.kwargs.values())
                                                if isinstance(t, torch.Tensor)]) as live:
        step()
    return live.peak


def measure(bench: Bench, repeats: int, warmup: int) -> dict:
    gen = torch.Generator().manual_seed(0)
    args, kwargs = bench.make(gen)
    steps = {"torch": Step(getattr(F, bench.name), args, kwargs, bench.options),
             "lossutils": Step(getattr(LF, bench.name), args, kwargs, bench.options)}
    for _ in range(warmup):
        for step in steps.values():
            step()
    one = min(_per_step(step, 1) for step in steps.values())
    inner = max(1, math.ceil(SAMPLE_SECONDS / max(one, 1e-7)))
    times = {impl: [] for impl in steps}
    order = list(steps)
    for _ in range(repeats):
        for impl in order:
            times[impl].append(_per_step(steps[impl], inner))
        order.reverse()
    row = {"loss": bench.name, "size": bench.size, "tiny": bench.tiny}
    for impl in steps:
        row[f"{impl}_s"] = statistics.median(times[impl])
        row[f"{impl}_peak_bytes"] = _peak_bytes(steps[impl])
    row["time_ratio"] = row["lossutils_s"] / row["torch_s"]
    row["memory_ratio"] = (row["lossutils_peak_bytes"] / row["torch_peak_bytes"]
                           if row["torch_peak_bytes"] else float("nan"))
    return row


def _fmt_time(seconds: float) -> str:
    return f"{seconds * 1e3:9.3f} ms" if seconds >= 1e-3 else f"{seconds * 1e6:9.1f} us"


def summarize(rows: list[dict]) -> dict:
    trained = [r["time_ratio"] for r in rows if not r["tiny"]]
    tiny = [r["time_ratio"] for r in rows if r["tiny"]]
    memory = [r["memory_ratio"] for r in rows if not math.isnan(r["memory_ratio"])]
    worst = max((r for r in rows if not r["tiny"]), key=lambda r: r["time_ratio"], default=None)
    worst_tiny = max((r for r in rows if r["tiny"]), key=lambda r: r["time_ratio"], default=None)
    return {
        "geomean": math.exp(statistics.fmean(map(math.log, trained))) if trained else None,
        "worst": worst and (worst["time_ratio"], f"{worst['loss']} {worst['size']}"),
        "tiny_geomean": math.exp(statistics.fmean(map(math.log, tiny))) if tiny else None,
        "tiny": worst_tiny and (worst_tiny["time_ratio"],
                                f"{worst_tiny['loss']} {worst_tiny['size']}"),
        "memory": max(memory) if memory else None,
    }


def _print_summary(summary: dict) -> None:
    def verdict(value, target):
        return "meets" if value <= target else "MISSES"

    if summary["geomean"] is not None:
        g = summary["geomean"]
        print(f"  geometric mean time ratio (training-like): {g:.2f}x "
              f"({verdict(g, TARGETS['geomean'])} <= {TARGETS['geomean']})")
        w, where = summary["worst"]
        print(f"  worst (training-like): {w:.2f}x, {where} ({verdict(w, TARGETS['worst'])} "
              f"<= {TARGETS['worst']})")
    if summary["tiny"] is not None:
        t, where = summary["tiny"]
        print(f"  tiny: geometric mean {summary['tiny_geomean']:.2f}x, worst {t:.2f}x, {where} "
              f"({verdict(t, TARGETS['tiny'])} <= {TARGETS['tiny']})")
    if summary["memory"] is not None:
        m = summary["memory"]
        print(f"  worst peak-memory ratio: {m:.2f}x ({verdict(m, TARGETS['memory'])} "
              f"<= {TARGETS['memory']})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--only", nargs="+", help="run the losses whose name contains any of these")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-tiny", action="store_true", help="skip the 8 x 10 size")
    parser.add_argument("--json", type=Path, help="write the rows and summaries here")
    args = parser.parse_args(argv)

    table = [b for b in benches() if (not args.only or any(s in b.name for s in args.only))
             and not (args.no_tiny and b.tiny)]
    results = {"torch": torch.__version__, "runs": []}
    for threads in args.threads:
        torch.set_num_threads(threads)
        print(f"\n== {threads} thread(s), torch {torch.__version__}")
        print(f"{'loss':34s} {'size':18s} {'torch':>12s} {'lossutils':>12s} {'time':>6s} "
              f"{'memory':>7s}")
        rows = []
        for bench in table:
            row = measure(bench, args.repeats, args.warmup)
            rows.append(row)
            print(f"{row['loss']:34s} {row['size']:18s} {_fmt_time(row['torch_s'])} "
                  f"{_fmt_time(row['lossutils_s'])} {row['time_ratio']:5.2f}x "
                  f"{row['memory_ratio']:6.2f}x", flush=True)
        summary = summarize(rows)
        _print_summary(summary)
        results["runs"].append({"threads": threads, "rows": rows, "summary": summary})
    if args.json:
        args.json.write_text(json.dumps(results, indent=1) + "\n")
        print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
