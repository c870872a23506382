"""llm/anthropic against recorded Messages API traffic (tests/fixtures/cassettes/anthropic, recorded from the
real service by pydantic-ai's test suite), served from 127.0.0.1 by tests/cassette_server.py.

Each test feeds llm/anthropic the recorded input, checks that every part of the recorded answer is parsed
(text, thinking with its signature, tool calls, usage), and that the request llm/anthropic builds carries
what the recorded request carried: system prompt, thinking budget, cache points, image and document source
shapes, thinking blocks sent back unchanged. Differences by design are named where they are dropped.
"""

from __future__ import annotations

import base64
import copy
import json
from pathlib import Path
from typing import Any

import pytest

from pepperpy import PepperPy
from pepperpy.llm import Message, MessageRole, ReasoningPart, TextPart
from pepperpy.parts import File, Image
from pepperpy.tools import Tool
from tests.cassette_server import CassetteServer, Interaction, load_cassette

pytestmark = pytest.mark.integration
CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "anthropic"
SECRET = "sk-ant-test-not-real-0123456789"


def recorded(name: str, repeat: int = 1) -> list[Interaction]:
    """The cassette's interactions (``repeat`` times over), at the path llm/anthropic posts to: the recorder
    used the SDK's beta client, which adds ``?beta=true`` to the same route."""
    interactions = load_cassette(CASSETTES / name) * repeat
    for interaction in interactions:
        interaction.path = interaction.path.removesuffix("?beta=true")
    return interactions


def anthropic(remote_manager, server: CassetteServer, model: str, **config: Any) -> PepperPy:
    return PepperPy(plugin_manager=remote_manager).with_llm(
        "anthropic", base_url=f"{server.base_url}/v1", api_key=SECRET, model=model, max_retries=0, **config
    )


def blocks(content: Any) -> list[dict[str, Any]]:
    """A turn's content as blocks: a plain string is the same as one text block to the service."""
    return [{"type": "text", "text": content}] if isinstance(content, str) else content


def turns(body: dict[str, Any]) -> list[dict[str, Any]]:
    """The turns, without what differs by design: ``is_error: false`` on tool results (the default)."""
    found = []
    for turn in body["messages"]:
        content = copy.deepcopy(blocks(turn["content"]))
        for block in content:
            if block.get("type") == "tool_result" and block.get("is_error") is False:
                del block["is_error"]
        found.append({"role": turn["role"], "content": content})
    return found


