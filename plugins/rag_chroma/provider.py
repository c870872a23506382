"""rag/chroma: Chroma embedded (``path=``) or client/server (``host=``, ``port=``), same contract as rag/local.

Chroma never embeds here: collections are opened with ``embedding_function=None`` (so a
text query can never trigger a model download) and get PepperPy's vectors. Writes use
``upsert`` (``add`` silently ignores existing ids) in batches below the client's limit,
and embedded writers are serialized with a file lock (two processes writing one
embedded collection corrupt its index).

Keyword search: Chroma has no ranked full-text search, only ``where_document`` filters. So the
documents holding any query word (``$contains``, a few casings each, as it is case-sensitive) are
fetched, at most ``keyword_candidates`` per word, and ranked with PepperPy's BM25
(``pepperpy.ranking.bm25``). Unlike re-ranking the vector search's candidates, this finds an exact
code or name that the vectors missed; unlike rag/local's FTS5 it has no stemming, and a word found
in more than ``keyword_candidates`` documents is ranked among those only.
"""

from __future__ import annotations

import asyncio
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any

from pepperpy.embeddings import Vector
from pepperpy.errors import ConfigError, ProviderError
from pepperpy.plugins import file_lock
from pepperpy.rag import Document, Filter, RAGProvider, SearchResult, check_same_embeddings, check_vectors
from pepperpy.ranking import WORD, STOP_WORDS, bm25


def chroma_where(filter: Filter | None) -> dict[str, Any] | None:
    """PepperPy's filter ({key: value or [values]}, keys ANDed) as a Chroma ``where``."""
    if not filter:
        return None
    clauses = [{key: {"$in": value} if isinstance(value, list) else value} for key, value in filter.items()]
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


def contains(word: str) -> dict[str, Any]:
    """A ``where_document`` matching documents holding ``word`` as typed, lowercase, capitalized or uppercase
    (``$contains`` is case-sensitive)."""
    clauses = [{"$contains": form} for form in dict.fromkeys((word, word.lower(), word.capitalize(), word.upper()))]
    return clauses[0] if len(clauses) == 1 else {"$or": clauses}


