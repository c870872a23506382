"""Plugin ids as the command reads them: ``category/name``, a bare name, an alias; "did you mean" when unknown.

Shared by ``plugins``, ``lock``, ``cooldown`` and ``audit``.
"""

from __future__ import annotations

import difflib
from typing import Any, NoReturn

from pepperpy.cli._common import fail


def category_and_name(mgr: Any, plugin_id: str) -> tuple[str, str]:
    """``category/name`` -> (category, name); a bare name stands for the one category that has it."""
    category, _, name = plugin_id.partition("/")
    if name:
        return category, name
    ids = _ids_named(mgr, plugin_id)
    if len(ids) == 1:
        category, _, name = ids[0].partition("/")
        return category, name
    if ids:
        fail(f"{plugin_id!r} is a plugin of several categories: {' or '.join(ids)}; give the id (category/name)")
    names = {known.split("/", 1)[1] for known in known_ids(mgr)}
    close = difflib.get_close_matches(plugin_id, sorted(names), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(i for c in close for i in _ids_named(mgr, c))}? " if close else ""
    fail(f"no plugin named {plugin_id!r} in any category; {hint}`pepperpy plugins list` shows the plugins found")


def known_ids(mgr: Any) -> set[str]:
    """Every ``category/name`` that names something: plugin folders, entry points and every kind of alias."""
    known = {p.id for p in mgr.list_plugins()} | set(mgr.entry_point_plugins)
    known |= {f"{p.manifest.category}/{a}" for p in mgr.list_plugins() for a in p.manifest.aliases}
    known |= {*mgr.aliases.user_aliases(), *mgr.aliases.registered()}
    return known


def _ids_named(mgr: Any, name: str) -> list[str]:
    """The ids ``category/name`` of every category that has ``name`` (a plugin or an alias)."""
    return sorted(known for known in known_ids(mgr) if known.split("/", 1)[1] == name)


def fail_unknown(mgr: Any, plugin_id: str) -> NoReturn:
    """Stop the command: no plugin ``plugin_id``, with the close ids (same category first) as "did you mean"."""
    category, _, name = plugin_id.partition("/")
    known = known_ids(mgr)
    same_category = sorted(k.split("/", 1)[1] for k in known if k.startswith(f"{category}/"))
    close = [f"{category}/{c}" for c in difflib.get_close_matches(name, same_category, n=3, cutoff=0.6)]
    close = close or difflib.get_close_matches(plugin_id, sorted(known), n=3, cutoff=0.6)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    fail(f"no plugin {plugin_id}; {hint}`pepperpy plugins list` shows the plugins found")


def resolved_id(mgr: Any, text: str) -> tuple[str, Any]:
    """The plugin id ``text`` names, found as ``plugins info`` finds it (a bare name: the one category that has it;
    an alias: its plugin's id), and its plugin folder (None for an entry point or an id that does not resolve to a
    folder here). An unknown id stops the command with "did you mean"."""
    from pepperpy.errors import PepperPyError

    mgr.discover()
    category, name = category_and_name(mgr, text)
    plugin_id = f"{category}/{name}"
    if plugin_id not in known_ids(mgr):
        fail_unknown(mgr, plugin_id)
    if plugin_id in mgr.entry_point_plugins:
        return plugin_id, None
    try:
        found = mgr.resolve(category, name)[0]
    except PepperPyError:
        return plugin_id, None
    return str(found.id), found


__all__ = ["category_and_name", "fail_unknown", "known_ids", "resolved_id"]
