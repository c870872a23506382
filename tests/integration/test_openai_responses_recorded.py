"""llm/openai with api="responses" against recordings of OpenAI's real Responses API (pydantic-ai's cassettes,
MIT, tests/fixtures/cassettes/), served from 127.0.0.1 by tests/cassette_server.py: what llama.cpp's
/v1/responses cannot show (tool calls, text.format, reasoning items with encrypted content, the service's
errors). Each answer is parsed for every part; each request we build is checked against the SDK's request
types and compared with the recorded request (the fields the service needs, not byte equality)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import BaseModel

from pepperpy import File, Image, PepperPy
from pepperpy.errors import ProviderError
from pepperpy.llm import Message, ReasoningPart, TextPart
from pepperpy.tools import tool_from_function
from tests.cassette_server import load_cassette
from tests.openai_types import check_responses_body

pytestmark = pytest.mark.integration
CASSETTES = Path(__file__).resolve().parents[1] / "fixtures" / "cassettes" / "openai_responses"


@pytest.fixture
async def pepper(remote_manager, cassettes):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=cassettes.base_url + "/v1", api_key="sk-test", api="responses", model="gpt-4o", max_retries=0
    ) as ready:
        yield ready


def serve(cassettes, name):
    return cassettes.serve(CASSETTES / f"{name}.yaml")


def sent(cassettes):
    bodies = [r.json() for r in cassettes.requests]
    for body in bodies:
        check_responses_body(body)
    return bodies


def get_capital(country: str) -> str:
    """The capital of a country."""
    return "Potato City"


async def test_simple_response(pepper, cassettes):
    (interaction,) = serve(cassettes, "test_openai_responses_model_simple_response")
    result = await pepper.chat.with_user("What is the capital of France?").generate()
    assert result.content == "The capital of France is Paris."
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (14, 8)
    assert result.metadata["finish_reason"] == "stop"
    (body,) = sent(cassettes)
    assert body["input"] == interaction.request_json()["input"]


async def test_tool_call_and_its_result_round_trip(pepper, cassettes):
    first, second = serve(cassettes, "test_openai_responses_model_simple_response_with_tool_call")
    result = await pepper.chat.with_user("What is the capital of PotatoLand?").with_tools(get_capital).generate()
    assert result.content == "The capital of PotatoLand is Potato City."
    call, answer = sent(cassettes)
    assert [t["name"] for t in call["tools"]] == ["get_capital"]
    assert call["tools"][0]["parameters"]["properties"] == first.request_json()["tools"][0]["parameters"]["properties"]
    recorded_input = [{k: v for k, v in item.items() if v is not None} for item in second.request_json()["input"]]
    ours = answer["input"]
    assert ours[0] == recorded_input[0] and ours[-1] == recorded_input[-1]
    assert {**ours[1], "arguments": None} == {**recorded_input[1], "arguments": None}  # JSON spacing differs


async def test_streamed_tool_call_then_streamed_text(pepper, cassettes):
    serve(cassettes, "test_openai_responses_stream")
    tools = [tool_from_function(get_capital)]
    first = [c async for c in pepper.llm.generate_stream("What is the capital of France?", tools=tools)]
    assert first[-1].finish_reason == "tool_calls"
    (call,) = first[-1].tool_calls
    assert (call.id, call.name, call.arguments) == ("call_kL0PCQV7M2WMoVX8V8OtYSAL", "get_capital", {"country": "France"})
    assert (first[-1].usage.prompt_tokens, first[-1].usage.completion_tokens) == (255, 16)
    history = [
        Message(role="user", content="What is the capital of France?"),
        Message(role="assistant", content="", tool_calls=[call]),
        Message(role="tool", content="Paris", tool_call_id=call.id),
    ]
    second = [c async for c in pepper.llm.generate_stream(history, tools=tools)]
    text = "".join(c.content for c in second)
    assert "Paris" in text and len([c for c in second if c.content]) > 1
    assert second[-1].finish_reason == "stop"
    assert sent(cassettes)[1]["input"][-1] == {"type": "function_call_output", "call_id": call.id, "output": "Paris"}


async def test_a_streamed_tool_loop_assembles_the_call_and_sends_its_result_back(pepper, cassettes):
    """chat.with_tools(fn).stream() over the recorded stream: the call's streamed argument deltas assembled into one
    call, run, its result sent back as a function_call_output, then the answer streamed."""
    first, second = serve(cassettes, "test_openai_responses_stream")
    chunks = [c async for c in pepper.chat.with_user("What is the capital of France?").with_tools(get_capital).stream()]
    (asked,) = [c.tool_calls for c in chunks if c.tool_calls]
    assert [(c.id, c.name, c.arguments) for c in asked] == [("call_kL0PCQV7M2WMoVX8V8OtYSAL", "get_capital", {"country": "France"})]
    (results,) = [c.tool_results for c in chunks if c.tool_results]
    assert [(r.tool_call_id, r.content) for r in results] == [("call_kL0PCQV7M2WMoVX8V8OtYSAL", "Potato City")]
    text = "".join(c.content for c in chunks)
    assert "Paris" in text and chunks[-1].finish_reason == "stop"
    call, answer = sent(cassettes)
    assert call["stream"] is True and answer["stream"] is True
    assert call["input"] == first.request_json()["input"]
    recorded = second.request_json()["input"]
    assert [item.get("type") for item in answer["input"]] == [item.get("type") for item in recorded]
    assert answer["input"][-1] == {"type": "function_call_output", "call_id": asked[0].id, "output": "Potato City"}
    (function_call,) = [item for item in answer["input"] if item.get("type") == "function_call"]
    assert (function_call["call_id"], function_call["name"]) == (asked[0].id, "get_capital")


async def test_reasoning_effort_and_reasoning_tokens(pepper, cassettes):
    (interaction,) = serve(cassettes, "test_openai_responses_reasoning_effort")
    result = await pepper.chat.with_user("Explain me how to cook uruguayan alfajor.").with_options(
        model="o3-mini", reasoning="low"
    ).generate()
    assert result.content.startswith("Ingredients for the dough")
    assert result.usage.reasoning_tokens == 128 and result.usage.completion_tokens == 547
    (thought,) = [p for p in result.messages[-1].parts if isinstance(p, ReasoningPart)]
    assert thought.id == "rs_67e539329f808191ae793066c0ee20800e395386ebcf3a62" and thought.text == ""
    (body,) = sent(cassettes)
    assert body["reasoning"]["effort"] == interaction.request_json()["reasoning"]["effort"] == "low"
    assert body["include"] == ["reasoning.encrypted_content"] and body["store"] is False


async def test_encrypted_reasoning_streams_and_goes_back_unchanged(pepper, cassettes):
    streamed = load_cassette(CASSETTES / "test_openai_responses_streaming_usage.yaml")
    follow_up = load_cassette(CASSETTES / "test_openai_responses_model_simple_response.yaml")
    cassettes.serve([*streamed, *follow_up])
    tools = [tool_from_function(get_capital)]
    chunks = [c async for c in pepper.llm.generate_stream("Calculate 100 * 200 / 3", tools=tools, reasoning="low")]
    last = chunks[-1]
    assert last.tool_calls[0].arguments == {"result": 6666}
    assert (last.usage.reasoning_tokens, last.usage.completion_tokens) == (448, 469)
    (thought,) = [p for p in last.message.parts if isinstance(p, ReasoningPart)]
    assert thought.encrypted and thought.encrypted.startswith("gAAAA") and thought.id.startswith("rs_")
    assert last.message.tool_calls == last.tool_calls
    history = [
        Message(role="user", content="Calculate 100 * 200 / 3"),
        last.message,  # the reply as the stream's last chunk carries it
        Message(role="tool", content="6666", tool_call_id=last.tool_calls[0].id),
    ]
    await pepper.llm.generate(history, reasoning="low")
    first, again = sent(cassettes)
    assert first["include"] == ["reasoning.encrypted_content"]
    reasoning_items = [item for item in again["input"] if item.get("type") == "reasoning"]
    assert reasoning_items == [{"type": "reasoning", "id": thought.id, "summary": [], "encrypted_content": thought.encrypted}]


class CityLocation(BaseModel):
    city: str
    country: str


def get_user_country() -> str:
    """The user's country."""
    return "Mexico"


