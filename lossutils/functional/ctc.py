"""Connectionist Temporal Classification: the forward-backward (alpha-beta) algorithm in log space.

Defined in :doc:`/chapters/04_2_likelihoods_and_sequences`.

A target :math:`l = (l_1, \\dots, l_L)` is stretched to the extended sequence
:math:`l' = (\\varnothing, l_1, \\varnothing, l_2, \\dots, l_L, \\varnothing)` of
length :math:`2L + 1` (:math:`\\varnothing` the blank). An alignment walks
through :math:`l'` one frame at a time, staying, stepping by one, or skipping a
blank between two *different* labels. Both recursions below are vectorised
over the batch and over :math:`s` (the position in :math:`l'`); only time is a
Python loop, because frame :math:`t` needs frame :math:`t \\mp 1`.
"""

from __future__ import annotations

import operator

import torch
from torch import Tensor
from torch.autograd import Function

from .._autograd import once_differentiable
from .._checks import dtype_name
from .._reduction import check_reduction, reduce, reduction_grad

__all__ = ["ctc_loss"]

NEG_INF = float("-inf")


def log_add(*terms: Tensor) -> Tensor:
    r""":math:`\log \sum_k e^{a_k}` of same-shape tensors, elementwise, from max / exp / log.

    The max is subtracted first so nothing overflows; where every term is
    :math:`-\infty` the max is replaced by 0, since :math:`-\infty - (-\infty)`
    would be nan and the answer is simply :math:`-\infty`.
    """
    m = terms[0]
    for a in terms[1:]:
        m = torch.maximum(m, a)
    m = torch.where(m == NEG_INF, torch.zeros_like(m), m)
    total = torch.exp(terms[0] - m)
    for a in terms[1:]:
        total = total + torch.exp(a - m)
    return torch.log(total) + m


def _shift(x: Tensor, k: int) -> Tensor:
    """``x`` moved ``k`` places along the last dim (right for k > 0, left for k < 0), filled
    with -inf."""
    out = torch.full_like(x, NEG_INF)
    n = x.shape[-1]
    if abs(k) < n:
        if k > 0:
            out[..., k:] = x[..., : n - k]
        else:
            out[..., : n + k] = x[..., -k:]
    return out


def _alpha(em: Tensor, target_lengths: Tensor, valid: Tensor, skip: Tensor) -> Tensor:
    r"""Forward variables
    :math:`\alpha_t(s) = \log P(\text{prefix of } l' \text{ up to } s \mid x_{1..t})`.

    :math:`\alpha_0(0) = y^0_\varnothing`, :math:`\alpha_0(1) = y^0_{l_1}`, and
    :math:`\alpha_t(s) = \operatorname{logadd}(\alpha_{t-1}(s), \alpha_{t-1}(s-1),
    [\alpha_{t-1}(s-2) \text{ if } l'_s \ne l'_{s-2}]) + \log y^t_{l'_s}`.
    """
    T, B, S = em.shape
    s = torch.arange(S)
    alpha = em.new_full((T, B, S), NEG_INF)
    start = (s == 0) | ((s == 1) & (target_lengths > 0)[:, None])
    alpha[0] = torch.where(start, em[0], NEG_INF)
    for t in range(1, T):
        prev = alpha[t - 1]
        from_skip = torch.where(skip, _shift(prev, 2), NEG_INF)
        alpha[t] = torch.where(valid, log_add(prev, _shift(prev, 1), from_skip) + em[t], NEG_INF)
    return alpha


def _beta(em: Tensor, input_lengths: Tensor, target_lengths: Tensor, valid: Tensor,
          skip: Tensor) -> Tensor:
    r"""Backward variables, emission included as in torch:
    :math:`\beta_{T_b-1}(2L) = y_\varnothing`, :math:`\beta_{T_b-1}(2L-1) = y_{l_L}`, and
    :math:`\beta_t(s) = \operatorname{logadd}(\beta_{t+1}(s), \beta_{t+1}(s+1),
    [\beta_{t+1}(s+2) \text{ if } l'_s \ne l'_{s+2}]) + \log y^t_{l'_s}`.

    Each sequence starts at its own last frame :math:`T_b - 1`; frames past it stay
    :math:`-\infty`.
    """
    T, B, S = em.shape
    s = torch.arange(S)
    two_l = 2 * target_lengths[:, None]
    end = (s == two_l) | ((s == two_l - 1) & (target_lengths > 0)[:, None])
    skip_ahead = _shift(skip.to(em.dtype), -2) == 1  # may s jump to s + 2?
    beta = em.new_full((T, B, S), NEG_INF)
    nxt = em.new_full((B, S), NEG_INF)
    for t in range(T - 1, -1, -1):
        from_skip = torch.where(skip_ahead, _shift(nxt, -2), NEG_INF)
        rec = log_add(nxt, _shift(nxt, -1), from_skip) + em[t]
        cur = torch.where((t < input_lengths - 1)[:, None], rec, NEG_INF)
        cur = torch.where((t == input_lengths - 1)[:, None] & end, em[t], cur)
        beta[t] = torch.where(valid, cur, NEG_INF)
        nxt = beta[t]
    return beta


