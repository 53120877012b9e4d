"""(filled in by the margin work)."""

__all__: list[str] = []
