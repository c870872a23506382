"""Documents, search results and the RAGProvider (vector store) contract."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar, Literal, get_args

from pydantic import BaseModel, Field

from pepperpy.core import PepperpyPlugin, close_guard, open_guard, requires_open
from pepperpy.embeddings import EmbeddingProvider, Vector
from pepperpy.errors import ConfigError, InvalidInputError

# A metadata filter: {"key": value} matches equal values, {"key": [v1, v2]} any of them; keys are ANDed.
Filter = dict[str, Any]
# How pepper.rag.search and pepper.ask rank: by meaning (vectors), by the query's words (the store's keyword
# search), or both fused by reciprocal rank fusion (pepperpy.ranking.fuse).
SearchMode = Literal["vector", "keyword", "hybrid"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)


class Document(BaseModel):
    """A piece of text with a stable id: re-adding the same id updates it."""

    id: str
    text: str
    metadata: dict[str, Any] = Field(default_factory=dict)


class SearchResult(BaseModel):
    document: Document
    # higher is closer: cosine similarity (vector search), the store's relevance such as BM25 (keyword search),
    # or the fused reciprocal-rank score (hybrid); compare scores within one result list only
    score: float


class RAGProvider(PepperpyPlugin):
    """A vector store: add, search, delete, count. Texts are embedded with its ``embeddings`` dependency."""

    category: ClassVar[str] = "rag"
    wrapped_methods: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "initialize": open_guard,
        "cleanup": close_guard,
        **dict.fromkeys(("add", "search", "keyword_search", "delete", "count", "ids"), requires_open),
    }
    # Every store embeds texts: the facade's embeddings, else the default ones (pepperpy/_dependencies.py).
    declared_dependencies: ClassVar[tuple[dict[str, Any], ...]] = ({"type": "embeddings"},)

    def use_embeddings(self, embeddings: EmbeddingProvider) -> None:
        """Embed texts with ``embeddings``; it becomes a dependency, opened before this store."""
        self.set_dependency("embeddings", embeddings)

    @property
    def embeddings(self) -> EmbeddingProvider:
        embeddings = self.dependency("embeddings")
        if embeddings is None:
            raise ConfigError(
                f"{self.plugin_id}: no embeddings provider is attached; use PepperPy().with_rag(...), "
                "declare {'type': 'embeddings'} in its dependencies, or call use_embeddings()"
            )
        return embeddings  # type: ignore[return-value]

    @property
    def embedding_model(self) -> str:
        """The model id recorded with stored vectors (``vectors`` when they were given directly)."""
        embeddings = self.dependency("embeddings")
        return embeddings.model_id if embeddings is not None else "vectors"  # type: ignore[attr-defined]

    async def embed_texts(self, texts: list[str]) -> list[Vector]:
        return await self.embeddings.embed(texts)

    async def query_vector(self, query: str | Vector) -> Vector:
        """The vector to search with: a text query is embedded, a vector passes through."""
        if not isinstance(query, str):
            return query
        if not query.strip():
            raise InvalidInputError(f"{self.plugin_id}: the search query is empty")
        return (await self.embed_texts([query]))[0]

    @abc.abstractmethod
    async def add(self, documents: list[Document], vectors: list[Vector] | None = None) -> None:
        """Insert or update ``documents`` (by id); ``vectors`` skip the embedding step."""

    @abc.abstractmethod
    async def search(self, query: str | Vector, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        """The ``k`` closest documents (an empty store gives ``[]``)."""

    @abc.abstractmethod
    async def delete(self, ids: list[str]) -> None:
        """Remove documents by id."""

    @abc.abstractmethod
    async def count(self) -> int:
        """How many documents the store holds."""

    async def keyword_search(self, query: str, k: int = 5, filter: Filter | None = None) -> list[SearchResult] | None:
        """The ``k`` documents that best match the words of ``query``, best first; None when the store has no
        keyword search (then ``mode="keyword"`` is an error and ``mode="hybrid"`` ranks by vectors alone).

        ``query`` is the user's text, never query syntax: a store escapes it (quotes, ``-``, ``AND``/``NOT``,
        ``E_CONN-42`` are plain words). A document matches when it holds any of the query's words (OR), ranked by
        the store's relevance (BM25, ``ts_rank``...; higher is better). ``filter`` applies as in ``search``; an
        empty store, or no word matching, gives ``[]``.
        """
        return None

    async def ids(self, filter: Filter) -> list[str] | None:
        """The ids of the stored documents whose metadata matches ``filter``; None when the store cannot list them
        (then ``pepper.rag.add`` cannot remove the chunks a changed file no longer has, and logs so)."""
        return None


def check_vectors(who: str, documents: list[Document], vectors: list[Vector]) -> None:
    if len(documents) != len(vectors):
        raise ConfigError(f"{who}: {len(documents)} documents but {len(vectors)} vectors")
    empty = [d.id for d in documents if not d.text.strip()]
    if empty:
        raise ConfigError(f"{who}: documents with empty text: {', '.join(empty[:5])}; drop them first")


def check_filter(who: str, filter: Filter | None) -> None:
    """Refuse what no store reads as a filter: anything but a dict, and a dict value (an operator, ``{"$gt": 1}``),
    which would otherwise match nothing without a word. Filters match equal values, or any of a list."""
    if filter is None:
        return
    if not isinstance(filter, dict):
        raise InvalidInputError(f"{who}: filter must be a dict of metadata key to value, not {type(filter).__name__}")
    for key, value in filter.items():
        if isinstance(value, dict):
            raise InvalidInputError(
                f"{who}: filter {key!r}: {value!r} looks like an operator, and filters only match equal values "
                f"({{{key!r}: 2}}) or any of a list ({{{key!r}: [2, 3]}}); for a range, list its values or filter "
                "the results in Python"
            )


def check_mode(who: str, mode: str) -> SearchMode:
    """``mode`` if it is one of SEARCH_MODES, else a clear InvalidInputError naming ``who``."""
    if mode not in SEARCH_MODES:
        raise InvalidInputError(
            f"{who}: unknown search mode {mode!r}; use one of {', '.join(repr(m) for m in SEARCH_MODES)}"
        )
    return mode  # type: ignore[return-value]


def check_same_embeddings(
    who: str, where: str, stored: tuple[str, int | None] | None, current: tuple[str, int]
) -> None:
    """Refuse vectors of another embedding model or dimension than the ``(model, dimension)`` that ``where`` holds.

    ``stored`` is None for a store without vectors yet; a stored dimension of None is not compared. Scores between
    vectors of two models (or two sizes) mean nothing, so a store never mixes them.
    """
    if stored is None:
        return
    (stored_model, stored_dimension), (model, dimension) = stored, current
    if stored_model == model and stored_dimension in (None, dimension):
        return
    held = f"{stored_dimension}-dimension vectors" if stored_dimension else "vectors"
    raise ConfigError(
        f"{who}: {where} holds {held} from {stored_model!r}, but the current embeddings give {dimension}-dimension "
        f"vectors from {model!r}, and vectors of two models or sizes cannot be compared; use the embeddings the "
        "store was built with, or another path or collection for these (or move the store away and add the "
        "documents again)"
    )


__all__ = [
    "SEARCH_MODES",
    "Document",
    "Filter",
    "RAGProvider",
    "SearchMode",
    "SearchResult",
    "check_filter",
    "check_mode",
    "check_same_embeddings",
    "check_vectors",
]
