"""llm/anthropic maps parts to Messages API blocks (images, documents, cache points) and thinking both ways:
reasoning= as a thinking budget, thinking blocks read with their signatures and sent back unchanged. The
answer shapes follow the recorded traffic in ../shared/cassettes (pydantic-ai, anthropic/*thinking_part*)."""

from __future__ import annotations

import base64
import sys

import pytest

from pepperpy import File, Image
from pepperpy.errors import InvalidInputError
from pepperpy.llm import Message, ReasoningPart, TextPart

PNG = b"\x89PNG\r\n\x1a\n" + bytes(8)
SIGNATURE = "Eq8CCkYICxgCKkDdadQOXMzNBqjrNVAKWsgUfg49NpPg026zBGxIIGwEHVCq0JTW"
RECORDED_ANSWER = {  # the shape of the recorded answer to "How do I cross the street?" with thinking enabled
    "content": [
        {"type": "thinking", "thinking": "A question about pedestrian safety.", "signature": SIGNATURE},
        {"type": "text", "text": "Look left, then right."},
    ],
    "id": "msg_01TGA8SWcHTTn5674cmicbnJ", "model": "claude-sonnet-4-5-20250929", "role": "assistant",
    "stop_reason": "end_turn", "type": "message",
    "usage": {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "input_tokens": 43, "output_tokens": 321},
}


@pytest.fixture
def wire(builtin_manager):
    provider_class = builtin_manager.load_class("llm", "anthropic")
    return sys.modules[provider_class.__module__.rsplit(".", 1)[0] + ".wire"]


def body(wire, messages, **options):
    return wire.request_body("llm/anthropic", {"model": "claude", "max_tokens": 1024}, messages, options, False)


def test_images_and_documents_become_blocks(wire):
    message = Message(role="user", content=[
        "Compare", Image(PNG), Image("https://example.com/b.jpg"), File(b"%PDF-1.4", name="c.pdf"),
        File(b"plain notes", "text/plain", name="n.txt"),
    ])
    (turn,) = body(wire, [message])["messages"]
    assert turn["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/b.jpg"}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf",
                                        "data": base64.b64encode(b"%PDF-1.4").decode()}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain notes"}},
    ]


def test_a_cached_system_prompt_carries_cache_control(wire):
    messages = [Message(role="system", content=[TextPart(text="A long manual", cache=True)]), Message(role="user", content="Hi")]
    sent = body(wire, messages)
    assert sent["system"] == [{"type": "text", "text": "A long manual", "cache_control": {"type": "ephemeral"}}]
    assert body(wire, [Message(role="system", content="Short"), Message(role="user", content="Hi")])["system"] == "Short"


def test_an_image_over_the_documented_limit_fails_before_sending(wire):
    big = Image(PNG + bytes(5 * 1024 * 1024))
    with pytest.raises(InvalidInputError, match="at most 5 MB per image"):
        body(wire, [Message(role="user", content=["Look", big])])


@pytest.mark.parametrize("given, thinking, max_tokens", [
    ("low", {"type": "enabled", "budget_tokens": 1024}, 2048),
    (True, {"type": "enabled", "budget_tokens": 4096}, 5120),
    (3000, {"type": "enabled", "budget_tokens": 3000}, 4024),
    (False, {"type": "disabled"}, 1024),
])
def test_reasoning_becomes_a_thinking_budget(wire, given, thinking, max_tokens):
    sent = body(wire, [Message(role="user", content="Hi")], reasoning=given)
    assert (sent["thinking"], sent["max_tokens"]) == (thinking, max_tokens)


