"""Hot reload of plugin folders: ``@hot_reloadable_plugin``, ``start_hot_reload()``, ``stop_hot_reload()``.

- ``@hot_reloadable_plugin`` only marks a provider class (an attribute); nothing else changes.
- ``start_hot_reload(manager=None)`` starts one daemon thread per process that watches, with
  ``watchfiles``, the folders of the loaded plugins whose class is marked. The set of folders is
  checked again every ``ROOTS_CHECK_MS`` (watchfiles yields on its timeout), so a marked plugin
  loaded later is watched from then on. Calling it again (from a plugin module too) adds the manager
  and returns the running watcher.
- What a folder held at import is recorded by the manager just before it (``folder_files``: the time
  and a content digest of each ``.py``, ``plugin.json`` and ``.txt`` file). Whenever a watch (re)starts,
  and on every change watchfiles reports, a folder is reloaded only when its files differ from that
  record: a save made between the load and the start of the watch is not lost, a rename over a file
  (an editor's atomic save) counts even with the old time and size, and one save seen twice reloads once.
- A folder that is deleted is left out of the watch with a warning; the last good version serves on,
  and the folder is watched (and compared) again once it is back.
- A changed file of a watched folder calls
  ``PluginManager.reload_plugin``: the folder is imported again under a new synthetic package
  (``pepperpy.loaded_plugins.<name>_<hash>_m<manager>_r<generation>``; live modules are never
  ``importlib.reload``-ed) and, only if the import and class checks pass, its class serves new
  providers. An open ``PepperPy`` switches at its next call (``PepperPy._switch_reloaded``).
  A failed reload logs the file, line and error; the last good version keeps serving, and a later
  fix is picked up.
- Requirements: when the requirements file changes, the added or re-specified packages are
  installed first (the manager's install path) if none of them is imported in this process;
  otherwise the reload is refused with an error log line (restart the process, or use a
  process-isolated plugin), and every later edit of that plugin is refused the same way until its
  requirements are back to the ones loaded.
- A process-isolated plugin: its worker reports a marked class in its hello, and the manager records the
  folder (``loaded_by_worker``); a change only counts a new generation (``reload_in_workers``: nothing is
  imported here), and each worker client starts a worker with the new code at its next call
  (``_isolation/client.py``, ``WorkerClient._switch_reloaded``).
- Modules of earlier generations stay in ``sys.modules`` (calls still running on old code, and their
  lazy relative imports, keep working): a development-time cost of one module set per reload.
"""

from __future__ import annotations

import importlib.metadata
import os
import sys
import threading
import traceback
import weakref
from typing import Any

from pepperpy._folder_files import folder_files, is_plugin_file
from pepperpy._log import logger

MARK = "__pepperpy_hot_reloadable__"
STEP_MS = 20  # watchfiles: a batch of changes ends after this long without a new one
DEBOUNCE_MS = 300  # watchfiles: a batch never waits longer than this
ROOTS_CHECK_MS = 500  # how often the set of watched folders is checked for newly loaded plugins


def hot_reloadable_plugin(cls: type) -> type:
    """Mark a provider class so that ``start_hot_reload()`` watches its plugin folder."""
    if not isinstance(cls, type):
        from pepperpy.errors import PluginError

        raise PluginError(f"@hot_reloadable_plugin marks provider classes, not {cls!r}")
    type.__setattr__(cls, MARK, True)
    return cls


def is_hot_reloadable(cls: type) -> bool:
    return bool(getattr(cls, MARK, False))


