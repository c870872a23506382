"""`pepperpy cooldown`: saving the install cooldown and per-plugin exceptions in <home>/install.json, read back by
the installs' own rules (pepperpy/_cooldown.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pepperpy._cooldown import cooldown_for
from pepperpy.cli.cooldown import cooldown


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PEPPERPY_INSTALL_COOLDOWN", raising=False)
    return tmp_path / "home"


def run(*args: str) -> str:
    result = CliRunner().invoke(cooldown, list(args))
    assert result.exit_code == 0, result.output
    return result.output


def refused(*args: str) -> str:
    result = CliRunner().invoke(cooldown, list(args))
    assert result.exit_code == 1, result.output
    return result.output


def test_allow_set_show_and_remove_are_what_the_installs_read(home):
    assert run("show").splitlines() == ["cooldown 7 days (the default)",
                                        "no plugin may take newer releases (pepperpy cooldown allow PLUGIN PACKAGE)",
                                        f"settings: {home / 'install.json'}"]
    assert "may install newer releases of openai, Foo_Bar" in run("allow", "openai", "openai", "Foo_Bar")
    assert "of openai, Foo_Bar, tiktoken" in run("allow", "llm/openai", "foo-bar", "tiktoken")  # canonical names
    run("set", "3d")
    assert cooldown_for(home, "llm/openai").uv_options() == [
        "--exclude-newer", "3 days", "--exclude-newer-package", "foo-bar=false",
        "--exclude-newer-package", "openai=false", "--exclude-newer-package", "tiktoken=false"]
    assert cooldown_for(home, "llm/other").uv_options() == ["--exclude-newer", "3 days"]
    shown = run("show").splitlines()
    assert shown[0] == f"cooldown 3 days ({home / 'install.json'})" and "openai, Foo_Bar, tiktoken" in shown[2]

    assert "it may still install newer openai, tiktoken" in run("remove", "llm/openai", "foo_bar")
    run("remove", "openai")
    assert json.loads((home / "install.json").read_text()) == {"cooldown": "3d"}
    run("set", "0")
    assert cooldown_for(home, "llm/openai").uv_options() == []


def test_mistakes_are_refused_naming_the_file_and_nothing_is_written(home):
    path = home / "install.json"
    run("allow", "llm/openai", "openai")
    before = path.read_text()
    assert "is not a package name" in refused("allow", "llm/openai", "openai>=2")
    assert "is not a plugin id" in refused("allow", "Bad/Id", "openai")
    assert f'{path} "cooldown"=\'3x\' is not a cooldown' in refused("set", "3x")
    assert f"{path} allows no newer release of nothere for llm/openai (allowed: openai)" in refused(
        "remove", "llm/openai", "nothere")
    assert "allows no newer release of any package for llm/x (allowed: none)" in refused("remove", "llm/x")
    assert path.read_text() == before
    path.write_text("{broken")
    assert f"{path} cannot be read as JSON" in refused("allow", "llm/openai", "httpx")
    assert path.read_text() == "{broken"  # a corrupt file is refused, not replaced
