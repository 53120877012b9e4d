"""Module classes of the regression losses."""

from __future__ import annotations

from torch import Tensor

from .. import functional as LF
from .base import _Loss

__all__ = ["MSELoss"]


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
        input :math:`(*)`, target :math:`(*)` (same shape), output scalar or :math:`(*)` for ``'none'``.

    Examples:
        >>> loss = MSELoss()
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> loss(x, torch.randn(3, 5)).backward()
    """

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return LF.mse_loss(input, target, reduction=self.reduction)
