"""The PepperPy facade: a builder that configures providers and owns their lifecycle."""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Awaitable, Callable, Coroutine, Iterable
from typing import TYPE_CHECKING, Any, TypeVar

from pepperpy import _dependencies
from pepperpy._defaults import DEFAULT_PROVIDERS, default_provider_name, default_provider_source
from pepperpy._envs import install_mode
from pepperpy._session import Session, SyncRunner, raise_failures
from pepperpy.errors import ConfigError, PluginNotFoundError
from pepperpy.plugin_manager import PluginManager, plain_name

if TYPE_CHECKING:
    from pepperpy._recording import Recording, RecordMode
    from pepperpy._usage import UsageMeter, UsageReport
    from pepperpy.chat import ChatBuilder, Conversation
    from pepperpy.hooks import Call, Hook
    from pepperpy.rag import SearchMode
    from pepperpy.retrieval import Answer, Retrieval

T = TypeVar("T")

class PendingProvider:
    """A provider whose plugin is still to be installed: ``with_*`` ran inside an event loop.

    It is installed in a worker thread (other tasks keep running) and created, with its
    options validated, when the facade opens it.
    """

    initialized = False

    def __init__(self, manager: PluginManager, category: str, name: str, config: dict[str, Any]):
        self.category, self.config = category, config
        self.plugin_id = manager.resolve(category, name)[0].id
        self.name = self.plugin_id.rsplit("/", 1)[-1]
        self._manager, self._requested = manager, name
        self._created: asyncio.Future[Any] | None = None

    def __repr__(self) -> str:
        return f"PendingProvider({self.plugin_id}, installed when it opens)"

    def __setattr__(self, name: str, value: Any) -> None:
        if name.startswith("_") or name in ("category", "config", "plugin_id", "name"):
            object.__setattr__(self, name, value)
            return
        raise ConfigError(
            f"{self.plugin_id} is installed when it opens, so its options cannot be assigned yet: pass "
            f"{name}=... to with_{self.category}(...) instead"
        )

    async def create(self) -> Any:
        if self._created is None or (self._created.done() and self._created.exception() is not None):
            create = self._manager.create_provider
            self._created = asyncio.ensure_future(asyncio.to_thread(create, self.category, self._requested, **self.config))
        return await self._created


