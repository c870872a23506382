"""The parent's end of one worker process: start it, send requests, route replies, notice its death.

The worker's stdout is read on the event loop of the calling code (``add_reader``: no thread
between the pipe and the waiting task); a reply for a request made on another loop is handed
over with ``call_soon_threadsafe``. The worker's stderr goes to a file under ``<home>/workers/``
(a pipe nobody reads would fill and block it), one file per start. When the worker exits, every
request in flight fails with its exit status and the tail of that file; the next request starts a
new worker (and opens the provider again if it was open). A finished worker's file is removed when
it is empty or the worker stopped cleanly; otherwise (a crash, a failed start) it is kept and named
in the error raised, or in a warning when no error was.

The worker asks too: a call of its plugin to a dependency (``self.dependencies["llm"]``) comes back
as a request the parent serves on the loop of the call that made it (``dependencies.serve``), with
the parent's provider; a cancelled one is cancelled here too.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import itertools
import os
import signal
import subprocess
import sys
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from pepperpy._isolation import logs, protocol
from pepperpy._log import logger
from pepperpy.errors import PluginError, ProviderError, provider_error_type

STDERR_TAIL_LINES = 20
STOP_TIMEOUT_S = 10.0
_READ_SIZE = 1 << 16


class PendingRequest:
    """A request in flight: a future (calls) or a queue of chunks (streams), on the loop that asked (the
    parent's requests to a worker, and a worker's to the parent: ``parent.py``)."""

    __slots__ = ("chunks", "done", "error", "future", "loop", "waiter")

    def __init__(self, loop: asyncio.AbstractEventLoop, stream: bool):
        self.loop = loop
        self.future: asyncio.Future[Any] | None = None if stream else loop.create_future()
        self.chunks: collections.deque[Any] | None = collections.deque() if stream else None
        self.waiter: asyncio.Future[None] | None = None
        self.done = False
        self.error: BaseException | None = None

    def deliver(self, message: dict[str, Any], plugin_id: str) -> bool:
        """Take one reply; True when the request is finished."""
        if self.future is not None:
            if not self.future.done():
                if "error" in message:
                    self.future.set_exception(protocol.error_from_wire(message["error"], plugin_id))
                else:
                    self.future.set_result(message.get("ok"))
            return True
        assert self.chunks is not None
        if "chunk" in message:
            self.chunks.append(message["chunk"])
        else:
            self.done = True
            if "error" in message:
                self.error = protocol.error_from_wire(message["error"], plugin_id)
        self._wake()
        return self.done

    def fail(self, error: BaseException) -> None:
        if self.future is not None:
            if not self.future.done():
                self.future.set_exception(error)
            return
        self.done, self.error = True, error
        self._wake()

    def _wake(self) -> None:
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def items(self) -> AsyncIterator[Any]:
        """A stream's chunks as they come; its error, if it ended with one, is raised at the end."""
        chunks = self.chunks
        assert chunks is not None
        while True:
            while chunks:
                yield chunks.popleft()
            if self.done:
                if self.error is not None:
                    raise self.error
                return
            self.waiter = self.loop.create_future()
            await self.waiter
            self.waiter = None


class _Process:
    """One running worker: the Popen, the loop reading its stdout, its requests in flight."""

    def __init__(self, popen: subprocess.Popen[bytes], stderr_path: Path, generation: int = 0,
                 files: dict[str, Any] | None = None):
        self.popen = popen
        self.stderr_path = stderr_path
        self.generation = generation  # the plugin's hot-reload generation it loaded
        self.files = files or {}  # the plugin folder's files just before it started (``folder_files``)
        self.hello: concurrent.futures.Future[dict[str, Any]] = concurrent.futures.Future()
        self.hello_value: dict[str, Any] | None = None  # the hello, once it came
        self.reported = False  # an error or warning named its stderr file
        self.requests: dict[int, PendingRequest] = {}
        self.serving: dict[int, concurrent.futures.Future[None]] = {}  # the worker's dependency requests in progress
        self.lock = threading.Lock()
        self.exited = False
        self.reader_loop: asyncio.AbstractEventLoop | None = None
        self.pending = b""
        assert popen.stdin is not None and popen.stdout is not None
        self.in_fd, self.out_fd = popen.stdin.fileno(), popen.stdout.fileno()

    @property
    def pid(self) -> int:
        return self.popen.pid

    def send(self, message: dict[str, Any]) -> None:
        data = protocol.encode(message)
        with self.lock:
            if self.exited:
                raise BrokenPipeError("the worker exited")
            while data:
                data = data[os.write(self.in_fd, data):]


