"""Module classes of the regression losses: L1, MSE, SmoothL1, Huber.

Like torch 2.13's, none of them takes a ``weight``: that keyword exists on the
functional forms only.

Defined in :doc:`/chapters/04_loss_family`.
"""

from __future__ import annotations

from torch import Tensor

from ..functional import huber_loss, l1_loss, mse_loss, smooth_l1_loss
from .base import _Loss

__all__ = ["L1Loss", "MSELoss", "SmoothL1Loss", "HuberLoss"]


class L1Loss(_Loss):
    r"""Mean absolute error between each element of ``input`` and ``target``.

    .. math::
        \ell(x, y) = L = \{l_1, \dots, l_N\}^\top, \qquad l_n = |x_n - y_n|

    and, with ``reduction``: ``'none'`` returns :math:`L`, ``'mean'``
    returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns :math:`\sum_n l_n`.
    Real and complex inputs are supported.

    Args:
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (same shape), output scalar or :math:`(*)` for
        ``'none'``.

    Examples:
        >>> loss = L1Loss()
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> loss(x, torch.randn(3, 5)).backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return l1_loss(input, target, reduction=self.reduction)


class MSELoss(_Loss):
    r"""Mean squared error between each element of ``input`` and ``target``.

    .. math::
        \ell(x, y) = L = \{l_1, \dots, l_N\}^\top, \qquad l_n = (x_n - y_n)^2

    and, with ``reduction``: ``'none'`` returns :math:`L`, ``'mean'``
    returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns :math:`\sum_n l_n`.

    Args:
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (same shape), output scalar or :math:`(*)` for
        ``'none'``.

    Examples:
        >>> loss = MSELoss()
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> loss(x, torch.randn(3, 5)).backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return mse_loss(input, target, reduction=self.reduction)


class SmoothL1Loss(_Loss):
    r"""Squared error below ``beta``, absolute error (minus :math:`\beta/2`) above it.

    .. math::
        l_n = \begin{cases}
            0.5\, (x_n - y_n)^2 / \beta, & |x_n - y_n| < \beta \\
            |x_n - y_n| - 0.5\, \beta, & \text{otherwise}
        \end{cases}

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}^\top`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns :math:`\sum_n l_n`.
    The slope of the L1 part is 1 for every ``beta``; ``beta = 0`` is exactly
    :class:`L1Loss`; a negative ``beta`` is rejected when the loss is computed.

    Args:
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        beta: where the quadratic part ends; non-negative. Default ``1.0``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (same shape), output scalar or :math:`(*)` for
        ``'none'``.

    Examples:
        >>> loss = SmoothL1Loss(beta=0.5)
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> loss(x, torch.randn(3, 5)).backward()
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 beta: float = 1.0) -> None:
        super().__init__(size_average, reduce, reduction)
        self.beta = beta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return smooth_l1_loss(input, target, reduction=self.reduction, beta=self.beta)


class HuberLoss(_Loss):
    r"""Squared error below ``delta``, ``delta``-scaled absolute error above it.

    .. math::
        l_n = \begin{cases}
            0.5\, (x_n - y_n)^2, & |x_n - y_n| < \delta \\
            \delta\, (|x_n - y_n| - 0.5\, \delta), & \text{otherwise}
        \end{cases}

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_1, \dots, l_N\}^\top`,
    ``'mean'`` returns :math:`\frac{1}{N}\sum_n l_n`, ``'sum'`` returns :math:`\sum_n l_n`.
    ``HuberLoss(delta)`` equals ``delta * SmoothL1Loss(beta=delta)``; the slope of
    its linear part is :math:`\delta`.

    Args:
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        delta: where the quadratic part ends; positive. Default ``1.0``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (same shape), output scalar or :math:`(*)` for
        ``'none'``, in ``input``'s dtype.

    Examples:
        >>> loss = HuberLoss(delta=2.0)
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> loss(x, torch.randn(3, 5)).backward()
    """

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        if not isinstance(delta, (float, int)):
            raise TypeError(f"delta must be a float or int, got: {type(delta)}")
        super().__init__(reduction=reduction)
        self.delta = delta

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return huber_loss(input, target, reduction=self.reduction, delta=self.delta)
