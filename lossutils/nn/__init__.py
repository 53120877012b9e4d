"""``lossutils.nn``: the loss module classes, on ``_Loss`` / ``_WeightedLoss``.

Same constructor arguments, buffers and ``forward`` as ``torch.nn``.
"""

from .base import _Loss, _WeightedLoss
from .binary import *  # noqa: F403
from .cross_entropy import *  # noqa: F403
from .ctc import *  # noqa: F403
from .linear_cross_entropy import *  # noqa: F403
from .margin import *  # noqa: F403
from .probabilistic import *  # noqa: F403
from .regression import *  # noqa: F403
from .softmax import *  # noqa: F403
from . import binary, cross_entropy, ctc, linear_cross_entropy, margin, probabilistic, regression, softmax

__all__ = ["_Loss", "_WeightedLoss"] + sorted(
    name
    for module in (binary, cross_entropy, ctc, linear_cross_entropy, margin, probabilistic, regression, softmax)
    for name in module.__all__
)
