"""``pepperpy plugins``: list, info, install, check and scaffold plugins.

Listing reads the plugin index (``pepperpy/_index.py``): when nothing changed it imports
neither pydantic nor the PluginManager. ``info``, ``install`` and ``check`` use the
PluginManager itself (the checks are in ``_check.py``); ``new`` writes a folder from ``_scaffold.py``'s templates.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from pepperpy.cli._common import LazyGroup, fail, manager, print_table
from pepperpy.cli._plugin_ids import category_and_name, fail_unknown
from pepperpy.cli.settings import is_key

START_UP = "start-up files (.pth) outside the allow-list"  # a label of `plugins info` for a worker's venv
DESCRIPTION_WIDTH = 40  # characters of a description shown by `plugins list` (--json has it whole)

SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "audit": (
        "pepperpy.cli.audit:audit", "One table of what every plugin env holds (--json, --package NAME)."
    ),
    "clean": (
        "pepperpy.cli.clean:clean", "Remove plugin envs unused for N days and install leftovers."
    ),
    "lock": ("pepperpy.cli.lock:lock", "Write a plugin's requirements.lock (hash-checked installs)."),
}


@click.group(cls=LazyGroup, lazy=SUBCOMMANDS, invoke_without_command=True)
@click.pass_context
def plugins(ctx: click.Context) -> None:
    """List, inspect, install, check and scaffold plugins (alone: the same as `plugins list`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(list_plugins)


# -- list ---------------------------------------------------------------------------------------


@plugins.command("list", short_help="List plugins, shadowed and broken folders (the default).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def list_plugins(as_json: bool = False) -> None:
    """List the plugins found: id, version, requirements, isolation (when any runs in a worker process),
    description (cut to fit; --json has it whole), aliases, source; then shadowed and broken ones."""
    from pepperpy import _index
    from pepperpy._paths import pepperpy_home

    loaded = sys.modules.get("pepperpy.plugin_manager")  # in-process callers may have set the manager's home
    home = loaded.PluginManager.instance().home if loaded is not None else pepperpy_home()
    listing = _index.load(home)
    user_aliases = _user_aliases(home)
    if as_json:
        click.echo(json.dumps(_listing_json(listing, home, user_aliases), indent=2))
        return
    isolated = any(plugin.isolation == "process" for plugin in listing.plugins.values())
    rows = []
    for plugin in listing.plugins.values():
        aliases = [*plugin.aliases, *(f"{a} (yours)" for a in user_aliases.get(plugin.id, []))]
        source = f"{plugin.path} (from {plugin.source})" if plugin.source else plugin.path
        isolation = ["process" if plugin.isolation == "process" else ""] if isolated else []
        description = " ".join(plugin.description.split())  # one line, cut to DESCRIPTION_WIDTH by print_table
        rows.append([plugin.id, plugin.version, plugin.requirements_status(home), *isolation, description,
                     ", ".join(aliases), source])
    for entry in listing.entry_points:
        aliases = ", ".join(f"{a} (yours)" for a in user_aliases.get(entry["id"], []))
        rows.append([entry["id"], entry["version"], "installed", *([""] if isolated else []), "", aliases,
                     f"{entry['value']} (from {entry['source']})"])
    headers = ["ID", "VERSION", "REQUIREMENTS", *(["ISOLATION"] if isolated else []), "DESCRIPTION", "ALIASES",
               "SOURCE"]
    print_table(headers, sorted(rows), max_widths={"DESCRIPTION": DESCRIPTION_WIDTH})
    problems = _problem_lines(listing)
    for line in problems:
        click.secho(line, fg="yellow" if line.startswith("  shadowed") else "red")


def _problem_lines(listing: Any) -> list[str]:
    lines = [f"  shadowed {pid} at {hidden} by {by}" for pid, hidden, by in listing.shadowed]
    lines += [
        f"  shadowed {e['id']} ({e['value']} from {e['source']}) by {e['shadowed_by']}"
        for e in listing.shadowed_entry_points
    ]
    lines += [f"  broken {folder}: {problem}" for folder, problem in listing.broken]
    lines += [
        f"  invalid requirements of {pid}: {' '.join(plugin.requirements_problem.split())}"
        for pid, plugin in sorted(listing.plugins.items()) if plugin.requirements_problem is not None
    ]
    lines += [
        f"  broken entry point {e['name']} = {e['value']!r} (from {e['source']}): {e['problem']}"
        for e in listing.broken_entry_points
    ]
    return lines


def _user_aliases(home: Path) -> dict[str, list[str]]:
    """Plugin id -> the aliases in ``<home>/aliases.json`` that name it directly (an unreadable file: none)."""
    try:
        data = json.loads((home / "aliases.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    found: dict[str, list[str]] = {}
    for category, aliases in (data.items() if isinstance(data, dict) else ()):
        for name, entry in (aliases.items() if isinstance(aliases, dict) else ()):
            if isinstance(entry, dict) and isinstance(entry.get("target"), str):
                found.setdefault(f"{category}/{entry['target']}", []).append(name)
    return found


def _listing_json(listing: Any, home: Path, user_aliases: dict[str, list[str]]) -> dict[str, Any]:
    plugins_ = [
        {
            "id": p.id,
            "version": p.version,
            "description": p.description,
            "author": p.author,
            "isolation": p.isolation,
            "path": p.path,
            "distribution": p.source,
            "entry_point": None,
            "requirements": list(p.requirements),
            "requirements_status": p.requirements_status(home),
            "env_dir": str(p.env_dir(home)) if p.requirements or p.isolation == "process" else None,
            "aliases": list(p.aliases),
            "user_aliases": user_aliases.get(p.id, []),
        }
        for p in listing.plugins.values()
    ]
    plugins_ += [
        {
            "id": e["id"], "version": e["version"], "description": "", "author": "", "isolation": "inprocess",
            "path": None, "distribution": e["source"],
            "entry_point": e["value"], "requirements": [], "requirements_status": "installed", "env_dir": None,
            "aliases": [], "user_aliases": user_aliases.get(e["id"], []),
        }
        for e in listing.entry_points
    ]
    return {
        "plugins": sorted(plugins_, key=lambda p: p["id"]),
        "shadowed": [{"id": i, "path": hidden, "shadowed_by": by} for i, hidden, by in listing.shadowed],
        "broken": [{"path": folder, "problem": problem} for folder, problem in listing.broken],
        "shadowed_entry_points": listing.shadowed_entry_points,
        "broken_entry_points": listing.broken_entry_points,
    }


# -- info ---------------------------------------------------------------------------------------


@plugins.command("info", short_help="Show one plugin: manifest, options, requirements, aliases.")
@click.argument("plugin_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON, for scripts.")
def info(plugin_id: str, as_json: bool) -> None:
    """Show a plugin's manifest, options, requirements, env dir, aliases and source.

    ID is category/name, or a bare name when only one category has it (mock is llm/mock).
    """
    mgr = manager()
    details = _details(mgr, plugin_id)
    if as_json:
        click.echo(json.dumps(details, indent=2, default=str))
        return
    for label, value in details.items():
        if label in ("options", "requirements", "installed", START_UP, "aliases", "dependencies"):
            click.echo(f"{label}:" + ("" if value else " none"))
            for line in _detail_lines(label, value):
                click.echo(f"  {line}")
        elif value not in (None, ""):
            click.echo(f"{label}: {value}")


def _details(mgr: Any, plugin_id: str) -> dict[str, Any]:
    """What ``plugins info`` shows, as a dict (its keys are the labels)."""
    from pepperpy.errors import PluginNotFoundError

    category, name = category_and_name(mgr, plugin_id)
    mgr.discover()
    entry_point = mgr.entry_point_plugins.get(f"{category}/{name}")
    if entry_point is not None:
        return _entry_point_details(mgr, entry_point)
    try:
        found, preset, env, alias = mgr.resolve(category, name)
    except PluginNotFoundError:
        fail_unknown(mgr, f"{category}/{name}")
    manifest = found.manifest
    details: dict[str, Any] = {
        "id": found.id,
        "alias of": found.id if alias else None,
        "version": manifest.version,
        "description": manifest.description,
        "author": manifest.author,
        "source": str(found.path) + (f" (from {mgr.plugin_source(found)})" if mgr.plugin_source(found) else ""),
        "entry point": manifest.entry_point,
        "pepperpy": manifest.pepperpy_compatibility,
        "suffixes": ", ".join(manifest.suffixes) or None,  # a loader's: the files rag.add reads with it
        "isolation": _isolation_line(mgr, found, f"{category}/{name}", preset),
    }
    isolated = details["isolation"] is not None
    details.update(_worker_requirement_details(mgr, found) if isolated else _requirement_details(mgr, found))
    details["aliases"] = {
        alias_name: {"config": _masked(entry.config, {**manifest.env, **entry.env}), "description": entry.description}
        for alias_name, entry in manifest.aliases.items()
    }
    details["dependencies"] = [d.model_dump() for d in manifest.dependencies]
    defaults = {key: (value, "plugin.json") for key, value in manifest.config.items()}
    defaults.update({key: (value, "alias") for key, value in preset.items()})
    if isolated:  # the parent never imports an isolated plugin's class (nor installs its requirements here)
        details["options"] = _isolated_option_details(defaults, env)
    else:
        details["options"] = _option_details(mgr, category, name, defaults, env)
        details.update(_llm_capabilities(mgr, category, name))
    if alias:
        details["id"] = f"{category}/{name}"
    return details


def _isolation_line(mgr: Any, found: Any, asked: str, preset: dict[str, Any]) -> str | None:
    """"process (<where it is set>)" when the plugin runs in a worker process, else None.

    Where, as a provider is created: an alias's preset, the options saved for the alias or the plugin
    (`pepperpy options set`), then plugin.json.
    """
    saved = mgr.user_options.all()
    layers = [
        ("an alias preset", preset),
        ("options.json", saved.get(asked, {})),
        ("options.json", saved.get(found.id, {})),
        ("plugin.json", {"isolation": found.manifest.isolation}),
    ]
    for where, config in layers:
        if "isolation" in config:
            return f"process (a worker process; set in {where})" if config["isolation"] == "process" else None
    return None


def _entry_point_details(mgr: Any, plugin: Any) -> dict[str, Any]:
    details = {
        "id": plugin.id,
        "version": plugin.version,
        "source": f"{plugin.entry_point.value} (entry point of {plugin.source})",
        "requirements": [],
        "aliases": {},
        "dependencies": [],
    }
    details["options"] = _option_details(mgr, plugin.category, plugin.provider_name, {}, {})
    return details


def _requirement_details(mgr: Any, found: Any) -> dict[str, Any]:
    from pepperpy import _install
    from pepperpy.errors import PepperPyError

    try:
        needed = mgr.requirement_set(found)
    except PepperPyError as exc:
        return {"requirements": [f"invalid: {exc}"], "env dir": None}
    if not needed:
        return {"requirements": [], "env dir": None}
    target = _install.env_dir(mgr.home, needed)
    stamped = _install.is_stamped(target, needed)
    lines = []
    for requirement in (*needed.requirements, *needed.model_packages):
        version = _install.installed_version(requirement.name)
        if stamped:
            state = "installed in the env dir"
        elif version is not None and requirement.specifier.contains(version, prereleases=True):
            state = f"installed in this environment ({version})"
        else:
            state = "not installed" + (f" ({requirement.name} {version} does not match)" if version else "")
        lines.append(f"{requirement}: {state}")
    details = {"requirements": lines, "env dir": f"{target}" + ("" if target.is_dir() else " (not created yet)")}
    if needed.lock_file is not None:
        details["lock"] = f"{needed.lock_file} (installs take exactly it, hashes required)"
    return {**details, **(_installed_details(target) if stamped else {})}


def _cooldown_text(record: dict[str, Any]) -> str:
    """``7 days (the default)``, ``off (PEPPERPY_INSTALL_COOLDOWN)``, with the packages exempt for the plugin."""
    source = record.get("cooldown_source")
    text = f"{record['cooldown'] or 'none'}" + (f" ({source})" if source else "")
    return text + (f", any age allowed for {', '.join(record['allow_newer'])}" if record.get("allow_newer") else "")


def _installed_details(env: Path) -> dict[str, Any]:
    """What the env's install record says (``_install_record``): each distribution, when, the cooldown; for a
    worker's venv also the ``.pth`` files outside the allow-list, which run at the worker's start-up."""
    from pepperpy import _install_record

    record = _install_record.read(env)
    lines = []
    for distribution in record["distributions"]:
        line = f"{distribution['name']} {distribution['version']}"
        if distribution["hashes"]:
            line += f" ({', '.join(distribution['hashes'])})"
        if distribution["pth"]:
            runs = ("never run (the env is on sys.path, not a site folder)" if record["kind"] == "inprocess"
                    else "run at every start of the worker")
            line += f"; installs {', '.join(distribution['pth'])}, {runs}"
        lines.append(line)
    when = (record["installed_at"] or "?").replace("T", " ").removesuffix("Z") + " UTC"
    if record["recorded"]:
        when += f", cooldown {_cooldown_text(record)}"
    else:
        when += " (installed before install records: read from its dist-info folders)"
    details: dict[str, Any] = {"installed at": when, "installed": lines}
    if record["kind"] == "worker":
        found = _install_record.start_up_files(_install_record.site_folder(env))
        details[START_UP] = [f.describe() for f in found if not f.allowed]
    return details


def _worker_requirement_details(mgr: Any, found: Any) -> dict[str, Any]:
    """The requirements of a plugin that runs in a worker process, and its worker's venv (where they go)."""
    from pepperpy._isolation import env
    from pepperpy.errors import PepperPyError

    try:
        needed = mgr.requirement_set(found)
    except PepperPyError as exc:
        return {"requirements": [f"invalid: {exc}"], "env dir": None}
    venv, stamp, _ = env.env_path(mgr.home, found.id, needed)
    ready = env.is_ready(venv, stamp)
    state = "installed in the worker's venv" if ready else "not installed (goes into the worker's venv on first use)"
    lines = [f"{requirement}: {state}" for requirement in (*needed.requirements, *needed.model_packages)]
    where = "the worker process's venv" + ("" if ready else ", not created yet: made on first use")
    return {"requirements": lines, "env dir": f"{venv} ({where})", **(_installed_details(venv) if ready else {})}


def _isolated_option_details(defaults: dict[str, tuple[Any, str]], env: dict[str, str]) -> list[str]:
    """The options plugin.json and an alias set, for a plugin whose class is imported in its worker only."""
    lines = []
    for option_name, (value, where) in defaults.items():
        if option_name == "isolation":
            continue
        variable = f", env {env[option_name]}" if option_name in env else ""
        shown = "***" if is_key(option_name, env) else repr(value)
        lines.append(f"{option_name}: default {shown} ({where}){variable}")
    lines += [f"{option_name}: env {variable}" for option_name, variable in env.items() if option_name not in defaults]
    lines.append(f"(the class is imported in its worker process only: its {'other ' if lines else ''}options, and "
                 "their types, are checked there when the provider opens)")
    return lines


def _option_details(
    mgr: Any, category: str, name: str, defaults: dict[str, tuple[Any, str]], env: dict[str, str]
) -> list[str]:
    """Each option: type, default (``defaults``: value and where it is set) or required, environment variable,
    description (``Field(description=...)``). Needs the class: when the plugin is not installed, a note instead."""
    from pepperpy._options import build_options, declared_options
    from pepperpy.errors import PepperPyError

    try:
        if mgr.needs_install(category, name):
            return [f"(install the plugin to see them: pepperpy plugins install {category}/{name})"]
        provider_class = mgr.load_class(category, name)
        options = build_options(provider_class)
    except PepperPyError as exc:
        return [f"(cannot import the class: {exc})"]
    declared = declared_options(provider_class)
    lines = []
    for option_name, option in options.items():
        annotation = declared[option_name][1]
        type_name = _type_name(annotation)
        secret = is_key(option_name, env, annotation)
        if option_name in defaults:
            value, where = defaults[option_name]
            state = f"default {'***' if secret else repr(value)} ({where})"
        elif option.required:
            state = "required"
        else:
            state = "default " + ("***" if secret and option.default() is not None else repr(option.default()))
        variable = f", env {env[option_name]}" if option_name in env else ""
        description = f" - {' '.join(option.field.description.split())}" if option.field.description else ""
        lines.append(f"{option_name}: {type_name}, {state}{variable}{description}")
    return lines


def _llm_capabilities(mgr: Any, category: str, name: str) -> dict[str, str]:
    """An LLM class's declared parts (``media_types``, else text only with its ``media_hint``) and per-call options
    (``call_options``); nothing for other categories or a class not installed yet (the options line says so)."""
    from pepperpy.errors import PepperPyError

    if category != "llm":
        return {}
    try:
        if mgr.needs_install(category, name):
            return {}
        provider_class = mgr.load_class(category, name)
    except PepperPyError:
        return {}
    media_types = getattr(provider_class, "media_types", frozenset())
    hint = getattr(provider_class, "media_hint", "")
    parts = f"{', '.join(sorted(media_types))} (text always)" if media_types else "text only" + (f"; {hint}" if hint else "")
    call_options = getattr(provider_class, "call_options", None)
    return {"parts": parts, "call options": "any" if call_options is None else ", ".join(sorted(call_options))}


def _type_name(annotation: Any) -> str:
    """``SecretStr | None`` for ``pydantic.types.SecretStr | None``; an annotation string as written."""
    import re

    if isinstance(annotation, str):
        return annotation
    if isinstance(annotation, type):
        return annotation.__name__
    return re.sub(r"\b(?:[A-Za-z_]\w*\.)+(?=[A-Za-z_])", "", repr(annotation))


def _masked(config: dict[str, Any], env: dict[str, str]) -> dict[str, Any]:
    return {k: ("***" if is_key(k, env) else v) for k, v in config.items()}


def _detail_lines(label: str, value: Any) -> list[str]:
    if label == "aliases":
        return [
            f"{name}: {entry['description'] or ''} {json.dumps(entry['config'])}".replace(":  ", ": ")
            for name, entry in value.items()
        ]
    if label == "dependencies":
        return [f"{d['type']}/{d['provider'] or '(default)'} ({d['dependency_type']})" for d in value]
    return list(value)


# -- install ------------------------------------------------------------------------------------


@plugins.command("install", short_help="Install plugins' requirements now, not on first use.")
@click.argument("plugin_ids", nargs=-1, metavar="[ID]...")
@click.option("--all", "install_all", is_flag=True,
              help="Install every plugin folder found (worker venvs too); a broken folder fails.")
def install(plugin_ids: tuple[str, ...], install_all: bool) -> None:
    """Install plugins' requirements now, instead of on first use (also with PEPPERPY_INSTALL=never).

    ID is category/name, or a bare name when only one category has it (mock is llm/mock). --all prepares
    every plugin folder on the search path, the worker venvs of isolated plugins included (for an image
    build); one line per plugin, and the exit code is 1 when any failed (the others are installed).
    """
    from pepperpy.errors import PepperPyError

    if bool(plugin_ids) == install_all:
        raise click.UsageError("name the plugins to install (as llm/local) or give --all, not both")
    mgr = manager()
    mgr.discover()
    targets = [p.id for p in mgr.list_plugins()] if install_all else list(plugin_ids)
    failed = []
    with _Progress() as progress:
        for plugin_id in targets:
            try:
                progress.done(plugin_id, _install_one(mgr, plugin_id, progress))
            except click.ClickException as exc:
                failed.append(plugin_id)
                progress.failed(plugin_id, exc.format_message())
            except PepperPyError as exc:
                failed.append(plugin_id)
                progress.failed(plugin_id, str(exc))
        if install_all:  # an image build must not ship a plugin folder that was skipped
            for broken in mgr.broken:
                failed.append(str(broken.path))
                targets.append(str(broken.path))
                progress.failed(str(broken.path), f"broken plugin folder, skipped: {broken.problem}")
    if failed:
        fail(f"{len(failed)} of {len(targets)} plugins failed to install: {', '.join(failed)}")


def _install_one(mgr: Any, plugin_id: str, progress: _Progress) -> str:
    from pepperpy import _install
    from pepperpy.errors import PluginNotFoundError

    category, name = category_and_name(mgr, plugin_id)
    if f"{category}/{name}" in mgr.entry_point_plugins:
        return "installed with its distribution"
    try:
        found, preset = mgr.resolve(category, name)[:2]
    except PluginNotFoundError:
        fail_unknown(mgr, plugin_id)
    needed = mgr.requirement_set(found)
    if _isolation_line(mgr, found, f"{category}/{name}", preset) is not None:
        return _install_worker_env(mgr, found, needed, progress)
    if not needed:
        return "no requirements"
    if not mgr.needs_install(category, name):
        target = _install.env_dir(mgr.home, needed)
        where = target if _install.is_stamped(target, needed) else "this environment"
        return f"already installed ({where})"
    names = ", ".join(str(r) for r in (*needed.requirements, *needed.model_packages))
    progress.start(found.id, f"installing {names}")
    mgr.ensure_requirements(found, explicit=True)
    return f"installed {names} into {_install.env_dir(mgr.home, needed)}"


def _install_worker_env(mgr: Any, found: Any, needed: Any, progress: _Progress) -> str:
    """Build the worker's venv of a plugin that runs in a worker process (its requirements go there only)."""
    from pepperpy._isolation import env

    venv, stamp, _ = env.env_path(mgr.home, found.id, needed)
    if env.is_ready(venv, stamp):
        return f"already installed (its worker process's venv {venv})"
    names = ", ".join(str(r) for r in (*needed.requirements, *needed.model_packages))
    progress.start(found.id, f"creating its worker process's venv{' with ' + names if names else ''}")
    venv = env.ensure_env(mgr.home, found.id, needed)
    return f"installed {names} into its worker process's venv {venv}" if names else f"created its worker process's venv {venv}"


class _Progress:
    """A spinner per plugin on a terminal (rich), plain lines otherwise."""

    def __init__(self) -> None:
        self.console: Any = None
        self.status: Any = None

    def __enter__(self) -> _Progress:
        if sys.stdout.isatty():
            from rich.console import Console

            self.console = Console()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop()

    def _stop(self) -> None:
        if self.status is not None:
            self.status.stop()
            self.status = None

    def start(self, plugin_id: str, message: str) -> None:
        if self.console is None:
            click.echo(f"{plugin_id}: {message} ...")
        else:
            self.status = self.console.status(f"{plugin_id}: {message} ...")
            self.status.start()

    def done(self, plugin_id: str, message: str) -> None:
        self._stop()
        click.echo(f"{plugin_id}: {message}")

    def failed(self, plugin_id: str, message: str) -> None:
        self._stop()
        click.secho(f"{plugin_id}: FAILED: {' '.join(message.split())}", fg="red", err=True)


# -- check --------------------------------------------------------------------------------------


@plugins.command("check", short_help="Validate plugin folders and import their classes (for CI).")
@click.argument("path", required=False, type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--install", "install_requirements", is_flag=True, help="Install requirements that are missing.")
def check(path: Path | None, install_requirements: bool) -> None:
    """Validate plugin folders: manifest, requirements file, entry point, and importing the class.

    PATH is a plugin folder or a folder of plugin folders (default: every folder PepperPy searches).
    One line per plugin, `ok` or `FAIL <problem>`; the exit code is 1 when any failed. Two folders
    with one id in the same folder fail (only one of them would be used).
    """
    from pepperpy.cli._check import check_entry_points, check_folder, plugin_folders, shared_ids
    from pepperpy.plugin_manager import PluginManager

    mgr = manager()
    roots = [path] if path is not None else mgr.search_paths()
    folders = plugin_folders(roots)
    if path is not None and not folders:
        fail(f"no plugin folder in {path}: a plugin folder holds a plugin.json")
    checker = PluginManager(search_paths=[], home=mgr.home)
    results = [check_folder(checker, folder, install_requirements) for folder in folders]
    shared = shared_ids(roots)
    results = [
        (label, shared[folder], []) if problem is None and folder in shared else (label, problem, notes)
        for folder, (label, problem, notes) in zip(folders, results)
    ]
    if path is None:
        results += check_entry_points(mgr)
    failures = 0
    for label, problem, notes in results:
        if problem is None:
            click.echo(f"ok   {label}" + "".join(f"; note: {n}" for n in notes))
        else:
            failures += 1
            click.secho(f"FAIL {label}: {' '.join(problem.split())}", fg="red")
    if failures:
        fail(f"{failures} of {len(results)} plugin{'s' if len(results) != 1 else ''} failed the check")
    click.echo(f"{len(results)} plugin{'s' if len(results) != 1 else ''} checked, all ok")


# -- new ----------------------------------------------------------------------------------------


@plugins.command("new", short_help="Create a working plugin folder to start from.")
@click.argument("category")
@click.argument("name")
@click.option("--dir", "directory", default="plugins", show_default=True,
              type=click.Path(file_okay=False, path_type=Path),
              help="The folder of plugin folders to create it in.")
def new(category: str, name: str, directory: Path) -> None:
    """Create a working plugin folder CATEGORY_NAME: plugin.json, provider.py, README.md, test_provider.py.

    CATEGORY llm, embeddings, rag, storage or loader subclasses that category's base (a loader
    gets "suffixes": [".NAME"] in its plugin.json); any other lowercase category gets a plain
    PepperpyPlugin with one async method.
    """
    import shutil
    import tempfile

    from pepperpy.cli._scaffold import scaffold

    files = scaffold(category, name)
    folder = directory / f"{category}_{name}".replace("-", "_")
    if folder.exists():
        fail(f"{folder} already exists; choose another NAME or --dir, or remove that folder first")
    try:
        directory.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}-", dir=directory))
        umask = os.umask(0)
        os.umask(umask)
        staging.chmod(0o777 & ~umask)  # mkdtemp's 0700 is for secrets; a plugin folder is made like any other
    except OSError as exc:
        fail(f"cannot create {folder}: {exc.strerror or exc}; choose a writable --dir")
    try:
        for relative, text in files.items():
            (staging / relative).write_text(text, encoding="utf-8")
        os.rename(staging, folder)
    except OSError as exc:
        shutil.rmtree(staging, ignore_errors=True)
        fail(f"cannot create {folder}: {exc.strerror or exc}; choose a writable --dir")
    click.echo(f"created {folder}: {', '.join(files)}")
    click.echo(
        f"next: edit {folder / 'provider.py'}, then run `pytest {folder}` (`pip install pytest` first, if your "
        f"environment has no pytest) and `pepperpy plugins check {folder}`"
    )
