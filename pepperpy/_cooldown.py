"""The install cooldown: uv ignores releases younger than it (``--exclude-newer`` with a relative duration).

Every uv install and lock PepperPy runs gets ``uv_options()``: ``--exclude-newer "7 days"`` by default.
The cooldown comes from ``PEPPERPY_INSTALL_COOLDOWN``, else ``"cooldown"`` in ``<home>/install.json``,
else 7 days; ``0`` turns it off. The user (never a plugin) may allow newer releases of named
packages for one plugin: ``"allow_newer": {"llm/x": ["package"]}`` in that file, passed to uv as
``--exclude-newer-package package=false``. uv can only apply the cooldown where the index gives
upload times: a PEP 691 JSON index does; ``--find-links`` folders are not covered (``unchecked_sources``
says so) and an HTML-only index excludes everything. ``explain`` turns uv's "filtered by exclude-newer"
hint into an error naming the package, its version, its age and how to allow it.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from pepperpy._atomic import rewrite_json
from pepperpy.errors import ConfigError

COOLDOWN_VARIABLE = "PEPPERPY_INSTALL_COOLDOWN"
SETTINGS_FILE = "install.json"
DEFAULT = "7 days"
_SETTINGS_KEYS = ("cooldown", "allow_newer")
_DURATION = re.compile(r"(\d{1,5})\s*(d|days?|h|hours?|w|weeks?)?", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "w": "weeks"}
_PLUGIN_ID = re.compile(r"[a-z][a-z0-9_-]*/[a-z][a-z0-9_-]*")  # category/name, as plugin.json names them
_PACKAGE_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?", re.ASCII)  # a PEP 508 name
_FILTERED = re.compile(
    r"`(?P<name>[^`]+)` was filtered by `exclude-newer` to only include packages uploaded before \S+?\. "
    r"(?:The latest version satisfying the requirement is|The requested version,) v?(?P<version>[^\s,]+?)"
    r"(?:,? (?:was )?published at (?P<published>\S+?))?\.(?:\s|$)"
)


@dataclass(frozen=True)
class Cooldown:
    """The cooldown in force for one plugin's install: ``duration`` as uv reads it ("" when off)."""

    duration: str
    source: str  # "the default", "PEPPERPY_INSTALL_COOLDOWN" or the settings file
    allowed: tuple[str, ...] = ()  # packages this plugin may take at any age (canonical names)

    def uv_options(self) -> list[str]:
        if not self.duration:
            return []
        options = ["--exclude-newer", self.duration]
        for name in self.allowed:
            options += ["--exclude-newer-package", f"{name}=false"]
        return options

    def allowing(self, names: Iterable[str]) -> Cooldown:
        """The same cooldown with ``names`` exempt too."""
        return replace(self, allowed=tuple(sorted({*self.allowed, *map(canonicalize_name, names)})))

    def describe(self) -> str:
        return f"{self.duration} ({self.source})" if self.duration else f"off ({self.source})"


def settings_path(home: Path) -> Path:
    return home / SETTINGS_FILE


def read_settings(home: Path) -> dict[str, object]:
    """``<home>/install.json`` (``{}`` when absent); ConfigError naming the file when it is not valid."""
    path = settings_path(home)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, RecursionError) as exc:
        raise ConfigError(f"{path} cannot be read as JSON ({exc}); fix or remove it") from None
    return _checked(data, path)


def _checked(data: object, path: Path) -> dict[str, object]:
    """``data`` when it is a valid settings file's content; else ConfigError naming ``path`` and the fix."""
    unknown = sorted(set(data) - set(_SETTINGS_KEYS)) if isinstance(data, dict) else None
    if unknown is None or unknown:
        raise ConfigError(
            f"{path} must be a JSON object with only the keys {', '.join(_SETTINGS_KEYS)}"
            + (f" (unknown: {', '.join(unknown)})" if unknown else "")
        )
    allow = data.get("allow_newer", {})
    if not isinstance(allow, dict) or not all(
        isinstance(names, list) and all(isinstance(n, str) for n in names) for names in allow.values()
    ):
        raise ConfigError(f'{path}: "allow_newer" must map plugin ids to lists of package names, e.g. '
                          '{"llm/openai": ["openai"]}')
    for plugin_id, names in allow.items():
        if not _PLUGIN_ID.fullmatch(plugin_id):
            raise ConfigError(f'{path}: "allow_newer" has the key {plugin_id[:80]!r}, which is not a plugin id; write '
                              'the id as category/name, e.g. {"llm/openai": ["openai"]} (`pepperpy plugins list`)')
        bad = next((n for n in names if not _PACKAGE_NAME.fullmatch(n)), None)
        if bad is not None:
            raise ConfigError(f'{path}: "allow_newer" lists {bad[:80]!r} for {plugin_id}, which is not a package '
                              'name; write names only, without versions or extras, e.g. {"llm/openai": ["openai"]}')
    return data