def _layout(ext: Tensor, target_lengths: Tensor):
    """Masks over the extended sequence: which ``s`` exist, and where a skip over a blank is
    allowed."""
    S = ext.shape[1]
    valid = torch.arange(S) < (2 * target_lengths + 1)[:, None]
    skip = torch.zeros_like(valid)
    skip[:, 2:] = ext[:, 2:] != ext[:, :-2]
    return valid, skip


class CTCLossFunction(Function):
    r"""CTC negative log-likelihood, :math:`-\log p(l \mid x)`, and torch's gradient of it.

    .. math::
        p(l \mid x) = e^{\alpha_{T-1}(2L)} + e^{\alpha_{T-1}(2L-1)}, \qquad
        \text{loss}_b = -\log p(l \mid x)

    The gradient w.r.t. the log-probabilities :math:`\log y^t_c` (Graves et
    al. 2006, eq. 16), with both :math:`\alpha` and :math:`\beta` holding the
    emission at :math:`t`:

    .. math::
        \frac{\partial\, \text{loss}}{\partial \log y^t_c} = y^t_c -
        \exp\Big(\operatorname{logadd}_{s: l'_s = c} \big(\alpha_t(s) + \beta_t(s)\big)
        + \text{loss} - \log y^t_c\Big)

    times the incoming gradient, for :math:`t < T_b` (0 after). The
    :math:`y^t_c` term is *not* the derivative of the loss w.r.t. its input:
    torch returns the gradient as if ``log_probs`` came out of a log-softmax,
    folding that softmax's Jacobian in (for normalised rows
    :math:`\sum_c` of the above is 0, so the log-softmax backward leaves it
    unchanged). An impossible alignment (loss :math:`\infty`) gives nan, or 0
    with ``zero_infinity``.
    """

    @staticmethod
    def forward(log_probs, ext, input_lengths, target_lengths, blank, reduction, zero_infinity,
                batched):
        T, B, _ = log_probs.shape
        em = log_probs.gather(2, ext.unsqueeze(0).expand(T, B, ext.shape[1]))
        valid, skip = _layout(ext, target_lengths)
        alpha = _alpha(em, target_lengths, valid, skip)
        last = alpha[(input_lengths - 1).clamp(min=0), torch.arange(B)]
        l_end = last.gather(1, (2 * target_lengths)[:, None]).squeeze(1)
        l_label = last.gather(1, (2 * target_lengths - 1).clamp(min=0)[:, None]).squeeze(1)
        l_label = torch.where(target_lengths > 0, l_label, NEG_INF)
        log_likelihood = log_add(l_end, l_label)
        # no frames: the empty target has likelihood 1, any other 0
        empty = torch.where(target_lengths == 0, 0.0, NEG_INF).to(log_likelihood.dtype)
        nll = -torch.where(input_lengths == 0, empty, log_likelihood)
        res = torch.where(nll == float("inf"), torch.zeros_like(nll), nll) if zero_infinity else nll
        if reduction == "mean":  # the batch mean of each loss over its target length (at least 1)
            res = res / target_lengths.to(res.dtype).clamp_min(1)
        out = reduce(res, reduction)
        if not batched and reduction == "none":
            out = out.squeeze(0)
        # nll is also returned (and saved) on its own: ``out`` may be the very same tensor
        return out, nll.clone(), alpha

    @staticmethod
    def setup_context(ctx, inputs, outputs):
        log_probs, ext, input_lengths, target_lengths, blank, reduction, zero_infinity, _ = inputs
        _, nll, alpha = outputs
        ctx.mark_non_differentiable(nll, alpha)
        ctx.save_for_backward(log_probs, ext, input_lengths, target_lengths, nll, alpha)
        ctx.options = blank, reduction, zero_infinity

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, _grad_nll, _grad_alpha):
        log_probs, ext, input_lengths, target_lengths, nll, alpha = ctx.saved_tensors
        blank, reduction, zero_infinity = ctx.options
        T, B, C = log_probs.shape
        # the incoming gradient of each sequence's loss, through the reduction
        # ('mean' is the batch mean of each loss divided by its target length)
        gr = reduction_grad(grad_output, reduction, B).expand(B)
        if reduction == "mean":
            gr = gr / target_lengths.to(grad_output.dtype).clamp_min(1)
        infinite = nll == float("inf")
        if zero_infinity:
            gr = torch.where(infinite, torch.zeros_like(gr), gr)

        S = ext.shape[1]
        idx = ext.unsqueeze(0).expand(T, B, S)
        em = log_probs.gather(2, idx)
        valid, skip = _layout(ext, target_lengths)
        beta = _beta(em, input_lengths, target_lengths, valid, skip)

        # (T, B): the frames inside each sequence
        active = torch.arange(T)[:, None] < input_lengths[None, :]
        ab = torch.where(active[..., None] & valid, alpha + beta, NEG_INF)
        # torch writes the last frame's two entries by assignment, not log-add: when the
        # last label *is* the blank, the label's alpha*beta replaces the blank's.
        last_is_blank = (target_lengths > 0) & (
            ext.gather(1, (2 * target_lengths - 1).clamp(min=0)[:, None]).squeeze(1) == blank)
        overwritten = (torch.arange(T)[:, None] == input_lengths - 1) & last_is_blank
        ab[overwritten[..., None] & (torch.arange(S) == 2 * target_lengths[:, None])] = NEG_INF

        # logadd of alpha*beta over the positions s of each class c, per (t, b)
        m = log_probs.new_full((T, B, C), NEG_INF).scatter_reduce(2, idx, ab, "amax")
        m = torch.where(m == NEG_INF, torch.zeros_like(m), m)
        total = torch.zeros_like(m).scatter_add(2, idx, torch.exp(ab - m.gather(2, idx)))
        collected = torch.log(total) + m

        posterior = torch.exp(collected + nll[:, None] - log_probs)
        grad = (torch.exp(log_probs) - posterior) * gr[:, None]
        keep = active[..., None] & ~(infinite & zero_infinity)[:, None]
        grad = torch.where(keep, grad, torch.zeros_like(grad))
        return grad, None, None, None, None, None, None, None


