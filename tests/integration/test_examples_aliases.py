"""examples/aliases.py runs as a user would run it, in a fresh process, against llama.cpp's real server."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "aliases.py"


def test_aliases_example_against_llama_cpp_through_openai_base_url(session_home, llama_server):
    env = {**os.environ, "PEPPERPY_HOME": str(session_home), "OPENAI_BASE_URL": llama_server}
    env["OPENAI_API_KEY"] = "no-key"  # llama.cpp's server takes any key
    done = subprocess.run(
        [sys.executable, str(EXAMPLE)], capture_output=True, text=True, timeout=600, env=env, cwd=EXAMPLE.parents[1]
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == f"brief -> llm/openai (name openai), model gpt-4, base_url {llama_server}"
    assert "gpt4: max_tokens 20, temperature 0.0" in lines
    assert "Paris" in "\n".join(lines[1 : lines.index("gpt4: max_tokens 20, temperature 0.0")])
