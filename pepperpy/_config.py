"""Turning keyword config into a validated provider, with keys from the environment or keys.json."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from pepperpy.core import CreationContext, creation_context
from pepperpy.errors import ConfigError, PepperPyError, PluginError

KEYS_FILE = "keys.json"


def read_keys(home: Path) -> dict[str, str]:
    """The keys saved by ``pepperpy keys set`` (environment variable name -> key)."""
    try:
        keys = json.loads((home / KEYS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return keys if isinstance(keys, dict) else {}


def save_key(home: Path, variable: str, value: str) -> Path:
    """Save a key in ``<home>/keys.json``, readable by the owner only."""
    keys = {**read_keys(home), variable: value}
    path = home / KEYS_FILE
    temporary = path.with_suffix(".tmp")
    try:
        home.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w") as handle:
            json.dump(keys, handle, indent=2)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except OSError as exc:
        if temporary.parent.is_dir():
            temporary.unlink(missing_ok=True)
        raise ConfigError(
            f"cannot save {variable} in {path}: {exc.strerror or exc}; make {home} writable, "
            f"point PEPPERPY_HOME at a writable folder, or set the {variable} environment variable instead"
        ) from None
    return path


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
        if filled.get(option) is not None:
            continue
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


__all__ = ["build_provider", "fill_from_environment", "read_keys", "save_key"]