def test_thinking_is_read_with_its_signature_and_sent_back_unchanged(wire):
    (thought,) = wire.reasoning_parts(RECORDED_ANSWER["content"])
    assert thought == ReasoningPart(text="A question about pedestrian safety.", signature=SIGNATURE)
    history = [
        Message(role="user", content="How do I cross the street?"),
        Message(role="assistant", content=[thought, TextPart(text="Look left, then right.")]),
        Message(role="assistant", content=[ReasoningPart(text="from another provider, unsigned"), "ok"]),
        Message(role="user", content="And at night?"),
    ]
    turns = body(wire, history, reasoning="low")["messages"]
    assert turns[1]["content"] == [  # as the recorded second request sends it
        {"type": "thinking", "thinking": "A question about pedestrian safety.", "signature": SIGNATURE},
        {"type": "text", "text": "Look left, then right."},
    ]
    assert turns[2]["content"] == [{"type": "text", "text": "ok"}]  # unsigned reasoning cannot be sent back


def test_streamed_thinking_deltas_are_reasoning(wire):
    state = wire.StreamState("llm/anthropic")
    events = [
        ("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "thinking_delta", "thinking": "This is"}}),
        ("content_block_delta", {"index": 0, "delta": {"type": "signature_delta", "signature": SIGNATURE}}),
        ("content_block_start", {"index": 1, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "text_delta", "text": "Look"}}),
    ]
    assert [state.take(kind, event) for kind, event in events] == [("", ""), ("", "This is"), ("", ""), ("", ""), ("Look", "")]


def test_a_stream_keeps_its_thinking_blocks_whole_for_the_reply_message(wire):
    """Signatures come only in signature_delta events; redacted blocks only in their start event."""
    state = wire.StreamState("llm/anthropic")
    events = [
        ("content_block_start", {"index": 0, "content_block": {"type": "redacted_thinking", "data": "opaque-1"}}),
        ("content_block_start", {"index": 1, "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "thinking_delta", "thinking": "This "}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "thinking_delta", "thinking": "is"}}),
        ("content_block_delta", {"index": 1, "delta": {"type": "signature_delta", "signature": SIGNATURE}}),
        ("content_block_start", {"index": 2, "content_block": {"type": "text", "text": ""}}),
        ("content_block_delta", {"index": 2, "delta": {"type": "text_delta", "text": "Look"}}),
        ("content_block_start", {"index": 3, "content_block": {"type": "tool_use", "id": "t1", "name": "look"}}),
        ("content_block_delta", {"index": 3, "delta": {"type": "input_json_delta", "partial_json": "{}"}}),
    ]
    for kind, event in events:
        state.take(kind, event)
    reply = state.message()
    assert reply.content == [ReasoningPart(encrypted="opaque-1"), ReasoningPart(text="This is", signature=SIGNATURE), TextPart(text="Look")]
    assert [c.name for c in reply.tool_calls] == ["look"]
    _, turns = wire.split_messages([Message(role="user", content="Hi"), reply])
    assert turns[1]["content"][:2] == [
        {"type": "redacted_thinking", "data": "opaque-1"}, {"type": "thinking", "thinking": "This is", "signature": SIGNATURE}
    ]


def test_an_unsigned_streamed_thinking_block_is_not_sent_back(wire):
    state = wire.StreamState("llm/anthropic")
    state.take("content_block_start", {"index": 0, "content_block": {"type": "thinking", "thinking": "hm", "signature": ""}})
    assert state.message().content == [ReasoningPart(text="hm"), TextPart(text="")]


def test_a_tool_result_with_an_image_goes_as_text_and_image_blocks(wire):
    """An MCP tool's result (text and an image) stays whole in the tool_result block; a plain one stays text."""
    messages = [
        Message(role="user", content="Show me"),
        Message(role="assistant", content="", tool_calls=[{"id": "t1", "name": "picture"}, {"id": "t2", "name": "add"}]),
        Message(role="tool", tool_call_id="t1", content=[TextPart(text="a dot"), Image(PNG, "image/png")]),
        Message(role="tool", tool_call_id="t2", content="5"),
    ]
    [_, _, results] = body(wire, messages)["messages"]
    assert results["content"] == [
        {"type": "tool_result", "tool_use_id": "t1", "content": [
            {"type": "text", "text": "a dot"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": base64.b64encode(PNG).decode()}},
        ]},
        {"type": "tool_result", "tool_use_id": "t2", "content": "5"},
    ]
