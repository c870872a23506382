"""llm/anthropic against the local scripted server speaking the documented Messages API.

Anthropic's service cannot run here, so these replies reproduce its documented wire
format: message objects, the streaming event sequence and tool_use blocks.
"""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import AuthenticationError, ProviderError
from tests.servers.scripted import Reply

pytestmark = pytest.mark.integration
SECRET = "test-anthropic-key-not-real-0123456789"


def message(*blocks: dict, stop: str = "end_turn") -> dict:
    return {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-test", "content": list(blocks),
        "stop_reason": stop, "usage": {"input_tokens": 12, "output_tokens": 6},
    }


def text(value: str) -> dict:
    return {"type": "text", "text": value}


def sse(event: str, payload: dict) -> str:
    return f"event: {event}\ndata: {json.dumps({'type': event, **payload})}"


def text_stream(pieces: list[str]) -> list[str]:
    return [
        sse("message_start", {"message": {"id": "msg_1", "usage": {"input_tokens": 9, "output_tokens": 1}}}),
        sse("content_block_start", {"index": 0, "content_block": {"type": "text", "text": ""}}),
        "event: ping\ndata: {\"type\": \"ping\"}",
        *[sse("content_block_delta", {"index": 0, "delta": {"type": "text_delta", "text": p}}) for p in pieces],
        sse("content_block_stop", {"index": 0}),
        sse("message_delta", {"delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": len(pieces)}}),
        sse("message_stop", {}),
    ]


@pytest.fixture
async def pepper(remote_manager, scripted):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "anthropic", base_url=scripted.base_url, api_key=SECRET, max_retries=1, retry_budget=5
    ) as ready:
        yield ready


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


async def test_system_prompt_headers_and_usage(pepper, scripted):
    scripted.reset(Reply(json=message(text("Hello "), text("there."))))
    result = await pepper.chat.with_system("Be brief.").with_user("Hi").with_options(temperature=0, stop=["\n"]).generate()
    assert result.content == "Hello there."
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (12, 6)
    (request,) = scripted.requests
    assert request.path == "/v1/messages"
    assert request.headers["x-api-key"] == SECRET and request.headers["anthropic-version"] == "2023-06-01"
    assert request.json() == {
        "model": "claude-3-5-haiku-latest", "max_tokens": 1024, "system": "Be brief.",
        "messages": [{"role": "user", "content": "Hi"}], "temperature": 0, "stop_sequences": ["\n"],
    }


async def test_streaming_events_become_chunks_with_usage(pepper, scripted):
    scripted.reset(Reply(events=text_stream(["The ", "sky ", "is blue."])))
    chunks = [c async for c in pepper.chat.with_user("Why?").stream()]
    assert "".join(c.content for c in chunks) == "The sky is blue."
    assert chunks[-1].finish_reason == "end_turn"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (9, 3)
    assert scripted.requests[0].json()["stream"] is True


async def test_tool_use_loop(pepper, scripted):
    scripted.reset(
        Reply(json=message(text("Let me add."), {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 3}}, stop="tool_use")),
        Reply(json=message(text("2 + 3 = 5"))),
    )
    result = await pepper.chat.with_user("What is 2 + 3?").with_tools(add).generate()
    assert result.content == "2 + 3 = 5"
    first, second = (r.json() for r in scripted.requests)
    assert first["tools"] == [{
        "name": "add", "description": "Add two integers.",
        "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}, "b": {"type": "integer"}}, "required": ["a", "b"]},
    }]
    assert second["messages"][1:] == [
        {"role": "assistant", "content": [text("Let me add."), {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 2, "b": 3}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "5"}]},
    ]


async def test_streamed_tool_use_input_json_is_joined(pepper, scripted):
    events = [
        sse("message_start", {"message": {"usage": {"input_tokens": 5}}}),
        sse("content_block_start", {"index": 0, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "add", "input": {}}}),
        sse("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"a": 4, '}}),
        sse("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '"b": 5}'}}),
        sse("content_block_stop", {"index": 0}),
        sse("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 7}}),
        sse("message_stop", {}),
    ]
    scripted.reset(Reply(events=events), Reply(events=text_stream(["4 + 5 ", "= 9"])))
    chunks = [c async for c in pepper.chat.with_user("4+5").with_tools(add).stream()]
    (asked,) = [c for c in chunks if c.tool_calls]
    assert [(c.id, c.arguments) for c in asked.tool_calls] == [("toolu_9", {"a": 4, "b": 5})]
    assert asked.finish_reason == "tool_use"
    (answered,) = [c for c in chunks if c.tool_results]
    assert [(r.tool_call_id, r.content) for r in answered.tool_results] == [("toolu_9", "9")]
    assert "".join(c.content for c in chunks) == "4 + 5 = 9"
    second = scripted.requests[1].json()
    assert second["stream"] is True and second["messages"][1:] == [
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_9", "name": "add", "input": {"a": 4, "b": 5}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_9", "content": "9"}]},
    ]


async def test_error_event_in_stream(pepper, scripted):
    scripted.reset(Reply(events=[sse("message_start", {"message": {}}), sse("error", {"error": {"type": "overloaded_error", "message": "Overloaded"}})]))
    with pytest.raises(ProviderError, match="overloaded_error: Overloaded"):
        async for _ in pepper.chat.with_user("x").stream():
            pass


async def test_stream_cut_before_message_stop(pepper, scripted):
    scripted.reset(Reply(events=text_stream(["a", "b", "c"]), cut_after=4))
    with pytest.raises(ProviderError, match="broke off midway"):
        async for _ in pepper.chat.with_user("x").stream():
            pass
    assert len(scripted.requests) == 1


class Answer(BaseModel):
    value: int


async def test_structured_output_asks_for_json_in_the_system_prompt(pepper, scripted):
    scripted.reset(Reply(json=message(text('{"value": 42}'))))
    result = await pepper.chat.with_system("Be exact.").with_user("6*7?").with_response_model(Answer).generate()
    assert result.parsed == Answer(value=42)
    system = scripted.requests[0].json()["system"]
    assert system.startswith("Be exact.") and '"value"' in system


async def test_authentication_error_keeps_the_message_not_the_key(pepper, scripted):
    scripted.reset(Reply(status=401, json={"type": "error", "error": {"type": "authentication_error", "message": "invalid x-api-key"}}))
    with pytest.raises(AuthenticationError, match="invalid x-api-key") as raised:
        await pepper.chat.with_user("x").generate()
    assert SECRET not in str(raised.value)


@pytest.mark.parametrize("suffix", ["", "/v1"])
async def test_anthropic_base_url_from_the_environment_as_the_sdk_reads_it(remote_manager, scripted, monkeypatch, suffix):
    root = scripted.base_url.removesuffix("/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", root + suffix)
    scripted.reset(Reply(json=message(text("from env"))))
    async with remote_manager.create_provider("llm", "anthropic", api_key=SECRET) as llm:
        assert (await llm.generate("hi")).content == "from env"
    assert scripted.requests[0].path == "/v1/messages"
