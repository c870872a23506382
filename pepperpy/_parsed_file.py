"""A settings file parsed once and again only when it changes (aliases.json, options.json)."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Generic, TypeVar

T = TypeVar("T")


class ParsedFile(Generic[T]):
    """``read(path)`` parses ``path`` on first use and again when its modification time or size changes;
    a missing file (or home) reads as ``missing``. Other ``OSError``s are the caller's to explain."""

    def __init__(self, parse: Callable[[Path], T], missing: T):
        self._parse, self._missing = parse, missing
        self._key: tuple[Path, int, int] | None = None
        self._value: T = missing

    def read(self, path: Path) -> T:
        try:
            stat = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return self._missing
        key = (path, stat.st_mtime_ns, stat.st_size)
        if key != self._key:
            self._value, self._key = self._parse(path), key
        return self._value


__all__ = ["ParsedFile"]
