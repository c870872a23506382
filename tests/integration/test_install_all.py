"""`pepperpy plugins install --all` for an image build: every plugin folder, worker venvs included, real uv installs.

The command runs in a real subprocess, with the process-wide PluginManager scoped to the test's plugin folder
(the built-in plugins are left out: they would install llama.cpp and a model); then, with
PEPPERPY_INSTALL=never, every plugin that installed is used without any install.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap

import pytest

from pepperpy import PepperPy, _install_record
from pepperpy.plugin_manager import PluginManager

pytestmark = pytest.mark.integration

UNIDECODE = """
from text_unidecode import unidecode

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=unidecode(messages[-1].content))
"""
INSTALL_ALL = textwrap.dedent(
    """
    import sys
    from pepperpy.cli import main
    from pepperpy.plugin_manager import PluginManager
    PluginManager._instance = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])
    sys.exit(main(["plugins", "install", "--all"]))
    """
)


def test_install_all_prepares_every_plugin_and_worker_venv_and_reports_each(monkeypatch, tmp_path, make_plugin):
    make_plugin("uni", files={"provider.py": UNIDECODE, "requirements.txt": "text-unidecode==1.3\n"})
    make_plugin("walled", files={"provider.py": UNIDECODE, "requirements.txt": "text-unidecode==1.3\n"},
                isolation="process")
    make_plugin("ghost", files={"requirements.txt": "pepperpy-surely-no-such-package-4242==1.0\n"})
    make_plugin("plain")
    make_plugin("halfdone", manifest={"name": "halfdone", "version": "0.1.0"})
    root, home = tmp_path / "plugins", tmp_path / "home"
    env = {**os.environ, "PEPPERPY_INSTALL": "never"}  # an explicit install is not a run-time one
    done = subprocess.run([sys.executable, "-c", INSTALL_ALL, str(root), str(home)], capture_output=True, text=True,
                          timeout=900, env=env)
    assert done.returncode == 1, done.stderr
    results = [line for line in done.stdout.splitlines() if not line.endswith(" ...")]
    envs = {_install_record.read(e)["kind"]: e for e in _install_record.installed_envs(home / "envs")}
    assert results == [
        "llm/plain: no requirements",
        f"llm/uni: installed text-unidecode==1.3 into {envs['inprocess']}",
        f"llm/walled: installed text-unidecode==1.3 into its worker process's venv {envs['worker']}",
    ]
    assert "llm/ghost: FAILED: could not install the requirements of plugin llm/ghost" in done.stderr
    assert f"{root / 'halfdone'}: FAILED: broken plugin folder, skipped: " in done.stderr
    assert done.stderr.splitlines()[-1] == f"pepperpy: 2 of 5 plugins failed to install: llm/ghost, {root / 'halfdone'}"
    assert sorted(envs) == ["inprocess", "worker"]  # nothing of ghost's is left

    monkeypatch.setenv("PEPPERPY_INSTALL", "never")
    manager = PluginManager(search_paths=[root], home=home)

    async def use(name: str) -> str:
        async with PepperPy(plugin_manager=manager).with_llm(name) as pepper:
            return (await pepper.chat.with_user("Résumé").generate()).content

    assert asyncio.run(use("uni")) == "Resume"
    assert asyncio.run(use("walled")) == "Resume"
    after = _install_record.installed_envs(home / "envs")
    assert sorted(e.name for e in after) == sorted(e.name for e in envs.values())  # nothing installed at run time
