"""In the worker: the way back to the parent, where the plugin's dependencies live (``dependencies.py``).

``ParentChannel`` sends the plugin's dependency requests on the worker's stdout and routes the parent's
answers, which arrive on its stdin; each request carries the parent's request the worker was serving
(``serving``), so the parent runs it on that call's loop. ``Link`` is one dependency's end of it, with
the ``request``/``stream`` of a ``WorkerClient``, so the same forwarding code serves both directions
(``providers.py``).
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextvars import ContextVar
from typing import Any

from pepperpy._isolation.client import PendingRequest

# The parent's request the current task of the worker serves (set for each request it runs).
serving: ContextVar[int | None] = ContextVar("pepperpy_worker_serving", default=None)


class ParentChannel:
    """The worker's requests to the parent: numbers, waiting, answers, cancellation."""

    def __init__(self, write: Callable[[dict[str, Any]], None]):
        self.write = write
        self.waiting: dict[int, tuple[PendingRequest, str]] = {}  # number -> (request, the dependency's plugin id)
        self._numbers = itertools.count(1)

    def link(self, key: str, plugin_id: str) -> Link:
        return Link(self, key, plugin_id)

    def _send(self, key: str, plugin_id: str, op: str, stream: bool, method: str | None = None,
              args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> tuple[int, PendingRequest]:
        request = PendingRequest(asyncio.get_running_loop(), stream=stream)
        number = next(self._numbers)
        self.waiting[number] = (request, plugin_id)
        message: dict[str, Any] = {"dep": number, "key": key, "op": op, "for": serving.get()}
        if method is not None:
            message.update(method=method, args=args or [], kwargs=kwargs or {})
        self.write(message)
        return number, request

    async def request(self, key: str, plugin_id: str, op: str, method: str | None = None,
                      args: list[Any] | None = None, kwargs: dict[str, Any] | None = None) -> Any:
        number, request = self._send(key, plugin_id, op, False, method, args, kwargs)
        assert request.future is not None
        try:
            return await request.future
        except asyncio.CancelledError:
            self._cancel(number)
            raise
        finally:
            self.waiting.pop(number, None)

    async def stream(self, key: str, plugin_id: str, method: str, args: list[Any],
                     kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        number, request = self._send(key, plugin_id, "stream", True, method, args, kwargs)
        try:
            async for chunk in request.items():
                yield chunk
        finally:
            if not request.done:
                self._cancel(number)
            self.waiting.pop(number, None)

    def _cancel(self, number: int) -> None:
        self.waiting.pop(number, None)
        self.write({"dep": number, "op": "cancel"})

    def deliver(self, message: dict[str, Any]) -> None:
        """An answer of the parent (``{"op": "dep", "dep": n, ...}``)."""
        number = message.get("dep")
        waiting = self.waiting.get(number)  # type: ignore[arg-type]
        if waiting is None:
            return  # cancelled: nobody waits
        request, plugin_id = waiting
        if request.deliver(message, plugin_id):
            self.waiting.pop(number, None)  # type: ignore[arg-type]

    async def load(self, key: str, plugin_id: str) -> None:
        """``await self.load_dependency(key)`` in the worker: the parent creates it; its description arrives
        (and its stand-in is set on the provider) before this returns."""
        await self.request(key, plugin_id, "load")


class Link:
    """One dependency's way to the parent: ``request``/``stream`` as a ``WorkerClient`` has them."""

    __slots__ = ("channel", "key", "plugin_id")

    def __init__(self, channel: ParentChannel, key: str, plugin_id: str):
        self.channel, self.key, self.plugin_id = channel, key, plugin_id

    async def request(self, op: str, method: str | None = None, args: list[Any] | None = None,
                      kwargs: dict[str, Any] | None = None) -> Any:
        return await self.channel.request(self.key, self.plugin_id, op, method, args, kwargs)

    def stream(self, method: str, args: list[Any], kwargs: dict[str, Any]) -> AsyncIterator[Any]:
        return self.channel.stream(self.key, self.plugin_id, method, args, kwargs)


__all__ = ["Link", "ParentChannel", "serving"]
