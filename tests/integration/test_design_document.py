"""The plugin-system document's usage examples, run as written: each one placed in an async function
(the document shows them at top level with `await`), keys and URLs aside. `OPENAI_BASE_URL` points the
openai plugin at llama.cpp's real server, as it would point the openai SDK. The hot-reload, state and
dependency examples run in their own test modules."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.integration

BASIC = '''
from pepperpy.plugins import create_provider_instance

# Create a plugin instance
llm = create_provider_instance("llm", "openai", api_key="your-api-key")

# Initialize the plugin
await llm.initialize()

# Use the plugin
response = await llm.generate("What is the capital of France?")

# Clean up
await llm.cleanup()
'''

ALIASES = '''
from pepperpy.plugins import register_plugin_alias, create_provider_instance

# Register an alias for a specific GPT-4 model
register_plugin_alias("llm", "gpt4", "openai", {"model": "gpt-4"})

# Create instance using the alias
llm = create_provider_instance("llm", "gpt4", api_key="your-api-key")

# The model is automatically set to "gpt-4"
'''

CONTEXT_MANAGER = '''
from pepperpy.plugins import auto_context, create_provider_instance

# Create a plugin instance
llm = create_provider_instance("llm", "openai", api_key="your-api-key")

# Use the context manager for automatic cleanup
async with auto_context(llm):
    response = await llm.generate("What is the capital of France?")
'''

CUSTOM_PLUGIN = '''
from typing import Dict, Any
from pepperpy.plugins import PepperpyPlugin, register_plugin

class CustomPlugin(PepperpyPlugin):
    """Custom plugin implementation."""

    # Configuration attributes with defaults
    param1: str = "default"
    param2: int = 42

    async def initialize(self):
        """Initialize the plugin."""
        if self.initialized:
            return

        self.logger.info(f"Initializing with {self.param1}, {self.param2}")
        self.initialized = True

    async def process(self, data: Dict[str, Any]) -> Dict[str, Any]:
        """Process data with the plugin."""
        if not self.initialized:
            await self.initialize()

        result = {"processed": data, "param1": self.param1}
        return result

    async def cleanup(self):
        """Clean up resources."""
        if not self.initialized:
            return

        self.logger.info("Cleaning up")
        self.initialized = False

# Register the plugin
register_plugin("custom", "example", CustomPlugin)
'''

MANUAL_REGISTRATION = '''
from pepperpy.plugins import register_plugin_path

# Register a custom path
register_plugin_path("/path/to/custom/plugins")
'''

FALLBACKS = '''
from pepperpy.plugins import register_plugin_fallbacks

# Register fallbacks for LLM providers (in order of preference)
register_plugin_fallbacks("llm", ["openai", "anthropic", "local"])
'''


def run(snippet: str, after: str, home, **env: str) -> str:
    script = "import asyncio\n\nasync def main():\n" + textwrap.indent(snippet + after, "    ") + "\nasyncio.run(main())\n"
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
        env={**os.environ, "PEPPERPY_HOME": str(home), **env},
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_basic_plugin_usage(session_home, llama_server):
    output = run(BASIC, "print(response.content)\nprint(llm.initialized)\n", session_home, OPENAI_BASE_URL=llama_server)
    assert output.strip().splitlines()[-1] == "False" and output.strip()


def test_using_aliases(session_home, llama_server):
    after = "print(llm.model, llm.name, llm.plugin_id, llm.alias)\n"
    assert run(ALIASES, after, session_home, OPENAI_BASE_URL=llama_server).split() == ["gpt-4", "openai", "llm/openai", "gpt4"]


def test_context_manager_pattern(session_home, llama_server):
    output = run(CONTEXT_MANAGER, "print(bool(response.content), llm.initialized)\n", session_home, OPENAI_BASE_URL=llama_server)
    assert output.split() == ["True", "False"]


def test_custom_plugin_implementation(session_home):
    after = textwrap.dedent(
        """
        from pepperpy.plugins import create_provider_instance
        plugin = create_provider_instance("custom", "example", param1="set")
        print(await plugin.process({"a": 1}), plugin.initialized)
        await plugin.cleanup()
        print(plugin.initialized)
        """
    )
    assert run(CUSTOM_PLUGIN, after, session_home).split("\n")[:2] == ["{'processed': {'a': 1}, 'param1': 'set'} True", "False"]


def test_manual_registration(session_home, tmp_path, make_plugin):
    make_plugin("echo")
    snippet = MANUAL_REGISTRATION.replace("/path/to/custom/plugins", str(tmp_path / "plugins"))
    after = "from pepperpy.plugins import get_plugin_manager\nprint('llm/echo' in get_plugin_manager().discover())\n"
    assert run(snippet, after, session_home).strip() == "True"


def test_fallback_providers(session_home, llama_server, tmp_path):
    after = textwrap.dedent(
        """
        from pepperpy import PepperPy
        async with PepperPy().with_llm("openai", api_key="k", temperature=0, max_tokens=8) as pepper:
            result = await pepper.chat.with_user("Say hi.").generate()
        print(result.metadata["fallback"]["served_by"], [f["member"] for f in result.metadata["fallback"]["failed"]])
        """
    )
    closed = "http://127.0.0.1:9/v1"  # the first member's server is down; anthropic has no key; local answers
    env = {"OPENAI_BASE_URL": closed, "ANTHROPIC_API_KEY": ""}
    output = run(FALLBACKS, after, session_home, **env)
    assert output.strip() == "local ['openai', 'anthropic']"
