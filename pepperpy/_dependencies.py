"""Plugin dependencies: which other providers a plugin uses, created with it, opened before it.

Declared, merged by key (the dependency's ``type``, i.e. its category; later sources win):

1. the class: ``declared_dependencies`` (``RAGProvider`` declares ``{"type": "embeddings"}``);
2. plugin.json ``dependencies``;
3. ``manager.register_plugin_metadata(category, name, {"dependencies": [...]})``.

Kinds (``dependency_type``):

- ``required`` (default): created when the dependent is created; missing is a ``PluginDependencyError``;
- ``optional``: the facade's provider of that category when it has one that fits (as for ``required``);
  otherwise not created with the dependent (a model it rarely uses is never loaded for nothing):
  ``await provider.load_dependency(key)`` creates it at first use, ``manager.load_dependencies`` at once;
  skipped (logged) when it cannot be created;
- ``runtime``: created at first use, ``await provider.load_dependency(key)``, not at initialize;
- ``enhances``: attached only when the facade has that category configured: the enhancing
  plugin receives that very instance as ``self.dependencies[key]`` (opened before it) to wrap its calls.

Which instance: inside a ``PepperPy`` facade (``Scope``), a dependency naming no provider, or
naming the provider the facade already has, shares the facade's instance; otherwise it gets
its own instance from ``manager.create_provider`` (manifest defaults, environment, saved keys).
With no provider named and none in the facade, the category's default is used (``local``).

The dependent reaches them as ``self.dependencies["embeddings"]`` (a read-only mapping) or
``self.dependency("embeddings")``; every lifecycle scope opens them first and closes the ones it
opened last (``core._Lifecycle``). Cycles are refused at creation with the path.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from pepperpy._log import logger
from pepperpy.errors import ConfigError, PepperPyError, PluginDependencyError

KINDS = ("required", "optional", "runtime", "enhances")


class DependencyCycleError(PluginDependencyError):
    """Plugins that depend on each other in a circle (never skipped, even for an optional dependency)."""


@dataclass
class Scope:
    """The facade whose configured providers are shared (held weakly: no reference cycle)."""

    owner: Callable[[], Any]  # a weakref to the PepperPy facade
    config: Mapping[str, Any] = field(default_factory=dict)  # the facade's settings (default provider names)

    @classmethod
    def of(cls, facade: Any, config: Mapping[str, Any]) -> Scope:
        return cls(weakref.ref(facade), config)

    def provider(self, category: str) -> Any:
        """The facade's configured provider of ``category`` (maybe not created yet), or None."""
        facade = self.owner()
        if facade is None:
            return None
        try:
            return facade.provider(category)
        except ConfigError:
            return None

    def default(self, category: str) -> str | None:
        facade = self.owner()
        if facade is None:
            return default_provider(category)
        try:
            return facade.default_provider(category)
        except ConfigError:
            return None


_scope: ContextVar[Scope | None] = ContextVar("pepperpy_dependency_scope", default=None)
_creating: ContextVar[tuple[str, ...]] = ContextVar("pepperpy_dependency_path", default=())


@contextmanager
def sharing(scope: Scope) -> Iterator[None]:
    """Providers created inside share ``scope``'s (the facade's) instances."""
    token = _scope.set(scope)
    try:
        yield
    finally:
        _scope.reset(token)


def default_provider(category: str) -> str | None:
    from pepperpy._defaults import default_provider_name

    return default_provider_name(category)


def parse(where: str, entries: Iterable[Any]) -> list[Any]:
    """Validated ``PluginDependency`` entries (dicts or models); a bad entry is a PluginDependencyError."""
    from pydantic import ValidationError

    from pepperpy._manifest import PluginDependency

    if isinstance(entries, (str, bytes, Mapping)):
        raise PluginDependencyError(f"{where}: 'dependencies' must be a list of {{'type': ..., 'provider': ...}} objects")
    parsed = []
    for entry in entries:
        if isinstance(entry, PluginDependency):
            parsed.append(entry)
            continue
        try:
            parsed.append(PluginDependency.model_validate(entry))
        except ValidationError as exc:
            problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'entry'}: {e['msg']}" for e in exc.errors())
            raise PluginDependencyError(
                f"{where}: invalid dependency {entry!r} ({problems}); expected "
                f"{{'type': 'embeddings', 'provider': 'openai', 'dependency_type': one of {', '.join(KINDS)}}}"
            ) from None
    return parsed


