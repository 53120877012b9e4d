"""The 8 x 10 trade-off between issue 14's memory target and its tiny-time target.

    python benchmarks/tiny_staging.py                  # 1 and 2 threads, two rounds each
    python benchmarks/tiny_staging.py --threads 1 --rounds 1 --json tiny_staging.json

At 8 x 10, three lossutils losses hold one float per row more than torch at their peak:
``softmax`` and ``log_softmax`` (each row's sum, which torch's fused backward keeps in a
register) and ``multi_margin_loss`` (each row's ``x_y - margin`` in the forward, each
row's slope sum in the backward). Above ``lossutils._staging.MIN_ELEMENTS`` elements they
write those statistics into their own output buffer instead (``lossutils._staging``), and
reach torch's memory; below it they do not, because staging costs a dozen small ops.

This script measures both paths of each of those losses at the tiny size, in one process,
with ``loss_family.measure`` (torch's function and lossutils' alternating, the median of
``--repeats`` samples): once at the default threshold (``small``, the path the library
takes) and once with the threshold lowered to 1 element (``staged``). It prints each
path's time and peak-memory ratio against torch's, and whether the row meets the targets
(tiny <= 4x, memory <= 1x). Nothing here asserts.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
import loss_family

from lossutils import _staging

STAGED_LOSSES = ("softmax", "log_softmax", "multi_margin_loss")


def measure_paths(threads: int, repeats: int, warmup: int) -> list[dict]:
    """Both paths of each staged loss at 8 x 10: one row per loss and path."""
    table = [b for b in loss_family.benches() if b.tiny and b.name in STAGED_LOSSES]
    default, before, rows = _staging.MIN_ELEMENTS, torch.get_num_threads(), []
    try:
        torch.set_num_threads(threads)
        for path, threshold in (("small", default), ("staged", 1)):
            _staging.MIN_ELEMENTS = threshold
            for bench in table:
                row = loss_family.measure(bench, repeats, warmup)
                rows.append({**row, "path": path, "threads": threads})
    finally:  # the library's own threshold and the caller's threads back, whatever happened
        _staging.MIN_ELEMENTS = default
        torch.set_num_threads(before)
    return rows


def _verdict(row: dict) -> str:
    fails = [name for name, ok in (("time", row["time_ratio"] <= loss_family.TARGETS["tiny"]),
                                   ("memory",
                                    row["memory_ratio"] <= loss_family.TARGETS["memory"]))
             if not ok]
    return "meets both" if not fails else "misses " + " and ".join(fails)


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--rounds", type=int, default=2, help="measurements of each row")
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--json", type=Path, help="write the rows here")
    args = parser.parse_args(argv)

    result = {"torch": torch.__version__, "min_elements": _staging.MIN_ELEMENTS, "rows": []}
    print(f"{'threads':>7s} {'loss':18s} {'path':7s} {'torch':>12s} {'lossutils':>12s} "
          f"{'time':>6s} {'memory':>7s}")
    for threads in args.threads:
        for _ in range(args.rounds):
            for row in measure_paths(threads, args.repeats, args.warmup):
                result["rows"].append(row)
                print(f"{threads:7d} {row['loss']:18s} {row['path']:7s} "
                      f"{loss_family._fmt_time(row['torch_s'])} "
                      f"{loss_family._fmt_time(row['lossutils_s'])} {row['time_ratio']:5.2f}x "
                      f"{row['memory_ratio']:6.2f}x  {_verdict(row)}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1) + "\n")
        print(f"\nwrote {args.json}")
    return result


if __name__ == "__main__":
    main()
