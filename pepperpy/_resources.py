"""Shared resources: one object per PluginManager and name, created on first request, refcounted.

The one sharing mechanism behind a provider's ``await self.get_resource(name, factory=...,
cleanup=...)`` (``core.ResourceMixin``) and ``self.shared_resource(name, factory)``: both
return the object the manager's providers share under ``name``. The rules, kept here:

- **Created lazily**: the first request calls ``factory()`` (a plain function, or an
  ``async def`` whose result is awaited); requests arriving meanwhile, from any task,
  thread or event loop, wait for that one creation and get the same object (or its
  error; a failed creation is not remembered, so the next request tries again).
- **Keyed** by the manager (the ``shared`` table of the provider's ``CreationContext``:
  ``PluginManager.shared_resources``) and by name. The first request's ``factory`` and
  ``cleanup`` win; later requests for the same name just get the object.
- **Held** by a provider from its first ``get_resource(name)`` until it closes: the
  base lifecycle (``core._Lifecycle``) releases every reference after the author's
  ``cleanup()`` ran, and before the dependencies the provider opened are closed; also
  when opening fails midway. A provider holds at most one reference per name, however
  often it asks. It must be open or opening to ask.
- **Cleaned up exactly once**: ``cleanup(obj)`` (plain or ``async def``) runs when the
  last holder closes, in that holder's closing task. A failing cleanup is raised from
  that provider's ``cleanup()`` (the resource is forgotten all the same).
- **Kept** (``shared_resource``, ``ResourceTable.keep``): created at once by a plain
  ``factory()``, and held by the table itself until interpreter exit (a lock, an SSL
  context): no provider's close releases it.
- **Per event loop** (``per_loop=True``): asyncio objects (an ``httpx.AsyncClient``, a
  database pool) belong to the event loop they were created on. Such a resource is
  keyed by name *and* loop, and is kept while its loop runs even when no provider
  holds it, so that the next provider on that loop (a second ``PepperPy`` opened on
  the same service) reuses it at no cost. It is cleaned up when its loop shuts down
  (``asyncio.run()`` returning, a sync runner closing: asyncio's hook for async
  generators, as in ``_session``), or, if providers still hold it then, when the last
  of them closes.
- **At interpreter exit** every resource still alive is cleaned up: a plain cleanup is
  called; an async one runs on the loop the resource was created on if that loop is
  still running (in another thread, such as a sync runner's; bounded to 5 s) or is
  stopped but not closed. When that loop is closed already, an async cleanup cannot
  run (its objects belong to a dead loop): it is skipped, with a warning in the log
  naming the resource. Close providers before their loop ends to avoid that.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import functools
import inspect
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Hashable
from typing import Any, TypeVar

from pepperpy._log import logger
from pepperpy._session import call_at_loop_shutdown
from pepperpy.errors import ConfigError

T = TypeVar("T")

EXIT_TIMEOUT_S = 5.0

_CREATING, _LIVE, _GONE = "creating", "live", "gone"


class _Abandoned(Exception):
    """The creating task was cancelled: a waiter creates the resource itself."""


class _Entry:
    __slots__ = ("name", "key", "loop", "per_loop", "cleanup", "value", "state", "holders", "orphan", "ready", "kept")

    def __init__(
        self, name: str, key: Hashable, loop: asyncio.AbstractEventLoop | None, per_loop: bool, cleanup: Any
    ):
        self.name, self.key, self.loop, self.per_loop, self.cleanup = name, key, loop, per_loop, cleanup
        self.value: Any = None
        self.state = _CREATING
        self.holders = 0
        self.orphan = False  # a per-loop resource whose loop shut down while held: cleaned at the last release
        self.ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self.kept = False  # held by the table itself until interpreter exit (``keep``)


class Holdings:
    """What one provider holds; its lifecycle calls it once at close (``core._Lifecycle.release``)."""

    __slots__ = ("table", "entries")

    def __init__(self, table: ResourceTable):
        self.table = table  # the table of the provider's manager
        self.entries: dict[Hashable, _Entry] = {}

    async def __call__(self) -> None:
        entries = list(self.entries.values())
        self.entries.clear()
        failures: list[Exception] = []
        for entry in reversed(entries):  # last acquired, first released
            try:
                await self.table.release(entry)
            except Exception as exc:  # release the others anyway, then report
                failures.append(exc)
        for extra in failures[1:]:
            logger.warning("cleaning up a shared resource failed as well: {!r}", extra)
        if failures:
            raise failures[0]


class ResourceTable:
    """The shared resources of one PluginManager (see the module docstring). Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: dict[Hashable, _Entry] = {}
        self._watchers: dict[asyncio.AbstractEventLoop, AsyncIterator[None]] = {}

    def names(self) -> list[str]:
        """The names of the live resources (a per-loop name once per loop)."""
        return [entry.name for entry in list(self._entries.values()) if entry.state == _LIVE]

    def holders(self, name: str, loop: asyncio.AbstractEventLoop | None = None) -> int | None:
        """How many providers hold ``name`` (per-loop: on ``loop``); None when it does not exist."""
        entry = self._entries.get((name, loop))
        return entry.holders if entry is not None and entry.state == _LIVE else None

    async def acquire(
        self, holdings: Holdings, name: str, factory: Callable[[], Any], cleanup: Callable[[Any], Any] | None,
        per_loop: bool,
    ) -> Any:
        loop = asyncio.get_running_loop()
        key = (name, loop if per_loop else None)
        while True:
            with self._lock:
                entry = self._entries.get(key)
                if entry is not None and entry.state == _LIVE:
                    if holdings.entries.get(key) is not entry:
                        holdings.entries[key] = entry
                        entry.holders += 1
                    return entry.value
                creating = entry is None
                if creating:
                    entry = self._entries[key] = _Entry(name, key, loop, per_loop, cleanup)
                    _LIVE_TABLES.add(self)
            if creating:
                await self._create(entry, factory)
                if per_loop:
                    await self._watch(loop)
                continue  # hold it under the lock, like any other request
            try:
                await asyncio.shield(asyncio.wrap_future(entry.ready))
            except _Abandoned:
                continue

    def keep(self, name: str, factory: Callable[[], T]) -> T:
        """The object under ``name``, created now by ``factory()`` (a plain function) if there is none, and kept
        until interpreter exit; two threads creating it at once keep the first and drop the other."""
        key = (name, None)
        with self._lock:
            entry = self._entries.get(key)
        if entry is None:
            value = factory()
            with self._lock:
                entry = self._entries.get(key)
                if entry is None:
                    entry = self._entries[key] = _Entry(name, key, None, False, None)
                    entry.value, entry.state = value, _LIVE
                    _LIVE_TABLES.add(self)
        if entry.state != _LIVE:
            raise ConfigError(
                f"shared resource {name!r} is being created by get_resource(); a name is shared one way: "
                "use get_resource() for it everywhere, or shared_resource() everywhere"
            )
        entry.kept = True
        return entry.value  # type: ignore[no-any-return]

    async def _create(self, entry: _Entry, factory: Callable[[], Any]) -> None:
        try:
            value = factory()
            if inspect.isawaitable(value):
                value = await value
        except BaseException as exc:
            with self._lock:
                entry.state = _GONE
                if self._entries.get(entry.key) is entry:
                    del self._entries[entry.key]
                self._forget_if_empty()
            entry.ready.set_exception(exc if isinstance(exc, Exception) else _Abandoned())
            raise
        with self._lock:
            entry.value, entry.state = value, _LIVE
        entry.ready.set_result(None)
        logger.debug("created shared resource {!r}", entry.name)

    async def release(self, entry: _Entry) -> None:
        """One holder is done with ``entry``: clean it up if it was the last (see the module docstring)."""
        with self._lock:
            if entry.state != _LIVE:
                return  # cleaned up already (its loop shut down, interpreter exit)
            entry.holders -= 1
            if entry.holders > 0 or entry.kept or (entry.per_loop and not entry.orphan):
                return
            self._take(entry)
        await _clean(entry)

    def _take(self, entry: _Entry) -> None:
        """Forget ``entry`` (under the lock): whoever takes it runs its cleanup, exactly once."""
        entry.state = _GONE
        if self._entries.get(entry.key) is entry:
            del self._entries[entry.key]
        self._forget_if_empty()

    def _forget_if_empty(self) -> None:
        if not self._entries:
            _LIVE_TABLES.discard(self)

    # -- per-loop resources: cleaned when their loop shuts down ------------------------

    async def _watch(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            if loop in self._watchers:
                return
            watcher = self._watchers[loop] = call_at_loop_shutdown(functools.partial(self._loop_shutting_down, loop))
        await anext(watcher)  # parked on ``loop``: closed by shutdown_asyncgens(), on that loop

    async def _loop_shutting_down(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._watchers.pop(loop, None)
            doomed = []
            for entry in list(self._entries.values()):
                if entry.loop is loop and entry.per_loop and entry.state == _LIVE and not entry.kept:
                    if entry.holders == 0:
                        self._take(entry)
                        doomed.append(entry)
                    else:
                        entry.orphan = True  # its holders are closing now, or leaked: the last release cleans it
        for entry in doomed:
            try:
                await _clean(entry)
            except Exception as exc:
                logger.warning("cleaning up shared resource {!r} at event-loop shutdown failed: {!r}", entry.name, exc)

    # -- interpreter exit ----------------------------------------------------------------

    def close_at_exit(self) -> None:
        with self._lock:
            entries = [entry for entry in self._entries.values() if entry.state == _LIVE]
            for entry in entries:
                self._take(entry)
            watchers, self._watchers = self._watchers, {}
        for entry in entries:
            _clean_at_exit(entry)
        for loop, watcher in watchers.items():
            _finish_watcher(loop, watcher)


async def _clean(entry: _Entry) -> None:
    if entry.cleanup is None:
        return
    result = entry.cleanup(entry.value)
    if inspect.isawaitable(result):
        await result
    logger.debug("cleaned up shared resource {!r}", entry.name)


def _clean_at_exit(entry: _Entry) -> None:
    if entry.cleanup is None:
        return
    try:
        result = entry.cleanup(entry.value)
        if not inspect.isawaitable(result):
            return
        loop = entry.loop
        if loop.is_closed():
            if inspect.iscoroutine(result):
                result.close()  # never run: no "never awaited" warning on top of ours
            logger.warning(
                "shared resource {!r} was not cleaned up at interpreter exit: its cleanup is async and the event "
                "loop it belongs to is closed; close the providers holding it before their loop ends", entry.name,
            )
        elif loop.is_running():  # in another thread, e.g. a sync runner's
            asyncio.run_coroutine_threadsafe(_await(result), loop).result(EXIT_TIMEOUT_S)
        else:
            loop.run_until_complete(_await(result))
    except Exception as exc:
        logger.warning("cleaning up shared resource {!r} at interpreter exit failed: {!r}", entry.name, exc)


def _finish_watcher(loop: asyncio.AbstractEventLoop, watcher: AsyncIterator[None]) -> None:
    """Close a loop watcher at exit (its resources are gone already), so that the GC never hands it to a dead loop."""
    closer = watcher.aclose()  # type: ignore[attr-defined]
    try:
        closer.send(None)  # its ``finally`` finds nothing left to clean: it finishes without suspending
    except StopIteration:
        return
    except BaseException:  # noqa: BLE001 - best effort at exit
        return
    closer.close()


async def _await(awaitable: Awaitable[T]) -> T:
    return await awaitable


_LIVE_TABLES: set[ResourceTable] = set()  # tables with live resources, kept until those are cleaned up


@atexit.register
def _clean_up_at_exit() -> None:
    for table in list(_LIVE_TABLES):
        table.close_at_exit()
    _LIVE_TABLES.clear()


__all__ = ["ResourceTable"]
