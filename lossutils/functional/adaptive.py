"""The one piece adaptive softmax adds: the log-probability of each row's own class.

:class:`lossutils.nn.AdaptiveLogSoftmaxWithLoss` scores a target as the sum of
two such log-probabilities, one read from the head's softmax (the target
itself, or the cluster that holds it) and one from that cluster's softmax.
Each is :math:`\\log\\operatorname{softmax}(x_n)_{t_n}`: a log-softmax read at
one index per row, whose gradient is the familiar "one-hot minus softmax".

Forward is :func:`lossutils.functional.log_softmax` read with ``gather``; the
backward is written by hand in ordinary differentiable tensor ops, so under
``create_graph=True`` autograd records it and second (and higher) derivatives
come out right.

Defined in :doc:`/chapters/04_3_adaptive_softmax`.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd import Function

from .._checks import dtype_name
from .softmax import log_softmax

__all__ = ["TargetLogProbFunction", "target_log_prob"]


class TargetLogProbFunction(Function):
    r"""Log-probability of one class per row: the log-softmax of row :math:`n` read at
    :math:`t_n`.

    Two outputs, :math:`o_n = y_{n,t_n}` and the whole log-softmax :math:`y`:

    .. math::
        y_{n,c} = x_{n,c} - \log \sum_k e^{x_{n,k}}, \qquad o_n = y_{n,t_n}, \qquad
        \frac{\partial L}{\partial x_{n,c}} = G_{n,c} + g_n \mathbb{1}[c = t_n]
            - p_{n,c} \Big(g_n + \sum_k G_{n,k}\Big)

    with :math:`p = e^{y} = \operatorname{softmax}(x)`, :math:`g = \partial L / \partial o`
    and :math:`G = \partial L / \partial y` (none when only :math:`o` is used, as in
    adaptive softmax: then the gradient is the familiar :math:`g_n(\text{one-hot} - p_n)`).
    Forward mode: :math:`\dot y_{n,c} = \dot x_{n,c} - \sum_k p_{n,k} \dot x_{n,k}`,
    :math:`\dot o_n = \dot y_{n,t_n}`.

    Only :math:`y` is saved (as torch's ``log_softmax`` saves its output), and the
    backward is written in differentiable tensor ops: :math:`y` is an output of this
    Function, so under ``create_graph=True`` autograd differentiates :math:`p = e^{y}`
    back through this same backward, and every higher derivative comes out right. The
    gradient rounds as ATen's ``gather`` and ``_log_softmax_backward`` do
    (:math:`g - e^{y} g` at the target, :math:`0 - e^{y} g` elsewhere).
    """

    generate_vmap_rule = True  # forward, backward and jvp are plain tensor ops

    @staticmethod
    def forward(input, target):
        log_p = log_softmax(input, 1)
        return log_p.gather(1, target.unsqueeze(1)).squeeze(1), log_p

    @staticmethod
    def setup_context(ctx, inputs, output):
        _, target = inputs
        _, log_p = output
        ctx.set_materialize_grads(False)  # G is None when y is unused: no N x C zeros
        ctx.save_for_backward(target, log_p)
        ctx.save_for_forward(target, log_p)

    @staticmethod
    def backward(ctx, grad_picked, grad_log_p):
        target, log_p = ctx.saved_tensors
        if grad_picked is None and grad_log_p is None:
            return None, None
        g = 0 if grad_picked is None else grad_picked.unsqueeze(1)
        total = g if grad_log_p is None else grad_log_p.sum(1, keepdim=True) + g
        # Out of place once (whatever the incoming gradients are -- batched under vmap, tracked
        # under create_graph=True -- the fresh buffer is too); the rest updates it in place,
        # which autograd allows: neither mul nor the ops below save it for their backward.
        grad = log_p.exp() * -total
        if grad_log_p is not None:
            grad.add_(grad_log_p)
        if grad_picked is not None:  # the one-hot term, added where it lands
            grad.scatter_add_(1, target.unsqueeze(1), g)
        return grad, None

    @staticmethod
    def jvp(ctx, input_tangent, _target_tangent):
        target, log_p = ctx.saved_tensors
        log_p_tangent = input_tangent - (log_p.exp() * input_tangent).sum(1, keepdim=True)
        return log_p_tangent.gather(1, target.unsqueeze(1)).squeeze(1), log_p_tangent


def target_log_prob(input: Tensor, target: Tensor) -> Tensor:
    r"""``log_softmax(input, 1)`` read at ``target``, one class per row.

    .. math:: o_n = x_{n,t_n} - \log \sum_c e^{x_{n,c}}

    Args:
        input: logits of shape :math:`(N, C)`.
        target: class indices of shape :math:`(N)`, int64 or int32 (as ``gather`` takes them).

    Shape:
        output :math:`(N)`.

    Examples:
        >>> target_log_prob(torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]]), torch.tensor([0, 1]))
        tensor([-0.6931, -0.2877])

    See :class:`TargetLogProbFunction` for the gradient.
    """
    if target.dtype not in (torch.int64, torch.int32):
        raise RuntimeError(
            "gather(): Expected dtype int32/int64 for index: "
            f"target holds class indices, got dtype {dtype_name(target.dtype)}"
        )
    return TargetLogProbFunction.apply(input, target)[0]
