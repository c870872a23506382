"""Stand-ins: in the parent for a provider that runs in a worker (``Isolated*``), and in the worker for a
dependency that lives in the parent (``InParent*``); each a real subclass of the category's base.

``IsolatedLLM`` is an ``LLMProvider``, ``IsolatedEmbeddings`` an ``EmbeddingProvider``, and so on,
with the plugin's id, name and alias, so hooks, fallbacks, dependencies and the facade treat it as
any provider; the base class's guards (open checks, message normalization, timeouts) run in the
parent as usual. Each category method is written out and forwards over the pipe. A custom
category gets a class of its own, made with ``type(...)`` from the method names the worker lists
in its hello: one forwarding method per name.

``initialize()`` starts the worker (unless it runs already) and opens the provider in it;
``cleanup()`` closes it there and stops the worker. Its options are set at creation only: the
parent never imports the plugin's class, so it cannot check an assigned value, and assigning one
is a ConfigError. Reading an attribute the provider keeps on itself in the worker (``pepper.llm.calls``)
is an AttributeError saying where it lives and how to hand it over instead. Its dependencies are the
parent's (created, shared, opened and closed here); the worker is told about them (``dependencies.describe``)
and its calls to them come back here (``dependencies.serve``).

In the worker, the plugin's ``self.dependencies`` holds an ``InParent*`` per dependency: ``InParentLLM`` is
an ``LLMProvider`` whose ``generate`` goes back over the pipe (``parent.Link``) to the parent's provider,
and so on; a dependency of a category of its own gets a class with one forwarding method per public async
method. The category methods are written once (``LLMCalls``, ...) and forward over ``self._link``: the
worker client in the parent, the link to the parent in the worker.
"""

from __future__ import annotations

import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar

from pepperpy._isolation import dependencies, protocol
from pepperpy._isolation.client import WorkerClient
from pepperpy._redact import is_secret_option
from pepperpy.core import PepperpyPlugin, State, guard
from pepperpy.embeddings import EmbeddingProvider, Vector
from pepperpy.errors import ConfigError, ProviderError
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message
from pepperpy.rag import Document, Filter, RAGProvider, SearchResult
from pepperpy.storage import StorageProvider

# How an isolated plugin gives the parent a value it keeps on itself, by category ('' for a custom category).
_EXPOSE = {
    "llm": "return it in the answer's metadata (GenerationResult.metadata), or give the plugin a category of its "
           "own (with_plugin), whose public async methods are forwarded",
    "rag": "return it in the found documents' metadata, or give the plugin a category of its own (with_plugin), "
           "whose public async methods are forwarded",
    "embeddings": "give the plugin a category of its own (with_plugin), whose public async methods are forwarded",
    "storage": "give the plugin a category of its own (with_plugin), whose public async methods are forwarded",
    "": "add a public async method that returns it (those are forwarded to the worker)",
}




