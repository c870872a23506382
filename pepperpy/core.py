"""The provider base class every plugin entry point subclasses."""

from __future__ import annotations

import asyncio
import importlib
import threading
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from pydantic import BaseModel, ConfigDict, PrivateAttr

from pepperpy._log import logger

T = TypeVar("T")


class Provider(BaseModel):
    """Base of every provider: config attributes, lifecycle, logger.

    Declare options as annotated class attributes with defaults; they are
    validated by pydantic from the keyword config (unknown keys are an error).
    Override ``setup()`` to open connections or load models and ``teardown()``
    to release them; ``initialize()`` and ``cleanup()`` call them at most once.
    """

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True, protected_namespaces=())

    category: ClassVar[str] = ""

    _plugin_id: str = PrivateAttr(default="")
    _initialized: bool = PrivateAttr(default=False)
    _lifecycle_lock: asyncio.Lock | None = PrivateAttr(default=None)
    _shared: dict[str, Any] = PrivateAttr(default_factory=dict)

    @property
    def plugin_id(self) -> str:
        """``category/provider_name`` of the plugin that created this provider."""
        return self._plugin_id or f"{self.category}/{type(self).__name__}"

    @property
    def name(self) -> str:
        """The provider name, e.g. ``openai`` for ``llm/openai``."""
        return self.plugin_id.rsplit("/", 1)[-1]

    @property
    def initialized(self) -> bool:
        return self._initialized

    @property
    def logger(self) -> Any:
        return logger.bind(plugin=self.plugin_id)

    def shared_resource(self, name: str, factory: Callable[[], T]) -> T:
        """An object shared by every provider of the same PluginManager (e.g. an HTTP client pool)."""
        if name not in self._shared:
            self._shared.setdefault(name, factory())
        return self._shared[name]

    async def import_modules(self, *modules: str) -> None:
        """Import heavy modules in a worker thread, one provider at a time.

        Providers initialize concurrently; two threads importing the same C-extension
        package (numpy, say) at once can see it half-initialized, so imports take turns.
        """
        lock = self.shared_resource("import_lock", threading.Lock)

        def import_all() -> None:
            with lock:
                for module in modules:
                    importlib.import_module(module)

        await asyncio.to_thread(import_all)

    async def setup(self) -> None:
        """Open connections, load models. Runs once, from ``initialize()``."""

    async def teardown(self) -> None:
        """Release what ``setup()`` acquired. Runs once, from ``cleanup()``."""

    def _lock(self) -> asyncio.Lock:
        if self._lifecycle_lock is None:
            self._lifecycle_lock = asyncio.Lock()
        return self._lifecycle_lock

    async def initialize(self) -> None:
        """Run ``setup()`` unless it already ran; safe to call from many tasks."""
        if self._initialized:
            return
        async with self._lock():
            if not self._initialized:
                await self.setup()
                self._initialized = True
                self.logger.debug("initialized {}", self.plugin_id)

    async def cleanup(self) -> None:
        """Run ``teardown()`` if ``setup()`` ran; safe to call twice."""
        async with self._lock():
            if self._initialized:
                self._initialized = False
                await self.teardown()
                self.logger.debug("cleaned up {}", self.plugin_id)


__all__ = ["Provider"]
