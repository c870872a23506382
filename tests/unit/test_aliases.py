"""Aliases: registered in code, saved in <home>/aliases.json or in manifests; chains, cycles, config precedence.

Also the environment defaults of the OpenAI plugins (OPENAI_BASE_URL) and their precedence.
"""

from __future__ import annotations

import json

import pytest

from pepperpy import PepperPy
from pepperpy._aliases import save_user_alias
from pepperpy._config import save_key
from pepperpy.errors import ConfigError, PluginError, PluginNotFoundError
from pepperpy.plugin_manager import PluginManager

MODEL_PROVIDER = '''
from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    model: str = "small"
    temperature: float = 1.0
    prefix: str = ""

    async def generate(self, messages, **options):
        return GenerationResult(content=f"{self.prefix}{self.model}")
'''


@pytest.fixture
def echo(make_plugin):
    return make_plugin(
        "echo",
        files={"provider.py": MODEL_PROVIDER},
        config={"model": "from-manifest"},
        aliases={"big": {"config": {"model": "big-model", "temperature": 0.5}}},
    )


def options(provider) -> tuple:
    return provider.model, provider.temperature, provider.prefix


def test_a_code_alias_presets_config_and_keeps_the_plugins_identity(manager, echo):
    manager.register_plugin_alias("llm", "gpt4", "echo", {"model": "gpt-4"})
    provider = manager.create_provider("llm", "gpt4")
    assert options(provider) == ("gpt-4", 1.0, "")
    assert (provider.name, provider.plugin_id, provider.alias) == ("echo", "llm/echo", "gpt4")
    assert manager.create_provider("llm", "echo").alias is None
    assert manager.resolve("llm", "gpt4")[0].id == "llm/echo"


def test_explicit_config_overrides_the_alias(manager, echo):
    manager.register_plugin_alias("llm", "gpt4", "echo", {"model": "gpt-4", "prefix": "> "})
    assert options(manager.create_provider("llm", "gpt4", model="explicit")) == ("explicit", 1.0, "> ")


def test_an_alias_of_an_alias_nearer_presets_win(manager, echo):
    manager.register_plugin_alias("llm", "base", "echo", {"model": "base-model", "prefix": "base:"})
    manager.register_plugin_alias("llm", "tuned", "base", {"prefix": "tuned:"})
    provider = manager.create_provider("llm", "tuned")
    assert options(provider) == ("base-model", 1.0, "tuned:")
    assert (provider.plugin_id, provider.alias) == ("llm/echo", "tuned")
    assert options(manager.create_provider("llm", "tuned", prefix="")) == ("base-model", 1.0, "")


def test_a_code_alias_of_a_manifest_alias(manager, echo):
    manager.register_plugin_alias("llm", "big-cold", "big", {"temperature": 0.0})
    provider = manager.create_provider("llm", "big-cold")
    assert options(provider) == ("big-model", 0.0, "")
    assert (provider.name, provider.alias) == ("echo", "big-cold")


def test_a_cycle_is_an_error_showing_it(manager, echo):
    manager.register_plugin_alias("llm", "a", "b")
    manager.register_plugin_alias("llm", "b", "a")
    with pytest.raises(ConfigError, match=r"alias cycle: llm/a -> llm/b -> llm/a"):
        manager.create_provider("llm", "a")
    manager.register_plugin_alias("llm", "c", "a")
    with pytest.raises(ConfigError, match=r"alias cycle: llm/a -> llm/b -> llm/a"):
        manager.resolve("llm", "c")
    manager.register_plugin_alias("llm", "self", "self")
    with pytest.raises(ConfigError, match=r"alias cycle: llm/self -> llm/self"):
        manager.create_provider("llm", "self")


def test_an_alias_of_nothing_names_the_chain_and_suggests(manager, echo):
    manager.register_plugin_alias("llm", "gpt4", "ecko")
    with pytest.raises(PluginNotFoundError) as raised:
        manager.create_provider("llm", "gpt4")
    message = str(raised.value)
    assert "llm/gpt4 -> llm/ecko" in message and "register_plugin_alias" in message and "llm/echo" in message


def test_an_alias_cannot_take_a_plugins_name_or_a_bad_one(manager, echo):
    with pytest.raises(PluginError, match="llm/echo is a plugin"):
        manager.register_plugin_alias("llm", "echo", "big")
    with pytest.raises(ConfigError, match="category"):
        manager.register_plugin_alias("LLM", "x", "echo")
    with pytest.raises(ConfigError, match="target"):
        manager.register_plugin_alias("llm", "x", "llm/echo")
    with pytest.raises(ConfigError, match="config"):
        manager.register_plugin_alias("llm", "x", "echo", ["model"])  # type: ignore[arg-type]