class HotReloader:
    """The watcher thread and what it knows about each watched plugin."""

    def __init__(self) -> None:
        self._managers: list[weakref.ref[Any]] = []
        self._lock = threading.Lock()
        self._requirements: dict[tuple[int, str], dict[str, str]] = {}  # (manager id, plugin id) -> loaded reqs
        self.stop_event = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pepperpy-hot-reload", daemon=True)
        self.reloaded = 0  # successful reloads, for tests and benchmarks
        self.watching: frozenset[str] = frozenset()  # folders under a live watch (set once watchfiles answered)
        self._gone: set[str] = set()  # watched folders found deleted (warned once); used by the thread only

    def add(self, manager: Any) -> None:
        with self._lock:
            if all(ref() is not manager for ref in self._managers):
                self._managers.append(weakref.ref(manager))

    def watched(self) -> dict[str, tuple[Any, Any]]:
        """Folder -> (manager, ``LoadedFolder``) for every loaded plugin whose class is marked and whose folder
        exists; a folder found gone is warned about once."""
        with self._lock:
            managers = [m for m in (ref() for ref in self._managers) if m is not None]
        folders: dict[str, tuple[Any, Any]] = {}
        for manager in managers:
            for loaded in manager.loaded_folder_plugins():
                if not loaded.isolated and not is_hot_reloadable(loaded.provider_class):
                    continue
                folder = os.path.realpath(loaded.info.path)
                if not os.path.isdir(folder):
                    if folder not in self._gone:
                        self._gone.add(folder)
                        logger.warning(
                            "hot reload: the folder of {} ({}) is gone; the last good version keeps serving, and "
                            "the folder is watched again once it is back", loaded.info.id, folder,
                        )
                    continue
                self._gone.discard(folder)
                folders[folder] = (manager, loaded)
                key = (id(manager), loaded.info.id)
                if key not in self._requirements:
                    self._requirements[key] = _requirements_of(manager, loaded.info) or {}
        return folders

    def _run(self) -> None:
        import watchfiles

        while not self.stop_event.is_set():
            folders = self.watched()
            if not folders:
                self.stop_event.wait(ROOTS_CHECK_MS / 1000)
                continue
            self._reload_changed(folders, set(folders))  # saves made since each import, before this watch
            started = False
            try:
                for changes in watchfiles.watch(
                    *folders, watch_filter=is_plugin_file, debounce=DEBOUNCE_MS, step=STEP_MS,
                    rust_timeout=ROOTS_CHECK_MS, yield_on_timeout=True, stop_event=self.stop_event,
                    raise_interrupt=False,
                ):
                    current = self.watched()
                    # the first answer: the watch is live, so also compare the saves made while it started
                    touched = _folders_of({path for _, path in changes}, current) if started else set(current)
                    started = True
                    self.watching = frozenset(folders)
                    self._reload_changed(current, touched)
                    if set(current) != set(folders):
                        break  # a marked plugin was loaded (or unmarked), or a folder is gone or back
            except Exception as exc:  # never let the thread die: log and watch again
                logger.opt(exception=exc).error("hot reload: watching {} failed: {}", list(folders), exc)
                self.stop_event.wait(ROOTS_CHECK_MS / 1000)
            self.watching = frozenset()

    def _reload_changed(self, folders: dict[str, tuple[Any, Any]], touched: set[str]) -> None:
        """Reload each folder of ``touched`` whose files differ from the ones its loaded version was imported from."""
        for folder in sorted(touched & folders.keys()):
            manager, loaded = folders[folder]
            now = folder_files(folder)
            before = loaded.files
            changed = sorted(name for name in now.keys() | before.keys() if now.get(name) != before.get(name))
            if not changed:
                continue
            try:
                if loaded.isolated:
                    manager.reload_in_workers(loaded.info.id)
                    logger.info("hot reload: {} changed ({}); its worker process restarts with the new code at "
                                "its next call", loaded.info.id, ", ".join(changed))
                else:
                    self.reload(manager, loaded.info.id, folder, changed)
            except Exception as exc:
                logger.opt(exception=exc).error("hot reload of {}: unexpected failure: {}", loaded.info.id, exc)

    def reload(self, manager: Any, plugin_id: str, folder: str, files: list[str]) -> bool:
        """Reload one plugin after ``files`` (relative to ``folder``) changed; False (and a log line) when refused
        or failed."""
        from pepperpy.errors import PepperPyError

        key = (id(manager), plugin_id)
        loaded = self._requirements.get(key, {})
        info = manager.plugins.get(plugin_id)
        new = _requirements_of(manager, info) if info is not None else loaded
        if new is None:
            return False  # a bad requirements line: logged by _requirements_of
        changed = sorted(name for name, spec in new.items() if loaded.get(name) != spec)
        if changed:
            imported = [name for name in changed if _is_imported(name)]
            if imported:
                logger.error(
                    "hot reload of {} refused: {} changes {} already imported in this process; restart the "
                    "process (or use a process-isolated plugin) to pick up the new requirements",
                    plugin_id, info.path / info.manifest.requirements if info else "its requirements file",
                    ", ".join(imported),
                )
                return False
        try:
            manager.reload_plugin(plugin_id, reinstall=new != loaded)
        except PepperPyError as exc:
            where = _where(exc, folder)
            logger.error(
                "hot reload of {} failed, the last good version keeps serving: {}: {}",
                plugin_id, where, _describe(exc),
            )
            return False
        self._requirements[key] = new
        self.reloaded += 1
        logger.info("hot reload: {} reloaded (generation {}) after {} changed", plugin_id,
                    manager.generation(plugin_id), ", ".join(files))
        return True


