"""A cached index of validated plugin manifests: listing plugins without pydantic when nothing changed.

``<home>/index.json`` (written atomically) keeps, per plugin folder, the outcome of validating
its plugin.json (the manifest's summary, or the problem) and its requirements; per search path,
the plugin folders it holds; and, per Python environment, the ``pepperpy.plugins`` entry points,
whether the environment already provides each plugin's requirements and, for a plugin with
``"isolation": "process"``, the fingerprint naming its worker's venv (``pepperpy/_isolation/env.py``:
it depends on the versions of PepperPy's own dependencies installed here).

Staleness is decided by cheap ``stat`` calls only:

- a folder entry by the mtimes (ns) of the folder, its plugin.json, its requirements file and its lock;
- a search path's folder list by the path's mtime (a plugin folder added or removed);
- the environment part by the mtimes of the ``sys.path`` directories (a distribution installed).

Only stale entries are validated again, with the PluginManager's own code (which imports
pydantic); a fresh index is read with ``json`` alone. Discovery order, shadowing and broken
folders follow ``PluginManager.discover`` exactly (tests compare the two).
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pepperpy import _envs
from pepperpy._paths import builtin_plugins_dir, pepperpy_home, plugin_folders_in
from pepperpy._version import __version__

INDEX_FILE = "index.json"
_FORMAT = 2  # 2: a plugin's author and isolation are kept too


@dataclass(frozen=True)
class IndexedPlugin:
    """A valid plugin folder as the index records it."""

    id: str
    version: str
    description: str
    path: str
    aliases: tuple[str, ...]
    requirements: tuple[str, ...]  # the requirements file's lines and the model packages, normalized
    fingerprint: str  # of pepperpy._install.RequirementSet: names its env dir
    requirements_problem: str | None  # the requirements file does not parse
    environment: str  # "none", "provided" (by the running environment), "missing", or a conflict message
    source: str | None = None  # "<distribution> <version>" when an installed distribution ships the folder
    author: str = ""
    isolation: str = "inprocess"  # plugin.json's "isolation": "process" runs it in a worker process
    worker_fingerprint: str = ""  # names the worker's venv of a plugin with "isolation": "process"

    def env_dir(self, home: Path) -> Path:
        """Where its requirements go: ``pepperpy._install.env_dir``, or the worker's venv
        (``pepperpy._isolation.env.env_path``) for a plugin with ``"isolation": "process"``."""
        return _envs.env_folder(home, self.id, self._env_fingerprint)

    @property
    def _env_fingerprint(self) -> str:
        return self.worker_fingerprint if self.isolation == "process" else self.fingerprint

    def requirements_status(self, home: Path) -> str:
        """"none", "installed", "not installed", "invalid" or "conflict", from cheap file checks.

        For a plugin with ``"isolation": "process"``: whether its worker's venv is built (the parent never
        imports its requirements), also when it has none (the venv is made on first use all the same).
        """
        if self.requirements_problem is not None:
            return "invalid"
        isolated = self.isolation == "process"
        if not isolated and not self.requirements:
            return "none"
        if not _envs.needs_install(self.env_dir(home), self._env_fingerprint, isolated=isolated,
                                   has_requirements=bool(self.requirements),
                                   provided=lambda: self.environment == "provided"):
            return "installed"
        if isolated or self.environment == "missing":
            return "not installed"
        return "conflict"


@dataclass
class Listing:
    """What discovery finds, read from the index: as ``PluginManager.discover`` plus its entry points."""

    plugins: dict[str, IndexedPlugin] = field(default_factory=dict)
    broken: list[tuple[str, str]] = field(default_factory=list)  # (folder, problem)
    shadowed: list[tuple[str, str, str]] = field(default_factory=list)  # (id, hidden folder, shadowing folder)
    entry_points: list[dict[str, str]] = field(default_factory=list)  # class entry points: id, value, source
    shadowed_entry_points: list[dict[str, str]] = field(default_factory=list)  # ... plus shadowed_by
    broken_entry_points: list[dict[str, str]] = field(default_factory=list)  # name, value, source, problem
    revalidated: list[str] = field(default_factory=list)  # folders validated again in this call (stale)


def _mtime(path: str) -> int:
    try:
        return os.stat(path).st_mtime_ns
    except OSError:
        return -1


def _environment_stamp() -> list[list[Any]]:
    """The ``sys.path`` directories (not the script's or working directory) and their mtimes."""
    paths = sys.path if sys.flags.safe_path else sys.path[1:]
    return [[p, _mtime(p)] for p in paths if p]


class Index:
    """The index of one home, loaded from ``<home>/index.json`` and saved back when it changed."""

    def __init__(self, home: Path):
        self.home = home
        self.path = home / INDEX_FILE
        self.data = self._read()
        self.dirty = False
        self._environment_checked = False
        self._pins: list[str] | None = None  # PepperPy's pinned dependencies, read once when a worker stamp is due

    def _header(self) -> dict[str, Any]:
        python = f"{sys.executable} {sys.implementation.cache_tag}"
        return {"format": _FORMAT, "pepperpy": __version__, "python": python}

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_bytes())
        except (OSError, ValueError):
            data = None
        tables = ("roots", "folders")
        if not isinstance(data, dict) or data.get("header") != self._header() or not all(
            isinstance(data.get(table), dict) for table in tables
        ):
            return {"header": self._header(), "roots": {}, "folders": {}, "environment": None}
        return data

    def save(self) -> None:
        """Write the index if it changed; an unwritable home only costs the next call its speed."""
        if not self.dirty:
            return
        from pepperpy._atomic import atomic_write

        for table in ("roots", "folders"):  # forget what is gone from the disk
            for gone in [path for path in self.data[table] if not os.path.isdir(path)]:
                del self.data[table][gone]
        try:
            atomic_write(self.path, json.dumps(self.data, separators=(",", ":")).encode())
        except OSError:
            return
        self.dirty = False

    # -- the environment: entry points, and whether it provides requirements -----------------

    def environment(self) -> dict[str, Any]:
        """The ``pepperpy.plugins`` entry points of the running environment (read again when it changed)."""
        if not self._environment_checked:
            stamp = _environment_stamp()
            cached = self.data.get("environment")
            if cached is None or cached.get("stamp") != stamp:
                self.data["environment"] = dict(_read_entry_points(), stamp=stamp, provided={}, workers={})
                self.dirty = True
            self._environment_checked = True
        return self.data["environment"]

    def environment_status(self, plugin: dict[str, Any]) -> str:
        """Whether the running environment provides the requirements of ``plugin`` (cached per environment)."""
        if not (plugin["requirements"] or plugin["model_packages"]):
            return "none"
        provided = self.environment()["provided"]
        key = f"{plugin['id']}-{plugin['fingerprint']}"
        if key not in provided:
            provided[key] = _environment_status(plugin)
            self.dirty = True
        return provided[key]

    def worker_fingerprint(self, plugin: dict[str, Any]) -> str:
        """The fingerprint of the worker's venv of a plugin with ``"isolation": "process"`` ("" for another
        plugin), cached per environment: computing it reads the versions of PepperPy's dependencies."""
        if plugin["isolation"] != "process" or plugin["requirements_problem"] is not None:
            return ""
        workers = self.environment().setdefault("workers", {})
        key = f"{plugin['id']}-{plugin['fingerprint']}"
        if key not in workers:
            from pepperpy._isolation import env

            if self._pins is None:
                self._pins = env.host_pins()
            has_requirements = bool(plugin["requirements"] or plugin["model_packages"])
            workers[key] = env.stamp_of(plugin["fingerprint"] if has_requirements else None, self._pins)
            self.dirty = True
        return workers[key]

    # -- search paths and their plugin folders ------------------------------------------------

    def default_search_paths(self) -> list[Path]:
        """``PluginManager().search_paths()`` of a manager without fixed or registered paths."""
        extra = [Path(p) for p in os.environ.get("PEPPERPY_PLUGIN_PATH", "").split(os.pathsep) if p]
        dirs = [Path(location) for location in self.environment()["dirs"]]
        return [builtin_plugins_dir(), *dirs, self.home / "plugins", Path.cwd() / "plugins", *extra]

    def plugin_folders(self, root: str) -> list[str]:
        """The plugin folders of one search path, as ``PluginManager._plugin_folders`` lists them."""
        mtime_ns = _mtime(root)
        if mtime_ns == -1:
            return []
        cached = self.data["roots"].get(root)
        if cached is None or cached["mtime"] != mtime_ns:
            folders = plugin_folders_in(root)
            cached = self.data["roots"][root] = {"mtime": mtime_ns, "folders": folders}
            self.dirty = True
        return cached["folders"]

    # -- one folder ------------------------------------------------------------------------------

    def folder(self, folder: str) -> tuple[dict[str, Any], bool]:
        """The outcome of validating ``folder`` ({"plugin": {...}} or {"problem": "..."}), and whether it was
        validated just now (its entry was missing or stale)."""
        cached = self.data["folders"].get(folder)
        if cached is not None and cached["key"] == _folder_key(folder, cached.get("requirements_file")):
            return cached, False
        cached = _validate(folder)
        cached["key"] = _folder_key(folder, cached.get("requirements_file"))
        self.data["folders"][folder] = cached
        self.dirty = True
        return cached, True


