"""``pepperpy doctor``: check the installation, home, plugins, keys and the local model, cheaply.

Prints one section per subject and ends with ``ok`` or ``N problems``; the exit code is 1 when
something is broken (a broken plugin folder or entry point, an unwritable home, a corrupt
settings file, a plugin whose requirements cannot be satisfied). A plugin that is simply not
installed yet is not a problem: it is installed on first use. Key values are never printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from pepperpy.cli._common import manager
from pepperpy.errors import PepperPyError

if TYPE_CHECKING:
    from pepperpy.plugin_manager import PluginManager


class Report:
    """The lines printed so far and the problems found."""

    def __init__(self) -> None:
        self.problems: list[str] = []
        self._sections = 0

    def section(self, title: str) -> None:
        click.echo(f"\n{title}" if self._sections else title)
        self._sections += 1

    def line(self, text: str) -> None:
        click.echo(f"  {text}")

    def problem(self, text: str) -> None:
        self.problems.append(text)
        click.echo(f"  PROBLEM {text}")


@click.command()
@click.pass_context
def doctor(ctx: click.Context) -> None:
    """Check Python, uv, the home, every plugin, the keys (names only) and the local model."""
    m = manager()
    report = Report()
    _runtime(report)
    _home(report, m.home)
    _plugins(report, m)
    _start_up_files(report, m)
    _settings(report, m)
    _keys(report, m)
    _local_model(report, m)
    count = len(report.problems)
    click.echo("\nok" if not count else f"\n{count} problem{'s' if count > 1 else ''}")
    if count:
        ctx.exit(1)


def _runtime(report: Report) -> None:
    from pepperpy._version import __version__

    report.section("runtime")
    report.line(f"python    {sys.version.split()[0]} ({sys.executable})")
    try:
        from uv import find_uv_bin

        uv = find_uv_bin()
        done = subprocess.run([uv, "--version"], capture_output=True, text=True, timeout=30)
        version = done.stdout.strip() or done.stderr.strip()
        if done.returncode != 0:
            report.problem(f"uv at {uv} fails (`uv --version`: {version}); reinstall pepperpy (it depends on uv)")
        else:
            report.line(f"uv        {version} ({uv})")
    except (ImportError, OSError, subprocess.SubprocessError) as exc:
        report.problem(f"uv cannot be run ({exc}); plugins cannot be installed; reinstall pepperpy (it depends on uv)")
    report.line(f"pepperpy  {__version__} ({Path(__file__).resolve().parents[1]})")
    from pepperpy._envs import install_mode

    try:
        mode = install_mode()
    except PepperPyError as exc:
        report.problem(str(exc))
    else:
        what = "on first use" if mode == "auto" else "never at run time, only by `pepperpy plugins install`"
        report.line(f"installs  {mode}: plugins' requirements are installed {what} (PEPPERPY_INSTALL)")


def _home(report: Report, home: Path) -> None:
    report.section("home (PEPPERPY_HOME)")
    problem = _unwritable(home)
    if problem:
        report.problem(f"{home}: {problem}; make it writable, or point PEPPERPY_HOME at a writable folder")
    else:
        report.line(f"{home} (writable{'' if home.is_dir() else ', created on first use'})")


def _unwritable(home: Path) -> str | None:
    """Why PepperPy cannot write into ``home``; None when it can (or can create it)."""
    existing = home
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"{existing} is not a folder"
    if existing != home:
        return None if os.access(existing, os.W_OK | os.X_OK) else f"cannot be created: {existing} is not writable"
    try:
        with tempfile.TemporaryFile(dir=home):
            return None
    except OSError as exc:
        return f"not writable ({exc.strerror or exc})"


def _plugins(report: Report, m: PluginManager) -> None:
    from pepperpy._envs import install_mode
    from pepperpy._manifest import entry_file
    from pepperpy._trust import open_to_others, trust_problem

    with warnings.catch_warnings():  # reported below as problems, not as Python warnings
        warnings.simplefilter("ignore", RuntimeWarning)
        plugins = m.discover()
    report.section("search paths (lowest precedence first)")
    for root in m.search_paths():
        if not root.is_dir():
            report.line(f"{root} (missing)")
            continue
        real = os.path.realpath(root)
        folders = [p.path for p in plugins.values()] + [s.path for s in m.shadowed]
        found = sum(1 for path in folders if real in (os.path.realpath(path), os.path.realpath(path.parent)))
        broken = sum(1 for b in m.broken if real in (os.path.realpath(b.path), os.path.realpath(b.path.parent)))
        report.line(f"{root} ({found} plugin{'' if found == 1 else 's'}{f', {broken} broken' if broken else ''})")
    report.section("plugins")
    try:
        never = install_mode() == "never"
    except PepperPyError:
        never = False  # an invalid PEPPERPY_INSTALL: reported once, in the runtime section
    for info in m.list_plugins():
        category, name = info.id.split("/", 1)
        try:
            state = "installs on first use" if m.needs_install(category, name) else "ready"
            if state != "ready" and never:
                m.refuse_runtime_install(info, m.requirement_set(info), isolated=_isolated(m, info))
        except PepperPyError as exc:
            report.problem(f"{info.id} ({info.path}): {exc}")
            continue
        report.line(f"{info.id:<22} {info.manifest.version:<8} {state}")
        exposed = open_to_others(str(info.path), [str(info.path / "plugin.json"), entry_file(str(info.path), info.manifest)])
        if exposed:
            report.problem(trust_problem(str(info.path), exposed))
    for plugin in m.entry_point_plugins.values():
        origin = f"from {plugin.source} (entry point {plugin.entry_point.value})"
        report.line(f"{plugin.id:<22} {plugin.version:<8} {origin}")
    for hidden in m.shadowed:
        report.line(f"{hidden.id:<22} SHADOWED at {hidden.path} by {hidden.shadowed_by}")
    for broken in m.broken:
        report.problem(f"BROKEN {broken.path}: {broken.problem}")
    for bad in m.broken_entry_points:
        report.problem(f"BROKEN entry point {bad.name} = {bad.value!r} (from {bad.source}): {bad.problem}")


def _start_up_files(report: Report, m: PluginManager) -> None:
    """The ``.pth`` files outside the allow-list in the worker venvs of isolated plugins: they run at each start."""
    from pepperpy import _install_record
    from pepperpy._envs import envs_folder

    report.section("start-up files (.pth) in worker venvs, outside the allow-list")
    venvs = [env for env in _install_record.installed_envs(envs_folder(m.home)) if (env / "pyvenv.cfg").is_file()]
    found = 0
    for venv in venvs:
        for file in _install_record.start_up_files(_install_record.site_folder(venv)):
            if not file.allowed:
                found += 1
                report.line(f"{file.describe()} runs at every start of {venv.name}'s worker ({file.path})")
    if not found:
        report.line(f"none ({len(venvs)} worker venv{'' if len(venvs) == 1 else 's'})")


def _isolated(m: PluginManager, info: Any) -> bool:
    from pepperpy._isolation import is_isolated

    category, name = info.id.split("/", 1)
    return is_isolated(m, category, name, {})


def _settings(report: Report, m: PluginManager) -> None:
    from pepperpy._config import keys_file_problem, keys_path

    report.section("settings")
    problem = keys_file_problem(m.home)
    if problem:
        report.problem(problem)
    else:
        report.line(f"keys      {keys_path(m.home)}{'' if keys_path(m.home).exists() else ' (none)'}")
    for label, path, read in (
        ("aliases", m.aliases.path, m.aliases.user_aliases),
        ("options", m.user_options.path, m.user_options.all),
    ):
        try:
            count = len(read())
        except PepperPyError as exc:
            report.problem(str(exc))
            continue
        report.line(f"{label:<9} {path} ({count if path.exists() else 'none'})")
    _cooldown_line(report, m.home)


def _cooldown_line(report: Report, home: Path) -> None:
    """The install cooldown in force (``pepperpy/_cooldown.py``), or why its variable or file is wrong."""
    from pepperpy import _cooldown

    try:
        cooldown = _cooldown.cooldown_for(home, "")
        allowed = _cooldown.read_settings(home).get("allow_newer", {})
    except PepperPyError as exc:
        report.problem(str(exc))
        return
    exceptions = sum(len(names) for names in allowed.values())  # type: ignore[union-attr]
    extra = f"; {exceptions} package exception{'' if exceptions == 1 else 's'} (allow_newer)" if exceptions else ""
    report.line(f"cooldown  {cooldown.describe()}: installs ignore younger releases{extra}")


def _keys(report: Report, m: PluginManager) -> None:
    from pepperpy._config import key_sources, key_variables, list_key_names

    report.section("keys (names only)")
    variables = sorted(set(key_variables(m)) | set(list_key_names(m.home)))
    sources = key_sources(m.home, variables)
    present = [f"{name} ({', '.join(where)})" for name, where in sources.items() if where]
    for line in present:
        report.line(line)
    missing = len(variables) - len(present)
    plural = "" if missing == 1 else "s"
    report.line(f"{'no key set; ' if not present else ''}{missing} {'' if not present else 'other '}variable{plural} "
                "not set (`pepperpy keys list`)")


def _local_model(report: Report, m: PluginManager) -> None:
    report.section("local model (llm/local)")
    if "llm/local" not in m.plugins:
        report.line("llm/local is not on the search path")
        return
    try:
        if m.needs_install("llm", "local"):
            report.line("not installed: its requirements and model package install on first use")
            return
        module = sys.modules[m.load_class("llm", "local").__module__]
    except PepperPyError as exc:
        report.problem(f"llm/local: {exc}")
        return
    report.line("environment installed")
    default_model_path = getattr(module, "default_model_path", None)
    if default_model_path is None:
        report.line("model file: set by the plugin's own config (no default model package)")
        return
    try:
        path = Path(default_model_path())
    except PepperPyError as exc:
        report.problem(f"llm/local: {exc}")
        return
    if path.is_file():
        report.line(f"model file {path} ({path.stat().st_size / 1e6:.0f} MB)")
    else:
        report.problem(
            f"llm/local: the model file {path} is missing; delete the plugin's env dir under {m.home / 'envs'} "
            "so that it is installed again"
        )


__all__ = ["doctor"]
