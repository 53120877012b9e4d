"""(filled in by the binary work)."""

__all__: list[str] = []
