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
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from packaging.utils import canonicalize_name

from pepperpy.errors import ConfigError

COOLDOWN_VARIABLE = "PEPPERPY_INSTALL_COOLDOWN"
SETTINGS_FILE = "install.json"
DEFAULT = "7 days"
_SETTINGS_KEYS = ("cooldown", "allow_newer")
_DURATION = re.compile(r"(\d{1,5})\s*(d|days?|h|hours?|w|weeks?)?", re.IGNORECASE)
_UNITS = {"d": "days", "h": "hours", "w": "weeks"}
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
    return data


def parse_duration(text: str, where: str) -> str:
    """``"7"``, ``"7d"``, ``"7 days"``, ``"12h"``, ``"2w"`` as uv's ``"7 days"``; ``"0"`` (any unit) as "" (off)."""
    match = _DURATION.fullmatch(text.strip())
    if match is None:
        raise ConfigError(
            f"{where}={text!r} is not a cooldown: write a number of days (7), or 7d, 12h, 2w; 0 turns it off"
        )
    number, unit = int(match[1]), _UNITS[(match[2] or "d")[0].lower()]
    return f"{number} {unit}" if number else ""


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
    example = json.dumps({"allow_newer": {plugin_id: names}})
    allow = (f"allow newer {', '.join(names)} for {plugin_id} only, in {settings_path(home)}: {example}; or change "
             f'the cooldown for every plugin: {COOLDOWN_VARIABLE}=1d (0 turns it off) or "cooldown" in that file.')
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


def _age(published: str, now: datetime) -> str:
    try:
        when = datetime.fromisoformat(published.replace("Z", "+00:00"))
    except ValueError:
        return f"at {published}, not long"
    seconds = max(0.0, (now - when).total_seconds())
    if seconds < 2 * 3600:
        return f"{max(1, round(seconds / 60))} minutes"
    if seconds < 2 * 86400:
        return f"{round(seconds / 3600)} hours"
    return f"{round(seconds / 86400)} days"


__all__ = ["COOLDOWN_VARIABLE", "DEFAULT", "SETTINGS_FILE", "Cooldown", "cooldown_for", "explain", "parse_duration",
           "read_settings", "settings_path", "unchecked_sources"]
