"""Documents, search results and the RAGProvider (vector store) contract."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field, PrivateAttr

from pepperpy.core import Provider
from pepperpy.embeddings import EmbeddingProvider, Vector
from pepperpy.errors import ConfigError

# A metadata filter: {"key": value} matches equal values, {"key": [v1, v2]} any of them; keys are ANDed.
Filter = dict[str, Any]


class Document(BaseModel):
    """A piece of text with a stable id: re-adding the same id updates it."""

    id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchResult(BaseModel):
    document: Document
    score: float  # cosine similarity, higher is closer


class RAGProvider(Provider):
    """A vector store: add, search, delete, count. Texts are embedded with the attached embeddings provider."""

    category: ClassVar[str] = "rag"

    _embeddings: EmbeddingProvider | None = PrivateAttr(default=None)

    def use_embeddings(self, embeddings: EmbeddingProvider) -> None:
        self._embeddings = embeddings

    @property
    def embeddings(self) -> EmbeddingProvider:
        if self._embeddings is None:
            raise ConfigError(f"{self.plugin_id}: no embeddings provider is attached; use PepperPy().with_rag(...)")
        return self._embeddings

    @property
    def embedding_model(self) -> str:
        """The model id recorded with stored vectors (``vectors`` when they were given directly)."""
        return self._embeddings.model_id if self._embeddings is not None else "vectors"

    async def embed_texts(self, texts: list[str]) -> list[Vector]:
        await self.embeddings.initialize()
        return await self.embeddings.embed(texts)

    async def query_vector(self, query: str | Vector) -> Vector:
        """The vector to search with: a text query is embedded, a vector passes through."""
        if not isinstance(query, str):
            return query
        if not query.strip():
            raise ConfigError(f"{self.plugin_id}: the search query is empty")
        return (await self.embed_texts([query]))[0]

    async def add(self, documents: list[Document], vectors: list[Vector] | None = None) -> None:
        """Insert or update ``documents`` (by id); ``vectors`` skip the embedding step."""
        raise NotImplementedError

    async def search(self, query: str | Vector, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        raise NotImplementedError

    async def delete(self, ids: list[str]) -> None:
        raise NotImplementedError

    async def count(self) -> int:
        raise NotImplementedError


def check_vectors(who: str, documents: list[Document], vectors: list[Vector]) -> None:
    if len(documents) != len(vectors):
        raise ConfigError(f"{who}: {len(documents)} documents but {len(vectors)} vectors")
    empty = [d.id for d in documents if not d.text.strip()]
    if empty:
        raise ConfigError(f"{who}: documents with empty text: {', '.join(empty[:5])}; drop them first")


def dimension_mismatch(who: str, stored_model: str, stored_dim: int | None, model: str, dim: int, where: str) -> ConfigError:
    """The error for vectors of one embedding model meeting a store built with another."""
    held = f"{stored_dim}-dimension vectors" if stored_dim else "vectors"
    return ConfigError(
        f"{who}: {where} holds {held} from {stored_model!r}, but the current embeddings are "
        f"{dim}-dimension vectors from {model!r}; use the same embeddings, or a new collection or path"
    )


__all__ = ["Document", "Filter", "RAGProvider", "SearchResult", "check_vectors", "dimension_mismatch"]
