"""The PluginManager: discover, validate, install, load and create plugins.

One class and one process-wide instance (``PluginManager.instance()``). Tests and
embedders may build their own with an explicit search path and home.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.metadata
import importlib.util
import os
import re
import sys
import threading
import types
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pepperpy._log import logger
from pepperpy._version import __version__
from pepperpy.errors import (
    ConfigError,
    PepperPyError,
    PluginError,
    PluginInstallError,
    PluginLoadError,
    PluginManifestError,
    PluginNotFoundError,
)

# Category -> "module:BaseClass" every provider of that category must subclass; any other
# simple lowercase category needs only PepperpyPlugin.
CATEGORY_BASES: dict[str, str] = {
    "llm": "pepperpy.llm:LLMProvider",
    "embeddings": "pepperpy.embeddings:EmbeddingProvider",
    "rag": "pepperpy.rag:RAGProvider",
    "storage": "pepperpy.storage:StorageProvider",
}
GENERIC_BASE = "pepperpy.core:PepperpyPlugin"
ENTRY_POINT_GROUP = "pepperpy.plugins"
# Plugin modules load under this package (a child of pepperpy, so that
# ``logger.enable("pepperpy")`` also turns on the plugins' own logs).
SYNTHETIC_PACKAGE = "pepperpy.loaded_plugins"
_CATEGORY = re.compile(r"[a-z][a-z0-9_-]*\Z")


@dataclass(frozen=True)
class PluginInfo:
    """A valid plugin folder found by discovery."""

    manifest: Any  # PluginManifest
    path: Path

    @property
    def id(self) -> str:
        return self.manifest.id


@dataclass(frozen=True)
class BrokenPlugin:
    """A folder holding a plugin.json that failed validation, and why."""

    path: Path
    problem: str


@dataclass(frozen=True)
class ShadowedPlugin:
    """A plugin folder hidden by a higher-precedence folder with the same id."""

    id: str
    path: Path
    shadowed_by: Path


@dataclass
class _RootCache:
    mtime_ns: int = -1
    folders: list[str] = field(default_factory=list)


def pepperpy_home() -> Path:
    return Path(os.environ.get("PEPPERPY_HOME") or Path.home() / ".pepperpy")


def builtin_plugins_dir() -> Path:
    """Inside a wheel the plugins ship as ``pepperpy/_builtin_plugins``; in a checkout they are ``plugins/``."""
    package = Path(__file__).resolve().parent
    shipped = package / "_builtin_plugins"
    return shipped if shipped.is_dir() else package.parent / "plugins"


class PluginManager:
    """Finds plugin folders, installs their requirements on demand and creates providers."""

    _instance: PluginManager | None = None
    _instance_lock = threading.Lock()

    def __init__(self, search_paths: Iterable[str | os.PathLike[str]] | None = None, home: Path | None = None):
        self._fixed_paths = [Path(p) for p in search_paths] if search_paths is not None else None
        self._home = Path(home) if home is not None else None
        self._registered_paths: list[Path] = []
        self._registered_classes: dict[str, type] = {}
        self._lock = threading.RLock()
        self._root_cache: dict[str, _RootCache] = {}
        self._manifest_cache: dict[str, tuple[tuple[int, int], Any]] = {}
        self._classes: dict[str, type] = {}
        self._ready: set[str] = set()
        self._install_locks: dict[str, threading.Lock] = {}
        self._entry_point_cache: list[Path] | None = None
        self.shared_resources: dict[str, Any] = {}  # objects providers share, such as HTTP client pools
        self.plugins: dict[str, PluginInfo] = {}
        self.broken: list[BrokenPlugin] = []
        self.shadowed: list[ShadowedPlugin] = []

    @classmethod
    def instance(cls) -> PluginManager:
        """The process-wide manager, built on first use."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    @property
    def home(self) -> Path:
        return self._home or pepperpy_home()

    # -- discover -----------------------------------------------------------------

    def search_paths(self) -> list[Path]:
        """Roots to scan, lowest precedence first."""
        if self._fixed_paths is not None:
            return [*self._fixed_paths, *self._registered_paths]
        extra = [Path(p) for p in os.environ.get("PEPPERPY_PLUGIN_PATH", "").split(os.pathsep) if p]
        return [
            builtin_plugins_dir(),
            *self._entry_point_dirs(),
            self.home / "plugins",
            Path.cwd() / "plugins",
            *extra,
            *self._registered_paths,
        ]

    def register_plugin_path(self, path: str | os.PathLike[str]) -> None:
        """Add a folder of plugin folders (or one plugin folder) with the highest precedence."""
        with self._lock:
            self._registered_paths.append(Path(path))

    def _entry_point_dirs(self) -> list[Path]:
        if self._entry_point_cache is None:
            dirs = []
            for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                spec = importlib.util.find_spec(entry_point.module)
                if spec is not None and spec.submodule_search_locations:
                    dirs.extend(Path(p) for p in spec.submodule_search_locations)
            self._entry_point_cache = dirs
        return self._entry_point_cache

    def discover(self) -> dict[str, PluginInfo]:
        """Scan the search path; return valid plugins by id. Broken folders land in ``self.broken``."""
        with self._lock:
            found: dict[str, PluginInfo] = {}
            broken: list[BrokenPlugin] = []
            shadowed: list[ShadowedPlugin] = []
            seen: set[str] = set()
            for root in self.search_paths():
                for folder in self._plugin_folders(str(root)):
                    if folder in seen:
                        continue
                    seen.add(folder)
                    outcome = self._read_folder(folder)
                    if isinstance(outcome, BrokenPlugin):
                        broken.append(outcome)
                        continue
                    if outcome.id in found:
                        shadowed.append(ShadowedPlugin(outcome.id, found[outcome.id].path, outcome.path))
                    found[outcome.id] = outcome
            if shadowed != self.shadowed:
                for hidden in shadowed:
                    logger.warning("plugin {} at {} shadows the one at {}", hidden.id, hidden.shadowed_by, hidden.path)
            self.plugins, self.broken, self.shadowed = found, broken, shadowed
            return found

    def _plugin_folders(self, root: str) -> list[str]:
        try:
            mtime_ns = os.stat(root).st_mtime_ns
        except OSError:
            return []
        cached = self._root_cache.get(root)
        if cached is None or cached.mtime_ns != mtime_ns:
            real_root = os.path.realpath(root)
            if os.path.isfile(os.path.join(real_root, "plugin.json")):
                folders = [real_root]
            else:
                with os.scandir(real_root) as entries:
                    folders = sorted(
                        os.path.realpath(entry.path) if entry.is_symlink() else entry.path
                        for entry in entries
                        if entry.is_dir() and os.path.isfile(os.path.join(entry.path, "plugin.json"))
                    )
            cached = self._root_cache[root] = _RootCache(mtime_ns, folders)
        return cached.folders

    def _read_folder(self, folder: str) -> PluginInfo | BrokenPlugin:
        from pepperpy._manifest import read_manifest

        try:
            stat = os.stat(os.path.join(folder, "plugin.json"))
        except OSError as exc:
            return BrokenPlugin(Path(folder), str(exc))
        key = (stat.st_mtime_ns, stat.st_size)
        cached = self._manifest_cache.get(folder)
        if cached is not None and cached[0] == key:
            return cached[1]
        try:
            outcome: PluginInfo | BrokenPlugin = PluginInfo(read_manifest(folder, __version__), Path(folder))
        except PluginManifestError as exc:
            logger.warning("skipping plugin folder {}: {}", folder, exc)
            outcome = BrokenPlugin(Path(folder), str(exc))
        self._manifest_cache[folder] = (key, outcome)
        return outcome

    def list_plugins(self, category: str | None = None) -> list[PluginInfo]:
        plugins = self.discover().values()
        return sorted((p for p in plugins if category in (None, p.manifest.category)), key=lambda p: p.id)

    # -- look up -----------------------------------------------------------------

    def resolve(self, category: str, name: str) -> tuple[PluginInfo, dict[str, Any], dict[str, str], str | None]:
        """Find ``category/name`` (a plugin or an alias): its info, preset config, env mapping and alias."""
        plugins = self.plugins if f"{category}/{name}" in self.plugins else self.discover()
        info = plugins.get(f"{category}/{name}")
        if info is not None:
            return info, dict(info.manifest.config), dict(info.manifest.env), None
        for candidate in plugins.values():
            alias = candidate.manifest.aliases.get(name)
            if candidate.manifest.category == category and alias is not None:
                config = {**candidate.manifest.config, **alias.config}
                return candidate, config, {**candidate.manifest.env, **alias.env}, name
        raise self._not_found(category, name)

    def _not_found(self, category: str, name: str) -> PluginNotFoundError:
        names = sorted(
            {p.manifest.provider_name for p in self.plugins.values() if p.manifest.category == category}
            | {a for p in self.plugins.values() if p.manifest.category == category for a in p.manifest.aliases}
            | {key.split("/", 1)[1] for key in self._registered_classes if key.startswith(f"{category}/")}
        )
        message = f"no {category} plugin named {name!r}"
        if not names and category not in CATEGORY_BASES:
            categories = sorted({p.manifest.category for p in self.plugins.values()} | set(CATEGORY_BASES))
            close_categories = difflib.get_close_matches(category, categories, n=1, cutoff=0.6)
            hint = f"did you mean the category {close_categories[0]!r}? " if close_categories else ""
            message += f" ({hint}no plugin has the category {category!r}; categories found: {', '.join(categories)})"
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if close:
            message += f"; did you mean {' or '.join(f'{category}/{c}' for c in close)}?"
        message += f" Available {category} plugins: {', '.join(names) or 'none'}."
        if self.broken:
            problems = "\n".join(f"  {b.path}: {b.problem}" for b in self.broken)
            message += f"\nThese plugin folders failed validation and were skipped:\n{problems}"
        return PluginNotFoundError(message + "\nAdd a plugin folder to ./plugins or install one.")

    # -- install -------------------------------------------------------------------

    def ensure_requirements(self, info: PluginInfo) -> None:
        """Make the plugin's requirements importable; no subprocess when they already are."""
        from pepperpy import _install

        if info.id in self._ready:
            return
        with self._lock:
            lock = self._install_locks.setdefault(info.id, threading.Lock())
        with lock:
            if info.id in self._ready:
                return
            needed = self._requirement_set(info)
            if needed:
                target = _install.env_dir(self.home, needed)
                if not _install.is_stamped(target, needed) and _install.missing_from_running_env(needed):
                    try:
                        target = _install.install(self.home, needed)
                    except OSError as exc:  # an unwritable or full home
                        raise PluginInstallError(
                            f"could not install the requirements of plugin {info.id} into {target.parent}: "
                            f"{exc.strerror or exc}; make {self.home} writable and free some space, "
                            "or use another home (PEPPERPY_HOME, or PluginManager(home=...))"
                        ) from exc
                if target.is_dir() and str(target) not in sys.path:
                    sys.path.append(str(target))
                    importlib.invalidate_caches()
            self._ready.add(info.id)

    def needs_install(self, category: str, name: str) -> bool:
        """True when using ``category/name`` would run an install first (a cheap check, no subprocess)."""
        from pepperpy import _install

        if f"{category}/{name}" in self._registered_classes:
            return False
        info = self.resolve(category, name)[0]
        if info.id in self._ready or info.id in self._classes:
            return False
        needed = self._requirement_set(info)
        if not needed or _install.is_stamped(_install.env_dir(self.home, needed), needed):
            return False
        return bool(_install.missing_from_running_env(needed))

    def _requirement_set(self, info: PluginInfo) -> Any:
        from pepperpy import _install

        requirements_file = info.path / info.manifest.requirements
        where = f"{info.path / 'plugin.json'} model_packages"
        model_packages = (_install.parse_requirement_line(line, where) for line in info.manifest.model_packages)
        return _install.RequirementSet(
            plugin_id=info.id,
            requirements=_install.parse_requirements_file(requirements_file),
            model_packages=tuple(r for r in model_packages if r is not None),
            requirements_file=requirements_file,
        )

    # -- load ----------------------------------------------------------------------

    def register_plugin(self, category: str, name: str, provider_class: type) -> None:
        """Register a provider class defined in code, without a plugin folder."""
        if not _CATEGORY.match(category):
            raise PluginError(f"plugin category {category!r} must be a simple lowercase name such as 'tts'")
        self._check_class(category, provider_class, f"{category}/{name}")
        with self._lock:
            self._registered_classes[f"{category}/{name}"] = provider_class

    def load_class(self, category: str, name: str) -> type:
        """Install (if needed) and import the provider class of ``category/name``."""
        registered = self._registered_classes.get(f"{category}/{name}")
        if registered is not None:
            return registered
        return self._load(self.resolve(category, name)[0])

    def _load(self, info: PluginInfo) -> type:
        cached = self._classes.get(info.id)
        if cached is not None:
            return cached
        self.ensure_requirements(info)
        with self._lock:
            if info.id not in self._classes:
                provider_class = self._import_entry_point(info)
                self._check_class(info.manifest.category, provider_class, info.id, info.path)
                self._classes[info.id] = provider_class
            return self._classes[info.id]

    def _import_entry_point(self, info: PluginInfo) -> type:
        from pepperpy._manifest import entry_file

        manifest = info.manifest
        package = f"{SYNTHETIC_PACKAGE}.{plugin_package_name(info.id)}"
        module_name = f"{package}.{manifest.entry_module}"
        if SYNTHETIC_PACKAGE not in sys.modules:
            root = types.ModuleType(SYNTHETIC_PACKAGE, "Namespace of loaded PepperPy plugin folders.")
            root.__path__ = []
            sys.modules[SYNTHETIC_PACKAGE] = root
        plugin_package = types.ModuleType(package, manifest.description)
        plugin_package.__path__ = [str(info.path)]
        sys.modules[package] = plugin_package
        path = entry_file(str(info.path), manifest)
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginLoadError(f"plugin {info.id}: cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[loaded]
            raise PluginLoadError(
                f"plugin {info.id}: importing {path} failed with {type(exc).__name__}: {exc}"
                + ("" if isinstance(exc, PepperPyError) else "; fix the module")
            ) from exc
        provider_class = getattr(module, manifest.entry_class, None)
        if not isinstance(provider_class, type):
            raise PluginLoadError(
                f"plugin {info.id}: {path} has no class {manifest.entry_class!r} "
                f"(entry_point {manifest.entry_point!r} in {info.path / 'plugin.json'})"
            )
        return provider_class

    @staticmethod
    def _check_class(category: str, provider_class: type, plugin_id: str, path: Path | None = None) -> None:
        """The class must subclass its category's base and implement every abstract method."""
        module_name, class_name = CATEGORY_BASES.get(category, GENERIC_BASE).split(":")
        base = getattr(importlib.import_module(module_name), class_name)
        where = f" ({path})" if path else ""
        if not (isinstance(provider_class, type) and issubclass(provider_class, base)):
            raise PluginLoadError(
                f"plugin {plugin_id}{where}: {getattr(provider_class, '__name__', provider_class)!r} must subclass "
                f"{class_name} from {module_name}"
            )
        missing = sorted(getattr(provider_class, "__abstractmethods__", ()))
        if missing:
            methods = ", ".join(f"`async def {m}(...)`" for m in missing)
            raise PluginLoadError(
                f"plugin {plugin_id}{where}: {provider_class.__name__} does not implement {', '.join(missing)}, "
                f"required by {class_name}; add {methods}"
            )

    # -- create --------------------------------------------------------------------

    def create_provider(self, category: str, name: str, **config: Any) -> Any:
        """An uninitialized provider of ``category/name`` with validated config."""
        from pepperpy._config import build_provider
        from pepperpy.core import CreationContext

        registered = self._registered_classes.get(f"{category}/{name}")
        if registered is not None:
            context = CreationContext(f"{category}/{name}", self.home, {}, self.shared_resources)
            return build_provider(registered, context, config)
        info, preset, env, alias = self.resolve(category, name)
        provider_class = self._load(info)
        context = CreationContext(info.id, self.home, env, self.shared_resources, alias)
        return build_provider(provider_class, context, {**preset, **config})


def plugin_package_name(plugin_id: str) -> str:
    """A module name unique per plugin id (``llm/my-x`` and ``llm/my_x`` get different ones)."""
    readable = plugin_id.replace("/", "_").replace("-", "_")
    return f"{readable}_{hashlib.sha256(plugin_id.encode()).hexdigest()[:8]}"


def model_package_file(plugin_id: str, package: str, *parts: str) -> Path:
    """A data file (model weights, a tokenizer) inside an installed package, found without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            f"{plugin_id}: the model package {package!r} is not installed; delete the plugin's env dir under "
            f"<PEPPERPY_HOME>/envs/ so that it is installed again, or pass the file's path in the config"
        )
    return Path(next(iter(spec.submodule_search_locations)), *parts)


def get_plugin_manager() -> PluginManager:
    """The process-wide PluginManager."""
    return PluginManager.instance()


__all__ = [
    "BrokenPlugin",
    "PluginInfo",
    "PluginManager",
    "ShadowedPlugin",
    "get_plugin_manager",
    "model_package_file",
    "plugin_package_name",
]
