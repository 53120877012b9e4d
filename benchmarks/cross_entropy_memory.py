"""Time and peak memory of cross-entropy forward + backward: torch vs lossutils.

    python benchmarks/cross_entropy_memory.py                    # (4096, 32768) float32
    python benchmarks/cross_entropy_memory.py --n 512 --c 8192 --processes 1 --repeats 2

Every measurement runs in a fresh subprocess, torch and lossutils
alternating, so that each one's peak memory is its own and neither inherits
the other's allocator state. In the subprocess:

1. build the logits (requires_grad) and the class-index targets, run one small
   warm-up step (kernels, lazy initialisation), then read the baseline
   ``resource.getrusage(RUSAGE_SELF).ru_maxrss``;
2. run ``--repeats`` steps of ``loss = cross_entropy(x, y); loss.backward()``,
   timing each (the gradient is dropped between steps, as ``zero_grad(set_to_none=True)`` does);
3. report the step times (wall and process CPU) and the peak-RSS growth over the baseline.

The peak is the kernel's high-water mark of the resident set (``VmHWM`` in
``/proc/self/status``), reset to the current RSS just before the first step
by writing ``5`` to ``/proc/self/clear_refs``; where that is not allowed,
``resource.getrusage(...).ru_maxrss`` is used (then the baseline is the peak
so far, which the inputs are built to leave at the current RSS).

Why the resident set: tracemalloc sees only Python's allocator, and torch's CPU
tensors are not Python objects. torch's CPU allocator takes its memory from
glibc malloc, which serves blocks this large with ``mmap`` and hands them back
to the OS on free, so the resident set follows the live tensor bytes and its
high-water mark is the step's peak (pages are counted once written; every
tensor here is written). The baseline already holds the inputs, so the
growth is what the step itself needed: torch keeps an N x C log-softmax for
backward and builds two more N x C tensors there; lossutils keeps two numbers
per row and builds one N x C tensor, the gradient.

A last subprocess computes both losses and gradients on the same input and
prints their largest differences. Timings on a shared machine are noisy:
read the ratios together with the spread (min-max over all steps).
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time


def _inputs(n: int, c: int, dtype: str):
    import torch

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(n, c, generator=gen, dtype=getattr(torch, dtype)).mul_(3)  # no temporary
    y = torch.randint(0, c, (n,), generator=gen)
    return x.requires_grad_(), y


def _loss_fn(impl: str):
    if impl == "torch":
        import torch.nn.functional as F

        return F.cross_entropy
    import lossutils.functional as LF

    return LF.cross_entropy


def _rss_kib() -> tuple[int, int]:
    """(current, peak) resident set size in KiB, from /proc/self/status."""
    fields = dict(line.split(":", 1) for line in open("/proc/self/status"))
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def _reset_peak() -> bool:
    """Reset the kernel's peak-RSS mark to the current RSS (Linux >= 4.0:
    ``echo 5 > clear_refs``)."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def worker(impl: str, n: int, c: int, dtype: str, repeats: int, threads: int) -> dict:
    import torch

    if threads:
        torch.set_num_threads(threads)
    loss_fn = _loss_fn(impl)
    small_x, small_y = _inputs(64, 128, dtype)
    loss_fn(small_x, small_y).backward()  # warm-up: lazy initialisation outside the measurement
    x, y = _inputs(n, c, dtype)
    # The baseline is the RSS now, with the inputs in memory. Where the peak mark
    # cannot be reset, getrusage's maxrss (the peak so far) stands in for it.
    reset = _reset_peak()
    base = _rss_kib()[0] if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    times, cpu = [], []
    for _ in range(repeats):
        x.grad = None
        start, start_cpu = time.perf_counter(), time.process_time()
        loss_fn(x, y).backward()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    peak = _rss_kib()[1] if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"impl": impl, "times": times, "cpu": cpu, "peak_mib": (peak - base) / 1024,
            "reset": reset,
            "tensor_mib": x.numel() * x.element_size() / 2**20, "threads": torch.get_num_threads()}


