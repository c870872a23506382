"""llm/gemini against the local scripted server, for what the recordings do not hold: a 429 then an answer,
a 400 with the service's message, a stream cut before its finishReason, cached-token counts, a blocked
prompt, and structured output with a JSON schema. The replies follow the Gemini API's documented format."""

from __future__ import annotations

import base64
import json

import pytest
from genai_prices import Usage as GenaiUsage
from genai_prices import calc_price
from google.genai import types
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import ProviderError, RateLimitError
from tests.servers.scripted import Reply

pytestmark = pytest.mark.integration
SECRET = "test-gemini-key-not-real-0123456789"


def answer(*parts: dict, finish: str = "STOP", usage: dict | None = None) -> dict:
    return {
        "candidates": [{"content": {"role": "model", "parts": list(parts)}, "finishReason": finish, "index": 0}],
        "usageMetadata": usage or {"promptTokenCount": 7, "candidatesTokenCount": 3, "totalTokenCount": 10},
        "modelVersion": "gemini-2.5-flash", "responseId": "scripted",
    }


@pytest.fixture
async def pepper(remote_manager, scripted):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "gemini", base_url=scripted.base_url, api_key=SECRET, max_retries=1, retry_budget=5
    ) as ready:
        yield ready


class City(BaseModel):
    name: str
    country: str


async def test_structured_output_asks_for_json_with_the_schema(pepper, scripted):
    scripted.reset(Reply(json=answer({"text": '{"name": "Paris", "country": "France"}'})))
    result = await pepper.chat.with_user("The capital of France?").with_response_model(City).generate()
    assert result.parsed == City(name="Paris", country="France")
    config = scripted.requests[0].json()["generationConfig"]
    assert config == {"responseMimeType": "application/json", "responseJsonSchema": City.model_json_schema()}
    types.GenerationConfig.model_validate_json(json.dumps(config))  # the field names the service knows


async def test_cached_and_thinking_tokens_are_reported(pepper, scripted):
    usage = {"promptTokenCount": 2000, "cachedContentTokenCount": 1500, "candidatesTokenCount": 5,
             "thoughtsTokenCount": 40, "totalTokenCount": 2045}
    scripted.reset(Reply(json=answer({"text": "Done."}, usage=usage)))
    result = await pepper.chat.with_user("Go").generate()
    assert (result.usage.prompt_tokens, result.usage.completion_tokens) == (2000, 45)
    assert (result.usage.cache_read_tokens, result.usage.reasoning_tokens) == (1500, 40)
    assert (result.usage.model, result.usage.service) == ("gemini-2.5-flash", "google")
    priced = calc_price(GenaiUsage(input_tokens=2000, cache_read_tokens=1500, output_tokens=45), "gemini-2.5-flash",
                        provider_id="google")
    assert result.usage.cost == priced.total_price
    uncached = calc_price(GenaiUsage(input_tokens=2000, output_tokens=45), "gemini-2.5-flash", provider_id="google")
    assert result.usage.cost < uncached.total_price, "cached prompt tokens cost less"


async def test_a_429_is_retried_then_answered(pepper, scripted):
    busy = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}
    scripted.reset(Reply(status=429, json=busy, headers={"retry-after": "0"}), Reply(json=answer({"text": "Hi"})))
    assert (await pepper.chat.with_user("Hi").generate()).content == "Hi"
    assert len(scripted.requests) == 2


async def test_a_429_past_the_retries_names_the_quota(pepper, scripted):
    busy = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}
    scripted.reset(*[Reply(status=429, json=busy, headers={"retry-after": "0"})] * 2)
    with pytest.raises(RateLimitError, match="Resource has been exhausted"):
        await pepper.chat.with_user("Hi").generate()


async def test_a_400_passes_the_service_message_through_and_is_not_retried(pepper, scripted):
    refused = {"error": {"code": 400, "message": "* GenerateContentRequest.contents: contents is not specified",
                         "status": "INVALID_ARGUMENT"}}
    scripted.reset(Reply(status=400, json=refused))
    with pytest.raises(ProviderError, match=r"HTTP 400 .*contents is not specified") as caught:
        await pepper.chat.with_user("Hi").generate()
    assert len(scripted.requests) == 1 and SECRET not in str(caught.value)