def sent(server: CassetteServer, interactions: list[Interaction]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(our request body, the recorded one) for each request, each with the key as a header and the same model."""
    assert len(server.requests) == len(interactions)
    pairs = []
    for request, interaction in zip(server.requests, interactions):
        assert request.path == "/v1/messages"
        assert request.headers["x-api-key"] == SECRET and request.headers["anthropic-version"]
        ours, theirs = request.json(), interaction.request_json()
        assert ours["model"] == theirs["model"]
        pairs.append((ours, theirs))
    return pairs


def events(interaction: Interaction) -> list[dict[str, Any]]:
    """The recorded stream's events, parsed."""
    lines = interaction.body.decode().splitlines()
    return [json.loads(line.removeprefix("data: ")) for line in lines if line.startswith("data: ")]


def answer(interaction: Interaction) -> dict[str, Any]:
    return json.loads(interaction.body)


async def test_a_streamed_thinking_block_keeps_its_signature_into_the_next_turn(remote_manager, cassettes):
    """The signature comes in a signature_delta event; the conversation keeps it with the thinking text and
    sends the block back unchanged in the next turn's request (the same recorded stream answers both turns)."""
    interactions = cassettes.serve(recorded("test_anthropic_model_thinking_part_stream.yaml", repeat=2))
    streamed = events(interactions[0])
    deltas = [e["delta"] for e in streamed if e["type"] == "content_block_delta"]
    thinking = "".join(d.get("thinking", "") for d in deltas if d["type"] == "thinking_delta")
    (signature,) = [d["signature"] for d in deltas if d["type"] == "signature_delta"]
    text = "".join(d["text"] for d in deltas if d["type"] == "text_delta")
    async with anthropic(remote_manager, cassettes, "claude-sonnet-4-0", max_tokens=4096 - 1024) as pepper:
        conversation = pepper.conversation()
        chunks = [chunk async for chunk in conversation.stream("How do I cross the street?", reasoning=1024)]
        assert "".join(c.reasoning for c in chunks) == thinking and "".join(c.content for c in chunks) == text
        kept = conversation.messages[-1]
        assert kept.content == [ReasoningPart(text=thinking, signature=signature), TextPart(text=text)]
        assert chunks[-1].finish_reason == "end_turn" and chunks[-1].usage.completion_tokens == 282
        [chunk async for chunk in conversation.stream("And a river?", reasoning=1024)]
    (first, theirs), (second, _) = sent(cassettes, interactions)
    assert turns(first) == turns(theirs) and first["stream"] is True
    assert (first["thinking"], first["max_tokens"]) == (theirs["thinking"], theirs["max_tokens"])
    assert second["messages"][1] == {
        "role": "assistant",
        "content": [{"type": "thinking", "thinking": thinking, "signature": signature}, {"type": "text", "text": text}],
    }, "the thinking block goes back byte for byte, before the text"


async def test_thinking_blocks_round_trip_without_streaming(remote_manager, cassettes):
    interactions = cassettes.serve(recorded("test_anthropic_model_thinking_part.yaml"))
    first_answer, second_answer = answer(interactions[0]), answer(interactions[1])
    questions = [interaction.request_json()["messages"][-1]["content"][0]["text"] for interaction in interactions]
    async with anthropic(remote_manager, cassettes, "claude-sonnet-4-5", max_tokens=4096 - 1024) as pepper:
        conversation = pepper.conversation()
        first = await conversation.say(questions[0], reasoning=1024)
        second = await conversation.say(questions[1], reasoning=1024)
    for result, raw in ((first, first_answer), (second, second_answer)):
        thought, said = raw["content"]
        assert (result.reasoning, result.content) == (thought["thinking"], said["text"])
        assert result.messages[-1].content[0] == ReasoningPart(text=thought["thinking"], signature=thought["signature"])
        assert result.metadata["finish_reason"] == "end_turn" and result.metadata["id"] == raw["id"]
        assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (raw["usage"]["input_tokens"], raw["usage"]["output_tokens"])
    for ours, theirs in sent(cassettes, interactions):
        assert turns(ours) == turns(theirs)
        assert (ours["thinking"], ours["max_tokens"]) == (theirs["thinking"], theirs["max_tokens"])


async def test_thinking_text_and_a_tool_call_go_back_with_the_tool_result(remote_manager, cassettes):
    interactions = cassettes.serve(recorded("test_anthropic_tool_with_thinking.yaml"))
    first_request = interactions[0].request_json()
    (declared,) = first_request["tools"]
    tool = Tool(name=declared["name"], description=declared["description"], parameters=declared["input_schema"],
                function=lambda: "Mexico")
    raw_thought, raw_text, raw_call = answer(interactions[0])["content"]
    async with anthropic(remote_manager, cassettes, "claude-sonnet-4-0", max_tokens=4096 - 3000) as pepper:
        question = first_request["messages"][0]["content"][0]["text"]
        result = await pepper.llm.generate(question, tools=[tool], reasoning=3000)
        assert result.reasoning == raw_thought["thinking"] and result.content == raw_text["text"]
        assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [(raw_call["id"], raw_call["name"], raw_call["input"])]
        assert result.metadata["finish_reason"] == "tool_use"
        assert result.messages[-1].content[0].signature == raw_thought["signature"]
        messages = [*result.messages, Message(role=MessageRole.TOOL, content="Mexico", tool_call_id=raw_call["id"])]
        final = await pepper.llm.generate(messages, tools=[tool], reasoning=3000)
    assert final.content == answer(interactions[1])["content"][0]["text"] and final.reasoning == ""
    for ours, theirs in sent(cassettes, interactions):
        assert turns(ours) == turns(theirs)
        assert (ours["thinking"], ours["max_tokens"]) == (theirs["thinking"], theirs["max_tokens"])
        assert ours["tools"] == [declared]


async def test_parallel_tool_calls_and_their_results_in_one_user_turn(remote_manager, cassettes):
    interactions = cassettes.serve(recorded("test_multiple_parallel_tool_calls.yaml"))
    first_request = interactions[0].request_json()
    (declared,) = first_request["tools"]
    facts = {c["tool_use_id"]: c["content"] for c in interactions[1].request_json()["messages"][2]["content"]}
    raw = answer(interactions[0])["content"]
    calls = {block["input"]["name"]: block["id"] for block in raw if block["type"] == "tool_use"}
    known = {name: facts[call_id] for name, call_id in calls.items()}

    def retrieve_entity_info(name: str) -> str:
        """Get the knowledge about the given entity."""
        return known[name]

    async with anthropic(remote_manager, cassettes, "claude-haiku-4-5", max_tokens=4096) as pepper:
        chat = pepper.chat.with_system(first_request["system"]).with_user(first_request["messages"][0]["content"][0]["text"])
        result = await chat.with_tools(retrieve_entity_info).generate()
    assert result.content == answer(interactions[1])["content"][0]["text"]
    assistant = result.messages[-6]
    assert assistant.text == raw[0]["text"] and [c.arguments["name"] for c in assistant.tool_calls] == list(calls)
    for ours, theirs in sent(cassettes, interactions):
        assert ours["system"] == theirs["system"]
        assert turns(ours) == turns(theirs)
        (tool,) = ours["tools"]
        assert (tool["name"], tool["description"]) == (declared["name"], declared["description"])
        schema = tool["input_schema"]
        assert (schema["properties"], schema["required"]) == (declared["input_schema"]["properties"], declared["input_schema"]["required"])


async def test_an_image_by_url_is_sent_as_a_url_source(remote_manager, cassettes):
    interactions = cassettes.serve(recorded("test_image_url_input.yaml"))
    question, image = interactions[0].request_json()["messages"][0]["content"]
    async with anthropic(remote_manager, cassettes, "claude-haiku-4-5", max_tokens=4096) as pepper:
        result = await pepper.chat.with_user(question["text"], Image(image["source"]["url"])).generate()
    assert result.content == answer(interactions[0])["content"][0]["text"] and result.content.startswith("This is a potato")
    ((ours, theirs),) = sent(cassettes, interactions)
    assert turns(ours) == turns(theirs)
    assert ours["messages"][0]["content"][1] == {"type": "image", "source": {"type": "url", "url": image["source"]["url"]}}


async def test_a_pdf_from_bytes_is_sent_as_a_base64_document(remote_manager, cassettes):
    interactions = cassettes.serve(recorded("test_document_binary_content_input.yaml"))
    question, document = interactions[0].request_json()["messages"][0]["content"]
    pdf = base64.b64decode(document["source"]["data"])
    assert pdf.startswith(b"%PDF-")
    async with anthropic(remote_manager, cassettes, "claude-sonnet-4-5", max_tokens=4096) as pepper:
        result = await pepper.chat.with_user(question["text"], File(pdf)).generate()
    assert result.content == answer(interactions[0])["content"][0]["text"] and "Dummy PDF file" in result.content
    assert result.usage.prompt_tokens == 1615
    ((ours, theirs),) = sent(cassettes, interactions)
    assert turns(ours) == turns(theirs), "the same document block: type, media_type and the same base64 data"


async def test_a_system_prompt_as_recorded(remote_manager, cassettes):
    interactions = cassettes.serve(recorded("test_anthropic_model_instructions.yaml"))
    recorded_request = interactions[0].request_json()
    async with anthropic(remote_manager, cassettes, "claude-3-opus-latest", max_tokens=4096) as pepper:
        chat = pepper.chat.with_system(recorded_request["system"]).with_user(recorded_request["messages"][0]["content"][0]["text"])
        result = await chat.generate()
    assert result.content == "The capital of France is Paris."
    assert result.metadata["model"] == "claude-3-opus-20240229" and result.metadata["finish_reason"] == "end_turn"
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (20, 10)
    ((ours, theirs),) = sent(cassettes, interactions)
    assert ours["system"] == theirs["system"] and turns(ours) == turns(theirs) and ours["max_tokens"] == theirs["max_tokens"]


async def test_cache_points_and_the_cached_token_counts(remote_manager, cassettes):
    """The recorder asked for caching once for the whole request (a top-level ``cache_control``, which the
    service puts on the last block it can cache); PepperPy puts the same ephemeral point on the block itself,
    where ``cache=True`` asks for it. The counts of tokens read from and written to the cache are prompt tokens."""
    interactions = cassettes.serve(recorded("test_anthropic_cache_real_api.yaml"))
    first_request = interactions[0].request_json()
    question = first_request["messages"][0]["content"][0]["text"]
    follow_up = interactions[1].request_json()["messages"][2]["content"][0]["text"]
    async with anthropic(remote_manager, cassettes, "claude-sonnet-4-5", max_tokens=4096) as pepper:
        conversation = pepper.conversation(first_request["system"])
        first = await conversation.say(TextPart(text=question, cache=True))
        second = await conversation.say(TextPart(text=follow_up, cache=True))
    for result, interaction in zip((first, second), interactions):
        usage = answer(interaction)["usage"]
        assert result.content == answer(interaction)["content"][0]["text"]
        prompt = usage["input_tokens"] + usage["cache_creation_input_tokens"] + usage["cache_read_input_tokens"]
        assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (prompt, usage["output_tokens"])
    for ours, theirs in sent(cassettes, interactions):
        assert ours["system"] == theirs["system"] and "cache_control" not in ours
        point = {key: value for key, value in theirs["cache_control"].items() if key != "ttl"}  # 5m: the default ttl
        assert ours["messages"][-1]["content"][-1]["cache_control"] == point
        assert [{**t, "content": [{k: v for k, v in b.items() if k != "cache_control"} for b in t["content"]]} for t in turns(ours)] == turns(theirs)
