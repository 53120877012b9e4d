"""lossutils' extensions of linear_cross_entropy: soft-capping, z-loss and gradient filtering.

Soft-capping and the z-loss are exact: value, gradients (first and second) and
``torch.func`` transforms against a composed reference in torch's own ops
(``cross_entropy`` of ``c tanh(linear(x) / c)``, plus ``lambda logsumexp^2`` of
the counted rows, averaged over them for ``'mean'``), in every chunking.
Gradient filtering is approximate by design: the loss is exact, and the error
of each gradient is within the bound of ``lossutils.functional._filtering``,
computed here from the exact softmax; blocks really are skipped (the
multiply-adds of the matrix products are counted); nothing is skipped with a
tiny threshold; ``sort_vocab`` changes the order of the work, not the result.
"""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from torch.utils._python_dispatch import TorchDispatchMode

import lossutils.functional as LF
from conftest import ROOT
from lossutils.functional._filtering import FILTER_BLOCK

F64 = torch.float64


def _problem(n=37, f=6, c=53, seed=0, dtype=F64, probabilities=False, scale=1.0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, f, generator=gen, dtype=dtype) * scale
    W = torch.randn(c, f, generator=gen, dtype=dtype)
    b = torch.randn(c, generator=gen, dtype=dtype)
    if probabilities:
        t = torch.rand(n, c, generator=gen, dtype=dtype)
        target = t / t.sum(1, keepdim=True)
    else:
        target = torch.randint(0, c, (n,), generator=gen)
        target[::5] = -100
    weight = torch.rand(c, generator=gen, dtype=dtype) + 0.5
    return x, W, b, target, weight


def reference(x, W, target, *, linear_bias=None, weight=None, reduction="mean",
              ignore_index=-100, label_smoothing=0.0, softcap=None, lse_square_scale=0.0):
    """The extensions composed from torch's own ops."""
    u = F.linear(x, W, linear_bias)
    z = u if softcap is None else softcap * torch.tanh(u / softcap)
    loss = F.cross_entropy(z, target, weight=weight, reduction=reduction,
                           ignore_index=ignore_index, label_smoothing=label_smoothing)
    if not lse_square_scale:
        return loss
    counted = torch.ones(z.shape[0], dtype=z.dtype) if target.is_floating_point() \
        else (target != ignore_index).to(z.dtype)
    z_loss = lse_square_scale * torch.logsumexp(z, 1) ** 2 * counted
    if reduction == "none":
        return loss + z_loss
    return loss + (z_loss.sum() if reduction == "sum" else z_loss.sum() / counted.sum())


EXTENSIONS = [dict(softcap=2.0), dict(lse_square_scale=1e-2),
              dict(softcap=1.5, lse_square_scale=0.1)]
OPTIONS = [{}, dict(reduction="sum"), dict(reduction="none"),
           dict(label_smoothing=0.2, weight=True), dict(weight=True, ignore_index=4)]
CHUNKS = [{}, dict(chunk_size=5), dict(chunk_size=8, vocab_chunk_size=11)]


def _ids(d):
    return ",".join(f"{k}={v}" for k, v in d.items()) or "defaults"


def _value_and_grads(fn, x, W, b, target, kwargs, create_graph=False):
    leaves = [t.detach().clone().requires_grad_() for t in (x, W, b)]
    loss = fn(leaves[0], leaves[1], target, linear_bias=leaves[2], **kwargs)
    g = torch.linspace(-1, 1, loss.numel(), dtype=loss.dtype).reshape(loss.shape) + 0.5
    grads = torch.autograd.grad(loss, leaves, g, create_graph=create_graph)
    return leaves, loss, grads


