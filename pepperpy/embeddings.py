"""The EmbeddingProvider contract."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

from pepperpy.core import PepperpyPlugin, close_guard, open_guard, requires_open

Vector = list[float]


class EmbeddingProvider(PepperpyPlugin):
    """Turns texts into vectors of a fixed dimension; batching happens inside. Implement ``embed``."""

    category: ClassVar[str] = "embeddings"
    wrapped_methods: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "initialize": open_guard,
        "cleanup": close_guard,
        "embed": requires_open,
    }

    @property
    def model_id(self) -> str:
        """Names the model behind the vectors; a vector store refuses to mix two models' vectors."""
        model = getattr(self, "model", None)
        return f"{self.plugin_id}:{model}" if model else self.plugin_id

    @abc.abstractmethod
    async def embed(self, texts: list[str]) -> list[Vector]:
        """One vector per text, in order."""

    async def embed_one(self, text: str) -> Vector:
        return (await self.embed([text]))[0]


__all__ = ["EmbeddingProvider", "Vector"]