class ChromaRAGProvider(RAGProvider):
    """A Chroma collection; ``host`` set means a server, otherwise an embedded store at ``path``."""

    path: Path | None = None
    host: str | None = None
    port: int = 8000
    collection: str = "pepperpy"
    connect_attempts: int = 3
    lock_timeout: float = 60.0
    keyword_candidates: int = 1000

    @property
    def where(self) -> str:
        return f"Chroma server {self.host}:{self.port}" if self.host else f"Chroma store {self.store_path}"

    @property
    def store_path(self) -> Path:
        return self.path or self.data_path("chroma")

    async def initialize(self) -> None:
        self._dimension: int | None = None  # of the vectors the collection holds, once seen
        await self.import_modules("chromadb")
        self._client = await self._call(self._connect)
        self._collection = await self._call(
            self._client.get_or_create_collection, self.collection, embedding_function=None,
            metadata={"hnsw:space": "cosine", "pepperpy_model": self.embedding_model},
        )

    def _connect(self) -> Any:
        import chromadb

        if not self.host:
            self._make_store_folder()
            return chromadb.PersistentClient(path=str(self.store_path))
        for attempt in range(1, self.connect_attempts + 1):
            try:
                return chromadb.HttpClient(host=self.host, port=self.port)
            except ValueError as exc:  # what chromadb raises for a server it cannot reach
                if attempt == self.connect_attempts:
                    raise ProviderError(
                        f"{self.plugin_id}: cannot reach the {self.where} after {attempt} attempts ({exc}); "
                        f"start it with `chroma run --host {self.host} --port {self.port}` or fix host/port"
                    ) from None
                time.sleep(0.5 * attempt)
        raise AssertionError("unreachable")

    def _make_store_folder(self) -> None:
        try:
            self.store_path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            reason = f"{exc.strerror}: {exc.filename}" if exc.strerror and exc.filename else str(exc)
            raise ProviderError(
                f"{self.plugin_id}: cannot create the {self.where} ({reason}); pass a path= in a writable folder"
            ) from exc

    async def cleanup(self) -> None:
        self._collection = self._client = None

    def _writing(self) -> Any:
        if self.host:
            return nullcontext()
        return file_lock(self.store_path / ".pepperpy-write.lock", self.lock_timeout)

    def _check_model(self, collection: Any, dimension: int) -> None:
        """Vectors of another model (recorded in the collection's metadata when it was created) or of another
        dimension (that of the vectors it holds) are refused. Blocks: call it from a worker thread."""
        model = (collection.metadata or {}).get("pepperpy_model")
        if model is None:
            return  # not created by PepperPy: nothing recorded to compare with
        if self._dimension is None:
            held = collection.get(limit=1, include=["embeddings"])["embeddings"]
            self._dimension = len(held[0]) if held is not None and len(held) else None
        where = f"collection {self.collection!r} of the {self.where}"
        check_same_embeddings(self.plugin_id, where, (model, self._dimension), (self.embedding_model, dimension))

    def _upsert(self, collection: Any, documents: list[Document], vectors: list[Vector]) -> None:
        with self._writing():
            self._check_model(collection, len(vectors[0]))
            step = self._client.get_max_batch_size()
            for start in range(0, len(documents), step):
                batch = documents[start : start + step]
                collection.upsert(
                    ids=[d.id for d in batch],
                    documents=[d.text for d in batch],
                    metadatas=[d.metadata or None for d in batch],
                    embeddings=vectors[start : start + step],
                )
            self._dimension = len(vectors[0])

    async def _call(self, function: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return await asyncio.to_thread(function, *args, **kwargs)
        except (ConfigError, ProviderError):
            raise
        except Exception as exc:  # chromadb and httpx errors: keep the message, name the store
            raise ProviderError(
                f"{self.plugin_id}: the {self.where} failed: {type(exc).__name__}: {exc}; "
                "check the store (its folder, or the server and its log) and retry"
            ) from exc

    async def add(self, documents: list[Document], vectors: list[Vector] | None = None) -> None:
        if not documents:
            return
        vectors = vectors if vectors is not None else await self.embed_texts([d.text for d in documents])
        check_vectors(self.plugin_id, documents, vectors)
        collection = self._collection
        await self._call(self._upsert, collection, documents, [list(map(float, v)) for v in vectors])

    async def search(self, query: str | Vector, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        vector = list(map(float, await self.query_vector(query)))
        collection = self._collection

        def checked_query() -> Any:
            self._check_model(collection, len(vector))
            return collection.query(
                query_embeddings=[vector], n_results=k, where=chroma_where(filter),
                include=["documents", "metadatas", "distances"],
            )

        found = await self._call(checked_query)
        rows = zip(found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0])
        return [
            SearchResult(document=Document(id=i, text=text or "", metadata=meta or {}), score=1.0 - distance)
            for i, text, meta, distance in rows
        ]

    async def keyword_search(self, query: str, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        """Documents holding a word of ``query`` (``where_document``, word by word, so that a common word does
        not crowd out a rare one), ranked by BM25 in PepperPy."""
        typed = list(dict.fromkeys(WORD.findall(query)))
        query_words = [word for word in typed if word.lower() not in STOP_WORDS] or typed
        if not query_words or k <= 0:
            return []
        collection = self._collection

        def matching() -> tuple[dict[str, Document], int]:
            found: dict[str, Document] = {}
            for word in query_words:
                got = collection.get(
                    where=chroma_where(filter), where_document=contains(word), limit=self.keyword_candidates,
                    include=["documents", "metadatas"],
                )
                for i, text, meta in zip(got["ids"], got["documents"], got["metadatas"]):
                    found.setdefault(i, Document(id=i, text=text or "", metadata=meta or {}))
            return found, collection.count()

        found, total = await self._call(matching)
        return bm25(query, list(found.values()), total)[:k]

    async def delete(self, ids: list[str]) -> None:
        collection = self._collection

        def delete() -> None:
            with self._writing():
                collection.delete(ids=ids)

        await self._call(delete)

    async def count(self) -> int:
        collection = self._collection
        return await self._call(collection.count)

    async def ids(self, filter: Filter) -> list[str]:
        collection = self._collection
        found = await self._call(collection.get, where=chroma_where(filter), include=[])
        return list(found["ids"])
