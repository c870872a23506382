"""PEPPERPY_INSTALL=never: nothing is installed at run time; a plugin not installed fails at ``with_*`` with the
command that installs it. Each test starts from an empty home; nothing here reaches a package index (the
install that the error's command runs is in tests/integration/test_install_never_command.py)."""

from __future__ import annotations

import asyncio
import shlex

import pytest

from pepperpy import PepperPy
from pepperpy._envs import install_mode
from pepperpy.errors import ConfigError, PluginInstallError
from pepperpy.plugin_manager import PluginManager

MISSING = "pepperpy-test-only-package==1.0"  # never installed: the error comes before any install


@pytest.fixture
def never(monkeypatch):
    monkeypatch.setenv("PEPPERPY_INSTALL", "never")


def expected_command(manager: PluginManager, plugin_id: str) -> str:
    root = manager.search_paths()[0]
    home = shlex.quote(str(manager.home))
    return f"PEPPERPY_HOME={home} PEPPERPY_PLUGIN_PATH={root} pepperpy plugins install {plugin_id}"


def test_with_llm_fails_naming_the_plugin_and_the_install_command_and_writes_nothing(never, manager, make_plugin):
    make_plugin("needy", files={"requirements.txt": f"{MISSING}\n"})
    with pytest.raises(PluginInstallError) as caught:
        PepperPy(plugin_manager=manager).with_llm("needy")
    message = str(caught.value)
    assert message.startswith(f"plugin llm/needy: its requirements ({MISSING}) are not installed, and "
                              "PEPPERPY_INSTALL=never forbids installing at run time")
    assert f"`{expected_command(manager, 'llm/needy')}`" in message
    assert not manager.home.exists()  # no env, no lock, no staging folder: the home stays empty


def test_inside_a_running_loop_it_fails_at_with_llm_too(never, manager, make_plugin):
    make_plugin("needy", files={"requirements.txt": f"{MISSING}\n"})

    async def configure() -> None:
        PepperPy(plugin_manager=manager).with_llm("needy")  # auto mode defers this install to the first call

    with pytest.raises(PluginInstallError, match="llm/needy: its requirements .* PEPPERPY_INSTALL=never"):
        asyncio.run(configure())
    assert not manager.home.exists()


def test_an_isolated_plugins_worker_venv_is_not_made_either(never, manager, make_plugin):
    make_plugin("walled", isolation="process")
    with pytest.raises(PluginInstallError) as caught:
        PepperPy(plugin_manager=manager).with_llm("walled")
    assert str(caught.value).startswith("plugin llm/walled: its worker process's venv is not made yet, and "
                                        "PEPPERPY_INSTALL=never forbids")
    assert f"`{expected_command(manager, 'llm/walled')}`" in str(caught.value)
    assert not (manager.home / "envs").exists()


def test_a_plugin_without_requirements_or_already_provided_works(never, manager, make_plugin):
    make_plugin("plain")
    make_plugin("provided", files={"requirements.txt": "packaging>=20\n"})  # PepperPy's own dependency
    pepper = PepperPy(plugin_manager=manager).with_llm("plain")
    assert pepper.chat.with_user("hi").generate_sync().content == "hi"
    PepperPy(plugin_manager=manager).with_llm("provided")
    assert not manager.home.exists()


def test_the_default_home_and_search_path_give_the_bare_command(never, monkeypatch, tmp_path, make_plugin):
    make_plugin("needy", files={"requirements.txt": f"{MISSING}\n"})
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PEPPERPY_PLUGIN_PATH", str(tmp_path / "plugins"))
    manager = PluginManager(search_paths=[tmp_path / "plugins"])  # what the command would find too
    with pytest.raises(PluginInstallError, match="with `pepperpy plugins install llm/needy`"):
        manager.create_provider("llm", "needy")


@pytest.mark.parametrize(("value", "mode"), [("", "auto"), ("auto", "auto"), (" Never ", "never")])
def test_the_modes(monkeypatch, value, mode):
    monkeypatch.setenv("PEPPERPY_INSTALL", value)
    assert install_mode() == mode


def test_a_wrong_value_is_an_error_naming_the_variable(monkeypatch, manager, make_plugin):
    make_plugin("needy", files={"requirements.txt": f"{MISSING}\n"})
    monkeypatch.setenv("PEPPERPY_INSTALL", "nevr")
    with pytest.raises(ConfigError) as caught:
        PepperPy(plugin_manager=manager).with_llm("needy")
    assert str(caught.value).startswith("PEPPERPY_INSTALL='nevr' is not a valid setting; use PEPPERPY_INSTALL=never")
    assert not manager.home.exists()


def test_a_fallback_chain_moves_past_a_member_that_is_not_installed(never, tmp_path, make_plugin):
    from pepperpy.plugin_manager import builtin_plugins_dir

    make_plugin("needy", files={"requirements.txt": f"{MISSING}\n"})
    manager = PluginManager(search_paths=[builtin_plugins_dir(), tmp_path / "plugins"], home=tmp_path / "home")
    result = PepperPy(plugin_manager=manager).with_llm(["needy", "mock"]).chat.with_user("hi").generate_sync()
    (failed,) = result.metadata["fallback"]["failed"]
    assert result.metadata["fallback"]["served_by"] == "mock" and failed["member"] == "needy"
    assert failed["error"].startswith("PluginInstallError: plugin llm/needy: its requirements")
    assert not manager.home.exists()