def save_cooldown(home: Path, text: str, where: str) -> Path:
    """Save ``"cooldown": text`` (checked: a number of days, or 7d, 12h, 2w; 0 is off) in the settings file;
    ``where`` names where the text came from in the error."""
    parse_duration(text, where)

    def change(data: dict[str, Any]) -> None:
        data["cooldown"] = text.strip()

    return _rewrite(home, change, "save the cooldown")


def forget_cooldown(home: Path) -> Path:
    """Remove ``"cooldown"`` from the settings file: the default (or the variable) is in force again."""

    def change(data: dict[str, Any]) -> None:
        data.pop("cooldown", None)

    return _rewrite(home, change, "remove the saved cooldown")


def allow_newer(home: Path, plugin_id: str, names: Iterable[str]) -> list[str]:
    """Add ``names`` to the packages ``plugin_id`` may take at any age (``allow_newer``, names compared
    canonically); returns the plugin's whole list."""
    listed: list[str] = []

    def change(data: dict[str, Any]) -> None:
        allowed = data.setdefault("allow_newer", {})
        listed.extend(_added(allowed.get(plugin_id, []), names))
        allowed[plugin_id] = listed
        _checked(data, settings_path(home))

    _rewrite(home, change, f"allow newer releases for {plugin_id}")
    return listed


def disallow_newer(home: Path, plugin_id: str, names: Iterable[str] = ()) -> list[str]:
    """Remove ``names`` (none: all) from the packages ``plugin_id`` may take at any age; returns what is left.
    ConfigError when the plugin has no such exception."""
    path, wanted, left = settings_path(home), {canonicalize_name(n) for n in names}, []

    def change(data: dict[str, Any]) -> None:
        allowed = data.get("allow_newer", {})
        listed = allowed.get(plugin_id, [])
        missing = sorted(wanted - {canonicalize_name(n) for n in listed})
        if not listed or missing:
            what = f"{', '.join(missing)} for {plugin_id}" if listed else f"any package for {plugin_id}"
            raise ConfigError(f"{path} allows no newer release of {what} (allowed: {', '.join(listed) or 'none'}); "
                              "see `pepperpy cooldown show`")
        left.extend(n for n in listed if wanted and canonicalize_name(n) not in wanted)
        if left:
            allowed[plugin_id] = left
        else:
            del allowed[plugin_id]
        if not allowed:
            del data["allow_newer"]

    _rewrite(home, change, f"remove the exceptions of {plugin_id}")
    return left


def _rewrite(home: Path, change: Callable[[dict[str, Any]], None], what: str) -> Path:
    return rewrite_json(settings_path(home), lambda _path: dict(read_settings(home)), change, what)


def parse_duration(text: str, where: str) -> str:
    """``"7"``, ``"7d"``, ``"7 days"``, ``"12h"``, ``"2w"`` as uv's ``"7 days"`` (``"1 hour"``: uv reads both
    numbers); ``"0"`` (any unit) as "" (off)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"{where}={text!r} is not a cooldown: write a number of days (7), or 7d, 12h, 2w; 0 turns it off"
        )
    number, unit = int(match[1]), _UNITS[(match[2] or "d")[0].lower()]
    return f"{number} {unit.removesuffix('s') if number == 1 else unit}" if number else ""


def cooldown_for(home: Path, plugin_id: str) -> Cooldown:
    """The cooldown for installing ``plugin_id``'s requirements now (reads the variable and the settings file)."""
    settings = read_settings(home)
    allowed = settings.get("allow_newer", {})
    names = tuple(sorted({canonicalize_name(n) for n in allowed.get(plugin_id, [])}))  # type: ignore[union-attr]
    raw = os.environ.get(COOLDOWN_VARIABLE, "").strip()
    if raw:
        return Cooldown(parse_duration(raw, COOLDOWN_VARIABLE), COOLDOWN_VARIABLE, names)
    if "cooldown" in settings:
        path = settings_path(home)
        return Cooldown(parse_duration(str(settings["cooldown"]), f'{path} "cooldown"'), str(path), names)
    return Cooldown(DEFAULT, "the default", names)


