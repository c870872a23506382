"""Provider contract v2: providers are ordinary Python classes; options are validated, nothing else is."""

from __future__ import annotations

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, InvalidInputError, PepperPyError, PluginError, PluginLoadError
from pepperpy.llm import LLMProvider, Message
from pepperpy.plugins import auto_context

ORDINARY_PROVIDER = '''
import httpx
from pydantic import Field, SecretStr

from pepperpy.llm import GenerationResult, LLMProvider


class ShoutProvider(LLMProvider):
    name = "shout"                        # a plain class attribute, not an option
    BASE_URL = "https://example.invalid"  # likewise
    suffix: str = "!"
    json: bool = False                    # names of pydantic methods are fine now
    schema: str = "plain"
    model: str = Field(description="which voice")
    api_key: SecretStr | None = None
    client: httpx.AsyncClient             # a bare annotation: a type hint, never an option
    _secret_sauce: int = 3                # underscore names are never options

    def __init__(self, **config):
        super().__init__(**config)
        self.calls = 0

    async def initialize(self):
        self.client = httpx.AsyncClient(base_url=self.BASE_URL)

    async def cleanup(self):
        await self.client.aclose()

    @property
    def loud(self):
        return self.suffix * 2

    async def generate(self, messages, **options):
        self.calls += 1
        self.last = messages
        return GenerationResult(content=messages[-1].content.upper() + self.suffix)
'''


@pytest.fixture
def shout(manager, make_plugin):
    make_plugin("shout", entry_point="provider:ShoutProvider", files={"provider.py": ORDINARY_PROVIDER})
    return manager


def test_plain_attributes_state_on_self_and_properties_are_ordinary_python(shout):
    provider = shout.create_provider("llm", "shout", model="tenor", json=True, schema="s")
    assert provider.name == "shout" and provider.plugin_id == "llm/shout"
    assert provider.BASE_URL == "https://example.invalid" and provider.loud == "!!"
    assert (provider.json, provider.schema, provider.calls, provider._secret_sauce) == (True, "s", 0, 3)
    assert set(type(provider).option_specs()) == {"suffix", "json", "schema", "model", "api_key"}
    provider.anything_else = [1, 2]
    assert provider.anything_else == [1, 2]


async def test_state_set_in_initialize_lives_on_self(shout):
    provider = shout.create_provider("llm", "shout", model="tenor")
    async with provider:
        assert not provider.client.is_closed
        assert (await provider.generate("hi")).content == "HI!"
    assert provider.client.is_closed


def test_options_are_validated_coerced_and_validated_again_on_assignment(shout):
    provider = shout.create_provider("llm", "shout", model="tenor", json="yes")
    assert provider.json is True
    with pytest.raises(ConfigError, match=r"option 'json' for llm/shout"):
        provider.json = "very"
    provider.suffix = "?"
    assert provider.suffix == "?"
    with pytest.raises(ConfigError, match=r"option 'suffix' for llm/shout"):
        provider.suffix = ["not", "text"]
    assert provider.suffix == "?"


def test_missing_required_and_unknown_options_say_what_to_do(shout):
    with pytest.raises(ConfigError, match=r"llm/shout needs the option 'model'; pass model=\.\.\."):
        shout.create_provider("llm", "shout")
    with pytest.raises(ConfigError, match=r"unknown option 'sufix' for llm/shout; did you mean 'suffix'\?"):
        shout.create_provider("llm", "shout", model="m", sufix="?")


def test_secret_options_stay_out_of_reprs(shout):
    provider = shout.create_provider("llm", "shout", model="m", api_key="sk-not-a-real-key-123")
    assert "sk-not-a-real-key-123" not in repr(provider)
    assert provider.api_key.get_secret_value() == "sk-not-a-real-key-123"


@pytest.mark.parametrize("reserved", ["name", "plugin_id", "alias", "initialized", "logger", "dependencies", "isolation"])
def test_an_option_with_a_reserved_name_is_refused_at_load(manager, make_plugin, reserved):
    source = f'''
from pepperpy.llm import GenerationResult, LLMProvider

class Reserved(LLMProvider):
    {reserved}: str = "x"

    async def generate(self, messages, **options):
        return GenerationResult(content="")
'''
    make_plugin("reserved", entry_point="provider:Reserved", files={"provider.py": source})
    with pytest.raises(PluginLoadError, match=rf"plugin llm/reserved.*may not be named '{reserved}'"):
        manager.create_provider("llm", "reserved")


