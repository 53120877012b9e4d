"""``lossutils.functional``: every loss of ``torch.nn.functional``, rebuilt.

Same names, signatures, defaults, dtypes, shapes, warnings and errors as
torch; each loss is a ``torch.autograd.Function`` with a hand-written backward.
The family modules (``regression``, ``binary``, ...) hold the Functions; this
namespace re-exports the public functions, exactly like torch's.
"""

import importlib as _importlib

_FAMILIES = ("softmax", "cross_entropy", "regression", "binary", "probabilistic", "margin", "ctc",
             "linear_cross_entropy")
# Imported through importlib: several family modules share their name with the
# function they define (softmax, cross_entropy, ...), and after the re-export
# below the package attribute is the function, as in torch.
_modules = [_importlib.import_module(f"{__name__}.{family}") for family in _FAMILIES]
__all__ = sorted(name for module in _modules for name in module.__all__)
globals().update({name: getattr(module, name) for module in _modules for name in module.__all__})
del _importlib, _modules
