"""Adaptive softmax against the full softmax it approximates, and lossutils against torch.

For ``N`` rows of width ``d`` and a vocabulary of ``V`` classes whose targets follow
Zipf's law (:math:`p(c) \\propto 1 / (c + 1)`, class 0 the most frequent), it prints

* the multiply-adds per row of the output layer, from the formula

  .. math::
      \\text{full: } dV, \\qquad
      \\text{adaptive: } d(c_0 + K) + \\sum_{k=1}^{K} p_k (d\\, d_k + d_k (c_k - c_{k-1})),
      \\quad d_k = \\lfloor d / \\texttt{div\\_value}^k \\rfloor,

  with :math:`p_k` the share of targets in cluster :math:`k` (counted on the drawn targets);
* the wall time of forward + backward (median of ``--repeats``, one process, alternating
  methods) of: ``Linear(d, V)`` + ``lossutils.functional.cross_entropy`` (the full softmax),
  ``torch.nn.AdaptiveLogSoftmaxWithLoss`` and ``lossutils.nn.AdaptiveLogSoftmaxWithLoss``
  with the same weights, and the largest differences in loss and gradients between the two.

    python benchmarks/adaptive_softmax.py                 # N=1024, d=256, V=32768
    python benchmarks/adaptive_softmax.py --vocab 8192 --cutoffs 512 2048 --repeats 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import lossutils.functional as LF
import lossutils.nn as LN


def zipf_targets(n: int, vocab: int, seed: int = 0) -> torch.Tensor:
    weights = 1.0 / torch.arange(1, vocab + 1, dtype=torch.float64)
    return torch.multinomial(weights, n, replacement=True,
                             generator=torch.Generator().manual_seed(seed))


def multiply_adds(module, target: torch.Tensor) -> tuple[float, float, list[float]]:
    """Per row: the full softmax's and the adaptive softmax's, and each cluster's share p_k."""
    d, cut = module.in_features, module.cutoffs
    full = d * module.n_classes
    adaptive = d * module.head_size
    shares = []
    for k, (low, high) in enumerate(zip(cut[:-1], cut[1:], strict=True)):
        p = ((target >= low) & (target < high)).double().mean().item()
        d_k = module.tail[k][0].out_features
        adaptive += p * (d * d_k + d_k * (high - low))
        shares.append(p)
    return full, adaptive, shares


def step(method, x, target):
    x = x.detach().requires_grad_()
    loss = method(x, target)
    loss.backward()
    return loss.detach(), x.grad


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=1024)
    parser.add_argument("--dim", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--cutoffs", type=int, nargs="+", default=[1024, 8192])
    parser.add_argument("--div-value", type=float, default=4.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    torch.manual_seed(0)
    theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(args.dim, args.vocab, args.cutoffs,
                                                 div_value=args.div_value)
    ours = LN.AdaptiveLogSoftmaxWithLoss(args.dim, args.vocab, args.cutoffs,
                                         div_value=args.div_value)
    ours.load_state_dict(theirs.state_dict())
    full_head = torch.nn.Linear(args.dim, args.vocab, bias=False)
    x = torch.randn(args.n, args.dim)
    target = zipf_targets(args.n, args.vocab)

    methods = {
        "full softmax (Linear + lossutils cross_entropy)":
            lambda x, t: LF.cross_entropy(full_head(x), t),
        "torch AdaptiveLogSoftmaxWithLoss": lambda x, t: theirs(x, t).loss,
        "lossutils AdaptiveLogSoftmaxWithLoss": lambda x, t: ours(x, t).loss,
    }
    times = {name: [] for name in methods}
    for _ in range(args.repeats + 1):  # the first round warms up and is dropped
        for name, method in methods.items():
            start = time.perf_counter()
            step(method, x, target)
            times[name].append(time.perf_counter() - start)

    full, adaptive, shares = multiply_adds(ours, target)
    print(f"N={args.n} d={args.dim} V={args.vocab} cutoffs={args.cutoffs} "
          f"div_value={args.div_value} threads={args.threads} (Zipf targets)")
    print("share of targets per region: head "
          f"{1 - sum(shares):.3f}, " + ", ".join(f"cluster {k + 1} {p:.3f}"
                                                  for k, p in enumerate(shares)))
    print(f"multiply-adds per row: full {full:,.0f}, adaptive {adaptive:,.0f} "
          f"({full / adaptive:.1f}x fewer)")
    medians = {name: statistics.median(t[1:]) for name, t in times.items()}
    reference = medians["torch AdaptiveLogSoftmaxWithLoss"]
    for name, median in medians.items():
        spread = f"{min(times[name][1:]) * 1e3:.1f}-{max(times[name][1:]) * 1e3:.1f}"
        print(f"  {name:48s} {median * 1e3:8.1f} ms  ({spread})  "
              f"{median / reference:5.2f}x torch adaptive")

    # the two adaptive modules: same loss, same gradients?
    theirs.zero_grad(set_to_none=False)
    ours.zero_grad(set_to_none=False)
    (loss_t, gx_t), (loss_o, gx_o) = (step(methods[name], x, target) for name in list(methods)[1:])
    grads = [(a.grad, b.grad) for a, b in zip(theirs.parameters(), ours.parameters(), strict=True)]
    worst = max((a - b).abs().max().item() for a, b in grads)
    print(f"lossutils vs torch: |loss| {abs(loss_t - loss_o).item():.2e}, "
          f"max |grad input| {(gx_t - gx_o).abs().max().item():.2e}, "
          f"max |grad weights| {worst:.2e}")


if __name__ == "__main__":
    main()