class WorkerClient:
    """Runs the worker of one provider and speaks the protocol with it."""

    def __init__(self, plugin_id: str, category: str, command: list[str], env: dict[str, str], load: dict[str, Any],
                 stderr_path: Path):
        self.plugin_id = plugin_id
        self.category = category
        self.command = command
        self.env = env
        self.load = load  # the load request (without "open")
        self.stderr_path = stderr_path  # the current worker's; a restarted one gets a file of its own
        self._first_stderr_path = stderr_path
        self.want_open = False  # the provider is open in the parent: a restarted worker opens it too
        self.owner: Callable[[], Any] = lambda: None  # the parent's stand-in (weakly): it serves the dependencies
        self.dependencies: dict[str, dict[str, Any]] = {}  # key -> description (dependencies.describe), sent on
        self._process: _Process | None = None
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.starts = 0
        self.reloads: Any = None  # ``_isolation.Reloads``: the plugin's hot reloads, the command for a new worker
        self._retiring: set[asyncio.Task[None]] = set()  # workers replaced by a hot reload, stopping

    # -- process -------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The running worker's pid (None when none runs)."""
        process = self._process
        return process.pid if process is not None and not process.exited else None

    def start(self) -> _Process:
        """Start the worker unless one runs; it loads the plugin at once (and opens it when ``want_open``)."""
        with self._lock:
            process = self._process
            if process is not None and not process.exited:
                return process
            if process is not None:
                self._settle(process)  # it died: its error was reported; a crash's stderr stays for reading
            process = self._process = self._spawn()
            return process

    def _spawn(self, command: list[str] | None = None) -> _Process:
        """A new worker process (``command``: the current one's by default), sent its load request."""
        if self.starts:
            first = self._first_stderr_path
            self.stderr_path = first.with_name(f"{first.stem}-{self.starts + 1}{first.suffix}")
        self.stderr_path.parent.mkdir(parents=True, exist_ok=True)
        command = [*(command or self.command), f"--stderr-file={self.stderr_path}"]
        if threading.current_thread() is threading.main_thread():
            command.append(f"--die-with-parent={os.getpid()}")  # PR_SET_PDEATHSIG fires when this thread exits
        generation, files = (self.reloads.generation(), self.reloads.files()) if self.reloads else (0, None)
        try:
            with open(self.stderr_path, "wb") as stderr:
                popen = subprocess.Popen(command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr,
                                         env=self.env, bufsize=0, close_fds=True)
        except OSError as exc:
            raise PluginError(
                f"{self.plugin_id}: cannot start its worker process ({command[0]}): {exc.strerror or exc}; "
                f"if its env under {self.stderr_path.parent.parent / 'envs'} was removed, create the provider "
                "again (the env is rebuilt)"
            ) from None
        process = _Process(popen, self.stderr_path, generation, files)
        self.starts += 1
        try:
            process.send({**self.load, "op": "load", "id": 0, "open": self.want_open,
                          "dependencies": self.dependencies, "log_level": logs.forward_level()})
        except OSError:
            pass  # it died at once: reading its stdout reports how
        return process

    async def _switch_reloaded(self, old: _Process) -> None:
        """The plugin was hot-reloaded: start a worker with the new code (in the env of the requirements as they
        are now) and serve from it once it has loaded; a failed load is logged and ``old`` serves on. ``old``
        stops once its calls in progress are done."""
        generation = self.reloads.generation()
        with self._lock:
            if old.generation == generation or self._process is not old:
                return  # another call is switching (``old`` serves it meanwhile)
            old.generation = generation
        new: _Process | None = None
        try:
            command = await asyncio.to_thread(self.reloads.command)
            with self._lock:
                new = self._spawn(command)
            self._attach(new, asyncio.get_running_loop())
            await asyncio.wrap_future(new.hello)
        except Exception as exc:
            logger.error("hot reload of {} failed, the last good version keeps serving: {}: {}",
                         self.plugin_id, type(exc).__name__, exc)
            if new is not None:
                await self._stop_process(new, exc)
            return
        with self._lock:
            replaced = old if self._process is old else new  # stopped meanwhile: the new worker is not wanted
            if replaced is old:
                self._process = new
                logger.info("hot reload: {} now served by a new worker (pid {}, generation {})", self.plugin_id,
                            new.pid, generation)
        task = asyncio.get_running_loop().create_task(self._retire(replaced))
        self._retiring.add(task)
        task.add_done_callback(self._retiring.discard)

    async def _retire(self, process: _Process) -> None:
        """Stop a worker replaced by a hot reload once its requests in flight are done (closing its provider
        first when it was open)."""
        while process.requests and not process.exited:
            await asyncio.sleep(0.05)
        if process.hello_value is not None and (process.hello_value.get("opened") or self.want_open):
            request = PendingRequest(asyncio.get_running_loop(), stream=False)
            request_id = next(self._ids)
            process.requests[request_id] = request
            try:
                process.send({"op": "close", "id": request_id})
                assert request.future is not None
                await request.future
            except Exception as exc:  # noqa: BLE001 - a failed cleanup of the old code must not stop the new
                logger.warning("hot reload: closing the replaced worker of {} failed: {}", self.plugin_id, exc)
        await self._stop_process(process)

    async def _stop_process(self, process: _Process, failure: BaseException | None = None) -> None:
        self._detach(process)
        await asyncio.to_thread(stop_process, process.popen, STOP_TIMEOUT_S)
        self._died(process)
        self._settle(process, failure)

    def set_dependencies(self, described: dict[str, dict[str, Any]]) -> None:
        """The provider's dependencies changed (or their descriptions did): the running worker is told at once,
        before any later request; a worker started later gets them with its load request."""
        if described == self.dependencies:
            return
        self.dependencies = described
        process = self._process
        if process is not None and not process.exited:
            try:
                process.send({"op": "dependencies", "dependencies": described})
            except (OSError, ValueError):
                pass  # it died: the next one gets them with its load

    async def ready(self) -> tuple[_Process, dict[str, Any]]:
        """The running worker, read by this loop, and its hello (starting a worker when none runs)."""
        process = self._process
        if self.reloads is not None and process is not None and process.hello_value is not None \
                and not process.exited and process.generation != self.reloads.generation():
            await self._switch_reloaded(process)
            process = self._process
        if (process is not None and process.hello_value is not None and not process.exited
                and process.reader_loop is asyncio.get_running_loop()):
            return process, process.hello_value  # the common case: no lock, no future
        process = self.start()
        self._attach(process, asyncio.get_running_loop())
        if process.hello.done():
            return process, process.hello.result()
        return process, await asyncio.wrap_future(process.hello)

    def hello_sync(self, timeout_s: float) -> dict[str, Any]:
        """Wait for the hello outside an event loop (a custom category needs its method names at creation):
        read the pipe in this thread until it comes."""
        import select

        process = self.start()
        poller = select.poll()
        poller.register(process.out_fd, select.POLLIN)
        remaining_ms = int(timeout_s * 1000)
        while not process.hello.done() and not process.exited:
            if not poller.poll(remaining_ms):
                raise TimeoutError(f"no hello within {timeout_s:.0f}s")
            self._read(process)
        return process.hello.result()

    def _attach(self, process: _Process, loop: asyncio.AbstractEventLoop) -> None:
        """Read the worker's stdout on ``loop`` unless another running loop does already."""
        current = process.reader_loop
        if current is loop or process.exited:
            return
        if current is not None and not current.is_closed():
            if current.is_running():
                return  # replies for this loop's requests are handed over
            current.remove_reader(process.out_fd)
        loop.add_reader(process.out_fd, self._read, process)
        process.reader_loop = loop

    def _read(self, process: _Process) -> None:
        """Read what the worker wrote: route each reply to its request; at EOF, the worker is gone."""
        try:
            data = os.read(process.out_fd, _READ_SIZE)
        except OSError:
            data = b""
        if not data:
            self._detach(process)
            process.popen.wait()  # its stdout closed: it is exiting
            self._died(process)
            return
        lines = (process.pending + data).split(b"\n")
        process.pending = lines.pop()
        for line in lines:
            try:
                message = protocol.decode(line)
            except ValueError:
                continue  # not a protocol line (the worker's stdout is the protocol's alone: see pepperpy/_worker.py)
            request_id = message.get("id")
            if request_id == 0:
                self._hello(process, message)
                continue
            if request_id is None and "dep" in message:  # the plugin called a dependency: it lives here
                self._serve(process, message)
                continue
            request = process.requests.get(request_id)  # type: ignore[arg-type]
            if request is None:
                if request_id is None and "log" in message:  # the plugin logged: log it here (logs.py)
                    logs.emit(message["log"], self.plugin_id)
                continue  # else cancelled: nobody waits
            if _running_loop() is request.loop:
                self._deliver(process, request, message)
            else:
                try:
                    request.loop.call_soon_threadsafe(self._deliver, process, request, message)
                except RuntimeError:  # that loop is closed: nobody waits any more
                    process.requests.pop(request_id, None)

    def _serve(self, process: _Process, message: dict[str, Any]) -> None:
        """Run the worker's dependency request on the loop of the call that made it (or the loop reading the
        pipe); a ``cancel`` cancels it."""
        from pepperpy._isolation import dependencies

        number = message.get("dep")
        if message.get("op") == "cancel":
            running = process.serving.pop(number, None)  # type: ignore[arg-type]
            if running is not None:
                running.cancel()
            return
        caller = process.requests.get(message.get("for"))  # type: ignore[arg-type]
        loop = caller.loop if caller is not None else process.reader_loop
        owner = self.owner()

        def reply(answer: dict[str, Any]) -> None:
            try:
                process.send({"op": "dep", "dep": number, **answer})
            except (OSError, ValueError):
                pass  # the worker is gone: nobody waits

        if owner is None or loop is None or loop.is_closed():
            reply({"error": protocol.error_to_wire(PluginError(
                f"{self.plugin_id}: its dependencies are reached through the provider in the parent process, "
                "and it is not in use here now; open the provider (async with, or its first call) first"))})
            return
        running = asyncio.run_coroutine_threadsafe(dependencies.serve(owner, message, reply), loop)
        process.serving[number] = running  # type: ignore[index]
        running.add_done_callback(lambda _: process.serving.pop(number, None))  # type: ignore[arg-type]

    def _detach(self, process: _Process) -> None:
        loop = process.reader_loop
        process.reader_loop = None
        if loop is not None and not loop.is_closed():
            loop.remove_reader(process.out_fd)

    def _hello(self, process: _Process, message: dict[str, Any]) -> None:
        if process.hello.done():
            return
        if "error" in message:
            process.hello.set_exception(protocol.error_from_wire(message["error"], self.plugin_id))
        else:
            process.hello_value = message.get("ok") or {}
            if self.reloads is not None and process.hello_value.get("hot_reloadable"):
                self.reloads.loaded(process.files)  # hot reload watches its folder from now on
            process.hello.set_result(process.hello_value)

    def _deliver(self, process: _Process, request: PendingRequest, message: dict[str, Any]) -> None:
        if request.deliver(message, self.plugin_id):
            process.requests.pop(message["id"], None)

    def _died(self, process: _Process) -> None:
        """The worker exited: every waiter gets the error (its exit status and stderr tail)."""
        with process.lock:
            if process.exited:
                return
            process.exited = True
        self._detach(process)
        for pipe in (process.popen.stdin, process.popen.stdout):
            try:
                pipe.close()  # type: ignore[union-attr]
            except OSError:
                pass
        requests, process.requests = list(process.requests.values()), {}
        for running in list(process.serving.values()):
            running.cancel()  # what the worker asked of its dependencies: nobody waits for it now
        if process.hello.done() and not requests:
            return
        error = self.death_error(process)
        if not process.hello.done():
            process.hello.set_exception(error)
        for request in requests:
            if _running_loop() is request.loop:
                request.fail(error)
                continue
            try:
                request.loop.call_soon_threadsafe(request.fail, error)
            except RuntimeError:
                pass

    def death_error(self, process: _Process) -> Exception:
        """The error for a worker that died: its pid, exit status and stderr tail (its file is then kept)."""
        tail = stderr_tail(process.stderr_path)
        shown = (f"; the last lines of its stderr ({process.stderr_path}):\n{tail}" if tail
                 else " (it wrote nothing to stderr)")
        process.reported = True
        status = exit_status(process.popen.returncode)
        kind = provider_error_type(ProviderError, self.category)
        return kind(f"{self.plugin_id}: its worker process (pid {process.pid}) {status}; the next call starts a "
                    f"new one{shown}")

    # -- requests ------------------------------------------------------------------------

    async def request(self, op: str, method: str | None = None, args: list[Any] | None = None,
                      kwargs: dict[str, Any] | None = None) -> Any:
        """Send one request and wait for its reply; a cancelled wait cancels the request in the worker."""
        request = PendingRequest(asyncio.get_running_loop(), stream=False)
        request_id = next(self._ids)
        message: dict[str, Any] = {"op": op, "id": request_id}
        if method is not None:
            message.update(method=method, args=args or [], kwargs=kwargs or {})
        process = await self._send(message, request_id, request)
        assert request.future is not None
        try:
            return await request.future
        except asyncio.CancelledError:
            self._cancel(process, request_id)
            raise

    async def stream(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        """Send a stream request and yield its chunks; leaving early cancels it in the worker."""
        request = PendingRequest(asyncio.get_running_loop(), stream=True)
        request_id = next(self._ids)
        message = {"op": "stream", "id": request_id, "method": method, "args": args, "kwargs": kwargs}
        process = await self._send(message, request_id, request)
        try:
            async for chunk in request.items():
                yield chunk
        finally:
            if not request.done:
                self._cancel(process, request_id)

    async def _send(self, message: dict[str, Any], request_id: int, request: PendingRequest) -> _Process:
        """Send ``message`` to a ready worker. One found dead (it died while idle, unseen) never got it:
        a new worker is started and gets it instead; a new one dying too is an error."""
        for attempt in (1, 2):
            process, _ = await self.ready()
            process.requests[request_id] = request
            try:
                process.send(message)
                return process
            except (OSError, ValueError):  # the worker is gone
                process.requests.pop(request_id, None)
                process.popen.wait()
                self._died(process)
                if attempt == 2:
                    raise self.death_error(process) from None
                logger.warning("{}", self.death_error(process))
        raise AssertionError("unreachable")

    def _cancel(self, process: _Process, request_id: int) -> None:
        process.requests.pop(request_id, None)
        try:
            process.send({"op": "cancel", "id": request_id})
        except (OSError, ValueError):
            pass

    # -- stopping ------------------------------------------------------------------------

    async def stop(self, failure: BaseException | None = None) -> None:
        """Close the worker's stdin (it exits) and wait for it, killing it after ``STOP_TIMEOUT_S``.

        ``failure``: the error a failed start is about to raise; a non-empty stderr is kept and shown in a
        note on it. Otherwise a clean stop removes the stderr file.
        """
        process = self._process
        self._process = None
        if process is not None:
            await self._stop_process(process, failure)
        retiring = [task for task in self._retiring if task.get_loop() is asyncio.get_running_loop()]
        if retiring:  # workers replaced by a hot reload: stopped too before this returns
            await asyncio.wait(retiring)

    def stop_sync(self, failure: BaseException | None = None) -> None:
        """``stop`` outside an event loop, waiting here (a failed creation, a finalizer at interpreter exit)."""
        process = self._process
        self._process = None
        if process is not None:
            self._finish(process, failure)

    def terminate(self) -> None:
        """Stop the worker (a finalizer): here when no event loop runs in this thread, else in a daemon
        thread that closes its stdin, reaps it and removes its stderr file after a clean stop."""
        process = self._process
        self._process = None
        if process is None:
            return
        if _running_loop() is None:
            self._finish(process)
        else:
            threading.Thread(target=self._finish, args=(process,), daemon=True).start()

    def _finish(self, process: _Process, failure: BaseException | None = None) -> None:
        stop_process(process.popen, STOP_TIMEOUT_S)
        self._settle(process, failure)

    def _settle(self, process: _Process, failure: BaseException | None = None) -> None:
        """The stderr file of a finished worker: removed when empty or after a clean stop (without a
        ``failure``); else kept, and named in ``failure``'s notes, a death error already raised or a warning."""
        path = process.stderr_path
        tail = stderr_tail(path)
        if not tail or (process.popen.returncode == 0 and failure is None):
            path.unlink(missing_ok=True)
            return
        if process.reported:
            return
        process.reported = True
        if failure is not None:
            failure.add_note(f"{self.plugin_id}: the last lines of its worker's stderr (kept in {path}):\n{tail}")
        else:
            logger.warning("{}: its worker process (pid {}) {}; its stderr is kept in {}", self.plugin_id,
                           process.pid, exit_status(process.popen.returncode), path)


def exit_status(code: int | None) -> str:
    """How a worker ended, in words: ``exited with status 3``, ``was killed by signal SIGKILL (exit status -9)``."""
    if code is not None and code < 0:
        try:
            return f"was killed by signal {signal.Signals(-code).name} (exit status {code})"
        except ValueError:
            return f"was killed by signal {-code} (exit status {code})"
    return f"exited with status {code}"


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _close_stdin(popen: subprocess.Popen[bytes]) -> None:
    if popen.stdin is not None:
        try:
            popen.stdin.close()
        except OSError:
            pass


def stop_process(popen: subprocess.Popen[bytes], timeout_s: float) -> None:
    """EOF on its stdin stops a worker; one that does not exit in time is killed."""
    _close_stdin(popen)
    try:
        popen.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        popen.kill()
        popen.wait()


def stderr_tail(path: Path, lines: int = STDERR_TAIL_LINES, max_bytes: int = 8192) -> str:
    """The last ``lines`` lines of a worker's stderr file, secrets known to this process hidden."""
    try:
        with open(path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - max_bytes))
            text = handle.read().decode("utf-8", "replace")
    except OSError:
        return ""
    from pepperpy._redact import redact

    return redact("\n".join(text.rstrip().splitlines()[-lines:]))


def worker_command(python: Path) -> list[str]:
    """How a worker is started: the venv's Python, no user site, no current folder on ``sys.path``."""
    flags = ["-s", "-P"] + (["-B"] if sys.dont_write_bytecode else [])
    return [str(python), *flags, "-m", "pepperpy._worker"]


def worker_environment() -> dict[str, str]:
    """The parent's environment, less what would bend the worker's ``sys.path`` back to the parent's."""
    return {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")}


__all__ = ["PendingRequest", "WorkerClient", "stderr_tail", "stop_process", "worker_command", "worker_environment"]
