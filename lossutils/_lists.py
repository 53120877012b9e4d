"""Small tensors from Python lists, built in C.

``torch.tensor(values)`` converts a list element by element through Python (about
100 ns each: 12 us for a hundred ints). Losses that build index tensors from Python
ints on every call (CTC's lattice) pay that on every step. :func:`tensor_of` packs
the numbers with :mod:`array` (a C loop) and copies them into a tensor of its own,
so the result owns its memory like ``torch.tensor``'s does.
"""

from __future__ import annotations

from array import array

import torch
from torch import Tensor

_CODES = {torch.float32: "f", torch.float64: "d", torch.int32: "i", torch.int64: "q"}


def tensor_of(values: list, dtype: torch.dtype, device=None) -> Tensor:
    """``torch.tensor(values, dtype=dtype, device=device)`` for a flat list of numbers,
    converted in C for float32/64 and int32/64 (by ``torch.tensor`` for other dtypes).

    >>> tensor_of([1, 2, 3], torch.int32)
    tensor([1, 2, 3], dtype=torch.int32)
    """
    if not values:
        return torch.empty(0, dtype=dtype, device=device)
    if dtype not in _CODES:  # (no array type code: float16, bfloat16, ...)
        return torch.tensor(values, dtype=dtype, device=device)
    host = torch.frombuffer(array(_CODES[dtype], values), dtype=dtype)
    if device is None or torch.device(device).type == "cpu":
        return host.clone()  # the array is a temporary: the tensor gets its own copy
    return host.to(device)
