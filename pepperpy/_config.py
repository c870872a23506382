"""Turning keyword config into a validated provider, with keys from env or keys.json."""

from __future__ import annotations

import difflib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from pepperpy.errors import ConfigError

KEYS_FILE = "keys.json"


def read_keys(home: Path) -> dict[str, str]:
    """The keys saved by ``pepperpy keys set`` (environment variable name -> key)."""
    try:
        return json.loads((home / KEYS_FILE).read_text())
    except (OSError, ValueError):
        return {}


def save_key(home: Path, variable: str, value: str) -> Path:
    """Save a key in ``<home>/keys.json``, readable by the owner only."""
    keys = {**read_keys(home), variable: value}
    home.mkdir(parents=True, exist_ok=True)
    path = home / KEYS_FILE
    descriptor = os.open(path.with_suffix(".tmp"), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        json.dump(keys, handle, indent=2)
    os.replace(path.with_suffix(".tmp"), path)
    return path


def _fill_from_environment(config: dict[str, Any], env: dict[str, str], home: Path) -> dict[str, Any]:
    filled = dict(config)
    saved: dict[str, str] | None = None
    for option, variable in env.items():
        if filled.get(option) is not None:
            continue
        if os.environ.get(variable):
            filled[option] = os.environ[variable]
            continue
        saved = read_keys(home) if saved is None else saved
        if saved.get(variable):
            filled[option] = saved[variable]
    return filled


def _describe(error: dict[str, Any], plugin_id: str, options: list[str], env: dict[str, str]) -> str:
    option = ".".join(str(part) for part in error["loc"]) or "config"
    if error["type"] == "extra_forbidden":
        close = difflib.get_close_matches(option, options, n=1)
        hint = f"did you mean {close[0]!r}?" if close else f"options are: {', '.join(options) or 'none'}"
        return f"unknown option {option!r} for {plugin_id}; {hint}"
    if error["type"] == "missing":
        variable = env.get(option)
        if variable:
            return (
                f"{plugin_id} needs {option!r}: pass {option}=..., set the {variable} environment variable, "
                f"or run `pepperpy keys set {variable}`"
            )
        return f"{plugin_id} needs the option {option!r}"
    return f"option {option!r} for {plugin_id}: {error['msg']}"


def build_provider(
    provider_class: type, plugin_id: str, config: dict[str, Any], env: dict[str, str], home: Path,
    shared: dict[str, Any],
) -> Any:
    """Validate ``config`` against the provider's options and return the uninitialized provider."""
    filled = _fill_from_environment(config, env, home)
    try:
        provider = provider_class(**filled)
    except ValidationError as exc:
        options = list(getattr(provider_class, "model_fields", {}))
        problems = "; ".join(_describe(error, plugin_id, options, env) for error in exc.errors())
        raise ConfigError(problems) from None
    provider._plugin_id = plugin_id
    provider._shared = shared
    return provider


__all__ = ["build_provider", "read_keys", "save_key"]
