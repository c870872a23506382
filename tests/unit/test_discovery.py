"""Search path, precedence, shadowing and the discovery cache."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

PREFIX_PROVIDER = '''
from pepperpy.llm import GenerationResult, LLMProvider

WHERE = {where!r}


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=WHERE)
'''


def make_in(make_plugin, root: Path, where: str) -> Path:
    return make_plugin("echo", root=root, files={"provider.py": PREFIX_PROVIDER.format(where=where)})


def test_default_search_path_order(monkeypatch, tmp_path):
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PEPPERPY_PLUGIN_PATH", os.pathsep.join([str(tmp_path / "a"), str(tmp_path / "b")]))
    monkeypatch.chdir(tmp_path)
    manager = PluginManager()
    manager.register_plugin_path(tmp_path / "registered")
    assert manager.search_paths() == [
        builtin_plugins_dir(),
        *manager._entry_point_dirs(),
        tmp_path / "home" / "plugins",
        tmp_path / "plugins",
        tmp_path / "a",
        tmp_path / "b",
        tmp_path / "registered",
    ]


def test_higher_precedence_folder_shadows_lower(monkeypatch, tmp_path, make_plugin):
    roots = {name: tmp_path / name for name in ("home/plugins", "plugins", "extra", "registered")}
    for name, root in roots.items():
        make_in(make_plugin, root, name)
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PEPPERPY_PLUGIN_PATH", str(roots["extra"]))
    monkeypatch.chdir(tmp_path)
    manager = PluginManager()
    assert manager.discover()["llm/echo"].path == (roots["extra"] / "echo").resolve()
    manager.register_plugin_path(roots["registered"])
    assert manager.discover()["llm/echo"].path == (roots["registered"] / "echo").resolve()


async def test_shadowing_plugin_is_the_one_loaded(tmp_path, make_plugin):
    low, high = tmp_path / "low", tmp_path / "high"
    make_in(make_plugin, low, "low")
    make_in(make_plugin, high, "high")
    manager = PluginManager(search_paths=[low, high], home=tmp_path / "home")
    async with manager.create_provider("llm", "echo") as provider:
        result = await provider.generate([])
    assert result.content == "high"


def test_a_folder_that_is_itself_a_plugin_can_be_registered(tmp_path, make_plugin):
    folder = make_plugin("solo", root=tmp_path / "elsewhere")
    manager = PluginManager(search_paths=[], home=tmp_path / "home")
    manager.register_plugin_path(folder)
    assert "llm/solo" in manager.discover()


def test_missing_roots_are_ignored(tmp_path):
    manager = PluginManager(search_paths=[tmp_path / "nope"], home=tmp_path / "home")
    assert manager.discover() == {}


def test_builtin_plugins_are_found_by_default(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PEPPERPY_HOME", str(tmp_path / "home"))
    assert "llm/mock" in PluginManager().discover()


def test_discovery_cache_sees_new_and_edited_plugins(manager, make_plugin, tmp_path):
    make_plugin("first")
    assert set(manager.discover()) == {"llm/first"}
    first_info = manager.plugins["llm/first"]
    assert manager.discover()["llm/first"] is first_info, "an unchanged folder is served from the cache"
    make_plugin("second")
    assert set(manager.discover()) == {"llm/first", "llm/second"}
    manifest = tmp_path / "plugins" / "first" / "plugin.json"
    manifest.write_text(manifest.read_text().replace('"0.1.0"', '"0.2.0"', 1))
    os.utime(manifest, ns=(1, 1))
    assert manager.discover()["llm/first"].manifest.version == "0.2.0"


def test_two_folders_with_one_id_in_one_root_warn_the_user(tmp_path, make_plugin, recwarn):
    """A copy left unrenamed in one folder is a RuntimeWarning (shown by default), naming both folders and the one
    used; a higher root shadowing a lower one is the documented override, and only logged."""
    low, high = tmp_path / "low", tmp_path / "high"
    make_in(make_plugin, low, "low")
    make_in(make_plugin, high, "high")
    manager = PluginManager(search_paths=[low, high], home=tmp_path / "home")
    assert manager.discover()["llm/echo"].path == (high / "echo").resolve()
    assert not [w for w in recwarn if issubclass(w.category, RuntimeWarning)]

    copy = make_plugin("echo_copy", root=high, provider_name="echo")
    with pytest.warns(RuntimeWarning) as warned:
        assert manager.discover()["llm/echo"].path == copy
    assert [str(w.message) for w in warned] == [
        f"2 plugin folders in {high} have the id llm/echo: {high / 'echo'}, {copy}; only the last, {copy}, is used; "
        "give each its own provider_name in its plugin.json, or remove the copy"
    ]
