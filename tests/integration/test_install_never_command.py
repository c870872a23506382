"""PEPPERPY_INSTALL=never end to end: the error's own command, run in a shell, installs the plugin for real (uv,
from the package index) into the empty home, after which the plugin works with installs still forbidden."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pepperpy import PepperPy
from pepperpy.errors import PluginInstallError
from pepperpy.plugin_manager import PluginManager

pytestmark = pytest.mark.integration

PROVIDER = """
from text_unidecode import unidecode

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=unidecode(messages[-1].content))
"""


def test_the_command_in_the_error_installs_the_plugin_and_then_it_works(monkeypatch, tmp_path, make_plugin):
    monkeypatch.setenv("PEPPERPY_INSTALL", "never")
    make_plugin("unidecoder", files={"provider.py": PROVIDER, "requirements.txt": "text-unidecode==1.3\n"})
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=home)
    with pytest.raises(PluginInstallError) as caught:
        PepperPy(plugin_manager=manager).with_llm("unidecoder")
    (command,) = re.findall(r"`([^`]*plugins install llm/unidecoder)`", str(caught.value))
    assert not home.exists()

    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])  # .venv/bin/pepperpy
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": path}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("llm/unidecoder: installed text-unidecode==1.3 into ")

    fresh = PluginManager(search_paths=[tmp_path / "plugins"], home=home)  # a new process would see the same
    pepper = PepperPy(plugin_manager=fresh).with_llm("unidecoder")
    assert pepper.chat.with_user("Résumé").generate_sync().content == "Resume"