def declared(manager: Any, provider: Any) -> dict[str, Any]:
    """Key -> ``PluginDependency`` for ``provider``: class, then plugin.json, then registered metadata."""
    plugin_id = provider.plugin_id
    category = plugin_id.split("/", 1)[0]
    merged: dict[str, Any] = {}
    sources: list[tuple[str, Iterable[Any]]] = [(type(provider).__qualname__, getattr(type(provider), "declared_dependencies", ()))]
    info = manager.plugins.get(plugin_id)
    if info is not None:
        sources.append((str(info.path / "plugin.json"), info.manifest.dependencies))
    for name in dict.fromkeys([provider.alias, plugin_id.split("/", 1)[1]]):
        if name is not None:
            metadata = manager.plugin_metadata(category, name)
            sources.append((f"{category}/{name} metadata", metadata.get("dependencies", ())))
    for where, entries in sources:
        for spec in parse(where, entries):
            merged[spec.type] = spec
    return merged


def _names(provider: Any) -> set[str]:
    names = {getattr(provider, "name", None), getattr(provider, "alias", None), getattr(provider, "_requested", None)}
    plugin_id = getattr(provider, "plugin_id", None)
    if plugin_id:
        names.add(plugin_id.rsplit("/", 1)[-1])
    return {n for n in names if n}


def _is_provider(value: Any) -> bool:
    from pepperpy.core import PepperpyPlugin

    return isinstance(value, PepperpyPlugin)


def _path(*ids: str) -> str:
    return " -> ".join(ids)


def attach(manager: Any, provider: Any, include_optional: bool = False) -> Any:
    """Create (or share) ``provider``'s declared dependencies now; the manager calls it at creation.

    An ``optional`` one is only shared (the facade's) unless ``include_optional`` (``load_dependencies``)."""
    specs = declared(manager, provider)
    object.__setattr__(provider, "_dependency_specs", specs)
    object.__setattr__(provider, "_dependency_manager", weakref.ref(manager))
    object.__setattr__(provider, "_dependency_loader", load_runtime)  # core's load_dependency calls it
    scope = _scope.get() or getattr(provider, "_dependency_scope", None)
    if scope is not None:
        object.__setattr__(provider, "_dependency_scope", scope)
    path = _creating.get()
    if provider.plugin_id in path:
        raise DependencyCycleError(
            f"dependency cycle: {_path(*path, provider.plugin_id)}; make one of them 'optional' or 'runtime', "
            "or remove one dependency"
        )
    if not specs:
        return provider
    token = _creating.set((*path, provider.plugin_id))
    try:
        for key, spec in specs.items():
            if key in provider._dependencies or spec.dependency_type == "runtime":
                continue
            if spec.dependency_type == "optional" and not include_optional:
                dependency = _shared(spec, scope)  # else created at first use (load_dependency)
            else:
                dependency = _resolve(manager, spec, (*path, provider.plugin_id), scope)
            if dependency is not None:
                provider.set_dependency(key, dependency)
    finally:
        _creating.reset(token)
    return provider


def _shared(spec: Any, scope: Scope | None) -> Any:
    """The facade's provider that fits ``spec`` (None when it has none, or it is still to be installed: then
    ``share()`` binds it later)."""
    shared = scope.provider(spec.type) if scope is not None else None
    if shared is not None and (spec.provider is None or spec.provider in _names(shared)) and _is_provider(shared):
        return shared
    return None


def _resolve(manager: Any, spec: Any, path: tuple[str, ...], scope: Scope | None) -> Any:
    """The instance for ``spec``: the facade's, a new one, or None (optional/enhances not available)."""
    shared = scope.provider(spec.type) if scope is not None else None
    if shared is not None and (spec.provider is None or spec.provider in _names(shared)):
        return shared if _is_provider(shared) else None  # still to be installed: bound by share() later
    if spec.dependency_type == "enhances":
        return None
    name = spec.provider or (scope.default(spec.type) if scope is not None else default_provider(spec.type))
    if name is None:
        if spec.dependency_type == "optional":
            return None
        raise PluginDependencyError(
            f"{_path(*path, spec.type + '/?')}: a required {spec.type} dependency names no provider and "
            f"{spec.type} has no default; name one in 'dependencies' or set PEPPERPY_{spec.type.upper()}"
        )
    try:
        return manager.create_provider(spec.type, name, **spec.config)
    except DependencyCycleError:
        raise
    except PluginDependencyError:
        if spec.dependency_type == "optional":
            return None
        raise  # its message already has the full path
    except PepperPyError as exc:
        if spec.dependency_type == "optional":
            logger.debug("optional dependency {} skipped: {}", _path(*path, f"{spec.type}/{name}"), exc)
            return None
        origin = _default_origin(spec.type, scope) if spec.provider is None else ""
        raise PluginDependencyError(
            f"{_path(*path, f'{spec.type}/{name}')}: the required dependency cannot be created{origin}: {exc}"
        ) from exc