def _folders_of(paths: set[str], folders: dict[str, Any]) -> set[str]:
    """The watched folders that hold ``paths`` (the innermost one when folders nest)."""
    touched = set()
    for path in paths:
        real = os.path.realpath(path)
        folder = max((f for f in folders if real.startswith(f + os.sep)), key=len, default=None)
        if folder is not None:
            touched.add(folder)
    return touched


def _requirements_of(manager: Any, info: Any) -> dict[str, str] | None:
    """Requirement name -> its specifier and marker, as the requirements file says now."""
    try:
        needed = manager.requirement_set(info)
    except Exception as exc:
        logger.error("hot reload of {} refused: {}", info.id, exc)
        return None
    return {
        _normalize(r.name): f"{r.specifier}{'; ' + str(r.marker) if r.marker else ''}"
        for r in (*needed.requirements, *needed.model_packages)
    }


def _normalize(name: str) -> str:
    return name.lower().replace("_", "-").replace(".", "-")


def _is_imported(requirement: str) -> bool:
    """True when a module of the distribution ``requirement`` is imported in this process."""
    modules = {requirement.replace("-", "_")}
    for module, distributions in importlib.metadata.packages_distributions().items():
        if any(_normalize(d) == requirement for d in distributions):
            modules.add(module)
    return any(m in sys.modules for m in modules)


def _where(exc: BaseException, folder: str) -> str:
    """``File "<path>", line N`` of the failure, inside the plugin folder when the traceback reaches it."""
    cause = exc.__cause__ or exc
    if isinstance(cause, SyntaxError) and cause.filename:
        return f'File "{cause.filename}", line {cause.lineno}'
    inside = [f for f in traceback.extract_tb(cause.__traceback__) if f.filename.startswith(folder + os.sep)]
    if inside:
        return f'File "{inside[-1].filename}", line {inside[-1].lineno}'
    return f'Folder "{folder}"'


def _describe(exc: BaseException) -> str:
    from pepperpy.errors import PepperPyError

    cause = exc.__cause__
    if isinstance(cause, SyntaxError):
        return f"{type(cause).__name__}: {cause.msg}"
    if cause is not None and not isinstance(cause, PepperPyError):
        return f"{type(cause).__name__}: {cause}"
    return f"{type(exc).__name__}: {exc}"


_reloader: HotReloader | None = None
_reloader_lock = threading.Lock()


def start_hot_reload(manager: Any = None) -> HotReloader:
    """Watch the folders of hot-reloadable plugins of ``manager`` (default: the process-wide one)."""
    global _reloader
    import watchfiles  # noqa: F401 - fail here, clearly, when it is missing

    from pepperpy.plugin_manager import PluginManager

    manager = manager or PluginManager.instance()
    with _reloader_lock:
        if _reloader is None or not _reloader.thread.is_alive():
            _reloader = HotReloader()
            _reloader.add(manager)
            _reloader.thread.start()
        else:
            _reloader.add(manager)
        return _reloader


def stop_hot_reload(timeout: float = 5.0) -> None:
    """Stop the watcher thread (a no-op when none runs). Reloaded classes keep serving."""
    global _reloader
    with _reloader_lock:
        reloader, _reloader = _reloader, None
    if reloader is not None:
        reloader.stop_event.set()
        if reloader.thread is not threading.current_thread():
            reloader.thread.join(timeout)


__all__ = ["HotReloader", "hot_reloadable_plugin", "is_hot_reloadable", "start_hot_reload", "stop_hot_reload"]
