"""(filled in by the softmax_ce work)."""

__all__: list[str] = []
