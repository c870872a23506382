"""``pepperpy plugins audit``: one table of every distribution in every plugin env under ``<home>/envs``.

Read from each env's install record (``pepperpy/_install_record.py``), or from its dist-info folders for an
env installed before records existed. Every complete env counts, also one no plugin folder here uses any more
(other projects share the home): "did I install litellm 1.82.8 anywhere?" is
``pepperpy plugins audit --package litellm==1.82.8``.
"""

from __future__ import annotations

import json
from typing import Any

import click

from pepperpy.cli._common import fail, manager, print_table


@click.command(short_help="One table of what every plugin env holds (--json, --package NAME).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.option("--package", "package", metavar="NAME[SPEC]",
              help="Only this distribution, e.g. litellm or 'litellm==1.82.8'.")
def audit(as_json: bool, package: str | None) -> None:
    """List every distribution installed into a plugin env: plugin, env kind (in-process folder or a worker
    process's venv), name, version, when, the cooldown in force, required hashes and .pth files."""
    from pepperpy import _install_record
    from pepperpy._envs import envs_folder

    wanted = _wanted(package)
    envs = []
    for env in _install_record.installed_envs(envs_folder(manager().home)):
        record = _install_record.read(env)
        record["distributions"] = [d for d in record["distributions"] if wanted is None or _matches(wanted, d)]
        if wanted is None or record["distributions"]:
            envs.append(record)
    if as_json:
        click.echo(json.dumps({"envs": envs}, indent=2))
        return
    rows = [
        [record["plugin"] or "?", record["kind"], d["name"], d["version"], _when(record), _cooldown(record),
         _hash(d), ", ".join(d["pth"]) or "-", env_name(record)]
        for record in envs for d in record["distributions"]
    ]
    if not rows:
        what = f"no plugin env holds {package}" if package else "no plugin env is installed"
        click.echo(f"{what} (under {envs_folder(manager().home)})")
        return
    headers = ["PLUGIN", "KIND", "PACKAGE", "VERSION", "INSTALLED", "COOLDOWN", "HASH", ".PTH", "ENV"]
    print_table(headers, rows, max_widths={"HASH": 24})


def env_name(record: dict[str, Any]) -> str:
    from pathlib import Path

    return Path(record["env"]).name


def _wanted(package: str | None) -> Any:
    """The requirement ``--package`` names (a name, or a name with a version specifier), or None."""
    if package is None:
        return None
    from packaging.requirements import InvalidRequirement, Requirement

    try:
        return Requirement(package)
    except InvalidRequirement:
        fail(f"--package {package!r} is not a package name with an optional version, such as litellm==1.82.8")


def _matches(wanted: Any, distribution: dict[str, Any]) -> bool:
    from packaging.utils import canonicalize_name

    if canonicalize_name(distribution["name"]) != canonicalize_name(wanted.name):
        return False
    return not wanted.specifier or wanted.specifier.contains(distribution["version"], prereleases=True)


def _when(record: dict[str, Any]) -> str:
    when = (record["installed_at"] or "?").replace("T", " ").removesuffix("Z")
    return when if record["recorded"] else f"{when} (no record)"


def _cooldown(record: dict[str, Any]) -> str:
    if not record["recorded"]:
        return "unknown"
    allowed = record.get("allow_newer") or []
    return (record["cooldown"] or "none") + (f" (any age: {', '.join(allowed)})" if allowed else "")


def _hash(distribution: dict[str, Any]) -> str:
    hashes = distribution["hashes"]
    return hashes[0] + (f" (+{len(hashes) - 1})" if len(hashes) > 1 else "") if hashes else "-"


__all__ = ["audit"]
