"""The StorageProvider contract: async key/value and blobs."""

from __future__ import annotations

from typing import ClassVar

from pepperpy.core import Provider


class StorageProvider(Provider):
    category: ClassVar[str] = "storage"

    async def get(self, key: str) -> bytes | None:
        raise NotImplementedError

    async def set(self, key: str, value: bytes) -> None:
        raise NotImplementedError

    async def delete(self, key: str) -> None:
        raise NotImplementedError

    async def list(self, prefix: str = "") -> list[str]:
        raise NotImplementedError


__all__ = ["StorageProvider"]