def _folder_key(folder: str, requirements_file: str | None) -> list[int]:
    """The mtimes (ns) of the folder, its plugin.json (and size), its requirements file and its requirements.lock."""
    try:
        manifest = os.stat(os.path.join(folder, "plugin.json"))
        manifest_key = [manifest.st_mtime_ns, manifest.st_size]
    except OSError:
        manifest_key = [-1, -1]
    requirements = os.path.join(folder, requirements_file or "requirements.txt")
    lock = os.path.join(folder, "requirements.lock")  # pepperpy._lockfile.LOCK_FILE: part of the env's fingerprint
    return [_mtime(folder), *manifest_key, _mtime(requirements), _mtime(lock)]


def _validate(folder: str) -> dict[str, Any]:
    """Validate ``folder`` with the PluginManager's own checks (this imports pydantic)."""
    from pepperpy._manifest import read_manifest
    from pepperpy.errors import PepperPyError

    try:
        os.stat(os.path.join(folder, "plugin.json"))
        manifest = read_manifest(folder, __version__)
    except (OSError, PepperPyError) as exc:
        return {"problem": str(exc)}
    plugin: dict[str, Any] = {
        "id": manifest.id,
        "version": manifest.version,
        "description": manifest.description,
        "author": manifest.author,
        "isolation": manifest.isolation,
        "aliases": sorted(manifest.aliases),
        "requirements": [],
        "model_packages": [],
        "fingerprint": "",
        "requirements_problem": None,
    }
    try:
        from pepperpy import _install

        needed = _install.requirement_set(manifest.id, Path(folder), manifest)
    except PepperPyError as exc:
        plugin["requirements_problem"] = str(exc)
    else:
        plugin["requirements"] = [str(r) for r in needed.requirements]
        plugin["model_packages"] = [str(r) for r in needed.model_packages]
        plugin["fingerprint"] = needed.fingerprint()
    return {"plugin": plugin, "requirements_file": manifest.requirements}


