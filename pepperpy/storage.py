"""The StorageProvider contract: async key/value and blobs."""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any, ClassVar

from pepperpy.core import PepperpyPlugin, close_guard, open_guard, requires_open


class StorageProvider(PepperpyPlugin):
    """Bytes under string keys. Implement ``get``, ``set``, ``delete`` and ``list``."""

    category: ClassVar[str] = "storage"
    wrapped_methods: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "initialize": open_guard,
        "cleanup": close_guard,
        **dict.fromkeys(("get", "set", "delete", "list"), requires_open),
    }

    @abc.abstractmethod
    async def get(self, key: str) -> bytes | None:
        """The value stored under ``key``, or None."""

    @abc.abstractmethod
    async def set(self, key: str, value: bytes) -> None:
        """Store ``value`` under ``key``."""

    @abc.abstractmethod
    async def delete(self, key: str) -> None:
        """Remove ``key`` (no error when absent)."""

    @abc.abstractmethod
    async def list(self, prefix: str = "") -> list[str]:
        """Keys starting with ``prefix``, sorted."""


__all__ = ["StorageProvider"]