def _lengths(name: str, value) -> Tensor:
    """Lengths as a 1-D int64 tensor, from a tensor of integers or a sequence of ints."""
    if isinstance(value, Tensor):
        if value.is_floating_point() or value.is_complex() or value.dtype == torch.bool:
            raise RuntimeError(f"{name} must be integral: got a tensor of dtype {value.dtype}")
        return value.to(torch.int64).reshape(-1)
    if not isinstance(value, (list, tuple)):
        raise TypeError(f"{name} must be a tensor or a tuple/list of ints, "
                        f"got {type(value).__name__}")
    try:
        return torch.tensor([operator.index(v) for v in value], dtype=torch.int64)
    except TypeError:
        raise TypeError(f"{name} must hold ints, got {value!r}") from None


def _check(log_probs: Tensor, targets: Tensor, input_lengths: Tensor, target_lengths: Tensor,
           blank: int) -> None:
    """torch's checks, in torch's order (all ``RuntimeError``), with the sizes spelled out."""
    if log_probs.dim() != 3:
        raise RuntimeError(
            "log_probs must be (T, C) or (T, N, C): got shape "
            f"{tuple(log_probs.squeeze(1).shape)}"
        )
    if log_probs.numel() == 0:
        raise RuntimeError(f"log_probs tensor must not be empty: got shape "
                           f"{tuple(log_probs.shape)}")
    if not 1 <= targets.dim() <= 2:
        raise RuntimeError(f"targets must be (N, S) or 1-D (concatenated): "
                           f"got {targets.dim()} dims")
    T, B, C = log_probs.shape
    if not 0 <= blank < C:
        raise RuntimeError(f"blank must be in label range [0, {C}): got blank={blank}")
    for name, lengths in (("input_lengths", input_lengths), ("target_lengths", target_lengths)):
        if lengths.numel() != B:
            raise RuntimeError(f"{name} must be of size batch_size {B}: "
                               f"got {lengths.numel()} lengths")
    if (target_lengths < 0).any():
        raise RuntimeError(f"target_lengths must be at least 0: got {target_lengths.tolist()}")
    if targets.dim() == 1 and targets.size(0) != int(target_lengths.sum()):
        raise RuntimeError(
            f"concatenated targets must have sum(target_lengths) = {int(target_lengths.sum())} "
            f"entries: got size {targets.size(0)}"
        )
    if targets.dim() == 2:
        if targets.size(0) != B:
            raise RuntimeError(f"padded targets must have batch_size {B} rows: "
                               f"got shape {tuple(targets.shape)}")
        if B and targets.size(1) < int(target_lengths.max()):
            raise RuntimeError(
                "padded targets must have at least max(target_lengths) = "
                f"{int(target_lengths.max())} columns: got shape {tuple(targets.shape)}"
            )
    if ((input_lengths < 0) | (input_lengths > T)).any():
        raise RuntimeError(f"input_lengths must be in [0, {T}] (the number of frames): "
                           f"got {input_lengths.tolist()}")


