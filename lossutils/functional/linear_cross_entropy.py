"""Linear cross-entropy: ``cross_entropy(input @ W.T + b, target)`` without the logits.

An LLM's last layer turns ``N`` hidden states of width ``F`` into logits over a
vocabulary of ``V`` words and feeds them straight into cross-entropy. The
logits and their gradient are ``N x V`` each (1 GiB in float32 for 8k tokens
and a 32k vocabulary), yet the loss needs only one number per row (the
log-sum-exp) and the gradients only ``N x F`` and ``V x F`` tensors. Here the
rows are processed ``chunk_size`` at a time, the vocabulary ``vocab_chunk_size``
columns at a time with an online log-sum-exp, and the gradient is formed chunk
by chunk, so no ``N x V`` tensor ever exists.

Defined in :doc:`/chapters/07_llm_scale`.
"""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor
from torch.autograd import Function

from .. import _reduction
from .._autograd import once_differentiable

__all__ = ["linear_cross_entropy"]


def _auto_chunk_size(num_rows: int, in_features: int, num_classes: int) -> int:
    """Rows per chunk so one chunk's logits take about half the memory of ``input``.

    torch's ``chunking_method='aspect_ratio:2'`` (its default for float32 on
    CPU): ``next_pow2(ceil(N / ceil(V / F))) // 2``, at least 1, at most ``N``.
    """
    rows_per_input = -(-num_rows // max(-(-num_classes // max(in_features, 1)), 1))
    return max(1, min((1 << max(rows_per_input - 1, 0).bit_length()) // 2, num_rows))


class _Targets:
    r"""The target of one output position as a row vector ``q_n`` over the classes.

    Every variant of cross-entropy here is :math:`l_n = \sum_c q_{nc}(\mathrm{lse}_n - z_{nc})`:

    * class index :math:`y_n`: :math:`q_n = (1-\varepsilon) w_{y_n} e_{y_n} + \frac{\varepsilon}{C} w`
      (zero on ignored rows);
    * probabilities :math:`t_n`: :math:`q_{nc} = w_c \bigl((1-\varepsilon) t_{nc} + \frac{\varepsilon}{C}\bigr)`.

    ``q`` is never built for the whole vocabulary: ``dot`` and ``subtract`` use
    it one block of columns at a time.
    """

    def __init__(self, target: Tensor, weight: Tensor | None, ignore_index: int, eps: float, C: int, dtype):
        self.weight, self.eps, self.C = weight, eps, C
        self.probs = target.is_floating_point()
        if self.probs:
            self.target = target  # (N, C)
            return
        self.valid = target != ignore_index
        self.index = torch.where(self.valid, target, 0)
        w_y = weight[self.index] if weight is not None else torch.ones(target.shape, dtype=dtype)
        self.one_hot = torch.where(self.valid, (1 - eps) * w_y, 0)  # coefficient on e_{y_n}
        # built in ``dtype`` directly: a python-float where() would round eps / C to float32
        self.uniform = self.valid.to(dtype) * (eps / C)  # coefficient on w

    def rows(self, a: int, b: int) -> "_Targets":
        """The same targets for rows ``a:b`` only."""
        part = object.__new__(_Targets)
        part.weight, part.eps, part.C, part.probs = self.weight, self.eps, self.C, self.probs
        if self.probs:
            part.target = self.target[a:b]
        else:
            for name in ("valid", "index", "one_hot", "uniform"):
                setattr(part, name, getattr(self, name)[a:b])
        return part

    def _q(self, lo: int, hi: int) -> Tensor:
        q = self.target[:, lo:hi] * (1 - self.eps) + self.eps / self.C
        return q if self.weight is None else q * self.weight[lo:hi]

    def dot(self, z: Tensor, lo: int, hi: int) -> tuple[Tensor, Tensor]:
        """``(<q_n, z_n>, sum_c q_nc)`` over the block of columns ``lo:hi`` held in ``z``."""
        if self.probs:
            q = self._q(lo, hi)
            return (q * z).sum(1), q.sum(1)
        inside = (self.index >= lo) & (self.index < hi) & self.valid
        col = (self.index - lo).clamp(0, hi - lo - 1).unsqueeze(1)
        dot = torch.where(inside, self.one_hot * z.gather(1, col).squeeze(1), 0)
        mass = torch.where(inside, self.one_hot, 0)
        if self.eps > 0:
            w = self.weight[lo:hi] if self.weight is not None else None
            # mask first: an ignored row may hold -inf logits, and 0 * -inf is nan
            dot = dot + torch.where(self.valid, self.uniform * (z.sum(1) if w is None else z @ w), 0)
            mass = mass + self.uniform * (hi - lo if w is None else w.sum())
        return dot, mass

    def subtract(self, dz: Tensor, scale: Tensor, lo: int, hi: int) -> None:
        """``dz -= scale_n * q_n`` on the block ``lo:hi``, in place."""
        if self.probs:
            dz.sub_(scale.unsqueeze(1) * self._q(lo, hi))
            return
        inside = (self.index >= lo) & (self.index < hi) & self.valid
        col = (self.index - lo).clamp(0, hi - lo - 1).unsqueeze(1)
        dz.scatter_add_(1, col, torch.where(inside, -scale * self.one_hot, 0).unsqueeze(1))
        if self.eps > 0:
            if self.weight is None:
                dz.sub_((scale * self.uniform).unsqueeze(1))
            else:
                dz.addr_(scale * self.uniform, self.weight[lo:hi], alpha=-1)


def _blocks(C: int, vocab_chunk_size: int) -> list[tuple[int, int]]:
    return [(lo, min(lo + vocab_chunk_size, C)) for lo in range(0, C, vocab_chunk_size)] or [(0, 0)]


def _logits(x: Tensor, W: Tensor, b: Tensor | None, lo: int, hi: int, buf: Tensor) -> Tensor:
    """``x @ W[lo:hi].T + b[lo:hi]``: one block of logits (``addmm``, as ``F.linear`` does).

    Written into the front of ``buf``, one buffer for the whole loop: a fresh
    block per chunk would leave freed blocks cached by the C allocator.
    """
    out = buf[: x.shape[0] * (hi - lo)].view(x.shape[0], hi - lo)
    if b is None:
        return torch.mm(x, W[lo:hi].T, out=out)
    return torch.addmm(b[lo:hi], x, W[lo:hi].T, out=out)


def _online_lse(x, W, b, tq: _Targets, blocks, buf):
    r"""One pass over the vocabulary blocks: the online log-sum-exp and ``<q, z>``.

    After each block the running max :math:`m`, the rescaled sum
    :math:`s = \sum_c e^{z_c - m}` and :math:`T = \sum_c q_c (z_c - m)` and
    :math:`Q = \sum_c q_c` over the columns seen so far are updated: when the
    max grows from :math:`m` to :math:`m'`, :math:`s \leftarrow s e^{m - m'}`
    and :math:`T \leftarrow T + (m - m') Q`. Returns ``m, s, T, Q`` and, when
    there is a single block, that block's ``exp(z - m)`` (reused by the gradient).
    """
    m = s = T = Q = e = None
    for lo, hi in blocks:
        z = _logits(x, W, b, lo, hi, buf)
        m_new = z.amax(1) if m is None else torch.maximum(m, z.amax(1))
        z.sub_(m_new.unsqueeze(1))  # z - m', every exponent <= 0: no overflow
        dot, mass = tq.dot(z, lo, hi)
        if m is None:
            s, T, Q = torch.zeros_like(m_new), dot, mass
        else:
            shift = m - m_new
            s, T, Q = s * shift.exp(), T + shift * Q + dot, Q + mass
        s = s + z.exp_().sum(1)
        m = m_new
        e = z if len(blocks) == 1 else None
    return m, s, T, Q, e


def _accumulate(dz, x, W, lo, hi, rows, grads):
    """Chain one block of ``dL/dz`` through ``z = x W^T + b`` into the gradient buffers."""
    gx, gW, gb = grads
    if gx is not None:
        gx[rows].addmm_(dz, W[lo:hi])
    if gW is not None:
        gW[lo:hi].addmm_(dz.T, x)
    if gb is not None:
        gb[lo:hi] += dz.sum(0)


def _gradient_pass(x, W, b, tq: _Targets, blocks, buf, lse, Q, scale, rows, grads, gt=None, gw=None):
    r"""Recompute each block of logits and add its gradient: ``dz = r (Q p - q)`` with ``p = exp(z - lse)``.

    For probability targets, whose loss :math:`-\sum_c w_c t'_{nc} \log p_{nc}` is
    differentiable in them and in the class weight, also
    :math:`\partial l_n / \partial t_{nc} = -(1-\varepsilon) w_c \log p_{nc}` and
    :math:`\partial l_n / \partial w_c = -t'_{nc} \log p_{nc}`, times ``r``.
    """
    for lo, hi in blocks:
        z = _logits(x, W, b, lo, hi, buf).sub_(lse.unsqueeze(1))  # log p
        if gt is not None:
            w = tq.weight[lo:hi] if tq.weight is not None else 1.0
            gt[rows, lo:hi] = -(1 - tq.eps) * scale.unsqueeze(1) * w * z
        if gw is not None:
            smoothed = tq.target[:, lo:hi] * (1 - tq.eps) + tq.eps / tq.C
            gw[lo:hi] -= (scale.unsqueeze(1) * smoothed * z).sum(0)
        dz = z.exp_().mul_((scale * Q).unsqueeze(1))
        tq.subtract(dz, scale, lo, hi)
        _accumulate(dz, x, W, lo, hi, rows, grads)


def _chunked(x, W, b, tq: _Targets, chunk_size, vocab_chunk_size, scale=None, grads=None, lse=None, gt=None,
             gw=None):
    r"""The chunked loop over rows (and vocabulary blocks) for one output position.

    ``lse is None``: forward. Returns the per-row losses
    :math:`l_n = Q_n \log s_n - T_n` and :math:`\mathrm{lse}_n = m_n + \log s_n`;
    with ``grads`` it also adds :math:`\mathrm{scale}_n \cdot \partial l_n/\partial(\cdot)`
    into them (fused: the single-block case reuses ``exp(z - m)``, no recompute).
    ``lse`` given: backward only, one recomputing pass with the saved ``lse``.
    """
    N, C = x.shape[0], W.shape[0]
    blocks = _blocks(C, vocab_chunk_size)
    # probabilities of a wider dtype than the logits widen the loss, as in torch
    losses = x.new_empty(N, dtype=torch.promote_types(x.dtype, tq.target.dtype) if tq.probs else x.dtype)
    lses = x.new_empty(N)
    buf = x.new_empty(min(chunk_size, N) * min(vocab_chunk_size, C))
    for a in range(0, N, chunk_size):
        rows = slice(a, min(a + chunk_size, N))
        x_c, t_c = x[rows], tq.rows(rows.start, rows.stop)
        # ignored rows get exactly zero gradient, even when 'mean' divides by a total weight of 0
        r = None if scale is None else scale[rows] if t_c.probs else torch.where(t_c.valid, scale[rows], 0)
        if lse is not None:
            Q = _row_mass(t_c)
            _gradient_pass(x_c, W, b, t_c, blocks, buf, lse[rows], Q, r, rows, grads, gt, gw)
            continue
        m, s, T, Q, e = _online_lse(x_c, W, b, t_c, blocks, buf)
        log_s = s.log()
        loss = Q * log_s - T
        losses[rows] = loss if t_c.probs else torch.where(t_c.valid, loss, 0)
        lses[rows] = m + log_s
        if grads is None:
            continue
        if e is not None:  # one block: p = e / s is already here
            dz = e.mul_((r * Q / s).unsqueeze(1))
            t_c.subtract(dz, r, *blocks[0])
            _accumulate(dz, x_c, W, *blocks[0], rows, grads)
        else:
            _gradient_pass(x_c, W, b, t_c, blocks, buf, lses[rows], Q, r, rows, grads)
    return losses, lses


def _row_mass(tq: _Targets) -> Tensor:
    """``Q_n = sum_c q_nc`` without the logits (the targets alone decide it)."""
    if tq.probs:
        return tq.dot(torch.zeros_like(tq.target), 0, tq.C)[1]
    wsum = tq.weight.sum() if tq.weight is not None else tq.C
    return tq.one_hot + tq.uniform * wsum


class LinearCrossEntropyFunction(Function):
    r"""Cross-entropy of the logits :math:`z = x W^\top + b`, computed chunk by chunk.

    With :math:`q_n` the target row (see :class:`_Targets`), :math:`Q_n = \sum_c q_{nc}`,
    :math:`p_n = \mathrm{softmax}(z_n)` and :math:`r_n` the reduction's weight (for
    ``mean`` one over :math:`\sum_n w_{y_n}` on the kept rows, or over the number of
    rows for probabilities; 1 for ``sum``; ``grad_output[n]`` for ``none``):

    .. math::
        l_n = \sum_c q_{nc} (\mathrm{lse}(z_n) - z_{nc}), \qquad
        \frac{\partial l_n}{\partial z_{nc}} = Q_n p_{nc} - q_{nc},

    .. math::
        \frac{\partial L}{\partial x_n} = \sum_c g_{nc} W_c, \qquad
        \frac{\partial L}{\partial W_c} = \sum_n g_{nc} x_n, \qquad
        \frac{\partial L}{\partial b_c} = \sum_n g_{nc}, \qquad g_{nc} = r_n (Q_n p_{nc} - q_{nc}).

    Each chunk of rows needs only its own :math:`\mathrm{lse}_n`, so :math:`g` is
    formed and consumed one ``chunk_size x vocab_chunk_size`` block at a time.
    For ``mean``/``sum`` the gradients are accumulated in forward alongside the
    loss (the logits are computed once) and backward scales them by the scalar
    ``grad_output``; for ``none`` (and a repeated backward) backward recomputes
    the logits from the saved inputs and the saved :math:`\mathrm{lse}`.

    ``input`` is ``(N, F)``; ``linear_weight`` ``(C, F)`` with ``target`` ``(N,)``
    (class indices) or ``(N, C)`` (probabilities), or, for a K-dimensional loss,
    ``(C, D, F)`` with ``target`` ``(N, D)`` or ``(N, C, D)``: ``D`` output
    positions, each its own softmax over the ``C`` classes.
    """

    @staticmethod
    def forward(input, linear_weight, linear_bias, target, weight, reduction, ignore_index, label_smoothing,
                chunk_size, vocab_chunk_size, precompute, shape):
        loss, lse, grads = _forward(input, linear_weight, linear_bias, target, weight, reduction, ignore_index,
                                    label_smoothing, chunk_size, vocab_chunk_size, precompute)
        return (loss.reshape(shape) if reduction == "none" else loss), lse, *grads

    @staticmethod
    def setup_context(ctx, inputs, output):
        input, linear_weight, linear_bias, target, weight, reduction, ignore_index, eps, chunk, vchunk, _, _ = inputs
        _, lse, gx, gW, gb = output
        ctx.mark_non_differentiable(*output[1:])
        # no zero-filled "gradients" for those outputs in backward: 80 MiB at 8192 x 512, V = 32768
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(input, linear_weight, linear_bias, target, weight, lse)
        ctx.args = (reduction, ignore_index, eps, chunk, vchunk)
        # detached: they are outputs of this node and would otherwise keep it alive
        ctx.precomputed = [g.detach() if done else None for g, done in zip((gx, gW, gb), inputs[-2])]

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output, *_):
        nothing = (None,) * 12
        if grad_output is None:  # the loss itself was not used
            return nothing
        input, W, b, target, weight, lse = ctx.saved_tensors
        needs = ctx.needs_input_grad
        reduction = ctx.args[0]
        if reduction == "none" or needs[3] or needs[4]:
            # per-row grad_output (or gradients the forward did not accumulate): one recomputing pass
            grads = _recompute(input, W, b, target, weight, lse, grad_output, needs, *ctx.args)
            return (*grads, *nothing[5:])
        want = (needs[0], needs[1], b is not None and needs[2])
        pre, ctx.precomputed = ctx.precomputed, [None, None, None]
        if not all(g is not None for g, w in zip(pre, want) if w):
            # a second backward (retain_graph): the same loop as forward's, so the same bits
            pre = _forward(input, W, b, target, weight, *ctx.args, want)[2]
        # scaled in place with no reference left behind: autograd moves them into .grad, no copy
        grads = [pre[i].mul_(grad_output) if want[i] else None for i in range(3)]
        del pre
        return (*grads, *nothing[3:])


def _at(t: Tensor | None, j: int, positioned: bool, dim: int = 1) -> Tensor | None:
    """Output position ``j`` of ``t`` (its axis ``dim``) for a K-dimensional loss; ``t`` itself otherwise."""
    return t if t is None or not positioned else t.select(dim, j)


def _setup(input, W, target, weight, ignore_index, eps):
    """Per-position targets and the ``mean`` denominator (which needs no logits)."""
    C, kdim = W.shape[0], W.dim() == 3
    D = W.shape[1] if kdim else 1
    probs = target.is_floating_point()
    per_position = [_Targets(_at(target, j, kdim, 2 if probs else 1), weight, ignore_index, eps, C, input.dtype)
                    for j in range(D)]
    if probs:  # torch's mean over probabilities divides by the number of rows, weights or not
        denom = torch.tensor(float(target.shape[0] * D), dtype=torch.promote_types(input.dtype, target.dtype))
    elif weight is not None:  # ... and over class indices by the total weight of the kept rows
        denom = sum(torch.where(t.valid, weight[t.index], 0).sum() for t in per_position)
    else:
        denom = sum(t.valid.sum() for t in per_position).to(input.dtype)
    return per_position, denom, kdim


def _scale(reduction, denom, N, dtype):
    """The weight ``r_n`` of each row's loss in the reduced loss: ``1/denom`` for mean, 1 for sum."""
    r = (1 / denom) if reduction == "mean" else torch.ones((), dtype=dtype)
    return r.expand(N)


def _forward(input, W, b, target, weight, reduction, ignore_index, eps, chunk, vchunk, precompute):
    N = input.shape[0]
    per_position, denom, kdim = _setup(input, W, target, weight, ignore_index, eps)
    empty = input.new_empty(0)
    # the gradients the caller will want, accumulated while the logits pass by (mean/sum only)
    grads = [torch.zeros_like(t) if t is not None and want else None for t, want in zip((input, W, b), precompute)]
    scale = _scale(reduction, denom, N, input.dtype)
    dtype = torch.promote_types(input.dtype, target.dtype) if target.is_floating_point() else input.dtype
    losses, lses = input.new_empty(N, len(per_position), dtype=dtype), input.new_empty(N, len(per_position))
    for j, tq in enumerate(per_position):
        g = (grads[0], _at(grads[1], j, kdim), _at(grads[2], j, kdim)) if any(precompute) else None
        losses[:, j], lses[:, j] = _chunked(input, _at(W, j, kdim), _at(b, j, kdim), tq, chunk, vchunk, scale, g)
    if reduction == "none":
        loss = losses
    elif reduction == "sum":
        loss = losses.sum()
    else:
        loss = losses.sum() / denom
    return loss, lses, [g if g is not None else empty for g in grads]


def _recompute(input, W, b, target, weight, lse, grad_output, needs, reduction, ignore_index, eps, chunk, vchunk):
    N = input.shape[0]
    per_position, denom, kdim = _setup(input, W, target, weight, ignore_index, eps)
    gx = torch.zeros_like(input) if needs[0] else None
    gW = torch.zeros_like(W) if needs[1] else None
    gb = torch.zeros_like(b) if b is not None and needs[2] else None
    gt = torch.zeros_like(target) if target.is_floating_point() and needs[3] else None
    gw = torch.zeros_like(weight) if target.is_floating_point() and weight is not None and needs[4] else None
    grad_output = grad_output.reshape(N, len(per_position)) if reduction == "none" else grad_output
    for j, tq in enumerate(per_position):
        r = grad_output[:, j] if reduction == "none" else _scale(reduction, denom, N, input.dtype) * grad_output
        g = (gx, _at(gW, j, kdim), _at(gb, j, kdim))
        _chunked(input, _at(W, j, kdim), _at(b, j, kdim), tq, chunk, vchunk, r, g, lse=lse[:, j],
                 gt=_at(gt, j, kdim, 2), gw=gw)
    return gx, gW, gb, gt, gw


def _options_chunk_size(options, reduction, label_smoothing, target, out_features, linear_bias, N, F, C, input):
    """Rows per chunk that torch's ``LinearCrossEntropyOptions`` asks for, or None where torch ignores it.

    torch ignores ``options`` (with this very warning) where its chunked path
    cannot go; lossutils then keeps its own default chunking.
    """
    if (out_features or reduction not in {"mean", "sum", "none"} or label_smoothing != 0.0
            or target.dtype != torch.int64):
        warnings.warn(
            "linear_cross_entropy: ``options`` ignored; chunked path needs "
            "reduction in {'mean','sum','none'}, label_smoothing == 0, target.dtype"
            " == int64, out_features == (). Got "
            f"reduction={reduction!r}, label_smoothing={label_smoothing}, "
            f"target.dtype={target.dtype}, out_features={tuple(out_features)}"
            f", tracing=False"
            f", linear_bias.shape="
            f"{tuple(linear_bias.shape) if linear_bias is not None else None}.",
            stacklevel=3,
        )
        return None
    # torch's own resolution of "auto" / chunking_method (and its ValueError on a conflict)
    return options._adjust(num_batches=N, in_features=F, num_classes=C, dtype=input.dtype,
                           device=input.device).batch_chunk_size


def _check_targets(target, probs, logits_shape, weight, C, label_smoothing, input):
    """cross_entropy's own checks on ``target``, ``weight`` and ``label_smoothing``, with clearer messages."""
    if probs:
        if not target.is_floating_point():
            raise RuntimeError(
                f"Expected floating point type for target with class probabilities, got {target.dtype}: "
                f"a target of the logits' shape {tuple(logits_shape)} holds probabilities")
    elif target.dtype not in (torch.int64, torch.uint8):
        raise RuntimeError(f"expected target dtype to be Long or Byte, but got {str(target.dtype)[6:].title()}: "
                           f"class-index targets must be int64 (or uint8), got target of dtype {target.dtype}")
    else:
        expected = (logits_shape[0], *logits_shape[2:]) if len(logits_shape) > 1 else ()
        if len(logits_shape) == 1:
            if target.dim() > 1:
                raise RuntimeError("0D or 1D target tensor expected, multi-target not supported: "
                                   f"unbatched input needs a target of shape () or (1,), got {tuple(target.shape)}")
        elif len(logits_shape) == 2 and target.shape[:1] != expected[:1]:
            raise ValueError(f"Expected input batch_size ({logits_shape[0]}) to match target batch_size "
                             f"({target.shape[0] if target.dim() else 0}): target of shape {tuple(target.shape)}")
        elif target.shape != expected:
            raise RuntimeError(f"Expected target size {list(expected)}, got {list(target.shape)}: "
                               f"target must have shape {tuple(expected)} for logits of shape {tuple(logits_shape)}")
    if weight is not None and (weight.dim() != 1 or weight.numel() != C):
        raise RuntimeError(f"weight tensor should be defined either for all {C} classes or no classes but got "
                           f"weight tensor of shape: {list(weight.shape)}")
    if weight is not None and weight.dtype != input.dtype and not probs:
        raise RuntimeError(f"expected scalar type {_name(input.dtype)} but found {_name(weight.dtype)}: "
                           f"weight has dtype {weight.dtype}, input has dtype {input.dtype}")
    if not label_smoothing <= 1.0:
        raise RuntimeError(f"label_smoothing must be between 0.0 and 1.0. Got: {label_smoothing}")
    if not probs and weight is not None and weight.requires_grad and torch.is_grad_enabled():
        raise RuntimeError("The function 'nll_loss_forward' is not differentiable with respect to argument "
                           "'weight'. This input cannot have requires_grad True.")


def _name(dtype) -> str:
    return {torch.float32: "Float", torch.float64: "Double", torch.float16: "Half",
            torch.bfloat16: "BFloat16"}.get(dtype, str(dtype))


def linear_cross_entropy(input: Tensor, linear_weight: Tensor, target: Tensor, *,
                         linear_bias: Tensor | None = None, weight: Tensor | None = None, reduction: str = "mean",
                         ignore_index: int | None = None, label_smoothing: float = 0.0, options=None,
                         chunk_size: int | None = None, vocab_chunk_size: int | None = None) -> Tensor:
    r"""Cross-entropy of ``input @ linear_weight.T + linear_bias`` against ``target``, logits never stored.

    Same value, gradients, shapes, warnings and errors as
    :func:`torch.nn.functional.linear_cross_entropy`: it equals
    ``cross_entropy(linear(input, linear_weight, linear_bias), target, ...)``,
    so with :math:`z_n = W x_n + b`

    .. math::
        l_n = \sum_c q_{nc} \bigl(\log\textstyle\sum_k e^{z_{nk}} - z_{nc}\bigr)

    where :math:`q_n = w_{y_n} e_{y_n}` for a class index :math:`y_n` (0 when
    :math:`y_n` = ``ignore_index``) or :math:`q_{nc} = w_c t_{nc}` for
    probabilities :math:`t_n`, each mixed with :math:`\varepsilon/C` uniform
    by ``label_smoothing`` :math:`\varepsilon`. ``reduction``: ``'none'`` keeps
    :math:`l_n`; ``'sum'`` adds them; ``'mean'`` divides the sum by
    :math:`\sum_n w_{y_n}` over the kept rows (class indices) or by the number
    of rows (probabilities).

    Unlike torch's default path, the ``N x C`` logits never exist: rows are
    processed ``chunk_size`` at a time and classes ``vocab_chunk_size`` at a
    time with an online log-sum-exp (see :class:`LinearCrossEntropyFunction`).

    Args:
        input: hidden states, :math:`(F)` or :math:`(N, F)`.
        linear_weight: :math:`(C, F)`, or :math:`(C, d_1, \dots, d_K, F)` for a K-dimensional loss.
        target: class indices :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots)` (int64 or uint8),
            or probabilities of the logits' shape :math:`(C)`, :math:`(N, C)`, :math:`(N, C, d_1, \dots)`.
        linear_bias: :math:`(C, d_1, \dots)` or None.
        weight: per-class rescaling, :math:`(C)`.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        ignore_index: class index whose rows count for nothing; None means -100 (class indices only).
        label_smoothing: :math:`\varepsilon \in [0, 1]`. Default 0.
        options: a ``torch.nn.LinearCrossEntropyOptions``; where torch would use
            it, its ``batch_chunk_size`` / ``chunking_method`` choose ``chunk_size``.
        chunk_size: rows per chunk. Default: torch's ``aspect_ratio:2`` rule
            (:func:`_auto_chunk_size`), so a chunk's logits take about half the memory of ``input``.
        vocab_chunk_size: classes per block. Default: all of them (one block,
            no recomputation); smaller blocks lower the peak further at the cost
            of computing the logits twice.

    Shape:
        output: scalar, or for ``'none'`` :math:`()`, :math:`(N)` or :math:`(N, d_1, \dots)`.

    Examples:
        >>> x = torch.randn(8, 16, requires_grad=True)
        >>> W = torch.randn(100, 16, requires_grad=True)
        >>> y = torch.randint(0, 100, (8,))
        >>> linear_cross_entropy(x, W, y, chunk_size=3).backward()
    """
    if input.dim() < 1 or input.dim() > 2:
        raise RuntimeError(f"expected input with dimensionality 1 or 2, got {input.dim()}: "
                           f"input must be (in_features,) or (N, in_features), got shape {tuple(input.shape)}")
    if linear_weight.dim() < 2:
        raise RuntimeError(f"expected linear_weight with dimensionality at least 2, got {linear_weight.dim()}: "
                           f"linear_weight must be (C, in_features), got shape {tuple(linear_weight.shape)}")
    num_batches, F = tuple(input.shape[:-1]), input.shape[-1]
    if F != linear_weight.shape[-1]:
        raise RuntimeError(
            "expected equal input and linear_weight last dimensions (in_features), "
            f"got {F} and {linear_weight.shape[-1]}, respectively: input has shape {tuple(input.shape)}, "
            f"linear_weight has shape {tuple(linear_weight.shape)}")
    C, out_features = linear_weight.shape[0], tuple(linear_weight.shape[1:-1])
    if linear_bias is not None and tuple(linear_bias.shape) != (C, *out_features):
        raise RuntimeError(f"expected linear_bias shape {(C, *out_features)}, got {tuple(linear_bias.shape)}")
    if out_features and not num_batches:
        raise RuntimeError(
            f"K-dimensional loss defined by linear_weight shape {tuple(linear_weight.shape)} requires"
            f" batched input, (N, {F}), got unbatched input with shape {tuple(input.shape)}")
    logits_shape = (*num_batches, C, *out_features)
    probs = tuple(target.shape) == logits_shape
    if probs and ignore_index is not None:
        raise RuntimeError("ignore_index cannot be specified when target contains probabilities: "
                           f"target has the logits' shape {logits_shape}, so it holds probabilities")
    ignore_index = -100 if ignore_index is None else ignore_index
    N = num_batches[0] if num_batches else 1
    if options is not None:
        from_options = _options_chunk_size(options, reduction, label_smoothing, target, out_features,
                                           linear_bias, N, F, C, input)
        chunk_size = chunk_size if chunk_size is not None else from_options
    reduction = _reduction.check_reduction(reduction)
    _check_targets(target, probs, logits_shape, weight, C, label_smoothing, input)
    for name, t in (("linear_weight", linear_weight), ("linear_bias", linear_bias)):
        if t is not None and t.dtype != input.dtype:
            raise RuntimeError(f"expected m1 and m2 to have the same dtype, but got: {_name(input.dtype).lower()} != "
                               f"{_name(t.dtype).lower()}: {name} has dtype {t.dtype}, input has dtype {input.dtype}")
    for name, n in (("chunk_size", chunk_size), ("vocab_chunk_size", vocab_chunk_size)):
        if n is not None and (not isinstance(n, int) or isinstance(n, bool) or n < 1):
            raise ValueError(f"{name} must be a positive int or None, got {n!r}")

    # Canonical shapes: rows x (N, F); for a K-dimensional loss the D = d_1...d_K output
    # positions get their own axis: W (C, D, F), b (C, D), target (N, D) or (N, C, D).
    # Plain 2-D tensors go in as they are: a reshaped view would make autograd copy their gradients.
    x = input if num_batches else input.unsqueeze(0)
    W, b, t = linear_weight, linear_bias, target
    if out_features:
        D = math.prod(out_features)
        W, b = W.reshape(C, D, F), b.reshape(C, D) if b is not None else None
        t = t.reshape(N, C, D) if probs else t.reshape(N, D)
    elif not num_batches:
        t = t.reshape(1, C) if probs else t.reshape(1)
    t = t if probs or t.dtype == torch.int64 else t.long()
    if not probs:
        bad = (t != ignore_index) & ((t < 0) | (t >= C))
        if bad.any():
            raise IndexError(f"Target {t[bad][0].item()} is out of bounds.: class indices must lie in [0, {C}) "
                             f"(or equal ignore_index={ignore_index})")
    eps = max(float(label_smoothing), 0.0)  # torch treats a negative label_smoothing as none
    grad_on = torch.is_grad_enabled()
    wants = (input.requires_grad, linear_weight.requires_grad, linear_bias is not None and linear_bias.requires_grad)
    recompute_only = reduction == "none" or (probs and (target.requires_grad or
                                                         (weight is not None and weight.requires_grad)))
    precompute = tuple(grad_on and w and not recompute_only for w in wants)
    chunk = chunk_size if chunk_size is not None else _auto_chunk_size(N, F, C)
    vchunk = vocab_chunk_size if vocab_chunk_size is not None else max(C, 1)
    loss = LinearCrossEntropyFunction.apply(x, W, b, t, weight, reduction, ignore_index, eps, chunk, vchunk,
                                            precompute, (*num_batches, *out_features))[0]
    return loss
