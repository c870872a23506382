"""llm/gemini against recorded Gemini API traffic (tests/fixtures/cassettes/google, recorded from the real
service by pydantic-ai's test suite), served from 127.0.0.1 by tests/cassette_server.py.

Each test checks that every part of the recorded answer is parsed, and that the request llm/gemini builds
for the same input carries what the recorded request carried (the fields the service needs; ids and
wording of our own differ), validated with google-genai's own request types so a misspelled field fails.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest
from google.genai import types

from pepperpy import PepperPy
from pepperpy.llm import Message, MessageRole, ReasoningPart, TextPart, ToolCall
from pepperpy.parts import Image
from tests.cassette_server import CassetteServer, Interaction

pytestmark = pytest.mark.integration
CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "google"
SECRET = "test-gemini-key-not-real-0123456789"
BODY_FIELDS = {"contents", "systemInstruction", "generationConfig", "tools", "toolConfig", "safetySettings", "cachedContent"}


def conforms(body: dict[str, Any]) -> None:
    """The body validates against google-genai's types (extra fields forbidden: a misspelled one fails)."""
    assert set(body) <= BODY_FIELDS, set(body) - BODY_FIELDS
    for content in body["contents"]:
        types.Content.model_validate_json(json.dumps(content))
    if "systemInstruction" in body:
        types.Content.model_validate_json(json.dumps(body["systemInstruction"]))
    if "generationConfig" in body:
        types.GenerationConfig.model_validate_json(json.dumps(body["generationConfig"]))
    for tool in body.get("tools", []):
        types.Tool.model_validate_json(json.dumps(tool))


def signature_bytes(value: str) -> bytes:
    """A thought signature's bytes (recorded requests carry it URL-safe, answers in standard base64)."""
    return base64.urlsafe_b64decode(value.replace("+", "-").replace("/", "_"))


