"""A plugin folder every user can change is a problem for `pepperpy plugins check` and `pepperpy doctor` (and a
one-line warning elsewhere), run as the real command in subprocesses."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from pepperpy._trust import open_to_others

pytestmark = pytest.mark.integration

PROVIDER = """
from pepperpy.llm import GenerationResult, LLMProvider


class Wide(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content="wide")
"""


def pepperpy(tmp_path: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "PEPPERPY_HOME": str(tmp_path / "home"), "PEPPERPY_PLUGIN_PATH": str(root)}
    return subprocess.run([sys.executable, "-m", "pepperpy", *args], capture_output=True, text=True,
                          env=environment, cwd=tmp_path, timeout=300)


def test_check_and_doctor_fail_on_a_world_writable_plugin_and_pass_once_fixed(tmp_path, make_plugin):
    root = tmp_path / "plugins"
    wide = make_plugin("wide", root=root, files={"provider.py": PROVIDER}, entry_point="provider:Wide")
    os.chmod(root, 0o755)
    os.chmod(wide, 0o777)
    checked = pepperpy(tmp_path, root, "plugins", "check", str(root))
    assert checked.returncode == 1 and f"FAIL llm/wide ({wide})" in checked.stdout
    assert f"chmod o-w {wide}" in checked.stdout
    doctor = pepperpy(tmp_path, root, "doctor")
    assert doctor.returncode == 1 and f"chmod o-w {wide}" in doctor.stdout
    assert "warnings.warn" not in doctor.stderr + doctor.stdout, "no raw Python warning in the report"
    chat = pepperpy(tmp_path, root, "chat", "-p", "wide", "--no-log", "hi")
    assert chat.returncode == 0 and chat.stdout.strip() == "wide"
    assert [line for line in chat.stderr.splitlines() if "chmod o-w" in line] == [
        line for line in chat.stderr.splitlines() if line.startswith("pepperpy: warning: plugin folder")
    ] != [], chat.stderr  # one line, in the command's own format
    os.chmod(wide, 0o755)
    assert pepperpy(tmp_path, root, "plugins", "check", str(root)).returncode == 0


def test_a_folder_of_plugins_others_may_swap_them_in_counts_unless_sticky(tmp_path, make_plugin):
    root = tmp_path / "shared"
    folder = make_plugin("inside", root=root)
    os.chmod(folder, 0o755)
    os.chmod(root, 0o777)
    assert open_to_others(str(folder), []) == [str(root)]
    os.chmod(root, 0o1777)  # like /tmp: others may add folders, not replace this one
    assert open_to_others(str(folder), []) == []
