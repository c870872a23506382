"""Writing a file atomically: readers see the old or the new content, never half, also after a crash."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pepperpy.errors import ConfigError

LOCK_TIMEOUT_S = 30.0  # the wait for another process changing the same settings file


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary sibling, flush it to disk, then rename it over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def rewrite_json(path: Path, read: Callable[[Path], dict[str, Any]], change: Callable[[dict[str, Any]], None],
                 what: str, sort_keys: bool = False) -> Path:
    """Change a settings file of the home: ``read`` it (which refuses a corrupt file, naming it, so it is never
    replaced), ``change`` the data, write it atomically, all under ``<path>.lock``; ConfigError saying ``what``
    could not be done and why."""
    from pepperpy._filelock import file_lock

    try:
        with file_lock(path.with_name(path.name + ".lock"), LOCK_TIMEOUT_S):
            data = read(path)
            change(data)
            atomic_write(path, (json.dumps(data, indent=2, sort_keys=sort_keys) + "\n").encode("utf-8"))
    except TimeoutError as exc:
        raise ConfigError(f"cannot {what}: {exc}") from None
    except OSError as exc:
        raise ConfigError(
            f"cannot {what} in {path}: {exc.strerror or exc}; make {path.parent} writable or point PEPPERPY_HOME "
            "at a writable folder"
        ) from None
    return path


__all__ = ["atomic_write", "rewrite_json"]
