"""Usage details and cost from real answers: llama.cpp's prompt cache seen through three wire formats (OpenAI
chat and Anthropic Messages on its HTTP server, and llm/local in-process), and Anthropic's prompt caching in
recorded traffic (tests/fixtures/cassettes/anthropic, recorded from the real service by pydantic-ai's test
suite) served from 127.0.0.1 by tests/cassette_server.py.

llama.cpp reports the prompt tokens its KV cache already held as ``prompt_tokens_details.cached_tokens``
(chat) and ``cache_read_input_tokens`` (Messages): a second request with the same long prefix reads most of
its prompt from the cache. A local server is never priced.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price

from pepperpy import PepperPy

pytestmark = pytest.mark.integration
CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "anthropic"
SYSTEM = "You answer questions about geography in one short sentence. " * 12


async def ask_twice(pepper, stream: bool = False):
    """The same long prompt twice: the second is read mostly from llama.cpp's prompt cache."""
    answers = []
    for _ in range(2):
        chat = pepper.chat.with_system(SYSTEM).with_user("What is the capital of France?")
        if stream:
            answers.append([chunk async for chunk in chat.stream()][-1])
        else:
            answers.append(await chat.generate())
    return [answer.usage for answer in answers]


@pytest.mark.parametrize("stream", [False, True])
async def test_llamacpp_chat_reports_the_prompt_tokens_its_cache_held(remote_manager, llama_server, stream):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=llama_server, api_key="no-key", model="gpt-4o", temperature=0, max_tokens=8
    ) as pepper:
        first, second = await ask_twice(pepper, stream)
        totals = pepper.usage.total
    assert second.prompt_tokens == first.prompt_tokens > 100
    assert first.prompt_tokens // 2 < second.cache_read_tokens < second.prompt_tokens
    assert second.reasoning_tokens is None and second.cache_write_tokens is None, "not reported: None"
    assert second.service is None and second.cost is None, "a local server is never priced, whatever the model name"
    assert totals.cache_read_tokens == (first.cache_read_tokens or 0) + second.cache_read_tokens
    assert (totals.cost, totals.unpriced_calls) == (None, 2)


async def test_llamacpp_messages_api_reports_cache_reads(remote_manager, llama_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "anthropic", base_url=llama_server, api_key="sk-ant-local-test", temperature=0, max_tokens=8, model="claude"
    ) as pepper:
        first, second = await ask_twice(pepper)
    assert second.prompt_tokens == first.prompt_tokens > 100
    assert first.prompt_tokens // 2 < second.cache_read_tokens < second.prompt_tokens
    assert second.service == "anthropic" and second.cost is None, "llama.cpp's model is no Claude model: not priced"


async def test_llm_local_reports_the_prompt_tokens_its_cache_held(local_manager):
    async with PepperPy(plugin_manager=local_manager).with_llm("local", temperature=0, max_tokens=8) as pepper:
        first, second = await ask_twice(pepper)
        streamed = (await ask_twice(pepper, stream=True))[1]
    assert second.prompt_tokens == first.prompt_tokens > 100
    assert first.prompt_tokens // 2 < second.cache_read_tokens < second.prompt_tokens
    assert streamed.cache_read_tokens == second.cache_read_tokens
    assert second.model.endswith(".gguf") and second.service is None and second.cost is None


# -- Anthropic prompt caching, recorded --------------------------------------------------------------------


def anthropic_price(model: str, **counts: int):
    return calc_price(GenaiUsage(**counts), model, provider_id="anthropic").total_price


async def test_recorded_anthropic_cache_reads_and_writes_are_counted_and_priced(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_anthropic_cache_real_api.yaml")
    for interaction in recorded:  # recorded through the SDK's beta route; the plugin posts to /v1/messages
        interaction.path = interaction.path.removesuffix("?beta=true")
    asked = recorded[0].request_json()
    question, follow_up = asked["messages"][0]["content"][0]["text"], recorded[1].request_json()["messages"][2]
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "anthropic", base_url=f"{cassettes.base_url}/v1", api_key="sk-ant-not-real", model=asked["model"],
        max_tokens=asked["max_tokens"], max_retries=0,
    ) as pepper:
        conversation = pepper.conversation(asked["system"])
        first = await conversation.say(question)
        second = await conversation.say(follow_up["content"][0]["text"])
        report = pepper.usage
    model = "claude-sonnet-4-5-20250929"
    assert first.content.startswith("# What is Python?") and second.content
    assert (first.usage.prompt_tokens, first.usage.cache_read_tokens, first.usage.cache_write_tokens,
            first.usage.completion_tokens) == (3 + 1111, 1111, 0, 406)
    assert (second.usage.prompt_tokens, second.usage.cache_read_tokens, second.usage.cache_write_tokens,
            second.usage.completion_tokens) == (3 + 418 + 1111, 1111, 418, 33)
    assert (first.usage.model, first.usage.service) == (model, "anthropic")
    assert first.usage.cost == anthropic_price(model, input_tokens=1114, cache_read_tokens=1111, output_tokens=406)
    assert second.usage.cost == anthropic_price(
        model, input_tokens=1532, cache_read_tokens=1111, cache_write_tokens=418, output_tokens=33)
    assert first.usage.cost < anthropic_price(model, input_tokens=1114, output_tokens=406), "cache reads cost less"
    totals = report.total
    assert (totals.calls, totals.cache_read_tokens, totals.cache_write_tokens) == (2, 2222, 418)
    assert totals.cost == first.usage.cost + second.usage.cost and totals.unpriced_calls == 0
    sent = [request.json() for request in cassettes.requests]
    assert [m["role"] for m in sent[1]["messages"]] == [m["role"] for m in recorded[1].request_json()["messages"]]
    assert sent[1]["messages"][1]["content"] == first.content, "the first answer goes back as recorded"
    assert first.content == recorded[1].request_json()["messages"][1]["content"][0]["text"]
