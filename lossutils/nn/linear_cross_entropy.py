"""The module class of linear cross-entropy: a vocabulary head and its loss in one.

Defined in :doc:`/chapters/07_llm_scale`.
"""

from __future__ import annotations

import math

from torch import Tensor, nn

from ..functional import linear_cross_entropy
from .base import _WeightedLoss

__all__ = ["LinearCrossEntropyLoss"]


class LinearCrossEntropyLoss(_WeightedLoss):
    r"""Cross-entropy of ``input`` mapped to logits by an owned ``Linear`` layer, never storing
    the logits.

    With :math:`z_n = W x_n + b` the logits of row :math:`n` (``self.linear``):

    .. math::
        l_n = \sum_c q_{nc} \bigl(\log\textstyle\sum_k e^{z_{nk}} - z_{nc}\bigr),

    :math:`q_n = w_{y_n} e_{y_n}` for a class index :math:`y_n` (zero when it
    is ``ignore_index``), :math:`q_{nc} = w_c t_{nc}` for probabilities, each
    mixed with a uniform :math:`\varepsilon / C` by ``label_smoothing``. With
    ``reduction``: ``'none'`` returns every :math:`l_n`, ``'sum'`` their sum,
    ``'mean'`` their sum over :math:`\sum_n w_{y_n}` (class indices) or over
    the number of rows (probabilities).

    Args:
        in_features: width :math:`F` of each input row.
        num_classes: number of classes :math:`C` (the vocabulary).
        out_features: :math:`(d_1, \dots, d_K)` for a K-dimensional loss. Default ``()``.
        bias: whether ``self.linear`` has a bias. Default ``False``.
        device, dtype: of ``self.linear``'s parameters.
        reduction: ``'none'`` | ``'mean'`` | ``'sum'``. Default ``'mean'``.
        weight: per-class rescaling of shape :math:`(C)` (a buffer).
        ignore_index: a class index that counts for nothing; None means -100.
        label_smoothing: :math:`\varepsilon \in [0, 1]`. Default 0.
        options: a ``torch.nn.LinearCrossEntropyOptions``; picks the chunk size where torch
            would chunk.
        chunk_size, vocab_chunk_size: rows and classes per chunk (lossutils only; see
            :func:`lossutils.functional.linear_cross_entropy`).

    Shape:
        input :math:`(F)` or :math:`(N, F)`; target :math:`()`, :math:`(N)`, :math:`(N, d_1, \dots)`
        class indices, or probabilities :math:`(C)`, :math:`(N, C)`, :math:`(N, C, d_1, \dots)`;
        output scalar, or for ``'none'`` :math:`()`, :math:`(N)`, :math:`(N, d_1, \dots)`.

    Examples:
        >>> loss = LinearCrossEntropyLoss(16, 1000, chunk_size=4)
        >>> x = torch.randn(8, 16, requires_grad=True)
        >>> loss(x, torch.randint(0, 1000, (8,))).backward()
    """

    __constants__ = ["num_classes", "out_features", "reduction", "ignore_index", "label_smoothing"]
    num_classes: int
    out_features: tuple[int, ...]
    ignore_index: int | None
    label_smoothing: float

    def __init__(self, in_features: int, num_classes: int, *, out_features: tuple[int, ...] = (),
                 bias: bool = False, device=None, dtype=None, reduction: str = "mean",
                 weight: Tensor | None = None, ignore_index: int | None = None,
                 label_smoothing: float = 0.0,
                 options=None, chunk_size: int | None = None,
                 vocab_chunk_size: int | None = None) -> None:
        if weight is not None and weight.shape != (num_classes,):
            raise RuntimeError(f"expected weight shape to be {(num_classes,)}, "
                               f"got {tuple(weight.shape)}: "
                               f"weight holds one rescaling factor per class")
        if label_smoothing < 0 or label_smoothing > 1.0:
            raise RuntimeError(f"expected label_smoothing to be in range [0, 1], "
                               f"got {label_smoothing}")
        super().__init__(weight, None, None, reduction)
        self.num_classes = num_classes
        self.out_features = out_features
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing
        # nn.Linear holds 2-D weights only: a K-dimensional head is stored flat, reshaped in forward
        self.linear = nn.Linear(in_features, math.prod(out_features, start=num_classes), bias=bias,
                                device=device, dtype=dtype)
        self.options = options
        self.chunk_size = chunk_size
        self.vocab_chunk_size = vocab_chunk_size

    def forward(self, input: Tensor, target: Tensor) -> Tensor:
        weight, bias = self.linear.weight, self.linear.bias
        if self.out_features:
            weight = weight.reshape((self.num_classes, *self.out_features, self.linear.in_features))
            if bias is not None:
                bias = bias.reshape((self.num_classes, *self.out_features))
        return linear_cross_entropy(input, weight, target, linear_bias=bias, weight=self.weight,
                                    reduction=self.reduction, ignore_index=self.ignore_index,
                                    label_smoothing=self.label_smoothing, options=self.options,
                                    chunk_size=self.chunk_size,
                                    vocab_chunk_size=self.vocab_chunk_size)

    def extra_repr(self) -> str:
        # torch's text, so repr(module) matches torch's; lossutils' chunk sizes only when set
        text = (f"in_features={self.linear.in_features}, num_classes={self.num_classes},"
                f" out_features={self.out_features}, bias={self.linear.bias is not None},"
                f" reduction={self.reduction}, ignore_index={self.ignore_index},"
                f" label_smoothing={self.label_smoothing}, options={self.options}")
        if self.chunk_size is not None or self.vocab_chunk_size is not None:
            text += f", chunk_size={self.chunk_size}, vocab_chunk_size={self.vocab_chunk_size}"
        return text
