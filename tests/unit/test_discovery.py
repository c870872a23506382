"""Search path, precedence, shadowing, the discovery cache, and the names a plugin is asked for by."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from pepperpy import PepperPy
from pepperpy.errors import PluginDependencyError, PluginNotFoundError
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
        result = await provider.generate("hi")
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


# -- names: the id form, and defaults from PEPPERPY_<CATEGORY> --------------------------------------------

TINY_STORE = '''
from pepperpy.rag import RAGProvider


class EchoProvider(RAGProvider):
    async def add(self, documents, vectors=None): ...
    async def search(self, query, k=5, filter=None): return []
    async def delete(self, ids): ...
    async def count(self): return 0
'''


async def test_the_id_form_that_errors_print_names_the_plugin(manager, make_plugin):
    """``llm/echo``, as errors and ``pepperpy plugins info`` print it, works wherever a name does."""
    make_plugin("echo")
    pepper = PepperPy(plugin_manager=manager).with_llm("llm/echo", prefix="> ")
    assert pepper.llm.plugin_id == "llm/echo"
    async with pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "> hi"
    assert PepperPy(plugin_manager=manager).with_llm(["llm/echo", ("llm/echo", {})]).llm.plugin_ids == ["llm/echo"] * 2
    assert manager.create_provider("llm", "llm/echo").plugin_id == "llm/echo"


def test_the_id_of_another_category_says_how_to_ask_for_it(manager, make_plugin):
    make_plugin("echo")
    make_plugin("local", category="rag")
    make_plugin("say", category="tts")
    with pytest.raises(PluginNotFoundError, match=r"^'rag/local' is the id of a plugin of category 'rag', not 'llm'; "
                       r"use with_rag\('local'\) for it, or name a plugin of category 'llm'$"):
        PepperPy(plugin_manager=manager).with_llm("rag/local")
    with pytest.raises(PluginNotFoundError, match=r"use with_plugin\('tts', 'say'\) for it"):
        PepperPy(plugin_manager=manager).with_llm(["echo", "tts/say"])


@pytest.mark.parametrize("name", ["embeddings/mock", "rag/nonexistent", "tts/say"])
def test_the_id_of_no_plugin_of_another_category_suggests_nothing_that_is_not_there(manager, make_plugin, name):
    make_plugin("echo")
    make_plugin("mock", category="rag")  # a plugin of that name in a third category does not count
    expected = rf"^'{name}' names no plugin \(there is no {name.split('/')[0]} plugin named '{name.split('/')[1]}'\); "
    for create in (
        lambda: PepperPy(plugin_manager=manager).with_llm(name),
        lambda: PepperPy(plugin_manager=manager).with_llm(["echo", name]),
        lambda: manager.create_provider("llm", name),
    ):
        with pytest.raises(PluginNotFoundError, match=expected) as raised:
            create()
        assert "with_" not in str(raised.value)


def test_the_default_from_pepperpy_llm_is_stripped_and_a_bad_one_names_the_variable(manager, make_plugin, monkeypatch):
    make_plugin("echo")
    monkeypatch.setenv("PEPPERPY_LLM", " echo\n")
    assert PepperPy(plugin_manager=manager).with_llm().llm.plugin_id == "llm/echo"
    monkeypatch.setenv("PEPPERPY_LLM", "ecko")
    with pytest.raises(PluginNotFoundError) as raised:
        PepperPy(plugin_manager=manager).with_llm()
    message = str(raised.value)
    assert message.startswith("the default llm provider 'ecko' comes from the environment variable PEPPERPY_LLM: "
                              "no llm plugin named 'ecko'; did you mean llm/echo?"), message
    assert message.endswith("To use another one, fix or unset PEPPERPY_LLM, or name it: with_llm('name')."), message
    with pytest.raises(PluginNotFoundError, match=r"^the default llm provider 'ecko' comes from "
                       r"PepperPy\(config=\{'llm': \.\.\.\}\): no llm plugin named 'ecko'"):
        PepperPy(config={"llm": "ecko"}, plugin_manager=manager).with_llm()
    monkeypatch.setenv("PEPPERPY_LLM", "rag/local")
    with pytest.raises(PluginNotFoundError, match=r"comes from the environment variable PEPPERPY_LLM: 'rag/local' names no plugin"):
        PepperPy(plugin_manager=manager).with_llm()


def test_a_bad_default_dependency_from_its_variable_names_the_variable(manager, make_plugin, monkeypatch):
    """A store's embeddings default to PEPPERPY_EMBEDDINGS: a bad name there says so."""
    make_plugin("store", category="rag", files={"provider.py": TINY_STORE})
    monkeypatch.setenv("PEPPERPY_EMBEDDINGS", "  bad ")
    with pytest.raises(PluginDependencyError, match=r"^rag/store -> embeddings/bad: the required dependency cannot be "
                       r"created \(the default embeddings provider comes from the environment variable "
                       r"PEPPERPY_EMBEDDINGS: fix or unset PEPPERPY_EMBEDDINGS\): no embeddings plugin named 'bad'"):
        PepperPy(plugin_manager=manager).with_rag("store")


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


def test_a_plugin_not_found_names_the_folders_searched(manager, make_plugin, tmp_path):
    """Run from another folder, ./plugins is another folder: the error says which ones were looked in."""
    make_plugin("echo")
    with pytest.raises(PluginNotFoundError) as raised:
        manager.create_provider("llm", "ticker")
    assert f"Folders searched: {tmp_path / 'plugins'}." in str(raised.value)
