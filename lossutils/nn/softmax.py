"""Module classes of the softmax family: ``Softmax``, ``LogSoftmax`` and ``Softmax2d``.

Defined in :doc:`/chapters/03_cross_entropy` (forward) and
:doc:`/chapters/03_1_backward` (backward).
"""

from __future__ import annotations

from torch import Tensor, nn

from ..functional import log_softmax, softmax

__all__ = ["Softmax", "LogSoftmax", "Softmax2d"]


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


class Softmax2d(nn.Module):
    r"""Softmax over the channels at every spatial location of an image.

    .. math:: \operatorname{Softmax2d}(x)_{c,h,w} = \frac{\exp(x_{c,h,w})}{\sum_k \exp(x_{k,h,w})}

    The channel dimension is ``-3`` of a :math:`(C, H, W)` or :math:`(N, C, H, W)`
    input; any other number of dimensions is refused with torch's ``ValueError``.

    Args:
        none: the dimension is always the channels' (``dim=-3``).

    Shape:
        input :math:`(N, C, H, W)` or :math:`(C, H, W)`, output the same shape.

    Examples:
        >>> m = Softmax2d()
        >>> m(torch.tensor([[[0.0]], [[math.log(3.0)]]]))  # (C, H, W) = (2, 1, 1)
        tensor([[[0.2500]],
        <BLANKLINE>
                [[0.7500]]])
    """

    def forward(self, input: Tensor) -> Tensor:
        if input.dim() not in (3, 4):
            raise ValueError(
                f"Softmax2d: expected input to be 3D or 4D, got {input.dim()}D instead "
                f"(input of shape {tuple(input.shape)}; channels are dim -3)"
            )
        return softmax(input, -3, _stacklevel=5)