def _extended(targets: Tensor, target_lengths: Tensor, blank: int, num_classes: int) -> Tensor:
    """The extended label sequences :math:`l'` (B, 2 max(L) + 1), padded with blanks past
    :math:`2L_b`."""
    B = target_lengths.numel()
    S = int(target_lengths.max()) if B else 0
    j = torch.arange(S)
    used = j < target_lengths[:, None]
    if targets.dim() == 1:
        offsets = torch.cumsum(target_lengths, 0) - target_lengths
        pos = (offsets[:, None] + j).clamp(max=max(targets.numel() - 1, 0))
        labels = targets[pos] if targets.numel() else torch.zeros(B, S, dtype=torch.int64)
    else:
        labels = targets[:, :S]
    labels = torch.where(used, labels, blank)
    bad = (labels < 0) | (labels >= num_classes)
    if bad.any():
        b, k = (int(i) for i in bad.nonzero()[0])
        # torch reads out of bounds here without a word; a clear error is the only sane parity.
        raise IndexError(
            f"targets must hold class indices in [0, {num_classes}): sequence {b}, label {k} is "
            f"{int(labels[b, k])}"
        )
    ext = torch.full((B, 2 * S + 1), blank, dtype=torch.int64)
    ext[:, 1::2] = labels
    return ext


def ctc_loss(log_probs: Tensor, targets: Tensor, input_lengths, target_lengths, blank: int = 0,
             reduction: str = "mean", zero_infinity: bool = False) -> Tensor:
    r"""Connectionist Temporal Classification loss, like :func:`torch.nn.functional.ctc_loss`.

    ``log_probs`` (T, N, C) or unbatched (T, C); ``targets`` padded (N, S)
    or concatenated (sum of ``target_lengths``); lengths as tensors or
    tuples/lists of ints. ``'mean'`` divides each loss by its target length
    (at least 1), then averages over the batch. See :class:`CTCLossFunction`.

    Unlike torch, a label outside ``[0, C)`` raises ``IndexError``: torch's
    CPU kernel does not check and reads whatever lies past the tensor.

    Examples:
        Two frames, two classes (0 is the blank), each frame 50/50: three alignments
        (``1 1``, ``0 1``, ``1 0``) collapse to the label sequence ``1``, so
        :math:`p = 3/4`:

        >>> log_probs = torch.full((2, 1, 2), 0.5).log()  # (T, N, C)
        >>> ctc_loss(log_probs, torch.tensor([[1]]), (2,), (1,))
        tensor(0.2877)
    """
    reduction = check_reduction(reduction)
    if isinstance(blank, bool) or not hasattr(blank, "__index__"):
        raise TypeError(f"blank must be an int (the blank's class index), "
                        f"got {type(blank).__name__} ({blank!r})")
    blank = operator.index(blank)
    if isinstance(input_lengths, Tensor) != isinstance(target_lengths, Tensor):
        raise TypeError(
            "input_lengths and target_lengths must both be tensors or both be tuples/lists of "
            f"ints: got {type(input_lengths).__name__} and {type(target_lengths).__name__}"
        )
    input_lengths = _lengths("input_lengths", input_lengths)
    target_lengths = _lengths("target_lengths", target_lengths)
    if log_probs.dtype not in (torch.float32, torch.float64):
        raise NotImplementedError(
            f'"ctc_loss_cpu" not implemented for {dtype_name(log_probs.dtype)!r}: '
            f"log_probs must be float32 or float64, got {log_probs.dtype}"
        )
    batched = log_probs.dim() == 3
    lp = log_probs if batched else log_probs.unsqueeze(1)
    targets = targets.to(torch.int64)
    _check(lp, targets, input_lengths, target_lengths, blank)
    ext = _extended(targets, target_lengths, blank, lp.shape[2])
    out, _, _ = CTCLossFunction.apply(lp, ext, input_lengths, target_lengths, blank, reduction,
                                      zero_infinity, batched)
    return out
