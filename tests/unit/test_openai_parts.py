"""llm/openai maps parts to Chat Completions content parts and reasoning= to reasoning_effort (request bodies
checked as built; the live server tests are in tests/integration/test_reasoning_llamacpp.py)."""

from __future__ import annotations

import base64
import sys

import pytest

from pepperpy import Audio, File, Image
from pepperpy.llm import Message, ReasoningPart

PNG = b"\x89PNG\r\n\x1a\n" + bytes(8)
WAV = b"RIFF\x00\x00\x00\x00WAVEfmt "


@pytest.fixture
def wire(builtin_manager):
    provider_class = builtin_manager.load_class("llm", "openai")
    return sys.modules[provider_class.__module__.rsplit(".", 1)[0] + ".wire"]


def body(wire, messages, **options):
    return wire.request_body("llm/openai", {"model": "m"}, messages, options, json_schema=True, stream=False)


def test_user_parts_become_content_parts(wire):
    message = Message(role="user", content=[
        "Compare", Image(PNG), Image("https://example.com/b.jpg"), Audio(WAV), File(b"%PDF-1.4", name="c.pdf"),
    ])
    (sent,) = body(wire, [message])["messages"]
    b64 = base64.b64encode
    assert sent["content"] == [
        {"type": "text", "text": "Compare"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + b64(PNG).decode()}},
        {"type": "image_url", "image_url": {"url": "https://example.com/b.jpg"}},
        {"type": "input_audio", "input_audio": {"data": b64(WAV).decode(), "format": "wav"}},
        {"type": "file", "file": {"filename": "c.pdf", "file_data": "data:application/pdf;base64," + b64(b"%PDF-1.4").decode()}},
    ]


def test_plain_text_and_assistant_reasoning(wire):
    messages = [
        Message(role="user", content="Hi"),
        Message(role="assistant", content=[ReasoningPart(text="greet back"), "Hello!"]),
    ]
    assert [m["content"] for m in body(wire, messages)["messages"]] == ["Hi", "Hello!"]  # reasoning is not sent back


@pytest.mark.parametrize("given, sent", [
    ("low", "low"), ("high", "high"), (True, "medium"), (False, "none"), (1024, "low"), (4096, "medium"), (32000, "high"),
])
def test_reasoning_becomes_reasoning_effort(wire, given, sent):
    assert body(wire, [Message(role="user", content="Hi")], reasoning=given)["reasoning_effort"] == sent


def test_no_reasoning_option_sends_none(wire):
    assert "reasoning_effort" not in body(wire, [Message(role="user", content="Hi")])


def test_reasoning_is_read_from_reasoning_content_or_reasoning(wire):
    assert wire.reasoning_of({"content": "4", "reasoning_content": "2+2"}) == "2+2"
    assert wire.reasoning_of({"content": "4", "reasoning": "2+2"}) == "2+2"
    assert wire.reasoning_of({"content": "4"}) == ""


def test_images_of_tool_results_follow_the_tool_messages_in_a_user_message(wire):
    """A Chat Completions tool message takes text only: a round's tool messages stay together right after the call,
    their text in them, and their images follow in one user message naming each call; a text-only round adds none."""
    from pepperpy.llm import TextPart, ToolCall

    calls = [ToolCall(id="c1", name="chart", arguments={}), ToolCall(id="c2", name="note", arguments={})]
    messages = [
        Message(role="user", content="Plot it"),
        Message(role="assistant", content="", tool_calls=calls),
        Message(role="tool", tool_call_id="c1", name="chart", content=[TextPart(text="a dot"), Image(PNG, "image/png")]),
        Message(role="tool", tool_call_id="c2", name="note", content="noted"),
        Message(role="assistant", content="Here it is."),
        Message(role="assistant", content="", tool_calls=[ToolCall(id="c3", name="note", arguments={})]),
        Message(role="tool", tool_call_id="c3", name="note", content="noted again"),
    ]
    sent = body(wire, messages)["messages"]
    assert [(m["role"], m.get("tool_call_id")) for m in sent] == [
        ("user", None), ("assistant", None), ("tool", "c1"), ("tool", "c2"), ("user", None), ("assistant", None),
        ("assistant", None), ("tool", "c3"),
    ]
    assert sent[2]["content"] == "a dot"
    assert sent[4]["content"] == [
        {"type": "text", "text": "The image from the tool result of chart (c1):"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
    ]
