"""Saved default options (<home>/options.json): precedence, caching, bad files, saving and removing.

Also removing user aliases (pepperpy/_aliases.py) and the key helpers of pepperpy/_config.py.
"""

from __future__ import annotations

import json

import pytest

from pepperpy import PepperPy, _user_options
from pepperpy._aliases import remove_user_alias, save_user_alias
from pepperpy._config import key_sources, key_variables, keys_file_problem, list_key_names, save_key
from pepperpy._user_options import read_options, remove_options, save_option
from pepperpy.errors import ConfigError
from pepperpy.llm import GenerationResult, LLMProvider

LAYERS_PROVIDER = '''
from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    explicit: str = "class"
    near_preset: str = "class"
    near_saved: str = "class"
    far_preset: str = "class"
    far_saved: str = "class"
    plugin_saved: str = "class"
    environment: str = "class"
    manifest: str = "class"
    default: str = "class"

    async def generate(self, messages, **options):
        return GenerationResult(content="")
'''
LAYERS = ["explicit", "near_preset", "near_saved", "far_preset", "far_saved", "plugin_saved", "environment", "manifest"]


def staircase(layer: str) -> dict[str, str]:
    """Options set by ``layer``: its own and every higher layer's, so each option shows the layer that won it."""
    return {name: layer for name in LAYERS[: LAYERS.index(layer) + 1]}


@pytest.fixture
def layered(make_plugin, manager, monkeypatch):
    """llm/echo with a manifest alias ``far``, a code alias ``near`` -> ``far``, and every layer set."""
    make_plugin(
        "echo",
        files={"provider.py": LAYERS_PROVIDER},
        config=staircase("manifest"),
        env={name: f"PEPPERPY_TEST_{name.upper()}" for name in staircase("environment")},
        aliases={"far": {"config": staircase("far_preset")}},
    )
    for name in staircase("environment"):
        monkeypatch.setenv(f"PEPPERPY_TEST_{name.upper()}", "environment")
    manager.register_plugin_alias("llm", "near", "far", staircase("near_preset"))
    write(manager, {
        "llm/near": staircase("near_saved"),
        "llm/far": staircase("far_saved"),
        "llm/echo": staircase("plugin_saved"),
    })
    return manager


def write(manager, data) -> None:
    manager.home.mkdir(parents=True, exist_ok=True)
    text = data if isinstance(data, str) else json.dumps(data)
    (manager.home / "options.json").write_text(text)


def values(provider) -> list[str]:
    return [getattr(provider, name) for name in [*LAYERS, "default"]]


def test_the_documented_precedence_explicit_then_each_alias_preset_and_saved_then_plugin_env_manifest_class(
    layered,
):
    """explicit > near preset > near saved > far preset > far saved > plugin saved > env > manifest > class."""
    provider = layered.create_provider("llm", "near", explicit="explicit")
    assert values(provider) == [*LAYERS, "class"]
    assert (provider.plugin_id, provider.alias) == ("llm/echo", "near")


def test_each_name_sees_only_the_layers_on_its_way(layered):
    assert values(layered.create_provider("llm", "far")) == [
        "far_preset", "far_preset", "far_preset", "far_preset", "far_saved", "plugin_saved", "environment", "manifest",
        "class",
    ]
    assert values(layered.create_provider("llm", "echo")) == [*["plugin_saved"] * 6, "environment", "manifest", "class"]


def test_the_facade_applies_saved_options_under_explicit_config(manager, make_plugin):
    make_plugin("echo", files={"provider.py": LAYERS_PROVIDER})
    write(manager, {"llm/echo": {"default": "saved", "manifest": "saved"}})
    pepper = PepperPy(plugin_manager=manager).with_llm("echo", manifest="explicit")
    assert (pepper.llm.default, pepper.llm.manifest) == ("saved", "explicit")


