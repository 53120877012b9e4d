"""(filled in by the linear_cross_entropy work)."""

__all__: list[str] = []
