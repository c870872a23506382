"""Process isolation with real parts: real worker processes in real ``uv venv`` environments, real kills.

The plugins are folders written here; each runs in its own worker process. One home is shared by
the module's tests so that each worker env is created once (by uv, for real).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from contextlib import aclosing
from pathlib import Path
from typing import Any, Self

import pytest
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, LLMError, PluginError, ProviderError, RateLimitError
from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.plugin_manager import PluginManager

pytestmark = pytest.mark.integration

PROBE = '''
import asyncio, json, os, sys
from pepperpy.errors import LLMError, RateLimitError
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message, MessageRole, ToolCall


class QuotaError(RateLimitError):
    """A plugin's own error class: the parent sees its PepperPy base."""


class ProbeLLM(LLMProvider):
    """Answers with facts about the process it runs in; some prompts fail or block on purpose."""

    count_file: str = ""
    total_chunks: int = 10000

    async def generate(self, messages, **options):
        last = messages[-1]
        text = last.content or ""
        if last.role == MessageRole.TOOL:
            return GenerationResult(content=f"tool said: {text}", messages=list(messages))
        if options.get("tools"):
            tool = options["tools"][0]
            call = ToolCall(id="call-1", name=tool.name, arguments={"a": 2, "b": 3})
            answer = Message(role=MessageRole.ASSISTANT, content=None, tool_calls=[call])
            return GenerationResult(content="", messages=[*messages, answer], tool_calls=[call],
                                    metadata={"parameters": sorted(tool.parameters["properties"])})
        model = options.get("response_model")
        if model is not None:
            schema = model.model_json_schema()
            return GenerationResult(content=json.dumps({"name": "Ada", "age": 36}),
                                    metadata={"schema_title": schema.get("title"), "model": model.__name__})
        if text == "raise-llm":
            raise LLMError("llm/probe: the model refused")
        if text == "raise-value":
            raise ValueError("a plain bug in the plugin")
        if text == "raise-quota":
            raise QuotaError("llm/probe: quota exhausted", status_code=429)
        if text == "sleep":
            print("probe: about to sleep", file=sys.stderr, flush=True)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                if self.count_file:
                    with open(self.count_file + ".cancelled", "w") as handle:
                        handle.write("cancelled")
                raise
        if text == "block":
            import time
            time.sleep(3600)  # blocks the worker's loop: only the stdin watch thread can notice the parent's death
        if text == "print":
            print("this goes to stderr, not into the protocol")
        info = {"pid": os.getpid(), "prefix": sys.prefix, "isolation": self.isolation}
        return GenerationResult(content=json.dumps(info))

    async def generate_stream(self, messages, **options):
        if messages[-1].content == "raise-value":
            raise ValueError("a plain bug in the stream")
        produced = 0
        try:
            for produced in range(1, self.total_chunks + 1):
                with open(self.count_file, "w") as handle:
                    handle.write(str(produced))
                yield GenerationChunk(content=f"{produced} ")
                await asyncio.sleep(0.005)
        finally:
            with open(self.count_file + ".stopped", "w") as handle:
                handle.write(str(produced))
'''

SAY = '''
import os
from pepperpy.core import PepperpyPlugin


class SayPlugin(PepperpyPlugin):
    """A custom category: its public async methods are forwarded by name."""

    voice: str = "robot"
    api_token: str = ""

    async def initialize(self):
        self.opened_in = os.getpid()

    async def speak(self, text: str, loud: bool = False) -> bytes:
        spoken = f"{self.voice}: {text.upper() if loud else text}"
        return spoken.encode() + bytes([0, 255])

    async def describe_voice(self) -> dict:
        return {"voice": self.voice, "pid": os.getpid()}

    async def words(self, text: str):
        for word in text.split():
            yield word

    async def check_token(self):
        from pepperpy.errors import AuthenticationError
        raise AuthenticationError(f"the service rejected the token {self.api_token}", status_code=401)

    async def fail(self):
        raise ValueError("boom")

    async def words_then_fail(self):
        yield "first"
        raise KeyError("no second word")

    async def refuse(self):
        from pepperpy.errors import InvalidInputError
        raise InvalidInputError("tts/say: nothing to say")

    def _not_forwarded(self):
        return "a private plain method stays in the worker"
'''

# toml, a small package with two releases that no test dependency brings in (six came with botocore's dateutil).
TOML_VERSION = '''
import toml
from pepperpy.core import PepperpyPlugin
from pepperpy.llm import GenerationResult, LLMProvider


class TomlLLM(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=f"{toml.__version__} {toml.__file__}")


class TomlPlugin(PepperpyPlugin):
    async def version(self) -> str:
        return f"{toml.__version__} {toml.__file__}"
'''

TOY_EMBEDDINGS = '''
from pepperpy.embeddings import EmbeddingProvider


class ToyEmbeddings(EmbeddingProvider):
    """Letter counts: deterministic vectors without a model."""

    model: str = "letters-v1"

    async def embed(self, texts):
        return [[float(text.lower().count(letter)) for letter in "abcdefghijklmnopqrstuvwxyz"] for text in texts]
'''

TOY_STORE = '''
import math, os
from pepperpy.rag import RAGProvider, SearchResult


class ToyStore(RAGProvider):
    """An in-memory vector store that records the embedding model it was given."""

    def __init__(self, **config):
        super().__init__(**config)
        self.rows = {}

    async def add(self, documents, vectors=None):
        vectors = vectors if vectors is not None else await self.embed_texts([d.text for d in documents])
        for document, vector in zip(documents, vectors):
            document.metadata["model"] = self.embedding_model
            document.metadata["pid"] = os.getpid()
            self.rows[document.id] = (document, vector)

    async def search(self, query, k=5, filter=None):
        vector = await self.query_vector(query)

        def cosine(other):
            dot = sum(a * b for a, b in zip(vector, other))
            norms = math.sqrt(sum(a * a for a in vector)) * math.sqrt(sum(b * b for b in other))
            return dot / norms if norms else 0.0

        scored = [SearchResult(document=d, score=cosine(v)) for d, v in self.rows.values()]
        return sorted(scored, key=lambda r: r.score, reverse=True)[:k]

    async def delete(self, ids):
        for id_ in ids:
            self.rows.pop(id_, None)

    async def count(self):
        return len(self.rows)

    async def ids(self, filter):
        return [i for i, (d, _) in self.rows.items() if all(d.metadata.get(k) == v for k, v in filter.items())]
'''


SYNC_METHOD = '''
from pepperpy.core import PepperpyPlugin
from pepperpy.http import RemoteProvider


class SyncyPlugin(PepperpyPlugin):
    """A custom category with a public plain method: fine in-process, it cannot cross to a worker."""

    async def speak(self, text: str) -> str:
        return text

    def volume(self) -> int:
        return 11

    @staticmethod
    def pitch() -> str:
        return "high"


class RemoteSpeaker(RemoteProvider):
    """A custom category over HTTP: ``headers()`` is RemoteProvider's hook, not part of its interface."""

    def headers(self):
        return {"authorization": self.api_key}

    async def speak(self, text: str) -> str:
        return text
'''


ASKER = '''
import os
from pepperpy.core import PepperpyPlugin
from pepperpy.llm import LLMProvider


