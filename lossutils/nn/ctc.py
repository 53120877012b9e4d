"""Module class of the CTC loss.

Defined in :doc:`/chapters/04_2_likelihoods_and_sequences`.
"""

from __future__ import annotations

from torch import Tensor

from ..functional import ctc_loss
from .base import _Loss

__all__ = ["CTCLoss"]


class CTCLoss(_Loss):
    r"""Connectionist Temporal Classification loss between frame-wise log-probabilities and a
    label sequence.

    .. math::
        \text{loss}_n = -\log \sum_{\pi \in \mathcal{B}^{-1}(l_n)} \prod_{t=1}^{T_n} y^t_{\pi_t}

    summed over every alignment :math:`\pi` (a label or blank per frame) that
    collapses to the target :math:`l_n` once repeats are merged and blanks
    removed; computed by the forward-backward algorithm in log space. Then
    ``'none'`` returns the :math:`N` losses, ``'sum'`` their sum, ``'mean'``
    the batch mean of :math:`\text{loss}_n / \max(|l_n|, 1)`.

    Args:
        blank: index of the blank label. Default 0.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        zero_infinity: replace infinite losses (impossible alignments) and
            their gradients by zero. Default ``False``.

    Shape:
        log_probs :math:`(T, N, C)` or :math:`(T, C)`; targets :math:`(N, S)`
        padded or :math:`(\sum_n |l_n|)` concatenated; input_lengths and
        target_lengths :math:`(N)` (tensors or tuples of ints); output scalar,
        or :math:`(N)` for ``'none'`` (:math:`()` unbatched).

    Examples:
        >>> ctc = CTCLoss()
        >>> x = torch.randn(8, 2, 5, requires_grad=True)
        >>> log_probs = x - x.exp().sum(2, keepdim=True).log()
        >>> targets = torch.tensor([[1, 2, 2], [3, 4, 0]])
        >>> ctc(log_probs, targets, (8, 7), (3, 2)).backward()
    """

    def __init__(self, blank: int = 0, reduction: str = "mean",
                 zero_infinity: bool = False) -> None:
        super().__init__(reduction=reduction)
        self.blank = blank
        self.zero_infinity = zero_infinity

    def forward(self, log_probs: Tensor, targets: Tensor, input_lengths, target_lengths) -> Tensor:
        return ctc_loss(log_probs, targets, input_lengths, target_lengths, self.blank,
                        self.reduction, self.zero_infinity)
