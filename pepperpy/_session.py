"""The facade's open providers on one event loop, and the private loop of the ``*_sync`` methods.

A ``Session`` is what one ``PepperPy`` has open on one event loop. It closes its
providers in reverse order of opening, exactly once: at ``aclose()``, when the facade
moves to another loop, when the facade is garbage-collected, or when its loop shuts
down. The last two use asyncio's own hook for async generators (PEP 525): the session
parks a tiny async generator on its loop, and ``asyncio.run()`` (``shutdown_asyncgens``)
or the garbage collector closes that generator on that loop, which closes the session.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import threading
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any, TypeVar

from pepperpy.errors import PepperPyError, PepperPyErrorGroup

T = TypeVar("T")


async def call_at_loop_shutdown(callback: Callable[[], Awaitable[None]]) -> AsyncIterator[None]:
    """Park on the running loop with ``await anext(...)``; ``callback`` then runs on that loop when asyncio closes
    this generator: at ``shutdown_asyncgens()`` (``asyncio.run()`` returning) or when it is garbage-collected."""
    try:
        yield
    finally:
        await callback()


def raise_failures(failures: list[BaseException], what: str) -> None:
    """Raise nothing, the one failure as itself, or several as one PepperPyErrorGroup."""
    for failure in failures:
        if not isinstance(failure, Exception):
            raise failure  # CancelledError, KeyboardInterrupt: never grouped
    if len(failures) == 1:
        raise failures[0]
    if failures:
        raise PepperPyErrorGroup(what, failures)  # type: ignore[arg-type]


class Session:
    """Providers opened on one event loop, closed in reverse order exactly once."""

    def __init__(self, loop: asyncio.AbstractEventLoop):
        self.loop = loop
        self.opened: list[Any] = []
        self.kept: dict[Any, asyncio.Task[Any]] = {}  # key -> the opening of a resource kept open here (PepperPy.kept_open)
        self._watcher: AsyncIterator[None] | None = None

    async def watch_loop(self) -> None:
        """Close this session when its loop shuts down or the session is garbage-collected."""
        watcher = call_at_loop_shutdown(self._loop_ended)
        await anext(watcher)
        self._watcher = watcher

    async def _loop_ended(self) -> None:
        self._watcher = None
        await self.close()

    async def open(self, providers: list[Any]) -> None:
        """Open ``providers`` concurrently (each opens its dependencies first); raise every failure."""

        async def open_one(provider: Any) -> None:
            await provider.initialize()
            self._record(provider)

        outcomes = await asyncio.gather(*(open_one(p) for p in providers), return_exceptions=True)
        raise_failures([o for o in outcomes if isinstance(o, BaseException)], "providers failed to open")

    def _record(self, provider: Any, visiting: tuple[Any, ...] = ()) -> None:
        """Remember an opened provider after its dependencies, so that closing in reverse closes it first."""
        for dependency in provider.dependencies.values():
            if dependency not in visiting:
                self._record(dependency, (*visiting, provider))
        if provider not in self.opened:
            self.opened.append(provider)

    async def close(self) -> None:
        watcher, self._watcher = self._watcher, None
        opened, self.opened = self.opened, []
        self.kept = {}
        failures: list[BaseException] = []
        for provider in reversed(opened):
            try:
                await provider.cleanup()
            except Exception as exc:  # close the others anyway, then report
                failures.append(exc)
        if watcher is not None:
            await watcher.aclose()  # type: ignore[attr-defined]
        raise_failures(failures, "providers failed to close")

    async def close_from_here(self) -> None:
        """Close this session from another loop: on its own loop if that one still runs, else here."""
        if self.loop.is_running() and not self.loop.is_closed():
            await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self.close(), self.loop))
        else:
            await self.close()


class SyncRunner:
    """A private event loop in a daemon thread, where one PepperPy's ``*_sync`` calls run.

    Providers opened by sync calls stay open on this loop between calls (a script loads
    a model once) until ``close()``, which shuts the loop down (closing every session
    parked on it), or interpreter exit. At exit it closes before Python stops its thread
    pools (see ``_close_runners_at_exit``), so cleanups and state saves that use
    ``asyncio.to_thread`` still run.
    """

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="pepperpy-sync", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        self._calls: set[concurrent.futures.Future[Any]] = set()  # in progress, from any thread
        self._closing = False
        self._at_exit = False  # closed by interpreter exit rather than by close()
        _close_at_exit(self)

    def run(self, coroutine: Coroutine[Any, Any, T]) -> T:
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            coroutine.close()
            raise PepperPyError(
                "the *_sync() methods are for scripts without an event loop; inside async code, use `await` "
                "with the method of the same name without _sync"
            )
        with self._lock:
            if self._closing:
                coroutine.close()
                raise PepperPyError(self._closed_message())
            call = asyncio.run_coroutine_threadsafe(coroutine, self.loop)
            self._calls.add(call)
        try:
            return call.result()
        finally:
            with self._lock:
                self._calls.discard(call)

    def _closed_message(self) -> str:
        start = "this PepperPy's sync loop is closed"
        if not self._at_exit:
            return f"{start}: pepper.close() closed it as this call started; call again (it opens a new sync loop)"
        start += (" (the program is exiting: the main thread and the other non-daemon threads have ended, "
                  "and PepperPy closed its providers)")
        if threading.current_thread() in _pool_workers():
            return (f"{start}; a thread pool's worker cannot make *_sync() calls after the main thread ends: "
                    "wait for the pool's futures (or shut the pool down) before the main thread ends")
        return (f"{start}; a daemon thread cannot make *_sync() calls after the main thread ends: "
                "make it a normal thread, or join it first")

    def close(self, at_exit: bool = False) -> None:
        """Let calls in progress in other threads finish, refuse new ones, close the sessions and stop the loop."""
        with self._lock:
            if self._closing or self.loop.is_closed() or not self._thread.is_alive():
                return
            self._closing, self._at_exit = True, at_exit
            calls = list(self._calls)
        concurrent.futures.wait(calls)
        shutdown = asyncio.run_coroutine_threadsafe(self._shutdown(), self.loop)
        try:
            shutdown.result()
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join()
            self.loop.close()

    async def _shutdown(self) -> None:
        await self.loop.shutdown_asyncgens()
        await self.loop.shutdown_default_executor()


# The runners not yet garbage-collected: the ones interpreter exit must close.
_live_runners: weakref.WeakSet[SyncRunner] = weakref.WeakSet()


def _close_at_exit(runner: SyncRunner) -> None:
    _live_runners.add(runner)
    _register_exit_hook()


@functools.cache
def _register_exit_hook() -> None:
    """Close live runners when the main thread ends, before Python shuts down its thread pools.

    ``atexit`` (and so ``weakref.finalize``) runs too late: by then ``concurrent.futures``
    has stopped every ``ThreadPoolExecutor``, so a cleanup's ``asyncio.to_thread`` fails
    with "cannot schedule new futures after shutdown" and a persistent plugin's state is
    lost. ``threading._register_atexit`` hooks run earlier, last registered first; importing
    ``concurrent.futures.thread`` here registers its shutdown before ours, so ours runs first.
    """
    try:
        import concurrent.futures.thread  # noqa: F401  (its shutdown registers at import)

        threading._register_atexit(_close_runners_at_exit)  # type: ignore[attr-defined]
    except RuntimeError:  # first used after the main thread ended: too late to register, atexit will have to do
        pass


def _pool_workers() -> set[threading.Thread]:
    """The ``ThreadPoolExecutor`` workers alive now: non-daemon, yet they end only at their pool's own exit hook."""
    import concurrent.futures.thread

    return set(getattr(concurrent.futures.thread, "_threads_queues", {}))


def _threads_to_wait_for() -> list[threading.Thread]:
    """The other non-daemon threads still running, thread-pool workers left out (they would never end first)."""
    skipped = _pool_workers() | {threading.current_thread()}
    return [thread for thread in threading.enumerate() if not thread.daemon and thread not in skipped]


def _close_runners_at_exit() -> None:
    """Close every live runner once the other non-daemon threads have ended (Python would wait for them anyway,
    right after, and any of them may still make its first sync call); never raise (an exception here would skip
    Python's own shutdown hooks)."""
    from pepperpy._log import logger

    runners = list(_live_runners)
    if not runners:
        return
    try:
        while threads := _threads_to_wait_for():  # a thread may start another one before it ends
            for thread in threads:
                thread.join()
    except BaseException as exc:  # Ctrl-C while waiting: close now
        logger.warning("stopped waiting for threads using PepperPy at exit: {}", type(exc).__name__)
    for runner in runners:
        try:
            runner.close(at_exit=True)
        except BaseException as exc:  # say so, and let the exit go on
            logger.error("closing PepperPy's sync loop at exit failed: {}: {}", type(exc).__name__, exc)


__all__ = ["Session", "SyncRunner", "raise_failures"]
