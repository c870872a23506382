"""PepperpyPlugin: the base of every provider — options, lifecycle, logger, dependencies.

A provider is an ordinary Python class. Options are validated (see ``_options``);
everything else on the class and on ``self`` is plain Python.

The lifecycle rules, kept here and only here:

- States: unopened -> opening -> open -> closing -> unopened (a closed provider may be
  opened again). ``initialized`` reads False until open and True until closed; the
  author's own assignments to it are ignored.
- Authors override ``initialize()`` and ``cleanup()``. Every override, at every level
  of the class tree, is wrapped once when the class is created (``__init_subclass__``),
  so that whatever the author writes the bodies run exactly once per open and once per
  close: calls while open (or while closed) return at once, concurrent calls wait for
  the one in progress, a ``super().initialize()`` chain runs each level once, and a
  nested ``self.initialize()`` from inside the opening task returns at once.
- One ``asyncio.Lock`` per event loop serializes opening and closing.
- Opening first opens the provider's ``dependencies`` (those not open yet are owned by
  this provider); closing closes the owned ones last, in reverse.
- What the provider acquired while open (shared resources: ``_resources``) is released
  after ``cleanup()``, before the owned dependencies close; also when opening fails.
- A class marked ``@persistent_plugin`` has its state restored at the very start of
  opening and saved after ``cleanup()`` at every close (the rules: ``_state``).

A plugin's own exception (anything but a PepperPy error, cancellation, KeyboardInterrupt and the
like) raised by its ``initialize``/``cleanup``, a category method, or a public async method of a
category of its own reaches the caller as a ``PluginError`` naming the plugin and the method, the
exception as its ``__cause__`` (``plugin_failure``): in-process as in a worker process, whose
provider is wrapped the same way.
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import enum
import functools
import importlib
import inspect
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

from pepperpy._log import logger
from pepperpy._resources import Holdings, ResourceTable
from pepperpy.errors import ConfigError, PepperPyError, PluginDependencyError, PluginError, PluginLoadError

T = TypeVar("T")

RESERVED_NAMES = frozenset({"name", "plugin_id", "alias", "initialized", "logger", "dependencies", "isolation"})


class State(enum.Enum):
    UNOPENED = "unopened"
    OPENING = "opening"
    OPEN = "open"
    CLOSING = "closing"


@dataclass
class CreationContext:
    """What the PluginManager knows about a provider it is creating; read by ``PepperpyPlugin.__init__``."""

    plugin_id: str
    home: Path | None = None
    env: dict[str, str] = field(default_factory=dict)
    shared: ResourceTable | None = None  # the manager's shared resources (``_resources``)
    alias: str | None = None
    saved_options: dict[str, str] = field(default_factory=dict)  # option -> the options.json key it was saved for


def saved_hint(context: CreationContext) -> dict[str, str]:
    """Option -> where it was saved and how to remove it, for the options taken from ``options.json``."""
    where = context.home / "options.json" if context.home is not None else "options.json"
    return {
        name: f"saved for {key} in {where}; `pepperpy options remove {key} {name}` removes it"
        for name, key in context.saved_options.items()
    }


# Set by the PluginManager around ``provider_class(**config)`` only, so that a custom
# ``__init__`` already sees its plugin id, logger and data paths.
creation_context: ContextVar[CreationContext | None] = ContextVar("pepperpy_creation_context", default=None)


class _Lifecycle:
    """The state of one provider's open/close, and who is opening or closing it."""

    __slots__ = ("state", "task", "entered", "locks", "owned", "release")

    def __init__(self) -> None:
        self.state = State.UNOPENED
        self.task: asyncio.Task[Any] | None = None
        self.entered: set[Callable[..., Any]] = set()
        self.locks: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, asyncio.Lock] = weakref.WeakKeyDictionary()
        self.owned: list[PepperpyPlugin] = []
        self.release: Holdings | None = None  # gives back the shared resources it acquired (``_resources``)

    def lock(self) -> asyncio.Lock:
        loop = asyncio.get_running_loop()
        lock = self.locks.get(loop)
        if lock is None:
            lock = self.locks[loop] = asyncio.Lock()
        return lock

    def _reentered(self, body: Callable[..., Any]) -> bool:
        """True when called from the task already opening/closing: run ``body`` only if it is a new level."""
        if self.entered and self.task is asyncio.current_task():
            if body in self.entered:
                return True
            self.entered.add(body)
            return False
        return False

    async def open(self, provider: PepperpyPlugin, body: Callable[[Any], Awaitable[None]]) -> None:
        if self.state is State.OPEN:
            return
        if self.state in (State.OPENING, State.CLOSING) and self.task is asyncio.current_task():
            if self.state is State.OPENING and not self._reentered(body):
                await body(provider)  # a super().initialize() chain reaching this level
            return
        async with self.lock():
            if self.state is State.OPEN:
                return
            self.state, self.task, self.entered = State.OPENING, asyncio.current_task(), {body}
            try:
                persistence = getattr(type(provider), "_pepperpy_persistent", None)  # @persistent_plugin (_state)
                if persistence is not None:
                    await persistence.restore(provider)
                await self._open_dependencies(provider)
                try:
                    await body(provider)
                except PepperPyError:
                    raise
                except Exception as exc:
                    raise plugin_failure(provider, "initialize", exc) from exc
            except BaseException:
                self.state = State.UNOPENED
                await self._close_owned()
                raise
            finally:
                self.task, self.entered = None, set()
            self.state = State.OPEN
            provider.logger.debug("opened {}", provider.plugin_id)

    async def close(self, provider: PepperpyPlugin, body: Callable[[Any], Awaitable[None]]) -> None:
        if self.state is State.UNOPENED:
            return
        if self.task is not None and self.task is asyncio.current_task():
            if self.state is State.CLOSING and not self._reentered(body):
                await body(provider)  # a super().cleanup() chain reaching this level
            return
        async with self.lock():
            if self.state is not State.OPEN:
                return
            self.state, self.task, self.entered = State.CLOSING, asyncio.current_task(), {body}
            try:
                await body(provider)
            except PepperPyError:
                raise
            except Exception as exc:
                raise plugin_failure(provider, "cleanup", exc) from exc
            finally:
                try:
                    persistence = getattr(type(provider), "_pepperpy_persistent", None)  # @persistent_plugin
                    if persistence is not None:
                        await persistence.save(provider)
                finally:
                    self.state, self.task, self.entered = State.UNOPENED, None, set()
                    await self._close_owned()
                    provider.logger.debug("closed {}", provider.plugin_id)

    async def _open_dependencies(self, provider: PepperpyPlugin) -> None:
        for dependency in provider.dependencies.values():
            await self.open_owned(dependency)

    async def open_owned(self, dependency: PepperpyPlugin) -> None:
        """Open ``dependency``; if this call opened it, it is owned: closed last, when this provider closes."""
        was_unopened = dependency._lifecycle.state is State.UNOPENED
        await dependency.initialize()
        if was_unopened:
            self.owned.append(dependency)

    async def _close_owned(self) -> None:
        release, self.release = self.release, None
        try:
            if release is not None:
                await release()
        finally:
            owned, self.owned = self.owned, []
            for dependency in reversed(owned):
                await dependency.cleanup()