class PepperPy:
    """Configure providers with ``with_*`` calls, then use them inside ``async with`` (or lazily)."""

    def __init__(self, config: dict[str, Any] | None = None, plugin_manager: PluginManager | None = None):
        self._config = dict(config or {})
        self._manager = plugin_manager or PluginManager.instance()
        self._providers: dict[str, Any] = {}
        self._session: Session | None = None
        self._sync: SyncRunner | None = None
        self._requests: dict[str, tuple[str, dict[str, Any]]] = {}  # category -> (name, config) asked for
        self._reloads_seen = self._manager.reloads  # see _switch_reloaded
        self._retiring: set[asyncio.Task[None]] = set()
        self._hooks: list[Hook] = []  # this facade's own, outermost first (pepperpy/hooks.py)
        self._call_log: Any = None  # with_logging(): outside every hook: records each call as made and answered
        self._cache: Any = None  # with_cache(): innermost, keyed on what the provider would receive
        self._recording: Any = None  # with_recording(): inside every hook, outside the cache
        self._builtin_hooks: list[Any] | None = None  # tracing, when OpenTelemetry is installed
        self._usage_meter: UsageMeter | None = None  # counts every answer, outside every hook
        self._builder_class: type[ChatBuilder] | None = None  # imported by ``chat`` on first use

    @property
    def plugin_manager(self) -> PluginManager:
        """The PluginManager this facade creates its providers with."""
        return self._manager

    def __repr__(self) -> str:
        configured = ", ".join(f"{c}={p.name}" for c, p in self._providers.items())
        return f"PepperPy({configured})"

    # -- configuration ---------------------------------------------------------------

    def default_provider(self, category: str) -> str:
        default = default_provider_name(category, self._config)
        if default is None:
            raise ConfigError(
                f"there is no default {category} provider; name one: .with_plugin({category!r}, 'name', ...), "
                f"or set PEPPERPY_{category.upper()}"
            )
        return default

    def with_plugin(self, category: str, provider_type: Any = None, /, **config: Any) -> PepperPy:
        """Use the plugin ``category/provider_type``.

        Outside an event loop this installs it on first use and validates ``config`` at
        once; inside one, a plugin not yet installed is installed in a worker thread when
        it opens, and its options are validated then. An unknown name fails here either way.
        """
        if isinstance(provider_type, (list, tuple)):
            return self._with_fallbacks(category, list(provider_type), config)
        if provider_type:
            self._configure(category, provider_type, config)
            return self
        name, source = self.default_provider(category), default_provider_source(category, self._config)
        try:
            self._configure(category, name, config)
        except PluginNotFoundError as exc:
            if source is None:
                raise
            where, fix = source
            ask = f"with_{category}('name')" if category in DEFAULT_PROVIDERS else f"with_plugin({category!r}, 'name')"
            raise PluginNotFoundError(
                f"the default {category} provider {name!r} comes from {where}: {exc}\n"
                f"To use another one, {fix}, or name it: {ask}."
            ) from None
        return self

    def _configure(self, category: str, name: str, config: dict[str, Any]) -> None:
        name = plain_name(category, name, self._manager.has_provider)
        self._requests[category] = (name, dict(config))
        if _in_event_loop() and self._manager.needs_install(category, name, config) and install_mode() != "never":
            self._providers[category] = PendingProvider(self._manager, category, name, config)
        else:
            with _dependencies.sharing(_dependencies.Scope.of(self, self._config)):  # dependencies share this facade's providers
                self._providers[category] = self._manager.create_provider(category, name, **config)
        self._share_dependencies()

    def _with_fallbacks(self, category: str, members: list[Any], config: dict[str, Any]) -> PepperPy:
        from pepperpy._fallback import FallbackLLM

        if category != "llm":
            raise ConfigError(f"fallback chains are for LLMs; give with_plugin({category!r}, ...) one provider name")
        on_auth = config.pop("fallback_on_auth", True)
        self._providers["llm"] = FallbackLLM(self._manager, members, config, fallback_on_auth=on_auth)
        return self

    def _share_dependencies(self) -> None:
        """Give each provider's declared dependencies this facade's instances (``pepperpy/_dependencies.py``)."""
        _dependencies.share(self._providers)

    def with_llm(self, /, provider_type: str | list[Any] | None = None, **config: Any) -> PepperPy:
        """The LLM ``provider_type``, or a fallback chain: ``with_llm(["openai", ("local", {...})], **shared)``."""
        return self.with_plugin("llm", provider_type, **config)

    def with_embeddings(self, /, provider_type: str | None = None, **config: Any) -> PepperPy:
        return self.with_plugin("embeddings", provider_type, **config)

    def with_rag(self, /, provider_type: str | None = None, **config: Any) -> PepperPy:
        """A vector store (default ``local``); it embeds with ``with_embeddings``' provider, else the local one."""
        return self.with_plugin("rag", provider_type, **config)

    def with_storage(self, /, provider_type: str | None = None, **config: Any) -> PepperPy:
        return self.with_plugin("storage", provider_type, **config)

    # -- hooks around LLM calls (pepperpy/hooks.py) -------------------------------------

    def with_hook(self, hook: Hook) -> PepperPy:
        """Run ``hook`` around every LLM call of this facade: ``async def hook(call, call_next)``."""
        from pepperpy.hooks import check_hook

        self._hooks.append(check_hook(hook))
        return self

    def with_cache(self, path: str | os.PathLike[str] | None = None, ttl: float | None = None) -> PepperPy:
        """Answer repeated LLM calls from a cache: in memory, or in the SQLite file ``path`` (shared by processes).

        Entries older than ``ttl`` seconds are not used. ``with_options(cache=False)`` skips it for one call.
        It sits inside every hook, so it keys on the request the provider would get; called again, it
        replaces the cache.
        """
        from pepperpy._cache import ResponseCache

        self._cache = ResponseCache(path, ttl)
        return self

    def with_recording(self, recording: str | os.PathLike[str] | Recording, mode: RecordMode | None = None) -> PepperPy:
        """Record every LLM call of this facade to the JSON file ``recording`` and replay them later without the
        provider (``mode``: ``"once"`` by default, ``"replay"``, ``"new"``, ``"rewrite"``; see
        ``pepperpy.hooks.record``), or use a ``Recording`` that ``record()`` made (shared by several facades). It
        sits inside every hook (they run in a replay too) and outside the cache; while it only replays,
        ``async with`` leaves the LLM closed."""
        from pepperpy._recording import Recording
        from pepperpy.hooks import record

        if isinstance(recording, Recording):
            if mode is not None:
                raise ConfigError(f"with_recording(): {recording!r} has its mode already; pass a path to set mode=")
            self._recording = recording
        else:
            self._recording = record(recording, mode or "once")
        return self

    def with_logging(
        self, path: str | os.PathLike[str] | None = None, redact: Callable[[str], str] | None = None
    ) -> PepperPy:
        """Record every LLM call of this facade in a SQLite call log (default ``<home>/logs.db``).

        ``redact`` (a function ``str -> str``) is applied to every message and answer before it is
        stored; keys never are. The log sits outside every hook: it records each call as the caller made
        it and the answer the caller got (cache hits included). Called again, it replaces the log.
        See pepperpy/_calllog.py.
        """
        from pepperpy._calllog import CallLog, default_path

        self._call_log = CallLog(path if path is not None else default_path(self._manager.home), redact)
        return self

    @property
    def usage(self) -> UsageReport:
        """Tokens used by this facade's LLM calls, per provider and model (cache hits counted apart)."""
        return self._meter().report

    def _meter(self) -> UsageMeter:
        if self._usage_meter is None:
            from pepperpy._tracing import tracing_hook
            from pepperpy._usage import UsageMeter

            tracer = tracing_hook()
            self._builtin_hooks = [tracer] if tracer is not None else []
            self._usage_meter = UsageMeter()
        return self._usage_meter

    async def call_llm(self, call: Call) -> Any:
        """Run ``call`` through the hooks to the provider, outermost first: usage (not a hook: it counts what
        comes out), tracing (while a tracer provider is set), the call log, the ``pepperpy.hooks`` entry points, process-wide hooks, this facade's
        hooks in order, the recording (this facade's, else the process's: the pytest fixture), the cache."""
        meter = self._meter()
        hooks = [tracer for tracer in self._builtin_hooks if tracer.enabled()]  # type: ignore[union-attr]
        if self._call_log is not None:
            hooks.append(self._call_log)
        hooks += [*self._manager.call_hooks(), *self._hooks]
        recording = self._active_recording()
        if recording is not None:
            hooks.append(recording)
        if self._cache is not None:
            hooks.append(self._cache)
        if not hooks:  # the provider itself
            return meter.count(call, await self._provider_call(call))
        from pepperpy.hooks import compose

        return meter.count(call, await compose(hooks, self._provider_call)(call))

    def _active_recording(self) -> Recording | None:
        """This facade's recording, else the process's (``plugin_manager.recording``: the pytest fixture's)."""
        return self._recording or self._manager.recording

    async def _provider_call(self, call: Call) -> Any:
        """The innermost ``call_next``: opens the LLM (lazily) and calls it."""
        from pepperpy.llm import check_parts, text_only

        messages = list(call.messages)
        if not text_only(messages):  # parts: checked before a model loads
            configured = await self.configured("llm")
            check_parts(configured, messages, call.options.get("model") or getattr(configured, "model", None))
        provider = await self.ready("llm")
        if call.stream:
            return provider.generate_stream(messages, **call.options)
        return await provider.generate(messages, **call.options)

    async def configured(self, category: str) -> Any:
        """The provider of ``category``, created (installed if it had to be) but not necessarily open."""
        if self._reloads_seen != self._manager.reloads:
            await self._switch_reloaded()
        provider = self.provider(category)
        if isinstance(provider, PendingProvider):
            provider = await self._created(category)
        return provider

    @property
    def plugin_manager(self) -> PluginManager:
        """The PluginManager this facade creates its providers (and ``rag.add``'s loaders) with."""
        return self._manager

    def provider(self, category: str) -> Any:
        """The configured provider of ``category`` (not necessarily open)."""
        try:
            return self._providers[category]
        except KeyError:
            raise ConfigError(
                f"no {category} provider is configured; call .with_plugin({category!r}, ...)"
                + (f" or .with_{category}(...)" if category in DEFAULT_PROVIDERS else "")
                + " first"
            ) from None

    @property
    def _llm_provider(self) -> Any:
        return self.provider("llm")

    @property
    def llm(self) -> Any:
        return self.provider("llm")

    @property
    def rag(self) -> Retrieval:
        """Add and search documents in the configured vector store."""
        from pepperpy.retrieval import Retrieval

        self.provider("rag")
        return Retrieval(self)

    @property
    def chat(self) -> ChatBuilder:
        """A fresh chat builder on the configured LLM; each ``with_*`` returns a new builder."""
        self.provider("llm")
        if self._builder_class is None:  # imported once: an import statement run per call costs ~8k instructions
            from pepperpy.chat import ChatBuilder

            self._builder_class = ChatBuilder
        return self._builder_class(self)

    def conversation(self, system: str | None = None, **options: Any) -> Conversation:
        """A chat that keeps its history across turns: ``await conv.say("...")``."""
        from pepperpy.chat import Conversation

        self.provider("llm")
        return Conversation(self, system=system, **options)

    async def ask(
        self,
        question: str,
        k: int = 4,
        filter: dict[str, Any] | None = None,
        answer_without_sources: bool = False,
        mode: SearchMode = "hybrid",
        **options: Any,
    ) -> Answer:
        """Answer ``question`` from the ``k`` most relevant passages; the answer lists them as sources.

        ``mode`` ranks them as ``pepper.rag.search`` does: ``"hybrid"`` (words and meaning), ``"vector"``,
        ``"keyword"``. When the store finds nothing, the model is not asked and the answer says so, unless
        ``answer_without_sources=True``.
        """
        from pepperpy.retrieval import ask

        return await ask(
            self, question, k=k, filter=filter, answer_without_sources=answer_without_sources, mode=mode, **options
        )

    def ask_sync(
        self,
        question: str,
        k: int = 4,
        filter: dict[str, Any] | None = None,
        answer_without_sources: bool = False,
        mode: SearchMode = "hybrid",
        **options: Any,
    ) -> Answer:
        """``ask()`` for scripts without an event loop."""
        return self.run_sync(self.ask(question, k, filter, answer_without_sources, mode, **options))

    # -- lifecycle -------------------------------------------------------------------

    async def ready(self, category: str) -> Any:
        """The provider of ``category``, open on the running loop (opened lazily outside ``async with``)."""
        if self._reloads_seen != self._manager.reloads:  # a plugin was hot-reloaded (pepperpy/_reload.py)
            await self._switch_reloaded()
        provider = self._providers.get(category)
        session = self._session
        if provider is not None and provider.initialized and session is not None:
            if session.loop is asyncio.get_running_loop():
                return provider
        await self._open([category])
        return self.provider(category)

    async def _switch_reloaded(self) -> None:
        """Serve a new instance of the reloaded class, with the same config, for each provider a reload made stale.

        The new instance is opened in the session at once; the old one is closed once every task that was
        running at the switch (other than the caller, whose earlier calls are over) has finished, or at the
        session's close, whichever comes first. If the new one fails to create or open, the old one serves on.
        """
        from pepperpy._log import logger

        self._reloads_seen = self._manager.reloads
        fresh, old = {}, {}
        for category, provider in list(self._providers.items()):
            if category not in self._requests or self._manager.replacement(type(provider)) is None:
                continue
            name, config = self._requests[category]
            try:
                fresh[category] = self._manager.create_provider(category, name, **config)
            except Exception as exc:
                logger.error("hot reload: keeping the old {} provider: {}", category, exc)
                continue
            old[category] = provider
        if not fresh:
            return
        self._providers.update(fresh)
        self._share_dependencies()
        session = self._session
        if session is None or session.loop is not asyncio.get_running_loop():
            return  # nothing open here: the new providers open on first use
        was_open = [p for p in old.values() if p.initialized]
        try:
            await session.open([p for c, p in fresh.items() if old[c].initialized])
        except Exception as exc:
            logger.error("hot reload: the new providers failed to open, the old ones serve on: {}", exc)
            self._providers.update(old)
            self._share_dependencies()
            return
        logger.info("hot reload: now serving {}", ", ".join(f"{c}={type(p).__name__}" for c, p in fresh.items()))
        if was_open:
            running = asyncio.all_tasks() - {asyncio.current_task()}
            task = asyncio.get_running_loop().create_task(self._retire(session, was_open, running))
            self._retiring.add(task)
            task.add_done_callback(self._retiring.discard)

    async def _retire(self, session: Session, providers: list[Any], running: set[asyncio.Task[Any]]) -> None:
        """Close providers replaced by a hot reload once the tasks that may be calling them are done."""
        from pepperpy._log import logger
        from pepperpy.core import PepperpyPlugin, disown

        if running:
            await asyncio.wait(running)
        live = list(self._providers.values())
        for provider in providers:
            if isinstance(provider, PepperpyPlugin):  # a dependency it opened but that now serves its successor stays open
                disown(provider, live)
            try:
                await provider.cleanup()
            except Exception as exc:
                logger.warning("hot reload: closing the replaced {} failed: {}", provider.plugin_id, exc)
            if any(p is provider for p in session.opened):
                session.opened = [p for p in session.opened if p is not provider]

    async def _open(self, categories: list[str]) -> None:
        session = await self._session_on_running_loop()
        configured = [c for c in categories if c in self._providers]
        if not configured:
            self.provider(categories[0])  # raises: nothing configured
        with _dependencies.sharing(_dependencies.Scope.of(self, self._config)):
            await self._install(configured)
            used = {  # configured categories the opened ones depend on, still to be installed
                spec.type
                for c in configured
                for spec in (getattr(self._providers[c], "_dependency_specs", None) or {}).values()
                if spec.dependency_type != "runtime" and isinstance(self._providers.get(spec.type), PendingProvider)
            }
            await self._install(used)
        self._share_dependencies()
        await session.open([self._providers[c] for c in configured])

    async def _install(self, categories: Iterable[str]) -> None:
        """Create the pending providers of ``categories`` concurrently (installing in worker threads)."""
        created = await asyncio.gather(*(self._created(c) for c in categories), return_exceptions=True)
        raise_failures([o for o in created if isinstance(o, BaseException)], "providers failed to install")

    async def _created(self, category: str) -> Any:
        provider = self._providers[category]
        if isinstance(provider, PendingProvider):
            real = await provider.create()
            if self._providers.get(category) is provider:
                self._providers[category] = real
            provider = real
        return provider

    async def _session_on_running_loop(self) -> Session:
        loop = asyncio.get_running_loop()
        session = self._session
        if session is not None and session.loop is not loop:
            self._session = None
            await session.close_from_here()  # providers live on one loop at a time
            session = None
        if session is None:
            session = self._session = Session(loop)
            await session.watch_loop()
        return session

    async def kept_open(self, key: Any, create: Callable[[], Awaitable[Any]]) -> Any:
        """The resource kept open for ``key`` on this facade (an MCP server's session): made by ``await create()``
        and opened (``initialize()``) on first use, shared by every chat, closed (``cleanup()``) with the providers."""
        session = await self._session_on_running_loop()
        opening = session.kept.get(key)
        if opening is None:

            async def open_it() -> Any:
                resource = await create()
                await resource.initialize()
                session.opened.append(resource)
                return resource

            opening = session.kept[key] = asyncio.ensure_future(open_it())
        try:
            return await asyncio.shield(opening)
        except BaseException:
            if opening.done() and session.kept.get(key) is opening:  # a failed opening is tried again next time
                del session.kept[key]
            raise

    async def __aenter__(self) -> PepperPy:
        recording = self._active_recording()
        categories = list(self._providers)
        if recording is not None and recording.replays_only and "llm" in categories:
            categories.remove("llm")  # replayed calls need no LLM; it opens if a call ever reaches it
        try:
            if categories or not self._providers:
                await self._open(categories)
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close every open provider, in reverse order; safe to call twice. The facade may be used again."""
        session, self._session = self._session, None
        if session is not None:
            await session.close_from_here()
        for provider in reversed(list(self._providers.values())):
            if provider.initialized:  # opened by itself (a custom category's lazy initialize), not by a session
                await provider.cleanup()

    # -- sync path -------------------------------------------------------------------

    def run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T:
        """Run ``coroutine`` on this PepperPy's private event loop (providers stay open between calls)."""
        if self._sync is None:
            self._sync = SyncRunner()
            weakref.finalize(self, self._sync.close)
        return self._sync.run(coroutine)

    def close(self) -> None:
        """Close every open provider and stop the private loop of the ``*_sync`` methods."""
        if self._session is not None:
            self.run_sync(self.aclose())
        runner = self._sync
        if runner is not None:
            self._sync = None
            runner.close()


def _in_event_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True


__all__ = ["DEFAULT_PROVIDERS", "PendingProvider", "PepperPy"]
