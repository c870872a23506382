"""What a plugin folder held when it was imported: the files whose save reloads it, with time and digest.

The manager records it just before importing a folder; hot reload (``_reload``) compares the folder with it.
"""

from __future__ import annotations

import hashlib
import os
from typing import Any


def is_plugin_file(change: Any, path: str) -> bool:
    """A file whose save reloads its folder: ``.py``, ``plugin.json``, ``.txt``; not hidden, not in ``__pycache__``."""
    name = os.path.basename(path)
    return (
        "__pycache__" not in path and not name.startswith(".")
        and (name.endswith(".py") or name == "plugin.json" or name.endswith(".txt"))
    )


def folder_files(folder: str) -> dict[str, tuple[int, str]]:
    """Relative path -> (modification time in ns, content digest) of each file of ``folder`` whose save reloads it
    (hidden folders left out). The manager records it just before importing the folder."""
    files: dict[str, tuple[int, str]] = {}
    for directory, subfolders, names in os.walk(folder):
        subfolders[:] = [name for name in subfolders if name != "__pycache__" and not name.startswith(".")]
        for name in names:
            path = os.path.join(directory, name)
            if not is_plugin_file(None, path):
                continue
            try:
                with open(path, "rb") as file:
                    digest = hashlib.blake2b(file.read(), digest_size=16).hexdigest()
                    files[os.path.relpath(path, folder)] = (os.fstat(file.fileno()).st_mtime_ns, digest)
            except OSError:  # removed (or unreadable) meanwhile: left out, so it counts as a change when it is back
                continue
    return files


__all__ = ["folder_files", "is_plugin_file"]
