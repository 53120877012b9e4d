"""Module classes of the softmax family: ``Softmax`` and ``LogSoftmax``.

Defined in :doc:`/chapters/03_cross_entropy`.
"""

from __future__ import annotations

from torch import Tensor, nn

from ..functional import log_softmax, softmax

__all__ = ["Softmax", "LogSoftmax"]


class _DimModule(nn.Module):
    """A module that normalises along one ``dim``, like torch's ``Softmax`` / ``LogSoftmax``."""

    __constants__ = ["dim"]
    dim: int | None

    def __init__(self, dim: int | None = None) -> None:
        super().__init__()
        self.dim = dim

    def __setstate__(self, state):
        # modules pickled before torch stored ``dim`` load with dim=None (the implicit choice)
        super().__setstate__(state)
        if not hasattr(self, "dim"):
            self.dim = None

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class Softmax(_DimModule):
    r"""Softmax along ``dim``: every slice along it becomes positive and sums to one.

    .. math:: \operatorname{Softmax}(x_i) = \frac{\exp(x_i)}{\sum_j \exp(x_j)}

    Args:
        dim: the dimension along which the outputs sum to one (``None``: torch's
            deprecated implicit choice, with its warning).

    Shape:
        input :math:`(*)`, output :math:`(*)` (the same shape).

    Examples:
        >>> m = Softmax(dim=1)
        >>> m(torch.tensor([[0.0, 0.0], [0.0, math.log(3.0)]]))
        tensor([[0.5000, 0.5000],
                [0.2500, 0.7500]])
    """

    def forward(self, input: Tensor) -> Tensor:
        # _stacklevel=5: the implicit-dim warning points where torch's module points
        return softmax(input, self.dim, _stacklevel=5)


class LogSoftmax(_DimModule):
    r"""Log-softmax along ``dim``.

    .. math:: \operatorname{LogSoftmax}(x_i) = \log \frac{\exp(x_i)}{\sum_j \exp(x_j)}

    Args:
        dim: the dimension to normalise over (``None``: torch's deprecated implicit choice).

    Shape:
        input :math:`(*)`, output :math:`(*)` (the same shape).

    Examples:
        >>> m = LogSoftmax(dim=1)
        >>> m(torch.tensor([[0.0, 0.0]]))
        tensor([[-0.6931, -0.6931]])
    """

    def forward(self, input: Tensor) -> Tensor:
        return log_softmax(input, self.dim, _stacklevel=5)