def _environment_status(plugin: dict[str, Any]) -> str:
    """"provided" when the running environment satisfies the plugin's requirements, else "missing" or why not."""
    from packaging.requirements import Requirement

    from pepperpy import _install
    from pepperpy.errors import PepperPyError

    needed = _install.RequirementSet(
        plugin_id=plugin["id"],
        requirements=tuple(Requirement(r) for r in plugin["requirements"]),
        model_packages=tuple(Requirement(r) for r in plugin["model_packages"]),
    )
    try:
        return "missing" if _install.missing_from_running_env(needed) else "provided"
    except PepperPyError as exc:
        return str(exc)


def _read_entry_points() -> dict[str, Any]:
    """The entry points of group ``pepperpy.plugins``, read as a default PluginManager reads them (metadata only)."""
    from pepperpy import _entry_points

    found = _entry_points.installed()
    dirs, sources = _entry_points.folder_dirs(found)
    classes, broken, shadowed = _entry_points.class_plugins(found)
    return {
        "dirs": [str(d) for d in dirs],
        "sources": dict(sources),
        "classes": [
            {"id": p.id, "value": p.entry_point.value, "source": p.source, "version": p.version}
            for p in classes.values()
        ],
        "shadowed": [
            {"id": s.plugin.id, "value": s.plugin.entry_point.value, "source": s.plugin.source,
             "version": s.plugin.version, "shadowed_by": s.shadowed_by}
            for s in shadowed
        ],
        "broken": [{"name": b.name, "value": b.value, "source": b.source, "problem": b.problem} for b in broken],
    }


