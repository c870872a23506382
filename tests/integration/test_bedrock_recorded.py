"""llm/bedrock against recorded Bedrock traffic (tests/fixtures/cassettes/bedrock, recorded from the real service
by pydantic-ai's test suite: Converse JSON, and ConverseStream's binary event-stream frames), served from
127.0.0.1 by tests/cassette_server.py.

Each test checks that every part of the recorded answer is parsed and that the request llm/bedrock builds for
the same input carries what the recorded request carried, validated against botocore's Converse service model
(a misspelled field fails), and signed with a SigV4 signature that botocore computes again from the bytes
received.
"""

from __future__ import annotations

import base64
import json
from datetime import date
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.session import get_session
from botocore.validate import ParamValidator
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import LLMError
from pepperpy.llm import Message, MessageRole, ReasoningPart, TextPart
from pepperpy.parts import File
from tests.cassette_server import CassetteServer, Interaction, Received, load_cassette
from tests.integration.conftest import use_test_aws_keys

pytestmark = pytest.mark.integration
CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "bedrock"
ACCESS_KEY, SECRET_KEY = "AKIDEXAMPLENOTREAL01", "recorded-test-secret-not-real"
CONVERSE = get_session().get_service_model("bedrock-runtime").operation_model("Converse").input_shape


def conforms(body: dict[str, Any], path: str) -> None:
    """The body (with the model id of its path) validates against botocore's Converse input shape."""
    params = {"modelId": unquote(path.split("/")[2]), **body}
    report = ParamValidator().validate(params, CONVERSE)
    assert not report.has_errors(), report.generate_report()


def signed_correctly(request: Received, base_url: str) -> None:
    """botocore, given the bytes received, computes the same SigV4 signature the request carries."""
    authorization = request.headers["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/") and SECRET_KEY not in authorization
    date = request.headers["x-amz-date"]
    again = AWSRequest(method=request.method, url=base_url + request.path, data=request.body,
                       headers={"content-type": request.headers["content-type"], "X-Amz-Date": date})
    again.context["timestamp"] = date
    signer = SigV4Auth(Credentials(ACCESS_KEY, SECRET_KEY), "bedrock", "us-east-1")
    signature = signer.signature(signer.string_to_sign(again, signer.canonical_request(again)), again)
    assert authorization.endswith(f"Signature={signature}")


def without_empty(body: dict[str, Any]) -> dict[str, Any]:
    """A body without empty fields (the recorder sends "system": [] and "inferenceConfig": {}; we leave them out)."""
    return {key: value for key, value in body.items() if value not in ([], {})}


@pytest.fixture(autouse=True)
def aws_environment(monkeypatch, tmp_path):
    use_test_aws_keys(monkeypatch, tmp_path, ACCESS_KEY, SECRET_KEY, region="us-east-1")


def bedrock(remote_manager, server: CassetteServer, model: str, **config: Any) -> PepperPy:
    return PepperPy(plugin_manager=remote_manager).with_llm(
        "bedrock", base_url=server.base_url, model=model, max_retries=0, **config
    )