class AskerPlugin(PepperpyPlugin):
    """A custom category that uses the facade's LLM (required) and a storage (optional, loaded at first use)."""

    async def ask(self, text: str, **options) -> dict:
        llm = self.dependencies["llm"]
        result = await llm.generate(text, **options)
        return {"answer": result.content, "keys": sorted(self.dependencies), "llm": llm.plugin_id,
                "is_llm": isinstance(llm, LLMProvider), "open": llm.initialized, "pid": os.getpid()}

    async def ask_stream(self, text: str):
        async for chunk in self.dependencies["llm"].generate_stream(text):
            yield chunk.content

    async def note(self, key: str, value: str) -> list:
        first_use = self.dependency("storage") is None
        storage = self.dependency("storage") or await self.load_dependency("storage")
        await storage.set(key, value.encode())
        return [first_use, storage.plugin_id, (await storage.get(key)).decode(), await storage.list("")]
'''


COUNTER = '''
from pepperpy.llm import GenerationResult, LLMProvider


class CounterLLM(LLMProvider):
    """Appends a line to ``calls_file`` for every call it serves: the test counts them across the process."""

    prefix: str = ""
    shout: bool = False
    calls_file: str = ""
    max_tokens: int = 0
    api_key: str = ""
    credentials: str = ""

    async def generate(self, messages, **options):
        with open(self.calls_file, "a") as handle:
            handle.write("call\\n")
        text = self.prefix + (messages[-1].content or "")
        return GenerationResult(content=text.upper() if self.shout else text)
'''

NOISY = '''
import sys
from pepperpy.errors import ConfigError
from pepperpy.llm import GenerationResult, LLMProvider

print("noisy: importing the plugin", file=sys.stderr, flush=True)


class NoisyLLM(LLMProvider):
    """Writes to stderr when it loads, then fails to open."""

    async def initialize(self):
        raise ConfigError("llm/noisy: the service refused the setup")

    async def generate(self, messages, **options):
        return GenerationResult(content="never")
'''

CHATTY = '''
import asyncio
from pepperpy.llm import GenerationResult, LLMProvider


class ChattyLLM(LLMProvider):
    """Logs through ``self.logger`` when it opens and on each call: from its loop, from a thread, an exception."""

    async def initialize(self):
        self.logger.info("chatty: opened with {} braces {{kept}}", "format")
        self.logger.debug("chatty: a debug line")

    async def generate(self, messages, **options):
        self.logger.bind(call="c1").warning("chatty: answering {}", messages[-1].content)
        await asyncio.to_thread(self.logger.info, "chatty: from a thread")
        try:
            1 / 0
        except ZeroDivisionError:
            self.logger.exception("chatty: it failed")
        return GenerationResult(content="ok")
'''

UNIDECODE = '''
from text_unidecode import unidecode
from pepperpy.llm import GenerationResult, LLMProvider