async def test_a_stream_cut_before_its_finish_reason_is_an_error(pepper, scripted):
    events = ["data: " + json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": "Par"}]}}]})]
    scripted.reset(Reply(events=events))
    with pytest.raises(ProviderError, match="no finishReason"):
        [chunk async for chunk in pepper.chat.with_user("Capital of France?").stream()]


async def test_an_error_event_in_the_stream_is_raised_with_its_message(pepper, scripted):
    events = ["data: " + json.dumps({"candidates": [{"content": {"role": "model", "parts": [{"text": "Par"}]}}]}),
              "data: " + json.dumps({"error": {"code": 500, "message": "An internal error has occurred.", "status": "INTERNAL"}})]
    scripted.reset(Reply(events=events))
    with pytest.raises(ProviderError, match="INTERNAL: An internal error has occurred"):
        [chunk async for chunk in pepper.chat.with_user("Capital of France?").stream()]


async def test_a_blocked_prompt_names_the_reason(pepper, scripted):
    scripted.reset(Reply(json={"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {"promptTokenCount": 5}}))
    with pytest.raises(ProviderError, match="blockReason SAFETY"):
        await pepper.chat.with_user("Hi").generate()


@pytest.mark.parametrize("model, reasoning, expected", [
    ("gemini-2.5-flash", "high", {"includeThoughts": True, "thinkingBudget": 24576}),
    ("gemini-2.5-flash", 2048, {"includeThoughts": True, "thinkingBudget": 2048}),
    ("gemini-2.5-flash", False, {"thinkingBudget": 0}),
    ("gemini-3-pro-preview", "low", {"includeThoughts": True, "thinkingLevel": "LOW"}),
    ("gemini-3-pro-preview", True, {"includeThoughts": True}),
])
async def test_reasoning_becomes_thinking_config(pepper, scripted, model, reasoning, expected):
    scripted.reset(Reply(json=answer({"text": "Hi"})))
    await pepper.chat.with_user("Hi").with_options(model=model, reasoning=reasoning).generate()
    request = scripted.requests[0]
    assert request.path == f"/v1/models/{model}:generateContent"
    config = request.json()["generationConfig"]
    assert config == {"thinkingConfig": expected}
    types.GenerationConfig.model_validate_json(json.dumps(config))


async def test_documents_inline_and_urls_as_file_data(pepper, scripted):
    from pepperpy import File, Image

    pdf = b"%PDF-1.4\n1 0 obj << >> endobj\ntrailer << >>\n%%EOF\n"
    scripted.reset(Reply(json=answer({"text": "A contract."})))
    chat = pepper.chat.with_user(File(pdf, name="contract.pdf"), File("https://example.com/terms.pdf"),
                                 Image("gs://bucket/cat.png"), "Summarize")
    assert (await chat.generate()).content == "A contract."
    (turn,) = scripted.requests[0].json()["contents"]
    assert turn["parts"] == [
        {"inlineData": {"mimeType": "application/pdf", "data": base64.b64encode(pdf).decode()}},
        {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/terms.pdf"}},
        {"fileData": {"mimeType": "image/png", "fileUri": "gs://bucket/cat.png"}},
        {"text": "Summarize"},
    ]
    types.Content.model_validate_json(json.dumps(turn))


@pytest.mark.parametrize("parts", [
    [{"text": "Thinking...", "thought": True, "thoughtSignature": "c2lnLW9uLXRoZS10aG91Z2h0"}, {"text": "Paris."}],
    [{"text": "Thinking...", "thought": True}, {"text": "Par"}, {"text": "is."}, {"text": "", "thoughtSignature": "dHJhaWxpbmc="}],
    [{"text": "Let me look."}, {"functionCall": {"name": "lookup", "args": {"q": "x"}}, "thoughtSignature": "b24tdGhlLWNhbGw="},
     {"functionCall": {"name": "lookup", "args": {"q": "y"}}}],
], ids=["signed-thought", "trailing-signature", "signed-first-call"])
async def test_every_signature_goes_back_where_it_came_from(pepper, scripted, parts):
    scripted.reset(Reply(json=answer(*parts)), Reply(json=answer({"text": "ok"})))
    first = await pepper.llm.generate("Capital of France?")
    messages = list(first.messages)
    if first.tool_calls:
        messages += [{"role": "tool", "content": "found", "tool_call_id": c.id, "name": c.name} for c in first.tool_calls]
    await pepper.llm.generate(messages)
    model_turn = scripted.requests[1].json()["contents"][1]
    assert model_turn["role"] == "model"
    sent_back = [{k: v for k, v in p.items()} for p in model_turn["parts"]]
    for part in sent_back:
        part.get("functionCall", {}).pop("id", None)
    joined = [parts[0], {"text": "Paris."}, {"text": "", "thoughtSignature": "dHJhaWxpbmc="}] if len(parts) == 4 else parts
    assert sent_back == joined, "streamed-in text deltas join; every part and signature is otherwise as it came"


@pytest.mark.parametrize("model", ["gemini-3-pro-preview", "gemini-2.5-flash"])
async def test_an_mcp_tools_image_reaches_gemini(remote_manager, scripted, model):
    """The demo MCP server's ``picture`` tool (a real server, stdio) in a tool loop: its image goes back inside the
    functionResponse on Gemini 3, after it in the same turn before; the turn is valid for google-genai's types."""
    import sys
    from pathlib import Path

    from pepperpy import MCPServer

    demo = str(Path(__file__).resolve().parents[1] / "servers" / "mcp_demo.py")
    scripted.reset(Reply(json=answer({"functionCall": {"id": "c1", "name": "picture", "args": {}}})),
                   Reply(json=answer({"text": "A red dot."})))
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "gemini", base_url=scripted.base_url, api_key=SECRET, model=model, max_retries=1
    ) as pepper:
        result = await pepper.chat.with_user("Draw").with_tools(MCPServer.stdio(sys.executable, demo, name="demo")).generate()
    assert result.content == "A red dot."
    turn = scripted.requests[1].json()["contents"][-1]
    types.Content.model_validate_json(json.dumps(turn))
    response = turn["parts"][0]["functionResponse"]
    assert (response["name"], response["id"]) == ("picture", "c1")
    media = response.get("parts", []) if model.startswith("gemini-3") else turn["parts"][1:]
    assert [p["inlineData"]["mimeType"] for p in media] == ["image/png"]
    assert base64.b64decode(media[0]["inlineData"]["data"]).startswith(b"\x89PNG")
