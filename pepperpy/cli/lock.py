"""``pepperpy plugins lock [ID|PATH]``: write a plugin's ``requirements.lock`` (pepperpy/_lockfile.py).

The lock is ``uv pip compile --generate-hashes --universal`` of the plugin's requirements file for this
Python version and newer, on every platform, under the install cooldown of the plugin (so it pins only
releases older than the cooldown). It is written atomically next to requirements.txt; installs then
use it with ``--require-hashes``. Model packages (plugin.json) are not locked: they install by name.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from pepperpy.cli._common import fail, manager

COMPILE_TIMEOUT_S = 600.0


@click.command("lock", short_help="Write a plugin's requirements.lock (hash-checked installs).")
@click.argument("target", required=False, metavar="[ID|PATH]")
def lock(target: str | None) -> None:
    """Write or refresh a plugin's requirements.lock: its requirements resolved with hashes, under the install
    cooldown, for every platform and this Python version or newer.

    TARGET is a plugin id (category/name, or a bare name) or a plugin folder; without it, the folder here.
    """
    from pepperpy import _cooldown, _lockfile
    from pepperpy.errors import PepperPyError

    try:
        plugin_id, folder, requirements_file, home = _plugin(target)
        if not requirements_file.is_file():
            fail(f"plugin {plugin_id} has no {requirements_file.name} in {folder}: there is nothing to lock")
        cooldown = _cooldown.cooldown_for(home, plugin_id)
        path = _lockfile.lock_path(folder)
        text = _compile(plugin_id, requirements_file, cooldown, home)
        header = (
            f"# requirements.lock of plugin {plugin_id}, written by `pepperpy plugins lock` on "
            f"{datetime.now(UTC):%Y-%m-%d} from {requirements_file.name}\n"
            f"# for Python {sys.version_info.major}.{sys.version_info.minor} or newer on any platform, "
            f"install cooldown {cooldown.describe()}. Installs use it with --require-hashes.\n"
        )
        _write_checked(plugin_id, path, header + text, requirements_file)
    except PepperPyError as exc:
        fail(str(exc))
    count = sum(1 for line in text.splitlines() if line[:1].isalnum())
    click.echo(f"wrote {path} ({count} packages, hashes for every file; cooldown {cooldown.describe()})")


def _plugin(target: str | None) -> tuple[str, Path, Path, Path]:
    """(plugin id, folder, requirements file, home) for an id or a folder (the working directory when None)."""
    from pepperpy.errors import PluginNotFoundError
    from pepperpy.plugin_manager import PluginManager

    mgr = manager()
    folder = Path(target or ".")
    if target is None or (folder / "plugin.json").is_file():  # a folder; else an id
        if not (folder / "plugin.json").is_file():
            fail(f"{folder.resolve()} has no plugin.json; give a plugin id (as llm/openai) or a plugin folder")
        mgr = PluginManager(search_paths=[folder.resolve()], home=mgr.home)
        mgr.discover()
        plugins = mgr.list_plugins()
        if len(plugins) != 1:
            fail(f"{folder.resolve()} is not a valid plugin folder; `pepperpy plugins check {folder}` says why")
        info: Any = plugins[0]
    else:
        from pepperpy.cli._plugin_ids import category_and_name, fail_unknown

        mgr.discover()
        category, name = category_and_name(mgr, target)
        try:
            info = mgr.resolve(category, name)[0]
        except PluginNotFoundError:
            fail_unknown(mgr, target)
    folder = Path(info.path)
    return info.id, folder, folder / info.manifest.requirements, mgr.home


def _compile(plugin_id: str, requirements_file: Path, cooldown: Any, home: Path) -> str:
    from uv import find_uv_bin

    from pepperpy import _cooldown

    python = f"{sys.version_info.major}.{sys.version_info.minor}"
    with tempfile.TemporaryDirectory() as scratch:
        output = Path(scratch) / "requirements.lock"
        command = [
            find_uv_bin(), "pip", "compile", "--no-config", "--no-python-downloads", "--quiet", "--no-header",
            "--generate-hashes", "--universal", "--python-version", python, *cooldown.uv_options(),
            "-o", str(output), str(requirements_file),
        ]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=COMPILE_TIMEOUT_S,
                                  stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            fail(f"uv pip compile of plugin {plugin_id} ran over {COMPILE_TIMEOUT_S:.0f}s; is the index reachable?")
        if done.returncode != 0:
            said = done.stderr.strip()
            explained = _cooldown.explain(said, plugin_id, cooldown, home)
            tail = "\n".join(said.splitlines()[-15:])
            fail(explained or f"could not lock plugin {plugin_id}; uv pip compile said:\n{tail}")
        return output.read_text(encoding="utf-8")


def _write_checked(plugin_id: str, path: Path, text: str, requirements_file: Path) -> None:
    """Check the new lock against the requirements (as an install would), then write it atomically."""
    from pepperpy import _install, _lockfile
    from pepperpy._atomic import atomic_write

    with tempfile.TemporaryDirectory() as scratch:
        draft = Path(scratch) / _lockfile.LOCK_FILE
        draft.write_text(text, encoding="utf-8")
        requirements = _install.parse_requirements_file(requirements_file, plugin_id)
        _lockfile.check(plugin_id, requirements, _lockfile.read_lock(draft, plugin_id), path, requirements_file)
    atomic_write(path, text.encode("utf-8"))
    path.chmod(0o644)


__all__ = ["lock"]
