"""Gradient filtering of ``linear_cross_entropy``: blocks skipped, time saved, gradient error.

    python benchmarks/linear_cross_entropy_filtering.py              # the chapter's run
    python benchmarks/linear_cross_entropy_filtering.py --tokens 64 --vocab 4096 --repeats 1

``filter_eps`` skips, in backward, the products of every ``FILTER_BLOCK``-wide block of
classes whose softmax entries are all below the threshold for every row of a chunk
(``lossutils/functional/_filtering.py``, which also bounds the error); ``sort_vocab``
first orders the classes by their average logit so that the negligible ones share
blocks. Whether that pays depends on how peaked the model's softmax is, so it is
measured on two distributions of logits, ``z = x W^T + b``:

- ``peaked``, a synthetic stand-in for a trained language model: the bias is a Zipf
  log-prior over the vocabulary (``b_c = -1.1 log(1 + rank_c)``, word frequencies of
  natural text follow Zipf's law with an exponent near 1), the targets are drawn from
  that Zipf distribution, and each hidden state points at its target's row of the head
  (``x_n = beta W_{t_n} / |W_{t_n}| + noise``), with ``beta`` found by bisection so that
  the mean entropy of the softmax is ``--entropy`` nats (2.75 by default: a small trained
  language model's per-token cross-entropy on natural text is about 3 nats);
- ``uniform``: small random logits, an untrained model (entropy near log V = 10.4 nats),
  where filtering must not slow things down.

For each distribution, exact (``filter_eps=None``) and ``filter_eps`` in 2^-12 and 2^-16,
each without and with ``sort_vocab``, run forward + backward alternately in this one
process (their order rotates every repeat); the median time of each is compared with the
exact one. The fraction of blocks skipped is computed independently, from a float64
softmax of each chunk of rows in the order the option uses; the gradient error is
relative (Frobenius norm of the difference over the exact gradient's), and the bound of
``_filtering`` is checked row by row for the input's gradient. Results go to
``benchmarks/results/linear_cross_entropy_filtering.json`` (read by
chapters/07_1_beyond_one_process.md).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import torch

from lossutils.functional import linear_cross_entropy
from lossutils.functional._filtering import FILTER_BLOCK, kept_sub_blocks, vocab_order

RESULTS = Path(__file__).parent / "results"
EPSILONS = (2.0**-12, 2.0**-16)
DISTRIBUTIONS = {
    "peaked": "Zipf log-prior bias (exponent 1.1), Zipf-drawn targets, hidden states along "
              "their target's head row, scaled to the requested mean entropy",
    "uniform": "small random hidden states and head (an untrained model): entropy near log V",
}


def mean_entropy(x: torch.Tensor, W: torch.Tensor, b: torch.Tensor | None) -> float:
    """Mean entropy (nats) of the rows of softmax(x W^T + b), in float64."""
    z = x.double() @ W.double().T
    if b is not None:
        z = z + b.double()
    log_q = z - z.amax(1, keepdim=True)
    log_q = log_q - log_q.exp().sum(1, keepdim=True).log()
    return float(-(log_q.exp() * log_q).sum(1).mean())


def peaked_problem(gen, tokens, hidden, vocab, entropy):
    """The peaked distribution (see the module's docstring) and its mean entropy."""
    W = torch.randn(vocab, hidden, generator=gen) / math.sqrt(hidden)
    rank = torch.randperm(vocab, generator=gen).double()  # which word is how frequent
    prior = -1.1 * torch.log1p(rank)
    target = torch.multinomial(prior.exp(), tokens, replacement=True, generator=gen)
    b = prior.float()
    direction = W[target] / W[target].norm(dim=1, keepdim=True)
    noise = torch.randn(tokens, hidden, generator=gen) * 0.5
    low, high = 0.0, 64.0  # entropy falls as beta grows: bisect for the requested one
    for _ in range(30):
        beta = (low + high) / 2
        low, high = (beta, high) if mean_entropy(beta * direction + noise, W, b) > entropy \
            else (low, beta)
    x = (low + high) / 2 * direction + noise
    return x, W, b, target


def uniform_problem(gen, tokens, hidden, vocab):
    x = torch.randn(tokens, hidden, generator=gen) * 0.1
    W = torch.randn(vocab, hidden, generator=gen) / math.sqrt(hidden)
    return x, W, torch.zeros(vocab), torch.randint(0, vocab, (tokens,), generator=gen)


def skipped_fraction(x, W, b, eps, sort_vocab, chunk_size) -> float:
    """Fraction of (chunk of rows, FILTER_BLOCK of classes) blocks whose float64 softmax
    entries are all below ``eps``, in the class order the option processes."""
    if sort_vocab:
        order, _ = vocab_order(x, W, b)
        W, b = W[order], b[order]
    kept = total = 0
    for lo in range(0, len(x), chunk_size):
        z = x[lo:lo + chunk_size].double() @ W.double().T + b.double()
        q = (z - z.amax(1, keepdim=True)).exp()
        q = q / q.sum(1, keepdim=True)
        keep = kept_sub_blocks(q.contiguous(), q.new_full((len(q),), eps))
        kept, total = kept + sum(keep), total + len(keep)
    return 1 - kept / total


def step(problem, chunk_size, eps, sort_vocab):
    """One forward + backward; returns the gradients of x, W and b."""
    x, W, b, target = (t.detach().requires_grad_(t.is_floating_point()) for t in problem)
    loss = linear_cross_entropy(x, W, target, linear_bias=b, chunk_size=chunk_size,
                                filter_eps=eps, sort_vocab=sort_vocab)
    loss.backward()
    return x.grad, W.grad, b.grad


def relative_error(approx: torch.Tensor, exact: torch.Tensor) -> float:
    return float((approx - exact).norm() / exact.norm())


def input_bound_holds(grad_x, exact_x, W, eps, tokens) -> bool:
    """``_filtering``'s bound, row by row: |d grad_x_n| < |kappa_n| eps sum_c |W_c|, with
    kappa_n = 1/N ('mean', class indices, no weights); a float32 slack of 1e-5 |grad_n|."""
    bound = eps * W.norm(dim=1).sum() / tokens
    slack = 1e-5 * exact_x.norm(dim=1)
    return bool(((grad_x - exact_x).norm(dim=1) <= bound + slack).all())


def measure(name, problem, args) -> list[dict]:
    x, W, b, _ = problem
    variants = [(None, False)] + [(eps, s) for eps in EPSILONS for s in (False, True)]
    exact = step(problem, args.chunk_size, None, False)
    times = {v: [] for v in variants}
    for _ in range(args.warmup):
        for v in variants:
            step(problem, args.chunk_size, *v)
    for repeat in range(args.repeats):
        shift = repeat % len(variants)  # rotate who goes first: load hits all alike
        for v in variants[shift:] + variants[:shift]:
            start = time.perf_counter()
            step(problem, args.chunk_size, *v)
            times[v].append(time.perf_counter() - start)
    entropy = mean_entropy(x, W, b)
    exact_time = statistics.median(times[(None, False)])
    rows = []
    for eps, sort_vocab in variants:
        grads = exact if eps is None else step(problem, args.chunk_size, eps, sort_vocab)
        median = statistics.median(times[(eps, sort_vocab)])
        rows.append({
            "distribution": name, "entropy_nats": entropy, "filter_eps": eps,
            "sort_vocab": sort_vocab,
            "blocks_skipped": 0.0 if eps is None else skipped_fraction(
                x, W, b, eps, sort_vocab, args.chunk_size),
            "time_s": median, "times_s": times[(eps, sort_vocab)],
            "time_ratio": median / exact_time,
            "grad_input_rel_error": relative_error(grads[0], exact[0]),
            "grad_weight_rel_error": relative_error(grads[1], exact[1]),
            "grad_bias_rel_error": relative_error(grads[2], exact[2]),
            "grad_input_bound_holds": True if eps is None else input_bound_holds(
                grads[0], exact[0], W, eps, len(x)),
        })
    return rows


def _print(rows: list[dict]) -> None:
    print(f"{'distribution':12s} {'nats':>5s} {'filter_eps':>10s} {'sort':>5s} {'skipped':>8s} "
          f"{'time':>9s} {'ratio':>6s} {'err dx':>8s} {'err dW':>8s} {'bound':>5s}")
    for r in rows:
        eps = "exact" if r["filter_eps"] is None else f"2^{math.log2(r['filter_eps']):.0f}"
        print(f"{r['distribution']:12s} {r['entropy_nats']:5.2f} {eps:>10s} "
              f"{'yes' if r['sort_vocab'] else 'no':>5s} {r['blocks_skipped']:8.1%} "
              f"{r['time_s'] * 1e3:7.0f}ms {r['time_ratio']:5.2f}x "
              f"{r['grad_input_rel_error']:8.1e} {r['grad_weight_rel_error']:8.1e} "
              f"{'ok' if r['grad_input_bound_holds'] else 'NO':>5s}")


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--vocab", type=int, default=32768)
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--entropy", type=float, default=2.75, help="peaked: mean nats")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--json", type=Path,
                        default=RESULTS / "linear_cross_entropy_filtering.json")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    problems = {
        "peaked": peaked_problem(gen, args.tokens, args.hidden, args.vocab, args.entropy),
        "uniform": uniform_problem(gen, args.tokens, args.hidden, args.vocab),
    }
    rows = [row for name, problem in problems.items() for row in measure(name, problem, args)]
    _print(rows)
    meta = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "torch": torch.__version__, "cpus": os.cpu_count(), "threads": args.threads,
        "command": " ".join(["benchmarks/linear_cross_entropy_filtering.py", *sys.argv[1:]]),
        "tokens": args.tokens, "hidden": args.hidden, "vocab": args.vocab,
        "chunk_size": args.chunk_size, "filter_block": FILTER_BLOCK, "repeats": args.repeats,
        "distributions": DISTRIBUTIONS,
    }
    result = {"meta": meta, "rows": rows}
    args.json.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.json}")
    return result


if __name__ == "__main__":
    main()
