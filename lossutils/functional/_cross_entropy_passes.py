"""The memory-lean passes of :mod:`lossutils.functional.cross_entropy` for probability
targets (its fast paths).

They run when nothing records them and the tensors are plain
(:func:`lossutils._autograd.plain`, :func:`~lossutils._autograd.fast_path`):
forward walks the logits in blocks of rows through one scratch buffer (at most
64 MiB) and keeps two numbers per row, the maximum :math:`m` and
:math:`\\log\\sum_c e^{x_c - m}`; backward writes
:math:`p = e^{(x - m) - \\log\\sum}` straight into the gradient's buffer and
finishes the gradient there, block by block. Under ``create_graph=True``, a
``torch.func`` transform or ``torch.compile``, the Functions run their
differentiable forms instead, which give the same numbers.

float16 and bfloat16 logits keep their row statistics and scratch blocks in
float32 (:func:`lossutils._precision.opmath`): no N x C float32 copy of the logits.

Defined in :doc:`/chapters/03_1_backward` (its memory budget: :doc:`/chapters/07_llm_scale`).
"""

from __future__ import annotations

import torch
from torch import Tensor

from .._precision import opmath, upcast
from ._cross_entropy_layout import _blocks


def block_log_p(xb: Tensor, m: Tensor, log_sum: Tensor, fill_stats: bool = False) -> Tensor:
    """:math:`\\log p = (x - m) - \\log\\sum e^{x - m}` for one block, in :func:`opmath`.

    ``fill_stats``: first compute ``m`` and ``log_sum`` (written in place)."""
    xb = upcast(xb)
    if fill_stats:
        torch.amax(xb, 1, keepdim=True, out=m)
        shifted = xb - m
        torch.sum(shifted.exp(), 1, keepdim=True, out=log_sum).log_()
        return shifted.sub_(log_sum)
    return (xb - m).sub_(log_sum)


def smoothed(t: Tensor, eps: float, n_classes: int, dtype: torch.dtype) -> Tensor:
    """:math:`t' = (1-\\varepsilon)t + \\varepsilon/C` as ATen forms it, in the target's own
    dtype (rounded there, as torch rounds it), then in ``dtype``."""
    if eps:
        t = t * (1 - eps) + eps / n_classes
    return upcast(t, dtype)


def target_grad(g: Tensor, eps: float, dtype: torch.dtype) -> Tensor:
    """The gradient w.r.t. the target from the one w.r.t. :math:`t'` (``g``), rounded where
    torch's autograd rounds it: to the target's ``dtype``, then times :math:`1-\\varepsilon`."""
    g = g.to(dtype)
    return g * (1 - eps) if eps else g


def probability_forward(x: Tensor, t: Tensor, w: Tensor | None, eps: float, dtype: torch.dtype):
    """Row statistics ``m``, ``log_sum`` and the unreduced losses
    :math:`-\\sum_c w_c t'_c \\log p_c` (in ``dtype``), block by block."""
    n, c, d = x.shape
    stat = opmath(x.dtype)
    m, log_sum = (torch.empty(n, 1, d, dtype=stat, device=x.device) for _ in range(2))
    rows_loss = torch.empty(n, 1, d, dtype=dtype, device=x.device)
    for rows in _blocks(x):
        log_p = block_log_p(x[rows], m[rows], log_sum[rows], fill_stats=True)
        terms = log_p * smoothed(t[rows], eps, c, dtype)  # ATen: (log p * t') * w
        terms = terms if w is None else terms * w
        torch.sum(terms, 1, keepdim=True, out=rows_loss[rows]).neg_()
    return m, log_sum, rows_loss


def probability_backward(x: Tensor, t: Tensor, w: Tensor | None, m: Tensor, log_sum: Tensor,
                         r: Tensor, eps: float, dtype: torch.dtype, needs: tuple[bool, ...]):
    """Gradients w.r.t. logits, targets and class weights (``None`` where ``needs`` says
    not wanted), block by block; :math:`p` is written into the gradient's buffer."""
    c = x.shape[1]
    need_x, need_t, need_w = needs
    grad = torch.empty(x.shape, dtype=dtype, device=x.device) if need_x else None
    grad_t = torch.empty(t.shape, dtype=t.dtype, device=x.device) if need_t else None
    grad_w = torch.zeros(c, dtype=dtype, device=x.device) if need_w else None
    for rows in _blocks(x):
        r_b = r[rows] if r.dim() else r
        t_b = smoothed(t[rows], eps, c, dtype)  # t', rounded to t's dtype as in torch
        wt = t_b if w is None else t_b * w  # w_c t'_c, summed in dtype (float32 for bfloat16 t)
        if need_x:
            gb = grad[rows]
            torch.sub(upcast(x[rows], dtype), m[rows], out=gb).sub_(log_sum[rows]).exp_()  # p
            gb.mul_(wt.sum(1, keepdim=True)).sub_(wt).mul_(r_b)
        if need_t or need_w:
            log_p = block_log_p(x[rows], m[rows], log_sum[rows])
            if need_t:
                g_t = -(log_p * r_b if w is None else log_p * r_b * w)
                grad_t[rows] = target_grad(g_t, eps, t.dtype)
            if need_w:
                grad_w -= (t_b * log_p * r_b).sum((0, 2))
    return grad, grad_t, grad_w
