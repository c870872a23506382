"""Hooks around every LLM call the facade makes: a cache, a call log, usage, tracing, your own.

A hook is an async callable ``(call, call_next)`` that wraps one call as the caller made
it (a whole fallback chain is one call), like an httpx or ASGI middleware::

    async def shout(call: Call, call_next: CallNext) -> Any:
        if call.stream:
            return upper_chunks(await call_next(call))   # an async iterator in, one out
        result = await call_next(call.replace(options={**call.options, "temperature": 0}))
        return result.model_copy(update={"content": result.content.upper()})

``call`` is a frozen record; change the request by passing ``call.replace(...)`` to
``call_next``, or answer without calling it at all (a cache, a test double). For a
streamed call ``call_next`` returns an async iterator of ``GenerationChunk`` and the hook
returns one. The provider opens lazily inside the innermost ``call_next``: a call a hook
answers itself loads no model and opens no connection.

Register with ``PepperPy().with_hook(fn)`` (this facade), ``pepperpy.plugins.register_hook(fn)``
(every facade of the process) or the entry-point group ``pepperpy.hooks`` (an installed
distribution). They run in that order, outermost first: entry points, process-wide, then
the facade's own in the order it added them.

``record(path, mode)`` is a hook that records every call to a JSON file and replays them later
without the provider (``PepperPy().with_recording``, the pytest fixture ``pepperpy_recording``).
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from pepperpy._redact import is_secret_option
from pepperpy.errors import PepperPyErrorGroup, PluginError
from pepperpy.llm import GenerationChunk, GenerationResult, Message

if TYPE_CHECKING:
    from pepperpy._recording import Recording, RecordMode

# Options the facade acts on itself; they are taken out of ``call.options`` into ``call.settings``.
FACADE_OPTIONS = frozenset({"cache"})
_NO_SETTINGS: Mapping[str, Any] = MappingProxyType({})  # a call's empty options or settings (read-only: one serves all)


@dataclasses.dataclass(frozen=True, slots=True)
class Call:
    """One LLM call as the caller made it.

    ``provider`` is the plugin id (the first member's for a fallback chain), ``options`` the
    per-call options the provider will see, ``settings`` the facade-level ones (``cache``).
    """

    provider: str
    messages: tuple[Message, ...]
    options: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    stream: bool = False
    conversation_id: str | None = None
    model: str | None = None
    settings: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    target: Any = dataclasses.field(default=None, repr=False, compare=False)  # the provider object, not opened

    def __post_init__(self) -> None:
        if type(self.messages) is not tuple:
            object.__setattr__(self, "messages", tuple(self.messages))
        if type(self.options) is not MappingProxyType:
            object.__setattr__(self, "options", MappingProxyType(dict(self.options)) if self.options else _NO_SETTINGS)
        if type(self.settings) is not MappingProxyType:
            object.__setattr__(self, "settings", MappingProxyType(dict(self.settings)) if self.settings else _NO_SETTINGS)

    def replace(self, **changes: Any) -> Call:
        """A copy with ``changes`` (``messages=``, ``options=``, ...); the original is unchanged."""
        unknown = sorted(set(changes) - _CALL_FIELDS)
        if unknown:
            from pepperpy.errors import ConfigError

            raise ConfigError(
                f"Call.replace() got {', '.join(map(repr, unknown))}; a call has "
                f"{', '.join(sorted(_CALL_FIELDS - {'target'}))} (per-call options go in options={{...}})"
            )
        return dataclasses.replace(self, **changes)

    @property
    def config(self) -> dict[str, Any]:
        """The provider's own settings (model, base URL, defaults), secrets left out: what a cache key needs."""
        return provider_config(self.target)


_CALL_FIELDS = frozenset(field.name for field in dataclasses.fields(Call))
CallNext = Callable[[Call], Awaitable[Any]]
Hook = Callable[[Call, CallNext], Awaitable[Any]]


def _public(name: str, value: Any) -> bool:
    return not is_secret_option(name, value)


def provider_config(provider: Any) -> dict[str, Any]:
    """``provider``'s option values without secrets; a fallback chain describes every member."""
    if provider is None:
        return {}
    describe = getattr(provider, "describe", None)
    if describe is not None:
        return describe()
    values = {}
    for name in type(provider).option_specs():
        value = getattr(provider, name, None)
        if _public(name, value):
            values[name] = value
    return values


def split_options(options: Mapping[str, Any]) -> tuple[Mapping[str, Any], Mapping[str, Any]]:
    """``(provider options, facade settings)`` from what the caller passed (``options`` itself when it holds no
    facade setting: ``Call`` keeps a copy)."""
    if FACADE_OPTIONS.isdisjoint(options):
        return options, _NO_SETTINGS
    provider_options = {k: v for k, v in options.items() if k not in FACADE_OPTIONS}
    return provider_options, {k: options[k] for k in FACADE_OPTIONS if k in options}


def hook_name(hook: Any) -> str:
    return getattr(hook, "__qualname__", None) or type(hook).__qualname__


def _checked(hook: Any, call: Call, outcome: Any) -> Any:
    if call.stream:
        if not hasattr(outcome, "__anext__"):
            raise PluginError(
                f"hook {hook_name(hook)} returned {type(outcome).__name__} for a streamed call; "
                "return an async iterator of GenerationChunk (what `await call_next(call)` gave, or your own)"
            )
    elif not isinstance(outcome, GenerationResult):
        raise PluginError(
            f"hook {hook_name(hook)} returned {type(outcome).__name__}; "
            "return a GenerationResult (what `await call_next(call)` gave, or your own)"
        )
    return outcome


async def _run_hook(hook: Hook, call_next: CallNext, call: Call) -> Any:
    inner_error: BaseException | None = None
    inner_streams: list[Any] = []

    async def watched_next(next_call: Call) -> Any:
        nonlocal inner_error
        try:
            outcome = await call_next(next_call)
        except BaseException as exc:
            inner_error = exc
            raise
        if next_call.stream:
            inner_streams.append(outcome)
        return outcome

    try:
        outcome = hook(call, watched_next)
        if inspect.isawaitable(outcome):  # an async generator hook gives a stream directly
            outcome = await outcome
    except Exception as exc:
        if inner_error is None or exc is inner_error or exc.__cause__ is inner_error:
            raise
        if not isinstance(inner_error, Exception):
            raise
        raise PepperPyErrorGroup(
            f"hook {hook_name(hook)} raised while handling the call's error; both are listed", [inner_error, exc]
        ) from None
    outcome = _checked(hook, call, outcome)
    if call.stream and not (inner_streams and outcome is inner_streams[-1]):
        return _closing_inner(outcome, inner_streams)  # the hook made its own stream: close the inner one with it
    return outcome


async def _closing_inner(stream: Any, inner_streams: list[Any]) -> AsyncIterator[GenerationChunk]:
    """``stream``'s chunks; closing it also closes the streams its hook got from ``call_next`` (if it did not)."""
    try:
        async with closing_stream(stream) as chunks:
            async for chunk in chunks:
                yield chunk
    finally:
        for inner in inner_streams:
            aclose = getattr(inner, "aclose", None)
            if aclose is not None:
                await aclose()


def compose(hooks: Sequence[Hook], innermost: CallNext) -> CallNext:
    """One ``call_next`` running ``hooks`` (outermost first) around ``innermost``."""
    call_next = innermost
    for hook in reversed(hooks):
        call_next = functools.partial(_run_hook, hook, call_next)
    return call_next


@asynccontextmanager
async def closing_stream(chunks: Any) -> AsyncIterator[Any]:
    """``async with closing_stream(await call_next(call)) as stream: async for chunk in stream: ...``:
    closes the stream (and every hook's and the provider's under it) as soon as the block is left."""
    try:
        yield chunks
    finally:
        aclose = getattr(chunks, "aclose", None)
        if aclose is not None:
            await aclose()


def record(path: str | os.PathLike[str], mode: RecordMode = "once") -> Recording:
    """A hook that records every LLM call it sees to the JSON file ``path``, and replays them later without the
    provider: ``"once"`` records when the file is missing and replays after, ``"replay"`` only replays (a
    request with no recorded answer is a ``RecordingError`` naming the file), ``"new"`` replays what it has and
    records the rest (keeping every recorded call), ``"rewrite"`` records every call afresh (the file then holds
    only this recording's calls). Pass it to ``PepperPy().with_recording(...)`` (its place: inside your hooks,
    outside the cache) or use it as any hook. Matching, secrets and the file format: ``pepperpy/_recording.py``."""
    from pepperpy._recording import Recording

    return Recording(path, mode)


ENTRY_POINT_GROUP = "pepperpy.hooks"


def load_entry_point_hooks() -> list[Hook]:
    """The hooks installed distributions name in ``pepperpy.hooks``; a broken one is logged and left out."""
    import importlib.metadata

    from pepperpy._log import logger

    hooks = []
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        source = entry_point.dist.name if entry_point.dist is not None else "an installed distribution"
        try:
            hook = entry_point.load()
        except Exception as exc:
            logger.error("hook entry point {} = {!r} (from {}) failed to import, left out: {}: {}",
                         entry_point.name, entry_point.value, source, type(exc).__name__, exc)
            continue
        if not callable(hook):
            logger.error("hook entry point {} = {!r} (from {}) is not callable, left out", entry_point.name, entry_point.value, source)
            continue
        hooks.append(hook)
    return hooks


def check_hook(hook: Any) -> Hook:
    """``hook`` if it can be one (a callable of ``(call, call_next)``); ConfigError otherwise."""
    if not callable(hook):
        from pepperpy.errors import ConfigError

        raise ConfigError(
            f"a hook is an async callable taking (call, call_next), got {hook!r:.80}; write "
            "`async def my_hook(call, call_next): return await call_next(call)`"
        )
    return hook


__all__ = [
    "Call", "CallNext", "ENTRY_POINT_GROUP", "FACADE_OPTIONS", "Hook", "check_hook", "compose", "load_entry_point_hooks",
    "provider_config", "record", "split_options", "closing_stream",
]
