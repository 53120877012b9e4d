"""The loss hierarchy: ``_Loss`` stores ``reduction``; ``_WeightedLoss`` adds a ``weight`` buffer.

As tiny as torch's own (``torch/nn/modules/loss.py``), and built on
``torch.nn.Module`` directly, never on torch's loss classes.
"""

from __future__ import annotations

from torch import Tensor, nn

from .. import _reduction


class _Loss(nn.Module):
    """Base of every loss module: resolves ``reduction`` (and the legacy flags) once.

    Examples:
        >>> _Loss(reduction="sum").reduction
        'sum'
    """

    reduction: str

    def __init__(self, size_average=None, reduce=None, reduction: str = "mean") -> None:
        super().__init__()
        if size_average is not None or reduce is not None:
            self.reduction = _reduction.legacy_get_string(size_average, reduce)
        else:
            self.reduction = reduction


class _WeightedLoss(_Loss):
    """A loss with an optional per-class ``weight``, registered as a buffer.

    A buffer, not a parameter: it moves with ``.to(device)`` and is saved in
    ``state_dict()``, but no optimiser ever updates it.

    Examples:
        >>> loss = _WeightedLoss(weight=torch.tensor([1.0, 3.0]))
        >>> list(loss.state_dict()), list(loss.parameters())
        (['weight'], [])
    """

    weight: Tensor | None

    def __init__(self, weight: Tensor | None = None, size_average=None, reduce=None,
                 reduction: str = "mean") -> None:
        super().__init__(size_average, reduce, reduction)
        self.register_buffer("weight", weight)
