"""The plugin API: everything a plugin author or an embedding application needs.

``import pepperpy.plugins`` is as cheap as ``import pepperpy``: names are imported
from their modules on first use.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from pepperpy._lazy import lazy_exports

_EXPORTS: dict[str, str] = {
    "PepperpyPlugin": "pepperpy.core",
    "auto_context": "pepperpy.core",
    "LLMProvider": "pepperpy.llm",
    "EmbeddingProvider": "pepperpy.embeddings",
    "RAGProvider": "pepperpy.rag",
    "StorageProvider": "pepperpy.storage",
    "PluginManager": "pepperpy.plugin_manager",
    "get_plugin_manager": "pepperpy.plugin_manager",
    "model_package_file": "pepperpy.plugin_manager",
    "read_key": "pepperpy._config",
    "first_key": "pepperpy._config",
    "versioned_url": "pepperpy._config",
    "file_lock": "pepperpy._filelock",
    "use_wal": "pepperpy._sqlite",
    "atomic_write": "pepperpy._atomic",
    "persistent_plugin": "pepperpy._state",
    "RemoteProvider": "pepperpy.http",
    "bearer": "pepperpy.http",
    "parse_event_data": "pepperpy.http",
    "ResourceMixin": "pepperpy.core",
    "hot_reloadable_plugin": "pepperpy._reload",
    "start_hot_reload": "pepperpy._reload",
    "stop_hot_reload": "pepperpy._reload",
}

__all__ = [
    *_EXPORTS,
    "create_provider_instance",
    "register_plugin",
    "register_plugin_alias",
    "register_plugin_fallbacks",
    "register_plugin_path",
    "register_hook",
]


def create_provider_instance(category: str, name: str, **config: Any) -> Any:
    """An uninitialized provider of ``category/name`` from the process-wide PluginManager."""
    from pepperpy.plugin_manager import get_plugin_manager

    return get_plugin_manager().create_provider(category, name, **config)


def register_plugin(category: str, name: str, provider_class: type) -> None:
    """Make ``provider_class`` available as ``category/name`` without a plugin folder."""
    from pepperpy.plugin_manager import get_plugin_manager

    get_plugin_manager().register_plugin(category, name, provider_class)


def register_plugin_alias(
    category: str, alias: str, target: str, config: dict[str, Any] | None = None, *, env: dict[str, str] | None = None
) -> None:
    """Make ``category/alias`` another name for ``target`` (a plugin or another alias) with preset ``config``."""
    from pepperpy.plugin_manager import get_plugin_manager

    get_plugin_manager().register_plugin_alias(category, alias, target, config, env=env)


def register_plugin_fallbacks(category: str, members: list[Any]) -> None:
    """When ``members[0]`` is asked for and fails, the next member serves, and so on (LLMs)."""
    from pepperpy.plugin_manager import get_plugin_manager

    get_plugin_manager().register_plugin_fallbacks(category, members)


def register_hook(hook: Any) -> None:
    """Run ``hook`` around every LLM call of every facade in this process (see ``pepperpy.hooks``)."""
    from pepperpy.hooks import check_hook
    from pepperpy.plugin_manager import get_plugin_manager

    get_plugin_manager().hooks.append(check_hook(hook))


def register_plugin_path(path: str | os.PathLike[str]) -> None:
    """Search ``path`` (a folder of plugin folders, or one plugin folder) with the highest precedence."""
    from pepperpy.plugin_manager import get_plugin_manager

    get_plugin_manager().register_plugin_path(path)


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)


if TYPE_CHECKING:
    from pepperpy._atomic import atomic_write
    from pepperpy._config import first_key, read_key, versioned_url
    from pepperpy._filelock import file_lock
    from pepperpy._reload import hot_reloadable_plugin, start_hot_reload, stop_hot_reload
    from pepperpy._state import persistent_plugin
    from pepperpy.core import PepperpyPlugin, ResourceMixin, auto_context
    from pepperpy.http import RemoteProvider, bearer, parse_event_data
    from pepperpy.embeddings import EmbeddingProvider
    from pepperpy.llm import LLMProvider
    from pepperpy.plugin_manager import PluginManager, get_plugin_manager, model_package_file
    from pepperpy.rag import RAGProvider
    from pepperpy.storage import StorageProvider
