"""Turning keyword config into a validated provider, with keys from the environment or keys.json."""

from __future__ import annotations

import json
import os
import re
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepperpy._paths import pepperpy_home
from pepperpy._options import text_of
from pepperpy.core import CreationContext, creation_context
from pepperpy.errors import ConfigError, MissingKeyError, PepperPyError, PluginError

if TYPE_CHECKING:
    from pepperpy.plugin_manager import PluginManager

KEYS_FILE = "keys.json"
KEYS_LOCK_FILE = "keys.json.lock"
KEYS_LOCK_TIMEOUT_S = 30.0
_VARIABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def read_keys(home: Path) -> dict[str, str]:
    """The keys saved by ``pepperpy keys set`` (environment variable name -> key); ``{}`` when none can be read.

    Every key read is registered with ``pepperpy._redact``: a service echoing it shows ``***`` in errors and logs.
    """
    from pepperpy import _redact

    try:
        keys = json.loads((home / KEYS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError, RecursionError):
        return {}
    if not isinstance(keys, dict):
        return {}
    found = {name: key for name, key in keys.items() if isinstance(name, str) and isinstance(key, str)}
    for key in found.values():
        _redact.remember(key)
    return found


def keys_path(home: Path) -> Path:
    """``<home>/keys.json``, where ``pepperpy keys set`` saves keys."""
    return home / KEYS_FILE


def list_key_names(home: Path) -> list[str]:
    """The names (never the values) of the keys saved in ``<home>/keys.json``, sorted."""
    return sorted(read_keys(home))


def keys_file_problem(home: Path) -> str | None:
    """Why ``<home>/keys.json`` cannot be used (its keys are then ignored), or None when it is fine or absent."""
    path = home / KEYS_FILE
    try:
        keys = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return f"{path} cannot be read ({getattr(exc, 'strerror', None) or exc}); fix its permissions or delete it"
    except ValueError:
        return f"{path} is not valid JSON, so its keys are ignored; fix it or delete it and run `pepperpy keys set`"
    if not isinstance(keys, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in keys.items()):
        return f"{path} must map variable names to keys; fix it or delete it and run `pepperpy keys set`"
    return None


def key_sources(home: Path, variables: Iterable[str]) -> dict[str, list[str]]:
    """Where each variable is set: ``environment`` and/or ``keys.json`` (``[]``: nowhere). Never the value."""
    saved = read_keys(home)
    sources: dict[str, list[str]] = {}
    for variable in variables:
        found = [("environment", os.environ.get(variable)), (KEYS_FILE, saved.get(variable))]
        sources[variable] = [where for where, value in found if value]
    return sources


def key_variables(manager: PluginManager) -> dict[str, list[str]]:
    """Every environment variable a plugin, manifest alias or user/code alias maps an option to -> who names it."""
    users: dict[str, set[str]] = {}
    for info in manager.list_plugins():
        for variable in info.manifest.env.values():
            users.setdefault(variable, set()).add(info.id)
        for alias_name, alias in info.manifest.aliases.items():
            for variable in alias.env.values():
                users.setdefault(variable, set()).add(f"{info.manifest.category}/{alias_name}")
    try:
        aliases = {**manager.aliases.user_aliases(), **manager.aliases.registered()}
    except ConfigError:  # a corrupt aliases.json: reported by `pepperpy doctor` and when aliases are used
        aliases = manager.aliases.registered()
    for key, alias in aliases.items():
        for variable in alias.env.values():
            users.setdefault(variable, set()).add(key)
    return {variable: sorted(names) for variable, names in sorted(users.items())}


def save_key(home: Path, variable: str, value: str) -> Path:
    """Save a key in ``<home>/keys.json``, readable by the owner only (mode 0600).

    Processes saving at once each keep their key: the read-merge-write runs under a file
    lock (``keys.json.lock``). The new content goes to a uniquely named temporary file
    created 0600 with ``O_EXCL`` in the same folder, is flushed to disk, then renamed over
    keys.json; a failed or interrupted write (KeyboardInterrupt included) removes it, and
    one left by a killed process is removed by the next save.
    """
    from pepperpy import _redact

    if not isinstance(variable, str) or not _VARIABLE_NAME.fullmatch(variable):
        raise ConfigError(
            f"cannot save a key under {str(variable)[:80]!r}: name it as its environment variable, "
            "letters, digits and '_' (e.g. OPENAI_API_KEY)"
        )
    if not isinstance(value, str) or not value.strip():
        raise ConfigError(f"cannot save {variable}: the key is empty; pass the key itself")
    _redact.remember(value)
    path = home / KEYS_FILE
    fix = (f"make {home} writable, point PEPPERPY_HOME at a writable folder, or set the {variable} environment "
           "variable instead")
    return _change_keys(home, f"save {variable} in {path}", fix, lambda keys: {**keys, variable: value})


def remove_key(home: Path, variable: str) -> Path:
    """Remove the key ``variable`` from ``<home>/keys.json`` (under the same lock as ``save_key``).

    A key that is not saved there is a ConfigError naming the file; the environment is never changed.
    """
    path = home / KEYS_FILE

    def without(keys: dict[str, Any]) -> dict[str, Any]:
        if variable not in keys:
            saved = ", ".join(sorted(keys)) or "none"
            raise ConfigError(f"{path} has no key {variable} (saved there: {saved}); `pepperpy keys list` shows them")
        return {name: key for name, key in keys.items() if name != variable}

    if not path.exists():
        raise ConfigError(f"{path} has no key {variable}: no key is saved there; `pepperpy keys list` shows the keys")
    return _change_keys(home, f"remove {variable} from {path}", f"make {home} writable", without)


def _change_keys(home: Path, doing: str, fix: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> Path:
    """Rewrite keys.json as ``change`` makes it from the saved keys: read, change and write under the file lock.

    ``doing`` ("save X in <path>") and ``fix`` word the errors.
    """
    from pepperpy._filelock import file_lock

    path = home / KEYS_FILE
    try:
        home.mkdir(parents=True, exist_ok=True)
        with file_lock(home / KEYS_LOCK_FILE, KEYS_LOCK_TIMEOUT_S):
            _remove_leftover_temporaries(home)
            keys = change(_keys_to_update(path, doing))
            _write_private(path, json.dumps(keys, indent=2).encode("utf-8"))
    except TimeoutError:
        raise ConfigError(
            f"cannot {doing}: another process held {home / KEYS_LOCK_FILE} for "
            f"{KEYS_LOCK_TIMEOUT_S:.0f}s; try again, or delete that file if no pepperpy process is running"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot {doing}: {exc.strerror or exc}; {fix}") from None
    return path


def _keys_to_update(path: Path, doing: str) -> dict[str, Any]:
    """The saved keys to change; a keys.json that cannot be parsed is an error, never overwritten."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    except UnicodeDecodeError:
        text = None
    keys: Any = None
    if text is not None:
        try:
            keys = json.loads(text)
        except (ValueError, RecursionError):
            keys = None
    if not isinstance(keys, dict):
        raise ConfigError(
            f"cannot {doing}: the file is not a JSON object of keys, and rewriting it would lose the keys in it; "
            "fix it, or delete it and run `pepperpy keys set` again for each key"
        )
    return keys


def _remove_leftover_temporaries(home: Path) -> None:
    """Delete temporary files of saves that were killed (called under the lock, so none is in use)."""
    leftovers = [*home.glob(f".{KEYS_FILE}.*.tmp"), home / "keys.tmp"]  # keys.tmp: the name older versions used
    for leftover in leftovers:
        leftover.unlink(missing_ok=True)


def _write_private(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically, mode 0600 from the first byte on."""
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NOFOLLOW", 0)
    try:
        descriptor = os.open(temporary, flags, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # 0600 whatever the umask
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        try:
            temporary.unlink(missing_ok=True)
        except OSError:
            pass
        raise
    _sync_folder(path.parent)


def _sync_folder(folder: Path) -> None:
    """Flush the rename to disk (best effort: some filesystems cannot fsync a folder)."""
    try:
        descriptor = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


def fill_from_environment(
    config: dict[str, Any], env: dict[str, str], home: Path | None, defaults: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Options mapped to environment variables, taken from the config, else the variable, else keys.json.

    ``defaults`` (a manifest's ``config``) fill what is still absent after that: they rank below the
    environment, so ``OPENAI_BASE_URL`` beats the plugin's default URL but not an alias's preset one.
    """
    filled = dict(config)
    saved: dict[str, str] | None = None
    for option, variable in env.items():
        if filled.get(option) is not None and text_of(filled[option]) != "":
            continue
        filled.pop(option, None)  # a key given empty is no key (os.getenv("X", "") passed on): looked for as if not given
        if os.environ.get(variable):
            filled[option] = os.environ[variable]
            continue
        if home is not None:
            saved = read_keys(home) if saved is None else saved
            if saved.get(variable):
                filled[option] = saved[variable]
    for option, value in (defaults or {}).items():
        filled.setdefault(option, value)
    return filled


def build_provider(
    provider_class: type, context: CreationContext, config: dict[str, Any], defaults: dict[str, Any] | None = None
) -> Any:
    """Validate ``config`` (explicit over preset), else the environment, else ``defaults``; return the provider."""
    filled = fill_from_environment(config, context.env, context.home, defaults)
    token = creation_context.set(context)
    try:
        return provider_class(**filled)
    except PepperPyError:
        raise
    except Exception as exc:  # the author's __init__ failed
        raise PluginError(
            f"plugin {context.plugin_id}: creating {provider_class.__name__} failed with "
            f"{type(exc).__name__}: {exc}; check its __init__ (it must accept the options and call "
            "super().__init__(**config))"
        ) from exc
    finally:
        creation_context.reset(token)


def read_key(variable: str) -> str | None:
    """The key in environment variable ``variable``, else saved under that name by ``pepperpy keys set``; else None.

    For a plugin that accepts a second variable beside the one its ``plugin.json`` maps (Gemini's
    ``GOOGLE_API_KEY`` after ``GEMINI_API_KEY``). Keys.json is the one of the manager creating the provider.
    """
    if os.environ.get(variable):
        return os.environ[variable]
    context = creation_context.get()
    home = context.home if context is not None and context.home is not None else pepperpy_home()
    return read_keys(home).get(variable) or None


def first_key(*variables: str, option: str = "api_key", plugin: str | None = None) -> str:
    """The key of the first of ``variables`` that is set (each: the environment, then keys.json).

    For a plugin that takes its key from several variables (Gemini: ``GEMINI_API_KEY``, then ``GOOGLE_API_KEY``):
    call it in ``__init__`` when ``option`` was not given. None set: a ``MissingKeyError`` naming ``plugin``
    (default: the plugin being created), every variable tried, and ``pepperpy keys set`` for the first.
    """
    if not variables:
        raise ValueError("first_key needs at least one variable name")
    for variable in variables:
        key = read_key(variable)
        if key:
            return key
    if plugin is None:
        context = creation_context.get()
        plugin = context.plugin_id if context is not None else "this plugin"
    others = f" (or {', '.join(variables[1:])})" if len(variables) > 1 else ""
    raise MissingKeyError(
        f"{plugin} needs {option!r}: pass {option}=..., set the {variables[0]}{others} environment variable, "
        f"or run `pepperpy keys set {variables[0]}`"
    )


_VERSION_SEGMENT = re.compile(r"/v\d+(alpha|beta)?\d*$")


def versioned_url(base_url: str, version: str) -> str:
    """``base_url`` with the API version path ``version`` (e.g. ``"v1beta"``) appended, unless it already ends in a
    version segment (``/v1``, ``/v1beta``, ``/v2alpha1``), as the services' own SDKs read their base-URL variables
    (``ANTHROPIC_BASE_URL=https://host`` means ``https://host/v1``)."""
    url = base_url.rstrip("/")
    return url if _VERSION_SEGMENT.search(url) else f"{url}/{version.strip('/')}"


__all__ = [
    "build_provider", "fill_from_environment", "first_key", "key_sources", "key_variables", "keys_file_problem",
    "keys_path", "list_key_names", "read_key", "read_keys", "remove_key", "save_key", "versioned_url",
]
