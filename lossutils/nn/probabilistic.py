"""(filled in by the probabilistic work)."""

__all__: list[str] = []
