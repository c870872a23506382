"""Where PepperPy keeps things: its home and the built-in plugins. Imports nothing heavy (the command reads it)."""

from __future__ import annotations

import os
from pathlib import Path

STAMP_FILE = ".pepperpy-stamp"  # in a plugin's env dir: the fingerprint of what was installed there


def pepperpy_home() -> Path:
    """``PEPPERPY_HOME``, else ``~/.pepperpy`` (the PluginManager's home unless it was given another)."""
    return Path(os.environ.get("PEPPERPY_HOME") or Path.home() / ".pepperpy")


def builtin_plugins_dir() -> Path:
    """Inside a wheel the plugins ship as ``pepperpy/_builtin_plugins``; in a checkout they are ``plugins/``."""
    package = Path(__file__).resolve().parent
    shipped = package / "_builtin_plugins"
    return shipped if shipped.is_dir() else package.parent / "plugins"


def plugin_folders_in(root: str) -> list[str]:
    """The plugin folders of one search path: ``root`` itself when it holds a plugin.json, else its
    subfolders that do (symlinked ones by their real path), sorted."""
    real_root = os.path.realpath(root)
    if os.path.isfile(os.path.join(real_root, "plugin.json")):
        return [real_root]
    with os.scandir(real_root) as entries:
        return sorted(
            os.path.realpath(entry.path) if entry.is_symlink() else entry.path
            for entry in entries
            if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "plugin.json"))
        )


__all__ = ["STAMP_FILE", "builtin_plugins_dir", "pepperpy_home", "plugin_folders_in"]