def test_a_class_without_generate_is_refused_at_load_naming_plugin_and_method(manager, make_plugin):
    source = "from pepperpy.llm import LLMProvider\n\nclass Empty(LLMProvider):\n    pass\n"
    make_plugin("empty", entry_point="provider:Empty", files={"provider.py": source})
    with pytest.raises(PluginLoadError, match=r"plugin llm/empty .*Empty does not implement generate"):
        manager.create_provider("llm", "empty")
    manager.discover()
    assert "llm/empty" in manager.plugins, "the folder itself is valid; only its class is refused"


def test_a_sync_generate_is_refused_at_load_naming_the_method(manager, make_plugin):
    source = '''
from pepperpy.llm import GenerationResult, LLMProvider

class Sync(LLMProvider):
    def generate(self, messages, **options):
        return GenerationResult(content="")
'''
    make_plugin("sync", entry_point="provider:Sync", files={"provider.py": source})
    with pytest.raises(PluginLoadError, match=r"plugin llm/sync: .*Sync\.generate must be declared `async def`"):
        manager.create_provider("llm", "sync")


async def test_a_wrong_return_type_names_plugin_and_method(manager, make_plugin):
    source = '''
from pepperpy.llm import LLMProvider

class Text(LLMProvider):
    async def generate(self, messages, **options):
        return "just a string"

    async def generate_stream(self, messages, **options):
        yield "a string chunk"
'''
    make_plugin("text", entry_point="provider:Text", files={"provider.py": source})
    async with manager.create_provider("llm", "text") as provider:
        with pytest.raises(PluginError, match=r"llm/text: Text\.generate returned str; it must return .*GenerationResult"):
            await provider.generate("hi")
        with pytest.raises(PluginError, match=r"llm/text: Text\.generate_stream yielded str"):
            [chunk async for chunk in provider.generate_stream("hi")]


def test_a_failing_custom_init_names_the_plugin(manager, make_plugin):
    source = '''
from pepperpy.llm import GenerationResult, LLMProvider

class Broken(LLMProvider):
    def __init__(self, **config):
        super().__init__(**config)
        raise KeyError("lost")

    async def generate(self, messages, **options):
        return GenerationResult(content="")
'''
    make_plugin("broken", entry_point="provider:Broken", files={"provider.py": source})
    with pytest.raises(PluginError, match=r"plugin llm/broken: creating Broken failed with KeyError"):
        manager.create_provider("llm", "broken")


@pytest.mark.parametrize(
    "messages",
    ["What is the capital of France?", [{"role": "user", "content": "What is the capital of France?"}],
     [Message(role="user", content="What is the capital of France?")]],
    ids=["str", "dicts", "messages"],
)
async def test_generate_takes_a_str_dicts_or_messages_and_authors_get_messages(shout, messages):
    async with shout.create_provider("llm", "shout", model="m") as provider:
        assert (await provider.generate(messages)).content == "WHAT IS THE CAPITAL OF FRANCE?!"
        assert [type(m) for m in provider.last] == [Message]
        chunks = [c async for c in provider.generate_stream(messages)]
        assert chunks[0].content == "WHAT IS THE CAPITAL OF FRANCE?!"


async def test_invalid_messages_are_a_clear_input_error(shout):
    async with shout.create_provider("llm", "shout", model="m") as provider:
        with pytest.raises(InvalidInputError, match=r"llm/shout: generate\(\): .*role must be one of assistant, system, tool, user"):
            await provider.generate([{"role": "wizard", "content": "x"}])
        with pytest.raises(InvalidInputError, match="expected a str or a list of messages, got int"):
            await provider.generate(42)


async def test_using_an_unopened_provider_says_how_to_open_it(shout):
    provider = shout.create_provider("llm", "shout", model="m")
    with pytest.raises(ConfigError, match=r"llm/shout: generate\(\) needs the provider open, and it is not \(never opened, or closed already\); use `async with provider:`"):
        await provider.generate("hi")
    async with auto_context(provider) as opened:
        assert opened is provider and provider.initialized
        assert (await provider.generate("hi")).content == "HI!"
    assert not provider.initialized