@pytest.mark.parametrize("saved_for", ["llm/echo", "llm/loud"])
def test_a_bad_saved_option_names_the_file_and_the_command_that_removes_it(manager, make_plugin, saved_for):
    """A typo saved before the plugin was installed (so not checked then) fails when the plugin is created."""
    make_plugin("echo", files={"provider.py": LAYERS_PROVIDER})
    manager.register_plugin_alias("llm", "loud", "echo")
    write(manager, {saved_for: {"defualt": "x", "explicit": ["not", "a", "str"]}})
    with pytest.raises(ConfigError) as raised:
        PepperPy(plugin_manager=manager).with_llm("loud")
    where = f"saved for {saved_for} in {manager.home / 'options.json'}"
    assert f"unknown option 'defualt' for llm/echo ({where}; `pepperpy options remove {saved_for} defualt` " \
           "removes it); did you mean 'default'?" in str(raised.value)
    assert f"({where}; `pepperpy options remove {saved_for} explicit` removes it)" in str(raised.value)
    with pytest.raises(ConfigError) as given:  # the same typo passed in code (it wins over the saved one)
        manager.create_provider("llm", "loud", defualt="x", explicit="ok")
    assert "unknown option 'defualt' for llm/echo; did you mean 'default'?" in str(given.value)
    assert "options.json" not in str(given.value)


def test_a_class_registered_in_code_gets_its_saved_options_too(manager):
    class Coded(LLMProvider):
        tone: str = "plain"

        async def generate(self, messages, **options):
            return GenerationResult(content=self.tone)

    manager.register_plugin("llm", "coded", Coded)
    manager.register_plugin_alias("llm", "loud", "coded")
    write(manager, {"llm/coded": {"tone": "saved"}, "llm/loud": {"tone": "alias-saved"}})
    assert manager.create_provider("llm", "coded").tone == "saved"
    assert manager.create_provider("llm", "loud").tone == "alias-saved"


@pytest.mark.parametrize("content", [None, "", "  \n"])
def test_a_missing_or_empty_file_means_no_saved_options(manager, make_plugin, content):
    make_plugin("echo")
    if content is not None:
        write(manager, content)
    assert manager.user_options.all() == {}
    assert manager.create_provider("llm", "echo").prefix == ""


@pytest.mark.parametrize(
    ("content", "problem"),
    [("{broken", "not valid JSON"), ("[1]", "must be a JSON object"), ('{"mock": {}}', "must be 'category/name'"),
     ('{"llm/mock": 3}', "must map option names to values")],
)
def test_a_corrupt_file_is_an_error_naming_it_when_options_are_used(manager, make_plugin, content, problem):
    make_plugin("echo")
    write(manager, content)
    assert "llm/echo" in manager.discover()  # discovery does not read it
    with pytest.raises(ConfigError) as caught:
        manager.create_provider("llm", "echo")
    message = str(caught.value)
    assert str(manager.home / "options.json") in message and problem in message
    assert "fix the file or delete it" in message
    with pytest.raises(ConfigError, match="not valid JSON|must"):
        save_option(manager.home, "llm/echo", "prefix", "x")  # never overwritten
    assert (manager.home / "options.json").read_text() == content


def test_the_file_is_read_once_and_again_when_it_changes(manager, monkeypatch):
    reads = []
    real = _user_options.read_options
    monkeypatch.setattr(_user_options, "read_options", lambda path: reads.append(path) or real(path))
    write(manager, {"llm/echo": {"prefix": "one"}})
    assert manager.user_options.all() == manager.user_options.all() == {"llm/echo": {"prefix": "one"}}
    assert len(reads) == 1
    write(manager, {"llm/echo": {"prefix": "two!"}})  # another size: seen even within the same mtime tick
    assert manager.user_options.all() == {"llm/echo": {"prefix": "two!"}}
    assert len(reads) == 2
    (manager.home / "options.json").unlink()
    assert manager.user_options.all() == {}


def test_merged_values_are_copies_of_the_cache(manager):
    write(manager, {"llm/echo": {"stop": ["a"]}})
    merged = manager.user_options.merge({}, [], "llm/echo")
    merged["stop"].append("b")
    assert manager.user_options.all() == {"llm/echo": {"stop": ["a"]}}


