"""``lossutils.functional``: every loss of ``torch.nn.functional``, rebuilt.

Same names, signatures, defaults, dtypes, shapes, warnings and errors as
torch; each loss is a ``torch.autograd.Function`` with a hand-written backward.
"""

from .binary import *  # noqa: F403
from .cross_entropy import *  # noqa: F403
from .ctc import *  # noqa: F403
from .linear_cross_entropy import *  # noqa: F403
from .margin import *  # noqa: F403
from .probabilistic import *  # noqa: F403
from .regression import *  # noqa: F403
from .softmax import *  # noqa: F403
from . import binary, cross_entropy, ctc, linear_cross_entropy, margin, probabilistic, regression, softmax

__all__ = sorted(
    name
    for module in (binary, cross_entropy, ctc, linear_cross_entropy, margin, probabilistic, regression, softmax)
    for name in module.__all__
)