class UnidecodeLLM(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content=unidecode(messages[-1].content))
'''


def write_plugin(root: Path, name: str, category: str, source: str, entry: str, requirements: str = "",
                 **manifest: Any) -> Path:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "plugin.json").write_text(json.dumps({
        "name": name, "version": "0.1.0", "category": category, "provider_name": name,
        "description": f"isolation test plugin {name}", "entry_point": f"provider:{entry}", "author": "tests",
        "pepperpy_compatibility": ">=0.1.0", **manifest,
    }))
    (folder / "provider.py").write_text(textwrap.dedent(source))
    if requirements:
        (folder / "requirements.txt").write_text(requirements)
    return folder


@pytest.fixture(scope="module")
def plugin_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("isolated-plugins")
    write_plugin(root, "probe", "llm", PROBE, "ProbeLLM", isolation="process")
    write_plugin(root, "say", "tts", SAY, "SayPlugin", isolation="process")
    write_plugin(root, "syncy", "tts", SYNC_METHOD, "SyncyPlugin", isolation="process")
    write_plugin(root, "remotey", "tts", SYNC_METHOD, "RemoteSpeaker", isolation="process")
    write_plugin(root, "asker", "quiz", ASKER, "AskerPlugin", isolation="process", dependencies=[
        {"type": "llm"}, {"type": "storage", "provider": "local", "dependency_type": "optional"}])
    write_plugin(root, "toyembed", "embeddings", TOY_EMBEDDINGS, "ToyEmbeddings", isolation="process")
    write_plugin(root, "toystore", "rag", TOY_STORE, "ToyStore", isolation="process")
    write_plugin(root, "tomlold", "llm", TOML_VERSION, "TomlLLM", "toml==0.10.1\n", isolation="process")
    write_plugin(root, "tomlnew", "tomler", TOML_VERSION, "TomlPlugin", "toml==0.10.2\n", isolation="process")
    write_plugin(root, "counter", "llm", COUNTER, "CounterLLM", isolation="process", config={"prefix": "c> "})
    write_plugin(root, "noisy", "llm", NOISY, "NoisyLLM", isolation="process")
    write_plugin(root, "chatty", "llm", CHATTY, "ChattyLLM", isolation="process")
    return root


@pytest.fixture(scope="module")
def iso_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("isolation-home")


@pytest.fixture
def iso_manager(plugin_root: Path, iso_home: Path) -> PluginManager:
    from pepperpy.plugin_manager import builtin_plugins_dir

    return PluginManager(search_paths=[builtin_plugins_dir(), plugin_root], home=iso_home)


def facts(result: GenerationResult) -> dict[str, Any]:
    return json.loads(result.content)


def wait_until(condition: Any, timeout_s: float = 30.0, what: str = "the condition") -> None:
    """Poll ``condition`` until it holds; the deadline only bounds a hang (no duration is asserted)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout_s}s")
        time.sleep(0.02)


def pid_alive(pid: int) -> bool:
    """True while any thread of process ``pid`` runs (a zombie, exited but not reaped yet, counts as gone;
    its threads are checked one by one: the first one can be a zombie while another still holds its pipes)."""
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return False
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


# -- step 1: the base -------------------------------------------------------------------


async def test_manifest_isolation_runs_the_plugin_in_its_own_venv(iso_manager: PluginManager, iso_home: Path) -> None:
    provider = iso_manager.create_provider("llm", "probe")
    assert isinstance(provider, LLMProvider)
    assert (provider.plugin_id, provider.name, provider.isolation) == ("llm/probe", "probe", "process")
    async with provider:
        info = facts(await provider.generate("who are you?"))
    assert info["pid"] != os.getpid()
    assert info["isolation"] == "process"  # the provider inside the worker knows it, too
    assert Path(info["prefix"]).parent == iso_home / "envs"  # the plugin's own venv, made by uv
    venv = Path(info["prefix"])
    assert (venv / "pyvenv.cfg").is_file()
    assert (venv / "pepperpy-host" / "pepperpy").resolve() == Path(__import__("pepperpy").__file__).parent.resolve()
    assert provider.worker_pid is None  # stopped with the provider


async def test_config_isolation_isolates_a_builtin_plugin_and_the_facade_cannot_tell(iso_manager: PluginManager) -> None:
    pepper = PepperPy(plugin_manager=iso_manager).with_llm("mock", isolation="process", replies=["one two three"])
    async with pepper:
        llm = pepper.llm
        assert llm.isolation == "process" and llm.worker_pid not in (None, os.getpid())
        result = await pepper.chat.with_user("hi").generate()
        chunks = [chunk async for chunk in pepper.chat.with_user("hi").stream()]
    assert result.content == "one two three" and result.usage.completion_tokens == 3
    assert [c.content for c in chunks] == ["one ", "two ", "three", ""]  # chunk by chunk, as in-process
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage is not None


async def test_the_worker_is_kept_warm_between_calls(iso_manager: PluginManager) -> None:
    async with iso_manager.create_provider("llm", "probe") as provider:
        first = facts(await provider.generate("a"))["pid"]
        second = facts(await provider.generate("b"))["pid"]
        assert first == second == provider.worker_pid


async def test_print_in_a_plugin_goes_to_stderr_not_into_the_protocol(iso_manager: PluginManager) -> None:
    async with iso_manager.create_provider("llm", "probe") as provider:
        assert facts(await provider.generate("print"))["isolation"] == "process"
        assert facts(await provider.generate("again"))["isolation"] == "process"


async def test_a_bad_isolation_value_is_a_config_error(iso_manager: PluginManager) -> None:
    with pytest.raises(ConfigError, match=r"llm/mock: isolation='threads' is not a valid setting"):
        iso_manager.create_provider("llm", "mock", isolation="threads")


async def test_an_unknown_option_fails_with_its_pepperpy_type_when_the_provider_opens(iso_manager: PluginManager) -> None:
    provider = iso_manager.create_provider("llm", "mock", isolation="process", replys=["x"])
    with pytest.raises(ConfigError, match=r"unknown option 'replys' for llm/mock; did you mean 'replies'"):
        await provider.initialize()
    assert not provider.initialized


async def test_an_option_that_is_not_json_is_refused_at_creation(iso_manager: PluginManager) -> None:
    with pytest.raises(ConfigError, match=r"llm/mock: option 'replies' cannot be sent to the plugin's worker process"):
        iso_manager.create_provider("llm", "mock", isolation="process", replies=[object()])


# -- step 2: everything works through the facade -------------------------------------------


def add(a: int, b: int) -> int:
    """Add two numbers."""
    return a + b


async def test_tool_calls_come_back_and_tools_run_in_the_parent(iso_manager: PluginManager) -> None:
    async with PepperPy(plugin_manager=iso_manager).with_llm("probe") as pepper:
        asked = await pepper.chat.with_user("add 2 and 3").with_tools(add, run=False).generate()
        answered = await pepper.chat.with_user("add 2 and 3").with_tools(add).generate()
    assert [(c.name, c.arguments) for c in asked.tool_calls] == [("add", {"a": 2, "b": 3})]
    assert asked.metadata["parameters"] == ["a", "b"]  # the worker saw the tool's JSON schema
    assert answered.content == "tool said: 5"  # the function ran here, its result went back to the worker


class Person(BaseModel):
    name: str
    age: int


async def test_a_response_model_crosses_as_its_schema_and_is_validated_in_the_parent(iso_manager: PluginManager) -> None:
    async with PepperPy(plugin_manager=iso_manager).with_llm("probe") as pepper:
        result = await pepper.chat.with_user("who?").with_response_model(Person).generate()
    assert isinstance(result.parsed, Person) and result.parsed == Person(name="Ada", age=36)
    assert result.metadata == {"schema_title": "Person", "model": "Person"}


async def test_errors_keep_their_pepperpy_type(iso_manager: PluginManager) -> None:
    async with PepperPy(plugin_manager=iso_manager).with_llm("probe") as pepper:
        with pytest.raises(LLMError, match="the model refused"):
            await pepper.chat.with_user("raise-llm").generate()
        with pytest.raises(RateLimitError, match=r"quota exhausted \(QuotaError\)") as quota:
            await pepper.chat.with_user("raise-quota").generate()
        assert quota.value.status_code == 429
        with pytest.raises(PluginError, match=r"llm/probe: generate\(\) raised ValueError: a plain bug"):
            await pepper.chat.with_user("raise-value").generate()
        assert facts(await pepper.chat.with_user("still fine").generate())["isolation"] == "process"


async def test_a_plugins_own_exception_is_the_same_plugin_error_in_process_and_isolated(iso_manager: PluginManager) -> None:
    """Issue 19: in-process a plugin's ValueError reached the caller raw, isolated it was a PluginError. Now both
    are a PluginError naming the plugin and the method (the ValueError its cause in-process, its type and message
    isolated); PepperPy's own errors pass through unchanged; calls, streams and a custom category alike."""
    from pepperpy.errors import InvalidInputError

    seen: dict[str, list[BaseException]] = {}
    for isolation in ("inprocess", "process"):
        failures: list[BaseException] = []
        pepper = PepperPy(plugin_manager=iso_manager).with_llm("probe", isolation=isolation)
        pepper.with_plugin("tts", "say", isolation=isolation)
        async with pepper:
            say = pepper.provider("tts")
            assert say.isolation == isolation
            for attempt in (
                pepper.chat.with_user("raise-value").generate(),
                _drain(pepper.chat.with_user("raise-value").stream()),
                pepper.chat.with_user("raise-llm").generate(),
                say.fail(),
                _drain(say.words_then_fail()),
                say.refuse(),
            ):
                with pytest.raises(Exception) as failed:
                    await attempt
                failures.append(failed.value)
            assert facts(await pepper.chat.with_user("still fine").generate())["isolation"] == isolation
        seen[isolation] = failures
    expected = [
        (PluginError, "llm/probe: generate() raised ValueError: a plain bug in the plugin"),
        (PluginError, "llm/probe: generate_stream() raised ValueError: a plain bug in the stream"),
        (LLMError, "llm/probe: the model refused"),
        (PluginError, "tts/say: fail() raised ValueError: boom"),
        (PluginError, "tts/say: words_then_fail() raised KeyError: 'no second word'"),
        (InvalidInputError, "tts/say: nothing to say"),
    ]
    for isolation, failures in seen.items():
        assert [(type(e), str(e)) for e in failures] == expected, isolation
    causes = [type(e.__cause__).__name__ for e in seen["inprocess"]]
    assert causes == ["ValueError", "ValueError", "NoneType", "ValueError", "KeyError", "NoneType"]
    assert [e.__cause__ for e in seen["process"]] == [None] * 6, "README: no __cause__ from a worker process"
    assert "ValueError: a plain bug in the plugin" in "\n".join(getattr(seen["process"][0], "__notes__", []))


async def _drain(chunks: Any) -> list[Any]:
    return [chunk async for chunk in chunks]


async def test_hooks_and_fallbacks_work_unchanged(iso_manager: PluginManager) -> None:
    seen: list[str] = []

    async def record(call: Any, call_next: Any) -> Any:
        seen.append(call.provider)
        return await call_next(call)

    iso_manager.register_plugin_alias("llm", "isomock", "mock", {"isolation": "process", "replies": ["from mock"]})
    pepper = PepperPy(plugin_manager=iso_manager).with_llm(["probe", "isomock"]).with_hook(record)
    async with pepper:
        result = await pepper.chat.with_user("raise-llm").generate()
        members = [member.provider for member in pepper.llm.members]
    assert [m.isolation for m in members] == ["process", "process"]
    assert result.content == "from mock"
    assert result.metadata["fallback"]["served_by"] == "isomock"
    assert "LLMError" in result.metadata["fallback"]["failed"][0]["error"]
    assert seen == ["llm/probe"]


async def test_a_fallback_member_isolated_by_its_own_config(iso_manager: PluginManager) -> None:
    pepper = PepperPy(plugin_manager=iso_manager).with_llm(["probe", ("mock", {"isolation": "process", "replies": ["iso"]})])
    async with pepper:
        result = await pepper.chat.with_user("raise-llm").generate()
        assert pepper.llm.members[1].provider.isolation == "process"
    assert result.content == "iso" and result.metadata["fallback"]["served_by"] == "mock"


async def test_a_custom_category_forwards_its_public_async_methods(iso_manager: PluginManager) -> None:
    pepper = PepperPy(plugin_manager=iso_manager).with_plugin("tts", "say", voice="owl")
    say = await pepper.configured("tts")  # in a loop, a first use creates the worker env in a thread
    assert type(say).__name__ == "IsolatedTtsSay" and say.isolation == "process"
    assert {"speak", "describe_voice", "words"} <= set(type(say).__dict__)
    assert "_not_forwarded" not in type(say).__dict__  # a private method is not part of the worker's interface
    async with pepper:
        assert await say.speak("hi", loud=True) == b"owl: HI\x00\xff"  # bytes cross intact
        described = await say.describe_voice()
        assert described["voice"] == "owl" and described["pid"] == say.worker_pid != os.getpid()
        assert [word async for word in say.words("one two three")] == ["one", "two", "three"]
        with pytest.raises(ConfigError, match="a value of type object cannot cross the process boundary"):
            await say.speak(object())  # the caller's mistake, as the documentation says


async def test_a_secret_option_never_shows_in_the_parent(iso_manager: PluginManager) -> None:
    from pepperpy.errors import AuthenticationError

    secret = "tok-sentinel-6d1f2a"
    say = iso_manager.create_provider("tts", "say", api_token=secret)
    async with say:
        with pytest.raises(AuthenticationError) as rejected:
            await say.check_token()
    assert rejected.value.status_code == 401
    assert secret not in str(rejected.value) and "***" in str(rejected.value)  # echoed by the worker, redacted
    assert secret not in repr(say) and not hasattr(say, "api_token")


async def test_a_custom_category_unknown_option_fails_at_creation(iso_manager: PluginManager) -> None:
    with pytest.raises(ConfigError, match=r"unknown option 'vioce' for tts/say; did you mean 'voice'"):
        iso_manager.create_provider("tts", "say", vioce="owl")


async def test_an_isolated_plugin_gets_the_same_answers_from_its_dependencies_as_in_process(iso_manager: PluginManager) -> None:
    """Issue 19: with isolation='process', ``self.dependencies`` was empty in the worker while the parent opened
    the dependency for nobody. Now the worker's plugin gets a stand-in per dependency whose calls go back over
    the pipe to the parent's provider: the same answers, streams, errors and lazily loaded dependencies."""
    seen: dict[str, list[Any]] = {}
    for isolation in ("inprocess", "process"):
        pepper = PepperPy(plugin_manager=iso_manager).with_llm("mock", replies=["one two three"])
        pepper.with_plugin("quiz", "asker", isolation=isolation)
        asker = await pepper.configured("quiz")
        async with pepper:
            assert asker.isolation == isolation and asker.dependencies["llm"] is pepper.llm
            asked = await asker.ask("hi")
            streamed = [piece async for piece in asker.ask_stream("hi")]
            with pytest.raises(ConfigError) as mistake:
                await asker.ask("hi", tempreature=0.2)
            noted = await asker.note("k", "v")
            calls = len(pepper.llm.calls)  # the parent's mock served every call
        pid = asked.pop("pid")
        assert (pid == os.getpid()) == (isolation == "inprocess")
        seen[isolation] = [asked, streamed, type(mistake.value), str(mistake.value), noted, calls]
    assert seen["inprocess"] == seen["process"]
    assert seen["process"][:2] == [
        {"answer": "one two three", "keys": ["llm"], "llm": "llm/mock", "is_llm": True, "open": True},
        ["one ", "two ", "three", ""],
    ]
    assert "unknown call option 'tempreature'" in seen["process"][3]
    assert seen["process"][4:] == [[True, "storage/local", "v", ["k"]], 2]


async def test_a_cancelled_call_cancels_what_it_asked_of_its_dependency_in_the_parent(
    iso_manager: PluginManager, tmp_path: Path
) -> None:
    """The caller gives up: the worker's task is cancelled, so is its dependency call in the parent, and so is
    that dependency's own call (here in a worker of its own): nothing runs on for nobody."""
    count_file = tmp_path / "count"
    pepper = PepperPy(plugin_manager=iso_manager).with_llm("probe", count_file=str(count_file)).with_plugin("quiz", "asker")
    asker = await pepper.configured("quiz")
    async with pepper:
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asker.ask("sleep"), timeout=1.0)
        async with asyncio.timeout(30):  # bounds a hang only
            while not Path(f"{count_file}.cancelled").exists():
                await asyncio.sleep(0.02)
        answered = await asker.ask("who are you?")  # the chain still serves
        probe_pid = pepper.llm.worker_pid
    assert answered["llm"] == "llm/probe" and json.loads(answered["answer"])["pid"] == probe_pid != answered["pid"]


async def test_a_restarted_worker_reaches_its_dependencies_again(iso_manager: PluginManager) -> None:
    """A worker killed between calls is replaced at the next call; the new one gets the dependencies with its
    load request and opens its stand-ins with the provider."""
    pepper = PepperPy(plugin_manager=iso_manager).with_llm("mock", replies=["again"]).with_plugin("quiz", "asker")
    asker = await pepper.configured("quiz")
    async with pepper:
        first = await asker.ask("hi")
        os.kill(first["pid"], signal.SIGKILL)
        wait_until(lambda: not pid_alive(first["pid"]), what="the worker's death")
        second = await asker.ask("hi")
    assert second["pid"] != first["pid"] and (second["answer"], second["open"]) == ("again", True)


async def test_embeddings_and_a_store_in_workers(iso_manager: PluginManager) -> None:
    from pepperpy.rag import Document

    pepper = PepperPy(plugin_manager=iso_manager).with_embeddings("toyembed").with_rag("toystore")
    async with pepper:
        embeddings, store = pepper.provider("embeddings"), pepper.provider("rag")
        assert await embeddings.embed(["abc"]) == [[1.0, 1.0, 1.0] + [0.0] * 23]
        assert embeddings.model_id == "embeddings/toyembed:letters-v1"
        await store.add([Document(id="1", text="apples and bananas"), Document(id="2", text="zzz quiz")])
        assert await store.count() == 2
        found = await store.search("banana", k=1)
        assert found[0].document.id == "1"
        assert found[0].document.metadata["model"] == "embeddings/toyembed:letters-v1"  # the parent's model id
        assert found[0].document.metadata["pid"] == store.worker_pid != embeddings.worker_pid
        assert await store.ids({"model": "embeddings/toyembed:letters-v1"}) == ["1", "2"], "ids crosses the pipe"
        await store.delete(["1"])
        assert await store.count() == 1


async def test_storage_local_in_a_worker(iso_manager: PluginManager, tmp_path: Path) -> None:
    async with iso_manager.create_provider("storage", "local", isolation="process", path=str(tmp_path / "kv")) as kv:
        await kv.set("a/1", b"\x00binary\xff")
        assert await kv.get("a/1") == b"\x00binary\xff"
        assert await kv.get("missing") is None
        assert await kv.list("a/") == ["a/1"]
        await kv.delete("a/1")
        assert await kv.list() == []


# -- step 3: lifecycle and failure ---------------------------------------------------------


async def test_a_stream_left_early_stops_the_generation_in_the_worker(iso_manager: PluginManager, tmp_path: Path) -> None:
    count_file = tmp_path / "count"
    async with iso_manager.create_provider("llm", "probe", count_file=str(count_file)) as provider:
        received = 0
        async with aclosing(provider.generate_stream("go")) as chunks:
            async for _ in chunks:
                received += 1
                if received == 3:
                    break
        stopped = Path(str(count_file) + ".stopped")
        await asyncio.to_thread(wait_until, stopped.exists, what="the plugin's generator to stop")
        produced = int(stopped.read_text())
        assert received <= produced < 10000  # the generator stopped long before its end
        assert int(count_file.read_text()) == produced  # and produced nothing after stopping
        assert facts(await provider.generate("next"))["isolation"] == "process"  # the worker serves on


async def test_a_call_that_times_out_is_cancelled_in_the_worker(iso_manager: PluginManager, tmp_path: Path) -> None:
    from pepperpy.errors import LLMTimeoutError

    marker = tmp_path / "call"
    async with iso_manager.create_provider("llm", "probe", count_file=str(marker)) as provider:
        with pytest.raises(LLMTimeoutError, match="llm/probe: no complete answer within timeout=0.5s"):
            await provider.generate("sleep", timeout=0.5)
        cancelled = Path(str(marker) + ".cancelled")
        await asyncio.to_thread(wait_until, cancelled.exists, what="the worker to cancel the call")
        assert facts(await provider.generate("next"))["isolation"] == "process"


def test_one_facade_serves_several_event_loops_and_sync_calls(iso_manager: PluginManager) -> None:
    pepper = PepperPy(plugin_manager=iso_manager).with_llm("mock", isolation="process", replies=["same"])

    async def ask() -> tuple[str, int | None]:
        return (await pepper.chat.with_user("x").generate()).content, pepper.llm.worker_pid

    first, second = asyncio.run(ask()), asyncio.run(ask())  # the provider closes with each loop and reopens
    assert first[0] == second[0] == "same" and first[1] != second[1]
    assert not pid_alive(first[1])  # type: ignore[arg-type]
    assert pepper.chat.with_user("x").generate_sync().content == "same"
    pid = pepper.llm.worker_pid
    pepper.close()
    assert pid is not None and not pid_alive(pid)


async def test_a_worker_killed_mid_call_is_reported_and_restarted(iso_manager: PluginManager) -> None:
    async with PepperPy(plugin_manager=iso_manager).with_llm("probe") as pepper:
        llm = pepper.llm
        first_pid = llm.worker_pid
        call = asyncio.ensure_future(pepper.chat.with_user("sleep").generate())
        stderr_file = llm._worker.stderr_path
        while "about to sleep" not in (stderr_file.read_text() if stderr_file.exists() else ""):
            await asyncio.sleep(0.02)
        os.kill(first_pid, signal.SIGKILL)
        with pytest.raises(LLMError) as died:
            await call
        message = str(died.value)
        assert isinstance(died.value, ProviderError)
        assert f"llm/probe: its worker process (pid {first_pid}) was killed by signal SIGKILL (exit status -9)" in message
        assert "probe: about to sleep" in message  # the tail of its stderr
        info = facts(await pepper.chat.with_user("again").generate())  # a new worker, opened again
        assert info["pid"] == llm.worker_pid != first_pid
        restarted_file = llm._worker.stderr_path
        assert restarted_file != stderr_file  # the new worker writes a file of its own
    assert "probe: about to sleep" in stderr_file.read_text()  # the crash's file is kept, as its error said
    assert not restarted_file.exists()  # the new worker stopped cleanly with the facade
    stderr_file.unlink()


async def test_a_worker_that_died_while_idle_is_restarted_by_the_next_call(iso_manager: PluginManager) -> None:
    async with iso_manager.create_provider("llm", "probe") as provider:
        first_pid = provider.worker_pid
        os.kill(first_pid, signal.SIGKILL)
        await asyncio.to_thread(wait_until, lambda: not pid_alive(first_pid))
        assert facts(await provider.generate("hello"))["pid"] not in (first_pid, None)
        assert provider._worker.starts == 2


async def test_workers_stop_with_the_facade(iso_manager: PluginManager) -> None:
    pepper = PepperPy(plugin_manager=iso_manager).with_llm("probe").with_plugin("tts", "say")
    async with pepper:
        pids = [pepper.llm.worker_pid, pepper.provider("tts").worker_pid]
        await pepper.chat.with_user("hi").generate()
    assert all(pid is not None for pid in pids)
    assert not any(pid_alive(pid) for pid in pids)


PARENT = textwrap.dedent(
    """
    import asyncio, sys
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager

    async def main():
        manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])
        pepper = PepperPy(plugin_manager=manager).with_llm("probe")
        await pepper.chat.with_user("hi").generate()
        pending = asyncio.ensure_future(pepper.chat.with_user(sys.argv[3]).generate())
        await asyncio.sleep(0.1)
        stderr_file = pepper.llm._worker.stderr_path
        while sys.argv[3] == "sleep" and "about to sleep" not in stderr_file.read_text():
            await asyncio.sleep(0.02)  # the worker is in the call
        print(pepper.llm.worker_pid, pepper.llm._worker.stderr_path, flush=True)
        await pending

    asyncio.run(main())
    """
)


@pytest.mark.parametrize(
    ("spawn_in_thread", "prompt"), [(False, "sleep"), (True, "sleep"), (True, "block")],
    ids=["main-thread", "worker-thread", "worker-thread-loop-blocked"],
)
def test_a_worker_never_outlives_a_parent_killed_with_sigkill(
    plugin_root: Path, iso_home: Path, spawn_in_thread: bool, prompt: str
) -> None:
    """Spawned by the main thread, PR_SET_PDEATHSIG and the stdin watch both apply; from a thread (with_*
    inside asyncio.to_thread) only the stdin watch does, and is enough, also while the plugin blocks the
    worker's event loop (``block`` sleeps without awaiting) in a call that is in flight."""
    script = PARENT.replace('pepper = PepperPy', 'pepper = await asyncio.to_thread(lambda: PepperPy') if spawn_in_thread else PARENT
    if spawn_in_thread:
        script = script.replace('.with_llm("probe")', '.with_llm("probe"))')
    parent = subprocess.Popen([sys.executable, "-c", script, str(plugin_root), str(iso_home), prompt],
                              stdout=subprocess.PIPE, text=True)
    try:
        pid, stderr_path = parent.stdout.readline().split()  # type: ignore[union-attr]
        worker_pid, stderr_file = int(pid), Path(stderr_path)
        assert pid_alive(worker_pid)
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait()
        wait_until(lambda: not pid_alive(worker_pid), what=f"worker {worker_pid} to exit after its parent's SIGKILL")
        if prompt == "block":  # it wrote nothing: the worker removed its empty file as it exited
            assert not stderr_file.exists()
        else:  # "sleep" printed a line first: kept
            assert "probe: about to sleep" in stderr_file.read_text()
            stderr_file.unlink()
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait()


# -- step 4: two versions of one package side by side -----------------------------------------


async def test_two_plugins_pinning_different_versions_of_toml_work_in_one_pepperpy(iso_manager: PluginManager) -> None:
    with pytest.raises(ImportError):
        import toml  # noqa: F401 - the parent must not have it: each worker gets its own
    pepper = PepperPy(plugin_manager=iso_manager).with_llm("tomlold").with_plugin("tomler", "tomlnew")
    async with pepper:
        old_version, old_file = (await pepper.chat.with_user("version?").generate()).content.split()
        new_version, new_file = (await pepper.provider("tomler").version()).split()
    assert (old_version, new_version) == ("0.10.1", "0.10.2")
    assert Path(old_file).parent != Path(new_file).parent  # each from its own venv
    assert str(Path(old_file)).startswith(str(iso_manager.home / "envs"))


CONFLICT = textwrap.dedent(
    """
    import asyncio, json, sys
    from pepperpy._install import loaded_from
    from pepperpy.errors import PluginDependencyError
    from pepperpy.plugin_manager import PluginManager

    async def main():
        manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])
        old = manager.create_provider("llm", "tomlold", isolation="inprocess")  # toml 0.10.1 into this process
        async with old:
            old_version = (await old.generate("v")).content.split()[0]
        try:
            manager.create_provider("tomler", "tomlnew", isolation="inprocess")
            error = None
        except PluginDependencyError as exc:
            error = str(exc)
        isolated = manager.create_provider("tomler", "tomlnew")  # plugin.json says "process": its own toml
        async with isolated:
            new_version = (await isolated.version()).split()[0]
        print(json.dumps({"old": old_version, "new": new_version, "error": error,
                          "loaded_from": loaded_from("toml", "0.10.1")}))

    asyncio.run(main())
    """
)


def test_an_inprocess_conflict_names_both_sides_and_isolation_makes_both_work(plugin_root: Path, tmp_path: Path) -> None:
    """In a child process, so that this one never loads toml."""
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-c", CONFLICT, str(plugin_root), str(home)],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert (outcome["old"], outcome["new"]) == ("0.10.1", "0.10.2")
    error, described = outcome["error"], outcome["loaded_from"]
    assert error is not None and "tomler/tomlnew needs toml==0.10.2" in error and "toml 0.10.1" in error
    assert described.startswith(f"toml 0.10.1 is already loaded from the env of plugin llm/tomlold ({home / 'envs'}")
    assert described in error and '"isolation": "process"' in error


BOTH_INSTALLED = textwrap.dedent(
    """
    import json, sys
    from pepperpy.errors import PluginDependencyError
    from pepperpy.plugin_manager import PluginManager

    manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])
    for category, name in (("tomler", "tomlnew"), ("llm", "tomlold")):  # each env installed in an earlier process
        manager.ensure_requirements(manager.resolve(category, name)[0])
        sys.path.remove(sys.path[-1])
        manager._ready.clear()
    outcome = {}
    manager.create_provider("llm", "tomlold", isolation="inprocess")
    try:
        manager.create_provider("tomler", "tomlnew", isolation="inprocess")
    except PluginDependencyError as exc:
        outcome["error"] = str(exc)
    print(json.dumps(outcome))
    """
)


def test_a_conflict_between_two_installed_plugin_envs_is_caught_too(plugin_root: Path, tmp_path: Path) -> None:
    """Both envs already installed (the fast path, no install to notice it): the second to load still
    names the conflict instead of silently importing the first one's toml."""
    home = tmp_path / "home"
    done = subprocess.run([sys.executable, "-c", BOTH_INSTALLED, str(plugin_root), str(home)],
                          check=False, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    error = json.loads(done.stdout).get("error")
    assert error is not None, "the second plugin would have imported the first one's toml without a word"
    assert "tomler/tomlnew needs toml==0.10.2" in error and "llm/tomlold" in error and '"isolation": "process"' in error


# -- step 5: options, the cache and the workers' stderr files -----------------------------------


async def test_the_response_cache_hits_the_second_call_of_a_lazily_opened_isolated_provider(
    iso_manager: PluginManager, tmp_path: Path
) -> None:
    """No ``async with``: the first call starts the provider, and its ``call.config`` (the cache key's part)
    is the same on both calls although the worker reports the class's own options in between."""
    calls = tmp_path / "calls"
    configs: list[dict[str, Any]] = []

    async def record(call: Any, call_next: Any) -> Any:
        configs.append(dict(call.config))
        return await call_next(call)

    pepper = PepperPy(plugin_manager=iso_manager).with_llm("counter", calls_file=str(calls)).with_cache().with_hook(record)
    try:
        first = await pepper.chat.with_user("hi").generate()
        second = await pepper.chat.with_user("hi").generate()
        assert pepper.llm.shout is False  # the class's default, as the worker reported it
    finally:
        await pepper.aclose()
    assert (first.content, second.content) == ("c> hi", "c> hi")
    assert "cache" not in first.metadata and second.metadata["cache"] == "hit"
    assert calls.read_text().splitlines() == ["call"]  # the worker served one call
    assert configs[0] == configs[1] == {"prefix": "c> ", "calls_file": str(calls)}  # given + plugin.json's


async def test_the_description_leaves_out_secrets_and_does_not_change_when_the_worker_starts(
    iso_manager: PluginManager, tmp_path: Path
) -> None:
    from pydantic import SecretStr

    provider = iso_manager.create_provider("llm", "counter", calls_file=str(tmp_path / "calls"), max_tokens=7,
                                           api_key="sk-sentinel-41c", credentials=SecretStr("c-sentinel-9f"))
    before = provider.describe()
    async with provider:
        await provider.generate("hi")
        assert provider.describe() == before
        assert not hasattr(provider, "credentials") and not hasattr(provider, "api_key")  # as secrets, never shown
        assert provider.max_tokens == 7 and provider.shout is False  # the others are, once the worker reported them
    assert before == {"prefix": "c> ", "calls_file": str(tmp_path / "calls"), "max_tokens": 7}
    assert "sentinel" not in repr(provider)


async def test_assigning_an_option_of_an_isolated_provider_is_refused(iso_manager: PluginManager, tmp_path: Path) -> None:
    # with_llm off the loop: the worker env is made there, so pepper.llm is the provider (not a PendingProvider)
    pepper = await asyncio.to_thread(PepperPy(plugin_manager=iso_manager).with_llm, "counter", calls_file=str(tmp_path / "calls"))
    pattern = (r"llm/counter: cannot set 'shout' on a process-isolated provider .* options of an isolated plugin "
               r"are set at creation: with_llm\('counter', shout=\.\.\.\)")
    with pytest.raises(ConfigError, match=pattern):
        pepper.llm.shout = "notabool"  # before the worker reported its options
    async with pepper:
        with pytest.raises(ConfigError, match=pattern) as refused:
            pepper.llm.shout = True  # a valid value is refused too: the worker would never see it
        # the other way it names is a public function that exists
        assert "or pepperpy.plugins.create_provider_instance('llm', 'counter', shout=...)" in str(refused.value)
        assert callable(__import__("pepperpy.plugins").plugins.create_provider_instance)
        assert (await pepper.chat.with_user("hi").generate()).content == "c> hi"
    say = iso_manager.create_provider("tts", "say")
    with pytest.raises(ConfigError, match=r"tts/say: cannot set 'voice' .* with_plugin\('tts', 'say', voice=\.\.\.\)"):
        say.voice = "owl"
    loud = PepperPy(plugin_manager=iso_manager).with_llm("counter", shout=True, calls_file=str(tmp_path / "calls"))
    async with loud:  # what the error says to do works
        assert (await loud.chat.with_user("hi").generate()).content == "C> HI"


def worker_files(home: Path, plugin: str) -> list[Path]:
    return sorted((home / "workers").glob(f"{plugin.replace('/', '-')}-{os.getpid()}-*"))


async def test_a_provider_that_failed_to_open_leaves_no_empty_stderr_file(iso_manager: PluginManager) -> None:
    provider = iso_manager.create_provider("llm", "counter", shuot=True)
    stderr_file = provider._worker.stderr_path
    assert stderr_file.exists()  # the worker started at creation
    with pytest.raises(ConfigError, match=r"unknown option 'shuot' for llm/counter; did you mean 'shout'"):
        await provider.initialize()
    assert not stderr_file.exists()


async def test_a_start_failure_keeps_a_stderr_file_with_content_and_names_it(iso_manager: PluginManager) -> None:
    provider = iso_manager.create_provider("llm", "noisy")
    with pytest.raises(ConfigError, match="llm/noisy: the service refused the setup") as failed:
        await provider.initialize()
    stderr_file = provider._worker.stderr_path
    assert "noisy: importing the plugin" in stderr_file.read_text()
    note = "\n".join(getattr(failed.value, "__notes__", []))
    assert f"kept in {stderr_file}" in note and "noisy: importing the plugin" in note
    stderr_file.unlink()


async def test_a_custom_category_that_fails_to_load_at_creation_leaves_no_stderr_file(iso_manager: PluginManager) -> None:
    before = worker_files(iso_manager.home, "tts/say")
    with pytest.raises(ConfigError, match=r"unknown option 'vioce' for tts/say"):
        iso_manager.create_provider("tts", "say", vioce="owl")
    assert worker_files(iso_manager.home, "tts/say") == before


def test_a_public_sync_method_of_an_isolated_custom_category_is_refused_at_with_plugin(iso_manager: PluginManager) -> None:
    """Issue 19: only async methods cross the pipe; a plain ``def`` failed later, at its first call, with a
    misleading AttributeError. Now with_plugin says which methods and what to do; in-process they work.
    (Outside an event loop, as a script calls with_plugin: inside one, a first use installs when it opens.)"""
    from pepperpy.errors import PluginLoadError

    before = worker_files(iso_manager.home, "tts/syncy")
    with pytest.raises(PluginLoadError) as refused:
        PepperPy(plugin_manager=iso_manager).with_plugin("tts", "syncy")
    message = str(refused.value)
    assert message.startswith("tts/syncy: SyncyPlugin.pitch() and SyncyPlugin.volume() are plain `def` methods")
    assert "make them `async def`" in message and "rename them with a leading `_`" in message
    assert str(iso_manager.plugins["tts/syncy"].path) in message
    assert worker_files(iso_manager.home, "tts/syncy") == before  # its worker stopped, no file left
    syncy = PepperPy(plugin_manager=iso_manager).with_plugin("tts", "syncy", isolation="inprocess").provider("tts")
    assert (syncy.volume(), syncy.pitch(), asyncio.run(syncy.speak("hi"))) == (11, "high", "hi")
    remote = iso_manager.create_provider("tts", "remotey", base_url="http://127.0.0.1:9", api_key="k")
    assert "speak" in type(remote).__dict__ and "headers" not in type(remote).__dict__  # a base's hook is not refused


def test_a_provider_created_but_never_opened_leaves_no_stderr_file(iso_manager: PluginManager) -> None:
    import gc

    provider = iso_manager.create_provider("llm", "counter")
    stderr_file, worker = provider._worker.stderr_path, provider._worker
    assert stderr_file.exists()
    pid = worker.pid
    del provider
    gc.collect()  # its finalizer stops the worker (no event loop here: it waits for it)
    assert not stderr_file.exists() and pid is not None and not pid_alive(pid)


async def test_a_provider_dropped_unopened_inside_a_loop_leaves_no_stderr_file(iso_manager: PluginManager) -> None:
    import gc

    provider = iso_manager.create_provider("llm", "counter")
    stderr_file = provider._worker.stderr_path
    del provider
    gc.collect()  # inside a running loop, a thread stops the worker
    await asyncio.to_thread(wait_until, lambda: not stderr_file.exists(), what="the stderr file to be removed")


UNOPENED = textwrap.dedent(
    """
    import sys
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager

    manager = PluginManager(search_paths=[sys.argv[1]], home=sys.argv[2])
    pepper = PepperPy(plugin_manager=manager).with_llm("counter")  # its worker starts; it is never used
    print(pepper.llm._worker.stderr_path, pepper.llm.worker_pid, flush=True)
    """
)


def test_a_worker_never_used_by_a_script_stops_at_exit_and_leaves_no_stderr_file(plugin_root: Path, iso_home: Path) -> None:
    done = subprocess.run([sys.executable, "-c", UNOPENED, str(plugin_root), str(iso_home)],
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    path, pid = done.stdout.split()
    assert not Path(path).exists()
    assert not pid_alive(int(pid))


ENTRY_POINT_CHILD = textwrap.dedent(
    """
    import json, sys
    from pepperpy.errors import ConfigError
    from pepperpy.plugin_manager import PluginManager

    manager = PluginManager(home=sys.argv[1])  # no search_paths: installed distributions' entry points count
    try:
        manager.create_provider("llm", "shout", isolation="process")
        refused = None
    except ConfigError as exc:
        refused = str(exc)
    print(json.dumps({"refused": refused, "inprocess": type(manager.create_provider("llm", "shout")).__name__}))
    """
)


def test_an_entry_point_class_refuses_process_isolation_and_says_it_needs_a_folder(tmp_path: Path) -> None:
    """A distribution found on ``sys.path`` by its ``.dist-info`` metadata (what an install leaves; written here
    instead of built and installed, which tests/integration/test_entry_point_plugins.py does for real)."""
    site = tmp_path / "site"
    (site / "shout_pkg").mkdir(parents=True)
    (site / "shout_pkg" / "__init__.py").write_text(textwrap.dedent(
        """
        from pepperpy.llm import GenerationResult, LLMProvider

        class ShoutLLM(LLMProvider):
            async def generate(self, messages, **options):
                return GenerationResult(content="HI")
        """
    ))
    info = site / "shout_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text('[pepperpy.plugins]\nllm.shout = shout_pkg:ShoutLLM\n')
    env = {**os.environ, "PYTHONPATH": str(site)}
    done = subprocess.run([sys.executable, "-c", ENTRY_POINT_CHILD, str(tmp_path / "home")], env=env, cwd=tmp_path,
                          check=False, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    outcome = json.loads(done.stdout)
    assert outcome["inprocess"] == "ShoutLLM"  # the entry point works in-process
    refused = outcome["refused"]
    assert refused is not None and refused.startswith("llm/shout: isolation='process' needs a plugin folder")
    assert "put the class in a plugin folder" in refused


# -- step 6: what a second first-time user ran into -----------------------------------------------


class LogRecords:
    """The parent's loguru: a sink that keeps every record; PepperPy's logs on or off as asked (restored after)."""

    def __init__(self, enable: bool):
        self.enable = enable
        self.records: list[Any] = []

    def __enter__(self) -> Self:
        from loguru import logger

        self.sink = logger.add(self.records.append, level="DEBUG", format="{message}")
        if self.enable:
            logger.enable("pepperpy")
        return self

    def __exit__(self, *exc_info: object) -> None:
        from loguru import logger

        logger.remove(self.sink)
        logger.disable("pepperpy")  # PepperPy's default

    def chatty(self) -> dict[str, Any]:
        """The plugin's records by the first line of their message."""
        return {m.record["message"].split("\n")[0]: m.record for m in self.records if m.record["message"].startswith("chatty:")}


async def test_a_plugins_self_logger_reaches_the_parents_sinks_with_its_level_and_plugin_id(
    iso_manager: PluginManager,
) -> None:
    with LogRecords(enable=True) as logs:  # on before the worker starts: its DEBUG lines cross too
        async with PepperPy(plugin_manager=iso_manager).with_llm("chatty") as pepper:
            assert (await pepper.chat.with_user("hi").generate()).content == "ok"
            stderr_file = pepper.llm._worker.stderr_path
            assert stderr_file.read_text() == ""  # through the pipe, not into the worker's stderr
    seen = logs.chatty()
    assert list(seen) == ["chatty: opened with format braces {kept}", "chatty: a debug line", "chatty: answering hi",
                          "chatty: from a thread", "chatty: it failed"]  # in order, formatted once
    assert {r["extra"]["plugin"] for r in seen.values()} == {"llm/chatty"}
    assert {r["name"].split(".")[1] for m, r in seen.items() if m != "chatty: from a thread"} == {"loaded_plugins"}
    assert seen["chatty: from a thread"]["name"] == "concurrent.futures.thread"  # self.logger.info called by to_thread
    assert [seen[m]["level"].name for m in seen] == ["INFO", "DEBUG", "WARNING", "INFO", "ERROR"]
    assert seen["chatty: answering hi"]["extra"]["call"] == "c1" and seen["chatty: answering hi"]["function"] == "generate"
    assert "ZeroDivisionError: division by zero" in seen["chatty: it failed"]["message"]  # its traceback, as text
    opened = [m.record for m in logs.records if m.record["message"] == "opened llm/chatty"]
    assert len(opened) == 1  # the parent's own line, not the worker's again


async def test_the_parents_logging_switch_decides_what_a_worker_shows(iso_manager: PluginManager) -> None:
    with LogRecords(enable=False) as logs:  # PepperPy's default: silent
        async with PepperPy(plugin_manager=iso_manager).with_llm("chatty") as pepper:
            await pepper.chat.with_user("first").generate()
            assert logs.chatty() == {}
            assert pepper.llm._worker.stderr_path.read_text() == ""  # not printed in the worker either
            from loguru import logger

            logger.enable("pepperpy")  # switched on while the worker runs: INFO and above from now on
            await pepper.chat.with_user("second").generate()
    assert list(logs.chatty()) == ["chatty: answering second", "chatty: from a thread", "chatty: it failed"]


async def test_reading_an_attribute_that_lives_in_the_worker_says_where_it_is(iso_manager: PluginManager) -> None:
    pepper = await asyncio.to_thread(PepperPy(plugin_manager=iso_manager).with_llm, "mock", isolation="process")
    async with pepper:
        await pepper.chat.with_user("hi").generate()
        assert not hasattr(pepper.llm, "calls") and getattr(pepper.llm, "calls", "none") == "none"
        with pytest.raises(AttributeError, match=(
            r"'IsolatedLLM' object has no attribute 'calls': llm/mock runs in a worker process \(isolation: process\)"
            r".* return it in the answer's metadata \(GenerationResult.metadata\)")) as missing:
            pepper.llm.calls  # noqa: B018 - llm/mock keeps its calls on itself, in the worker
        assert missing.value.name == "calls" and "isolation='inprocess'" in str(missing.value)
        assert pepper.llm.replies == [] and pepper.llm.plugin_id == "llm/mock"  # options and the base's still read
    say = iso_manager.create_provider("tts", "say")
    with pytest.raises(AttributeError, match=r"tts/say runs in a worker process .* add a public async method that returns it"):
        say.opened_in  # noqa: B018 - set by its initialize, in the worker
    with pytest.raises(AttributeError, match=r"^'IsolatedTtsSay' object has no attribute '_private'$"):
        say._private  # noqa: B018


def cli(home: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PEPPERPY_HOME": str(home), "PEPPERPY_PLUGIN_PATH": str(root)}
    return subprocess.run([sys.executable, "-m", "pepperpy", *args], check=False, capture_output=True, text=True,
                          timeout=600, cwd=home.parent, env=env)


FRESH_LIST = textwrap.dedent(
    """
    import contextlib, io, json, sys
    from pepperpy.cli import main
    with contextlib.redirect_stdout(io.StringIO()) as out:
        code = main(["plugins", "list"])
    heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pydantic", "loguru", "packaging", "tenacity"))
    row = next(line.split() for line in out.getvalue().splitlines() if line.startswith("llm/unidecode "))
    print(json.dumps({"code": code, "row": row, "heavy": heavy}))
    """
)


def test_an_isolated_plugins_requirements_go_into_its_worker_venv_only_and_the_commands_say_so(tmp_path: Path) -> None:
    from pepperpy import _install

    root, home = tmp_path / "plugins", tmp_path / "home"
    write_plugin(root, "unidecode", "llm", UNIDECODE, "UnidecodeLLM", "text-unidecode==1.3\n", isolation="process")
    manager = PluginManager(search_paths=[root], home=home)
    in_process_env = _install.env_dir(home, manager.requirement_set(manager.resolve("llm", "unidecode")[0]))

    async def use() -> str:
        async with PepperPy(plugin_manager=manager).with_llm("unidecode") as pepper:
            return (await pepper.chat.with_user("héllo wörld").generate()).content

    def envs() -> list[str]:
        return sorted(p.name for p in (home / "envs").iterdir() if p.is_dir())

    assert asyncio.run(use()) == "hello world"
    (venv,) = [home / "envs" / name for name in envs()]
    assert (venv / "pyvenv.cfg").is_file() and venv != in_process_env  # the worker's venv, made by uv
    assert not any(entry.startswith(str(home)) for entry in sys.path)  # nothing of it joined this process

    info = cli(home, root, "plugins", "info", "llm/unidecode")
    assert info.returncode == 0, info.stderr
    lines = info.stdout.splitlines()
    assert f"env dir: {venv} (the worker process's venv)" in lines
    assert "  text-unidecode==1.3: installed in the worker's venv" in lines
    assert any(line.startswith("  (the class is imported in its worker process only") for line in lines)
    listed = {p["id"]: p for p in json.loads(cli(home, root, "plugins", "list", "--json").stdout)["plugins"]}
    assert (listed["llm/unidecode"]["requirements_status"], listed["llm/unidecode"]["env_dir"]) == ("installed", str(venv))
    again = cli(home, root, "plugins", "install", "llm/unidecode")
    assert (again.returncode, again.stdout) == (0, f"llm/unidecode: already installed (its worker process's venv {venv})\n")
    doctor = cli(home, root, "doctor")
    assert any(line.split()[:1] == ["llm/unidecode"] and line.endswith(" ready") for line in doctor.stdout.splitlines())
    assert envs() == [venv.name]  # info, list, install and doctor made no in-process env either

    fresh_env = {**os.environ, "PEPPERPY_HOME": str(home), "PEPPERPY_PLUGIN_PATH": str(root)}
    fresh = subprocess.run([sys.executable, "-c", FRESH_LIST], check=False, capture_output=True, text=True,
                           cwd=tmp_path, env=fresh_env, timeout=300)
    assert fresh.returncode == 0, fresh.stderr
    outcome = json.loads(fresh.stdout.splitlines()[-1])
    assert outcome["heavy"] == [] and outcome["row"][2:4] == ["installed", "process"]  # the index knows the venv

    import shutil

    shutil.rmtree(venv)  # gone: every command says so, and the next use makes the worker's venv again, only it
    assert listed_status(home, root) == "not installed"
    doctor = cli(home, root, "doctor")
    assert any(line.split()[:1] == ["llm/unidecode"] and line.endswith(" installs on first use")
               for line in doctor.stdout.splitlines())
    assert asyncio.run(use()) == "hello world"
    assert envs() == [venv.name] and listed_status(home, root) == "installed"


def listed_status(home: Path, root: Path) -> str:
    listed = {p["id"]: p for p in json.loads(cli(home, root, "plugins", "list", "--json").stdout)["plugins"]}
    return listed["llm/unidecode"]["requirements_status"]


def test_plugins_install_builds_the_worker_venv_of_an_isolated_plugin(tmp_path: Path) -> None:
    root, home = tmp_path / "plugins", tmp_path / "home"
    write_plugin(root, "unidecode", "llm", UNIDECODE, "UnidecodeLLM", "text-unidecode==1.3\n", isolation="process")
    done = cli(home, root, "plugins", "install", "llm/unidecode")
    assert done.returncode == 0, done.stderr
    (venv,) = [p for p in (home / "envs").iterdir() if p.is_dir()]
    assert (venv / "pyvenv.cfg").is_file()  # a venv for the worker, not a folder for this process's sys.path
    assert done.stdout.splitlines()[-1] == f"llm/unidecode: installed text-unidecode==1.3 into its worker process's venv {venv}"
    assert listed_status(home, root) == "installed"
