"""`pepperpy doctor`, run as the real command in subprocesses with PEPPERPY_HOME in a tmp dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

SENTINEL = "sk-doctor-sentinel-5e1b77"


def pepperpy(
    home: Path, *args: str, stdin: str = "", plugin_path: Path | None = None, cwd: Path | None = None,
    extra_env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess:
    """Run ``python -m pepperpy ARGS`` with ``home`` as PEPPERPY_HOME, in ``cwd`` (default: ``home``'s parent)."""
    environment = {**os.environ, "PEPPERPY_HOME": str(home), **(extra_env or {})}
    environment.pop("PEPPERPY_PLUGIN_PATH", None)
    if plugin_path is not None:
        environment["PEPPERPY_PLUGIN_PATH"] = str(plugin_path)
    return subprocess.run(
        [sys.executable, "-m", "pepperpy", *args], input=stdin, capture_output=True, text=True,
        env=environment, cwd=cwd or home.parent, timeout=300,
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    saved = pepperpy(home, "keys", "set", "ANTHROPIC_API_KEY", stdin=SENTINEL + "\n")
    assert saved.returncode == 0, saved.stderr
    return home


def test_a_healthy_home_is_ok_and_no_key_value_is_printed(home):
    result = pepperpy(home, "doctor")
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    lines = result.stdout.splitlines()
    assert lines[-1] == "ok"
    assert f"python    {sys.version.split()[0]} ({sys.executable})" in lines[1]
    assert any(line.strip().startswith("uv        uv ") for line in lines)
    assert f"  {home} (writable)" in lines
    assert "  ANTHROPIC_API_KEY (keys.json)" in lines
    assert any(line.split()[:3] == ["llm/mock", "0.1.0", "ready"] for line in lines)
    assert "PROBLEM" not in output
    assert SENTINEL not in output and SENTINEL[:8] not in output


def test_a_broken_plugin_folder_on_the_search_path_fails_naming_it(home, tmp_path):
    extra = tmp_path / "extra"
    (extra / "halfdone").mkdir(parents=True)
    (extra / "halfdone" / "plugin.json").write_text(json.dumps({"name": "halfdone", "version": "0.1.0"}))
    result = pepperpy(home, "doctor", plugin_path=extra)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"  {extra} (0 plugins, 1 broken)" in lines
    broken = [line for line in lines if "BROKEN" in line]
    assert len(broken) == 1 and str(extra / "halfdone") in broken[0] and "missing field 'category'" in broken[0]
    assert lines[-1] == "1 problem"
    assert SENTINEL not in result.stdout + result.stderr


def test_an_unwritable_home_and_corrupt_settings_are_problems(tmp_path):
    blocked = tmp_path / "blocked"
    blocked.write_text("a file where the home should be")
    result = pepperpy(blocked / "home", "doctor", cwd=tmp_path)
    assert result.returncode == 1
    assert f"PROBLEM {blocked / 'home'}: {blocked} is not a folder" in result.stdout

    home = tmp_path / "home"
    home.mkdir()
    (home / "options.json").write_text("[1, 2]")
    (home / "aliases.json").write_text("{")
    result = pepperpy(home, "doctor")
    assert result.returncode == 1
    assert f"PROBLEM {home / 'options.json'}: the saved options must be a JSON object" in result.stdout
    assert f"PROBLEM {home / 'aliases.json'}: the aliases file is not valid JSON" in result.stdout
    assert result.stdout.splitlines()[-1] == "2 problems"


def test_an_uninstalled_plugin_is_not_a_problem(home):
    result = pepperpy(home, "doctor")
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["llm/local", "0.1.0"] and "installs on first use" in line for line in lines)
    assert "  not installed: its requirements and model package install on first use" in lines
    assert result.returncode == 0


def test_with_install_never_an_uninstalled_plugin_is_a_problem_and_a_wrong_value_too(home):
    result = pepperpy(home, "doctor", extra_env={"PEPPERPY_INSTALL": "never"})
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert ("  installs  never: plugins' requirements are installed never at run time, only by `pepperpy plugins "
            "install` (PEPPERPY_INSTALL)") in lines
    (local,) = [line for line in lines if line.startswith("  PROBLEM llm/local ")]
    assert "PEPPERPY_INSTALL=never forbids installing at run time" in local
    assert "`pepperpy plugins install llm/local`" in local
    assert any(line.split()[:3] == ["llm/mock", "0.1.0", "ready"] for line in lines)

    assert any(line.startswith("  installs  auto: ") for line in pepperpy(home, "doctor").stdout.splitlines())
    wrong = pepperpy(home, "doctor", extra_env={"PEPPERPY_INSTALL": "sometimes"})
    assert wrong.returncode == 1
    assert "  PROBLEM PEPPERPY_INSTALL='sometimes' is not a valid setting; use PEPPERPY_INSTALL=never" in wrong.stdout
    assert wrong.stdout.count("PROBLEM") == 1 and wrong.stdout.splitlines()[-1] == "1 problem"
