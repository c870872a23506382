"""Hash-checked installs from a plugin's requirements.lock, and `pepperpy plugins lock`, against real uv and the
local package index (tests/servers/package_index.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from pepperpy._install import env_dir
from pepperpy.errors import PluginInstallError, PluginManifestError
from pepperpy.plugin_manager import PluginManager
from tests.command import run_pepperpy

pytestmark = pytest.mark.integration


@pytest.fixture(autouse=True)
def default_cooldown(monkeypatch):
    monkeypatch.delenv("PEPPERPY_INSTALL_COOLDOWN", raising=False)


def installed(env: Path) -> set[str]:
    return {p.name.removesuffix(".dist-info") for p in env.rglob("*.dist-info") if p.name.startswith("pp_")}


def first_use(tmp_path: Path, name: str) -> Path:
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


def lock(tmp_path: Path, folder: Path) -> str:
    done = run_pepperpy(tmp_path / "home", "plugins", "lock", str(folder))
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_plugins_lock_pins_hashes_under_the_cooldown_and_first_use_installs_exactly_that(use_package_index,
                                                                                        make_plugin, tmp_path):
    folder = make_plugin("locked", files={"requirements.txt": "pp-app\npp-young\n"})
    said = lock(tmp_path, folder)
    assert f"wrote {folder / 'requirements.lock'} (3 packages" in said and "cooldown 7 days (the default)" in said
    text = (folder / "requirements.lock").read_text()
    for name, version in (("pp-app", "1.0"), ("pp-plain", "1.0"), ("pp-young", "1.0")):  # 2.0 is an hour old
        assert f"{name}=={version} \\\n    --hash=sha256:{use_package_index.sha256(name, version)}" in text
    (folder / "requirements.txt").write_text("pp-app\npp-young\n")  # unchanged: the lock still matches
    assert installed(first_use(tmp_path, "locked")) == {"pp_app-1.0", "pp_plain-1.0", "pp_young-1.0"}
    assert ("GET", "/simple/pp-young/") in use_package_index.requests
    info = run_pepperpy(tmp_path / "home", "plugins", "info", "llm/locked", env={"PEPPERPY_PLUGIN_PATH": str(folder)})
    assert f"lock: {folder / 'requirements.lock'} (installs take exactly it, hashes required)" in info.stdout


def test_the_lock_decides_the_env_a_refreshed_lock_makes_a_new_one(use_package_index, make_plugin, tmp_path,
                                                                    monkeypatch):
    folder = make_plugin("locked", files={"requirements.txt": "pp-young\n"})
    lock(tmp_path, folder)
    first = first_use(tmp_path, "locked")
    monkeypatch.setenv("PEPPERPY_INSTALL_COOLDOWN", "0")
    lock(tmp_path, folder)
    second = first_use(tmp_path, "locked")
    assert first != second
    assert installed(first) == {"pp_young-1.0"} and installed(second) == {"pp_young-2.0"}


@pytest.mark.parametrize(("requirements", "problem"), [
    ("pp-young>=2\n", "requirements.txt asks for pp-young>=2, but the lock pins pp-young==1.0"),
    ("pp-young\npp-app\n", "requirements.txt asks for pp-app, but the lock does not list pp-app"),
])
def test_a_lock_that_does_not_match_the_requirements_is_refused_by_name(use_package_index, make_plugin, tmp_path,
                                                                        requirements, problem):
    folder = make_plugin("locked", files={"requirements.txt": "pp-young\n"})
    lock(tmp_path, folder)
    (folder / "requirements.txt").write_text(requirements)
    with pytest.raises(PluginManifestError) as raised:
        first_use(tmp_path, "locked")
    message = str(raised.value)
    assert f"plugin llm/locked: {folder / 'requirements.lock'} does not match requirements.txt" in message
    assert problem in message and "pepperpy plugins lock llm/locked" in message
    assert leftovers(tmp_path) == []


def test_a_file_whose_hash_is_not_the_locked_one_fails_naming_plugin_and_package(use_package_index, make_plugin,
                                                                                  tmp_path):
    folder = make_plugin("locked", files={"requirements.txt": "pp-tampered\n"})
    recorded = use_package_index.original_sha256("pp-tampered")
    (folder / "requirements.lock").write_text(f"pp-tampered==1.0 \\\n    --hash=sha256:{recorded}\n")
    with pytest.raises(PluginInstallError) as raised:
        first_use(tmp_path, "locked")
    message = str(raised.value)
    assert message.startswith("plugin llm/locked: the file the package index serves for pp-tampered 1.0 does not "
                              f"have the hash recorded in {folder / 'requirements.lock'}")
    assert "Nothing was installed" in message
    assert leftovers(tmp_path) == []


def test_a_lock_missing_a_dependency_fails_with_hashes_required(use_package_index, make_plugin, tmp_path):
    folder = make_plugin("locked", files={"requirements.txt": "pp-app\n"})
    sha = use_package_index.sha256("pp-app", "1.0")
    (folder / "requirements.lock").write_text(f"pp-app==1.0 --hash=sha256:{sha}\n")  # pp-plain left out
    with pytest.raises(PluginInstallError, match=r"requirements.lock has no hash for pp-plain"):
        first_use(tmp_path, "locked")
    assert leftovers(tmp_path) == []


def test_an_isolated_plugins_worker_env_installs_from_its_lock(use_package_index, make_plugin, tmp_path):
    from pepperpy._isolation.env import ensure_env

    folder = make_plugin("worker", files={"requirements.txt": "pp-tampered\n"}, isolation="process")
    recorded = use_package_index.original_sha256("pp-tampered")
    (folder / "requirements.lock").write_text(f"pp-tampered==1.0 --hash=sha256:{recorded}\n")
    home = tmp_path / "home"
    manager = PluginManager(search_paths=[tmp_path / "plugins"], home=home)
    info = manager.resolve("llm", "worker")[0]
    with pytest.raises(PluginInstallError, match="plugin llm/worker: the file the package index serves for "
                                                 "pp-tampered 1.0 does not have the hash"):
        ensure_env(home, info.id, manager.requirement_set(info))
    lock(tmp_path, folder)
    venv = ensure_env(home, info.id, PluginManager(search_paths=[tmp_path / "plugins"], home=home)
                      .requirement_set(info))
    assert installed(venv) == {"pp_tampered-1.0"}


def test_plugins_lock_refuses_a_requirement_only_a_young_release_meets(use_package_index, make_plugin, tmp_path):
    folder = make_plugin("eager", files={"requirements.txt": "pp-young>=2\n"})
    done = run_pepperpy(tmp_path / "home", "plugins", "lock", "llm/eager", env={"PEPPERPY_PLUGIN_PATH": str(folder)})
    assert done.returncode == 1
    assert "plugin llm/eager needs pp-young 2.0" in done.stderr and '"allow_newer": {"llm/eager"' in done.stderr
    assert not (folder / "requirements.lock").exists()


def test_plugins_lock_without_an_argument_locks_the_folder_here_and_refuses_other_folders(use_package_index,
                                                                                         make_plugin, tmp_path):
    folder = make_plugin("here", files={"requirements.txt": "pp-plain\n"})
    done = run_pepperpy(tmp_path / "home", "plugins", "lock", cwd=folder)
    assert done.returncode == 0, done.stderr
    assert "pp-plain==1.0" in (folder / "requirements.lock").read_text()
    nothing = run_pepperpy(tmp_path / "home", "plugins", "lock", cwd=tmp_path)
    assert nothing.returncode == 1 and f"{tmp_path} has no plugin.json" in nothing.stderr
