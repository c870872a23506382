"""storage/local: each key a file under ``path``; writes go to a temporary file renamed into place.

What is in the way is named in the error: a file where ``path`` or a key's folder is
needed, or a folder where a key's value belongs. A key under another key's value
(``a/b`` when ``a`` holds a value) does not exist: ``get`` gives None, ``delete`` does
nothing, ``set`` is refused naming the key ``a``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pepperpy.errors import ConfigError, ProviderError
from pepperpy.plugins import atomic_write
from pepperpy.storage import StorageProvider


class LocalStorageProvider(StorageProvider):
    """Keys are relative paths made of letters, digits, ``-_.`` and ``/``; values are bytes."""

    path: Path | None = None

    @property
    def root(self) -> Path:
        return self.path or self.data_path("storage")

    def _file(self, key: str) -> Path:
        parts = key.split("/")
        if not key or key.startswith("/") or any(p in ("", ".", "..") for p in parts):
            raise ConfigError(f"{self.plugin_id}: invalid key {key!r}; use a relative path without '..' or empty parts")
        return self.root.joinpath(*parts)

    @staticmethod
    def _blocker(file: Path) -> Path | None:
        """The existing non-folder that holds the place of a folder on the way to ``file``, if any."""
        for ancestor in reversed(file.parents):
            if ancestor.exists() and not ancestor.is_dir():
                return ancestor
        return None

    def _under_a_value(self, file: Path) -> bool:
        """True when another key's value holds the place of one of ``file``'s folders."""
        blocker = self._blocker(file)
        return blocker is not None and blocker != self.root and blocker.is_relative_to(self.root)

    def _failed(self, action: str, file: Path, exc: OSError, key: str) -> ProviderError:
        blocker = self._blocker(file)
        if blocker is None and file == self.root and file.exists() and not file.is_dir():
            blocker = file
        if self._under_a_value(file):
            held = blocker.relative_to(self.root).as_posix()  # type: ignore[union-attr]
            fix = f"the key {held!r} holds a value where {key!r} needs a folder: delete that key or use another key"
        elif blocker is not None:
            fix = f"{blocker} is a file where a folder is needed: move it away, or pass another path="
        elif file.is_dir():
            fix = f"{file} is a folder where the value of {key!r} belongs: move it away"
        else:
            fix = f"make {self.root} a writable folder with free space, or pass another path="
        return ProviderError(f"{self.plugin_id}: cannot {action} {file} ({exc.strerror or exc}); {fix}")

    async def get(self, key: str) -> bytes | None:
        file = self._file(key)
        try:
            return await asyncio.to_thread(file.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if isinstance(exc, NotADirectoryError) and self._under_a_value(file):
                return None
            raise self._failed("read", file, exc, key) from exc

    async def set(self, key: str, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise ConfigError(f"{self.plugin_id}: values are bytes; encode {type(value).__name__} first")
        file = self._file(key)
        try:
            await asyncio.to_thread(self._write, file, value)
        except OSError as exc:
            raise self._failed("write", file, exc, key) from exc

    @staticmethod
    def _write(file: Path, value: bytes) -> None:
        atomic_write(file, value)

    async def delete(self, key: str) -> None:
        file = self._file(key)
        try:
            await asyncio.to_thread(file.unlink, missing_ok=True)
        except OSError as exc:
            if isinstance(exc, NotADirectoryError) and self._under_a_value(file):
                return
            raise self._failed("delete", file, exc, key) from exc

    async def list(self, prefix: str = "") -> list[str]:
        def walk() -> list[str]:
            if not self.root.is_dir():
                if self.root.exists():  # path= names a file
                    raise NotADirectoryError(20, "Not a directory", str(self.root))
                return []  # nothing stored yet (get and set name a file in the way of the folder)
            keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
            return sorted(k for k in keys if k.startswith(prefix) and not k.rsplit("/", 1)[-1].startswith("."))

        try:
            return await asyncio.to_thread(walk)
        except OSError as exc:
            raise self._failed("list", self.root, exc, prefix) from exc
