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


def read_settings_text(path: Path, what: str, fix: str) -> str:
    """The text of a settings file (``""`` when there is none); ConfigError naming ``path`` and ``what`` otherwise."""
    from pepperpy.errors import ConfigError

    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return ""
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the {what} file is not UTF-8; {fix}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the {what} file ({exc.strerror or exc}); {fix}") from None


__all__ = ["ParsedFile", "read_settings_text"]
