"""The install cooldown against real uv installs from the local package index (tests/servers/package_index.py):
pp-young 2.0 was uploaded an hour ago, 1.0 long ago."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from pepperpy._install import env_dir
from pepperpy.errors import ConfigError, PluginInstallError
from pepperpy.plugin_manager import PluginManager

pytestmark = pytest.mark.integration


def installed(env: Path) -> set[str]:
    return {p.name.removesuffix(".dist-info") for p in env.glob("*.dist-info")}


def first_use(tmp_path: Path, name: str) -> Path:
    """Create the plugin ``llm/<name>`` (its requirements install on first use) and return its env dir (taken off
    sys.path again)."""
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=home)
    manager.create_provider("llm", name)
    env = env_dir(home, manager.requirement_set(manager.resolve("llm", name)[0]))
    if str(env) in sys.path:
        sys.path.remove(str(env))
    return env


def leftovers(tmp_path: Path) -> list[str]:
    envs = tmp_path / "home" / "envs"
    return [p.name for p in envs.iterdir() if not p.name.endswith(".lock")] if envs.is_dir() else []


@pytest.fixture(autouse=True)
def no_cooldown_setting(monkeypatch):
    monkeypatch.delenv("PEPPERPY_INSTALL_COOLDOWN", raising=False)


def test_first_use_takes_the_newest_release_older_than_seven_days(use_package_index, make_plugin, tmp_path):
    make_plugin("young", files={"requirements.txt": "pp-young\n"})
    assert installed(first_use(tmp_path, "young")) == {"pp_young-1.0"}


def test_a_zero_cooldown_turns_it_off(use_package_index, make_plugin, tmp_path, monkeypatch):
    make_plugin("young", files={"requirements.txt": "pp-young\n"})
    monkeypatch.setenv("PEPPERPY_INSTALL_COOLDOWN", "0")
    assert installed(first_use(tmp_path, "young")) == {"pp_young-2.0"}


def test_the_home_setting_sets_the_cooldown_and_the_variable_wins(use_package_index, make_plugin, tmp_path,
                                                                   monkeypatch):
    make_plugin("young", files={"requirements.txt": "pp-young\n"})
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "install.json").write_text(json.dumps({"cooldown": "30m"}))
    with pytest.raises(ConfigError, match=r"install.json \"cooldown\"='30m' is not a cooldown"):
        first_use(tmp_path, "young")
    (tmp_path / "home" / "install.json").write_text(json.dumps({"cooldown": "0"}))
    monkeypatch.setenv("PEPPERPY_INSTALL_COOLDOWN", "2d")
    assert installed(first_use(tmp_path, "young")) == {"pp_young-1.0"}
    monkeypatch.delenv("PEPPERPY_INSTALL_COOLDOWN")
    (tmp_path / "plugins" / "young" / "requirements.txt").write_text("pp-young>=1\n")  # another env
    assert installed(first_use(tmp_path, "young")) == {"pp_young-2.0"}


def test_a_requirement_only_a_young_release_meets_fails_saying_how_to_allow_it(use_package_index, make_plugin,
                                                                                tmp_path):
    make_plugin("young", files={"requirements.txt": "pp-young>=2\n"})
    with pytest.raises(PluginInstallError) as raised:
        first_use(tmp_path, "young")
    message = str(raised.value)
    assert re.search(r"plugin llm/young needs pp-young 2\.0 \(uploaded \d+ minutes ago\), younger than", message)
    assert "install cooldown of 7 days (the default)" in message
    assert f'in {tmp_path / "home" / "install.json"}: {{"allow_newer": {{"llm/young": ["pp-young"]}}}}' in message
    assert "PEPPERPY_INSTALL_COOLDOWN=1d" in message
    assert leftovers(tmp_path) == []


def test_allow_newer_lifts_the_cooldown_for_that_plugin_and_package_only(use_package_index, make_plugin, tmp_path):
    make_plugin("young", files={"requirements.txt": "pp-young>=2\npp-app\n"})
    make_plugin("other", files={"requirements.txt": "pp-young>=2\n"})
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "install.json").write_text(json.dumps({"allow_newer": {"llm/young": ["PP_Young"]}}))
    assert installed(first_use(tmp_path, "young")) == {"pp_young-2.0", "pp_app-1.0", "pp_plain-1.0"}
    with pytest.raises(PluginInstallError, match="plugin llm/other needs pp-young 2.0"):
        first_use(tmp_path, "other")


def test_a_bad_settings_file_is_refused_by_name(use_package_index, make_plugin, tmp_path):
    make_plugin("young", files={"requirements.txt": "pp-young\n"})
    (tmp_path / "home").mkdir()
    (tmp_path / "home" / "install.json").write_text(json.dumps({"cooldwn": "7d"}))
    with pytest.raises(ConfigError, match=r"install.json must be a JSON object with only the keys .*unknown: cooldwn"):
        first_use(tmp_path, "young")
    assert leftovers(tmp_path) == []


def test_find_links_folders_are_warned_about(use_package_index, make_plugin, tmp_path, monkeypatch):
    make_plugin("young", files={"requirements.txt": "pp-young\n"})
    (tmp_path / "wheels").mkdir()
    monkeypatch.setenv("UV_FIND_LINKS", str(tmp_path / "wheels"))
    with pytest.warns(RuntimeWarning, match=r"plugin llm/young: uv may take packages from the --find-links folders"):
        assert installed(first_use(tmp_path, "young")) == {"pp_young-1.0"}


def test_an_isolated_plugins_worker_env_is_installed_under_the_cooldown(use_package_index, make_plugin, tmp_path):
    make_plugin("young", files={"requirements.txt": "pp-young\n"}, isolation="process")
    make_plugin("eager", files={"requirements.txt": "pp-young>=2\n"}, isolation="process")
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=home)
    from pepperpy._isolation.env import ensure_env

    info = manager.resolve("llm", "young")[0]
    venv = ensure_env(home, info.id, manager.requirement_set(info))
    assert {p.name for p in venv.glob("lib/python*/site-packages/pp_young-*.dist-info")} == {"pp_young-1.0.dist-info"}
    eager = manager.resolve("llm", "eager")[0]
    with pytest.raises(PluginInstallError, match=r"plugin llm/eager needs pp-young 2.0 \(uploaded \d+ minutes ago\)"):
        ensure_env(home, eager.id, manager.requirement_set(eager))
    assert not [p for p in (home / "envs").iterdir() if p.name.startswith((".llm-eager", "llm-eager"))
                and not p.name.endswith(".lock")]


def test_an_html_only_index_has_no_upload_times_so_the_cooldown_excludes_everything(use_package_index, make_plugin,
                                                                                     tmp_path, monkeypatch):
    make_plugin("young", files={"requirements.txt": "pp-young\n"})
    monkeypatch.setenv("UV_DEFAULT_INDEX", use_package_index.html_url)
    with pytest.raises(PluginInstallError, match=r"needs pp-young 2\.0, but the package index gives no upload time"):
        first_use(tmp_path, "young")
    monkeypatch.setenv("PEPPERPY_INSTALL_COOLDOWN", "0")
    assert installed(first_use(tmp_path, "young")) == {"pp_young-2.0"}


def test_doctor_shows_the_cooldown_and_flags_a_bad_setting(tmp_path):
    from tests.command import run_pepperpy

    home = tmp_path / "home"
    home.mkdir()
    shown = run_pepperpy(home, "doctor")
    assert "  cooldown  7 days (the default): installs ignore younger releases" in shown.stdout.splitlines()
    (home / "install.json").write_text('{"cooldown": "2w", "allow_newer": {"llm/x": ["a", "b"]}}')
    shown = run_pepperpy(home, "doctor")
    assert (f"  cooldown  2 weeks ({home / 'install.json'}): installs ignore younger releases; 2 package exceptions "
            "(allow_newer)") in shown.stdout.splitlines()
    bad = run_pepperpy(home, "doctor", env={"PEPPERPY_INSTALL_COOLDOWN": "soon"})
    assert bad.returncode == 1
    assert "  PROBLEM PEPPERPY_INSTALL_COOLDOWN='soon' is not a cooldown" in bad.stdout


def test_plugins_install_runs_under_the_cooldown_and_says_why_it_fails(use_package_index, make_plugin, tmp_path):
    from tests.command import run_pepperpy

    make_plugin("young", files={"requirements.txt": "pp-young\n"})
    make_plugin("eager", files={"requirements.txt": "pp-young>=2\n"})
    done = run_pepperpy(tmp_path / "home", "plugins", "install", "llm/eager", "llm/young",
                        env={"PEPPERPY_PLUGIN_PATH": str(tmp_path / "plugins")})
    assert done.returncode == 1
    assert "plugin llm/eager needs pp-young 2.0" in done.stdout + done.stderr
    (env,) = (tmp_path / "home" / "envs").glob("llm-young-*[!k]")
    assert installed(env) == {"pp_young-1.0"}


def test_a_worker_env_takes_the_parents_pinned_versions_whatever_their_age(use_package_index, make_plugin, tmp_path,
                                                                            monkeypatch):
    """The worker's constraints pin PepperPy's own dependencies at the parent's versions, which may be younger than
    the cooldown (the parent installed them itself): those pins are exempt. Here the parent "runs" pp-young 2.0."""
    from pepperpy._isolation import env

    monkeypatch.setattr(env, "host_pins", lambda: ["pp-young==2.0"])
    make_plugin("pinned", files={"requirements.txt": "pp-young\n"}, isolation="process")
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=home)
    info = manager.resolve("llm", "pinned")[0]
    venv = env.ensure_env(home, info.id, manager.requirement_set(info))
    assert {p.name for p in venv.glob("lib/python*/site-packages/pp_young-*.dist-info")} == {"pp_young-2.0.dist-info"}