async def test_structured_output_uses_text_format(pepper, cassettes):
    first, _ = serve(cassettes, "test_native_output")
    result = await (
        pepper.chat.with_user("What is the largest city in the user country?")
        .with_tools(get_user_country).with_response_model(CityLocation).generate()
    )
    assert result.parsed == CityLocation(city="Mexico City", country="Mexico")
    bodies = sent(cassettes)
    wanted = first.request_json()["text"]["format"]
    for body in bodies:
        ours = body["text"]["format"]
        assert (ours["type"], ours["name"]) == (wanted["type"], wanted["name"])
        assert {k: v["type"] for k, v in ours["schema"]["properties"].items()} == {
            k: v["type"] for k, v in wanted["schema"]["properties"].items()
        }
    assert bodies[1]["input"][-1] == {"type": "function_call_output", "call_id": "call_tTAThu8l2S9hNky2krdwijGP", "output": "Mexico"}


async def test_image_url_and_pdf_bytes_become_input_parts(pepper, cassettes):
    (image_call,) = serve(cassettes, "test_openai_responses_image_url_input")
    url = image_call.request_json()["input"][0]["content"][1]["image_url"]
    result = await pepper.chat.with_user("hello", Image(url)).generate()
    assert "potato" in result.content
    (body,) = sent(cassettes)
    assert body["input"] == image_call.request_json()["input"]

    (pdf_call,) = serve(cassettes, "test_openai_responses_document_as_binary_content_input")
    recorded_part = pdf_call.request_json()["input"][0]["content"][1]
    pdf = File(recorded_part["file_data"], name="filename.pdf")
    await pepper.chat.with_user("What is in the document?", pdf).generate()
    (body,) = sent(cassettes)
    assert body["input"] == pdf_call.request_json()["input"]


async def test_the_services_error_message_is_passed_through(pepper, cassettes):
    serve(cassettes, "test_openai_responses_model_http_error")
    with pytest.raises(ProviderError, match=r"HTTP 400.*Invalid 'temperature': decimal below minimum value") as caught:
        async for _ in pepper.llm.generate_stream("What is the capital of France?", temperature=-1):
            pass
    assert caught.value.status_code == 400 and not caught.value.retryable