def test_save_and_remove_round_trip(tmp_path):
    home = tmp_path / "home"
    save_option(home, "llm/mock", "cycle", False)
    save_option(home, "llm/mock", "replies", ["x"])
    save_option(home, "llm/groq", "model", "m")
    assert read_options(home / "options.json") == {
        "llm/mock": {"cycle": False, "replies": ["x"]}, "llm/groq": {"model": "m"}
    }
    remove_options(home, "llm/mock", "cycle")
    assert read_options(home / "options.json")["llm/mock"] == {"replies": ["x"]}
    remove_options(home, "llm/mock")
    assert read_options(home / "options.json") == {"llm/groq": {"model": "m"}}
    with pytest.raises(ConfigError, match=r"no option 'model' is saved for llm/mock .*options.json"):
        remove_options(home, "llm/mock", "model")
    with pytest.raises(ConfigError, match="saved for llm/groq: model"):
        remove_options(home, "llm/groq", "temperature")
    assert not [p.name for p in home.iterdir() if p.name.startswith(".options.json.")]  # no temporary left


def test_an_unwritable_home_is_a_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(ConfigError, match=f"cannot save cycle for llm/mock .*{blocker}"):
        save_option(blocker / "home", "llm/mock", "cycle", False)


def test_removing_a_user_alias(tmp_path, manager, make_plugin):
    make_plugin("echo")
    save_user_alias(manager.home, "llm", "first", "echo", {"prefix": "1"})
    save_user_alias(manager.home, "llm", "second", "echo")
    assert manager.create_provider("llm", "first").prefix == "1"
    remove_user_alias(manager.home, "llm", "first")
    assert set(manager.aliases.user_aliases()) == {"llm/second"}
    with pytest.raises(ConfigError, match=r"has no alias llm/first \(its llm aliases: llm/second\)"):
        remove_user_alias(manager.home, "llm", "first")
    remove_user_alias(manager.home, "llm", "second")
    assert json.loads((manager.home / "aliases.json").read_text()) == {}


def test_a_corrupt_aliases_file_is_not_rewritten_by_remove(manager):
    manager.home.mkdir(parents=True)
    (manager.home / "aliases.json").write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        remove_user_alias(manager.home, "llm", "x")
    assert (manager.home / "aliases.json").read_text() == "{nope"


def test_key_helpers_give_names_and_sources_never_values(manager, make_plugin, monkeypatch):
    make_plugin("keyed", env={"api_key": "KEYED_API_KEY"}, aliases={"other": {"env": {"api_key": "OTHER_KEY"}}})
    save_key(manager.home, "SAVED_ONLY", "sentinel-value-1")
    save_key(manager.home, "KEYED_API_KEY", "sentinel-value-2")
    monkeypatch.setenv("KEYED_API_KEY", "sentinel-value-3")
    monkeypatch.delenv("OTHER_KEY", raising=False)
    assert list_key_names(manager.home) == ["KEYED_API_KEY", "SAVED_ONLY"]
    assert key_variables(manager) == {"KEYED_API_KEY": ["llm/keyed"], "OTHER_KEY": ["llm/other"]}
    sources = key_sources(manager.home, ["KEYED_API_KEY", "OTHER_KEY", "SAVED_ONLY"])
    assert sources == {"KEYED_API_KEY": ["environment", "keys.json"], "OTHER_KEY": [], "SAVED_ONLY": ["keys.json"]}
    assert "sentinel" not in repr(sources)


def test_keys_file_problems_are_named(tmp_path):
    assert keys_file_problem(tmp_path) is None
    (tmp_path / "keys.json").write_text('{"A": "b"}')
    assert keys_file_problem(tmp_path) is None
    (tmp_path / "keys.json").write_text("{oops")
    assert f"{tmp_path / 'keys.json'} is not valid JSON" in keys_file_problem(tmp_path)
    (tmp_path / "keys.json").write_text('["A"]')
    assert "must map variable names to keys" in keys_file_problem(tmp_path)
