"""(filled in by the kl work)."""

__all__: list[str] = []
