"""Default options the user saved per plugin or alias (``pepperpy options set``), in ``<home>/options.json``.

The file maps ``category/name`` (a plugin or an alias) to options::

    {"llm/mock": {"cycle": false}, "llm/groq": {"model": "llama-3.3-70b-versatile"}}

When a provider is created, an option's value comes from the first of these that has it:

1. the explicit config (``with_llm("groq", temperature=0.9)``, ``create_provider(..., **config)``);
2. for each alias passed on the way from the name asked for to the plugin, nearest first:
   a. that alias's preset config (code, ``aliases.json`` or a manifest's ``aliases``),
   b. the options saved for that alias;
3. the options saved for the plugin itself (``llm/openai``);
4. the option's environment variable (the manifest's ``env``), then ``keys.json``;
5. the manifest's ``config`` default;
6. the class default.

Saved options count as explicit for ``@persistent_plugin`` state, like alias presets.
The file is read once per process and again only when it changes (one ``stat`` per
provider creation; none read when it does not exist). A missing or empty file means no
saved options; a corrupt one is a ConfigError naming it, raised when options are used.
Writes are atomic, under ``<home>/options.json.lock``.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from pepperpy._atomic import rewrite_json
from pepperpy._parsed_file import ParsedFile, read_settings_text
from pepperpy.errors import ConfigError

OPTIONS_FILE = "options.json"
_EXAMPLE = '{"llm/mock": {"cycle": false}}'
_FIX = "fix the file or delete it"

SavedOptions = dict[str, dict[str, Any]]


class UserOptions:
    """The saved options of one PluginManager's home, cached by the file's mtime and size."""

    def __init__(self, home: Callable[[], Path]):
        self._home = home
        self._file: ParsedFile[SavedOptions] = ParsedFile(lambda path: read_options(path), {})
        self._paths: tuple[Path, Path] | None = None  # (home, its options.json): joining paths costs more than stat

    @property
    def path(self) -> Path:
        """``<home>/options.json``."""
        home, paths = self._home(), self._paths
        if paths is None or paths[0] != home:
            paths = self._paths = (home, home / OPTIONS_FILE)
        return paths[1]

    def all(self) -> SavedOptions:
        """Every saved option by ``category/name``; ``{}`` when the file does not exist or is empty."""
        path = self.path
        try:
            return self._file.read(path)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read the saved options ({exc.strerror or exc}); {_FIX}") from None

    def merge(
        self, explicit: Mapping[str, Any], aliases: Sequence[tuple[str, Mapping[str, Any]]], plugin_id: str,
        sources: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """The config to create ``plugin_id`` with, in the order of the module docstring (steps 1-3).

        ``aliases`` are ``(category/alias, preset config)`` pairs, nearest alias first. ``sources``, when given,
        gets option -> the ``category/name`` it was saved for, for each option taken from the saved ones.
        """
        saved = self.all()
        if not saved and not aliases:
            return dict(explicit)
        layers: list[tuple[str | None, Mapping[str, Any]]] = [(None, explicit)]  # highest first
        for key, preset in aliases:
            layers += [(None, preset), (key, copy.deepcopy(saved.get(key, {})))]  # copies: never shared with the cache
        layers.append((plugin_id, copy.deepcopy(saved.get(plugin_id, {}))))
        merged: dict[str, Any] = {}
        for key, layer in layers:
            for name, value in layer.items():
                if name not in merged:  # a higher layer is never overwritten
                    merged[name] = value
                    if key is not None and sources is not None:
                        sources[name] = key
        return merged


def read_options(path: Path) -> SavedOptions:
    """The options saved in ``path``; ConfigError naming the file when it is not valid."""
    text = read_settings_text(path, "saved options", _FIX)
    if not text.strip():
        return {}
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise ConfigError(f"{path}: the saved options file is not valid JSON ({exc}); {_FIX}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the saved options must be a JSON object such as {_EXAMPLE}; {_FIX}")
    for key, options in data.items():
        category, _, name = key.partition("/")
        if not category or not name or "/" in name:
            raise ConfigError(f"{path}: {key!r} must be 'category/name', such as 'llm/mock'; {_FIX}")
        if not isinstance(options, dict):
            raise ConfigError(f"{path}: {key!r} must map option names to values, as in {_EXAMPLE}; {_FIX}")
    return data


def save_option(home: Path, key: str, option: str, value: Any) -> Path:
    """Save ``option = value`` for ``key`` (``category/name``) in ``<home>/options.json``."""

    def change(data: SavedOptions) -> None:
        data.setdefault(key, {})[option] = value

    return _rewrite(home / OPTIONS_FILE, change, f"save {option} for {key}")


def remove_options(home: Path, key: str, option: str | None = None) -> Path:
    """Remove ``option`` (None: every option) saved for ``key``; ConfigError when nothing matches."""
    path = home / OPTIONS_FILE

    def change(data: SavedOptions) -> None:
        saved = data.get(key)
        if not saved or (option is not None and option not in saved):
            what = f"no option {option!r} is saved" if option is not None else "no options are saved"
            what += f" for {key}"
            shown = ", ".join(sorted(saved or {})) or "none"
            raise ConfigError(f"{what} in {path} (saved for {key}: {shown}); see `pepperpy options list`")
        if option is None or len(saved) == 1:
            del data[key]
        else:
            del saved[option]

    return _rewrite(path, change, f"remove options of {key}")


def _rewrite(path: Path, change: Callable[[SavedOptions], None], what: str) -> Path:
    """Read, change and atomically replace ``path`` under its lock; a corrupt file is refused, not replaced."""

    def read(path: Path) -> SavedOptions:
        return {key: dict(value) for key, value in read_options(path).items()}

    return rewrite_json(path, read, change, what, sort_keys=True)


__all__ = ["OPTIONS_FILE", "UserOptions", "read_options", "remove_options", "save_option"]
