"""The parent's side of an isolated plugin's dependencies: they live here, its worker reaches them over the pipe.

The parent creates, shares, opens and closes a process-isolated plugin's dependencies as for any plugin
(``pepperpy/_dependencies.py``): they are the stand-in's. Their descriptions (``describe``) go to the
worker, where the plugin finds one stand-in per dependency in ``self.dependencies`` (``providers.py``,
``InParent*``); each call of one comes back here and ``serve`` runs it on the parent's provider:

- ``{"dep": n, "key": k, "op": "call"|"stream", "method": ..., "args": [...], "kwargs": {...}, "for": id}``
  a method of the category (``generate``, ``embed``, ``get``, ...) or, for a category of its own, a public
  async method; ``for`` is the parent's request the worker was serving, whose loop runs it;
- ``"op": "open"|"close"``: the worker's plugin opened (closed) it; the parent opens one not open yet, and
  closes what it opened so when the worker closes it again or the stand-in closes;
- ``"op": "load"``: ``await self.load_dependency(k)`` in the worker: created here (``runtime``, or an
  ``optional`` one the facade did not have), its description sent before the answer;
- ``{"dep": n, "op": "cancel"}``: the worker's call was cancelled.

Answers: ``{"op": "dep", "dep": n, "ok"|"chunk"|"end"|"error": ...}`` on the worker's stdin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from contextlib import aclosing
from typing import Any

from pepperpy._isolation import protocol
from pepperpy.errors import PluginDependencyError, PluginError


def category_of(provider: Any) -> str:
    """``llm``, ``embeddings``, ``rag`` or ``storage`` for a provider of a known category, else ``""``."""
    from pepperpy.embeddings import EmbeddingProvider
    from pepperpy.llm import LLMProvider
    from pepperpy.rag import RAGProvider
    from pepperpy.storage import StorageProvider

    for category, base in (("llm", LLMProvider), ("embeddings", EmbeddingProvider), ("rag", RAGProvider),
                           ("storage", StorageProvider)):
        if isinstance(provider, base):
            return category
    return ""


def describe(dependencies: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the worker needs to stand in for each dependency: its id, alias, category, isolation, and its
    public async methods (a category of its own) or model id (embeddings)."""
    from pepperpy._isolation.methods import public_async_methods

    described = {}
    for key, provider in dependencies.items():
        category = category_of(provider)
        description: dict[str, Any] = {"plugin_id": provider.plugin_id, "alias": provider.alias,
                                       "category": category, "isolation": provider.isolation}
        if category == "embeddings":
            description["model_id"] = provider.model_id
        elif not category:
            description["methods"] = public_async_methods(type(provider))
        described[key] = description
    return described


def _call(provider: Any, message: dict[str, Any]) -> tuple[Any, list[Any], dict[str, Any]]:
    """The method a ``call``/``stream`` request names (one the worker may call) and its arguments."""
    from pepperpy._isolation.methods import CATEGORY_METHODS, public_async_methods

    name, category = message.get("method"), category_of(provider)
    allowed = CATEGORY_METHODS[category] if category else frozenset(public_async_methods(type(provider)))
    if not isinstance(name, str) or name not in allowed:
        raise PluginError(f"{provider.plugin_id} has no public async method {name!r} to call from a worker process")
    args, kwargs = protocol.call_arguments(category, name, message.get("args"), message.get("kwargs"))
    return getattr(provider, name), args, kwargs


async def serve(owner: Any, message: dict[str, Any], reply: Callable[[dict[str, Any]], None]) -> None:
    """Run one request of ``owner``'s worker on the dependency it names; the answer (or error) goes to ``reply``."""
    key, op = message.get("key"), message.get("op")
    try:
        if op == "load":
            await owner.load_dependency(key)  # its description reaches the worker first (set_dependency)
            reply({"ok": None})
            return
        dependency = owner.dependency(key) if isinstance(key, str) else None
        if dependency is None:
            raise PluginDependencyError(
                f"{owner.plugin_id}: it has no dependency {key!r} in the parent process; declare it in plugin.json "
                "'dependencies' (or register_plugin_metadata)"
            )
        if op == "open":
            await owner._open_for_worker(dependency)
            reply({"ok": None})
        elif op == "close":
            await owner._close_for_worker(dependency)
            reply({"ok": None})
        elif op == "call":
            method, args, kwargs = _call(dependency, message)
            reply({"ok": protocol.to_wire(await method(*args, **kwargs))})
        elif op == "stream":
            method, args, kwargs = _call(dependency, message)
            async with aclosing(method(*args, **kwargs)) as chunks:
                async for chunk in chunks:
                    reply({"chunk": protocol.to_wire(chunk)})
            reply({"end": True})
        else:
            raise PluginError(f"{owner.plugin_id}: unknown dependency request {op!r} from its worker process")
    except asyncio.CancelledError:
        raise  # the worker stopped waiting: it wants no answer
    except Exception as exc:  # noqa: BLE001 - every failure goes back to the worker, typed
        reply({"error": protocol.error_to_wire(exc)})


__all__ = ["category_of", "describe", "serve"]
