"""storage/local: each key a file under ``path``; writes go to a temporary file renamed into place."""

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

    def _failed(self, action: str, file: Path, exc: OSError) -> ProviderError:
        reason = exc.strerror or str(exc)
        if exc.filename and exc.filename != str(file):
            reason += f": {exc.filename}"
        return ProviderError(
            f"{self.plugin_id}: cannot {action} {file} ({reason}); make {self.root} a writable folder with free "
            "space and no file where a key needs a folder (or a folder where it needs a file), or pass another path="
        )

    async def get(self, key: str) -> bytes | None:
        file = self._file(key)
        try:
            return await asyncio.to_thread(file.read_bytes)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise self._failed("read", file, exc) from exc

    async def set(self, key: str, value: bytes) -> None:
        if not isinstance(value, bytes):
            raise ConfigError(f"{self.plugin_id}: values are bytes; encode {type(value).__name__} first")
        file = self._file(key)
        try:
            await asyncio.to_thread(self._write, file, value)
        except OSError as exc:
            raise self._failed("write", file, exc) from exc

    @staticmethod
    def _write(file: Path, value: bytes) -> None:
        atomic_write(file, value)

    async def delete(self, key: str) -> None:
        file = self._file(key)
        try:
            await asyncio.to_thread(file.unlink, missing_ok=True)
        except OSError as exc:
            raise self._failed("delete", file, exc) from exc

    async def list(self, prefix: str = "") -> list[str]:
        def walk() -> list[str]:
            if not self.root.is_dir():
                return []
            keys = (p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
            return sorted(k for k in keys if k.startswith(prefix) and not k.rsplit("/", 1)[-1].startswith("."))

        return await asyncio.to_thread(walk)
