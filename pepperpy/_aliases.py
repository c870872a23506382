"""Aliases registered in code or saved by the user: other names for a plugin (or an alias) with preset config.

A PluginManager owns one ``AliasTable`` (``manager.aliases``). It holds the aliases given to
``register_plugin_alias(category, alias, target, config)`` and reads the user's aliases from
``<home>/aliases.json`` on first use (again when the file changes), shaped like::

    {"llm": {"gpt4": {"target": "openai", "config": {"model": "gpt-4"}}}}

An entry may also carry ``env`` (option -> environment variable, as in plugin.json) and a
``description``. A code alias wins over a user alias of the same name; a plugin of that name
wins over both. Aliases in plugin manifests are looked up by the PluginManager itself.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pepperpy._atomic import rewrite_json
from pepperpy._parsed_file import ParsedFile, read_settings_text
from pepperpy.errors import ConfigError

ALIASES_FILE = "aliases.json"
_CATEGORY = re.compile(r"[a-z][a-z0-9_-]*\Z")
_ENTRY_FIELDS = ("target", "config", "env", "description")
_EXAMPLE = '{"llm": {"gpt4": {"target": "openai", "config": {"model": "gpt-4"}}}}'


@dataclass(frozen=True)
class Alias:
    """``category/name`` stands for ``category/target`` with ``config`` preset."""

    category: str
    name: str
    target: str
    config: dict[str, Any] = field(default_factory=dict)
    env: dict[str, str] = field(default_factory=dict)
    description: str = ""
    source: str = "register_plugin_alias"  # or the path of the aliases.json that defines it


def check_alias(category: Any, name: Any, target: Any, config: Any, env: Any, where: str) -> None:
    """Raise ConfigError (prefixed with ``where``) unless these make a valid alias."""
    if not isinstance(category, str) or not _CATEGORY.match(category):
        raise ConfigError(f"{where}: the category {category!r} must be a simple lowercase name such as 'llm'")
    for label, value in (("alias name", name), ("target", target)):
        if not isinstance(value, str) or not value or "/" in value or value != value.strip():
            raise ConfigError(
                f"{where}: the {label} {value!r} must be a plugin or alias name without a category, such as 'openai'"
            )
    if not isinstance(config, Mapping) or not all(isinstance(key, str) for key in config):
        raise ConfigError(f"{where}: the config of {category}/{name} must map option names to values")
    if not isinstance(env, Mapping) or not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
        raise ConfigError(f"{where}: the env of {category}/{name} must map option names to variable names")


def preset_of(chain: list[Alias]) -> tuple[dict[str, Any], dict[str, str]]:
    """The config and env mapping an alias chain presets (``chain`` nearest first: nearer aliases win)."""
    config: dict[str, Any] = {}
    env: dict[str, str] = {}
    for alias in reversed(chain):
        config.update(alias.config)
        env.update(alias.env)
    return config, env


class AliasTable:
    """Code-registered aliases and the user's ``<home>/aliases.json`` (read lazily)."""

    def __init__(self, home: Callable[[], Path]):
        self._home = home
        self._registered: dict[str, Alias] = {}
        self._lock = threading.Lock()
        self._file: ParsedFile[dict[str, Alias]] = ParsedFile(read_user_aliases, {})

    @property
    def path(self) -> Path:
        """The user's aliases file: ``<home>/aliases.json``."""
        return self._home() / ALIASES_FILE

    def register(
        self, category: str, name: str, target: str, config: Mapping[str, Any] | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        config, env = config or {}, env or {}
        check_alias(category, name, target, config, env, "register_plugin_alias")
        alias = Alias(category, name, target, dict(config), dict(env))
        with self._lock:
            self._registered[f"{category}/{name}"] = alias

    def registered(self) -> dict[str, Alias]:
        """The aliases given to ``register_plugin_alias`` by ``category/name``."""
        with self._lock:
            return dict(self._registered)

    def get(self, category: str, name: str) -> Alias | None:
        """The code alias ``category/name``, else the user's; None when neither exists."""
        key = f"{category}/{name}"
        return self._registered.get(key) or self.user_aliases().get(key)

    def user_aliases(self) -> dict[str, Alias]:
        """The aliases in ``<home>/aliases.json`` by ``category/name``; read again when the file changes."""
        path = self.path
        try:
            return self._file.read(path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the aliases file ({exc.strerror or exc}); fix it") from None

    def follow(self, category: str, name: str, is_plugin: Callable[[str], bool]) -> tuple[str, list[Alias]]:
        """Follow code and user aliases from ``name`` until a name ``is_plugin`` (or no alias) is reached.

        Returns that name and the aliases passed, nearest first. A cycle is a ConfigError showing it.
        """
        seen = [name]
        chain: list[Alias] = []
        current = name
        while not is_plugin(current):
            alias = self.get(category, current)
            if alias is None:
                break
            chain.append(alias)
            if alias.target in seen:
                loop = [*seen[seen.index(alias.target) :], alias.target]
                sources = sorted({a.source for a in chain[seen.index(alias.target) :]})
                raise ConfigError(
                    f"alias cycle: {' -> '.join(f'{category}/{n}' for n in loop)}; point one of these aliases at a "
                    f"plugin (they are defined by {' and '.join(sources)})"
                )
            seen.append(alias.target)
            current = alias.target
        return current, chain


def read_user_aliases(path: Path) -> dict[str, Alias]:
    """The aliases in ``path`` by ``category/name``; ConfigError naming the file when it is not valid."""
    fix = "fix the file or delete it"
    text = read_settings_text(path, "aliases", fix)
    try:
        data = json.loads(text) if text.strip() else {}
    except ValueError as exc:
        raise ConfigError(f"{path}: the aliases file is not valid JSON ({exc}); {fix}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the aliases file must be a JSON object such as {_EXAMPLE}; {fix}")
    aliases: dict[str, Alias] = {}
    for category, entries in data.items():
        if not isinstance(entries, dict):
            raise ConfigError(f"{path}: {category!r} must map alias names to entries, as in {_EXAMPLE}; {fix}")
        for name, entry in entries.items():
            where = f"{path}: alias {category}/{name}"
            if not isinstance(entry, dict) or "target" not in entry:
                raise ConfigError(f"{where} must be an object with a 'target', as in {_EXAMPLE}; {fix}")
            unknown = sorted(set(entry) - set(_ENTRY_FIELDS))
            if unknown:
                raise ConfigError(f"{where}: unknown field {unknown[0]!r} (fields: {', '.join(_ENTRY_FIELDS)}); {fix}")
            config, env = entry.get("config", {}), entry.get("env", {})
            check_alias(category, name, entry["target"], config, env, str(path))
            description = entry.get("description", "")
            aliases[f"{category}/{name}"] = Alias(
                category, name, entry["target"], dict(config), dict(env), str(description), str(path)
            )
    return aliases


def save_user_alias(
    home: Path, category: str, name: str, target: str, config: Mapping[str, Any] | None = None,
    env: Mapping[str, str] | None = None, description: str = "",
) -> Path:
    """Add (or replace) an alias in ``<home>/aliases.json``, written atomically under its lock; for the CLI."""
    config, env = config or {}, env or {}
    path = home / ALIASES_FILE
    check_alias(category, name, target, config, env, str(path))
    entry: dict[str, Any] = {"target": target, "config": dict(config)}
    if env:
        entry["env"] = dict(env)
    if description:
        entry["description"] = description

    def change(data: dict[str, Any]) -> None:
        data.setdefault(category, {})[name] = entry

    return _rewrite(path, change, f"save the alias {category}/{name}")


def remove_user_alias(home: Path, category: str, name: str) -> Path:
    """Remove the alias ``category/name`` from ``<home>/aliases.json`` (atomically, under its lock).

    ConfigError naming the file when it holds no such alias.
    """
    path = home / ALIASES_FILE

    def change(data: dict[str, Any]) -> None:
        entries = data.get(category)
        if not isinstance(entries, dict) or name not in entries:
            saved = ", ".join(f"{category}/{n}" for n in sorted(entries or {})) or "none"
            raise ConfigError(
                f"{path} has no alias {category}/{name} (its {category} aliases: {saved}); aliases of plugin.json "
                "files and of register_plugin_alias cannot be removed here; see `pepperpy aliases list`"
            )
        del entries[name]
        if not entries:
            del data[category]

    return _rewrite(path, change, f"remove the alias {category}/{name}")


def _rewrite(path: Path, change: Callable[[dict[str, Any]], None], what: str) -> Path:
    """Read, change and atomically replace ``path`` under ``<path>.lock``; a corrupt file is refused, not replaced."""

    def read(path: Path) -> dict[str, Any]:
        return {key: dict(value) for key, value in _raw_entries(path).items()}

    return rewrite_json(path, read, change, what)


def _raw_entries(path: Path) -> dict[str, Any]:
    if not read_user_aliases(path):  # refuses to rewrite a corrupt file (the error names it)
        return {}
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = [
    "ALIASES_FILE", "Alias", "AliasTable", "preset_of", "read_user_aliases", "remove_user_alias", "save_user_alias",
]
