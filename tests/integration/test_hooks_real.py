"""Hooks on real models: the cache in front of llm/local (a hit loads no model) and usage reported by
llm/local and by llm/openai against llama.cpp's real HTTP server."""

from __future__ import annotations

import pytest

from pepperpy import PepperPy

pytestmark = pytest.mark.integration
SETTINGS = {"temperature": 0, "seed": 3, "max_tokens": 24}


async def test_a_cached_local_answer_and_stream_come_back_without_loading_the_model(local_manager, tmp_path):
    path = tmp_path / "cache.db"
    async with PepperPy(plugin_manager=local_manager).with_llm("local").with_cache(path=path) as pepper:
        chat = pepper.chat.with_user("Name three colours.").with_options(**SETTINGS)
        chunks = [c async for c in chat.stream()]  # first: a stored generate() answer would serve it as one chunk
        answer = await chat.generate()  # a stored stream does not serve generate(): the model answers again
        usage = pepper.usage.total
    assert answer.content and len(chunks) > 3
    assert usage.calls == 2 and usage.prompt_tokens > 0 and usage.completion_tokens > 0

    later = PepperPy(plugin_manager=local_manager).with_llm("local").with_cache(path=path)
    chat = later.chat.with_user("Name three colours.").with_options(**SETTINGS)
    again = await chat.generate()
    replayed = [c async for c in chat.stream()]
    assert again.content == answer.content and again.metadata["cache"] == "hit"
    assert [c.content for c in replayed] == [c.content for c in chunks]  # chunk by chunk, as they came
    assert not later.llm.initialized, "a cache hit must not load the model"
    assert later.usage.total.calls == 0 and later.usage.total.cached_calls == 2
    assert later.usage.total.cached_completion_tokens == usage.completion_tokens  # the stored answers' own usage
    await later.aclose()


async def test_usage_from_an_openai_compatible_server_for_calls_and_streams(remote_manager, llama_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=llama_server, api_key="sk-local-test", model="smollm2", **SETTINGS
    ) as pepper:
        result = await pepper.chat.with_user("Say hello.").generate()
        async for _ in pepper.chat.with_user("Say goodbye.").stream():
            pass
        usage = pepper.usage
    assert result.usage.prompt_tokens > 0
    (key,) = list(usage)
    assert key[0] == "llm/openai"
    totals = usage[key]
    assert totals.calls == 2 and totals.prompt_tokens > result.usage.prompt_tokens
    assert totals.completion_tokens > result.usage.completion_tokens
