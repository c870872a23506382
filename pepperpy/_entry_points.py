"""Entry points of group ``pepperpy.plugins``, read from installed metadata (no plugin code is imported).

Two kinds: ``name = "package"`` names a package of plugin folders (searched like a plugin path);
``category.provider_name = "package.module:Class"`` names a provider class. The PluginManager
reads them once per manager; the plugin index reads them with the same functions.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

ENTRY_POINT_GROUP = "pepperpy.plugins"
CATEGORY_NAME = re.compile(r"[a-z][a-z0-9_-]*\Z")  # a category or provider name: llm, tts, awesome
_CLASS_ENTRY_POINT = re.compile(r"\s*[A-Za-z_][\w.]*\s*:\s*[A-Za-z_][\w.]*\s*(\[[^\]]*\])?\s*\Z")


@dataclass(frozen=True)
class EntryPointPlugin:
    """A provider class an installed distribution exposes as the entry point ``category.provider_name``.

    Recorded from the distribution's metadata only; the class is imported when the plugin is first used.
    """

    id: str
    entry_point: importlib.metadata.EntryPoint
    distribution: str
    version: str

    @property
    def category(self) -> str:
        return self.id.split("/", 1)[0]

    @property
    def provider_name(self) -> str:
        return self.id.split("/", 1)[1]

    @property
    def source(self) -> str:
        """``<distribution> <version>``, as ``pepperpy plugins`` shows it."""
        return f"{self.distribution} {self.version}".strip()


@dataclass(frozen=True)
class ShadowedEntryPoint:
    """A class entry point hidden by a plugin folder, or by an earlier distribution, with the same id."""

    plugin: EntryPointPlugin
    shadowed_by: str


@dataclass(frozen=True)
class BrokenEntryPoint:
    """An entry point of group ``pepperpy.plugins`` that names no valid ``category.provider_name``, and why."""

    name: str
    value: str
    source: str
    problem: str


def installed(
    source: Callable[[], Iterable[importlib.metadata.EntryPoint]] | None = None, enabled: bool = True
) -> list[importlib.metadata.EntryPoint]:
    """The entry points of group ``pepperpy.plugins``: from ``source`` when given, else from the installed
    distributions' metadata (none when not ``enabled``: a manager with its own search path)."""
    if source is not None:
        found: Iterable[importlib.metadata.EntryPoint] = source()
    elif enabled:
        found = importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)
    else:
        found = ()
    return [entry_point for entry_point in found if entry_point.group == ENTRY_POINT_GROUP]


def folder_dirs(entry_points: Iterable[importlib.metadata.EntryPoint]) -> tuple[list[Path], dict[str, str]]:
    """The folders of the entry points that name a package of plugin folders (a name without a "."), and
    each folder's real path -> ``<distribution> <version>``."""
    dirs: list[Path] = []
    sources: dict[str, str] = {}
    for entry_point in entry_points:
        if "." in entry_point.name:
            continue  # a provider class: see class_plugins
        spec = importlib.util.find_spec(entry_point.module)
        if spec is not None and spec.submodule_search_locations:
            for location in spec.submodule_search_locations:
                dirs.append(Path(location))
                distribution, version = _distribution_of(entry_point)
                sources[os.path.realpath(location)] = f"{distribution} {version}".strip()
    return dirs, sources


def class_plugins(
    entry_points: Iterable[importlib.metadata.EntryPoint],
) -> tuple[dict[str, EntryPointPlugin], list[BrokenEntryPoint], list[ShadowedEntryPoint]]:
    """Entry points named ``category.provider_name`` by id (the first distribution wins), broken, shadowed."""
    found: dict[str, EntryPointPlugin] = {}
    broken: list[BrokenEntryPoint] = []
    shadowed: list[ShadowedEntryPoint] = []
    for entry_point in entry_points:
        if "." not in entry_point.name:
            continue  # a package of plugin folders: see folder_dirs
        distribution, version = _distribution_of(entry_point)
        category, _, provider_name = entry_point.name.partition(".")
        problem = None
        if not (CATEGORY_NAME.match(category) and CATEGORY_NAME.match(provider_name)):
            problem = (
                "the name must be 'category.provider_name', each lowercase letters, digits, '_' or '-' "
                "starting with a letter, as 'llm.awesome'"
            )
        elif not _CLASS_ENTRY_POINT.match(entry_point.value):
            problem = "the value must name a class, as 'package.module:ClassName'"
        if problem is not None:
            source = f"{distribution} {version}".strip()
            broken.append(BrokenEntryPoint(entry_point.name, entry_point.value, source, problem))
            continue
        plugin = EntryPointPlugin(f"{category}/{provider_name}", entry_point, distribution, version)
        if plugin.id in found:
            shadowed.append(ShadowedEntryPoint(plugin, found[plugin.id].source))
        else:
            found[plugin.id] = plugin
    return found, broken, shadowed


def _distribution_of(entry_point: importlib.metadata.EntryPoint) -> tuple[str, str]:
    """The name and version of the distribution declaring ``entry_point``, from its metadata."""
    distribution = getattr(entry_point, "dist", None)
    if distribution is None:
        return "an unknown distribution", ""
    return distribution.metadata["Name"] or "an unknown distribution", distribution.version or ""


__all__ = [
    "CATEGORY_NAME", "ENTRY_POINT_GROUP", "BrokenEntryPoint", "EntryPointPlugin", "ShadowedEntryPoint",
    "class_plugins", "folder_dirs", "installed",
]
