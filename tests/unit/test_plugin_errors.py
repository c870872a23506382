"""A plugin's own exception reaches the caller as a PluginError naming the plugin and the method (issue 19); the
isolated side of the same rule is in tests/integration/test_isolation.py."""

from __future__ import annotations

import asyncio

import pytest

from pepperpy.core import PepperpyPlugin
from pepperpy.errors import ConfigError, PluginError
from pepperpy.llm import GenerationResult, LLMProvider


class Speaker(PepperpyPlugin):
    """A category of its own: its public async methods are its interface."""

    async def speak(self, text: str) -> str:
        if text == "bug":
            raise ValueError("boom")
        if text == "mistake":
            raise ConfigError("tts/speaker: say something")
        if text == "wait":
            await asyncio.sleep(3600)
        return text

    async def words(self, text: str):
        for word in text.split():
            if word == "bug":
                raise KeyError(word)
            yield word

    async def calls_itself(self) -> str:
        try:
            await self.speak("bug")
        except PluginError as exc:
            return f"caught {type(exc.__cause__).__name__}"
        return "nothing"


class HTTPHelpers(PepperpyPlugin):
    """A base with helpers and no category: reused by an LLM provider, its helpers' exceptions stay raw."""

    async def fetch(self) -> str:
        raise OSError("connection refused")


class HelpedLLM(HTTPHelpers, LLMProvider):
    async def generate(self, messages, **options):
        try:
            return GenerationResult(content=await self.fetch())
        except OSError as exc:  # the plugin's own handling of its helper still sees the OSError
            return GenerationResult(content=f"handled {exc}")


async def test_a_custom_categorys_method_and_stream_name_the_plugin_and_the_method():
    speaker = Speaker()
    with pytest.raises(PluginError) as failed:
        await speaker.speak("bug")
    assert str(failed.value) == f"{speaker.plugin_id}: speak() raised ValueError: boom"
    assert isinstance(failed.value.__cause__, ValueError)
    received = []
    with pytest.raises(PluginError) as streamed:
        async for word in speaker.words("one bug two"):
            received.append(word)
    assert received == ["one"] and str(streamed.value) == f"{speaker.plugin_id}: words() raised KeyError: 'bug'"
    assert await speaker.calls_itself() == "caught ValueError"


async def test_pepperpy_errors_and_cancellation_pass_unchanged():
    speaker = Speaker()
    with pytest.raises(ConfigError, match="^tts/speaker: say something$"):
        await speaker.speak("mistake")
    task = asyncio.ensure_future(speaker.speak("wait"))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def test_a_helper_base_of_a_known_category_keeps_its_exceptions():
    async with HelpedLLM() as llm:
        assert (await llm.generate("hi")).content == "handled connection refused"
