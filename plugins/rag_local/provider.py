"""rag/local: the embedded default vector store (SQLite; exact numpy search, an approximate index past a threshold; FTS5 keywords), safe across processes."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

from pepperpy.plugins import file_lock
from pepperpy.embeddings import Vector
from pepperpy.errors import ProviderError
from pepperpy.rag import Document, Filter, RAGProvider, SearchResult, check_same_embeddings, check_vectors

from .store import INDEX_THRESHOLD, NotAStore, Store

T = TypeVar("T")
DAMAGED = ("SQLITE_CORRUPT", "SQLITE_NOTADB")  # sqlite3 error names of a file that is not a sound store


class LocalRAGProvider(RAGProvider):
    """Persists to ``path`` (default ``<PEPPERPY_HOME>/rag/<collection>.sqlite3``)."""

    path: Path | None = None
    collection: str = "default"
    lock_timeout: float = 60.0
    index_threshold: int = INDEX_THRESHOLD

    @property
    def file(self) -> Path:
        return self.path or self.data_path("rag", f"{self.collection}.sqlite3")

    async def initialize(self) -> None:
        await self.import_modules("numpy")
        if self.index_threshold < 1:
            raise ProviderError(f"{self.plugin_id}: index_threshold must be a positive number of chunks, not {self.index_threshold}")
        self._store = await self._run("open", Store, self.file, self.logger, self.index_threshold)

    async def cleanup(self) -> None:
        store, self._store = self._store, None
        await asyncio.to_thread(store.close)

    async def _run(self, doing: str, function: Callable[..., T], *args: Any) -> T:
        """``function(*args)`` in a worker thread; SQLite and file errors become a ProviderError naming the file."""
        try:
            return await asyncio.to_thread(function, *args)
        except NotAStore as exc:
            raise self._not_a_store(doing, exc) from None
        except (sqlite3.Error, OSError) as exc:
            raise self._failure(doing, exc) from exc

    def _not_a_store(self, doing: str, exc: NotAStore) -> ProviderError:
        if exc.foreign:
            fix = "rag/local leaves it untouched: move it away or pass another path="
        else:
            fix = (
                "move it away (or delete it, losing its documents) and add the documents again, or pass another path="
            )
        return ProviderError(f"{self.plugin_id}: the store {self.file} failed to {doing} ({exc}); {fix}")

    def _failure(self, doing: str, exc: sqlite3.Error | OSError) -> ProviderError:
        reason = str(exc)
        if isinstance(exc, OSError) and exc.strerror and exc.filename:
            reason = f"{exc.strerror}: {exc.filename}"
        fix = self._fix(doing, exc)
        return ProviderError(f"{self.plugin_id}: the store {self.file} failed to {doing} ({reason}); {fix}")

    def _fix(self, doing: str, exc: sqlite3.Error | OSError) -> str:
        if getattr(exc, "sqlite_errorname", "") in DAMAGED:
            return (
                "the file is damaged or not a rag/local store: move it away (or delete it, losing its documents) "
                "and add the documents again, or pass another path="
            )
        if isinstance(exc, OSError) or doing == "open":
            return f"make {self.file.parent} a writable folder with free space, or pass another path="
        return "check that the disk has free space and that no other program holds or changes the file, then retry"

    def _check_model(self, store: Store, dimension: int) -> None:
        current = (self.embedding_model, dimension)
        check_same_embeddings(self.plugin_id, f"the store {self.file}", store.model(), current)

    async def add(self, documents: list[Document], vectors: list[Vector] | None = None) -> None:
        import numpy as np

        if not documents:
            return
        vectors = vectors if vectors is not None else await self.embed_texts([d.text for d in documents])
        check_vectors(self.plugin_id, documents, vectors)
        matrix = np.asarray(vectors, dtype=np.float32)
        matrix /= np.clip(np.linalg.norm(matrix, axis=1, keepdims=True), 1e-12, None)
        store = self._store
        rows = [(d.id, d.text, d.metadata, matrix[i]) for i, d in enumerate(documents)]
        await self._run("add", self._write, store, lambda: store.upsert(rows, self.embedding_model), matrix.shape[1])

    def _write(self, store: Store, action: Any, dimension: int | None = None) -> None:
        """One write under the store's file lock: other processes wait, nobody sees half of it."""
        try:
            with file_lock(self.file.with_name(self.file.name + ".lock"), self.lock_timeout):
                if dimension is not None:
                    self._check_model(store, dimension)
                action()
        except TimeoutError as exc:
            raise ProviderError(f"{self.plugin_id}: {exc}") from None

    async def search(self, query: str | Vector, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        import numpy as np

        query = await self.query_vector(query)
        vector = np.asarray(query, dtype=np.float32)
        vector /= max(float(np.linalg.norm(vector)), 1e-12)
        store = self._store

        def checked_search() -> list[tuple[str, str, dict, float]]:
            self._check_model(store, len(vector))  # reads the store: off the event loop, like the search
            return store.search(vector, k, filter)

        hits = await self._run("search", checked_search)
        return [SearchResult(document=Document(id=i, text=t, metadata=m), score=s) for i, t, m, s in hits]

    async def keyword_search(self, query: str, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        """SQLite FTS5 with BM25 over the documents' text (words.py); ``filter`` as in ``search``."""
        store = self._store
        hits = await self._run("search", store.keyword_search, query, k, filter)
        return [SearchResult(document=Document(id=i, text=t, metadata=m), score=s) for i, t, m, s in hits]

    async def delete(self, ids: list[str]) -> None:
        store = self._store
        await self._run("delete", self._write, store, lambda: store.delete(ids))

    async def count(self) -> int:
        store = self._store
        return await self._run("count", store.count)

    async def ids(self, filter: Filter) -> list[str]:
        store = self._store
        return await self._run("list ids", store.ids, filter)
