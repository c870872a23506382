"""``pepper.rag`` and ``pepper.ask``: adding and searching documents, and answering from them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from pepperpy.documents import CHUNK_OVERLAP, CHUNK_SIZE, to_documents
from pepperpy.llm import GenerationResult, Message, MessageRole
from pepperpy.rag import Document, Filter, SearchResult

if TYPE_CHECKING:
    from pepperpy.chat import ProviderSource

ASK_PROMPT = (
    "Answer the question using only the passages below. "
    "If they do not contain the answer, say that you do not know.\n\n{passages}"
)


class Answer(BaseModel):
    """An answer from ``pepper.ask`` with the passages it was given."""

    content: str
    sources: list[SearchResult] = Field(default_factory=list)
    result: GenerationResult | None = None

    def __str__(self) -> str:
        return self.content


class Retrieval:
    """The configured vector store, with loaders: ``await pepper.rag.add([...])``, ``await pepper.rag.search(q)``."""

    def __init__(self, source: ProviderSource):
        self._source = source

    async def add(
        self, items: list[Document | str | Path], chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP
    ) -> list[Document]:
        """Add Documents, plain strings, or .txt/.md files (chunked); returns what was stored."""
        documents = to_documents(items, chunk_size, chunk_overlap)
        store = await self._source.ready("rag")
        await store.add(documents)
        return documents

    async def search(self, query: str, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        store = await self._source.ready("rag")
        return await store.search(query, k=k, filter=filter)

    def add_sync(
        self, items: list[Document | str | Path], chunk_size: int = CHUNK_SIZE, chunk_overlap: int = CHUNK_OVERLAP
    ) -> list[Document]:
        """``add()`` for scripts without an event loop."""
        return self._source.run_sync(self.add(items, chunk_size, chunk_overlap))

    def search_sync(self, query: str, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        """``search()`` for scripts without an event loop."""
        return self._source.run_sync(self.search(query, k, filter))

    async def delete(self, ids: list[str]) -> None:
        await (await self._source.ready("rag")).delete(ids)

    async def count(self) -> int:
        return await (await self._source.ready("rag")).count()


async def ask(source: ProviderSource, question: str, k: int = 4, filter: Filter | None = None, **options: Any) -> Answer:
    """Retrieve ``k`` passages for ``question``, answer from them with the LLM, return answer and sources."""
    sources = await Retrieval(source).search(question, k=k, filter=filter)
    passages = "\n\n".join(f"[{n}] {hit.document.text}" for n, hit in enumerate(sources, 1))
    messages = [
        Message(role=MessageRole.SYSTEM, content=ASK_PROMPT.format(passages=passages or "(no passages found)")),
        Message(role=MessageRole.USER, content=question),
    ]
    from pepperpy.chat import ChatBuilder

    result = await ChatBuilder(source, messages).with_options(**options).generate()  # through the facade's hooks
    return Answer(content=result.content, sources=sources, result=result)


__all__ = ["Answer", "Retrieval", "ask"]
