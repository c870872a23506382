"""PepperPy is silent by default; ``logger.enable("pepperpy")`` before or after import turns on its logs and the plugins'."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

PLUGIN = '''
from pepperpy.llm import GenerationResult, LLMProvider


class Chatty(LLMProvider):
    async def initialize(self):
        self.logger.info("plugin says hi")

    async def generate(self, messages, **options):
        return GenerationResult(content="ok")
'''

SCRIPT = textwrap.dedent(
    """
    import asyncio, sys
    from loguru import logger
    logger.remove()
    logger.add(sys.stdout, format="{{name}}|{{message}}", level="DEBUG")
    {before}
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager
    {after}
    manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])

    async def main():
        async with PepperPy(plugin_manager=manager).with_llm("chatty"):
            pass

    asyncio.run(main())
    """
)


def run(tmp_path, before: str = "", after: str = "") -> str:
    script = SCRIPT.format(before=before, after=after)
    done = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "plugins"), str(tmp_path / "home")],
        capture_output=True, text=True, check=True,
    )
    return done.stdout


@pytest.fixture
def chatty(make_plugin):
    return make_plugin("chatty", entry_point="provider:Chatty", files={"provider.py": PLUGIN})


@pytest.mark.parametrize("where", ["before", "after"])
def test_enable_before_or_after_import_covers_core_and_plugin_logs(tmp_path, chatty, where):
    output = run(tmp_path, **{where: 'logger.enable("pepperpy")'})
    assert "plugin says hi" in output
    assert "opened llm/chatty" in output
    plugin_lines = [line for line in output.splitlines() if "plugin says hi" in line]
    assert plugin_lines[0].startswith("pepperpy.loaded_plugins.")


def test_silent_by_default(tmp_path, chatty):
    assert run(tmp_path) == ""
