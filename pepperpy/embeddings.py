"""The EmbeddingProvider contract."""

from __future__ import annotations

from typing import ClassVar

from pepperpy.core import Provider

Vector = list[float]


class EmbeddingProvider(Provider):
    """Turns texts into vectors of a fixed dimension; batching happens inside."""

    category: ClassVar[str] = "embeddings"

    @property
    def model_id(self) -> str:
        """Names the model behind the vectors; a vector store refuses to mix two models' vectors."""
        model = getattr(self, "model", None)
        return f"{self.plugin_id}:{model}" if model else self.plugin_id

    async def embed(self, texts: list[str]) -> list[Vector]:
        raise NotImplementedError

    async def embed_one(self, text: str) -> Vector:
        return (await self.embed([text]))[0]


__all__ = ["EmbeddingProvider", "Vector"]
