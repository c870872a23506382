"""Helpers for tests that install a plugin's requirements for real: its first use, its env, what is left."""

from __future__ import annotations

import sys
from pathlib import Path

from pepperpy._install import env_dir
from pepperpy.plugin_manager import PluginManager


def first_use(tmp_path: Path, name: str) -> Path:
    """Create the plugin ``llm/<name>`` of ``tmp_path/plugins`` (its requirements install on first use into
    ``tmp_path/home``) and return its env dir, taken off sys.path again."""
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=home)
    manager.create_provider("llm", name)
    env = env_dir(home, manager.requirement_set(manager.resolve("llm", name)[0]))
    if str(env) in sys.path:
        sys.path.remove(str(env))
    return env


def leftovers(tmp_path: Path) -> list[str]:
    """What ``tmp_path/home/envs`` holds besides lock files: envs, and staging folders an install left."""
    envs = tmp_path / "home" / "envs"
    return [p.name for p in envs.iterdir() if not p.name.endswith(".lock")] if envs.is_dir() else []