def test_user_aliases_from_aliases_json(manager, echo, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    (home / "aliases.json").write_text(json.dumps({"llm": {"mine": {"target": "big", "config": {"prefix": "me:"}}}}))
    provider = manager.create_provider("llm", "mine")
    assert options(provider) == ("big-model", 0.5, "me:")
    assert (provider.plugin_id, provider.alias) == ("llm/echo", "mine")
    # a code alias of the same name wins over the file's
    manager.register_plugin_alias("llm", "mine", "echo", {"prefix": "code:"})
    assert options(manager.create_provider("llm", "mine")) == ("from-manifest", 1.0, "code:")


def test_aliases_json_is_read_again_when_it_changes(manager, echo, tmp_path):
    home = tmp_path / "home"
    with pytest.raises(PluginNotFoundError):
        manager.create_provider("llm", "saved")
    path = save_user_alias(home, "llm", "saved", "echo", {"model": "saved-model"}, description="for tests")
    assert path == home / "aliases.json"
    assert options(manager.create_provider("llm", "saved")) == ("saved-model", 1.0, "")
    save_user_alias(home, "llm", "other", "saved", {"prefix": "o:"})  # keeps the first one
    assert options(manager.create_provider("llm", "other")) == ("saved-model", 1.0, "o:")
    assert set(json.loads(path.read_text())["llm"]) == {"saved", "other"}


@pytest.mark.parametrize(
    "content, problem",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "must be a JSON object"),
        ('{"llm": {"x": {"config": {}}}}', "must be an object with a 'target'"),
        ('{"llm": {"x": {"target": "echo", "confg": {}}}}', "unknown field 'confg'"),
        ('{"llm": {"x": {"target": "echo", "config": [1]}}}', "config of llm/x"),
    ],
)
def test_a_corrupt_aliases_json_is_an_error_naming_it(manager, echo, tmp_path, content, problem):
    path = tmp_path / "home" / "aliases.json"
    path.parent.mkdir()
    path.write_text(content)
    with pytest.raises(ConfigError) as raised:
        manager.create_provider("llm", "x")
    assert str(path) in str(raised.value) and problem in str(raised.value)
    assert manager.create_provider("llm", "echo").model == "from-manifest"  # plugins by name still work
    with pytest.raises(ConfigError, match="aliases.json"):
        save_user_alias(tmp_path / "home", "llm", "y", "echo")  # never overwrites it


def test_an_alias_of_a_class_registered_in_code(manager):
    from pepperpy.llm import GenerationResult, LLMProvider

    class Shout(LLMProvider):
        suffix: str = "!"

        async def generate(self, messages, **options):
            return GenerationResult(content=messages[-1].content.upper() + self.suffix)

    manager.register_plugin("llm", "shout", Shout)
    manager.register_plugin_alias("llm", "loud", "shout", {"suffix": "!!!"})
    provider = manager.create_provider("llm", "loud")
    assert (provider.suffix, provider.plugin_id, provider.alias) == ("!!!", "llm/shout", "loud")


async def test_with_llm_resolves_an_alias(manager, echo):
    manager.register_plugin_alias("llm", "gpt4", "echo", {"model": "gpt-4"})
    async with PepperPy(plugin_manager=manager).with_llm("gpt4", prefix="says ") as pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "says gpt-4"
        assert (pepper.llm.name, pepper.llm.plugin_id, pepper.llm.alias) == ("echo", "llm/echo", "gpt4")
    assert manager.load_class("llm", "gpt4") is manager.load_class("llm", "echo")
    assert manager.needs_install("llm", "gpt4") is False


def test_register_plugin_alias_and_create_provider_instance_use_the_process_wide_manager(manager, echo, monkeypatch):
    import pepperpy
    from pepperpy.plugins import create_provider_instance, register_plugin_alias

    assert pepperpy.register_plugin_alias is register_plugin_alias
    monkeypatch.setattr(PluginManager, "_instance", manager)
    register_plugin_alias("llm", "gpt4", "echo", {"model": "gpt-4"})
    assert manager.aliases.get("llm", "gpt4") is not None
    provider = create_provider_instance("llm", "gpt4", prefix="k")
    assert (options(provider), provider.name, provider.alias) == (("gpt-4", 1.0, "k"), "echo", "gpt4")


# -- environment defaults ------------------------------------------------------------


@pytest.fixture
def clean_openai_env(monkeypatch):
    for variable in ("OPENAI_BASE_URL", "OPENAI_API_KEY", "GROQ_API_KEY", "OPENROUTER_API_KEY"):
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    return monkeypatch