async def open_with(provider: PepperpyPlugin, dependency: PepperpyPlugin) -> None:
    """Open ``dependency`` now if ``provider`` is open or opening (a dependency added late, such as a runtime one);
    if this opened it, ``provider`` owns it: it is closed last, when ``provider`` closes."""
    lifecycle = provider._lifecycle
    if lifecycle.state in (State.OPEN, State.OPENING):
        await lifecycle.open_owned(dependency)


def disown(provider: PepperpyPlugin, keep: Iterable[Any]) -> None:
    """``provider`` no longer closes the dependencies in ``keep`` when it closes (they serve on elsewhere, e.g. a
    hot reload's new provider)."""
    lifecycle = provider._lifecycle
    lifecycle.owned = [d for d in lifecycle.owned if all(d is not k for k in keep)]


def plugin_failure(provider: Any, method: str, exc: BaseException) -> PluginError:
    """The error a caller gets when the plugin's own code raised ``exc`` (not a PepperPy error) in ``method``:
    raise it ``from exc``. Its message is the same whether the plugin runs in-process or in a worker process."""
    from pepperpy._redact import redact

    return PluginError(redact(f"{provider.plugin_id}: {method}() raised {type(exc).__name__}: {exc}"))


def own_errors(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a public async method (or async generator) of a class without category methods: called on a
    provider of a category of its own, a plugin's own exception becomes ``plugin_failure``; PepperPy's errors
    and what is not an ``Exception`` pass unchanged. On a provider of a known category (the class was a base
    of, say, an LLM provider) it is a helper, and its exceptions pass unchanged."""
    name = method.__name__
    if inspect.isasyncgenfunction(method):

        @functools.wraps(method)
        async def stream(self: PepperpyPlugin, *args: Any, **kwargs: Any) -> Any:
            named = own_category(type(self))
            async with contextlib.aclosing(method(self, *args, **kwargs)) as items:
                while True:
                    try:
                        item = await anext(items)
                    except StopAsyncIteration:
                        return
                    except PepperPyError:
                        raise
                    except Exception as exc:
                        if not named:
                            raise
                        raise plugin_failure(self, name, exc) from exc
                    yield item

        return guard(stream)

    @functools.wraps(method)
    async def call(self: PepperpyPlugin, *args: Any, **kwargs: Any) -> Any:
        try:
            return await method(self, *args, **kwargs)
        except PepperPyError:
            raise
        except Exception as exc:
            if not own_category(type(self)):
                raise
            raise plugin_failure(self, name, exc) from exc

    return guard(call)


def own_category(cls: type) -> bool:
    """True for a provider class of a category of its own: none of its bases declares category methods
    (``LLMProvider``'s ``generate``, ...), so its public async methods are its interface."""
    return cls.wrapped_methods.keys() == PepperpyPlugin.wrapped_methods.keys()  # type: ignore[attr-defined]


def check_async(function: Callable[..., Any], what: str) -> None:
    if not (inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)):
        raise PluginLoadError(
            f"{what} must be declared `async def` (PepperPy awaits it); add `async` before `def`"
        )


def guard(wrapper: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``wrapper`` as a guard, so that subclasses do not wrap it again."""
    wrapper.__pepperpy_guard__ = True  # type: ignore[attr-defined]
    return wrapper


def open_guard(body: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """Wrap an ``initialize`` body so it runs once per open (see the module docstring)."""
    check_async(body, body.__qualname__)

    @functools.wraps(body)
    async def initialize(self: PepperpyPlugin) -> None:
        await self._lifecycle.open(self, body)

    return guard(initialize)


def close_guard(body: Callable[[Any], Awaitable[None]]) -> Callable[[Any], Awaitable[None]]:
    """Wrap a ``cleanup`` body so it runs once per close (see the module docstring)."""
    check_async(body, body.__qualname__)

    @functools.wraps(body)
    async def cleanup(self: PepperpyPlugin) -> None:
        await self._lifecycle.close(self, body)

    return guard(cleanup)


def requires_open(method: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap a category method (``embed``, ``search``, ...): a clear error when the provider is not open."""
    check_async(method, method.__qualname__)

    @functools.wraps(method)
    async def call(self: PepperpyPlugin, *args: Any, **kwargs: Any) -> Any:
        self.check_open(method.__name__)
        try:
            return await method(self, *args, **kwargs)
        except PepperPyError:
            raise
        except Exception as exc:
            raise plugin_failure(self, method.__name__, exc) from exc

    return guard(call)


class PepperpyPlugin(abc.ABC):
    """Base of every provider: options, ``initialize``/``cleanup``, ``self.logger``, dependencies.

    Options are the annotated class attributes that have a value (a default, or
    ``pydantic.Field(...)`` for a required one); they are validated when the provider
    is created and again when assigned. Everything else is ordinary Python.
    """

    category: ClassVar[str] = ""
    # Method name -> the wrapper applied to every override of it (see the module docstring).
    wrapped_methods: ClassVar[dict[str, Callable[[Any], Any]]] = {"initialize": open_guard, "cleanup": close_guard}

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        for method_name, wrap in cls.wrapped_methods.items():
            method = getattr(cls, method_name, None)  # defined here, or in a mixin that is not a plugin
            if inspect.isfunction(method) and not getattr(method, "__pepperpy_guard__", False):
                setattr(cls, method_name, wrap(method))
        if own_category(cls):  # so far: a subclass may still add a category base (own_errors checks again)
            _wrap_public_async_methods(cls)
        _refuse_reserved_options(cls)

    def __init__(self, **config: Any) -> None:
        from pepperpy._options import validate_config

        context = creation_context.get() or CreationContext(f"{self.category or 'plugin'}/{type(self).__name__.lower()}")
        object.__setattr__(self, "_context", context)
        object.__setattr__(self, "_lifecycle", _Lifecycle())
        object.__setattr__(self, "_dependencies", {})
        object.__setattr__(self, "_explicit_config", frozenset(config))  # explicit config > saved state (_state)
        for name, value in validate_config(context.plugin_id, type(self).option_specs(), config, context.env,
                                           saved_hint(context)).items():
            object.__setattr__(self, name, value)

    @classmethod
    def option_specs(cls) -> dict[str, Any]:
        """The class's options (name -> ``Option``), built on first use."""
        options = cls.__dict__.get("_pepperpy_options")
        if options is None:
            from pepperpy._options import build_options

            options = build_options(cls)
            type.__setattr__(cls, "_pepperpy_options", options)
        return options

    def __setattr__(self, name: str, value: Any) -> None:
        option = type(self).option_specs().get(name)
        if option is not None:
            from pepperpy._options import validate_value

            value = validate_value(self.plugin_id, option, value)
        object.__setattr__(self, name, value)

    def __repr__(self) -> str:
        shown = ", ".join(f"{name}={getattr(self, name, None)!r}" for name in type(self).option_specs())
        return f"{type(self).__name__}({shown})"

    # -- identity ------------------------------------------------------------------

    @property
    def plugin_id(self) -> str:
        """``category/provider_name`` of the plugin that created this provider."""
        return self._context.plugin_id

    @property
    def name(self) -> str:
        """The provider name, e.g. ``openai`` for ``llm/openai`` (a class may set its own)."""
        return self._context.plugin_id.rsplit("/", 1)[-1]

    @property
    def alias(self) -> str | None:
        """The alias this provider was created under, if any."""
        return self._context.alias

    @property
    def isolation(self) -> str:
        """``"process"`` when the provider runs in a worker process of its own (``pepperpy._isolation``: the
        parent's stand-in and the provider inside the worker both say so), else ``"inprocess"``."""
        return getattr(self, "_pepperpy_isolation", "inprocess")

    @property
    def logger(self) -> Any:
        """A loguru logger bound to the plugin id (on with ``logger.enable("pepperpy")``)."""
        return logger.bind(plugin=self.plugin_id)

    def data_path(self, *parts: str) -> Path:
        """A path under PepperPy's home (the PluginManager's home: ``PEPPERPY_HOME`` or ``~/.pepperpy``)."""
        home = self._context.home
        if home is None:
            from pepperpy._paths import pepperpy_home

            home = pepperpy_home()
        return home.joinpath(*parts)

    # -- lifecycle -----------------------------------------------------------------

    @property
    def initialized(self) -> bool:
        """True from the end of ``initialize()`` until ``cleanup()`` finished."""
        return self._lifecycle.state in (State.OPEN, State.CLOSING)

    @initialized.setter
    def initialized(self, value: bool) -> None:
        """Ignored: the base class keeps the state (authors may still write ``self.initialized = True``)."""

    @property
    def lifecycle_state(self) -> State:
        return self._lifecycle.state

    def check_open(self, method: str) -> None:
        """Raise a clear error unless open (or being opened by the calling task)."""
        lifecycle = self._lifecycle
        if lifecycle.state is State.OPEN or lifecycle.state is State.CLOSING:
            return
        if lifecycle.state is State.OPENING and lifecycle.task is asyncio.current_task():
            return
        raise ConfigError(
            f"{self.plugin_id}: {method}() needs the provider open, and it is not (never opened, or closed "
            "already); use `async with provider:`, `async with auto_context(provider):` or "
            "`await provider.initialize()` first (inside `async with PepperPy()...` every configured provider "
            "and its dependencies are open)"
        )

    @open_guard
    async def initialize(self) -> None:
        """Open connections, load models. Override it: it runs once per open."""

    @close_guard
    async def cleanup(self) -> None:
        """Release what ``initialize()`` acquired. Override it: it runs once per close."""

    async def __aenter__(self: T) -> T:
        await self.initialize()  # type: ignore[attr-defined]
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.cleanup()

    # -- dependencies and shared objects -------------------------------------------------

    @property
    def dependencies(self) -> Mapping[str, PepperpyPlugin]:
        """Key -> provider this one needs open while it is open (read-only); opened first, closed last."""
        return MappingProxyType(self._dependencies)

    def set_dependency(self, key: str, provider: PepperpyPlugin) -> None:
        """Declare that this provider uses ``provider`` (e.g. a RAG store its embeddings)."""
        self._dependencies[key] = provider

    def dependency(self, key: str) -> PepperpyPlugin | None:
        return self._dependencies.get(key)

    async def load_dependency(self, key: str) -> PepperpyPlugin:
        """The dependency ``key``; a ``runtime`` one is created now (and opened if this provider is open).

        Creating one is the job of whoever created this provider: the PluginManager (``_dependencies``) or a
        worker process hands the loader over (``_dependency_loader``); without one only set dependencies exist."""
        loader = getattr(self, "_dependency_loader", None)
        if loader is not None:
            return await loader(self, key)
        existing = self._dependencies.get(key)
        if existing is None:
            raise PluginDependencyError(
                f"{self.plugin_id}: no dependency {key!r} is declared (declared: none); add it to plugin.json "
                "'dependencies' or register_plugin_metadata, or call set_dependency()"
            )
        return existing

    def shared_resource(self, name: str, factory: Callable[[], T]) -> T:
        """An object shared by every provider of the same PluginManager and kept for the process (a lock, an SSL
        context): ``factory()`` creates it on first request. For one to clean up, see ``ResourceMixin``."""
        return _resource_table(self).keep(name, factory)

    async def import_modules(self, *modules: str) -> None:
        """Import heavy modules in a worker thread, one provider at a time.

        Providers initialize concurrently; two threads importing the same C-extension
        package (numpy, say) at once can see it half-initialized, so imports take turns.
        """
        lock = self.shared_resource("import_lock", threading.Lock)

        def import_all() -> None:
            with lock:
                for module in modules:
                    importlib.import_module(module)

        await asyncio.to_thread(import_all)


def _resource_table(provider: PepperpyPlugin) -> ResourceTable:
    context = provider._context
    if context.shared is None:  # a provider made without a manager shares with itself only
        context.shared = ResourceTable()
    return context.shared


class ResourceMixin:
    """Adds ``await self.get_resource(name, factory=..., cleanup=...)`` to a ``PepperpyPlugin``."""

    async def get_resource(
        self, name: str, factory: Callable[[], T | Awaitable[T]], cleanup: Callable[[T], Any] | None = None,
        *, per_loop: bool = False,
    ) -> T:
        """The object every provider of this PluginManager shares under ``name``, created on first request.

        ``factory()`` creates it (plain or ``async def``); ``cleanup(obj)`` (plain or
        ``async def``, optional) runs once, when the last provider holding it closes.
        This provider holds it until it closes. ``per_loop=True`` for asyncio objects:
        one per event loop, kept while that loop runs and cleaned up when it shuts down.
        The full rules are in ``pepperpy._resources``.
        """
        if not isinstance(self, PepperpyPlugin):
            raise TypeError(f"{type(self).__qualname__}: ResourceMixin needs PepperpyPlugin as a base class too")
        lifecycle = self._lifecycle
        if lifecycle.state is State.UNOPENED:
            raise ConfigError(
                f"{self.plugin_id}: get_resource({name!r}) needs the provider open or opening (it holds the resource "
                "until it closes); call it from initialize() or while open"
            )
        table = _resource_table(self)
        if lifecycle.release is None:
            lifecycle.release = Holdings(table)
        return await table.acquire(lifecycle.release, name, factory, cleanup, per_loop)  # type: ignore[no-any-return]


def _wrap_public_async_methods(cls: type) -> None:
    """A class without category methods: each public async method defined in ``cls`` is wrapped by ``own_errors``."""
    for name, member in list(vars(cls).items()):
        if (name.startswith("_") or hasattr(PepperpyPlugin, name) or not inspect.isfunction(member)
                or getattr(member, "__pepperpy_guard__", False)):
            continue
        if inspect.iscoroutinefunction(member) or inspect.isasyncgenfunction(member):
            setattr(cls, name, own_errors(member))


def _refuse_reserved_options(cls: type) -> None:
    from pepperpy._options import declared_options

    for name, (owner, _, _) in declared_options(cls).items():
        if owner is cls and (name in RESERVED_NAMES or _is_base_method(cls, name)):
            raise PluginLoadError(
                f"{cls.__qualname__}: an option may not be named {name!r}, a name PepperpyPlugin reserves "
                f"({', '.join(sorted(RESERVED_NAMES))} and its methods); rename the option, or drop the "
                "annotation to keep it a plain class attribute"
            )


def _is_base_method(cls: type, name: str) -> bool:
    return any(callable(getattr(base, name, None)) for base in cls.__mro__[1:] if base is not object)


class auto_context:  # noqa: N801 - named like a function, as the plugin-system document uses it
    """``async with auto_context(provider):`` initializes the provider, then cleans it up."""

    def __init__(self, provider: PepperpyPlugin):
        self.provider = provider

    async def __aenter__(self) -> Any:
        await self.provider.initialize()
        return self.provider

    async def __aexit__(self, *exc_info: object) -> None:
        await self.provider.cleanup()


__all__ = [
    "CreationContext", "PepperpyPlugin", "ResourceMixin", "State", "auto_context", "creation_context", "disown",
    "open_with", "own_category", "own_errors", "plugin_failure", "requires_open",
]
