"""The parent's stand-in for a provider that runs in a worker: a real subclass of the category's base.

``IsolatedLLM`` is an ``LLMProvider``, ``IsolatedEmbeddings`` an ``EmbeddingProvider``, and so on,
with the plugin's id, name and alias, so hooks, fallbacks, dependencies and the facade treat it as
any provider; the base class's guards (open checks, message normalization, timeouts) run in the
parent as usual. Each category method is written out and forwards over the pipe. A custom
category gets a class of its own, made with ``type(...)`` from the method names the worker lists
in its hello: one forwarding method per name.

``initialize()`` starts the worker (unless it runs already) and opens the provider in it;
``cleanup()`` closes it there and stops the worker.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any, ClassVar

from pepperpy._isolation import SECRET_WORDS, protocol
from pepperpy._isolation.client import WorkerClient
from pepperpy.core import PepperpyPlugin
from pepperpy.embeddings import EmbeddingProvider, Vector
from pepperpy.errors import ProviderError
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message
from pepperpy.rag import Document, Filter, RAGProvider, SearchResult
from pepperpy.storage import StorageProvider


class IsolatedProvider:
    """What every isolated stand-in shares: the worker client, lifecycle and the public view of its options.

    A mixin (not a plugin): each class below combines it with its category's base.
    """

    _pepperpy_isolation: ClassVar[str] = "process"
    _worker: WorkerClient
    _public_config: dict[str, Any]

    def bind(self, worker: WorkerClient, public_config: dict[str, Any]) -> None:
        object.__setattr__(self, "_worker", worker)
        self._show(public_config)

    def _show(self, public_config: dict[str, Any]) -> None:
        """Keep the public options (no keys) and show them as attributes, as a provider in-process has them."""
        public = {k: v for k, v in public_config.items() if not any(w in k.lower() for w in SECRET_WORDS)}
        object.__setattr__(self, "_public_config", public)
        for name, value in public.items():
            if not hasattr(type(self), name):
                object.__setattr__(self, name, value)

    @property
    def worker_pid(self) -> int | None:
        """The pid of the running worker process (None while none runs)."""
        return self._worker.pid

    def __repr__(self) -> str:
        shown = ", ".join(f"{k}={v!r}" for k, v in self._public_config.items())
        return f"{type(self).__name__}({self.plugin_id}, isolation=process{', ' if shown else ''}{shown})"  # type: ignore[attr-defined]

    async def initialize(self) -> None:
        worker = self._worker
        worker.want_open = True
        try:
            _, hello = await worker.ready()
            if not hello.get("opened"):
                await worker.request("open")
        except BaseException:
            worker.want_open = False
            await worker.stop()
            raise
        self._hello(hello)

    def _hello(self, hello: dict[str, Any]) -> None:
        self._show(hello.get("config") or {})

    async def cleanup(self) -> None:
        worker = self._worker
        worker.want_open = False
        try:
            if worker.pid is not None:
                try:
                    await worker.request("close")
                except ProviderError as exc:
                    if worker.pid is not None:  # the plugin's cleanup failed (not a dead worker)
                        raise
                    self.logger.debug("worker of {} was gone at cleanup: {}", self.plugin_id, exc)  # type: ignore[attr-defined]
        finally:
            await worker.stop()


class IsolatedLLM(IsolatedProvider, LLMProvider):
    """An LLM plugin running in its worker."""

    call_options: ClassVar[frozenset[str] | None] = None  # the worker's provider checks the names

    def describe(self) -> dict[str, Any]:
        """The provider's options without secrets (what hooks such as the response cache key on)."""
        return dict(self._public_config)

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        args, kwargs = protocol.llm_request(messages, options)
        return GenerationResult.model_validate(await self._worker.request("call", "generate", args, kwargs))

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        args, kwargs = protocol.llm_request(messages, options)
        async for chunk in self._worker.stream("generate_stream", args, kwargs):
            yield GenerationChunk.model_validate(chunk)