def _default_origin(category: str, scope: Scope | None) -> str:
    """`` (the default <category> provider comes from <setting>: <how to change it>)`` when a setting (config or
    ``PEPPERPY_<CATEGORY>``) named the default, else ``""``."""
    from pepperpy._defaults import default_provider_source

    source = default_provider_source(category, dict(scope.config) if scope is not None else None)
    return f" (the default {category} provider comes from {source[0]}: {source[1]})" if source else ""


def share(providers: dict[str, Any]) -> None:
    """Bind the facade's providers to each other's declared dependencies (the facade calls it after ``with_*``).

    A required dependency that names no provider, created for a provider because the facade
    had none of that category, becomes the facade's provider of that category.
    """
    for provider in list(providers.values()):
        specs: dict[str, Any] = getattr(provider, "_dependency_specs", None) or {}
        for key, spec in specs.items():
            if spec.dependency_type == "runtime":
                continue
            shared = providers.get(spec.type)
            if shared is provider:
                continue
            if shared is not None and _is_provider(shared) and (spec.provider is None or spec.provider in _names(shared)):
                provider.set_dependency(key, shared)
            elif shared is None and spec.provider is None and spec.dependency_type == "required":
                own = provider.dependency(key)
                if own is not None:
                    providers[spec.type] = own


async def load_runtime(provider: Any, key: str) -> Any:
    """``provider.load_dependency(key)``: the dependency, created (and opened) at first use when ``runtime``."""
    import asyncio

    existing = provider.dependency(key)
    if existing is not None:
        return existing
    parent = getattr(provider, "_dependency_parent", None)
    if parent is not None:  # a process-isolated plugin in its worker: the parent creates it (pepperpy/_isolation)
        await parent.load(key, provider.plugin_id)  # its stand-in is set on the provider before this returns
        dependency = provider.dependency(key)
        if dependency is None:
            raise PluginDependencyError(f"{provider.plugin_id} -> {key}: the dependency is not available")
        return await _opened_with(provider, dependency)
    specs: dict[str, Any] = getattr(provider, "_dependency_specs", None) or {}
    spec = specs.get(key)
    manager_ref = getattr(provider, "_dependency_manager", None)
    manager = manager_ref() if manager_ref is not None else None
    if spec is None or manager is None:
        known = ", ".join(specs) or "none"
        raise PluginDependencyError(
            f"{provider.plugin_id}: no dependency {key!r} is declared (declared: {known}); add it to plugin.json "
            "'dependencies' or register_plugin_metadata, or call set_dependency()"
        )
    scope = getattr(provider, "_dependency_scope", None)

    def create() -> Any:
        token = _creating.set((provider.plugin_id,))
        try:
            return _resolve(manager, spec, (provider.plugin_id,), scope)
        finally:
            _creating.reset(token)

    dependency = await asyncio.to_thread(create)  # creating may install the plugin's requirements
    if dependency is None:
        raise PluginDependencyError(f"{provider.plugin_id} -> {spec.type}: the {spec.dependency_type} dependency is not available")
    existing = provider.dependency(key)
    if existing is not None:  # another task won
        return existing
    provider.set_dependency(key, dependency)
    return await _opened_with(provider, dependency)


async def _opened_with(provider: Any, dependency: Any) -> Any:
    """``dependency``, opened now when ``provider`` is open (then owned by it: closed last, when it closes)."""
    from pepperpy.core import open_with

    await open_with(provider, dependency)
    return dependency


async def load(manager: Any, category: str, name: str) -> Mapping[str, Any]:
    """``manager.load_dependencies``: the declared dependencies of the instance it created, created if missing."""
    provider = manager.created_instance(category, name)
    attach(manager, provider, include_optional=True)
    return provider.dependencies


__all__ = ["DependencyCycleError", "KINDS", "Scope", "attach", "declared", "load", "load_runtime", "parse", "share", "sharing"]