TTS_PROVIDER = '''
from pepperpy.plugins import PepperpyPlugin


class SayPlugin(PepperpyPlugin):
    voice: str = "calm"

    async def initialize(self):
        self.engine = f"engine:{self.voice}"

    async def speak(self, text: str) -> str:
        return f"{self.engine} says {text}"
'''


async def test_a_new_category_needs_only_pepperpy_plugin(manager, make_plugin):
    make_plugin("say", category="tts", entry_point="provider:SayPlugin", files={"provider.py": TTS_PROVIDER})
    pepper = PepperPy(plugin_manager=manager).with_plugin("tts", "say", voice="warm")
    assert pepper.provider("tts").name == "say"
    async with pepper:
        assert await pepper.provider("tts").speak("hi") == "engine:warm says hi"
    async with manager.create_provider("tts", "say") as direct:
        assert await direct.speak("x") == "engine:calm says x"


def test_register_plugin_with_a_new_category(manager):
    from pepperpy.plugins import PepperpyPlugin

    class Beep(PepperpyPlugin):
        pitch: int = 440

    manager.register_plugin("sound", "beep", Beep)
    assert manager.create_provider("sound", "beep", pitch="880").pitch == 880
    with pytest.raises(PluginError, match="simple lowercase name"):
        manager.register_plugin("Bad Category", "beep", Beep)


def test_a_new_category_without_a_name_or_plugin_is_a_clear_error(manager):
    pepper = PepperPy(plugin_manager=manager)
    with pytest.raises(ConfigError, match=r"there is no default tts provider; name one: \.with_plugin\('tts', 'name'"):
        pepper.with_plugin("tts")
    with pytest.raises(PepperPyError, match="no tts plugin named 'say'"):
        pepper.with_plugin("tts", "say")
    with pytest.raises(ConfigError, match=r"no tts provider is configured; call \.with_plugin\('tts', \.\.\.\) first"):
        pepper.provider("tts")


def test_pepperpy_plugins_exports_the_plugin_api():
    import pepperpy.plugins as plugins
    from pepperpy.core import PepperpyPlugin
    from pepperpy.embeddings import EmbeddingProvider
    from pepperpy.rag import RAGProvider
    from pepperpy.storage import StorageProvider

    for name in ("PepperpyPlugin", "create_provider_instance", "register_plugin", "register_plugin_path",
                 "get_plugin_manager", "auto_context", "LLMProvider", "EmbeddingProvider", "RAGProvider", "StorageProvider"):
        assert getattr(plugins, name) is not None, name
    for base in (LLMProvider, EmbeddingProvider, RAGProvider, StorageProvider):
        assert issubclass(base, PepperpyPlugin)


def test_import_pepperpy_plugins_stays_light():
    import subprocess
    import sys

    code = "import sys, pepperpy.plugins; print(sorted(m for m in ('pydantic', 'httpx', 'pepperpy.core') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_plugins_named_my_dash_x_and_my_underscore_x_get_separate_modules(manager, make_plugin):
    for name, prefix in (("my-x", "dash"), ("my_x", "underscore")):
        make_plugin(name, files={
            "provider.py": "from .helpers import PREFIX\n" + '''
from pepperpy.llm import GenerationResult, LLMProvider


class EchoProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=PREFIX)
''',
            "helpers.py": f"PREFIX = {prefix!r}\n",
        })
    dash, underscore = manager.load_class("llm", "my-x"), manager.load_class("llm", "my_x")
    assert dash.__module__ != underscore.__module__
    import sys

    assert sys.modules[dash.__module__.rsplit(".", 1)[0] + ".helpers"].PREFIX == "dash"
    assert sys.modules[underscore.__module__.rsplit(".", 1)[0] + ".helpers"].PREFIX == "underscore"


def test_data_paths_derive_from_the_managers_home(builtin_manager, tmp_path):
    storage = builtin_manager.create_provider("storage", "local")
    assert storage.root == tmp_path / "home" / "storage"
    assert storage.data_path("x", "y") == tmp_path / "home" / "x" / "y"


