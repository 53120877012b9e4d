"""Module classes of the probabilistic losses: KL divergence, Poisson and Gaussian NLL.

Defined in :doc:`/chapters/05_kl_divergence` (``KLDivLoss``) and
:doc:`/chapters/04_2_likelihoods_and_sequences` (``PoissonNLLLoss``, ``GaussianNLLLoss``).
"""

from __future__ import annotations

from torch import Tensor

from ..functional import gaussian_nll_loss, kl_div, poisson_nll_loss
from .base import _Loss

__all__ = ["KLDivLoss", "PoissonNLLLoss", "GaussianNLLLoss"]


class KLDivLoss(_Loss):
    r"""Kullback-Leibler divergence between ``target`` :math:`y` and the distribution whose logs
    are ``input``.

    .. math::
        l_n = y_n \left(\log y_n - x_n\right) \quad (0 \text{ where } y_n = 0),
        \qquad \text{or, with log\_target,} \quad l_n = e^{y_n} (y_n - x_n)

    and, with ``reduction``: ``'none'`` returns :math:`L = \{l_n\}`; ``'sum'``
    returns :math:`\sum_n l_n`; ``'batchmean'`` returns
    :math:`\sum_n l_n / N` with :math:`N` = ``input.size(0)``, the KL divergence
    per sample; ``'mean'`` divides by the number of *elements* (and warns that
    this is not the KL divergence).

    Args:
        size_average, reduce: deprecated, see ``reduction``.
        reduction: ``'none'`` | ``'batchmean'`` | ``'sum'`` | ``'mean'``. Default ``'mean'``.
        log_target: whether ``target`` is given as log-probabilities. Default ``False``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (broadcastable), output scalar or :math:`(*)` for
        ``'none'``.

    Examples:
        >>> loss = KLDivLoss(reduction="batchmean")
        >>> x = torch.randn(3, 5, requires_grad=True)
        >>> log_q = x - x.exp().sum(1, keepdim=True).log()
        >>> p = torch.rand(3, 5)
        >>> loss(log_q, p / p.sum(1, keepdim=True)).backward()
    """

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean",
                 log_target: bool = False) -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_target = log_target

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        return kl_div(input, target, reduction=self.reduction, log_target=self.log_target)


class PoissonNLLLoss(_Loss):
    r"""Negative log-likelihood of a Poisson-distributed ``target`` with rate given by ``input``.

    .. math::
        l_n = e^{x_n} - y_n x_n \quad (\text{log\_input}), \qquad
        l_n = x_n - y_n \log(x_n + \epsilon) \quad (\text{otherwise}),

    plus, with ``full``, Stirling's term
    :math:`y_n \log y_n - y_n + \frac12 \log(2\pi y_n)` where :math:`y_n > 1`;
    then ``'none'`` returns :math:`L`, ``'mean'`` :math:`\frac1N \sum_n l_n`,
    ``'sum'`` :math:`\sum_n l_n`.

    Args:
        log_input: whether ``input`` is :math:`\log \lambda` (default ``True``) or :math:`\lambda`.
        full: add Stirling's approximation of :math:`\log y!`. Default ``False``.
        size_average, reduce: deprecated, see ``reduction``.
        eps: added to :math:`\lambda` before its log when ``log_input=False``. Default ``1e-8``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(*)`, target :math:`(*)` (broadcastable), output scalar or :math:`(*)` for
        ``'none'``.

    Examples:
        >>> loss = PoissonNLLLoss()
        >>> log_rate = torch.randn(5, 2, requires_grad=True)
        >>> loss(log_rate, torch.poisson(torch.full((5, 2), 3.0))).backward()
    """

    def __init__(self, log_input: bool = True, full: bool = False, size_average=None,
                 eps: float = 1e-8,
                 reduce=None, reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.log_input = log_input
        self.full = full
        self.eps = eps

    def forward(self, log_input: Tensor, target: Tensor) -> Tensor:
        return poisson_nll_loss(log_input, target, log_input=self.log_input, full=self.full,
                                eps=self.eps, reduction=self.reduction)


class GaussianNLLLoss(_Loss):
    r"""Negative log-likelihood of ``target`` under a Gaussian with mean ``input`` and variance
    ``var``.

    .. math::
        l_n = \frac12 \left(\log \max(v_n, \epsilon)
            + \frac{(x_n - y_n)^2}{\max(v_n, \epsilon)}\right)
              \;\left[+ \tfrac12 \log 2\pi \text{ with full}\right]

    then ``'none'`` returns :math:`L`, ``'mean'`` :math:`\frac1N \sum_n l_n`,
    ``'sum'`` :math:`\sum_n l_n`. The clamp at :math:`\epsilon` does not stop
    the gradient w.r.t. ``var``.

    Args:
        full: add the constant :math:`\frac12 \log 2\pi`. Default ``False``.
        eps: lower bound on ``var``, for stability. Default ``1e-6``.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.

    Shape:
        input :math:`(N, *)` or :math:`(*)`; target like input (broadcastable);
        var like input, or input's shape without its last dim, or with one dim
        of size 1 (homoscedastic), or a float; output scalar or like input for ``'none'``.

    Examples:
        >>> loss = GaussianNLLLoss()
        >>> mean = torch.randn(5, 2, requires_grad=True)
        >>> var = torch.ones(5, 1, requires_grad=True)
        >>> loss(mean, torch.randn(5, 2), var).backward()
    """

    def __init__(self, *, full: bool = False, eps: float = 1e-6, reduction: str = "mean") -> None:
        super().__init__(None, None, reduction)
        self.full = full
        self.eps = eps

    def forward(self, input: Tensor, target: Tensor, var: Tensor | float) -> Tensor:
        return gaussian_nll_loss(input, target, var, full=self.full, eps=self.eps,
                                 reduction=self.reduction)
