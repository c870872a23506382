"""Every example runs as a user would run it, in a fresh process."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def run(name: str, session_home: Path, **env: str) -> str:
    done = subprocess.run(
        [sys.executable, str(EXAMPLES / name)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "PEPPERPY_HOME": str(session_home), **env}, cwd=EXAMPLES.parent,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_quickstart(session_home, local_manager):
    output = run("quickstart.py", session_home)
    assert "Q: What is the capital of France?\nA: " in output and "Paris" in output


def test_rag_example_answers_from_the_notes(session_home, chroma_manager, local_manager):
    output = run("rag.py", session_home)
    assert "stored" in output and "Tuesday" in output
    assert "source notes.md#" in output


def test_structured_output_example(session_home, local_manager):
    assert run("structured_output.py", session_home).startswith("City(name=")


def test_recording_example_replays_without_loading_the_model(session_home, local_manager):
    output = run("recording.py", session_home)
    assert "(model loaded: True)" in output.splitlines()[0]
    assert "(model loaded: False)" in output.splitlines()[1]
    assert "same answer and chunks: True" in output and '"pepperpy_recording": 2' in output


def test_openai_compatible_example_against_llama_cpp(session_home, llama_server):
    output = run("openai_compatible.py", session_home, PEPPERPY_BASE_URL=llama_server)
    assert "Paris" in output.splitlines()[0]


def test_images_and_reasoning_example(session_home, local_manager):
    from tests.servers.tiny_mmproj import TOKENS_PER_IMAGE

    lines = run("images_and_reasoning.py", session_home).splitlines()
    without, with_image = map(int, re.findall(r"(\d+) without the image, (\d+) with it", lines[1])[0])
    assert with_image == without + TOKENS_PER_IMAGE, "the picture reached the model through the projector"
    assert lines[2].startswith("PDF on llm/local: refused before any request: llm/local cannot take the document part")
    assert lines[3] == "PDF on llm/mock: 'A one-page contract.'; it received a application/pdf of 77 bytes"
    assert lines[4].startswith("Reasoning: '") and lines[4] != "Reasoning: ''"
