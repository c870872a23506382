"""llm/openai with api="responses" against the local scripted server, for what neither llama.cpp nor the
recordings show: a reasoning summary streamed in two parts, a response that fails midway (``response.failed``,
an ``error`` event), and a stream cut before ``response.completed``. Events follow the Responses API's
documented stream format."""

from __future__ import annotations

import json

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ProviderError
from pepperpy.llm import ReasoningPart
from tests.servers.scripted import Reply

pytestmark = pytest.mark.integration
REASONING = {"type": "reasoning", "id": "rs_1", "encrypted_content": "opaque-payload",
             "summary": [{"type": "summary_text", "text": "First, add."}, {"type": "summary_text", "text": "Then check."}]}
MESSAGE = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
           "content": [{"type": "output_text", "text": "4", "annotations": []}]}
DONE = {"id": "resp_1", "object": "response", "status": "completed", "model": "o4-mini", "output": [REASONING, MESSAGE],
        "usage": {"input_tokens": 10, "output_tokens": 30, "input_tokens_details": {"cached_tokens": 4},
                  "output_tokens_details": {"reasoning_tokens": 20}}}


def sse(*events: dict) -> list[str]:
    return [f"event: {e['type']}\ndata: {json.dumps(e)}" for e in events]


REASONED_STREAM = sse(
    {"type": "response.created", "response": {**DONE, "status": "in_progress", "output": []}},
    {"type": "response.output_item.added", "output_index": 0, "item": {**REASONING, "summary": []}},
    {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "summary_index": 0},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "First, "},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 0, "delta": "add."},
    {"type": "response.reasoning_summary_part.added", "item_id": "rs_1", "summary_index": 1},
    {"type": "response.reasoning_summary_text.delta", "item_id": "rs_1", "summary_index": 1, "delta": "Then check."},
    {"type": "response.output_item.added", "output_index": 1, "item": {**MESSAGE, "content": []}},
    {"type": "response.output_text.delta", "item_id": "msg_1", "output_index": 1, "content_index": 0, "delta": "4"},
    {"type": "response.completed", "response": DONE},
)


@pytest.fixture
async def pepper(remote_manager, scripted):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=scripted.base_url, api_key="sk-test", api="responses", model="o4-mini", max_retries=0
    ) as ready:
        yield ready


async def test_a_two_part_summary_streams_as_generate_gives_it(pepper, scripted):
    scripted.reset(Reply(json=DONE), Reply(events=REASONED_STREAM))
    whole = await pepper.chat.with_user("2+2?").with_options(reasoning="high").generate()
    chunks = [c async for c in pepper.chat.with_user("2+2?").with_options(reasoning="high").stream()]
    assert whole.reasoning == "First, add.\n\nThen check." == "".join(c.reasoning for c in chunks)
    assert whole.content == "4" == "".join(c.content for c in chunks)
    usage = chunks[-1].usage
    assert (usage.cache_read_tokens, usage.reasoning_tokens) == (whole.usage.cache_read_tokens, whole.usage.reasoning_tokens) == (4, 20)
    (part,) = [p for p in chunks[-1].message.parts if isinstance(p, ReasoningPart)]
    assert (part.id, part.encrypted) == ("rs_1", "opaque-payload")
    assert scripted.requests[0].json()["reasoning"] == {"effort": "high", "summary": "auto"}


async def test_a_streamed_conversation_sends_the_encrypted_reasoning_back(pepper, scripted):
    scripted.reset(Reply(events=REASONED_STREAM), Reply(json=DONE))
    conversation = pepper.conversation()
    [c async for c in conversation.stream("2+2?", reasoning="high")]
    await conversation.say("And 3+3?", reasoning="high")
    again = scripted.requests[1].json()["input"]
    reasoning_items = [item for item in again if item.get("type") == "reasoning"]
    assert [(i["id"], i["encrypted_content"]) for i in reasoning_items] == [("rs_1", "opaque-payload")]


async def test_a_failed_response_and_an_error_event_raise_with_the_services_message(pepper, scripted):
    failed = {**DONE, "status": "failed", "output": [], "error": {"code": "server_error", "message": "The model crashed"}}
    scripted.reset(
        Reply(events=sse({"type": "response.output_text.delta", "delta": "4"}, {"type": "response.failed", "response": failed})),
        Reply(events=sse({"type": "error", "code": "rate_limit_exceeded", "message": "Slow down", "param": None})),
    )
    for expected in ("The model crashed", "Slow down"):
        with pytest.raises(ProviderError, match=expected):
            async for _ in pepper.chat.with_user("2+2?").stream():
                pass


async def test_a_stream_cut_before_completed_is_an_error(pepper, scripted):
    scripted.reset(Reply(events=REASONED_STREAM, cut_after=5))
    received = []
    with pytest.raises(ProviderError):
        async for chunk in pepper.chat.with_user("2+2?").stream():
            received.append(chunk.reasoning)
    assert "".join(received) == "First, add."


async def test_an_mcp_tools_image_goes_back_in_its_function_call_output(pepper, scripted):
    """The demo MCP server's ``picture`` tool (a real server, stdio): the Responses API takes a function call's output
    as a list of input parts, so the image goes back there (a text-only result stays a string)."""
    import sys
    from pathlib import Path

    from openai.types.responses.response_input_item import FunctionCallOutput

    from pepperpy import MCPServer

    demo = str(Path(__file__).resolve().parents[1] / "servers" / "mcp_demo.py")
    calls = [{"type": "function_call", "id": f"fc_{n}", "call_id": f"call_{n}", "name": name, "arguments": arguments,
              "status": "completed"} for n, name, arguments in ((1, "picture", "{}"), (2, "echo", '{"text": "hi"}'))]
    scripted.reset(Reply(json={**DONE, "output": calls}), Reply(json=DONE))
    server = MCPServer.stdio(sys.executable, demo, name="demo")
    result = await pepper.chat.with_user("Draw").with_tools(server).generate()
    assert result.content == "4"
    picture, echo = [i for i in scripted.requests[1].json()["input"] if i.get("type") == "function_call_output"]
    FunctionCallOutput.model_validate(picture)
    assert picture["call_id"] == "call_1" and [p["type"] for p in picture["output"]] == ["input_image"]
    assert picture["output"][0]["image_url"].startswith("data:image/png;base64,")
    assert echo == {"type": "function_call_output", "call_id": "call_2", "output": "hi"}
