"""Which methods of a provider cross the worker's pipe: a category's own, or a custom category's public async ones.

Shared by the worker process (``pepperpy/_worker.py``) and the parent's side of an isolated plugin's
dependencies (``dependencies.py``).
"""

from __future__ import annotations

# Methods a category's provider serves over the pipe (besides the public async methods of a custom category).
CATEGORY_METHODS: dict[str, frozenset[str]] = {
    "llm": frozenset({"generate", "generate_stream"}),
    "embeddings": frozenset({"embed"}),
    "rag": frozenset({"add", "search", "delete", "count", "ids"}),
    "storage": frozenset({"get", "set", "delete", "list"}),
}


def _framework_names(provider_class: type) -> set[str]:
    """The names PepperPy's own bases of ``provider_class`` define (``PepperpyPlugin``'s, ``RemoteProvider``'s
    ``headers``, ``ResourceMixin``'s ``get_resource``, ...): hooks and helpers, not the plugin's interface."""
    names: set[str] = set()
    for base in provider_class.__mro__[1:]:
        module = getattr(base, "__module__", "") or ""
        pepperpys = module == "pepperpy" or module.startswith("pepperpy.")
        if pepperpys and not module.startswith("pepperpy.loaded_plugins"):  # not a plugin loaded from a folder
            names.update(vars(base))
    return names


def public_methods(provider_class: type) -> dict[str, str]:
    """The public methods of a provider class, those of PepperPy's own bases left out: name -> ``call``
    (``async def``), ``stream`` (an async generator) or ``sync`` (a plain ``def``, static and class methods too)."""
    import inspect

    skip = _framework_names(provider_class)
    methods = {}
    for name in dir(provider_class):
        if name.startswith("_") or name in skip:
            continue
        member = inspect.getattr_static(provider_class, name, None)
        function = inspect.unwrap(getattr(member, "__func__", member)) if callable(member) else None
        if inspect.isasyncgenfunction(function):
            methods[name] = "stream"
        elif inspect.iscoroutinefunction(function):
            methods[name] = "call"
        elif inspect.isfunction(function):
            methods[name] = "sync"
    return methods


def public_async_methods(provider_class: type) -> dict[str, str]:
    """The public ``async def`` methods of a provider class (name -> ``call``, or ``stream`` for an async
    generator): what crosses the pipe."""
    return {name: kind for name, kind in public_methods(provider_class).items() if kind != "sync"}


__all__ = ["CATEGORY_METHODS", "public_async_methods", "public_methods"]
