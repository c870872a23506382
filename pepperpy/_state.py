"""State persistence: ``@persistent_plugin`` marks a provider class; the base's lifecycle does the rest.

The rules, kept here and only here (``core._Lifecycle`` calls the class's mark, a ``Persistence``: its
``restore`` at the start of every open and its ``save`` after the author's ``cleanup()`` at every close;
so ``core`` never imports this module):

- What: the class's options (annotated attributes with a value), or only the names
  given to ``@persistent_plugin("a", "b")`` (options or bare-annotated attributes).
  Never a key: an option the plugin maps to an environment variable (manifest ``env``)
  or one ``_redact.is_secret_option`` calls a secret by its name or declared type (naming
  one in the decorator is an error at class creation); a ``SecretStr`` value in any other
  attribute is skipped.
- Where: ``<home>/state/<category>/<provider_name>.json`` (the plugin id as a path),
  one JSON object ``{"attribute": value}``; ``<that file>.lock`` is its lock.
- Restore, at open, before ``initialize()`` runs: explicit config > saved state >
  default. An option passed explicitly when the provider was created (in code, by an
  alias or manifest preset, by ``options.json`` or the environment) keeps that value,
  and is written at close only if the plugin changed it: config is not state, so a
  configured value never outlives its config (``pepperpy options remove``). Every other
  persisted attribute takes the saved one (validated like any assignment;
  an invalid saved value is reported and the default kept). A corrupt or unreadable
  file is reported (log + ``RuntimeWarning``), renamed to ``<file>.corrupt-<timestamp>``
  and the plugin starts fresh; so is a file in the way of the state folder (then saving
  at close fails, naming it).
- Save, at close (also when ``cleanup()`` raised): every value is turned into JSON
  first (pydantic's JSON form of the option's type, so ``Path``, ``set``, ``datetime``
  round-trip); a value without one, or one that would not be restored equal to itself
  (NaN, a set in an ``Any`` option), is a ``PluginError`` naming the plugin and the
  attribute, and the file is left as it was. Then, under the file lock, the file is
  read again and merged: an attribute this instance changed since it opened (or that
  the file lacks) takes this instance's value; every other attribute keeps what the
  file holds now. So processes changing different attributes keep both changes; for
  the same attribute the last one to close wins. The file is replaced atomically
  (temporary file + ``os.replace``): readers see the old or the new file, never half.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import warnings
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pepperpy._atomic import atomic_write
from pepperpy._log import logger
from pepperpy._redact import is_secret_option
from pepperpy.errors import ConfigError, PepperPyError, PluginError, PluginLoadError

LOCK_TIMEOUT_S = 30.0
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_ABSENT = object()


@dataclass(frozen=True)
class Persistence:
    """The mark ``@persistent_plugin`` leaves on a class: which attributes (None: every non-secret option)."""

    names: tuple[str, ...] | None = None

    async def restore(self, provider: Any) -> None:
        """Called by the lifecycle (``core``) at the start of every open: the mark hands it this module's rule."""
        await restore(provider)

    async def save(self, provider: Any) -> None:
        """Called by the lifecycle (``core``) after ``cleanup()`` at every close."""
        await save(provider)


def persistent_plugin(*args: Any) -> Any:
    """Persist a provider's state between opens, instances and processes.

    ``@persistent_plugin`` persists every option except keys; ``@persistent_plugin("a", "b")``
    only those attributes. See the module docstring for the rules.
    """
    if len(args) == 1 and isinstance(args[0], type):
        return _mark(args[0], None)
    for name in args:
        if not isinstance(name, str):
            raise PluginLoadError(
                f"@persistent_plugin takes attribute names (str), not {name!r}; "
                "write @persistent_plugin or @persistent_plugin('a', 'b')"
            )
    return lambda cls: _mark(cls, tuple(args) or None)


