"""Plugin environments: the folders under ``<home>/envs/``, and whether using a plugin installs first.

An env is named after its plugin and what it holds: ``<category>-<name>-<fingerprint>`` (the
plugin id with ``-`` for ``/``; the fingerprint is ``_install.RequirementSet.fingerprint()`` for
an in-process plugin's requirements, ``_isolation.env.fingerprint`` for a worker's venv). An
install is complete when the env's stamp file holds that fingerprint. ``PEPPERPY_INSTALL`` says
whether using a plugin may install at all (``install_mode``). Imports nothing heavy (the plugin
index reads it).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from pathlib import Path

from pepperpy._paths import STAMP_FILE
from pepperpy.errors import ConfigError

ENVS_DIR = "envs"
ENV_NAME = re.compile(r"[^.].*-[0-9a-f]{12}")  # an env dir: <plugin id with - for />-<fingerprint>
_PLUGIN_ENV_NAME = re.compile(r"[a-z][a-z0-9_]*-[a-z][a-z0-9_-]*-[0-9a-f]{12}")  # <category>-<name>-<fingerprint>


def envs_folder(home: Path) -> Path:
    """``<home>/envs``: every plugin's env."""
    return home / ENVS_DIR


def env_folder(home: Path, plugin_id: str, fingerprint: str) -> Path:
    """The env of ``plugin_id`` holding what ``fingerprint`` names."""
    return envs_folder(home) / f"{plugin_id.replace('/', '-')}-{fingerprint}"


def plugin_of(folder: Path) -> str | None:
    """The plugin id of the env ``folder`` (``<home>/envs/llm-local-0123456789ab`` -> ``llm/local``), or None for
    a folder that is not named as an env."""
    if folder.parent.name != ENVS_DIR or not _PLUGIN_ENV_NAME.fullmatch(folder.name):
        return None
    category, _, name = folder.name.rsplit("-", 1)[0].partition("-")
    return f"{category}/{name}"


def is_installed(folder: Path, fingerprint: str) -> bool:
    """True when ``folder`` holds a complete install of what ``fingerprint`` names (its stamp says so)."""
    try:
        return (folder / STAMP_FILE).read_text() == fingerprint
    except OSError:
        return False


INSTALL_VARIABLE = "PEPPERPY_INSTALL"
INSTALL_MODES = ("auto", "never")  # auto (the default): install on first use; never: only `pepperpy plugins install`


def install_mode() -> str:
    """``PEPPERPY_INSTALL``: ``auto`` (unset or empty too) or ``never``; ConfigError naming the variable otherwise."""
    raw = os.environ.get(INSTALL_VARIABLE, "")
    value = raw.strip().lower() or "auto"
    if value not in INSTALL_MODES:
        raise ConfigError(
            f"{INSTALL_VARIABLE}={raw!r} is not a valid setting; use {INSTALL_VARIABLE}=never (nothing is installed "
            "at run time: run `pepperpy plugins install ID` or `pepperpy plugins install --all` beforehand) or "
            f"{INSTALL_VARIABLE}=auto (the default: a plugin's requirements are installed on first use), or unset it"
        )
    return value


def needs_install(
    folder: Path, fingerprint: str, *, isolated: bool, has_requirements: bool, provided: Callable[[], bool]
) -> bool:
    """The one answer to "does using this plugin run an install first?" (cheap file checks, no subprocess).

    A worker's venv (``isolated``) is made on first use, also when the plugin has no requirements. An
    in-process plugin installs when it has requirements, its env ``folder`` is not complete, and the
    running environment does not ``provide()`` them (called last: it may read installed metadata).
    """
    if not isolated and not has_requirements:
        return False
    if is_installed(folder, fingerprint):
        return False
    return isolated or not provided()


__all__ = [
    "ENVS_DIR", "ENV_NAME", "INSTALL_MODES", "INSTALL_VARIABLE", "env_folder", "envs_folder", "install_mode",
    "is_installed", "needs_install", "plugin_of",
]
