"""llm/anthropic against a real implementation of the Messages API: llama.cpp's server (xllamacpp).

The same SmolLM2 model and server as the OpenAI-compatible tests (the ``llama_server``
fixture) answer ``POST /v1/messages`` in Anthropic's wire format: message objects,
the streaming event sequence (message_start, content_block_delta, message_delta,
message_stop) and ``usage`` with prompt-cache counts. Greedy decoding (temperature 0)
makes the answers repeatable.
"""

from __future__ import annotations

import pytest

from pepperpy import PepperPy

pytestmark = pytest.mark.integration
KEY = "sk-ant-local-test"  # llama.cpp asks for no key; the plugin sends it as x-api-key
ONE_WORD = "Answer in one word."
CAPITAL = "What is the capital of France?"


@pytest.fixture
async def pepper(remote_manager, llama_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "anthropic", base_url=llama_server, api_key=KEY, temperature=0, max_tokens=40
    ) as ready:
        yield ready


def capital(pepper, system: str = ONE_WORD, **options):
    return pepper.chat.with_system(system).with_user(CAPITAL).with_options(**options)


async def test_generate_with_a_system_prompt(pepper):
    result = await capital(pepper).generate()
    assert "Paris" in result.content
    assert result.metadata["finish_reason"] == "end_turn"
    assert result.usage.prompt_tokens > 10 and 0 < result.usage.completion_tokens < 40
    long_system = ONE_WORD + " You are a geography teacher who knows every capital city of Europe by heart."
    longer = await capital(pepper, system=long_system).generate()
    assert longer.usage.prompt_tokens > result.usage.prompt_tokens, "the system prompt is not part of the prompt"


async def test_prompt_tokens_count_the_cached_part(pepper):
    """The second identical request is served mostly from llama.cpp's prompt cache, which the Messages
    API reports as cache_read_input_tokens apart from input_tokens; the prompt is still all of it."""
    first = await capital(pepper).generate()
    second = await capital(pepper).generate()
    assert second.content == first.content
    assert second.usage.prompt_tokens == first.usage.prompt_tokens > 10


async def test_stream_yields_several_chunks_and_usage(pepper):
    whole = await capital(pepper).generate()
    chunks = [chunk async for chunk in capital(pepper).stream()]
    texts = [chunk.content for chunk in chunks if chunk.content]
    assert len(texts) >= 3
    assert "".join(texts) == whole.content
    last = chunks[-1]
    assert last.finish_reason == "end_turn"
    assert last.usage.prompt_tokens == whole.usage.prompt_tokens
    assert last.usage.completion_tokens == whole.usage.completion_tokens


async def test_max_tokens_is_honored(pepper):
    result = await capital(pepper, max_tokens=3).generate()
    assert result.usage.completion_tokens == 3
    assert result.metadata["finish_reason"] == "max_tokens"
    chunks = [chunk async for chunk in capital(pepper, max_tokens=3).stream()]
    assert chunks[-1].finish_reason == "max_tokens" and chunks[-1].usage.completion_tokens == 3
    assert "".join(c.content for c in chunks) == result.content


async def test_stop_sequences_are_honored(pepper):
    assert "Paris" in (await capital(pepper).generate()).content
    stopped = await capital(pepper, stop=["Paris"]).generate()
    assert stopped.content and "Paris" not in stopped.content
    streamed = "".join([chunk.content async for chunk in capital(pepper, stop=["Paris"]).stream()])
    assert streamed == stopped.content


async def test_a_conversation_sends_the_earlier_turns(pepper):
    conversation = pepper.conversation(system="Be brief.")
    first = await conversation.say("What is the capital of France?")
    second = await conversation.say("And of Italy?")
    assert first.content and second.content
    assert [m.role.value for m in conversation.messages] == ["system", "user", "assistant", "user", "assistant"]
    assert second.usage.prompt_tokens > first.usage.prompt_tokens + first.usage.completion_tokens


@pytest.mark.parametrize("suffix", ["", "/v1"])
async def test_anthropic_base_url_from_the_environment(remote_manager, llama_server, monkeypatch, suffix):
    monkeypatch.setenv("ANTHROPIC_BASE_URL", llama_server.removesuffix("/v1") + suffix)
    monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
    async with PepperPy(plugin_manager=remote_manager).with_llm("anthropic", temperature=0, max_tokens=20) as pepper:
        result = await capital(pepper).generate()
    assert "Paris" in result.content