class IsolatedEmbeddings(IsolatedProvider, EmbeddingProvider):
    """An embeddings plugin running in its worker."""

    _model_id: str | None = None

    @property
    def model_id(self) -> str:
        if self._model_id is not None:
            return self._model_id
        model = self._public_config.get("model")
        return f"{self.plugin_id}:{model}" if model else self.plugin_id

    def _hello(self, hello: dict[str, Any]) -> None:
        super()._hello(hello)
        if hello.get("model_id"):
            object.__setattr__(self, "_model_id", hello["model_id"])

    async def embed(self, texts: list[str]) -> list[Vector]:
        return await self._worker.request("call", "embed", [protocol.to_wire(list(texts))], {})


class IsolatedRAG(IsolatedProvider, RAGProvider):
    """A vector store running in its worker; texts are embedded here, by its embeddings dependency."""

    async def initialize(self) -> None:
        self._worker.load["embedding_model"] = self.embedding_model  # recorded with the vectors it stores
        await super().initialize()

    async def add(self, documents: list[Document], vectors: list[Vector] | None = None) -> None:
        documents = list(documents)
        if vectors is None:
            vectors = await self.embed_texts([d.text for d in documents])
        await self._worker.request("call", "add", protocol.to_wire([documents, vectors]), {})

    async def search(self, query: str | Vector, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        vector = await self.query_vector(query)
        found = await self._worker.request("call", "search", protocol.to_wire([vector, k, filter]), {})
        return [SearchResult.model_validate(result) for result in found]

    async def delete(self, ids: list[str]) -> None:
        await self._worker.request("call", "delete", [protocol.to_wire(list(ids))], {})

    async def count(self) -> int:
        return await self._worker.request("call", "count", [], {})


class IsolatedStorage(IsolatedProvider, StorageProvider):
    """A storage plugin running in its worker; values cross as base64."""

    async def get(self, key: str) -> bytes | None:
        return protocol.from_wire(await self._worker.request("call", "get", [key], {}))

    async def set(self, key: str, value: bytes) -> None:
        await self._worker.request("call", "set", [key, protocol.to_wire(value)], {})

    async def delete(self, key: str) -> None:
        await self._worker.request("call", "delete", [key], {})

    async def list(self, prefix: str = "") -> list[str]:
        return await self._worker.request("call", "list", [prefix], {})


CLASSES: dict[str, type[IsolatedProvider]] = {
    "llm": IsolatedLLM,
    "embeddings": IsolatedEmbeddings,
    "rag": IsolatedRAG,
    "storage": IsolatedStorage,
}


def _forward_call(name: str) -> Callable[..., Any]:
    async def forward(self: IsolatedProvider, *args: Any, **kwargs: Any) -> Any:
        wired_args, wired_kwargs = protocol.to_wire(list(args)), protocol.to_wire(kwargs)
        return protocol.from_wire(await self._worker.request("call", name, wired_args, wired_kwargs))

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"``{name}`` of the plugin, run in its worker process."
    return forward


def _forward_stream(name: str) -> Callable[..., Any]:
    async def forward(self: IsolatedProvider, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for item in self._worker.stream(name, protocol.to_wire(list(args)), protocol.to_wire(kwargs)):
            yield protocol.from_wire(item)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"``{name}`` of the plugin (an async generator), run in its worker process."
    return forward


def custom_class(category: str, provider_name: str, methods: dict[str, str]) -> type:
    """A stand-in class for a plugin of a custom category: one forwarding method per public async method."""
    namespace: dict[str, Any] = {"category": category, "__module__": __name__}
    for name, kind in sorted(methods.items()):
        if name.startswith("_") or hasattr(IsolatedProvider, name) or hasattr(PepperpyPlugin, name):
            continue
        namespace[name] = _forward_stream(name) if kind == "stream" else _forward_call(name)
    class_name = "Isolated" + "".join(part.capitalize() for part in f"{category}_{provider_name}".replace("-", "_").split("_"))
    return type(class_name, (IsolatedProvider, PepperpyPlugin), namespace)


__all__ = ["CLASSES", "IsolatedEmbeddings", "IsolatedLLM", "IsolatedProvider", "IsolatedRAG", "IsolatedStorage", "custom_class"]
