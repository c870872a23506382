"""Plugin dependencies: declared once, created with the plugin, opened first and closed last. Offline.

A toy vector store declares that it needs embeddings (and, optionally, storage); a cache
plugin ``enhances`` the LLM the facade has configured and wraps its calls.
"""

import asyncio
import hashlib
import os
import tempfile
from typing import Any, ClassVar

from pepperpy import PepperPy
from pepperpy.embeddings import EmbeddingProvider
from pepperpy.plugins import PepperpyPlugin, get_plugin_manager
from pepperpy.rag import Document, RAGProvider, SearchResult


class HashEmbeddings(EmbeddingProvider):
    """Deterministic 8-dimension vectors from a hash: enough to show the wiring."""

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return [[b / 255 for b in hashlib.sha256(t.encode()).digest()[:8]] for t in texts]


class MemoryStore(RAGProvider):
    """Documents in a dict; texts are embedded with ``self.dependencies["embeddings"]``."""

    async def initialize(self) -> None:
        self.documents: dict[str, tuple[Document, list[float]]] = {}

    async def add(self, documents: list[Document], vectors: Any = None) -> None:
        vectors = vectors or await self.dependencies["embeddings"].embed([d.text for d in documents])
        self.documents.update({d.id: (d, v) for d, v in zip(documents, vectors)})

    async def search(self, query: Any, k: int = 5, filter: Any = None) -> list[SearchResult]:
        vector = await self.query_vector(query)
        scored = [(sum(a * b for a, b in zip(vector, v)), d) for d, v in self.documents.values()]
        return [SearchResult(document=d, score=s) for s, d in sorted(scored, key=lambda sd: -sd[0])[:k]]

    async def delete(self, ids: list[str]) -> None:
        for i in ids:
            self.documents.pop(i, None)

    async def count(self) -> int:
        return len(self.documents)


class AnswerCache(PepperpyPlugin):
    """Enhances the configured LLM: the same prompt is answered once."""

    category: ClassVar[str] = "cache"

    async def initialize(self) -> None:
        self.answers: dict[str, str] = {}

    async def generate(self, prompt: str) -> str:
        if prompt not in self.answers:
            llm = self.dependencies["llm"]  # the facade's own LLM instance, opened before this plugin
            self.answers[prompt] = (await llm.generate(prompt)).content
        return self.answers[prompt]


async def main() -> None:
    manager = get_plugin_manager()
    manager.register_plugin("embeddings", "hash", HashEmbeddings)
    manager.register_plugin("rag", "memory", MemoryStore)
    manager.register_plugin("cache", "answers", AnswerCache)
    manager.register_plugin_metadata("rag", "memory", {
        "dependencies": [
            {"type": "embeddings", "provider": "hash"},
            {"type": "storage", "provider": "local", "dependency_type": "optional"},
        ]
    })
    manager.register_plugin_metadata("cache", "answers", {"dependencies": [{"type": "llm", "dependency_type": "enhances"}]})

    # The plugin-system document's way: create, load the dependencies, initialize.
    rag = manager.create_instance("rag", "memory")
    dependencies = await manager.load_dependencies("rag", "memory")
    print("dependencies:", ", ".join(f"{key}={p.plugin_id}" for key, p in dependencies.items()))
    await rag.initialize()  # opens embeddings/hash and storage/local first
    await rag.add([Document(id="a", text="PepperPy plugins"), Document(id="b", text="something else")])
    hits = await rag.search("PepperPy plugins", k=1)
    print("closest:", hits[0].document.id)
    await rag.cleanup()  # closes the store, then the dependencies it opened
    print("embeddings open after cleanup:", dependencies["embeddings"].initialized)

    # The facade: the cache gets the facade's own LLM to wrap.
    pepper = PepperPy().with_llm("mock", replies=["first answer", "second answer"]).with_plugin("cache", "answers")
    async with pepper:
        cache = pepper.provider("cache")
        print("cache wraps the facade's llm:", cache.dependencies["llm"] is pepper.llm)
        print(await cache.generate("hello"), "/", await cache.generate("hello"))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as home:
        os.environ.setdefault("PEPPERPY_HOME", home)  # storage/local writes under the home
        asyncio.run(main())
