"""``lossutils.nn``: the loss module classes, on ``_Loss`` / ``_WeightedLoss``.

Same constructor arguments, buffers and ``forward`` as ``torch.nn``.
"""

from .._reexport import reexport
from .base import _Loss, _WeightedLoss

__all__ = ["_Loss", "_WeightedLoss"] + reexport(globals(), (
    "softmax", "cross_entropy", "regression", "binary", "probabilistic", "soft_margin", "ranking",
    "multi_margin", "distance", "triplet", "ctc", "linear_cross_entropy", "adaptive"))
