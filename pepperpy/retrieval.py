"""``pepper.rag`` and ``pepper.ask``: adding and searching documents, and answering from them."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from pepperpy._loaders import Added, Skipped, to_chunks
from pepperpy._log import logger
from pepperpy.documents import CHUNK_OVERLAP, CHUNK_SIZE, Addable
from pepperpy.llm import GenerationResult, Message, MessageRole
from pepperpy.errors import ConfigError, InvalidInputError
from pepperpy.rag import Document, Filter, RAGProvider, SearchMode, SearchResult, check_filter, check_mode
from pepperpy.ranking import fuse

if TYPE_CHECKING:
    from pepperpy.chat import ProviderSource

ASK_PROMPT = (
    "Answer the question using only the passages below. "
    "If they do not contain the answer, say that you do not know.\n\n{passages}"
)
# ask(answer_without_sources=True) when the store found nothing.
NO_SOURCES_PROMPT = (
    "No passage of the user's documents matches the question. Answer from general knowledge, "
    "and say that the answer does not come from their documents."
)
# The mode of search() and ask() when none is given (hybrid measured at least as good: README, retrieval).
DEFAULT_MODE: SearchMode = "hybrid"
# Hybrid search fuses this many of each ranking (at least k): a document ranked low by one and high by the
# other still surfaces.
HYBRID_DEPTH = 20
# The Answer's content when the store found nothing and the model was not asked.
NO_SOURCES = "No passage in the store matches the question, so it was not answered."


class Answer(BaseModel):
    """An answer from ``pepper.ask`` with the passages it was given.

    No ``sources`` means the store found nothing: then ``result`` is None (the model was not
    asked) and ``content`` says so, unless ``ask(..., answer_without_sources=True)`` was used.
    """

    content: str
    sources: list[SearchResult] = Field(default_factory=list)
    result: GenerationResult | None = None

    def __str__(self) -> str:
        return self.content


class Retrieval:
    """The configured vector store, with loaders: ``await pepper.rag.add([...])``, ``await pepper.rag.search(q)``."""

    def __init__(self, source: ProviderSource):
        self._source = source

    def __repr__(self) -> str:
        return f"Retrieval({self.plugin_id})"

    @property
    def provider(self) -> RAGProvider:
        """The configured vector store itself (not necessarily open yet), like ``pepper.llm``."""
        return self._source.provider("rag")

    @property
    def plugin_id(self) -> str:
        return self.provider.plugin_id

    @property
    def name(self) -> str:
        return self.provider.name

    async def add(
        self,
        items: Addable | Iterable[Addable],
        chunk_size: int = CHUNK_SIZE,
        chunk_overlap: int = CHUNK_OVERLAP,
        *,
        loader: str | None = None,
        glob: str | None = None,
    ) -> Added:
        """Add a Document, a plain string, a local file (read by the loader plugin for its suffix, or ``loader=``,
        and chunked) or a folder (walked recursively, or the files matching ``glob``), or a list of these.

        Returns what was stored (a list of Documents) with ``skipped``: the files of folders that could not be
        loaded and why. A file given alone that cannot be loaded is a FileLoadError naming it, and then nothing
        is stored: everything is read before anything is stored. Adding a file again replaces its chunks and
        removes those it no longer has (listed in ``removed``).
        """
        manager = self._source.plugin_manager
        documents, skipped, sources = await to_chunks(items, loader, glob, chunk_size, chunk_overlap, manager)
        for skip in skipped:
            logger.warning("pepper.rag.add skipped {}: {}", skip.path, skip.reason)
        store = await self._source.ready("rag")
        await store.add(documents)
        removed = await self._remove_stale(store, sources, documents)
        return Added(documents, skipped, removed)

    async def _remove_stale(self, store: RAGProvider, sources: list[str], documents: list[Document]) -> list[str]:
        """Delete the chunks of ``sources`` that this add did not write (pages or sections the file lost)."""
        if not sources:
            return []
        held = await store.ids({"source": sources})
        if held is None:
            logger.warning(
                "{} cannot list its ids, so chunks that {} no longer has stay in it", store.plugin_id, sources[0]
            )
            return []
        written = {document.id for document in documents}
        stale = sorted(set(held) - written)
        if stale:
            await store.delete(stale)
        return stale

    async def search(
        self, query: str, k: int = 5, filter: Filter | None = None, mode: SearchMode = DEFAULT_MODE
    ) -> list[SearchResult]:
        """The ``k`` best documents for ``query``: by meaning (``mode="vector"``), by its words (``"keyword"``,
        the store's own keyword search), or both fused by reciprocal rank fusion (``"hybrid"``, the default).

        ``filter`` applies to both rankings. On a store without keyword search (``keyword_search`` gives None),
        ``"keyword"`` is a ConfigError and ``"hybrid"`` ranks by vectors alone.
        """
        mode = check_mode("pepper.rag.search", mode)
        check_filter("pepper.rag.search", filter)
        store = await self._source.ready("rag")
        if mode == "vector":
            return await store.search(query, k=k, filter=filter)
        if not isinstance(query, str) or not query.strip():
            raise InvalidInputError(f"pepper.rag.search: mode={mode!r} needs a non-empty text query")
        if mode == "keyword":
            hits = await store.keyword_search(query, k=k, filter=filter)
            if hits is None:
                raise ConfigError(
                    f"{store.plugin_id} has no keyword search; use mode='vector' (or 'hybrid', which then ranks by "
                    "vectors alone), or a store with one (rag/local, rag/chroma)"
                )
            return hits
        depth = max(k, HYBRID_DEPTH)
        vector = await store.search(query, k=depth, filter=filter)
        keyword = await store.keyword_search(query, k=depth, filter=filter)
        if keyword is None:
            logger.debug("{} has no keyword search: hybrid search ranks by vectors alone", store.plugin_id)
            return vector[:k]
        return fuse([vector, keyword], k)

    def add_sync(
        self,
        items: Addable | Iterable[Addable],
        chunk_size: int = CHUNK_SIZE,
        chunk_overlap: int = CHUNK_OVERLAP,
        *,
        loader: str | None = None,
        glob: str | None = None,
    ) -> Added:
        """``add()`` for scripts without an event loop."""
        return self._source.run_sync(self.add(items, chunk_size, chunk_overlap, loader=loader, glob=glob))

    def search_sync(
        self, query: str, k: int = 5, filter: Filter | None = None, mode: SearchMode = DEFAULT_MODE
    ) -> list[SearchResult]:
        """``search()`` for scripts without an event loop."""
        return self._source.run_sync(self.search(query, k, filter, mode))

    async def delete(self, ids: list[str]) -> None:
        """Remove documents by id (a file's chunks: ``await pepper.rag.ids({"source": str(path.resolve())})``)."""
        await (await self._source.ready("rag")).delete(ids)

    async def count(self) -> int:
        """How many documents (chunks) the store holds."""
        return await (await self._source.ready("rag")).count()

    async def ids(self, filter: Filter) -> list[str]:
        """The ids of the documents whose metadata matches ``filter`` (e.g. ``{"source": path}``: a file's chunks)."""
        check_filter("pepper.rag.ids", filter)
        store = await self._source.ready("rag")
        found = await store.ids(filter)
        if found is None:
            raise ConfigError(
                f"{store.plugin_id} cannot list its ids; use a store that can (rag/local, rag/chroma, rag/pgvector)"
            )
        return found

    def delete_sync(self, ids: list[str]) -> None:
        """``delete()`` for scripts without an event loop."""
        self._source.run_sync(self.delete(ids))

    def count_sync(self) -> int:
        """``count()`` for scripts without an event loop."""
        return self._source.run_sync(self.count())

    def ids_sync(self, filter: Filter) -> list[str]:
        """``ids()`` for scripts without an event loop."""
        return self._source.run_sync(self.ids(filter))


async def ask(
    source: ProviderSource,
    question: str,
    k: int = 4,
    filter: Filter | None = None,
    answer_without_sources: bool = False,
    mode: SearchMode = DEFAULT_MODE,
    **options: Any,
) -> Answer:
    """Retrieve ``k`` passages for ``question`` (``mode`` as in ``pepper.rag.search``), answer from them with the
    LLM, return answer and sources.

    When the store returns nothing, the model is not asked: the Answer says so (``NO_SOURCES``, no
    ``sources``, ``result`` None), unless ``answer_without_sources=True`` lets the model answer on its own.
    """
    check_mode("pepper.ask", mode)
    source.provider("llm")  # no LLM configured is an error whatever the store finds
    sources = await Retrieval(source).search(question, k=k, filter=filter, mode=mode)
    if sources:
        passages = "\n\n".join(f"[{n}] {hit.document.text}" for n, hit in enumerate(sources, 1))
        system = ASK_PROMPT.format(passages=passages)
    elif answer_without_sources:
        system = NO_SOURCES_PROMPT
    else:
        return Answer(content=NO_SOURCES, sources=[])
    messages = [Message(role=MessageRole.SYSTEM, content=system), Message(role=MessageRole.USER, content=question)]
    from pepperpy.chat import ChatBuilder

    result = await ChatBuilder(source, messages).with_options(**options).generate()  # through the facade's hooks
    return Answer(content=result.content, sources=sources, result=result)


__all__ = ["DEFAULT_MODE", "NO_SOURCES", "Added", "Answer", "Retrieval", "Skipped", "ask"]