def sent(server: CassetteServer, recorded: list[Interaction]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(our request body, the recorded one) for each request: same path, conforming, correctly signed."""
    assert len(server.requests) == len(recorded)
    pairs = []
    for request, interaction in zip(server.requests, recorded):
        assert request.path == interaction.path
        body = request.json()
        conforms(body, request.path)
        signed_correctly(request, server.base_url)
        pairs.append((without_empty(body), without_empty(interaction.request_json())))
    return pairs


async def test_text_answer_system_and_usage(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model.yaml")
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        result = await pepper.chat.with_system("You are a chatbot.").with_user("Hello!").generate()
    assert result.content.startswith("Hello! How can I assist you today?") and result.content.endswith("here to help.")
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (7, 30)
    assert result.metadata["finish_reason"] == "stop" and result.metadata["stop_reason"] == "end_turn"
    assert result.metadata["latency_ms"] == 268 and result.reasoning == ""
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours == theirs


async def test_stream_frames_deltas_finish_and_usage(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_stream.yaml")
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.").with_user("What is the capital of France?")
        chunks = [chunk async for chunk in chat.with_options(temperature=0.0).stream()]
    text = "".join(c.content for c in chunks)
    assert text.startswith("The capital of France is Paris. Paris is not only the capital city but also the most")
    assert len([c for c in chunks if c.content]) > 10, "one chunk per recorded contentBlockDelta"
    assert chunks[-1].finish_reason == "stop" and chunks[-1].metadata["stop_reason"] == "end_turn"
    assert chunks[-1].usage.prompt_tokens > 0 and chunks[-1].usage.completion_tokens > 0
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours == theirs


async def test_max_tokens_is_sent_and_length_reported(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_max_tokens.yaml")
    theirs_body = recorded[0].request_json()
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        chat = pepper.chat.with_system(theirs_body["system"][0]["text"]).with_user(theirs_body["messages"][0]["content"][0]["text"])
        result = await chat.with_options(max_tokens=theirs_body["inferenceConfig"]["maxTokens"]).generate()
    assert result.metadata["finish_reason"] == "length"
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours == theirs


def get_capital(country: str) -> str:
    """Get the capital of a country."""
    return {"France": "Paris"}[country]


def get_temperature(city: str) -> str:
    """Get the temperature in a city."""
    return {"Paris": "30°C"}[city]


def same_tools(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    """The same tools (names, descriptions where ours have one, parameter names) and tool choice."""
    mine, their = ours["toolConfig"], theirs["toolConfig"]
    their_specs = [t["toolSpec"] for t in their["tools"] if "toolSpec" in t]
    assert [t["toolSpec"]["name"] for t in mine["tools"]] == [t["name"] for t in their_specs]
    for spec, recorded_spec in zip([t["toolSpec"] for t in mine["tools"]], their_specs):
        assert set(spec["inputSchema"]["json"].get("properties", {})) == set(recorded_spec["inputSchema"]["json"]["properties"])
    assert mine.get("toolChoice", {"auto": {}}) == their.get("toolChoice", {"auto": {}})


async def test_streamed_tool_calls_and_their_results_round_trip(remote_manager, cassettes):
    """Two streamed rounds: a toolUse block (its input streamed as JSON pieces), then its toolResult sent back."""
    from pepperpy.tools import run_tool_calls, tool_from_function

    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_iter_stream.yaml")
    tools = [tool_from_function(get_capital), tool_from_function(get_temperature)]
    messages = [Message(role=MessageRole.SYSTEM, content="You are a helpful chatbot."),
                Message(role=MessageRole.USER, content="What is the temperature of the capital of France?")]
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        chunks = [chunk async for chunk in pepper.llm.generate_stream(messages, tools=tools, top_p=0.5)]
        calls = chunks[-1].tool_calls
        assert [(c.id, c.name, c.arguments) for c in calls] == [("tooluse_lAG_zP8QRHmSYOwZzzaCqA", "get_temperature", {"city": "Paris"})]
        assert chunks[-1].finish_reason == "tool_calls" and chunks[-1].usage.prompt_tokens == 471
        said = "".join(c.content for c in chunks)
        messages = [*messages, Message(role=MessageRole.ASSISTANT, content=said, tool_calls=calls), *await run_tool_calls(tools, calls)]
        chunks = [chunk async for chunk in pepper.llm.generate_stream(messages, tools=tools, top_p=0.5)]
    assert "".join(c.content for c in chunks) == "The current temperature in Paris, the capital of France, is 30°C."
    assert chunks[-1].finish_reason == "stop" and not chunks[-1].tool_calls
    for ours, theirs in sent(cassettes, recorded):
        assert ours["messages"] == theirs["messages"] and ours["system"] == theirs["system"]
        assert ours["inferenceConfig"] == theirs["inferenceConfig"] == {"topP": 0.5}
        same_tools(ours, theirs)


async def test_a_streamed_tool_loop_sends_what_was_recorded(remote_manager, cassettes):
    """chat.with_tools(...).stream() over the same recording: the text said before the call streams as content,
    the toolUse input (streamed as JSON pieces) becomes one call, its toolResult goes back, the answer streams."""
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_iter_stream.yaml")
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.").with_user(
            "What is the temperature of the capital of France?").with_tools(get_capital, get_temperature)
        chunks = [chunk async for chunk in chat.with_options(top_p=0.5).stream()]
    (asked,) = [c.tool_calls for c in chunks if c.tool_calls]
    assert [(c.id, c.name, c.arguments) for c in asked] == [("tooluse_lAG_zP8QRHmSYOwZzzaCqA", "get_temperature", {"city": "Paris"})]
    (results,) = [c.tool_results for c in chunks if c.tool_results]
    assert [(r.tool_call_id, r.content) for r in results] == [(asked[0].id, "30°C")]
    answer = [c.content for c in chunks[chunks.index(next(c for c in chunks if c.tool_results)):]]
    assert "".join(answer) == "The current temperature in Paris, the capital of France, is 30°C."
    pairs = sent(cassettes, recorded)
    assert len(pairs) == 2
    for ours, theirs in pairs:
        assert ours["messages"] == theirs["messages"] and ours["system"] == theirs["system"]
        same_tools(ours, theirs)


class Response(BaseModel):
    temperature: str
    date: date
    city: str


def temperature(city: str, date: date) -> str:
    """Get the temperature in a city on a specific date."""
    return "30°C"


async def test_structured_output_through_a_forced_answer_tool_with_a_retry(remote_manager, cassettes):
    """The recorded exchange: the model calls the user's tool, answers in prose (not valid), is told so, then
    answers through the answer tool: its input is the parsed answer."""
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_structured_output.yaml")
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0") as pepper:
        chat = pepper.chat.with_system("You are a helpful chatbot.").with_user("What was the temperature in London 1st January 2022?")
        result = await chat.with_tools(temperature).with_response_model(Response).generate()
    assert result.parsed == Response(temperature="30°C", date=date(2022, 1, 1), city="London")
    assert json.loads(result.content) == {"city": "London", "date": "2022-01-01", "temperature": "30°C"}
    assert not result.tool_calls and result.metadata["stop_reason"] == "tool_use"
    pairs = sent(cassettes, recorded)
    for ours, theirs in pairs:
        same_tools(ours, theirs)
        assert ours["toolConfig"]["toolChoice"] == {"any": {}}, "the model must call a tool: the answer tool or another"
    for ours, theirs in pairs[:2]:
        assert ours["messages"] == theirs["messages"]
    ours, theirs = pairs[2]
    assert ours["messages"][:4] == theirs["messages"][:4], "the prose answer goes back as the model wrote it"
    assert ours["messages"][4]["content"][0]["text"].startswith("That answer is not valid for the schema")


async def test_structured_output_as_the_json_schema_output_format(remote_manager, cassettes):
    """structured_output="json_schema": Converse's outputConfig, no tool (checked against the service model)."""
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model.yaml")
    async with bedrock(remote_manager, cassettes, "us.amazon.nova-micro-v1:0", structured_output="json_schema") as pepper:
        with pytest.raises(LLMError):  # the recorded answer is prose: not valid for the schema, and nothing left to retry with
            await pepper.chat.with_user("Hello!").with_response_model(Response).generate()
    ours = cassettes.requests[0].json()
    conforms(ours, cassettes.requests[0].path)
    text_format = ours["outputConfig"]["textFormat"]
    assert text_format["type"] == "json_schema" and "toolConfig" not in ours
    assert json.loads(text_format["structure"]["jsonSchema"]["schema"]) == Response.model_json_schema()
    assert recorded


async def test_thinking_and_its_signature_round_trip_in_a_conversation(remote_manager, cassettes):
    """reasoning="low" is Anthropic's 1024-token thinking budget; the reasoningText (signature included) is
    result.reasoning and goes back unchanged in the next turn, as the recorded second request has it."""
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_thinking_part_anthropic.yaml")
    first_answer = json.loads(recorded[0].body)["output"]["message"]["content"]
    second_question = recorded[1].request_json()["messages"][2]["content"][0]["text"]
    async with bedrock(remote_manager, cassettes, "us.anthropic.claude-sonnet-4-20250514-v1:0", reasoning="low") as pepper:
        conversation = pepper.conversation()
        first = await conversation.say("How do I cross the street?")
        second = await conversation.say(second_question)
    thought = first_answer[0]["reasoningContent"]["reasoningText"]
    assert first.reasoning == thought["text"] and first.content == first_answer[1]["text"]
    assert second.reasoning.startswith("The human is asking about crossing a river")
    kept = conversation.messages[1].content
    assert [type(p) for p in kept] == [ReasoningPart, TextPart] and kept[0].signature == thought["signature"]
    for ours, theirs in sent(cassettes, recorded):
        assert ours == theirs


async def test_streamed_thinking_comes_as_chunk_reasoning_with_its_signature(remote_manager, cassettes):
    recorded = cassettes.serve(CASSETTES / "test_bedrock_model_thinking_part_stream.yaml")
    async with bedrock(remote_manager, cassettes, "us.anthropic.claude-sonnet-4-20250514-v1:0") as pepper:
        chunks = [chunk async for chunk in pepper.chat.with_user("Hello").with_options(reasoning="low").stream()]
    reasoning = "".join(c.reasoning for c in chunks)
    assert reasoning.startswith("The user has greeted me with a simple \"Hello\".") and reasoning.endswith("them today.")
    assert "".join(c.content for c in chunks) == "Hello! It's nice to meet you. How can I help you today?"
    assert not any(c.content and c.reasoning for c in chunks)
    assert chunks[-1].finish_reason == "stop" and (chunks[-1].usage.prompt_tokens, chunks[-1].usage.completion_tokens) == (36, 73)
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours == theirs


async def test_a_streamed_conversation_sends_the_signed_thinking_back(remote_manager, cassettes):
    """The signature streamed in a reasoningContent delta is kept by the conversation (the last chunk carries the
    reply message) and goes back unchanged in the next turn (the same recorded stream answers both turns)."""
    recorded = load_cassette(CASSETTES / "test_bedrock_model_thinking_part_stream.yaml")
    cassettes.serve([*recorded, *recorded])
    async with bedrock(remote_manager, cassettes, "us.anthropic.claude-sonnet-4-20250514-v1:0") as pepper:
        conversation = pepper.conversation()
        chunks = [chunk async for chunk in conversation.stream("Hello", reasoning="low")]
        [chunk async for chunk in conversation.stream("Hello again", reasoning="low")]
    (thought, answer) = conversation.messages[1].content
    assert thought.signature and thought.text == "".join(c.reasoning for c in chunks)
    second = cassettes.requests[1].json()
    conforms(second, cassettes.requests[1].path)
    assert second["messages"][1]["content"] == [
        {"reasoningContent": {"reasoningText": {"text": thought.text, "signature": thought.signature}}},
        {"text": answer.text},
    ]


async def test_tool_use_with_thinking_sends_the_signed_thinking_back_before_the_call(remote_manager, cassettes):
    def get_user_country() -> str:
        return "Mexico"

    recorded = cassettes.serve(CASSETTES / "test_bedrock_anthropic_tool_with_thinking.yaml")
    async with bedrock(remote_manager, cassettes, "us.anthropic.claude-3-7-sonnet-20250219-v1:0") as pepper:
        chat = pepper.chat.with_user("What is the largest city in the user country?").with_options(reasoning="low")
        result = await chat.with_tools(get_user_country).generate()
    assert result.content.startswith("Based on your location in Mexico, the largest city is Mexico City")
    # the loop's usage is the sum of its two recorded rounds (397 + 539 in, 130 + 106 out)
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (397 + 539, 130 + 106)
    assert result.usage.cache_read_tokens == 0 and result.usage.cache_write_tokens == 0
    for ours, theirs in sent(cassettes, recorded):
        assert ours["messages"] == theirs["messages"]
        assert ours["additionalModelRequestFields"] == theirs["additionalModelRequestFields"]
        same_tools(ours, theirs)


async def test_cache_points_and_cached_token_counts(remote_manager, cassettes):
    """cache=True on the system prompt and on parts puts a cachePoint after each; a cache write, then a read."""
    recorded = cassettes.serve(CASSETTES / "test_bedrock_cache_write_and_read.yaml")
    body = recorded[0].request_json()
    user = body["messages"][0]["content"]
    document = File(base64.b64decode(user[1]["document"]["source"]["bytes"]), "text/plain", name="Document 1")
    async with bedrock(remote_manager, cassettes, "us.anthropic.claude-sonnet-4-5-20250929-v1:0") as pepper:
        chat = pepper.chat.with_system(body["system"][0]["text"], cache=True).with_user(
            user[0]["text"], document, TextPart(text=user[2]["text"], cache=True), TextPart(text=user[4]["text"], cache=True),
        )
        written, read = await chat.generate(), await chat.generate()
    assert written.content == read.content == "21"
    assert (written.usage.cache_write_tokens, written.usage.cache_read_tokens) == (1322, 0)
    assert (read.usage.cache_write_tokens, read.usage.cache_read_tokens) == (0, 1322)
    assert read.usage.prompt_tokens == 2 + 1322, "the prompt counts its cached tokens"
    model = "us.anthropic.claude-sonnet-4-5-20250929-v1:0"
    assert (read.usage.model, read.usage.service) == (model, "aws")
    for answer, cached in ((written, "cache_write_tokens"), (read, "cache_read_tokens")):
        counts = GenaiUsage(input_tokens=answer.usage.prompt_tokens, output_tokens=answer.usage.completion_tokens,
                            **{cached: 1322})
        assert answer.usage.cost == calc_price(counts, model, provider_id="aws").total_price
    assert read.usage.cost < written.usage.cost, "a cache read costs less than a cache write"
    for ours, theirs in sent(cassettes, recorded):
        assert ours["messages"] == theirs["messages"] and ours["system"] == theirs["system"]


@pytest.mark.parametrize("streamed", [False, True])
async def test_the_service_message_of_an_invalid_model_passes_through(remote_manager, cassettes, streamed):
    from pepperpy.errors import ProviderError

    name = "test_bedrock_streaming_error.yaml" if streamed else "test_bedrock_error.yaml"
    recorded = cassettes.serve(CASSETTES / name)
    async with bedrock(remote_manager, cassettes, "us.does-not-exist-model-v1:0") as pepper:
        chat = pepper.chat.with_user("hello")
        with pytest.raises(ProviderError, match="HTTP 400 .*The provided model identifier is invalid.") as caught:
            if streamed:
                [chunk async for chunk in chat.stream()]
            else:
                await chat.generate()
    assert caught.value.status_code == 400 and not caught.value.retryable
    ((ours, theirs),) = sent(cassettes, recorded)
    assert ours == theirs
