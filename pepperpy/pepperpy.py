"""The PepperPy facade: a builder that configures providers and owns their lifecycle."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Coroutine
from contextlib import AsyncExitStack
from typing import TYPE_CHECKING, Any, TypeVar

from pepperpy.errors import ConfigError, PepperPyError
from pepperpy.plugin_manager import PluginManager

if TYPE_CHECKING:
    from pepperpy.chat import ChatBuilder
    from pepperpy.retrieval import Answer, Retrieval

T = TypeVar("T")

# What ``with_llm()`` and friends use when no provider is named; override with
# ``PepperPy(config={"llm": "mock"})`` or ``PEPPERPY_LLM=mock``.
DEFAULT_PROVIDERS: dict[str, str] = {"llm": "local", "embeddings": "local", "rag": "local", "storage": "local"}


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run ``coroutine`` to completion from plain (non-async) code."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    coroutine.close()
    raise PepperPyError("the *_sync() methods are for scripts without an event loop; here, use `await` instead")


class PepperPy:
    """Configure providers with ``with_*`` calls, then use them inside ``async with``."""

    def __init__(self, config: dict[str, Any] | None = None, plugin_manager: PluginManager | None = None):
        self._config = dict(config or {})
        self._manager = plugin_manager or PluginManager.instance()
        self._providers: dict[str, Any] = {}
        self._stack: AsyncExitStack | None = None

    def __repr__(self) -> str:
        configured = ", ".join(f"{c}={p.name}" for c, p in self._providers.items())
        return f"PepperPy({configured})"

    # -- configuration ---------------------------------------------------------------

    def default_provider(self, category: str) -> str:
        configured = self._config.get(category) or os.environ.get(f"PEPPERPY_{category.upper()}")
        return configured or DEFAULT_PROVIDERS[category]

    def with_plugin(self, category: str, provider_type: str | None = None, **config: Any) -> PepperPy:
        """Use the plugin ``category/provider_type``; installs it on first use, opens nothing yet."""
        name = provider_type or self.default_provider(category)
        self._providers[category] = self._manager.create_provider(category, name, **config)
        if "rag" in self._providers and category in ("rag", "embeddings"):
            if "embeddings" not in self._providers:
                self.with_embeddings()  # the RAG store embeds with the default embeddings
            self._providers["rag"].use_embeddings(self._providers["embeddings"])
        return self

    def with_llm(self, provider_type: str | None = None, **config: Any) -> PepperPy:
        return self.with_plugin("llm", provider_type, **config)

    def with_embeddings(self, provider_type: str | None = None, **config: Any) -> PepperPy:
        return self.with_plugin("embeddings", provider_type, **config)

    def with_rag(self, provider_type: str | None = None, **config: Any) -> PepperPy:
        """A vector store (default ``local``); it embeds with ``with_embeddings``' provider, else the local one."""
        return self.with_plugin("rag", provider_type, **config)

    def with_storage(self, provider_type: str | None = None, **config: Any) -> PepperPy:
        return self.with_plugin("storage", provider_type, **config)

    def provider(self, category: str) -> Any:
        """The configured provider of ``category`` (not necessarily initialized)."""
        try:
            return self._providers[category]
        except KeyError:
            raise ConfigError(
                f"no {category} provider is configured; call .with_plugin({category!r}, ...) "
                f"or .with_{category}(...) first"
            ) from None

    @property
    def _llm_provider(self) -> Any:
        return self.provider("llm")

    @property
    def llm(self) -> Any:
        return self.provider("llm")

    @property
    def rag(self) -> Retrieval:
        """Add and search documents in the configured vector store."""
        from pepperpy.retrieval import Retrieval

        self.provider("rag")
        return Retrieval(self)

    async def ask(self, question: str, k: int = 4, filter: dict[str, Any] | None = None, **options: Any) -> Answer:
        """Answer ``question`` from the ``k`` most relevant passages; the answer lists them as sources."""
        from pepperpy.retrieval import ask

        return await ask(self, question, k=k, filter=filter, **options)

    @property
    def chat(self) -> ChatBuilder:
        """A fresh chat builder on the configured LLM."""
        from pepperpy.chat import ChatBuilder

        self.provider("llm")
        return ChatBuilder(self)

    # -- lifecycle -------------------------------------------------------------------

    async def ready(self, category: str) -> Any:
        """The provider of ``category``, initialized (lazily, outside ``async with``)."""
        provider = self.provider(category)
        if not provider.initialized:
            await self._initialize([provider])
        return provider

    async def _initialize(self, providers: list[Any]) -> None:
        if self._stack is None:
            self._stack = AsyncExitStack()
        outcomes = await asyncio.gather(*(p.initialize() for p in providers), return_exceptions=True)
        for provider, outcome in zip(providers, outcomes):
            if not isinstance(outcome, BaseException):
                self._stack.push_async_callback(provider.cleanup)
        failures = [o for o in outcomes if isinstance(o, BaseException)]
        if failures:
            await self.aclose()
            raise failures[0]

    async def __aenter__(self) -> PepperPy:
        await self._initialize([p for p in self._providers.values() if not p.initialized])
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Clean up every initialized provider, in reverse order; safe to call twice."""
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()


__all__ = ["DEFAULT_PROVIDERS", "PepperPy", "run_sync"]