def load(home: Path | None = None, search_paths: list[Path] | None = None) -> Listing:
    """Discover plugins through the index of ``home`` (default: PepperPy's home), refreshing stale entries.

    ``search_paths`` as ``PluginManager(search_paths=...)`` takes them (then no entry points);
    by default, the search path of the process-wide manager.
    """
    index = Index(home or pepperpy_home())
    environment = index.environment()
    if search_paths is not None:
        environment = {"sources": {}, "classes": [], "shadowed": [], "broken": []}
    listing = Listing()
    seen: set[str] = set()
    for root in index.default_search_paths() if search_paths is None else search_paths:
        for folder in index.plugin_folders(str(root)):
            if folder in seen:
                continue
            seen.add(folder)
            outcome, revalidated = index.folder(folder)
            if revalidated:
                listing.revalidated.append(folder)
            if "problem" in outcome:
                listing.broken.append((folder, outcome["problem"]))
                continue
            data = outcome["plugin"]
            plugin = _plugin(folder, data, index.environment_status(data), index.worker_fingerprint(data), environment)
            if plugin.id in listing.plugins:
                listing.shadowed.append((plugin.id, listing.plugins[plugin.id].path, folder))
            listing.plugins[plugin.id] = plugin
    _place_entry_points(listing, environment)
    index.save()
    return listing


def _plugin(folder: str, data: dict[str, Any], status: str, worker_fingerprint: str,
            environment: dict[str, Any]) -> IndexedPlugin:
    sources = environment["sources"]
    source = None
    if sources:  # a folder of an installed distribution's package of plugin folders
        source = sources.get(os.path.realpath(os.path.dirname(folder))) or sources.get(os.path.realpath(folder))
    return IndexedPlugin(
        id=data["id"],
        version=data["version"],
        description=data["description"],
        path=folder,
        aliases=tuple(data["aliases"]),
        requirements=(*data["requirements"], *(f"{r} (--no-deps)" for r in data["model_packages"])),
        fingerprint=data["fingerprint"],
        requirements_problem=data["requirements_problem"],
        environment=status,
        source=source,
        author=data["author"],
        isolation=data["isolation"],
        worker_fingerprint=worker_fingerprint,
    )


def _place_entry_points(listing: Listing, environment: dict[str, Any]) -> None:
    """As ``PluginManager._place_entry_points``: a class entry point ranks below every plugin folder."""
    listing.shadowed_entry_points = list(environment["shadowed"])
    for plugin in environment["classes"]:
        folder = listing.plugins.get(plugin["id"])
        if folder is None:
            listing.entry_points.append(plugin)
        else:
            listing.shadowed_entry_points.append({**plugin, "shadowed_by": folder.path})
    listing.broken_entry_points = list(environment["broken"])


__all__ = ["INDEX_FILE", "IndexedPlugin", "Listing", "load", "pepperpy_home"]