def compare(n: int, c: int, dtype: str) -> dict:
    import torch

    out = {}
    results = {}
    for impl in ("torch", "lossutils"):
        x, y = _inputs(n, c, dtype)
        loss = _loss_fn(impl)(x, y)
        loss.backward()
        results[impl] = (loss.detach(), x.grad)
    (l_t, g_t), (l_o, g_o) = results["torch"], results["lossutils"]
    out["loss_abs_diff"] = (l_t - l_o).abs().item()
    out["grad_max_abs_diff"] = (g_t - g_o).abs().max().item()
    out["grad_max_abs"] = g_t.abs().max().item()
    out["grad_equal_elements"] = (g_t == g_o).double().mean().item()
    out["allclose"] = bool(torch.allclose(l_t, l_o) and torch.allclose(g_t, g_o))
    return out


def _run(args: list[str]) -> dict:
    done = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True,
                          check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=4096, help="rows (batch x sequence)")
    parser.add_argument("--c", type=int, default=32768, help="classes (vocabulary)")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--repeats", type=int, default=3, help="timed steps per subprocess")
    parser.add_argument("--processes", type=int, default=2, help="subprocesses per implementation")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--worker", choices=["torch", "lossutils"], help=argparse.SUPPRESS)
    parser.add_argument("--compare", action="store_true", help=argparse.SUPPRESS)
    a = parser.parse_args()
    if a.worker:
        print(json.dumps(worker(a.worker, a.n, a.c, a.dtype, a.repeats, a.threads)))
        return
    if a.compare:
        print(json.dumps(compare(a.n, a.c, a.dtype)))
        return

    shape = ["--n", str(a.n), "--c", str(a.c), "--dtype", a.dtype, "--repeats", str(a.repeats),
             "--threads", str(a.threads)]
    runs = {"torch": [], "lossutils": []}
    for _ in range(a.processes):
        for impl in runs:  # alternate, so drifting load hits both alike
            runs[impl].append(_run(["--worker", impl, *shape]))
    print(f"cross_entropy forward+backward, input ({a.n}, {a.c}) {a.dtype} "
          f"({runs['torch'][0]['tensor_mib']:.0f} MiB), "
          f"{a.processes} processes x {a.repeats} steps, "
          f"{runs['torch'][0]['threads']} threads")
    summary = {}
    for impl, rs in runs.items():
        times = [t for r in rs for t in r["times"]]
        cpu = [t for r in rs for t in r["cpu"]]
        peak = max(r["peak_mib"] for r in rs)
        summary[impl] = (statistics.median(times), min(times), statistics.median(cpu), peak)
        print(f"  {impl:10s} wall median {statistics.median(times) * 1e3:7.1f} ms "
              f"(min {min(times) * 1e3:.1f}, "
              f"max {max(times) * 1e3:.1f}), cpu median {statistics.median(cpu) * 1e3:7.1f} ms, "
              f"peak growth {peak:7.1f} MiB")
    t, o = summary["torch"], summary["lossutils"]
    print(f"  ratio lossutils / torch: wall median {o[0] / t[0]:.2f}x, "
          f"wall min {o[1] / t[1]:.2f}x, "
          f"cpu median {o[2] / t[2]:.2f}x, peak memory {o[3] / t[3]:.2f}x")
    if not all(r["reset"] for rs in runs.values() for r in rs):
        print("  (peak from getrusage maxrss: /proc/self/clear_refs was not writable)")
    check = _run(["--compare", *shape])
    print(f"  |loss difference| {check['loss_abs_diff']:.3g}, max |grad difference| "
          f"{check['grad_max_abs_diff']:.3g} (max |grad| {check['grad_max_abs']:.3g}, "
          f"{check['grad_equal_elements'] * 100:.1f}% of elements bitwise equal), "
          f"allclose: {check['allclose']}")


if __name__ == "__main__":
    main()
