"""Process isolation: a plugin with ``"isolation": "process"`` (plugin.json, or ``isolation="process"`` in its
config) runs in a worker process with a virtual environment of its own.

- ``env.py``: the worker's venv under ``<home>/envs/`` (uv), reaching the parent's PepperPy through a ``.pth``;
- ``pepperpy/_worker.py`` (outside this package, on top of the layers): the worker process's entry point and
  main loop (``python -m pepperpy._worker``); ``methods.py``: which of a provider's methods cross the pipe;
- ``protocol.py``: JSON lines over the worker's stdin/stdout;
- ``logs.py``: the plugin's log records, sent by the worker and logged again in the parent;
- ``client.py``: the parent's end of the pipe (start, requests, death, stop);
- ``providers.py``: the parent's stand-in, a real subclass of the category's base class (and the worker's
  stand-ins for the plugin's dependencies, which live in the parent);
- ``dependencies.py``: the parent serves the worker's calls to those dependencies; ``parent.py``: the
  worker's way back to it.

The PluginManager calls ``requested`` and ``create`` when it creates a provider from a plugin folder.
"""

from __future__ import annotations

import os
import secrets
import weakref
from typing import Any

from pepperpy._redact import is_secret_option
from pepperpy.errors import ConfigError, PepperPyError, PluginError

MODES = ("inprocess", "process")
KNOWN_CATEGORIES = ("llm", "embeddings", "rag", "storage")
HELLO_TIMEOUT_S = 300.0  # a custom category waits for its worker's method list at creation


def requested(info: Any, config: dict[str, Any]) -> bool:
    """True when the plugin runs in a worker process; takes the reserved ``isolation`` key out of ``config``.

    The config's ``isolation`` wins over plugin.json's.
    """
    value = config.pop("isolation", None)
    if value is None:
        value = getattr(info.manifest, "isolation", "inprocess")
    if value not in MODES:
        raise ConfigError(
            f"{info.id}: isolation={value!r} is not a valid setting; use isolation='process' (a worker process "
            "with its own virtual environment) or isolation='inprocess' (the default)"
        )
    return value == "process"