@pytest.mark.parametrize("category", ["llm", "embeddings"])
def test_openai_base_url_precedence(builtin_manager, clean_openai_env, category):
    create = builtin_manager.create_provider
    assert create(category, "openai").base_url == "https://api.openai.com/v1"  # the plugin's default
    clean_openai_env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    assert create(category, "openai").base_url == "http://127.0.0.1:9999/v1"  # the variable beats the default
    assert create(category, "ollama").base_url == "http://127.0.0.1:11434/v1"  # a preset's own URL beats it
    assert create(category, "openai", base_url="http://explicit/v1").base_url == "http://explicit/v1"
    assert create(category, "ollama", base_url="http://explicit/v1").base_url == "http://explicit/v1"


def test_openai_base_url_under_a_code_alias_and_groq(builtin_manager, clean_openai_env):
    clean_openai_env.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    clean_openai_env.setenv("GROQ_API_KEY", "gsk-test")
    builtin_manager.register_plugin_alias("llm", "gpt4", "openai", {"model": "gpt-4"})
    gpt4 = builtin_manager.create_provider("llm", "gpt4", api_key="explicit")
    assert (gpt4.base_url, gpt4.model) == ("http://127.0.0.1:9999/v1", "gpt-4")
    assert gpt4.api_key.get_secret_value() == "explicit"
    assert (gpt4.name, gpt4.plugin_id, gpt4.alias) == ("openai", "llm/openai", "gpt4")
    groq = builtin_manager.create_provider("llm", "groq")
    assert groq.base_url == "https://api.groq.com/openai/v1" and groq.api_key.get_secret_value() == "gsk-test"
    builtin_manager.register_plugin_alias("llm", "groq-big", "groq", {"model": "llama-3.3-70b-versatile"})
    big = builtin_manager.create_provider("llm", "groq-big")
    assert (big.base_url, big.model, big.alias) == (groq.base_url, "llama-3.3-70b-versatile", "groq-big")


def test_keys_keep_their_precedence_under_aliases(builtin_manager, clean_openai_env, tmp_path):
    from pepperpy.errors import MissingKeyError

    clean_openai_env.delenv("OPENAI_API_KEY")
    save_key(tmp_path / "home", "OPENAI_API_KEY", "from-file")
    builtin_manager.register_plugin_alias("llm", "gpt4", "openai", {"model": "gpt-4"})
    key = lambda provider: provider.api_key.get_secret_value()  # noqa: E731
    assert key(builtin_manager.create_provider("llm", "gpt4")) == "from-file"
    clean_openai_env.setenv("OPENAI_API_KEY", "from-env")
    assert key(builtin_manager.create_provider("llm", "gpt4")) == "from-env"
    assert key(builtin_manager.create_provider("llm", "gpt4", api_key="explicit")) == "explicit"
    # openrouter maps api_key to its own variable: never OpenAI's key
    with pytest.raises(MissingKeyError, match="OPENROUTER_API_KEY"):
        builtin_manager.create_provider("llm", "openrouter")
    clean_openai_env.setenv("OPENROUTER_API_KEY", "or-key")
    assert key(builtin_manager.create_provider("llm", "openrouter")) == "or-key"
    builtin_manager.register_plugin_alias("llm", "router", "openrouter", {"model": "x/y"})
    routed = builtin_manager.create_provider("llm", "router")
    assert (key(routed), routed.base_url, routed.alias) == ("or-key", "https://openrouter.ai/api/v1", "router")


def test_an_alias_may_map_an_option_to_its_own_variable(builtin_manager, clean_openai_env):
    clean_openai_env.setenv("WORK_OPENAI_KEY", "work-key")
    builtin_manager.register_plugin_alias("llm", "work", "openai", {"model": "gpt-4"}, env={"api_key": "WORK_OPENAI_KEY"})
    assert builtin_manager.create_provider("llm", "work").api_key.get_secret_value() == "work-key"
    clean_openai_env.delenv("WORK_OPENAI_KEY")
    with pytest.raises(ConfigError, match="WORK_OPENAI_KEY"):  # never falls back to OPENAI_API_KEY
        builtin_manager.create_provider("llm", "work")


async def test_an_alias_of_a_class_registered_in_code_works_inside_a_running_loop(manager):
    from pepperpy import PepperPy
    from pepperpy.llm import GenerationResult, LLMProvider

    class Registered(LLMProvider):
        tone: str = "plain"

        async def generate(self, messages, **options):
            return GenerationResult(content=f"{self.tone}: {messages[-1].content}")

    manager.register_plugin("llm", "registered", Registered)
    manager.register_plugin_alias("llm", "loud", "registered", {"tone": "LOUD"})
    assert manager.load_class("llm", "loud") is Registered
    assert not manager.needs_install("llm", "loud")
    async with PepperPy(plugin_manager=manager).with_llm("loud") as pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "LOUD: hi"
        assert pepper.llm.alias == "loud"