@pytest.mark.parametrize("chunks", CHUNKS, ids=_ids)
@pytest.mark.parametrize("options", OPTIONS, ids=_ids)
@pytest.mark.parametrize("extension", EXTENSIONS, ids=_ids)
def test_extensions_equal_the_composed_reference(extension, options, chunks):
    x, W, b, target, weight = _problem()
    options = {k: (weight if k == "weight" else v) for k, v in options.items()}
    if "ignore_index" in options:
        target = target.clamp(min=0)
    _, want, want_grads = _value_and_grads(reference, x, W, b, target, {**options, **extension})
    _, got, got_grads = _value_and_grads(LF.linear_cross_entropy, x, W, b, target,
                                         {**options, **extension, **chunks})
    for a, t in zip((got, *got_grads), (want, *want_grads), strict=True):
        torch.testing.assert_close(a, t, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("options", [{}, dict(reduction="none")], ids=_ids)
def test_extensions_on_probability_targets(options):
    x, W, b, target, weight = _problem(probabilities=True)
    kwargs = dict(weight=weight, softcap=3.0, lse_square_scale=0.05, label_smoothing=0.1,
                  **options)
    outs = []
    for fn in (reference, LF.linear_cross_entropy):
        leaves = [t.detach().clone().requires_grad_() for t in (x, W, b, target)]
        loss = fn(*leaves[:2], leaves[3], linear_bias=leaves[2], **kwargs)
        outs.append((loss, *torch.autograd.grad(loss.sum(), leaves)))
    for a, t in zip(*outs, strict=True):
        torch.testing.assert_close(a, t, rtol=1e-12, atol=1e-13)


@pytest.mark.parametrize("extension", EXTENSIONS, ids=_ids)
@pytest.mark.parametrize("reduction", ["mean", "none"])
def test_extensions_second_derivatives_and_transforms(extension, reduction):
    x, W, b, target, _ = _problem(n=6, f=3, c=7)
    kwargs = dict(reduction=reduction, **extension)
    seconds = []
    for fn in (reference, LF.linear_cross_entropy):
        leaves, _, grads = _value_and_grads(fn, x, W, b, target, kwargs, create_graph=True)
        seconds.append(torch.autograd.grad(sum((g * g).sum() for g in grads), leaves))
    for a, t in zip(*seconds, strict=True):
        torch.testing.assert_close(a, t, rtol=1e-11, atol=1e-12)

    def f(fn):
        return lambda x, W, b: fn(x, W, target, linear_bias=b, **kwargs)

    for transform in (torch.func.jacrev, torch.func.jacfwd):
        got = transform(f(LF.linear_cross_entropy), argnums=(0, 1, 2))(x, W, b)
        want = transform(f(reference), argnums=(0, 1, 2))(x, W, b)
        for a, t in zip(got, want, strict=True):
            torch.testing.assert_close(a, t, rtol=1e-11, atol=1e-12)
    assert torch.autograd.gradgradcheck(f(LF.linear_cross_entropy),
                                        [t.clone().requires_grad_() for t in (x, W, b)])


# ---------------------------------------------------------------------------- filtering


class _MatmulWork(TorchDispatchMode):
    """Counts the multiply-adds of every matrix product (mm, addmm, in place or not)."""

    OPS = {torch.ops.aten.mm.default, torch.ops.aten.mm.out, torch.ops.aten.addmm.default,
           torch.ops.aten.addmm.out, torch.ops.aten.addmm_.default}

    def __init__(self):
        super().__init__()
        self.work = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        if func in self.OPS:
            a, b = args[-2], args[-1]
            self.work += a.shape[0] * a.shape[1] * b.shape[1]
        return func(*args, **(kwargs or {}))


def _peaked(n=64, f=16, c=4 * FILTER_BLOCK + 37, seed=0, shuffled=False):
    """A head whose softmax is peaked like a trained model's (entropy about 1.5 nats): a
    Zipf prior in the bias, ``-2 log(rank)``, and hidden states close to their target's
    row, targets among the 40 most frequent classes. The classes are numbered by frequency,
    as a BPE tokenizer roughly numbers its words, or ``shuffled``."""
    gen = torch.Generator().manual_seed(seed)
    W = 0.5 * torch.randn(c, f, generator=gen, dtype=F64)
    b = -2.0 * torch.log(torch.arange(1, c + 1, dtype=F64))
    target = torch.randint(0, 40, (n,), generator=gen)
    if shuffled:
        b = b[torch.randperm(c, generator=gen)]
        target = torch.argsort(b, descending=True)[target]
    x = 0.5 * W[target] + 0.3 * torch.randn(n, f, generator=gen, dtype=F64)
    target[::7] = -100
    return x, W, b, target


def _exact_and_filtered(kwargs, filter_kwargs, x, W, b, target):
    out = []
    for extra in ({}, filter_kwargs):
        leaves = [t.detach().clone().requires_grad_() for t in (x, W, b)]
        with _MatmulWork() as counter:
            loss = LF.linear_cross_entropy(leaves[0], leaves[1], target, linear_bias=leaves[2],
                                           **kwargs, **extra)
            g = torch.linspace(-1, 1, loss.numel(), dtype=loss.dtype).reshape(loss.shape) + 0.5
            grads = torch.autograd.grad(loss, leaves, g)
        out.append((loss.detach(), grads, counter.work, g))
    return out


def _bound(x, W, b, target, kwargs, eps, grad_output):
    r"""The bound of _filtering, from the exact softmax: per row
    :math:`|\kappa_n| \sum_{c: q_{nc} < \epsilon} q_{nc} \lVert W_c \rVert`, per class
    :math:`\epsilon \sum_n |\kappa_n| \lVert x_n \rVert` and :math:`\epsilon \sum_n |\kappa_n|`."""
    u = F.linear(x, W, b)
    cap, lam = kwargs.get("softcap"), kwargs.get("lse_square_scale", 0.0)
    z = u if cap is None else cap * torch.tanh(u / cap)
    q = z.softmax(1)
    valid = (target != -100).to(F64)
    mass = valid  # P_n = 1 on the kept rows without class weights, smoothed or not
    reduction = kwargs.get("reduction", "mean")
    r = grad_output * valid if reduction == "none" else grad_output * valid / (
        valid.sum() if reduction == "mean" else 1)
    kappa = r * mass + 2 * lam * r * torch.logsumexp(z, 1)  # rho_n = r_n without weights
    small = torch.where(q < eps, q, 0)
    per_row = kappa.abs() * (small @ W.norm(dim=1))
    per_class = eps * (kappa.abs() @ x.norm(dim=1))
    return per_row, per_class, eps * kappa.abs().sum()


FILTER_OPTIONS = [{}, dict(reduction="sum"), dict(reduction="none", chunk_size=5),
                  dict(label_smoothing=0.1), dict(softcap=20.0), dict(lse_square_scale=1e-3),
                  dict(chunk_size=16), dict(chunk_size=16, vocab_chunk_size=300)]


@pytest.mark.parametrize("sort", [False, True], ids=["in-order", "sorted"])
@pytest.mark.parametrize("kwargs", FILTER_OPTIONS, ids=_ids)
def test_filtering_error_is_within_its_bound(kwargs, sort):
    x, W, b, target = _peaked()
    eps = 1e-4
    kwargs = {"chunk_size": 8, **kwargs}  # a chunk skips a block only if all its rows may
    (loss, exact, work, g), (loss_f, filtered, work_f, _) = _exact_and_filtered(
        kwargs, dict(filter_eps=eps, sort_vocab=sort), x, W, b, target)
    # the loss is never filtered (sorted: the same terms, added in another order)
    torch.testing.assert_close(loss_f, loss, rtol=1e-13 if sort else 0, atol=0)
    assert work_f < work, "no block was skipped: the test would prove nothing"
    per_row, per_class, bias_bound = _bound(x, W, b, target, kwargs, eps, g)
    slack = 1e-12
    assert ((filtered[0] - exact[0]).norm(dim=1) <= per_row + slack).all()
    assert ((filtered[1] - exact[1]).norm(dim=1) <= per_class + slack).all()
    assert ((filtered[2] - exact[2]).abs() <= bias_bound + slack).all()


def test_filtering_with_a_tiny_threshold_skips_nothing_and_is_exact():
    x, W, b, target = _peaked()
    (_, exact, work, _), (_, filtered, work_f, _) = _exact_and_filtered(
        {}, dict(filter_eps=1e-300), x, W, b, target)
    assert work_f == work
    for a, t in zip(filtered, exact, strict=True):
        torch.testing.assert_close(a, t, rtol=1e-13, atol=1e-15)


def test_sorting_the_vocabulary_changes_the_order_not_the_result():
    x, W, b, target = _peaked(shuffled=True)
    target = target.clamp(min=0)
    target[3] = 5  # ignore_index, a class of the vocabulary: it is renumbered with the others
    kwargs = dict(ignore_index=5, label_smoothing=0.1, weight=torch.rand(len(W), dtype=F64) + .5,
                  chunk_size=16)
    (_, exact, work, _), (_, sorted_, work_s, _) = _exact_and_filtered(
        kwargs, dict(filter_eps=1e-300, sort_vocab=True), x, W, b, target)
    for a, t in zip(sorted_, exact, strict=True):
        torch.testing.assert_close(a, t, rtol=1e-12, atol=1e-14)
    assert work_s == work
    # frequent classes scattered over the vocabulary: only the sorted order skips blocks
    work_in_order, work_sorted = (
        _exact_and_filtered(dict(chunk_size=16), dict(filter_eps=1e-4, sort_vocab=s), x, W, b,
                            target)[1][2] for s in (False, True))
    assert work_sorted < work_in_order == work


def test_second_derivatives_and_transforms_are_exact_under_filtering():
    x, W, b, target = _peaked(n=8, f=4, c=300)
    firsts = []
    for extra in ({}, dict(filter_eps=1e-2, sort_vocab=True)):
        leaves = [t.detach().clone().requires_grad_() for t in (x, W, b)]
        loss = LF.linear_cross_entropy(leaves[0], leaves[1], target, linear_bias=leaves[2],
                                       **extra)
        firsts.append(torch.autograd.grad(loss, leaves, create_graph=True))
    for a, t in zip(*firsts, strict=True):
        torch.testing.assert_close(a, t, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kwargs, match", [
    (dict(filter_eps=0.0), r"filter_eps must be in \(0, 1\) or None, got 0.0"),
    (dict(filter_eps=1.5), r"filter_eps must be in \(0, 1\) or None, got 1.5"),
    (dict(sort_vocab=True), r"sort_vocab=True orders the vocabulary .* give filter_eps too"),
    (dict(filter_eps=1e-3, probabilities=True), r"class-index targets .* probability targets"),
    (dict(filter_eps=1e-3, kdim=True), r"2-d linear_weight \(C, F\): got out_features=\(2,\)"),
    (dict(filter_eps=1e-3, softcap=5.0, label_smoothing=0.1), r"both softcap and label_smoo"),
    (dict(softcap=0.0), r"softcap must be a positive number or None, got 0.0"),
    (dict(lse_square_scale=-1.0), r"lse_square_scale must be a number >= 0, got -1.0"),
])
def test_extensions_refuse_what_they_cannot_do(kwargs, match):
    x, W, b, target, _ = _problem(n=4, f=3, c=5)
    if kwargs.pop("probabilities", False):
        target = torch.full((4, 5), 0.2, dtype=F64)
    if kwargs.pop("kdim", False):
        W, target = torch.randn(5, 2, 3, dtype=F64), torch.zeros(4, 2, dtype=torch.long)
    with pytest.raises(ValueError, match=match):
        LF.linear_cross_entropy(x, W, target, **kwargs)


