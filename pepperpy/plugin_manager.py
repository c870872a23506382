"""The PluginManager: discover, validate, install, load and create plugins.

One class and one process-wide instance (``PluginManager.instance()``). Tests and
embedders may build their own with an explicit search path and home.
"""

from __future__ import annotations

import difflib
import hashlib
import importlib
import importlib.abc
import importlib.machinery
import importlib.metadata
import importlib.util
import itertools
import os
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pepperpy import _entry_points
from pepperpy._categories import CATEGORY_BASES, GENERIC_BASE, plain_name
from pepperpy._entry_points import (
    CATEGORY_NAME,
    ENTRY_POINT_GROUP,
    BrokenEntryPoint,
    EntryPointPlugin,
    ShadowedEntryPoint,
)
from pepperpy._folder_files import folder_files
from pepperpy._log import logger
from pepperpy._paths import builtin_plugins_dir, pepperpy_home, plugin_folders_in
from pepperpy._resources import ResourceTable
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

# Plugin modules load under this package (a child of pepperpy, so that
# ``logger.enable("pepperpy")`` also turns on the plugins' own logs).
SYNTHETIC_PACKAGE = "pepperpy.loaded_plugins"


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


def same_id_problem(plugin_id: str, root: str, folders: list[str]) -> str:
    """Why several plugin folders of one search directory with the same id is a mistake (the last one is used)."""
    return (
        f"{len(folders)} plugin folders in {root} have the id {plugin_id}: {', '.join(folders)}; only the last, "
        f"{folders[-1]}, is used; give each its own provider_name in its plugin.json, or remove the copy"
    )


@dataclass(frozen=True)
class ShadowedPlugin:
    """A plugin folder hidden by a higher-precedence folder with the same id."""

    id: str
    path: Path
    shadowed_by: Path


@dataclass(frozen=True)
class LoadedFolder:
    """A plugin folder whose class is imported: the info and class it was loaded with, and its files as they were
    just before that import (``pepperpy._folder_files.folder_files``), which hot reload compares with the folder."""

    info: PluginInfo
    provider_class: type | None  # None: loaded only by worker processes (process isolation)
    files: dict[str, tuple[int, str]]

    @property
    def isolated(self) -> bool:
        return self.provider_class is None


@dataclass
class _RootCache:
    mtime_ns: int = -1
    folders: list[str] = field(default_factory=list)


