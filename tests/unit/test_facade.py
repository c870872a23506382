"""The PepperPy builder, the chat builder, the lifecycle and the sync path."""

from __future__ import annotations

import asyncio

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, LLMError, PepperPyError, PluginNotFoundError
from pepperpy.llm import Message, MessageRole

RECORDING_PROVIDER = '''
from typing import Any

from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.storage import StorageProvider


class Recording:
    events: Any = None
    label: str = ""
    fail_setup: bool = False

    async def initialize(self):
        self.events.append(f"setup {self.label}")
        await __import__("asyncio").sleep(0)
        if self.fail_setup:
            raise RuntimeError(f"setup of {self.label} failed")

    async def cleanup(self):
        self.events.append(f"teardown {self.label}")


class RecordingLLM(Recording, LLMProvider):
    async def generate(self, messages, **options):
        self.events.append(("generate", [(m.role.value, m.content) for m in messages], options))
        return GenerationResult(content="ok")


class RecordingStorage(Recording, StorageProvider):
    async def get(self, key):
        return None

    async def set(self, key, value):
        pass

    async def delete(self, key):
        pass

    async def list(self, prefix=""):
        return []
'''


@pytest.fixture
def pepper(manager, make_plugin):
    make_plugin("recording", entry_point="provider:RecordingLLM", files={"provider.py": RECORDING_PROVIDER})
    make_plugin(
        "recording", category="storage", entry_point="provider:RecordingStorage",
        root=manager.search_paths()[0].parent / "storage_plugins", files={"provider.py": RECORDING_PROVIDER},
    )
    manager.register_plugin_path(manager.search_paths()[0].parent / "storage_plugins")
    return PepperPy(plugin_manager=manager)


def test_with_llm_chains_and_names_the_provider(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["x"])
    assert isinstance(pepper, PepperPy)
    assert pepper._llm_provider.name == "mock"
    assert not pepper._llm_provider.initialized, "with_llm opens nothing"


def test_unknown_provider_fails_at_with_llm(builtin_manager):
    with pytest.raises(PluginNotFoundError, match="did you mean llm/mock"):
        PepperPy(plugin_manager=builtin_manager).with_llm("mokc")


def test_unknown_option_fails_at_with_llm_with_suggestion(builtin_manager):
    with pytest.raises(ConfigError, match=r"unknown option 'replys' for llm/mock; did you mean 'replies'\?"):
        PepperPy(plugin_manager=builtin_manager).with_llm("mock", replys=["x"])


def test_default_llm_provider_comes_from_config(builtin_manager, monkeypatch):
    pepper = PepperPy(config={"llm": "mock"}, plugin_manager=builtin_manager).with_llm()
    assert pepper.llm.name == "mock"
    monkeypatch.setenv("PEPPERPY_LLM", "mock")
    assert PepperPy(plugin_manager=builtin_manager).with_llm().llm.name == "mock"


def test_chat_without_llm_says_what_to_do(builtin_manager):
    with pytest.raises(ConfigError, match=r"no llm provider is configured; call .*with_llm"):
        PepperPy(plugin_manager=builtin_manager).chat


async def test_chat_builder_assembles_messages_and_options(pepper):
    events = []
    pepper.with_llm("recording", events=events)
    await (
        pepper.chat.with_system("sys")
        .with_user("u1")
        .with_assistant("a1")
        .with_messages([{"role": "user", "content": "u2"}, Message(role=MessageRole.TOOL, content="t")])
        .with_options(temperature=0.2)
        .with_options(max_tokens=5)
        .generate()
    )
    call = events[-1]
    assert call == (
        "generate",
        [("system", "sys"), ("user", "u1"), ("assistant", "a1"), ("user", "u2"), ("tool", "t")],
        {"temperature": 0.2, "max_tokens": 5},
    )
    await pepper.aclose()


async def test_each_chat_is_a_fresh_builder(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock")
    first = pepper.chat.with_user("one")
    second = pepper.chat.with_user("two")
    assert [m.content for m in first.messages] == ["one"]
    assert [m.content for m in second.messages] == ["two"]


async def test_async_with_initializes_all_and_cleans_up_in_reverse(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm").with_storage("recording", events=events, label="storage")
    async with pepper as ready:
        assert ready.llm.initialized and ready.provider("storage").initialized
        assert sorted(events) == ["setup llm", "setup storage"]
    assert events[2:] == ["teardown storage", "teardown llm"]
    assert not pepper.llm.initialized


async def test_cleanup_runs_when_the_body_raises(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm").with_storage("recording", events=events, label="storage")
    with pytest.raises(ValueError, match="body failed"):
        async with pepper:
            raise ValueError("body failed")
    assert events[2:] == ["teardown storage", "teardown llm"]


async def test_failed_initialization_cleans_up_the_others(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm")
    pepper.with_storage("recording", events=events, label="storage", fail_setup=True)
    with pytest.raises(RuntimeError, match="setup of storage failed"):
        async with pepper:
            pytest.fail("the body must not run")
    assert "teardown llm" in events
    assert "teardown storage" not in events


async def test_lazy_use_outside_async_with_and_aclose_twice(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm")
    await pepper.chat.with_user("hi").generate()
    await pepper.chat.with_user("again").generate()
    assert events.count("setup llm") == 1
    await pepper.aclose()
    await pepper.aclose()
    assert events.count("teardown llm") == 1


async def test_concurrent_first_use_initializes_once(pepper):
    events = []
    pepper.with_llm("recording", events=events, label="llm")
    await asyncio.gather(*(pepper.chat.with_user(str(i)).generate() for i in range(10)))
    assert events.count("setup llm") == 1
    await pepper.aclose()


def test_generate_sync_in_a_plain_script(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["sync answer"])
    assert pepper.chat.with_user("hi").generate_sync().content == "sync answer"
    assert pepper.llm.initialized, "the sync path keeps the provider open between calls"
    pepper.close()
    assert not pepper.llm.initialized


async def test_generate_sync_refuses_inside_a_running_loop(builtin_manager):
    pepper = PepperPy(plugin_manager=builtin_manager).with_llm("mock")
    with pytest.raises(PepperPyError, match="inside async code, use `await`"):
        pepper.chat.with_user("hi").generate_sync()


async def test_mock_replies_cycle_exhaust_echo_and_stream(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["a", "b"]) as pepper:
        answers = [(await pepper.chat.with_user("q").generate()).content for _ in range(3)]
        assert answers == ["a", "b", "a"]
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["only"], cycle=False) as pepper:
        await pepper.chat.with_user("q").generate()
        with pytest.raises(LLMError, match="all 1 scripted replies were used"):
            await pepper.chat.with_user("q").generate()
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock") as pepper:
        result = await pepper.chat.with_system("s").with_user("echo this back").generate()
        assert result.content == "echo this back"
        assert result.usage.completion_tokens == 3
        chunks = [chunk async for chunk in pepper.chat.with_user("stream these words").stream()]
        assert "".join(c.content for c in chunks) == "stream these words"
        assert len(chunks) == 4 and chunks[-1].finish_reason == "stop"
        assert [m[-1].content for m in pepper.llm.calls] == ["echo this back", "stream these words"]
