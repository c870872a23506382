"""The MCP client's first use, for real: in a fresh virtual environment with PepperPy and without the ``mcp`` SDK,
``import pepperpy`` and ``from pepperpy import MCPServer`` do not import it, and the first chat with an MCP
server installs the mcp/client plugin's requirements with uv into the PEPPERPY_HOME's env for the plugin.
(The server itself runs on this test run's Python, which has the SDK.)"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
UV = str(Path(sys.executable).parent / "uv")
DEMO = str(ROOT / "tests" / "servers" / "mcp_demo.py")

CHILD = textwrap.dedent(
    '''
    import asyncio, importlib.util, json, sys
    findable_before = importlib.util.find_spec("mcp") is not None
    from pepperpy import MCPServer, PepperPy
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
    after_import = "mcp" in sys.modules
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=sys.argv[1])
    server = MCPServer.stdio(sys.argv[2], sys.argv[3], name="demo")

    async def main():
        pepper = PepperPy(plugin_manager=manager).with_llm("mock", replies=[{"tool": "add", "arguments": {"a": 2, "b": 2}}, "ok"])
        async with pepper:
            await pepper.chat.with_user("go").with_tools(server).generate()
            return pepper.llm.calls[-1][-1].content
    answer = asyncio.run(main())
    import mcp
    print(json.dumps({"findable_before": findable_before, "after_import": after_import, "answer": answer, "mcp": mcp.__file__}))
    '''
)


@pytest.fixture(scope="module")
def fresh_python(tmp_path_factory) -> str:
    """A new venv with PepperPy (from this checkout) and its own dependencies only."""
    venv = tmp_path_factory.mktemp("fresh") / "venv"
    subprocess.run([UV, "venv", "--quiet", "--python", sys.executable, str(venv)], check=True, timeout=120)
    python = str(venv / "bin" / "python")
    subprocess.run([UV, "pip", "install", "--quiet", "--python", python, "-e", str(ROOT)], check=True, timeout=600)
    return python


def test_first_use_installs_the_mcp_sdk_and_import_pepperpy_never_pays_for_it(fresh_python, tmp_path):
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    done = subprocess.run([fresh_python, "-c", CHILD, str(home), sys.executable, DEMO], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["findable_before"] is False and report["after_import"] is False
    assert report["answer"] == "4"
    assert report["mcp"].startswith(str(home / "envs" / "mcp-client-"))
