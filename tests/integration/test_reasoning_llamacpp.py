"""Reasoning from llama.cpp's real server: started with a Qwen3-style chat template (tests/servers/qwen3_style.jinja)
whose generation prompt opens <think>, llama.cpp returns the thinking as ``reasoning_content`` apart from the
answer, and llm/openai gives it as ``result.reasoning`` and ``chunk.reasoning``. SmolLM2 has no reasoning
training, so a server grammar makes every answer a short reasoning, </think>, then a short answer."""

from __future__ import annotations

import json

import httpx
import pytest

from pepperpy import PepperPy

pytestmark = pytest.mark.integration
SETTINGS = {"temperature": 0, "seed": 3, "max_tokens": 60}


@pytest.fixture
async def pepper(remote_manager, thinking_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm("llamacpp", base_url=thinking_server, **SETTINGS) as ready:
        yield ready


def _clean(text: str) -> bool:
    return "<think>" not in text and "</think>" not in text


async def test_generate_gives_the_reasoning_apart_from_the_answer(pepper):
    result = await pepper.chat.with_user("What is 2+2?").generate()
    assert result.reasoning.strip() and result.content.strip()
    assert _clean(result.reasoning) and _clean(result.content)
    reply = result.messages[-1]
    assert (reply.reasoning, reply.text) == (result.reasoning, result.content)


async def test_stream_gives_reasoning_chunks_then_answer_chunks(pepper):
    whole = await pepper.chat.with_user("What is 2+2?").generate()
    chunks = [chunk async for chunk in pepper.chat.with_user("What is 2+2?").stream()]
    assert "".join(c.reasoning for c in chunks) == whole.reasoning
    assert "".join(c.content for c in chunks) == whole.content
    thinking = [i for i, c in enumerate(chunks) if c.reasoning]
    answering = [i for i, c in enumerate(chunks) if c.content]
    assert thinking and answering and max(thinking) < min(answering)


async def test_a_conversation_keeps_the_reasoning_and_goes_on(pepper):
    conv = pepper.conversation()
    first = await conv.say("What is 2+2?", reasoning="low")
    second = await conv.say("And 3+3?")
    assert conv.messages[1].reasoning == first.reasoning and second.content.strip()


async def test_anthropic_thinking_blocks_from_the_messages_route(remote_manager, thinking_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "anthropic", base_url=thinking_server, api_key="sk-ant-local-test", temperature=0, max_tokens=60
    ) as pepper:
        result = await pepper.chat.with_user("What is 2+2?").generate()
        chunks = [chunk async for chunk in pepper.chat.with_user("What is 2+2?").stream()]
    assert result.reasoning.strip() and result.content.strip()
    assert _clean(result.reasoning) and _clean(result.content)
    assert result.messages[-1].reasoning == result.reasoning
    assert "".join(c.reasoning for c in chunks) == result.reasoning and "".join(c.content for c in chunks) == result.content


async def test_what_the_messages_route_streams_for_thinking_goes_back_in_the_next_turn(remote_manager, thinking_server):
    """llama.cpp's /v1/messages streams the thinking block and a signature_delta; its signature is empty (llama.cpp
    signs nothing), so the conversation keeps the thinking with no signature, as the route gave it, and goes on
    (an unsigned block is not sent back: Anthropic would refuse it)."""
    body = {"model": "x", "max_tokens": 60, "temperature": 0, "stream": True,
            "messages": [{"role": "user", "content": "What is 2+2?"}]}
    route = thinking_server.rstrip("/").removesuffix("/v1") + "/v1/messages"
    with httpx.stream("POST", route, json=body, timeout=60) as response:
        assert response.status_code == 200
        lines = [line for line in response.iter_lines() if line.startswith("data: ")]
    events = [json.loads(line.removeprefix("data: ")) for line in lines]
    deltas = [e["delta"] for e in events if e.get("type") == "content_block_delta"]
    assert any(d.get("type") == "thinking_delta" for d in deltas)
    signatures = [d["signature"] for d in deltas if d.get("type") == "signature_delta"]
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "anthropic", base_url=thinking_server, api_key="sk-ant-local-test", temperature=0, max_tokens=60
    ) as pepper:
        conversation = pepper.conversation()
        chunks = [chunk async for chunk in conversation.stream("What is 2+2?")]
        (thought, answer) = conversation.messages[-1].content
        assert thought.text == "".join(c.reasoning for c in chunks) and answer.text == "".join(c.content for c in chunks)
        assert thought.signature == ("".join(signatures) or None)
        second = [chunk async for chunk in conversation.stream("And 3+3?")]
    assert "".join(c.content for c in second).strip()