def unchecked_sources(plugin_id: str, cooldown: Cooldown) -> str | None:
    """A warning when uv may take packages from places without upload times (``UV_FIND_LINKS``), else None."""
    links = os.environ.get("UV_FIND_LINKS", "").strip()
    if not cooldown.duration or not links:
        return None
    return (
        f"plugin {plugin_id}: uv may take packages from the --find-links folders in UV_FIND_LINKS ({links[:200]}), "
        f"which have no upload times: the install cooldown of {cooldown.describe()} cannot check them. "
        "Unset UV_FIND_LINKS, or ship a hash-checked requirements.lock with the plugin (pepperpy plugins lock)."
    )


def explain(output: str, plugin_id: str, cooldown: Cooldown, home: Path, now: datetime | None = None) -> str | None:
    """The error for uv output saying the needed release is younger than the cooldown, else None."""
    found = list(_FILTERED.finditer(output))
    if not found or not cooldown.duration:
        return None
    now = now or datetime.now(UTC)
    names = sorted({canonicalize_name(m["name"]) for m in found})
    example = json.dumps({"allow_newer": {plugin_id: _merged(home, plugin_id, names)}})
    allow = (f"allow newer {', '.join(names)} for {plugin_id} only, in {settings_path(home)}: {example} (`pepperpy "
             f"cooldown allow {plugin_id} {' '.join(names)}` writes it); or change the cooldown for every plugin: "
             f'{COOLDOWN_VARIABLE}=1d (0 turns it off) or "cooldown" in that file (`pepperpy cooldown set 1d`).')
    undated = [f"{m['name']} {m['version']}" for m in found if m["published"] is None]
    if undated:
        return (
            f"plugin {plugin_id} needs {', '.join(undated)}, but the package index gives no upload time for it (an "
            f"HTML-only index?), so the install cooldown of {cooldown.describe()} excludes it. Use an index with "
            f"upload times (a JSON index, PEP 691), or {allow}"
        )
    releases = ", ".join(f"{m['name']} {m['version']} (uploaded {_age(m['published'], now)} ago)" for m in found)
    return (
        f"plugin {plugin_id} needs {releases}, younger than the install cooldown of {cooldown.describe()}: "
        "PepperPy installs only releases older than that, so a release withdrawn within days (as compromised "
        f"ones are) never reaches you. Wait until it is old enough; or {allow}"
    )


def _merged(home: Path, plugin_id: str, names: list[str]) -> list[str]:
    """The plugin's ``allow_newer`` list in the settings file with ``names`` added: what to write there, whole."""
    return _added(read_settings(home).get("allow_newer", {}).get(plugin_id, []), names)  # type: ignore[union-attr]


def _added(existing: list[str], names: Iterable[str]) -> list[str]:
    """``existing`` followed by those of ``names`` it does not hold yet (package names compared canonically)."""
    listed = list(existing)
    for name in names:
        if canonicalize_name(name) not in {canonicalize_name(n) for n in listed}:
            listed.append(name)
    return listed


def _age(published: str, now: datetime) -> str:
    try:
        when = datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return f"at {published}, not long"
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 90:
        return "1 minute"
    if seconds < 2 * 3600:
        return f"{round(seconds / 60)} minutes"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} hours"
    return f"{round(seconds / 86400)} days"


__all__ = ["COOLDOWN_VARIABLE", "DEFAULT", "SETTINGS_FILE", "Cooldown", "allow_newer", "cooldown_for",
           "disallow_newer", "explain", "forget_cooldown", "parse_duration", "read_settings", "save_cooldown", "settings_path",
           "unchecked_sources"]
