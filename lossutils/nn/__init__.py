"""``lossutils.nn``: the loss module classes, on ``_Loss`` / ``_WeightedLoss``.

Same constructor arguments, buffers and ``forward`` as ``torch.nn``.
"""

import importlib as _importlib

from .base import _Loss, _WeightedLoss

_FAMILIES = ("softmax", "cross_entropy", "regression", "binary", "probabilistic", "margin", "ctc",
             "linear_cross_entropy")
_modules = [_importlib.import_module(f"{__name__}.{family}") for family in _FAMILIES]
__all__ = ["_Loss", "_WeightedLoss"] + sorted(name for module in _modules for name in module.__all__)
globals().update({name: getattr(module, name) for module in _modules for name in module.__all__})
del _importlib, _modules
