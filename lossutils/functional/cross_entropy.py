"""(filled in by the cross_entropy work)."""

__all__: list[str] = []
