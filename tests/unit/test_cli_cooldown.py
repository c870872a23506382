"""`pepperpy cooldown`: saving the install cooldown and per-plugin exceptions in <home>/install.json, read back by
the installs' own rules (pepperpy/_cooldown.py)."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from pepperpy._cooldown import cooldown_for
from pepperpy._paths import builtin_plugins_dir
from pepperpy.plugin_manager import PluginManager
from pepperpy.cli.cooldown import cooldown


@pytest.fixture
def home(tmp_path, monkeypatch):
    """The built-in plugins and tmp_path/plugins (where a test writes its own), installing into tmp_path/home."""
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("PEPPERPY_INSTALL_COOLDOWN", raising=False)
    (tmp_path / "plugins").mkdir()
    mgr = PluginManager(search_paths=[builtin_plugins_dir(), tmp_path / "plugins"], home=tmp_path / "home")
    monkeypatch.setattr(PluginManager, "_instance", mgr)
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
    assert "may install newer releases of openai, Foo_Bar" in run("allow", "llm/openai", "openai", "Foo_Bar")
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
    assert "is not a plugin id" in refused("allow", "--force", "Bad/Id", "openai")
    message = refused("set", "banana")
    assert "the argument DURATION='banana' is not a cooldown" in message and str(path) not in message
    assert "`pepperpy cooldown set default` goes back to the default" in message
    assert f"{path} allows no newer release of nothere for llm/openai (allowed: openai)" in refused(
        "remove", "llm/openai", "nothere")
    assert "allows no newer release of any package for llm/x (allowed: none)" in refused("remove", "llm/x")
    assert path.read_text() == before
    path.write_text("{broken")
    assert f"{path} cannot be read as JSON" in refused("allow", "llm/openai", "httpx")
    assert path.read_text() == "{broken"  # a corrupt file is refused, not replaced


def test_allow_and_remove_find_the_plugin_as_plugins_info_does(home, make_plugin):
    """A bare name is the one category that has it (not always llm/); unknown plugins are refused with
    "did you mean", a category/name only with --force; a package the plugin does not require is a warning."""
    make_plugin("loader_csv", category="loader", provider_name="csv",
                files={"requirements.txt": "text-unidecode\n"})
    path = home / "install.json"
    assert "loader/csv may install newer releases of text-unidecode" in run("allow", "csv", "text-unidecode")
    assert json.loads(path.read_text()) == {"allow_newer": {"loader/csv": ["text-unidecode"]}}
    before = path.read_text()
    assert "no plugin named 'nosuchplugin' in any category" in refused("allow", "nosuchplugin", "requests")
    assert "did you mean loader/csv?" in refused("allow", "cvs", "requests")
    message = refused("allow", "loader/nosuch", "requests")
    assert "no plugin loader/nosuch" in message and "pepperpy cooldown allow --force loader/nosuch" in message
    assert path.read_text() == before
    result = CliRunner().invoke(cooldown, ["allow", "csv", "requests"])
    assert result.exit_code == 0 and "warning: loader/csv does not require requests directly (its requirements: " \
        "text-unidecode; the exception counts only if one of them depends on it)" in result.output
    result = CliRunner().invoke(cooldown, ["allow", "llm/mock", "requests"])
    assert "llm/mock does not require requests directly (it requires no packages" in result.output
    assert "loader/nosuch may install" in run("allow", "--force", "loader/nosuch", "requests")
    assert "of loader/csv; it may still install newer text-unidecode" in run("remove", "csv", "requests")
    assert "removed every exception of loader/csv" in run("remove", "csv")
    assert json.loads(path.read_text()) == {"allow_newer": {"llm/mock": ["requests"], "loader/nosuch": ["requests"]}}


def test_set_default_goes_back_to_the_default_and_keeps_the_exceptions(home):
    run("set", "3d")
    run("allow", "llm/openai", "openai")
    assert run("set", "default").endswith("; in force: 7 days (the default)\n")
    assert json.loads((home / "install.json").read_text()) == {"allow_newer": {"llm/openai": ["openai"]}}
    assert run("show").splitlines()[0] == "cooldown 7 days (the default)"
