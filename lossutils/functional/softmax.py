"""(filled in by the softmax work)."""

__all__: list[str] = []
