"""Adaptive softmax: a frequency-sorted vocabulary split into a head and cheaper tail clusters.

Defined in :doc:`/chapters/04_3_adaptive_softmax`.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple

import torch
from torch import Tensor, nn

from ..functional import log_softmax
from ..functional.adaptive import target_log_prob

__all__ = ["AdaptiveLogSoftmaxWithLoss"]


class _ASMoutput(NamedTuple):
    """What :meth:`AdaptiveLogSoftmaxWithLoss.forward` returns (torch's field names)."""

    output: Tensor  # log p(target) per example, (N) or ()
    loss: Tensor  # the mean of -output, a scalar


class AdaptiveLogSoftmaxWithLoss(nn.Module):
    r"""Efficient softmax approximation (Grave et al., 2017, https://arxiv.org/abs/1609.04309):
    the log-probability of each target under a two-level softmax over ``n_classes`` classes
    sorted by frequency, and the mean negative log-likelihood.

    ``cutoffs`` :math:`c_0 < c_1 < \dots < c_{K-1}` (and :math:`c_K` = ``n_classes``) split
    the classes into a *shortlist* :math:`[0, c_0)`, kept in the head, and :math:`K` tail
    clusters :math:`[c_{k-1}, c_k)`. The head :math:`h(x) = W_h x\,(+\,b)` scores the
    :math:`c_0` shortlist classes and one entry per cluster; cluster :math:`k` scores its
    classes with a low-rank map :math:`T_k(x) = V_k U_k x`, where :math:`U_k` projects
    to :math:`\lfloor d / \texttt{div\_value}^k \rfloor` features. With
    :math:`\log p^{h}` and :math:`\log p^{k}` the log-softmax of the head and of cluster
    :math:`k`, the log-probability of target :math:`t_n` is

    .. math::
        o_n = \begin{cases}
            \log p^{h}_{t_n}(x_n) & t_n < c_0, \\
            \log p^{h}_{c_0 + k - 1}(x_n) + \log p^{k}_{t_n - c_{k-1}}(x_n)
                & c_{k-1} \le t_n < c_k,
        \end{cases}
        \qquad \text{loss} = -\frac{1}{N} \sum_n o_n

    Each cluster's softmax runs only over the rows whose targets fall in it: per row
    the head costs :math:`d\,(c_0 + K)` multiply-adds and cluster :math:`k`, with
    :math:`d_k` its projection's width, :math:`d\,d_k + d_k (c_k - c_{k-1})`, paid by
    the share :math:`p_k` of rows whose targets it holds, against :math:`d \cdot`
    ``n_classes`` for the full softmax. Frequent classes are cheap to score and
    rare ones cost little in total, so the classes must be sorted by frequency
    (0 the most frequent). Both log-softmax
    readings are :class:`~lossutils.functional.adaptive.TargetLogProbFunction`,
    whose backward is hand-written ("one-hot minus softmax"); the linear maps are
    ``torch.nn.Linear`` layers with torch's names, so a ``state_dict`` loads both ways
    between this class and ``torch.nn.AdaptiveLogSoftmaxWithLoss``.

    Args:
        in_features: number of features :math:`d` of each input row.
        n_classes: number of classes, sorted by frequency.
        cutoffs: increasing, unique integers in :math:`[1, \texttt{n\_classes} - 1]`;
            ``[10, 100, 1000]`` keeps classes 0-9 in the head and makes clusters of
            10-99, 100-999 and 1000 to ``n_classes - 1``.
        div_value: the width of cluster :math:`k`'s projection is
            :math:`\lfloor d / \texttt{div\_value}^k \rfloor`. Default 4.0.
        head_bias: whether the head has a bias. Default ``False``.
        device, dtype: of the parameters.

    Shape:
        input :math:`(N, d)` or :math:`(d)`; target :math:`(N)` or :math:`()`, class
        indices in :math:`[0, \texttt{n\_classes} - 1]`; returns a ``NamedTuple`` of
        ``output`` :math:`(N)` or :math:`()` (each target's log-probability) and
        ``loss``, a scalar. :meth:`log_prob` maps :math:`(N, d)` to
        :math:`(N, \texttt{n\_classes})`; :meth:`predict` to :math:`(N)`.

    Examples:
        >>> _ = torch.manual_seed(0)
        >>> asm = AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[2, 6], div_value=2.0)
        >>> [name for name, _ in asm.named_parameters()]
        ['head.weight', 'tail.0.0.weight', 'tail.0.1.weight', 'tail.1.0.weight', 'tail.1.1.weight']
        >>> x, target = torch.randn(3, 8), torch.tensor([0, 4, 9])
        >>> out = asm(x, target)
        >>> out.output
        tensor([-1.8012, -2.3387, -2.7656], grad_fn=<AddBackward0>)
        >>> out.loss
        tensor(2.3019, grad_fn=<MeanBackward0>)
        >>> theirs = torch.nn.AdaptiveLogSoftmaxWithLoss(8, 10, cutoffs=[2, 6], div_value=2.0)
        >>> theirs.load_state_dict(asm.state_dict())
        <All keys matched successfully>
        >>> theirs(x, target).loss
        tensor(2.3019, grad_fn=<MeanBackward0>)
        >>> asm.predict(x)
        tensor([1, 0, 0])

    Defined in :doc:`/chapters/04_3_adaptive_softmax`.
    """

    in_features: int
    n_classes: int
    cutoffs: list[int]
    div_value: float
    head_bias: bool
    head: nn.Linear
    tail: nn.ModuleList

    def __init__(self, in_features: int, n_classes: int, cutoffs: Sequence[int],
                 div_value: float = 4.0, head_bias: bool = False, device=None,
                 dtype=None) -> None:
        factory_kwargs = {"device": device, "dtype": dtype}
        super().__init__()
        cutoffs = list(cutoffs)
        if len(cutoffs) == 0:
            raise ValueError("cutoffs should be a sequence of length larger than 0")
        if (cutoffs != sorted(cutoffs) or min(cutoffs) <= 0 or max(cutoffs) > n_classes - 1
                or len(set(cutoffs)) != len(cutoffs) or any(int(c) != c for c in cutoffs)):
            raise ValueError(
                "cutoffs should be a sequence of unique, positive integers sorted in an "
                "increasing order, where each value is between 1 and n_classes-1 "
                f"(n_classes={n_classes}, got cutoffs={cutoffs})"
            )
        self.in_features = in_features
        self.n_classes = n_classes
        self.cutoffs = cutoffs + [n_classes]
        self.div_value = div_value
        self.head_bias = head_bias
        self.shortlist_size = self.cutoffs[0]
        self.n_clusters = len(self.cutoffs) - 1
        self.head_size = self.shortlist_size + self.n_clusters
        # torch's layers, names and creation order: the same seed gives the same weights,
        # and state_dict keys (head.weight, tail.k.0.weight, tail.k.1.weight) match
        self.head = nn.Linear(in_features, self.head_size, bias=head_bias, **factory_kwargs)
        self.tail = nn.ModuleList()
        for i in range(self.n_clusters):
            hsz = int(in_features // (div_value ** (i + 1)))
            osz = self.cutoffs[i + 1] - self.cutoffs[i]
            self.tail.append(nn.Sequential(
                nn.Linear(in_features, hsz, bias=False, **factory_kwargs),
                nn.Linear(hsz, osz, bias=False, **factory_kwargs),
            ))

    def reset_parameters(self) -> None:
        """Re-draw every weight as ``__init__`` does (``nn.Linear``'s initialisation)."""
        self.head.reset_parameters()
        for i2h, h2o in self.tail:
            i2h.reset_parameters()
            h2o.reset_parameters()

    def forward(self, input_: Tensor, target_: Tensor) -> _ASMoutput:
        """Each target's log-probability and their mean negative, as ``(output, loss)``."""
        input, target = _batched(input_, target_)
        batch_size = target.size(0)
        output = input.new_zeros(batch_size)
        # the head column each row reads: its own class, or the cluster that holds it
        gather_inds = target.new_empty(batch_size)
        used_rows = 0
        for i, (low, high) in enumerate(itertools.pairwise([0, *self.cutoffs])):
            target_mask = (target >= low) & (target < high)
            rows = target_mask.nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            if i == 0:
                gather_inds.index_copy_(0, rows, target[target_mask])
            else:
                gather_inds.index_fill_(0, rows, self.shortlist_size + i - 1)
                cluster_output = self.tail[i - 1](input.index_select(0, rows))
                local = target_log_prob(cluster_output, target[target_mask] - low)
                output = output.index_copy(0, rows, local)
            used_rows += rows.numel()
        if used_rows != batch_size:
            raise RuntimeError(
                f"Target values should be in [0, {self.n_classes - 1}], "
                f"but values in range [{target.min().item()}, {target.max().item()}] "
                "were found. "
            )
        output = output + target_log_prob(self.head(input), gather_inds)
        loss = (-output).mean()
        return _ASMoutput(output if target_.dim() else output.squeeze(0), loss)

    def _get_full_log_prob(self, input: Tensor, head_output: Tensor) -> Tensor:
        """log p of every class: the head's shortlist columns, then each cluster's
        log-softmax plus the head's log-probability of that cluster."""
        _require_rows("log_prob", input)
        head_logprob = log_softmax(head_output, 1)
        parts = [head_logprob[:, :self.shortlist_size]]
        for i, cluster in enumerate(self.tail):
            cluster_logprob = log_softmax(cluster(input), 1)
            parts.append(cluster_logprob + head_logprob[:, self.shortlist_size + i].unsqueeze(1))
        return torch.cat(parts, 1)

    def log_prob(self, input: Tensor) -> Tensor:
        r"""Log-probabilities of all classes, :math:`(N, d) \to (N, \texttt{n\_classes})`.

        Examples:
            >>> asm = AdaptiveLogSoftmaxWithLoss(4, 6, cutoffs=[3])
            >>> asm.log_prob(torch.zeros(2, 4)).exp().detach()
            tensor([[0.2500, 0.2500, 0.2500, 0.0833, 0.0833, 0.0833],
                    [0.2500, 0.2500, 0.2500, 0.0833, 0.0833, 0.0833]])
        """
        return self._get_full_log_prob(input, self.head(input))

    def predict(self, input: Tensor) -> Tensor:
        r"""The most probable class of each row, :math:`(N, d) \to (N)`: the same as
        ``self.log_prob(input).argmax(dim=1)``, but the tails are scored only for the rows
        whose best head entry is a cluster.

        Examples:
            >>> asm = AdaptiveLogSoftmaxWithLoss(4, 6, cutoffs=[3])
            >>> asm.predict(torch.zeros(2, 4))
            tensor([0, 0])
        """
        head_output = self.head(input)
        output = torch.argmax(head_output, dim=1)
        not_in_shortlist = output >= self.shortlist_size
        if not not_in_shortlist.any():
            return output
        if not_in_shortlist.all():
            return torch.argmax(self._get_full_log_prob(input, head_output), dim=1)
        log_prob = self._get_full_log_prob(input[not_in_shortlist], head_output[not_in_shortlist])
        output[not_in_shortlist] = torch.argmax(log_prob, dim=1)
        return output


def _batched(input: Tensor, target: Tensor) -> tuple[Tensor, Tensor]:
    """torch's shape checks, then ``(input, target)`` as a batch: ``(d), ()`` -> ``(1, d), (1)``."""
    if target.dim() == 1:
        if input.size(0) != target.size(0):
            raise RuntimeError(
                "Input and target should have the same size in the batch dimension. "
                f"(input of shape {tuple(input.shape)}, target of shape {tuple(target.shape)})"
            )
        if input.dim() != 2:
            raise RuntimeError(
                "1D target tensor expects 2D input tensors, "
                f"but found inputs with size {input.size()}"
            )
        return input, target
    if target.dim() == 0:
        if input.dim() != 1:
            raise RuntimeError(
                "0D target tensor expects 1D input tensors, "
                f"but found inputs with size {input.size()}"
            )
        return input.unsqueeze(0), target.unsqueeze(0)
    raise RuntimeError(
        "0D or 1D target tensor expected, multi-target not supported "
        f"(target of shape {tuple(target.shape)})"
    )


def _require_rows(method: str, input: Tensor) -> None:
    """``log_prob`` and ``predict`` take a batch ``(N, in_features)``; torch refuses a single
    row with the IndexError of its ``log_softmax(..., dim=1)`` and any other rank with a
    RuntimeError."""
    if input.dim() == 2:
        return
    if input.dim() < 2:
        raise IndexError(
            f"Dimension out of range (expected to be in range of [-1, 0], but got 1): "
            f"{method} expects input of shape (N, in_features), got {tuple(input.shape)}"
        )
    raise RuntimeError(
        f"{method} expects input of shape (N, in_features), got {tuple(input.shape)}"
    )