def test_the_filtering_benchmark_writes_what_the_chapter_reads(tmp_path, monkeypatch):
    """benchmarks/linear_cross_entropy_filtering.py at a tiny size: the JSON has the keys
    chapter 7.1 reads, the peaked problem has the entropy asked for, uniform logits skip
    every block at 2^-12 (each entry is about 1/V) and the error bound holds everywhere."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    import linear_cross_entropy_filtering as bench

    out = tmp_path / "filtering.json"
    result = bench.main(["--tokens", "32", "--hidden", "16", "--vocab", "8192",
                         "--chunk-size", "16", "--repeats", "1", "--warmup", "0",
                         "--threads", "1", "--json", str(out)])
    assert json.loads(out.read_text()) == json.loads(json.dumps(result))
    rows = {(r["distribution"], r["filter_eps"], r["sort_vocab"]): r for r in result["rows"]}
    assert len(rows) == 10 and all(r["grad_input_bound_holds"] for r in rows.values())
    assert rows["peaked", None, False]["entropy_nats"] == pytest.approx(2.75, abs=1e-3)
    assert rows["uniform", 2.0**-12, False]["blocks_skipped"] == 1.0
    assert rows["uniform", 2.0**-16, False]["blocks_skipped"] == 0.0  # 1/8192 > 2^-16
    assert rows["uniform", None, False]["grad_input_rel_error"] == 0.0
