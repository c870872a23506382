"""Documents, search results and the RAGProvider (vector store) contract."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, Field

from pepperpy.core import Provider


class Document(BaseModel):
    """A piece of text with a stable id: re-adding the same id updates it."""

    id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchResult(BaseModel):
    document: Document
    score: float


class RAGProvider(Provider):
    """A vector store: add, search, delete, count."""

    category: ClassVar[str] = "rag"

    async def add(self, documents: list[Document]) -> None:
        raise NotImplementedError

    async def search(
        self, query: str | list[float], k: int = 5, filter: dict[str, Any] | None = None
    ) -> list[SearchResult]:
        raise NotImplementedError

    async def delete(self, ids: list[str]) -> None:
        raise NotImplementedError

    async def count(self) -> int:
        raise NotImplementedError


__all__ = ["Document", "RAGProvider", "SearchResult"]