def comparable(contents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Turns without what differs by design: call ids (ours vs the recorder's), a tool result's key
    ({"output": ...} here, {"return_value": ...} there: the service takes any object) and the base64
    alphabet of signatures."""
    turns = []
    for turn in contents:
        parts = []
        for part in turn["parts"]:
            part = json.loads(json.dumps(part))
            for key in ("functionCall", "functionResponse"):
                if key in part:
                    part[key].pop("id", None)
            if "functionResponse" in part:
                part["functionResponse"]["response"] = sorted(map(str, part["functionResponse"]["response"].values()))
            if "thoughtSignature" in part:
                part["thoughtSignature"] = signature_bytes(part["thoughtSignature"])
            parts.append(part)
        turns.append({"role": turn["role"], "parts": parts})
    return turns


def gemini(remote_manager, server: CassetteServer, model: str, **config: Any) -> PepperPy:
    return PepperPy(plugin_manager=remote_manager).with_llm(
        "gemini", base_url=f"{server.base_url}/v1beta", api_key=SECRET, model=model, max_retries=0, **config
    )


def sent(server: CassetteServer, recorded: list[Interaction]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(our request body, the recorded one) for each request, checked to conform and to carry the key as a header."""
    assert len(server.requests) == len(recorded)
    pairs = []
    for request, interaction in zip(server.requests, recorded):
        assert request.headers["x-goog-api-key"] == SECRET and SECRET not in request.path
        assert request.path == interaction.path
        body = request.json()
        conforms(body)
        pairs.append((body, interaction.request_json()))
    return pairs


async def test_text_answer_system_instruction_usage(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_google_model.yaml")
    async with gemini(remote_manager, cassettes, "gemini-2.5-flash") as pepper:
        result = await pepper.chat.with_system("You are a chatbot.").with_user("Hello!").generate()
    assert result.content == "Hello! How can I help you today?" and result.reasoning == ""
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (9, 9 + 34), "thinking tokens are output"
    assert result.usage.reasoning_tokens == 34 and result.usage.cache_read_tokens is None, "not reported: None"
    assert result.metadata["finish_reason"] == "stop" and result.metadata["model"] == "gemini-2.5-flash"
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours["contents"] == theirs["contents"]
    assert ours["systemInstruction"]["parts"] == theirs["systemInstruction"]["parts"]


async def test_stream_deltas_finish_and_usage(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_google_model_stream.yaml")
    async with gemini(remote_manager, cassettes, "gemini-2.0-flash-exp") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.").with_user("What is the capital of France?")
        chunks = [chunk async for chunk in chat.with_options(temperature=0).stream()]
    assert [c.content for c in chunks if c.content] == ["The", " capital of France", " is Paris.\n"]
    assert chunks[-1].finish_reason == "stop"
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (13, 8)
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours["contents"] == theirs["contents"] and ours["generationConfig"] == theirs["generationConfig"]
    assert ours["systemInstruction"]["parts"] == theirs["systemInstruction"]["parts"]


async def test_max_tokens_and_thinking_off(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_google_model_max_tokens.yaml")
    async with gemini(remote_manager, cassettes, "gemini-2.5-flash") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.").with_user("What is the capital of France?")
        result = await chat.with_options(max_tokens=5, reasoning=False).generate()
    assert result.content == "The capital of France is" and result.metadata["finish_reason"] == "length"
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours["generationConfig"]["maxOutputTokens"] == theirs["generationConfig"]["maxOutputTokens"] == 5
    assert ours["generationConfig"]["thinkingConfig"] == {"thinkingBudget": theirs["generationConfig"]["thinkingConfig"]["thinking_budget"]}


async def test_an_empty_assistant_turn_is_sent_as_recorded(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_google_model_empty_assistant_response.yaml")
    async with gemini(remote_manager, cassettes, "gemini-2.5-flash") as pepper:
        chat = pepper.chat.with_user("Hi").with_assistant("").with_user("Was your previous response empty?")
        result = await chat.generate()
    assert result.content.startswith("As an AI, I don't retain memory")
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours["contents"] == theirs["contents"]


def get_capital(country: str) -> str:
    """Get the capital of a country."""
    return {"France": "Paris"}[country]


def get_temperature(city: str) -> str:
    """Get the temperature in a city."""
    return {"Paris": "30°C"}[city]


def tool_results(calls: list[ToolCall], values: list[str]) -> list[Message]:
    return [Message(role=MessageRole.TOOL, content=v, tool_call_id=c.id, name=c.name) for c, v in zip(calls, values)]


async def test_streamed_tool_calls_and_their_results_round_trip(remote_manager, cassettes):
    """Three streamed rounds: two function calls, their results sent back as functionResponse parts, the answer."""
    from pepperpy.tools import run_tool_calls, tool_from_function

    recorded = cassettes.serve(CASSETTES / "test_google_model_iter_stream.yaml")
    tools = [tool_from_function(get_capital), tool_from_function(get_temperature)]
    messages = [Message(role=MessageRole.SYSTEM, content="You are a helpful chatbot."),
                Message(role=MessageRole.USER, content="What is the temperature of the capital of France?")]
    async with gemini(remote_manager, cassettes, "gemini-2.0-flash") as pepper:
        asked = []
        for _ in range(3):
            chunks = [chunk async for chunk in pepper.llm.generate_stream(messages, tools=tools)]
            calls = chunks[-1].tool_calls
            asked.append([(c.name, c.arguments) for c in calls])
            if not calls:
                break
            assert chunks[-1].finish_reason == "tool_calls"
            messages = [*messages, Message(role=MessageRole.ASSISTANT, content="", tool_calls=calls),
                        *await run_tool_calls(tools, calls)]
    assert asked == [[("get_capital", {"country": "France"})], [("get_temperature", {"city": "Paris"})], []]
    assert "".join(c.content for c in chunks) == "The temperature in Paris is 30°C.\n"
    for ours, theirs in sent(cassettes, recorded):
        assert comparable(ours["contents"]) == comparable(theirs["contents"])
        (declarations,) = [tool["functionDeclarations"] for tool in ours["tools"]]
        (recorded_declarations,) = [tool["functionDeclarations"] for tool in theirs["tools"]]
        for mine, their in zip(declarations, recorded_declarations, strict=True):
            assert (mine["name"], mine["description"]) == (their["name"], their["description"])
            schema = mine["parametersJsonSchema"]
            assert (set(schema["properties"]), schema["required"]) == (set(their["parameters"]["properties"]), their["parameters"]["required"])
    call_ids = [p["functionCall"]["id"] for t in ours["contents"] for p in t["parts"] if "functionCall" in p]
    result_ids = [p["functionResponse"]["id"] for t in ours["contents"] for p in t["parts"] if "functionResponse" in p]
    assert call_ids == result_ids and len(set(call_ids)) == 2


async def test_a_streamed_tool_loop_runs_three_rounds_as_recorded(remote_manager, cassettes):
    """chat.with_tools(...).stream() over the same recording: each round's functionCall assembled, run, sent back
    as a functionResponse; every request we build matches the recorded one; only the answer's text is content."""
    recorded = cassettes.serve(CASSETTES / "test_google_model_iter_stream.yaml")
    async with gemini(remote_manager, cassettes, "gemini-2.0-flash") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.").with_user(
            "What is the temperature of the capital of France?").with_tools(get_capital, get_temperature)
        chunks = [chunk async for chunk in chat.stream()]
    assert [[(c.name, c.arguments) for c in chunk.tool_calls] for chunk in chunks if chunk.tool_calls] == [
        [("get_capital", {"country": "France"})], [("get_temperature", {"city": "Paris"})],
    ]
    assert [[r.content for r in chunk.tool_results] for chunk in chunks if chunk.tool_results] == [["Paris"], ["30°C"]]
    assert "".join(c.content for c in chunks) == "The temperature in Paris is 30°C.\n"
    pairs = sent(cassettes, recorded)
    assert len(pairs) == 3
    for ours, theirs in pairs:
        assert comparable(ours["contents"]) == comparable(theirs["contents"])


async def test_function_call_signatures_go_back_unchanged_on_the_first_call(remote_manager, cassettes):
    """Gemini 3 signs the first function call of each step and refuses a next turn without it: five recorded
    rounds (three parallel calls, then one at a time, then the final call) with every signature where it was."""
    from pepperpy.tools import Tool

    recorded = cassettes.serve(CASSETTES / "test_google_instructions_only_with_tool_calls.yaml")
    topic = Tool(name="generate_topic", description="", parameters={"type": "object", "properties": {}}, function=lambda: "")
    final = Tool(name="final_result", description="The final response which ends this conversation",
                 parameters={"type": "object", "properties": {"response": {"type": "array", "items": {"type": "string"}}},
                             "required": ["response"]}, function=lambda response: "")
    # what the tools returned, in order, as the recording has them
    answers = iter(["cars", "penguins", "cars", "penguins", "cars", "penguins"])
    messages = [Message(role=MessageRole.SYSTEM, content="Tell three jokes. Generate topics with the generate_topic tool."),
                Message(role=MessageRole.USER, content="")]
    async with gemini(remote_manager, cassettes, "gemini-3-flash-preview") as pepper:
        for _ in range(5):
            result = await pepper.llm.generate(messages, tools=[topic, final])
            assert result.content == "" and result.metadata["finish_reason"] == "tool_calls"
            if result.tool_calls[0].name == "final_result":
                break
            messages = [*result.messages, *tool_results(result.tool_calls, [next(answers) for _ in result.tool_calls])]
    assert len(result.tool_calls[0].arguments["response"]) == 3
    (signed,) = [p for p in result.messages[-1].content if isinstance(p, ReasoningPart)]
    assert signed.signature and signed.text == ""
    pairs = sent(cassettes, recorded)
    for ours, theirs in pairs:
        assert comparable(ours["contents"]) == comparable(theirs["contents"])
    last = pairs[-1][0]["contents"]
    signed_parts = [p for turn in last for p in turn["parts"] if "thoughtSignature" in p]
    assert len(signed_parts) == 4 and all("functionCall" in p for p in signed_parts), "one per model turn, on its first call"


async def test_tool_call_answer_and_result_without_streaming(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_google_model_structured_output.yaml")
    from pepperpy.tools import tool_from_function

    def temperature(city: str, date: str) -> str:
        """Get the temperature in a city on a specific date."""
        return "30°C"

    async with gemini(remote_manager, cassettes, "gemini-2.0-flash") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.").with_user("What was the temperature in London 1st January 2022?")
        first = await chat.with_tools(temperature, run=False).generate()
        assert [(c.name, c.arguments) for c in first.tool_calls] == [("temperature", {"city": "London", "date": "2022-01-01"})]
        assert (first.usage.prompt_tokens, first.usage.completion_tokens) == (69, 14)
        messages = [*first.messages, *tool_results(first.tool_calls, ["30°C"])]
        second = await pepper.llm.generate(messages, tools=[tool_from_function(temperature)])
    assert second.tool_calls[0].arguments == {"city": "London", "date": "2022-01-01", "temperature": "30°C"}
    pairs = sent(cassettes, recorded)
    ours, theirs = pairs[1]
    # the recorder added a placeholder signature of its own to the call it sent back; the service gave none
    for part in theirs["contents"][1]["parts"]:
        part.pop("thoughtSignature")
    assert comparable(ours["contents"]) == comparable(theirs["contents"])


async def test_thinking_parts_and_their_signature_round_trip_in_a_conversation(remote_manager, cassettes):
    """The thought text is result.reasoning; its signature (on the answer text part) is kept and sent back
    unchanged on that part in the next turn, as the recorded second request has it."""
    recorded = cassettes.serve(CASSETTES / "test_google_model_thinking_part.yaml")
    first_answer = json.loads(recorded[0].body)["candidates"][0]["content"]["parts"]
    async with gemini(remote_manager, cassettes, "gemini-3-pro-preview", reasoning=True) as pepper:
        conversation = pepper.conversation("You are a helpful assistant.")
        first = await conversation.say("How do I cross the street?")
        second = await conversation.say("Considering the way to cross the street, analogously, how do I cross the river?")
    assert first.reasoning == first_answer[0]["text"] and first.content == first_answer[1]["text"]
    assert first.reasoning.startswith("**A Safe Street-Crossing Guide") and first.content.startswith("Crossing the street")
    assert second.reasoning.startswith("**Navigating Nature's Road") and "the \"road\" itself is moving" in second.content
    assert (first.usage.reasoning_tokens, first.usage.completion_tokens) == (1001, 736 + 1001)
    kept = conversation.messages[2].content
    assert [type(p) for p in kept] == [ReasoningPart, ReasoningPart, TextPart]
    assert kept[1].signature == first_answer[1]["thoughtSignature"] and kept[1].text == ""
    pairs = sent(cassettes, recorded)
    for ours, theirs in pairs:
        assert comparable(ours["contents"]) == comparable(theirs["contents"])
        assert ours["generationConfig"]["thinkingConfig"] == {"includeThoughts": theirs["generationConfig"]["thinkingConfig"]["include_thoughts"]}
    assert pairs[1][0]["contents"][1]["parts"][1]["thoughtSignature"] == first_answer[1]["thoughtSignature"], "byte for byte"


async def test_streamed_thoughts_come_as_chunk_reasoning(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_google_model_thinking_part_iter.yaml")
    events = [json.loads(line.removeprefix(b"data: ")) for line in recorded[0].body.split(b"\r\n\r\n") if line]
    parts = [p for e in events for p in e["candidates"][0]["content"]["parts"]]
    async with gemini(remote_manager, cassettes, "gemini-2.5-pro") as pepper:
        chat = pepper.chat.with_system("You are a helpful assistant.").with_user("How do I cross the street?")
        chunks = [chunk async for chunk in chat.with_options(reasoning=True).stream()]
    assert [c.reasoning for c in chunks if c.reasoning] == [p["text"] for p in parts if p.get("thought")]
    assert "".join(c.content for c in chunks) == "".join(p["text"] for p in parts if not p.get("thought"))
    assert not any(c.content and c.reasoning for c in chunks), "thoughts and answer never mixed in one chunk"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].usage.reasoning_tokens == 787
    assert (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (34, 469 + 787)
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours["contents"] == theirs["contents"]
    assert ours["generationConfig"]["thinkingConfig"] == theirs["generationConfig"]["thinkingConfig"]


async def test_an_inline_image_is_sent_as_inline_data(remote_manager, cassettes, tmp_path):
    recorded = cassettes.serve(CASSETTES / "test_google_model_image_as_binary_content_input.yaml")
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4  # the recording's 2 MB kiwi is reduced to its hash
    (tmp_path / "kiwi.png").write_bytes(png)
    async with gemini(remote_manager, cassettes, "gemini-2.0-flash") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.")
        result = await chat.with_user("What fruit is in the image?", Image(tmp_path / "kiwi.png")).generate()
    assert result.content == "The fruit in the image is a kiwi."
    assert result.usage.prompt_tokens == 3367
    ((ours, theirs),) = sent(cassettes, recorded)
    (text, image), (recorded_text, recorded_image) = ours["contents"][0]["parts"], theirs["contents"][0]["parts"]
    assert text == recorded_text and set(image) == set(recorded_image) == {"inlineData"}
    assert image["inlineData"]["mimeType"] == recorded_image["inlineData"]["mimeType"] == "image/png"
    assert base64.b64decode(image["inlineData"]["data"]) == png


async def test_a_streamed_answer_keeps_its_thought_signature_into_the_next_turn(remote_manager, cassettes):
    """The signature streamed on the answer's first text part is kept by the conversation (from the stream's last
    chunk, which carries the whole assistant message) and goes back on that part in the next turn's request
    (the same recorded stream answers both turns)."""
    interactions = cassettes.serve(CASSETTES / "test_google_model_thinking_part_iter.yaml")
    cassettes.serve([*interactions, *interactions])
    events = [json.loads(line.removeprefix(b"data: ")) for line in interactions[0].body.split(b"\r\n\r\n") if line]
    parts = [p for e in events for p in e["candidates"][0]["content"]["parts"]]
    (signature,) = [p["thoughtSignature"] for p in parts if "thoughtSignature" in p]
    thoughts = "".join(p["text"] for p in parts if p.get("thought"))
    said = "".join(p["text"] for p in parts if not p.get("thought"))
    assert next(p for p in parts if not p.get("thought")).get("thoughtSignature") == signature, "it signs the first answer part"
    async with gemini(remote_manager, cassettes, "gemini-2.5-pro") as pepper:
        conversation = pepper.conversation("You are a helpful assistant.")
        chunks = [chunk async for chunk in conversation.stream("How do I cross the street?", reasoning=True)]
        assert "".join(c.content for c in chunks) == said
        assert conversation.messages[-1].content == [
            ReasoningPart(text=thoughts), ReasoningPart(signature=signature), TextPart(text=said)
        ]
        [chunk async for chunk in conversation.stream("And a river?", reasoning=True)]
    first, second = (request.json() for request in cassettes.requests)
    conforms(second)
    assert second["contents"][:1] == first["contents"]
    assert second["contents"][1] == {
        "role": "model", "parts": [{"text": thoughts, "thought": True}, {"text": said, "thoughtSignature": signature}]
    }, "the signature goes back unchanged, on the part that carried it"