async def test_call_options_are_checked_by_name_and_type_for_every_llm(shout):
    pepper = PepperPy(plugin_manager=shout).with_llm("shout", model="m")
    async with pepper:
        with pytest.raises(ConfigError, match=r"llm/shout: unknown call option 'tempurature'; did you mean 'temperature'\?"):
            await pepper.chat.with_user("q").with_options(tempurature=1).generate()
        with pytest.raises(ConfigError, match=r"call option 'timeout' must be a positive number of seconds, got str 'soon'"):
            await pepper.chat.with_user("q").with_options(timeout="soon").generate()
        with pytest.raises(ConfigError, match=r"call option 'max_tokens' must be a whole number"):
            [c async for c in pepper.chat.with_user("q").with_options(max_tokens=1.5).stream()]
        assert (await pepper.chat.with_user("q").with_options(temperature=0.2, seed=1).generate()).content == "Q!"


def test_a_category_typo_gets_a_suggestion(manager, make_plugin):
    make_plugin("say", category="tts", entry_point="provider:SayPlugin", files={"provider.py": TTS_PROVIDER})
    with pytest.raises(PepperPyError, match=r"did you mean the category 'tts'\?"):
        manager.create_provider("tss", "say")


SLOW_STREAM = '''
import asyncio

from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider


class Slow(LLMProvider):
    gap: float = 0.0

    async def generate(self, messages, **options):
        return GenerationResult(content="")

    async def generate_stream(self, messages, **options):
        for word in ("one ", "two ", "three"):
            yield GenerationChunk(content=word)
            await asyncio.sleep(self.gap)
'''


async def test_a_stream_gap_longer_than_the_timeout_raises_and_nothing_is_cancelled_later(manager, make_plugin):
    import asyncio

    from pepperpy.errors import LLMTimeoutError

    make_plugin("slow", entry_point="provider:Slow", files={"provider.py": SLOW_STREAM})
    async with manager.create_provider("llm", "slow", gap=0.3) as slow:
        received = []
        with pytest.raises(LLMTimeoutError, match=r"timeout=0.05s between two chunks"):
            async for chunk in slow.generate_stream("hi", timeout=0.05):
                received.append(chunk.content)
        assert received == ["one "]
        await asyncio.sleep(0.2)  # a stray timer would cancel this task here


async def test_the_consumers_time_between_chunks_is_not_counted(manager, make_plugin):
    import asyncio

    make_plugin("slow", entry_point="provider:Slow", files={"provider.py": SLOW_STREAM})
    async with manager.create_provider("llm", "slow") as slow:
        received = []
        async for chunk in slow.generate_stream("hi", timeout=0.05):
            received.append(chunk.content)
            await asyncio.sleep(0.12)  # the consumer is slow, the provider is not
        assert "".join(received) == "one two three"


async def test_a_gap_times_out_in_the_task_that_waits_when_a_stream_changes_tasks(manager, make_plugin):
    """The deadline follows the task waiting for the chunk, not the task that began the stream."""
    import asyncio

    from pepperpy.errors import LLMTimeoutError

    make_plugin("slow", entry_point="provider:Slow", files={"provider.py": SLOW_STREAM})
    async with manager.create_provider("llm", "slow", gap=0.3) as slow:
        stream = slow.generate_stream("hi", timeout=0.05)
        first = await asyncio.create_task(anext(stream))
        with pytest.raises(LLMTimeoutError, match=r"timeout=0.05s between two chunks"):
            await asyncio.create_task(anext(stream))
        assert first.content == "one "
        await asyncio.sleep(0.2)  # this task, which began nothing, is not cancelled either


async def test_aclose_closes_a_provider_that_opened_itself(manager, make_plugin):
    source = TTS_PROVIDER.replace(
        "    async def speak(self, text: str) -> str:\n",
        "    async def speak(self, text: str) -> str:\n        if not self.initialized:\n            await self.initialize()\n",
    )
    make_plugin("say", category="tts", entry_point="provider:SayPlugin", files={"provider.py": source})
    pepper = PepperPy(plugin_manager=manager).with_plugin("tts", "say")
    assert await pepper.provider("tts").speak("hi") == "engine:calm says hi"
    assert pepper.provider("tts").initialized
    await pepper.aclose()
    assert not pepper.provider("tts").initialized