def _mark(cls: type, names: tuple[str, ...] | None) -> type:
    from pepperpy.core import PepperpyPlugin

    if not (isinstance(cls, type) and issubclass(cls, PepperpyPlugin)):
        raise PluginLoadError(f"@persistent_plugin marks provider classes (PepperpyPlugin subclasses), not {cls!r}")
    annotations = _annotations(cls)
    for name in names or ():
        if name not in annotations:
            raise PluginLoadError(
                f"{cls.__qualname__}: @persistent_plugin names {name!r}, which is not an annotated attribute of "
                f"the class (annotated: {', '.join(annotations) or 'none'}); annotate it (`{name}: int = 0`)"
            )
        if is_secret_option(name, annotation=annotations[name]):
            raise PluginLoadError(
                f"{cls.__qualname__}: @persistent_plugin names {name!r}, a secret; keys and SecretStr values "
                "are never written to disk, so drop it from the list"
            )
    type.__setattr__(cls, "_pepperpy_persistent", Persistence(names))
    return cls


def _annotations(cls: type) -> dict[str, Any]:
    """Every public, non-ClassVar annotation of ``cls`` and its bases."""
    found: dict[str, Any] = {}
    for klass in reversed(cls.__mro__):
        for name, annotation in klass.__dict__.get("__annotations__", {}).items():
            text = annotation if isinstance(annotation, str) else repr(annotation)
            if not name.startswith("_") and not re.match(r"^(typing\.|t\.)?ClassVar\b", text):
                found[name] = annotation
    return found


def persisted_names(provider: Any) -> list[str]:
    """The attributes of ``provider`` that are saved: never a key."""
    cls = type(provider)
    mark: Persistence = cls._pepperpy_persistent
    annotations = _annotations(cls)
    names = list(mark.names) if mark.names is not None else list(cls.option_specs())
    keys = set(provider._context.env)
    return [n for n in names if n not in keys and not is_secret_option(n, annotation=annotations.get(n))]


def state_file(provider: Any) -> Path:
    """``<home>/state/<category>/<provider_name>.json``."""
    parts = [_UNSAFE.sub("_", part) if part not in (".", "..") else "_" for part in provider.plugin_id.split("/")]
    parts[-1] += ".json"
    return provider.data_path("state", *parts)


# -- restore -------------------------------------------------------------------------


async def restore(provider: Any) -> None:
    """Set the saved values (except explicitly configured options) and remember what the file held."""
    names = persisted_names(provider)
    saved = await asyncio.to_thread(_read, state_file(provider), provider.plugin_id)
    explicit = getattr(provider, "_explicit_config", frozenset())
    baseline: dict[str, Any] = {}
    configured: set[str] = set()  # options set by config, not by the plugin: saved only once the plugin changes them
    for name in names:
        if name in saved and name not in explicit:
            baseline[name] = _canonical(saved[name])
            try:
                setattr(provider, name, saved[name])
            except ConfigError as exc:
                _report(f"{provider.plugin_id}: ignoring the saved value of {name!r} ({exc}); using the default")
            continue
        if name in explicit:
            configured.add(name)
        try:
            baseline[name] = _canonical(_to_json(provider, name, getattr(provider, name)))
        except (AttributeError, PepperPyError):
            baseline[name] = _ABSENT  # not set yet, or not serializable: whatever it is at close counts as a change
    object.__setattr__(provider, "_pepperpy_state_baseline", baseline)
    object.__setattr__(provider, "_pepperpy_state_configured", frozenset(configured))


def _read(path: Path, plugin_id: str, locked: bool = False) -> dict[str, Any]:
    """The saved object, or {} when there is none; a corrupt or unreadable file is set aside (under the lock)."""
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return {}
    except NotADirectoryError:  # no file to set aside: something else holds the place of a folder
        _report(f"{plugin_id}: cannot read the state file {path}: {_fix(path)}; starting with fresh state")
        return {}
    except (OSError, ValueError) as exc:
        problem = f"cannot read it ({exc.strerror or exc})" if isinstance(exc, OSError) else f"it is not valid JSON ({exc})"
    else:
        if isinstance(data, dict):
            return data
        problem = f"it holds a JSON {type(data).__name__}, not an object"
    if not locked:  # look again under the lock: another process may be replacing it right now
        try:
            with _lock(path):
                return _read(path, plugin_id, locked=True)
        except (OSError, TimeoutError) as exc:
            moved = f"could not move it aside ({exc})"
    else:
        stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")
        aside = path.with_name(f"{path.name}.corrupt-{stamp}")
        try:
            os.replace(path, aside)
            moved = f"moved it to {aside.name}"
        except OSError as exc:
            moved = f"could not move it aside ({exc.strerror or exc})"
    _report(f"{plugin_id}: the state file {path} is unusable: {problem}; {moved}; starting with fresh state")
    return {}


