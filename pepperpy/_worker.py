"""The worker process of a process-isolated plugin: ``python -m pepperpy._worker``.

The entry point of a process of its own, so it sits on top of the layers (it builds a ``PluginManager``, which
``pepperpy._isolation`` lies below): nothing in PepperPy imports it. The rest of process isolation, this
process's side included (``parent.py``, ``logs.py``, ``methods.py``), lives in ``pepperpy/_isolation/``.

It runs in the plugin's own venv (see ``_isolation/env.py``), reads requests from stdin and writes replies
to stdout, one JSON object per line (``_isolation/protocol.py``). The protocol owns the original stdout:
``print()`` in the plugin goes to stderr (a file the parent tails when the worker dies).

It never outlives the parent: EOF on stdin (the parent closed it, or died, even by SIGKILL) ends
it with ``os._exit``. The loop reads the requests; a thread watches stdin for that hang-up too, so
a plugin blocking the loop cannot keep the worker alive. With ``--die-with-parent=<pid>`` it also
asks Linux for SIGKILL when the spawning thread exits (PR_SET_PDEATHSIG), not enough alone.
With ``--stderr-file=<path>`` (its stderr, named by the parent), an empty file is removed at that
exit: a parent killed before it could stop the worker leaves no empty file behind.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
from typing import Any

from pepperpy._isolation import protocol
from pepperpy._isolation.methods import CATEGORY_METHODS, public_async_methods, public_methods


def die_with_parent(parent: int) -> None:
    """SIGKILL this process when the thread that spawned it exits (Linux); exit now if the parent is gone."""
    if sys.platform != "linux":
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, 9, 0, 0, 0)  # PR_SET_PDEATHSIG, SIGKILL
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:
        os._exit(1)


def refuse_sync_methods(plugin: dict[str, Any], provider_class: type) -> None:
    """A custom category's plugin is reached only through its public async methods: a public plain ``def``
    could never be called from the parent, so the plugin is refused now (at ``with_plugin``)."""
    from pepperpy.errors import PluginLoadError

    plain = sorted(name for name, kind in public_methods(provider_class).items() if kind == "sync")
    if not plain:
        return
    shown = " and ".join(f"{provider_class.__name__}.{name}()" for name in plain)
    many = len(plain) > 1
    verb, them = ("are plain `def` methods", "them") if many else ("is a plain `def` method", "it")
    helpers = "they are helpers" if many else "it is a helper"
    raise PluginLoadError(
        f"{plugin['id']}: {shown} {verb}, and a process-isolated plugin of a category of its own is reached "
        f"only through its public async methods, which cross the pipe to its worker process; make {them} "
        f"`async def`, or rename {them} with a leading `_` if {helpers}, or run the plugin in-process "
        f"(isolation='inprocess'). Plugin folder: {plugin['folder']}"
    )


class Worker:
    """Serves one provider: load, open, calls, streams, cancellation, close."""

    def __init__(self, out_fd: int, loop: asyncio.AbstractEventLoop):
        from pepperpy._isolation.parent import ParentChannel

        self.out_fd = out_fd
        self.loop = loop
        self.provider: Any = None
        self.home: Any = None
        self.category = ""
        self.parent = ParentChannel(self.reply)  # the plugin's dependencies live in the parent
        self.dependencies: dict[str, dict[str, Any]] = {}  # their descriptions, as the parent sent them last
        self.methods: frozenset[str] = frozenset()
        self.tasks: dict[int, asyncio.Task[Any]] = {}
        self.write_lock = threading.Lock()  # a plugin's thread may log (a ``log`` line) while the loop replies

    # -- replies -----------------------------------------------------------------------

    def reply(self, message: dict[str, Any]) -> None:
        self.write(protocol.encode(message))

    def reply_model(self, request_id: int, key: str, model: Any) -> None:
        """A reply whose value is a pydantic model, serialized by pydantic straight into the line."""
        self.write(b'{"id":%d,"%s":%s}\n' % (request_id, key.encode(), model.model_dump_json(exclude_none=True).encode()))

    def write(self, data: bytes) -> None:
        with self.write_lock:  # one whole line at a time
            while data:
                data = data[os.write(self.out_fd, data):]

    def reply_error(self, request_id: int, exc: BaseException) -> None:
        self.reply({"id": request_id, "error": protocol.error_to_wire(exc)})

    # -- requests ----------------------------------------------------------------------

    def receive(self, message: dict[str, Any]) -> None:
        """Called on the loop for each request line."""
        op, request_id = message.get("op"), message.get("id")
        if op == "cancel":
            task = self.tasks.pop(request_id, None)  # type: ignore[arg-type]
            if task is not None:
                task.cancel()
            return
        if op == "dep":  # the parent answers the plugin's call to a dependency
            self.parent.deliver(message)
            return
        if op in ("load", "dependencies"):  # in order: a later request finds them in place
            self.dependencies = dict(message.get("dependencies") or {})
            if op == "dependencies":
                self.attach_dependencies()
                return
        runner = {"load": self.load, "open": self.open, "close": self.close, "call": self.call, "stream": self.stream}.get(op)  # type: ignore[arg-type]
        if runner is None or not isinstance(request_id, int):
            self.reply({"id": request_id, "error": {"type": "PluginError", "message": f"unknown request {op!r}"}})
            return
        task = self.loop.create_task(self.run(runner, request_id, message))
        self.tasks[request_id] = task

    async def run(self, runner: Any, request_id: int, message: dict[str, Any]) -> None:
        from pepperpy._isolation.parent import serving

        serving.set(request_id)  # its calls to dependencies run on this request's loop in the parent
        try:
            await runner(request_id, message)
        except asyncio.CancelledError:
            pass  # the parent stopped waiting: it wants no reply
        except Exception as exc:  # noqa: BLE001 - every failure goes back to the parent, typed
            self.reply_error(request_id, exc)
            if message.get("op") == "load":
                self.loop.call_soon(self.loop.stop)  # a failed load: the parent starts a fresh worker next time
        finally:
            self.tasks.pop(request_id, None)

    async def load(self, request_id: int, message: dict[str, Any]) -> None:
        """Import the plugin class from its folder, create the provider (options validated), open it if asked."""
        from pathlib import Path

        from pepperpy._config import build_provider
        from pepperpy._dependencies import load_runtime
        from pepperpy._isolation import logs
        from pepperpy.core import CreationContext
        from pepperpy.plugin_manager import PluginManager

        logs.forward_from_worker(self.reply, int(message.get("log_level") or logs.INFO))
        plugin = message["plugin"]
        home = Path(message["home"])
        manager = PluginManager(search_paths=[plugin["folder"]], home=home)
        category, name = plugin["category"], plugin["provider_name"]
        # this venv holds the plugin's requirements: no in-process env of the parent's is made or joined here
        manager.mark_ready(plugin["id"])
        provider_class = manager.load_class(category, name)
        if category not in CATEGORY_METHODS:
            refuse_sync_methods(plugin, provider_class)
        context = CreationContext(plugin["id"], home, dict(message.get("env") or {}), manager.shared_resources,
                                  message.get("alias"), saved_options=dict(message.get("saved") or {}))
        provider = build_provider(provider_class, context, dict(message.get("config") or {}),
                                  defaults=dict(message.get("defaults") or {}))
        object.__setattr__(provider, "_pepperpy_isolation", "process")
        object.__setattr__(provider, "_dependency_parent", self.parent)  # load_dependency asks the parent
        object.__setattr__(provider, "_dependency_loader", load_runtime)
        self.provider, self.category, self.home = provider, category, home
        self.attach_dependencies()
        methods = public_async_methods(provider_class)
        self.methods = CATEGORY_METHODS.get(category, frozenset()) | frozenset(methods)
        if message.get("open"):
            await provider.initialize()
        from pepperpy._reload import is_hot_reloadable
        from pepperpy.hooks import provider_config

        hello = {
            "pid": os.getpid(),
            "methods": methods,
            "config": _public(provider_config(provider)),
            "opened": bool(message.get("open")),
            "hot_reloadable": is_hot_reloadable(provider_class),
        }
        if category == "embeddings":
            hello["model_id"] = provider.model_id
        self.reply({"id": request_id, "ok": hello})

    def attach_dependencies(self) -> None:
        """The provider's stand-ins for the parent's dependencies (``providers.attach_in_parent``)."""
        if self.provider is not None and self.dependencies:
            from pepperpy._isolation.providers import attach_in_parent

            attach_in_parent(self.provider, self.dependencies, self.parent, self.home)

    async def open(self, request_id: int, message: dict[str, Any]) -> None:
        await self.provider.initialize()
        self.reply({"id": request_id, "ok": None})

    async def close(self, request_id: int, message: dict[str, Any]) -> None:
        if self.provider is not None:
            await self.provider.cleanup()
        self.reply({"id": request_id, "ok": None})

    def _method(self, name: Any) -> Any:
        if self.provider is None:
            raise protocol.errors.PluginError("the worker has no provider loaded")
        if not isinstance(name, str) or name not in self.methods:
            raise protocol.errors.PluginError(f"{self.provider.plugin_id} has no public async method {name!r}")
        return getattr(self.provider, name)

    def _arguments(self, method: str, message: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
        return protocol.call_arguments(self.category, method, message.get("args"), message.get("kwargs"))

    async def call(self, request_id: int, message: dict[str, Any]) -> None:
        name = message.get("method")
        method = self._method(name)
        args, kwargs = self._arguments(name, message)  # type: ignore[arg-type]
        result = await method(*args, **kwargs)
        if self.category == "llm" and name == "generate":
            self.reply_model(request_id, "ok", result)
        else:
            self.reply({"id": request_id, "ok": protocol.to_wire(result)})

    async def stream(self, request_id: int, message: dict[str, Any]) -> None:
        name = message.get("method")
        method = self._method(name)
        args, kwargs = self._arguments(name, message)  # type: ignore[arg-type]
        produced = method(*args, **kwargs)
        if asyncio.iscoroutine(produced):
            produced = await produced
        llm = self.category == "llm"
        try:
            async for chunk in produced:
                if llm:
                    self.reply_model(request_id, "chunk", chunk)
                else:
                    self.reply({"id": request_id, "chunk": protocol.to_wire(chunk)})
        finally:
            aclose = getattr(produced, "aclose", None)
            if aclose is not None:
                await aclose()  # a cancelled stream stops the plugin's generator now
        self.reply({"id": request_id, "end": True})


def _public(config: dict[str, Any]) -> dict[str, Any]:
    """The options that can cross as JSON (the others are left out of the parent's view)."""
    shown = {}
    for name, value in config.items():
        try:
            shown[name] = protocol.to_wire(value)
        except protocol.WireError:
            continue
    return shown


def hang_up(stderr_file: str | None) -> None:
    """The parent closed stdin or died: exit now, removing this worker's stderr file if nothing was written."""
    if stderr_file:
        try:
            if os.path.getsize(stderr_file) == 0:
                os.unlink(stderr_file)
        except OSError:
            pass
    os._exit(0)


class RequestReader:
    """Reads request lines from the protocol's stdin on the loop; EOF (the parent closed it, or died) exits."""

    def __init__(self, in_fd: int, worker: Worker, stderr_file: str | None = None):
        self.in_fd = in_fd
        self.worker = worker
        self.stderr_file = stderr_file
        self.pending = b""

    def readable(self) -> None:
        data = os.read(self.in_fd, 1 << 16)
        if not data:
            hang_up(self.stderr_file)
        lines = (self.pending + data).split(b"\n")
        self.pending = lines.pop()
        for line in lines:
            if line.strip():
                try:
                    message = protocol.decode(line)
                except ValueError:
                    continue
                self.worker.receive(message)


def watch_for_hangup(in_fd: int, stderr_file: str | None = None) -> None:
    """A thread that ends the process when the parent's end of stdin closes, even while the loop is busy
    (a plugin blocking it): ``poll`` reports the hang-up of a pipe whatever events are asked for."""
    import select

    poller = select.poll()
    poller.register(in_fd, 0)
    while True:
        for _, events in poller.poll():
            if events & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                hang_up(stderr_file)


def main(argv: list[str]) -> None:
    stderr_file = None
    for argument in argv:
        if argument.startswith("--die-with-parent="):
            die_with_parent(int(argument.split("=", 1)[1]))
        elif argument.startswith("--stderr-file="):
            stderr_file = argument.split("=", 1)[1]
    in_fd, out_fd = os.dup(0), os.dup(1)  # the protocol's own ends of the pipes
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)  # input() in a plugin reads nothing
    os.close(devnull)
    os.dup2(2, 1)  # print() in a plugin goes to the stderr file
    sys.stdout = sys.stderr
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    worker = Worker(out_fd, loop)
    loop.add_reader(in_fd, RequestReader(in_fd, worker, stderr_file).readable)
    threading.Thread(target=watch_for_hangup, args=(in_fd, stderr_file), name="pepperpy-stdin-watch", daemon=True).start()
    try:
        loop.run_forever()
    finally:
        os._exit(3)  # only a failed load stops the loop: its error was sent


if __name__ == "__main__":
    main(sys.argv[1:])
