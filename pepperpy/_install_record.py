"""What an install put into a plugin's env: its distributions, and the ``.pth`` files among their files.

Each env under ``<home>/envs/`` gets ``.pepperpy-installed.json`` (written atomically, in the staging folder, before
the env is renamed into place): the plugin, the env's kind (``inprocess``: a folder put on ``sys.path``;
``worker``: an isolated plugin's venv), when, the release-age cooldown it ran under, and each distribution with
its version, the hashes the install required (the plugin's lock's, else its requirements file's ``--hash``
options, as the install parsed them; empty when none), and the ``.pth`` files it installed. An env installed
before records existed is read from its ``*.dist-info`` folders instead (``"recorded": false``).

A ``.pth`` file in a site folder runs at every interpreter start (its ``import`` lines are executed). PepperPy
puts an in-process env on ``sys.path`` as a plain folder, so its ``.pth`` files never run; in a worker's venv
they do, so ``start_up_files`` lists those outside ``ALLOWED_PTH`` with the distribution that installed them.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from pepperpy._atomic import atomic_write
from pepperpy._envs import plugin_of
from pepperpy._paths import STAMP_FILE

RECORD_FILE = ".pepperpy-installed.json"
FORMAT = 1
# A .pth file that is expected, by name -> who installs it (a distribution's canonical name; None: the venv tool
# or PepperPy, outside any distribution). Any other, or one of these from someone else, is listed.
ALLOWED_PTH: dict[str, str | None] = {
    "_pepperpy_host.pth": None,  # PepperPy's own: names the worker's pepperpy-host folder (pepperpy/_isolation/env.py)
    "_virtualenv.pth": None,  # written by `uv venv` (and virtualenv) into every venv
    "distutils-precedence.pth": "setuptools",  # setuptools' switch between its distutils and the standard one
}
_EDITABLE = re.compile(r"__editable__\.(?P<name>[^-]+)-.*\.pth")  # a PEP 660 editable install's own finder


@dataclass(frozen=True)
class StartUpFile:
    """A ``.pth`` file of a site folder, and the distribution whose RECORD lists it (None: no distribution)."""

    path: Path
    distribution: str | None

    @property
    def allowed(self) -> bool:
        name = self.path.name
        owner = canonicalize_name(self.distribution) if self.distribution else None
        if name in ALLOWED_PTH:
            return ALLOWED_PTH[name] == owner
        editable = _EDITABLE.fullmatch(name)
        return editable is not None and owner == canonicalize_name(editable["name"])

    def describe(self) -> str:
        return f"{self.path.name} (from {self.distribution or 'no distribution'})"


def site_folder(env: Path) -> Path:
    """Where an env's distributions live: the env itself (in-process), or its venv's site-packages (worker)."""
    if not (env / "pyvenv.cfg").is_file():
        return env
    if os.name == "nt":
        return env / "Lib" / "site-packages"
    found = sorted((env / "lib").glob("python*/site-packages"))
    return found[0] if found else env


def write(env: Path, plugin_id: str, hashes: Mapping[tuple[str, str], Sequence[str]],
          policy: dict[str, Any]) -> dict[str, Any]:
    """Record what ``env`` (a staging folder, complete but not yet in place) holds; returns the record.

    ``hashes``: ``(canonical name, version) -> hashes`` the install required (``RequirementSet.required_hashes``).
    ``policy``: the install cooldown (``cooldown``: uv's duration or ``"off"``, ``cooldown_source``, ``allow_newer``:
    the packages exempt from it for this plugin; ``pepperpy/_cooldown.py``)."""
    distributions = scan(site_folder(env))
    for entry in distributions:
        entry["hashes"] = list(hashes.get((canonicalize_name(entry["name"]), entry["version"]), ()))
    record = {
        "format": FORMAT,
        "plugin": plugin_id,
        "kind": "worker" if (env / "pyvenv.cfg").is_file() else "inprocess",
        "installed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cooldown": policy.get("cooldown"),
        "cooldown_source": policy.get("cooldown_source"),
        "allow_newer": policy.get("allow_newer", []),
        "distributions": distributions,
    }
    atomic_write(env / RECORD_FILE, (json.dumps(record, indent=1) + "\n").encode())
    return record


def read(env: Path) -> dict[str, Any]:
    """The record of ``env``, or (an env installed before records, or an unreadable record) what its dist-info
    folders say, with ``"recorded": false`` and the install time taken from the stamp."""
    try:
        record = json.loads((env / RECORD_FILE).read_text(encoding="utf-8"))
        valid = isinstance(record, dict) and record.get("format") == FORMAT
        if valid and isinstance(record.get("distributions"), list):
            return {**record, "recorded": True, "env": str(env)}
    except (OSError, ValueError):
        pass
    try:
        stamped = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime((env / STAMP_FILE).stat().st_mtime))
    except OSError:
        stamped = None
    distributions = scan(site_folder(env))
    for entry in distributions:
        entry["hashes"] = []
    return {
        "format": FORMAT,
        "plugin": plugin_of(env),
        "kind": "worker" if (env / "pyvenv.cfg").is_file() else "inprocess",
        "installed_at": stamped,
        "cooldown": None,
        "cooldown_source": None,
        "allow_newer": [],
        "distributions": distributions,
        "recorded": False,
        "env": str(env),
    }


def installed_envs(envs: Path) -> list[Path]:
    """The complete envs (stamped) under ``<home>/envs``, by name."""
    try:
        entries = sorted(envs.iterdir())
    except OSError:
        return []
    return [e for e in entries if not e.name.startswith(".") and e.is_dir() and (e / STAMP_FILE).is_file()]


def scan(site: Path) -> list[dict[str, Any]]:
    """Each distribution in the folder ``site`` (its ``*.dist-info``): name, version and the ``.pth`` files it
    installed there, by name."""
    found = []
    for info in sorted(site.glob("*.dist-info")):
        name, version = _name_and_version(info)
        found.append({"name": name, "version": version, "pth": sorted(_pth_files(info))})
    return found


def start_up_files(site: Path) -> list[StartUpFile]:
    """Every ``.pth`` file in ``site``, with the distribution whose RECORD lists it."""
    owners = {pth: name for entry in scan(site) for name in [entry["name"]] for pth in entry["pth"]}
    try:
        names = sorted(p.name for p in site.iterdir() if p.name.endswith(".pth") and p.is_file())
    except OSError:
        return []
    return [StartUpFile(site / name, owners.get(name)) for name in names]


def _name_and_version(info: Path) -> tuple[str, str]:
    """From METADATA's headers, else from the folder's name (``name-version.dist-info``)."""
    name, _, version = info.name[: -len(".dist-info")].partition("-")
    try:
        with open(info / "METADATA", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if not line.strip():
                    break
                field, _, value = line.partition(":")
                if field == "Name":
                    name = value.strip()
                elif field == "Version":
                    version = value.strip()
    except OSError:
        pass
    return name, version


def _pth_files(info: Path) -> list[str]:
    """The top-level ``.pth`` files the distribution's RECORD lists (where a site folder reads them)."""
    try:
        lines = (info / "RECORD").read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    paths = (line.split(",", 1)[0].strip('"') for line in lines)
    return [path for path in paths if "/" not in path and path.endswith(".pth")]


__all__ = [
    "ALLOWED_PTH", "RECORD_FILE", "StartUpFile", "installed_envs", "read",
    "scan", "site_folder", "start_up_files", "write",
]