class PluginManager:
    """Finds plugin folders, installs their requirements on demand and creates providers."""

    _instance: PluginManager | None = None
    _instance_lock = threading.Lock()
    # Numbers each manager's plugin modules apart (``..._m<n>``). Process-wide like sys.modules, which keeps a
    # manager's modules after it is gone: a number never comes back, so a later manager never finds an earlier
    # one's submodules there (an old folder's ``helpers``).
    _manager_numbers = itertools.count(1)

    def __init__(
        self,
        search_paths: Iterable[str | os.PathLike[str]] | None = None,
        home: Path | None = None,
        entry_points: Callable[[], Iterable[importlib.metadata.EntryPoint]] | None = None,
    ):
        """``entry_points`` returns the ``pepperpy.plugins`` entry points to use; by default the installed
        distributions' when ``search_paths`` is not given, none when it is."""
        self._fixed_paths = [Path(p) for p in search_paths] if search_paths is not None else None
        self._home = Path(home) if home is not None else None
        self._registered_paths: list[Path] = []
        self._registered_classes: dict[str, type] = {}
        self._lock = threading.RLock()
        self._root_cache: dict[str, _RootCache] = {}
        self._manifest_cache: dict[str, tuple[tuple[int, int], Any]] = {}
        self._classes: dict[str, type] = {}
        self._loaded_from: dict[str, tuple[PluginInfo, dict[str, tuple[int, str]]]] = {}  # id -> its folder at import
        self._loaded_by_workers: dict[str, tuple[PluginInfo, dict[str, tuple[int, str]]]] = {}  # the same, isolated
        self._ready: set[str] = set()
        self.reloads = 0  # bumped by every hot reload (pepperpy/_reload.py); the facade compares it per call
        self._generations: dict[str, int] = {}  # plugin id -> how often its folder was reloaded
        self._modules_suffix = f"_m{next(PluginManager._manager_numbers)}"  # managers never share plugin modules
        self._superseded: Any = None  # WeakKeyDictionary: a class replaced by a reload -> its plugin id
        self._install_locks: dict[str, threading.Lock] = {}
        self._sys_path_lock = threading.Lock()
        self._entry_point_cache: list[Path] | None = None
        self._entry_points_source = entry_points
        self._entry_points: list[importlib.metadata.EntryPoint] | None = None
        self._entry_point_dir_sources: dict[str, str] = {}  # real path of a package of folders -> its distribution
        self._class_entry_point_cache: tuple[dict[str, EntryPointPlugin], list[Any], list[Any]] | None = None
        self._entry_point_classes: dict[str, type] = {}
        self.entry_point_plugins: dict[str, EntryPointPlugin] = {}  # class entry points no folder shadows
        self.shadowed_entry_points: list[ShadowedEntryPoint] = []
        self.broken_entry_points: list[BrokenEntryPoint] = []
        self.shared_resources = ResourceTable()  # objects providers share, such as HTTP client pools
        self.hooks: list[Any] = []  # process-wide LLM call hooks, from register_hook() (pepperpy/hooks.py)
        self._entry_point_hooks: list[Any] | None = None
        self.recording: Any = None  # a Recording for every facade without its own (the pytest fixture pepperpy_recording)
        self.plugins: dict[str, PluginInfo] = {}
        self.broken: list[BrokenPlugin] = []
        self.shadowed: list[ShadowedPlugin] = []
        self.fallback_chains: dict[str, list[Any]] = {}  # category -> members (see pepperpy/_fallback.py)
        self._metadata: dict[str, dict[str, Any]] = {}  # "category/name" -> register_plugin_metadata's
        self._instances: dict[str, Any] = {}  # "category/name" -> weakref of the provider created last
        import weakref

        from pepperpy._aliases import AliasTable

        owner = weakref.ref(self)  # no reference cycle: a manager is freed as soon as it is unused
        self.aliases = AliasTable(lambda: owner().home)  # code aliases and <home>/aliases.json (pepperpy/_aliases.py)
        from pepperpy._user_options import UserOptions

        self.user_options = UserOptions(lambda: owner().home)  # <home>/options.json (pepperpy/_user_options.py)

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

    def call_hooks(self) -> list[Any]:
        """The process-wide LLM call hooks, outermost first: the ``pepperpy.hooks`` entry points, then ``hooks``."""
        if self._entry_point_hooks is None:
            from pepperpy.hooks import load_entry_point_hooks

            self._entry_point_hooks = load_entry_point_hooks() if self._fixed_paths is None else []
        return [*self._entry_point_hooks, *self.hooks] if self._entry_point_hooks else self.hooks

    def register_plugin_path(self, path: str | os.PathLike[str]) -> None:
        """Add a folder of plugin folders (or one plugin folder) with the highest precedence."""
        with self._lock:
            self._registered_paths.append(Path(path))

    def _entry_point_dirs(self) -> list[Path]:
        """The folders of the entry points that name a package of plugin folders (``_entry_points.folder_dirs``)."""
        if self._entry_point_cache is None:
            dirs, sources = _entry_points.folder_dirs(self._installed_entry_points())
            self._entry_point_dir_sources.update(sources)
            self._entry_point_cache = dirs
        return self._entry_point_cache

    def _installed_entry_points(self) -> list[importlib.metadata.EntryPoint]:
        """The entry points of group ``pepperpy.plugins``, read once from metadata (no code is imported)."""
        if self._entry_points is None:
            self._entry_points = _entry_points.installed(self._entry_points_source, self._fixed_paths is None)
        return self._entry_points

    def _class_entry_points(
        self,
    ) -> tuple[dict[str, EntryPointPlugin], list[BrokenEntryPoint], list[ShadowedEntryPoint]]:
        """Entry points named ``category.provider_name`` by id (``_entry_points.class_plugins``), read once."""
        if self._class_entry_point_cache is None:
            self._class_entry_point_cache = _entry_points.class_plugins(self._installed_entry_points())
        return self._class_entry_point_cache

    def _place_entry_points(self, folders: dict[str, PluginInfo]) -> None:
        """Called by discover: a class entry point ranks below every plugin folder with the same id."""
        classes, broken, shadowed = self._class_entry_points()
        by_folder = [ShadowedEntryPoint(p, str(folders[i].path)) for i, p in classes.items() if i in folders]
        shadowed = [*shadowed, *by_folder]
        if shadowed != self.shadowed_entry_points:
            for hidden in shadowed:
                plugin = hidden.plugin
                logger.warning("plugin {} from {} is shadowed by {}", plugin.id, plugin.source, hidden.shadowed_by)
        if broken != self.broken_entry_points:
            for bad in broken:
                logger.warning("skipping entry point {} = {!r} of {}: {}", bad.name, bad.value, bad.source, bad.problem)
        self.entry_point_plugins = {i: p for i, p in classes.items() if i not in folders}
        self.shadowed_entry_points, self.broken_entry_points = shadowed, broken

    def plugin_source(self, info: PluginInfo) -> str | None:
        """``<distribution> <version>`` when the plugin folder came from an installed distribution's entry point."""
        sources = self._entry_point_dir_sources
        return sources.get(os.path.realpath(info.path.parent)) or sources.get(os.path.realpath(info.path))

    def _entry_point_for(self, category: str, name: str) -> EntryPointPlugin | None:
        """The class entry point serving ``category/name``: none when a plugin folder has that id."""
        key = f"{category}/{name}"
        if key in self.plugins or key not in self._class_entry_points()[0]:
            return None
        if key not in self.entry_point_plugins:
            self.discover()
        return self.entry_point_plugins.get(key)

    def _entry_point_class(self, category: str, name: str) -> type | None:
        """The provider class of the class entry point serving ``category/name``, imported on first use."""
        plugin = self._entry_point_for(category, name)
        if plugin is None:
            return None
        with self._lock:
            if plugin.id not in self._entry_point_classes:
                entry_point = plugin.entry_point
                described = f"entry point {entry_point.name} = {entry_point.value!r} of {plugin.source}"
                try:
                    provider_class = entry_point.load()
                except Exception as exc:
                    raise PluginLoadError(
                        f"plugin {plugin.id}: loading its {described} (group {ENTRY_POINT_GROUP}) failed with "
                        f"{type(exc).__name__}: {exc}"
                        + ("" if isinstance(exc, PepperPyError) else f"; reinstall or fix {plugin.distribution}")
                    ) from exc
                self._check_class(plugin.category, provider_class, f"{plugin.id} ({described})")
                self._entry_point_classes[plugin.id] = provider_class
            return self._entry_point_classes[plugin.id]

    def discover(self) -> dict[str, PluginInfo]:
        """Scan the search path; return valid plugins by id. Broken folders land in ``self.broken``."""
        with self._lock:
            found: dict[str, PluginInfo] = {}
            broken: list[BrokenPlugin] = []
            shadowed: list[ShadowedPlugin] = []
            seen: set[str] = set()
            same_root: list[tuple[str, str, list[str]]] = []  # (id, root, its folders with that id): two or more
            for root in self.search_paths():
                in_root: dict[str, list[str]] = {}
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
                    in_root.setdefault(outcome.id, []).append(folder)
                same_root += [(i, str(root), folders) for i, folders in in_root.items() if len(folders) > 1]
            if shadowed != self.shadowed:
                for hidden in shadowed:
                    logger.warning("plugin {} at {} shadows the one at {}", hidden.id, hidden.shadowed_by, hidden.path)
                for plugin_id, root, folders in same_root:  # a mistake, not an override: the user must see it
                    warnings.warn(same_id_problem(plugin_id, root, folders), RuntimeWarning, stacklevel=2)
            self.plugins, self.broken, self.shadowed = found, broken, shadowed
            self._place_entry_points(found)
            return found

    def _plugin_folders(self, root: str) -> list[str]:
        try:
            mtime_ns = os.stat(root).st_mtime_ns
        except OSError:
            return []
        cached = self._root_cache.get(root)
        if cached is None or cached.mtime_ns != mtime_ns:
            folders = plugin_folders_in(root)
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
        else:
            from pepperpy._manifest import entry_file
            from pepperpy._trust import warn_if_others_can_write

            manifest_file = os.path.join(folder, "plugin.json")
            warn_if_others_can_write(folder, [manifest_file, entry_file(folder, outcome.manifest)])
        self._manifest_cache[folder] = (key, outcome)
        return outcome

    def list_plugins(self, category: str | None = None) -> list[PluginInfo]:
        plugins = self.discover().values()
        return sorted((p for p in plugins if category in (None, p.manifest.category)), key=lambda p: p.id)

    # -- look up -----------------------------------------------------------------

    def has_provider(self, category: str, name: str) -> bool:
        """True when ``category/name`` names something to create: a plugin folder, a class registered in code or
        exposed by an entry point, or an alias of one (imports nothing)."""
        try:
            if self._folderless_target(category, name) is None:
                self.resolve(category, name)
        except PepperPyError:
            return False
        return True

    def resolve(self, category: str, name: str) -> tuple[PluginInfo, dict[str, Any], dict[str, str], str | None]:
        """Find ``category/name`` (a plugin, or an alias: code, user or manifest aliases, in chains).

        Returns its info, the aliases' preset config (nearer aliases win; the plugin's own defaults
        are ``info.manifest.config``), the env mapping and the alias asked for (None for a plugin).
        """
        return self._resolve_target(category, name, *self._follow_aliases(category, name))

    def _resolve_target(
        self, category: str, name: str, target: str, chain: list[Any]
    ) -> tuple[PluginInfo, dict[str, Any], dict[str, str], str | None]:
        """``resolve`` once the code/user aliases from ``name`` are followed to ``target``."""
        from pepperpy._aliases import preset_of

        preset, env = preset_of(chain)
        info = self.plugins.get(f"{category}/{target}")
        if info is None:
            for candidate in self.plugins.values():
                alias = candidate.manifest.aliases.get(target)
                if candidate.manifest.category == category and alias is not None:
                    info, preset, env = candidate, {**alias.config, **preset}, {**alias.env, **env}
                    break
            else:
                error, target_key = self._not_found(category, target), f"{category}/{target}"
                if chain and (target_key in self._registered_classes or target_key in self.entry_point_plugins):
                    error = PluginNotFoundError(
                        f"{category}/{name} is an alias of {category}/{target}, a provider class without a plugin "
                        "folder to look up or install; create_provider makes it"
                    )
                elif chain:
                    path = " -> ".join(f"{category}/{a.name}" for a in chain)
                    error = PluginNotFoundError(
                        f"the alias {path} -> {category}/{target} (from {chain[-1].source}) points at nothing: {error}"
                    )
                raise error
        alias_name = name if chain or info.id != f"{category}/{name}" else None
        return info, preset, {**info.manifest.env, **env}, alias_name

    def _follow_aliases(self, category: str, name: str) -> tuple[str, list[Any]]:
        """The name at the end of the code/user alias chain from ``name``, and the aliases passed (nearest first)."""

        def is_plugin(candidate: str) -> bool:
            key = f"{category}/{candidate}"
            return key in self._registered_classes or key in self.plugins or key in self.entry_point_plugins

        if f"{category}/{name}" not in self.plugins and f"{category}/{name}" not in self.entry_point_plugins:
            self.discover()
        return self.aliases.follow(category, name, is_plugin)

    def register_plugin_alias(
        self, category: str, alias: str, target: str, config: dict[str, Any] | None = None,
        *, env: dict[str, str] | None = None,
    ) -> None:
        """Make ``category/alias`` another name for ``target`` (a plugin or an alias) with preset ``config``.

        Explicit config overrides the preset; ``env`` maps options to environment variables as in plugin.json.
        """
        key = f"{category}/{alias}"
        if key in self._registered_classes or key in self.discover() or key in self.entry_point_plugins:
            raise PluginError(
                f"{category}/{alias} is a plugin, so an alias of that name would never be used; choose another name"
            )
        self.aliases.register(category, alias, target, config, env)

    def _not_found(self, category: str, name: str) -> PluginNotFoundError:
        names = sorted(
            {p.manifest.provider_name for p in self.plugins.values() if p.manifest.category == category}
            | {a for p in self.plugins.values() if p.manifest.category == category for a in p.manifest.aliases}
            | {key.split("/", 1)[1] for key in self._registered_classes if key.startswith(f"{category}/")}
            | {p.provider_name for p in self.entry_point_plugins.values() if p.category == category}
        )
        message = f"no {category} plugin named {name!r}"
        if not names and category not in CATEGORY_BASES:
            categories = sorted(
                {p.manifest.category for p in self.plugins.values()}
                | {p.category for p in self.entry_point_plugins.values()}
                | set(CATEGORY_BASES)
            )
            close_categories = difflib.get_close_matches(category, categories, n=1, cutoff=0.6)
            hint = f"did you mean the category {close_categories[0]!r}? " if close_categories else ""
            message += f" ({hint}no plugin has the category {category!r}; categories found: {', '.join(categories)})"
        close = difflib.get_close_matches(name, names, n=3, cutoff=0.5)
        if close:
            message += f"; did you mean {' or '.join(f'{category}/{c}' for c in close)}?"
        else:
            message += "."
        message += f" Available {category} plugins: {', '.join(names) or 'none'}."
        likely = _broken_folder_named(self.broken, category, name)
        if likely is not None:  # the folder the caller most likely meant: its problem comes first
            message = (
                f"{category}/{name}: the plugin folder {likely.path} failed validation and was skipped: "
                f"{likely.problem}\n({message})"
            )
        others = [b for b in self.broken if b is not likely]
        if others:
            problems = "\n".join(f"  {b.path}: {b.problem}" for b in others)
            these = "Other" if likely else "These"
            message += f"\n{these} plugin folders failed validation and were skipped:\n{problems}"
        if self.broken_entry_points:
            problems = "\n".join(
                f"  {b.name} = {b.value!r} of {b.source}: {b.problem}" for b in self.broken_entry_points
            )
            message += f"\nThese entry points of group {ENTRY_POINT_GROUP} were skipped:\n{problems}"
        if likely is None:
            searched = ", ".join(str(path) for path in self.search_paths())
            here = Path.cwd() / "plugins"
            message += f"\nFolders searched: {searched}. Add a plugin folder to one of them (./plugins is {here}) or install one."
        return PluginNotFoundError(message)

    # -- install -------------------------------------------------------------------

    def ensure_requirements(self, info: PluginInfo, *, explicit: bool = False) -> None:
        """Make the plugin's requirements importable; no subprocess when they already are.

        ``explicit``: an install asked for by name (``pepperpy plugins install``), which ``PEPPERPY_INSTALL=never``
        does not stop."""
        from pepperpy import _install

        if info.id in self._ready:
            return
        with self._lock:
            lock = self._install_locks.setdefault(info.id, threading.Lock())
        with lock:
            if info.id in self._ready:
                return
            needed = self.requirement_set(info)
            if needed:
                target = _install.env_dir(self.home, needed)
                # A version conflict with what this process can import (the running environment, or another
                # plugin's env already on sys.path) raises here, also when this plugin's env is installed.
                if _install.missing_from_running_env(needed) and not _install.is_stamped(target, needed):
                    if not explicit:
                        self.refuse_runtime_install(info, needed)
                    try:
                        target = _install.install(self.home, needed)
                    except OSError as exc:  # an unwritable or full home
                        raise PluginInstallError(
                            f"could not install the requirements of plugin {info.id} into {target.parent}: "
                            f"{exc.strerror or exc}; make {self.home} writable and free some space, "
                            "or use another home (PEPPERPY_HOME, or PluginManager(home=...))"
                        ) from exc
                with self._sys_path_lock:  # check and join as one step: two plugins loading at once see each other
                    if target.is_dir() and str(target) not in sys.path:
                        _install.missing_from_running_env(needed)  # again: another env may have joined meanwhile
                        sys.path.append(str(target))
                        importlib.invalidate_caches()
            self._ready.add(info.id)

    def refuse_runtime_install(self, info: PluginInfo, needed: Any, *, isolated: bool = False) -> None:
        """Raise PluginInstallError when ``PEPPERPY_INSTALL=never`` forbids installing ``info``'s requirements (or
        making its worker's venv, ``isolated``) now; the error gives the command that installs it beforehand.
        ConfigError when the variable holds something else than ``auto`` or ``never``."""
        from pepperpy._envs import INSTALL_VARIABLE, install_mode

        if install_mode() != "never":
            return
        names = ", ".join(str(r) for r in (*needed.requirements, *needed.model_packages))
        if isolated:
            missing = "its worker process's venv" + (f" (with {names})" if names else "") + " is not made yet"
        else:
            missing = f"its requirements ({names}) are not installed"
        raise PluginInstallError(
            f"plugin {info.id}: {missing}, and {INSTALL_VARIABLE}=never forbids installing at run time; install it "
            f"beforehand with `{self.install_command(info)}` (`pepperpy plugins install --all` prepares every "
            f"plugin), or unset {INSTALL_VARIABLE} to install on first use"
        )

    def install_command(self, info: PluginInfo) -> str:
        """The shell command that installs ``info`` into this manager's home: ``pepperpy plugins install ID``, with
        ``PEPPERPY_HOME=...`` and ``PEPPERPY_PLUGIN_PATH=...`` in front when the command would not find them itself."""
        import shlex

        prefix = []
        if os.path.realpath(self.home) != os.path.realpath(pepperpy_home()):
            prefix.append(f"PEPPERPY_HOME={shlex.quote(str(self.home))}")
        if not self._command_finds(info):
            prefix.append(f"PEPPERPY_PLUGIN_PATH={shlex.quote(str(info.path.parent))}")
        return " ".join([*prefix, "pepperpy", "plugins", "install", info.id])

    def _command_finds(self, info: PluginInfo) -> bool:
        """True when ``pepperpy`` (a manager with the default search path) finds ``info``'s folder."""
        if self._fixed_paths is None and not self._registered_paths:
            return True
        extra = [Path(p) for p in os.environ.get("PEPPERPY_PLUGIN_PATH", "").split(os.pathsep) if p]
        defaults = (builtin_plugins_dir(), self.home / "plugins", Path.cwd() / "plugins", *extra)
        roots = {os.path.realpath(root) for root in defaults}
        return bool(roots & {os.path.realpath(info.path), os.path.realpath(info.path.parent)})

    def mark_ready(self, plugin_id: str) -> None:
        """Take ``plugin_id``'s requirements as importable already (a worker process: its venv holds them), so that
        no env of this manager's home is made or joined for it."""
        self._ready.add(plugin_id)

    def needs_install(self, category: str, name: str, config: dict[str, Any] | None = None) -> bool:
        """True when using ``category/name`` (created with ``config``) would run an install first (a cheap check,
        no subprocess)."""
        from pepperpy import _envs, _install, _isolation
        from pepperpy._isolation import env

        if self._folderless_target(category, name) is not None:
            return False
        info = self.resolve(category, name)[0]
        needed = self.requirement_set(info)
        if _isolation.is_isolated(self, category, name, config or {}):  # its worker's env (pepperpy/_isolation)
            folder, fingerprint, _ = env.env_path(self.home, info.id, needed)
            return _envs.needs_install(folder, fingerprint, isolated=True, has_requirements=bool(needed),
                                       provided=lambda: False)
        if info.id in self._ready or info.id in self._classes:
            return False
        return _envs.needs_install(
            _install.env_dir(self.home, needed), needed.fingerprint(), isolated=False, has_requirements=bool(needed),
            provided=lambda: not _install.missing_from_running_env(needed),
        )

    def requirement_set(self, info: PluginInfo) -> Any:
        """What the plugin's requirements file and model packages ask for (``_install.RequirementSet``)."""
        from pepperpy import _install

        return _install.requirement_set(info.id, info.path, info.manifest)

    # -- load ----------------------------------------------------------------------

    def register_plugin(self, category: str, name: str, provider_class: type) -> None:
        """Register a provider class defined in code, without a plugin folder."""
        if not CATEGORY_NAME.match(category):
            raise PluginError(f"plugin category {category!r} must be a simple lowercase name such as 'tts'")
        self._check_class(category, provider_class, f"{category}/{name}")
        with self._lock:
            self._registered_classes[f"{category}/{name}"] = provider_class

    def load_class(self, category: str, name: str) -> type:
        """Install (if needed) and import the provider class of ``category/name``."""
        target = self._folderless_target(category, name)
        if target is not None:
            return self._registered_classes.get(f"{category}/{target}") or self._entry_point_class(category, target)
        return self._load(self.resolve(category, name)[0])

    def _folderless_target(self, category: str, name: str) -> str | None:
        """The name of a class registered in code or exposed by an entry point, for ``name`` or the end of its
        alias chain; None when a plugin folder serves it. Imports nothing."""
        for candidate in (name, self._follow_aliases(category, name)[0]):
            if f"{category}/{candidate}" in self._registered_classes or self._entry_point_for(category, candidate):
                return candidate
        return None

    def _load(self, info: PluginInfo) -> type:
        cached = self._classes.get(info.id)
        if cached is not None:
            return cached
        self.ensure_requirements(info)
        with self._lock:
            if info.id not in self._classes:
                files = folder_files(str(info.path))  # before the import: a save made during it counts as a change
                provider_class = self.import_class(info)
                self._classes[info.id] = provider_class
                self._loaded_from[info.id] = (info, files)
            return self._classes[info.id]

    # -- hot reload (the watching lives in pepperpy/_reload.py) ----------------------

    def loaded_folder_plugins(self) -> list[LoadedFolder]:
        """The plugin folders whose class is imported (also when the folder is gone since), then the hot-reloadable
        ones that only worker processes imported."""
        with self._lock:
            loaded = [LoadedFolder(info, self._classes[i], files) for i, (info, files) in self._loaded_from.items()]
            return loaded + [LoadedFolder(info, None, files) for i, (info, files) in self._loaded_by_workers.items()
                             if i not in self._loaded_from]

    def loaded_by_worker(self, info: PluginInfo, files: dict[str, tuple[int, str]]) -> None:
        """A worker process imported the hot-reloadable plugin ``info`` from ``files`` (``folder_files``)."""
        with self._lock:
            self._loaded_by_workers[info.id] = (info, files)

    def reload_in_workers(self, plugin_id: str) -> None:
        """Count a new generation of a plugin loaded by worker processes: each restarts its worker with the
        folder's code at its next call (``_isolation/client.py``). Its new requirements install then."""
        with self._lock:
            info, _ = self._loaded_by_workers[plugin_id]
            self._loaded_by_workers[plugin_id] = (info, folder_files(str(info.path)))
            self._generations[plugin_id] = self._generations.get(plugin_id, 0) + 1

    def generation(self, plugin_id: str) -> int:
        """How many times ``plugin_id`` was reloaded (0: never)."""
        return self._generations.get(plugin_id, 0)

    def replacement(self, provider_class: type) -> type | None:
        """The current class of the plugin whose earlier class ``provider_class`` was, if a reload replaced it."""
        superseded = self._superseded
        plugin_id = superseded.get(provider_class) if superseded is not None else None
        return self._classes.get(plugin_id) if plugin_id is not None else None

    def reload_plugin(self, plugin_id: str, *, reinstall: bool = False) -> type:
        """Import the folder of ``plugin_id`` again into a fresh module namespace and serve its class from now on.

        Nothing changes when the import or the class check fails: PluginLoadError (or PluginNotFoundError when
        the manifest no longer validates) is raised and the last good class keeps serving. ``reinstall`` runs
        the requirement install again first (the requirements file changed).
        """
        import weakref

        info = self.discover().get(plugin_id)
        if info is None:
            problems = "; ".join(f"{b.path}: {b.problem}" for b in self.broken) or "its folder is gone"
            raise PluginNotFoundError(f"plugin {plugin_id} can no longer be found ({problems})")
        if reinstall:
            self._ready.discard(plugin_id)
        self.ensure_requirements(info)
        with self._lock:
            generation = self._generations.get(plugin_id, 0) + 1
            files = folder_files(str(info.path))
            provider_class = self._import_entry_point(info, generation)
            self._check_class(info.manifest.category, provider_class, info.id, info.path)
            old = self._classes.get(plugin_id)
            if old is not None and old is not provider_class:
                if self._superseded is None:
                    self._superseded = weakref.WeakKeyDictionary()
                self._superseded[old] = plugin_id
            self._classes[plugin_id] = provider_class
            self._loaded_from[plugin_id] = (info, files)
            self._generations[plugin_id] = generation
            self.reloads += 1
            return provider_class

    def import_class(self, info: PluginInfo) -> type:
        """Import the provider class of the plugin folder ``info`` and check it against its category's base (no
        install, not cached: ``load_class`` is the way to use a plugin; ``pepperpy plugins check`` calls this)."""
        provider_class = self._import_entry_point(info)
        self._check_class(info.manifest.category, provider_class, info.id, info.path)
        return provider_class

    def package_name(self, plugin_id: str, generation: int = 0) -> str:
        """The module name a plugin folder is imported under by this manager: unique per plugin id, manager and
        hot-reload generation (a reload gets a fresh namespace; the live modules of earlier ones are untouched)."""
        package = f"{SYNTHETIC_PACKAGE}.{plugin_package_name(plugin_id)}{self._modules_suffix}"
        return package + f"_r{generation}" if generation else package

    def _import_entry_point(self, info: PluginInfo, generation: int = 0) -> type:
        from pepperpy._manifest import entry_file

        manifest = info.manifest
        package = self.package_name(info.id, generation)
        module_name = f"{package}.{manifest.entry_module}"
        if SYNTHETIC_PACKAGE not in sys.modules:
            root = types.ModuleType(SYNTHETIC_PACKAGE, "Namespace of loaded PepperPy plugin folders.")
            root.__path__ = []
            sys.modules[SYNTHETIC_PACKAGE] = root
        folder = os.path.realpath(info.path)
        plugin_package = types.ModuleType(package, manifest.description)
        plugin_package.__path__ = [str(info.path)]
        plugin_package.__pepperpy_folder__ = folder  # type: ignore[attr-defined]  # read by _PluginFolderFinder
        plugin_package.__pepperpy_plugin__ = info.id  # type: ignore[attr-defined]
        path = entry_file(str(info.path), manifest)
        _refuse_outside(info.id, folder, manifest.entry_module, path)  # the file may have changed since discovery
        _guard_plugin_imports()
        sys.modules[package] = plugin_package
        spec = importlib.util.spec_from_file_location(module_name, path)
        if spec is None or spec.loader is None:
            raise PluginLoadError(f"plugin {info.id}: cannot import {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            from pepperpy import _import_failure

            for loaded in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
                del sys.modules[loaded]
            requirements = info.path / manifest.requirements
            described = _import_failure.describe(info.id, info.path, package, requirements, path, exc)
            raise PluginLoadError(described) from exc
        provider_class = getattr(module, manifest.entry_class, None)
        if not isinstance(provider_class, type):
            classes = {name: value for name, value in vars(module).items() if isinstance(value, type)}
            close = difflib.get_close_matches(manifest.entry_class, sorted(classes), n=1, cutoff=0.6)
            own = sorted(name for name, value in classes.items() if value.__module__ == module.__name__)
            listed = f"; the classes defined there: {', '.join(own) or 'none'}"
            hint = f"; did you mean {close[0]!r}?" if close else listed
            raise PluginLoadError(
                f"plugin {info.id}: {path} has no class {manifest.entry_class!r}{hint} "
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

    def register_plugin_fallbacks(self, category: str, members: list[Any]) -> None:
        """When ``members[0]`` is asked for, a chain serves: each member in turn (see pepperpy/_fallback.py)."""
        if category != "llm":
            raise ConfigError(f"fallback chains are for LLMs, not {category!r}")
        if not members:
            raise ConfigError("register_plugin_fallbacks needs at least one member")
        with self._lock:
            self.fallback_chains[category] = list(members)

    def create_provider(self, category: str, name: str, /, **config: Any) -> Any:
        """An uninitialized provider of ``category/name`` with validated config (or its fallback chain).

        ``name`` may also be the id ``category/name``."""
        name = plain_name(category, name, self.has_provider)
        chain = self.fallback_chains.get(category)
        if chain and plain_name(category, chain[0] if isinstance(chain[0], str) else chain[0][0]) == name:
            from pepperpy._fallback import FallbackLLM

            return FallbackLLM(self, chain, config)
        return self.create_plugin_provider(category, name, **config)

    def create_plugin_provider(self, category: str, name: str, /, **config: Any) -> Any:
        """An uninitialized provider of the plugin ``category/name`` itself (no fallback chain), with its
        declared dependencies created or shared (``pepperpy/_dependencies.py``)."""
        import weakref

        from pepperpy import _dependencies

        provider = _dependencies.attach(self, self._build_plugin_provider(category, name, **config))
        with self._lock:
            self._instances[f"{category}/{name}"] = weakref.ref(provider)
        return provider

    # -- dependencies (the resolution lives in pepperpy/_dependencies.py) -------------

    def register_plugin_metadata(self, category: str, name: str, metadata: dict[str, Any]) -> None:
        """Metadata for ``category/name`` in code, e.g. ``{"dependencies": [{"type": "embeddings"}, ...]}``;
        its ``dependencies`` win over plugin.json's, by type. Used by providers created from now on."""
        from pepperpy import _dependencies

        specs = _dependencies.parse(f"{category}/{name} metadata", metadata.get("dependencies", ()))
        with self._lock:
            self._metadata[f"{category}/{name}"] = {**metadata, "dependencies": specs}

    def plugin_metadata(self, category: str, name: str) -> dict[str, Any]:
        """What ``register_plugin_metadata`` stored for ``category/name`` (``{}`` when nothing)."""
        return self._metadata.get(f"{category}/{name}", {})

    def create_instance(self, category: str, name: str, /, **config: Any) -> Any:
        """``create_provider``, as the plugin-system document names it (the manager keeps a weak reference)."""
        return self.create_provider(category, name, **config)

    def created_instance(self, category: str, name: str) -> Any:
        """The last live provider this manager created for ``category/name``."""
        ref = self._instances.get(f"{category}/{name}")
        provider = ref() if ref is not None else None
        if provider is None:
            raise PluginError(f"no live {category}/{name} instance; create it with manager.create_instance first")
        return provider

    async def load_dependencies(self, category: str, name: str) -> Any:
        """Create the declared dependencies of the ``category/name`` instance created last (those not created
        yet, ``runtime`` ones excepted); returns its ``dependencies`` mapping. Opening stays ``initialize()``'s."""
        from pepperpy import _dependencies

        return await _dependencies.load(self, category, name)

    def creation_config(
        self, category: str, name: str, config: Mapping[str, Any]
    ) -> tuple[PluginInfo, dict[str, str], str | None, dict[str, Any]]:
        """What creating ``category/name`` (a plugin folder, or an alias of one) with ``config`` would use: the
        plugin's info, its env mapping, the alias asked for, and the merged config (imports nothing)."""
        return self._folder_config(category, name, *self._follow_aliases(category, name), config)

    def _folder_config(
        self, category: str, name: str, target: str, chain: list[Any], config: Mapping[str, Any],
        sources: dict[str, str] | None = None,
    ) -> tuple[PluginInfo, dict[str, str], str | None, dict[str, Any]]:
        info, _, env, alias = self._resolve_target(category, name, target, chain)
        # explicit config > each alias's preset, then its saved options (nearest first) > the plugin's saved options
        # > environment variables (then keys.json) > the manifest's defaults: see pepperpy/_user_options.py
        layers = [(f"{category}/{a.name}", a.config) for a in chain]
        if info.id != f"{category}/{target}":  # ``target`` is an alias in the plugin's manifest
            layers.append((f"{category}/{target}", info.manifest.aliases[target].config))
        return info, env, alias, self.user_options.merge(config, layers, info.id, sources)

    def _build_plugin_provider(self, category: str, name: str, /, **config: Any) -> Any:
        from pepperpy._config import build_provider
        from pepperpy._isolation import in_process_only  # a class without a folder cannot run isolated
        from pepperpy.core import CreationContext

        saved: dict[str, str] = {}  # option -> where it was saved, named by an error about it
        registered = self._registered_classes.get(f"{category}/{name}") or self._entry_point_class(category, name)
        if registered is not None:
            merged = self.user_options.merge(config, [], f"{category}/{name}", saved)
            context = CreationContext(f"{category}/{name}", self.home, {}, self.shared_resources, saved_options=saved)
            return build_provider(registered, context, in_process_only(f"{category}/{name}", merged))
        target, chain = self._follow_aliases(category, name)
        registered = None
        if chain:  # an alias may also name a class registered in code or exposed by an entry point
            registered = self._registered_classes.get(f"{category}/{target}")
            registered = registered or self._entry_point_class(category, target)
        if registered is not None:
            from pepperpy._aliases import preset_of

            env = preset_of(chain)[1]
            context = CreationContext(f"{category}/{target}", self.home, env, self.shared_resources, name,
                                      saved_options=saved)
            layers = [(f"{category}/{a.name}", a.config) for a in chain]
            merged = self.user_options.merge(config, layers, f"{category}/{target}", saved)
            return build_provider(registered, context, in_process_only(f"{category}/{target}", merged))
        info, env, alias, config = self._folder_config(category, name, target, chain, config, saved)
        context = CreationContext(info.id, self.home, env, self.shared_resources, alias, saved_options=saved)
        from pepperpy import _isolation

        if _isolation.requested(info, config):  # "isolation": "process": a worker process (pepperpy/_isolation)
            return _isolation.create(self, info, context, config, dict(info.manifest.config))
        return build_provider(self._load(info), context, config, defaults=dict(info.manifest.config))


def _broken_folder_named(broken: list[BrokenPlugin], category: str, name: str) -> BrokenPlugin | None:
    """The broken folder named like ``category/name`` (``name``, ``<category>_<name>``, ``-`` or ``_``), if any."""
    wanted = {f"{category}_{name}", name}
    wanted = {w.replace("-", "_") for w in wanted}
    return next((b for b in broken if b.path.name.replace("-", "_") in wanted), None)


class _PluginFolderFinder(importlib.abc.MetaPathFinder):
    """Finds the modules of a loaded plugin folder (``pepperpy.loaded_plugins.<plugin>.*``) as usual, and refuses
    one whose file or package folder resolves outside the plugin folder (a symlink to a file elsewhere)."""

    def find_spec(self, fullname: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        prefix = SYNTHETIC_PACKAGE + "."
        if not fullname.startswith(prefix) or path is None:
            return None
        top = prefix + fullname[len(prefix) :].split(".", 1)[0]
        package = sys.modules.get(top)
        folder = getattr(package, "__pepperpy_folder__", None)
        if folder is None or fullname == top:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path, target)
        if spec is None:
            return None
        plugin_id = getattr(package, "__pepperpy_plugin__", top)
        relative = fullname[len(top) + 1 :]
        if spec.has_location and spec.origin:
            _refuse_outside(plugin_id, folder, relative, spec.origin)
        for location in spec.submodule_search_locations or ():
            _refuse_outside(plugin_id, folder, relative, location)
        return spec


def _refuse_outside(plugin_id: str, folder: str, module: str, location: str) -> None:
    """PluginLoadError when ``location`` (a module's file or package folder) resolves outside ``folder``."""
    real = os.path.realpath(location)
    if os.path.commonpath([folder, real]) != folder:
        raise PluginLoadError(
            f"plugin {plugin_id}: the module {module!r} ({location}) resolves to {real}, outside the plugin folder "
            f"{folder}; keep every module of the plugin inside its folder (copy the file instead of linking to it)"
        )


def _guard_plugin_imports() -> None:
    """Put the ``_PluginFolderFinder`` first on ``sys.meta_path`` (once per process)."""
    if not any(isinstance(finder, _PluginFolderFinder) for finder in sys.meta_path):
        sys.meta_path.insert(0, _PluginFolderFinder())


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
    "BrokenEntryPoint",
    "BrokenPlugin",
    "EntryPointPlugin",
    "PluginInfo",
    "PluginManager",
    "ShadowedEntryPoint",
    "ShadowedPlugin",
    "get_plugin_manager",
    "model_package_file",
    "plain_name",
    "plugin_package_name",
]