def _lock_file(path: Path) -> Path:
    return path.with_name(path.name + ".lock")


def _lock(path: Path) -> Any:
    from pepperpy._filelock import file_lock

    return file_lock(_lock_file(path), LOCK_TIMEOUT_S)


def _fix(path: Path) -> str:
    """What to do when the state file ``path`` (or its lock) cannot be read or written."""
    for ancestor in reversed(path.parents):
        if ancestor.exists() and not ancestor.is_dir():
            return f"{ancestor} is a file where a folder is needed: move it away or point PEPPERPY_HOME elsewhere"
    for file in (path, _lock_file(path)):
        if file.is_dir():
            return f"{file} is a folder where a file is needed: move it away"
    return f"make {path.parent} writable or point PEPPERPY_HOME at a writable folder"


def _report(message: str) -> None:
    logger.warning(message)
    warnings.warn(message, RuntimeWarning, stacklevel=2)


# -- save ----------------------------------------------------------------------------


async def save(provider: Any) -> None:
    """Merge this instance's state into the file, atomically, under the file lock."""
    values: dict[str, Any] = {}
    for name in persisted_names(provider):
        try:
            value = getattr(provider, name)
        except AttributeError:
            continue  # a bare-annotated attribute never set
        if is_secret_option(name, value):
            continue  # a secret in an untyped attribute: never written
        values[name] = _to_json(provider, name, value)
    baseline = getattr(provider, "_pepperpy_state_baseline", {})
    changed = {name for name, value in values.items() if _canonical(value) != baseline.get(name, _ABSENT)}
    for name in getattr(provider, "_pepperpy_state_configured", frozenset()) - changed:
        values.pop(name, None)  # config (explicit, an alias, options.json, ...) is not state: it would outlive it
    path = state_file(provider)
    try:
        await asyncio.to_thread(_merge, path, values, changed, provider.plugin_id)
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise PluginError(f"{provider.plugin_id}: cannot save its state to {path} ({reason}); {_fix(path)}") from exc
    object.__setattr__(provider, "_pepperpy_state_baseline", {n: _canonical(v) for n, v in values.items()})


def _to_json(provider: Any, name: str, value: Any) -> Any:
    """``value`` as JSON data (the option's JSON form), or a PluginError naming the attribute."""
    from pydantic_core import PydanticSerializationError

    option = type(provider).option_specs().get(name)
    try:
        data = option.adapter.dump_python(value, mode="json") if option is not None else value
        back = json.loads(json.dumps(data, allow_nan=False))
        if (option.adapter.validate_python(back) if option is not None else back) != value:
            raise ValueError(f"it would be restored as {_short(back)}")
    except (TypeError, ValueError, PydanticSerializationError) as exc:
        raise PluginError(
            f"{provider.plugin_id}: cannot save attribute {name!r} of {type(provider).__name__}: "
            f"{type(value).__name__} value {_short(value)} is not JSON-serializable ({exc}); persisted state "
            "must be JSON data (str, int, float, bool, None, lists and dicts of them), so store a plain "
            "form of it or leave it out with @persistent_plugin('name', ...)"
        ) from None
    return data


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _canonical(data: Any) -> str:
    return json.dumps(data, sort_keys=True)


def _merge(path: Path, values: dict[str, Any], changed: set[str], plugin_id: str) -> None:
    with _lock(path):
        current = _read(path, plugin_id, locked=True)
        merged = dict(current)
        merged.update({n: v for n, v in values.items() if n in changed or n not in current})
        if _canonical(merged) == _canonical(current):
            return
        _write(path, json.dumps(merged, indent=2, sort_keys=True) + "\n")


def _write(path: Path, text: str) -> None:
    atomic_write(path, text.encode("utf-8"))


__all__ = ["Persistence", "persistent_plugin", "restore", "save", "state_file"]