def public_options(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without its secrets (``_redact.is_secret_option``): what the parent shows."""
    return {name: value for name, value in config.items() if not is_secret_option(name, value)}


class IsolatedProvider:
    """What every isolated stand-in shares: the worker client, lifecycle and the public view of its options.

    A mixin (not a plugin): each class below combines it with its category's base.
    """

    _pepperpy_isolation: ClassVar[str] = "process"
    _worker: WorkerClient
    _public_config: dict[str, Any]
    _described: dict[str, Any]
    _hidden: frozenset[str] = frozenset()

    def bind(self, worker: WorkerClient, public_config: dict[str, Any], hidden: frozenset[str] = frozenset()) -> None:
        """Attach the worker; ``public_config``: the options given at creation and plugin.json's defaults,
        without secrets (what ``describe()`` returns from now on); ``hidden``: the options left out as secrets
        (a ``SecretStr`` given for a plain ``str`` option comes back from the worker as text: never shown)."""
        object.__setattr__(self, "_worker", worker)
        object.__setattr__(self, "_opened_for_worker", [])  # dependencies opened because its worker opened them
        worker.owner = weakref.ref(self)  # the worker's dependency requests are served with this provider's
        object.__setattr__(self, "_hidden", hidden)
        object.__setattr__(self, "_described", public_options(public_config))
        self._show(public_config)

    def _show(self, public_config: dict[str, Any]) -> None:
        """Keep the public options (no keys) and show them as attributes, as a provider in-process has them."""
        public = {k: v for k, v in public_options(public_config).items() if k not in self._hidden}
        object.__setattr__(self, "_public_config", public)
        for name, value in public.items():
            if not hasattr(type(self), name):
                object.__setattr__(self, name, value)

    def __setattr__(self, name: str, value: Any) -> None:
        """Options are set at creation: the worker's provider has them, and the parent cannot check a value."""
        if not name.startswith("_") and not hasattr(type(self), name):
            category, shown = type(self).category, self.alias or self.name  # type: ignore[attr-defined]
            how = (f"with_{category}({shown!r}, {name}=...)" if category in CLASSES
                   else f"with_plugin({category!r}, {shown!r}, {name}=...)")
            raise ConfigError(
                f"{self.plugin_id}: cannot set {name!r} on a process-isolated provider (it runs in a worker "  # type: ignore[attr-defined]
                f"process, which would not see the change); options of an isolated plugin are set at creation: "
                f"{how}, or pepperpy.plugins.create_provider_instance({category!r}, {shown!r}, {name}=...)"
            )
        super().__setattr__(name, value)

    def __getattr__(self, name: str) -> Any:
        """Only for attributes not found here: an AttributeError (``hasattr`` stays False) saying why."""
        if name.startswith("_"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}", name=name, obj=self)
        context = self.__dict__.get("_context")
        plugin_id = context.plugin_id if context is not None else type(self).category
        raise AttributeError(
            f"{type(self).__name__!r} object has no attribute {name!r}: {plugin_id} runs in a worker process "
            "(isolation: process), and what its provider sets on itself lives in that process; the parent has "
            "its options (the class's own defaults once the worker has started) and reaches its methods through "
            f"the pipe. To read {name!r} from here, {_EXPOSE.get(type(self).category, _EXPOSE[''])}; or run the "
            "plugin in-process (isolation='inprocess')",
            name=name, obj=self,
        )

    @property
    def _link(self) -> WorkerClient:
        """Where the category methods forward to: the worker."""
        return self._worker

    def set_dependency(self, key: str, provider: Any) -> None:
        """A dependency lives here; the worker is told, so the plugin there finds a stand-in for it."""
        super().set_dependency(key, provider)  # type: ignore[misc]
        self._worker.set_dependencies(dependencies.describe(self.dependencies))  # type: ignore[attr-defined]

    async def _open_for_worker(self, dependency: Any) -> None:
        """The plugin in the worker opened ``dependency``: open it here unless it is open (then close it
        when the worker closes it, or when this provider closes)."""
        if dependency.lifecycle_state is State.UNOPENED:
            await dependency.initialize()
            self._opened_for_worker.append(dependency)  # type: ignore[attr-defined]

    async def _close_for_worker(self, dependency: Any) -> None:
        opened: list[Any] = self._opened_for_worker  # type: ignore[attr-defined]
        if any(d is dependency for d in opened):
            opened[:] = [d for d in opened if d is not dependency]
            await dependency.cleanup()

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
        # open by now (the lifecycle opens them first): an embeddings' model id is final
        worker.set_dependencies(dependencies.describe(self.dependencies))  # type: ignore[attr-defined]
        try:
            _, hello = await worker.ready()
            if not hello.get("opened"):
                await worker.request("open")
        except BaseException as exc:
            worker.want_open = False
            await worker.stop(exc if isinstance(exc, Exception) else None)  # a failed start's stderr, if any, is noted
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
            opened, self._opened_for_worker[:] = list(self._opened_for_worker), []  # type: ignore[attr-defined]
            for dependency in reversed(opened):
                await dependency.cleanup()


class DescribedProvider(IsolatedProvider):
    """An isolated provider of a known category: ``describe()`` is what hooks (the response cache) key on.

    A custom category's class has no ``describe``: a plugin's own method of that name is forwarded.
    """

    def describe(self) -> dict[str, Any]:
        """The options given at creation and plugin.json's defaults, without secrets: the same mapping before
        and after the worker starts (the class's own defaults are not in it: only the worker knows them)."""
        return dict(self._described)


class LLMCalls:
    """``generate`` and ``generate_stream`` forwarded over ``self._link``; the provider at the other end checks
    the call options and the parts it takes."""

    _link: Any
    call_options: ClassVar[frozenset[str] | None] = None
    media_types: ClassVar[frozenset[str]] = frozenset({"*/*"})

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        args, kwargs = protocol.llm_request(messages, options)
        return GenerationResult.model_validate(await self._link.request("call", "generate", args, kwargs))

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        args, kwargs = protocol.llm_request(messages, options)
        async for chunk in self._link.stream("generate_stream", args, kwargs):
            yield GenerationChunk.model_validate(chunk)


class EmbeddingCalls:
    """``embed`` forwarded over ``self._link``."""

    _link: Any

    async def embed(self, texts: list[str]) -> list[Vector]:
        return await self._link.request("call", "embed", [protocol.to_wire(list(texts))], {})


class StorageCalls:
    """``get``, ``set``, ``delete`` and ``list`` forwarded over ``self._link``; values cross as base64."""

    _link: Any

    async def get(self, key: str) -> bytes | None:
        return protocol.from_wire(await self._link.request("call", "get", [key], {}))

    async def set(self, key: str, value: bytes) -> None:
        await self._link.request("call", "set", [key, protocol.to_wire(value)], {})

    async def delete(self, key: str) -> None:
        await self._link.request("call", "delete", [key], {})

    async def list(self, prefix: str = "") -> list[str]:
        return await self._link.request("call", "list", [prefix], {})


class IsolatedLLM(DescribedProvider, LLMCalls, LLMProvider):
    """An LLM plugin running in its worker."""


class IsolatedEmbeddings(DescribedProvider, EmbeddingCalls, EmbeddingProvider):
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


class IsolatedRAG(DescribedProvider, RAGProvider):
    """A vector store running in its worker; texts are embedded here, by its embeddings dependency (the store
    there sees the embeddings' model id, and gets the vectors)."""

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

    async def ids(self, filter: Filter) -> list[str] | None:
        return await self._worker.request("call", "ids", [protocol.to_wire(filter)], {})


class IsolatedStorage(DescribedProvider, StorageCalls, StorageProvider):
    """A storage plugin running in its worker; values cross as base64."""


CLASSES: dict[str, type[IsolatedProvider]] = {
    "llm": IsolatedLLM,
    "embeddings": IsolatedEmbeddings,
    "rag": IsolatedRAG,
    "storage": IsolatedStorage,
}


def _forward_call(name: str) -> Callable[..., Any]:
    async def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        wired_args, wired_kwargs = protocol.to_wire(list(args)), protocol.to_wire(kwargs)
        return protocol.from_wire(await self._link.request("call", name, wired_args, wired_kwargs))

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"``{name}`` of the plugin, run in the process it lives in."
    return guard(forward)  # the provider at the other end names the plugin's own errors already


def _forward_stream(name: str) -> Callable[..., Any]:
    async def forward(self: Any, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        async for item in self._link.stream(name, protocol.to_wire(list(args)), protocol.to_wire(kwargs)):
            yield protocol.from_wire(item)

    forward.__name__ = forward.__qualname__ = name
    forward.__doc__ = f"``{name}`` of the plugin (an async generator), run in the process it lives in."
    return guard(forward)


def _forwarding_class(prefix: str, base: type, category: str, provider_name: str, methods: dict[str, str]) -> type:
    namespace: dict[str, Any] = {"category": category, "__module__": __name__}
    for name, kind in sorted(methods.items()):
        if name.startswith("_") or hasattr(base, name) or hasattr(PepperpyPlugin, name):
            continue
        namespace[name] = _forward_stream(name) if kind == "stream" else _forward_call(name)
    words = f"{category}_{provider_name}".replace("-", "_").split("_")
    class_name = prefix + "".join(word.capitalize() for word in words)
    return type(class_name, (base, PepperpyPlugin), namespace)


def custom_class(category: str, provider_name: str, methods: dict[str, str]) -> type:
    """A stand-in class for a plugin of a custom category: one forwarding method per public async method."""
    return _forwarding_class("Isolated", IsolatedProvider, category, provider_name, methods)


# -- in the worker: a dependency that lives in the parent ---------------------------------------------


class InParentProvider:
    """What every stand-in for a parent's dependency shares: its link, its description, open and close.

    Opening it asks the parent to open the dependency (a no-op when the parent opened it already, as the
    facade does before the plugin opens); closing it closes only what that opened.
    """

    _link: Any
    _description: dict[str, Any]

    def describe_as(self, description: dict[str, Any]) -> None:
        object.__setattr__(self, "_description", description)
        object.__setattr__(self, "_pepperpy_isolation", description.get("isolation") or "inprocess")

    async def initialize(self) -> None:
        await self._link.request("open")

    async def cleanup(self) -> None:
        await self._link.request("close")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self._description['plugin_id']}, in the parent process)"


