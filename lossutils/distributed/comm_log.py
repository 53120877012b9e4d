"""Count what a piece of code communicates: every ``torch.distributed`` collective, with its bytes.

The collectives of ``torch.distributed`` (``all_reduce``, ``all_gather``, ...)
reach the dispatcher as ``c10d::`` operators, so a
:class:`~torch.utils._python_dispatch.TorchDispatchMode` sees each one with
its tensors, whoever issued it: the count needs no cooperation from the code
measured.

Defined in :doc:`/chapters/07_llm_scale`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils._python_dispatch import TorchDispatchMode

__all__ = ["Collective", "CollectiveLog"]


@dataclass(frozen=True)
class Collective:
    """One collective call as this rank saw it.

    ``sent_bytes``: the tensors this rank contributes (an all-reduce's buffer,
    an all-gather's input); ``received_bytes``: the tensors it gets back (the
    all-reduce's buffer again, all of an all-gather's outputs, its own included).
    """

    op: str
    shapes: tuple[tuple[int, ...], ...]
    dtype: torch.dtype
    sent_bytes: int
    received_bytes: int


def _tensors(value) -> list[torch.Tensor]:
    if isinstance(value, torch.Tensor):
        return [value]
    if isinstance(value, (list, tuple)):
        return [t for v in value for t in _tensors(v)]
    return []


def _nbytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


class CollectiveLog(TorchDispatchMode):
    """Records every collective issued while active, in ``calls`` (a list of :class:`Collective`).

    >>> import torch.distributed as dist  # doctest: +SKIP
    >>> with CollectiveLog() as log:  # doctest: +SKIP
    ...     dist.all_reduce(torch.ones(4))
    >>> log.calls[0].op, log.calls[0].sent_bytes  # doctest: +SKIP
    ('allreduce_', 16)
    """

    def __init__(self):
        super().__init__()
        self.calls: list[Collective] = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func.namespace == "c10d":
            named = dict(zip((a.name for a in func._schema.arguments), args, strict=False))
            named.update(kwargs)
            inputs = next((_tensors(named[k]) for k in ("input_tensors", "input_tensor", "tensors",
                                                        "tensor") if k in named), _tensors(args))
            outputs = next((_tensors(named[k]) for k in ("output_tensors", "output_tensor",
                                                         "output") if k in named), inputs)
            if inputs:
                self.calls.append(Collective(func._opname, tuple(tuple(t.shape) for t in inputs),
                                             inputs[0].dtype, _nbytes(inputs), _nbytes(outputs)))
        return func(*args, **kwargs)

    @property
    def sent_bytes(self) -> int:
        """Bytes this rank contributed, over all recorded calls."""
        return sum(c.sent_bytes for c in self.calls)

    def summary(self) -> dict[str, int]:
        """``{op: calls}`` and the total bytes sent and received."""
        out: dict[str, int] = {}
        for c in self.calls:
            out[c.op] = out.get(c.op, 0) + 1
        return {**out, "sent_bytes": self.sent_bytes,
                "received_bytes": sum(c.received_bytes for c in self.calls)}