def in_process_only(plugin_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """``config`` without the reserved ``isolation`` key, for a provider class that has no plugin folder (one
    registered in code or an entry point's class); ConfigError when it asks for a worker process."""
    config = dict(config)
    value = config.pop("isolation", None)
    if value in (None, "inprocess"):
        return config
    if value not in MODES:
        raise ConfigError(
            f"{plugin_id}: isolation={value!r} is not a valid setting; use isolation='process' (a worker process "
            "with its own virtual environment) or isolation='inprocess' (the default)"
        )
    raise ConfigError(
        f"{plugin_id}: isolation='process' needs a plugin folder, because the worker process loads the plugin "
        f"from its folder, and {plugin_id} is a class registered in code (register_plugin) or exposed by an entry "
        "point; put the class in a plugin folder (plugin.json + its module: `pepperpy plugins new` writes one; a "
        "distribution ships folders with a `folders` entry point), or leave isolation out to run it in-process"
    )


def is_isolated(manager: Any, category: str, name: str, config: dict[str, Any]) -> bool:
    """True when ``category/name`` created with ``config`` would run in a worker process (imports nothing;
    for code that would otherwise import the class just to read its options, such as a fallback chain).

    Decided as creation decides it: ``requested`` on the config creation merges (``PluginManager.creation_config``).
    False for a class without a plugin folder, a name that is not found or an invalid setting (creating it raises).
    """
    try:
        info, _, _, merged = manager.creation_config(category, name, config)
        return requested(info, merged)
    except PepperPyError:
        return False


def create(manager: Any, info: Any, context: Any, config: dict[str, Any], defaults: dict[str, Any]) -> Any:
    """The parent's stand-in for ``info``'s provider, its worker env ready and (except for a store) its worker
    started in the background: the cold start overlaps the caller's own work until the provider opens."""
    from pepperpy._config import build_provider
    from pepperpy._isolation import client, env, providers
    from pepperpy._isolation.providers import public_options
    from pepperpy.core import CreationContext

    category = info.manifest.category
    needed = manager.requirement_set(info)
    venv = env.ensure_env(manager.home, info.id, needed,
                          lambda: manager.refuse_runtime_install(info, needed, isolated=True))
    wired_config = _wire_config(info.id, config)
    wired_defaults = _wire_config(info.id, defaults)
    load = {
        "plugin": {"id": info.id, "folder": str(info.path), "category": category,
                   "provider_name": info.manifest.provider_name},
        "config": wired_config,
        "env": dict(context.env),
        "defaults": wired_defaults,
        "home": str(manager.home),
        "alias": context.alias,
        "saved": dict(context.saved_options),
    }
    stderr_path = manager.home / "workers" / f"{info.id.replace('/', '-')}-{os.getpid()}-{secrets.token_hex(4)}.stderr"
    worker = client.WorkerClient(info.id, category, client.worker_command(env.venv_python(venv)),
                                 client.worker_environment(), load, stderr_path)
    worker.reloads = Reloads(manager, info)
    if category in providers.CLASSES:
        provider_class: type = providers.CLASSES[category]
    else:
        try:
            hello = worker.hello_sync(HELLO_TIMEOUT_S)
        except TimeoutError:
            error = PluginError(
                f"{info.id}: its worker process did not load the plugin within {HELLO_TIMEOUT_S:.0f}s; "
                f"see its stderr in {stderr_path}"
            )
            worker.stop_sync(error)
            raise error from None
        except PepperPyError as exc:  # the plugin failed to load (an unknown option, ...): no worker is left
            worker.stop_sync(exc)
            raise
        provider_class = providers.custom_class(category, info.manifest.provider_name, hello.get("methods") or {})
    stand_in = CreationContext(context.plugin_id, context.home, {}, context.shared, context.alias)
    provider = build_provider(provider_class, stand_in, {})
    # what the parent shows and hooks key on (the response cache): the options given and plugin.json's defaults,
    # fixed from here on (the class's own defaults are known only once the worker has loaded it)
    wired, public = {**wired_defaults, **wired_config}, public_options({**defaults, **config})
    provider.bind(worker, {name: wired[name] for name in public}, frozenset(wired).difference(public))
    weakref.finalize(provider, worker.terminate)  # a provider dropped unopened or open: its worker stops too
    if category != "rag":  # a store learns its embeddings' model id when it opens
        worker.start()
    return provider


class Reloads:
    """What a worker client knows of its plugin's hot reloads (``pepperpy/_reload.py``): the generation to load,
    where the watcher learns the folder, and the command of a worker for the requirements as they are now."""

    def __init__(self, manager: Any, info: Any):
        self._manager = weakref.ref(manager)
        self.info = info

    def generation(self) -> int:
        manager = self._manager()
        return manager.generation(self.info.id) if manager is not None else 0

    def files(self) -> dict[str, Any]:
        from pepperpy._folder_files import folder_files

        return folder_files(str(self.info.path))

    def loaded(self, files: dict[str, Any]) -> None:
        manager = self._manager()
        if manager is not None:
            manager.loaded_by_worker(self.info, files)

    def command(self) -> list[str]:
        """Blocking (it may install the new requirements into a new env): run it in a thread."""
        from pepperpy._isolation import client, env

        manager = self._manager()
        if manager is None:
            raise PluginError(f"{self.info.id}: its plugin manager is gone")
        info = manager.discover().get(self.info.id, self.info)
        needed = manager.requirement_set(info)
        venv = env.ensure_env(manager.home, info.id, needed,
                              lambda: manager.refuse_runtime_install(info, needed, isolated=True))
        return client.worker_command(env.venv_python(venv))


def _wire_config(plugin_id: str, config: dict[str, Any]) -> dict[str, Any]:
    """The options as JSON for the worker (a ``SecretStr`` as its value: the pipe is private); ConfigError
    naming an option that cannot cross."""
    from pepperpy import _redact
    from pepperpy._isolation import protocol

    wired = {}
    for name, value in config.items():
        if hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
            _redact.remember(value)  # an error from the worker that echoes it shows ***
        elif isinstance(value, str) and is_secret_option(name):
            _redact.remember(value)
        try:
            wired[name] = protocol.to_wire(value)
        except protocol.WireError as exc:
            raise ConfigError(
                f"{plugin_id}: option {name!r} cannot be sent to the plugin's worker process ({exc}); "
                "a process-isolated plugin takes JSON options: pass a str, number, bool, list or dict"
            ) from None
    return wired


__all__ = ["MODES", "create", "in_process_only", "is_isolated", "requested"]
