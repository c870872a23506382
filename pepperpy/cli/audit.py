"""``pepperpy plugins audit``: one table of every distribution in every plugin env under ``<home>/envs``.

Read from each env's install record (``pepperpy/_install_record.py``), or from its dist-info folders for an
env installed before records existed. Every complete env counts, also one no plugin folder here uses any more
(other projects share the home): "did I install litellm 1.82.8 anywhere?" is
``pepperpy plugins audit --package litellm==1.82.8``. With ``--package`` the environment PepperPy runs from
is searched too (kind "this environment", with its site folder): a plugin whose requirement is already
installed there uses it. Like grep, ``--package`` exits 1 when nothing matches.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click

from pepperpy.cli._common import fail, manager, print_table

THIS_ENVIRONMENT = "this environment"  # the kind of a match in the environment PepperPy runs from


@click.command(short_help="One table of what every plugin env holds (--json, --package NAME).")
@click.argument("plugin_id", metavar="[ID]", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
@click.option("--package", "package", metavar="NAME[SPEC]",
              help="Only this distribution, e.g. litellm or 'litellm==1.82.8'.")
def audit(plugin_id: str | None, as_json: bool, package: str | None) -> None:
    """List every distribution installed into a plugin env: plugin, env kind (in-process folder or a worker
    process's venv), name, version, when, the cooldown in force, required hashes and .pth files. ID (category/name,
    or a bare name as in `plugins info`) lists only that plugin's envs. With --package, also matches in the
    environment PepperPy runs from (not with ID); exit code 1 when nothing matches."""
    from pepperpy import _install_record
    from pepperpy._envs import envs_folder

    wanted = _wanted(package)
    records = [_install_record.read(env) for env in _install_record.installed_envs(envs_folder(manager().home))]
    if plugin_id is not None:
        plugin_id = _plugin(plugin_id, {record["plugin"] for record in records if record["plugin"]})
        records = [record for record in records if record["plugin"] == plugin_id]
    envs = []
    for record in records:
        record["distributions"] = [d for d in record["distributions"] if wanted is None or _matches(wanted, d)]
        if wanted is None or record["distributions"]:
            envs.append(record)
    if wanted is not None and plugin_id is None:
        envs += _this_environment(wanted)
    if as_json:
        click.echo(json.dumps({"envs": envs}, indent=2))
        if wanted is not None and not envs:
            sys.exit(1)
        return
    rows = [_row(record, d) for record in envs for d in record["distributions"]]
    if not rows:
        if plugin_id is not None:
            held = f" holding {package}" if package else ""
            click.echo(f"no env of {plugin_id}{held} is installed (under {envs_folder(manager().home)})")
            if package:
                sys.exit(1)
            return
        if package:
            click.echo(f"no plugin env holds {package} (under {envs_folder(manager().home)}), nor the environment "
                       f"PepperPy runs from ({sys.prefix})")
            sys.exit(1)
        click.echo(f"no plugin env is installed (under {envs_folder(manager().home)})")
        return
    headers = ["PLUGIN", "KIND", "PACKAGE", "VERSION", "INSTALLED", "COOLDOWN", "HASH", ".PTH", "ENV"]
    print_table(headers, rows, max_widths={"HASH": 24})


def _plugin(text: str, installed: set[str]) -> str:
    """The plugin id ``text`` names: an id with envs here (also of a plugin no longer found, other projects
    share the home), a bare name of one of them, else as `plugins info` finds it ("did you mean" when unknown)."""
    from pepperpy.cli._plugin_ids import resolved_id

    named = sorted(i for i in installed if i.split("/", 1)[1] == text)
    if text in installed or len(named) == 1:
        return text if text in installed else named[0]
    return resolved_id(manager(), text)[0]


def _row(record: dict[str, Any], distribution: dict[str, Any]) -> list[str]:
    pth = ", ".join(distribution["pth"]) or "-"
    if record["kind"] == THIS_ENVIRONMENT:  # not installed by PepperPy: no record, no cooldown; the site folder
        return ["-", THIS_ENVIRONMENT, distribution["name"], distribution["version"], "-", "-", "-", pth,
                record["env"]]
    return [record["plugin"] or "?", record["kind"], distribution["name"], distribution["version"], _when(record),
            _cooldown(record), _hash(distribution), pth, env_name(record)]


def env_name(record: dict[str, Any]) -> str:
    return Path(record["env"]).name


def _this_environment(wanted: Any) -> list[dict[str, Any]]:
    """The distributions matching ``wanted`` that this process can import outside plugin envs, one entry per site
    folder (plugin envs already on ``sys.path`` are reported from ``<home>/envs``)."""
    import importlib.metadata

    from packaging.utils import canonicalize_name

    from pepperpy._envs import plugin_of

    sites: dict[str, dict[str, dict[str, Any]]] = {}
    for found in importlib.metadata.distributions():
        name, version = found.metadata["Name"] or "", found.version or ""
        if not name or not _matches(wanted, {"name": name, "version": version}):
            continue
        site = Path(str(found.locate_file(""))).resolve()
        if plugin_of(site) is not None:
            continue
        files = [str(f) for f in found.files or []]
        entry = {"name": name, "version": version, "hashes": [],
                 "pth": sorted(f for f in files if "/" not in f and f.endswith(".pth"))}
        sites.setdefault(str(site), {}).setdefault(canonicalize_name(name), entry)  # first on sys.path wins
    return [
        {"plugin": None, "kind": THIS_ENVIRONMENT, "env": site, "recorded": False, "installed_at": None,
         "cooldown": None, "cooldown_source": None, "allow_newer": [], "distributions": list(entries.values())}
        for site, entries in sites.items()
    ]


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
