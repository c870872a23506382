"""Installed-package plugins: a real distribution, built and installed by uv, exposes plugins through
the entry-point group ``pepperpy.plugins`` in both forms (and a hook and a command through ``pepperpy.hooks``
and ``pepperpy.commands``):

- ``llm.awesome = "awesome_pkg.models:AwesomeModel"``: a provider class, imported only when asked for;
- ``folders = "awesome_plugins"``: a package of plugin folders (``awesome_plugins/folderly``).

PepperPy goes into the same temporary venv as an editable install of this checkout, and a
child process in that venv uses the plugins the way an application would.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]

EXAMPLE = REPO / "examples" / "installed_package"  # the distribution: pyproject.toml, awesome_pkg, awesome_plugins


CHILD = textwrap.dedent(
    '''
    import asyncio, json, sys
    from pepperpy.plugin_manager import PluginManager

    ours = ("awesome_pkg", "awesome_plugins")
    manager = PluginManager.instance()
    listed = [p.id for p in manager.list_plugins()] + list(manager.entry_point_plugins)
    plugin = manager.entry_point_plugins["llm/awesome"]
    imported_after_discovery = sorted(m for m in sys.modules if m.split(".")[0] in ours)

    from pepperpy import PepperPy

    async def main():
        async with PepperPy().with_llm("awesome", greeting="Hello") as pepper:
            awesome = (await pepper.chat.with_user("world").generate()).content
            name = pepper.llm.name
        async with PepperPy().with_llm("folderly") as pepper:
            folderly = (await pepper.chat.with_user("quiet").generate()).content
        return awesome, name, folderly

    awesome, name, folderly = asyncio.run(main())
    print(json.dumps({
        "listed": listed,
        "source": plugin.source,
        "imported_after_discovery": imported_after_discovery,
        "imported_after_use": sorted(m for m in sys.modules if m.split(".")[0] in ours),
        "awesome": awesome,
        "name": name,
        "folderly": folderly,
    }))
    '''
)


def write_project(root: Path) -> Path:
    project = root / "awesome-pkg"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "use_it.py"))
    return project


def test_a_real_installed_distribution_serves_plugins_through_entry_points(tmp_path):
    from uv import find_uv_bin

    uv = find_uv_bin()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    project = write_project(tmp_path)
    subprocess.run([uv, "build", "-q", "--wheel", "--out-dir", str(tmp_path / "dist"), str(project)],
                   check=True, timeout=300, env=env)
    (wheel,) = (tmp_path / "dist").glob("awesome_pkg-1.2.0-*.whl")

    venv = tmp_path / "venv"
    python = venv / "bin" / "python"
    subprocess.run([uv, "venv", "-q", "--python", sys.executable, str(venv)], check=True, env=env)
    install = [uv, "pip", "install", "-q", "--python", str(python)]
    subprocess.run([*install, "-e", str(REPO)], check=True, timeout=300, env=env)
    subprocess.run([*install, str(wheel)], check=True, timeout=300, env=env)

    run_env = {**env, "PEPPERPY_HOME": str(tmp_path / "home")}
    child = subprocess.run([str(python), "-c", CHILD], cwd=tmp_path, capture_output=True, text=True,
                           env=run_env, timeout=300)
    assert child.returncode == 0, child.stderr
    seen = json.loads(child.stdout.strip().splitlines()[-1])
    assert {"llm/awesome", "llm/folderly", "llm/mock"} <= set(seen["listed"])
    assert seen["source"] == "awesome-pkg 1.2.0"
    assert seen["imported_after_discovery"] == [], "discovery must not import the distribution's code"
    assert seen["imported_after_use"] == ["awesome_pkg", "awesome_pkg.hooks", "awesome_pkg.models"]  # the hook: at the first call
    assert (seen["awesome"], seen["name"], seen["folderly"]) == ("Hello, world!", "awesome", "QUIET")

    listing = subprocess.run([str(venv / "bin" / "pepperpy"), "plugins"], cwd=tmp_path, capture_output=True,
                             text=True, env=run_env, timeout=120)
    assert listing.returncode == 0, listing.stderr
    lines = {line.split()[0]: line for line in listing.stdout.splitlines()[1:] if not line.startswith(" ")}
    assert lines["llm/awesome"].split() == ["llm/awesome", "1.2.0", "installed", "awesome_pkg.models:AwesomeModel",
                                            "(from", "awesome-pkg", "1.2.0)"]
    folderly = lines["llm/folderly"]
    assert folderly.endswith("(from awesome-pkg 1.2.0)") and "/awesome_plugins/folderly " in folderly
    assert "(from" not in lines["llm/mock"]

    example = subprocess.run([str(python), str(EXAMPLE / "use_it.py")], cwd=tmp_path, capture_output=True, text=True,
                             env=run_env, timeout=120)
    assert example.returncode == 0, example.stderr
    assert example.stdout.splitlines() == ["Hello, world! (seen by awesome-pkg)", "QUIET"]  # its pepperpy.hooks entry point ran

    command = subprocess.run([str(venv / "bin" / "pepperpy"), "awesome", "reader"], cwd=tmp_path, capture_output=True,
                             text=True, env=run_env, timeout=120)  # its pepperpy.commands entry point
    assert (command.returncode, command.stdout) == (0, "Hello from awesome-pkg, reader!\n"), command.stderr
    helped = subprocess.run([str(venv / "bin" / "pepperpy"), "--help"], cwd=tmp_path, capture_output=True,
                            text=True, env=run_env, timeout=120)
    listed = [line.split() for line in helped.stdout.splitlines()]
    assert ["awesome", "(from", "awesome-pkg", "1.2.0)"] in listed, helped.stdout  # listed without importing it
