"""PEPPERPY_INSTALL=never end to end: the error's own command, run in a shell, installs the plugin for real (uv,
from the package index) into the empty home, after which the plugin works with installs still forbidden."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

pytestmark = pytest.mark.integration

PROVIDER = """
from text_unidecode import unidecode

from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=unidecode(messages[-1].content))
"""


# Run in a fresh interpreter: an in-process plugin env stays on sys.path, so in this test process another
# test's install of text-unidecode would meet the requirement and nothing would need installing.
USE = """
import sys

from pepperpy import PepperPy
from pepperpy.errors import PluginInstallError
from pepperpy.plugin_manager import PluginManager

manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])
try:
    pepper = PepperPy(plugin_manager=manager).with_llm("unidecoder")
except PluginInstallError as exc:
    print("refused:", exc)
else:
    print("answer:", pepper.chat.with_user("R\u00e9sum\u00e9").generate_sync().content)
"""


def use(tmp_path, home) -> str:
    done = subprocess.run([sys.executable, "-c", USE, str(tmp_path / "plugins"), str(home)], capture_output=True,
                          text=True, timeout=600, env={**os.environ, "PEPPERPY_INSTALL": "never"})
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_the_command_in_the_error_installs_the_plugin_and_then_it_works(tmp_path, make_plugin):
    make_plugin("unidecoder", files={"provider.py": PROVIDER, "requirements.txt": "text-unidecode==1.3\n"})
    home = tmp_path / "home"
    refused = use(tmp_path, home)
    assert refused.startswith("refused: ")
    (command,) = re.findall(r"`([^`]*plugins install llm/unidecoder)`", refused)
    assert not home.exists()

    path = os.pathsep.join([os.path.dirname(sys.executable), os.environ.get("PATH", "")])  # .venv/bin/pepperpy
    done = subprocess.run(["bash", "-c", command], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PATH": path}, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1].startswith("llm/unidecoder: installed text-unidecode==1.3 into ")

    assert use(tmp_path, home) == "answer: Resume\n"  # installs still forbidden