class InParentLLM(InParentProvider, LLMCalls, LLMProvider):
    """The parent's LLM, for a plugin in a worker."""


class InParentEmbeddings(InParentProvider, EmbeddingCalls, EmbeddingProvider):
    """The parent's embeddings, for a plugin in a worker (a store there records their model id)."""

    @property
    def model_id(self) -> str:
        return str(self._description.get("model_id") or self.plugin_id)


class InParentRAG(InParentProvider, RAGProvider):
    """The parent's vector store, for a plugin in a worker (the parent embeds the texts)."""

    async def add(self, documents: list[Document], vectors: list[Vector] | None = None) -> None:
        await self._link.request("call", "add", protocol.to_wire([list(documents), vectors]), {})

    async def search(self, query: str | Vector, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        found = await self._link.request("call", "search", protocol.to_wire([query, k, filter]), {})
        return [SearchResult.model_validate(result) for result in found]

    async def delete(self, ids: list[str]) -> None:
        await self._link.request("call", "delete", [protocol.to_wire(list(ids))], {})

    async def count(self) -> int:
        return await self._link.request("call", "count", [], {})

    async def ids(self, filter: Filter) -> list[str] | None:
        return await self._link.request("call", "ids", [protocol.to_wire(filter)], {})


class InParentStorage(InParentProvider, StorageCalls, StorageProvider):
    """The parent's storage, for a plugin in a worker."""


IN_PARENT: dict[str, type[InParentProvider]] = {
    "llm": InParentLLM,
    "embeddings": InParentEmbeddings,
    "rag": InParentRAG,
    "storage": InParentStorage,
}


def in_parent(description: dict[str, Any], link: Any, home: Any, shared: dict[str, Any] | None) -> Any:
    """The worker's stand-in for the parent's dependency ``description`` (``dependencies.describe``)."""
    from pepperpy._config import build_provider
    from pepperpy.core import CreationContext

    plugin_id = description["plugin_id"]
    category, _, name = plugin_id.partition("/")
    provider_class = IN_PARENT.get(description.get("category") or "") or _forwarding_class(
        "InParent", InParentProvider, category, name, description.get("methods") or {})
    context = CreationContext(plugin_id, home, {}, shared, description.get("alias"))
    provider = build_provider(provider_class, context, {})
    object.__setattr__(provider, "_link", link)
    provider.describe_as(description)
    return provider


def attach_in_parent(provider: Any, described: Mapping[str, dict[str, Any]], channel: Any, home: Any) -> None:
    """Give the worker's ``provider`` a stand-in per dependency the parent has; one it set itself is kept."""
    shared = provider._context.shared
    for key, description in described.items():
        current = provider.dependency(key)
        if isinstance(current, InParentProvider):
            if current.plugin_id == description["plugin_id"]:  # type: ignore[attr-defined]
                current.describe_as(description)  # the link finds the parent's provider by key
                continue
        elif current is not None:
            continue  # the plugin's own (as in-process, where a dependency it set is never replaced)
        provider.set_dependency(key, in_parent(description, channel.link(key, description["plugin_id"]), home, shared))


__all__ = [
    "CLASSES", "DescribedProvider", "IN_PARENT", "InParentProvider", "IsolatedEmbeddings", "IsolatedLLM",
    "IsolatedProvider", "IsolatedRAG", "IsolatedStorage", "attach_in_parent", "custom_class", "in_parent",
    "public_options",
]
