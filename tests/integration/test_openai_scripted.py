"""llm/openai against the local scripted server, for what llama.cpp's real server cannot show on demand:
tool-call answers (SmolLM2 does not emit tool calls), 429/5xx/401, hangs, cut streams, malformed bodies.
The tool-call replies follow the documented Chat Completions wire format.
"""

from __future__ import annotations

import json

import pytest
from loguru import logger
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy.errors import AuthenticationError, ConfigError, LLMError, ProviderError, ProviderTimeoutError, RateLimitError
from pepperpy.llm import Usage
from tests.servers.scripted import Reply, chat_answer, chat_stream_events, tool_call

pytestmark = pytest.mark.integration
SECRET = "test-openai-key-not-real-0123456789"


@pytest.fixture
async def pepper(remote_manager, scripted):
    pepper = PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=scripted.base_url, api_key=SECRET, max_retries=2, retry_budget=5, timeout=5
    )
    async with pepper:
        yield pepper


def ask(pepper):
    return pepper.chat.with_user("hi")


def get_weather(city: str, unit: str = "celsius") -> dict:
    """Current weather for a city."""
    return {"city": city, "temperature": 21, "unit": unit}


async def test_sends_the_documented_request(pepper, scripted):
    scripted.reset(Reply(json=chat_answer("hello")))
    result = await pepper.chat.with_system("sys").with_user("hi").with_options(temperature=0.5, max_tokens=7).generate()
    assert result.content == "hello" and result.usage.prompt_tokens == 10
    (request,) = scripted.requests
    assert request.path == "/v1/chat/completions"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.json() == {
        "messages": [{"role": "system", "content": "sys"}, {"role": "user", "content": "hi"}],
        "model": "gpt-4o-mini", "temperature": 0.5, "max_tokens": 7,
    }


async def test_tool_loop_calls_the_function_and_sends_the_result_back(pepper, scripted):
    scripted.reset(
        Reply(json=chat_answer(tool_calls=[tool_call("call_1", "get_weather", {"city": "Paris"})], finish="tool_calls")),
        Reply(json=chat_answer("It is 21 degrees in Paris.")),
    )
    result = await pepper.chat.with_user("Weather in Paris?").with_tools(get_weather).generate()
    assert result.content == "It is 21 degrees in Paris."
    first, second = (r.json() for r in scripted.requests)
    assert first["tools"] == [{
        "type": "function",
        "function": {
            "name": "get_weather", "description": "Current weather for a city.",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}, "unit": {"type": "string", "default": "celsius"}},
                "required": ["city"],
            },
        },
    }]
    assistant, tool_reply = second["messages"][-2:]
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert tool_reply == {
        "role": "tool", "tool_call_id": "call_1",
        "content": json.dumps({"city": "Paris", "temperature": 21, "unit": "celsius"}),
    }


async def test_tool_calls_are_returned_when_not_run(pepper, scripted):
    scripted.reset(Reply(json=chat_answer(tool_calls=[tool_call("c9", "get_weather", {"city": "Rome"})], finish="tool_calls")))
    result = await pepper.chat.with_user("Weather?").with_tools(get_weather, run=False).generate()
    assert [(c.id, c.name, c.arguments) for c in result.tool_calls] == [("c9", "get_weather", {"city": "Rome"})]
    assert len(scripted.requests) == 1


async def test_tool_loop_is_bounded(pepper, scripted):
    calling = Reply(json=chat_answer(tool_calls=[tool_call("c", "get_weather", {"city": "X"})], finish="tool_calls"))
    scripted.reset(*[calling] * 3)
    with pytest.raises(LLMError, match=r"still asked for tools \(get_weather\) after max_rounds=2 tool rounds"):
        await pepper.chat.with_user("loop").with_tools(get_weather, max_rounds=2).generate()
    assert len(scripted.requests) == 3


async def test_streamed_tool_call_deltas_are_joined(pepper, scripted):
    def delta(payload, reason=None):
        return "data: " + json.dumps({"choices": [{"index": 0, "delta": payload, "finish_reason": reason}]})

    usage = "data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}})
    scripted.reset(Reply(events=[
        delta({"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "get_weather", "arguments": '{"ci'}}]}),
        delta({"tool_calls": [{"index": 0, "function": {"arguments": 'ty": "Oslo"}'}}]}),
        delta({}, "tool_calls"),
        usage,  # the usage comes after the chunk with the calls: the loop takes the calls from any chunk
        "data: [DONE]",
    ]), Reply(events=[delta({"content": "21 in "}), delta({"content": "Oslo"}), delta({}, "stop"), usage, "data: [DONE]"]))
    chunks = [c async for c in pepper.chat.with_user("w").with_tools(get_weather).stream()]
    calls = [call for c in chunks for call in c.tool_calls]
    assert [(c.id, c.name, c.arguments) for c in calls] == [("c1", "get_weather", {"city": "Oslo"})]
    assert "".join(c.content for c in chunks) == "21 in Oslo"
    assistant, tool_reply = scripted.requests[1].json()["messages"][-2:]
    assert assistant["tool_calls"][0]["id"] == "c1"
    assert assistant["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Oslo"}'}
    assert tool_reply == {"role": "tool", "tool_call_id": "c1", "content": json.dumps({"city": "Oslo", "temperature": 21, "unit": "celsius"})}


async def test_streamed_chunks_carry_the_deltas_and_the_usage_last(pepper, scripted):
    """Empty deltas and events without choices yield nothing; a usage-only event is the last chunk."""
    def delta(payload, reason=None, **extra):
        return "data: " + json.dumps({"choices": [{"index": 0, "delta": payload, "finish_reason": reason}], **extra})

    scripted.reset(Reply(events=[
        delta({"role": "assistant", "content": ""}),
        delta({"content": "Hel"}),
        "data: " + json.dumps({"choices": []}),
        delta({"content": "lo"}, usage={"prompt_tokens": 99, "completion_tokens": 99}),  # with choices: not usage
        delta({}, "stop"),
        "data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 4, "completion_tokens": 2}}),
        "data: [DONE]",
    ]))
    chunks = [c async for c in ask(pepper).stream()]
    assert [(c.content, c.finish_reason, c.tool_calls, c.usage) for c in chunks] == [
        ("Hel", None, [], None), ("lo", None, [], None), ("", "stop", [], None), ("", None, [], Usage(prompt_tokens=4, completion_tokens=2)),
    ]
    text_only, last = {"content"}, {"content", "reasoning", "finish_reason", "tool_calls"}  # text: GenerationChunk.from_text
    assert [c.model_fields_set for c in chunks] == [text_only, text_only, last, {"usage"}]
    totals = pepper.usage[("llm/openai", pepper.llm.model)]
    assert (totals.calls, totals.prompt_tokens, totals.completion_tokens) == (1, 4, 2)


async def test_429_with_retry_after_then_success(pepper, scripted):
    scripted.reset(Reply(status=429, headers={"retry-after": "0.1"}, json={"error": {"message": "slow down"}}), Reply(json=chat_answer("ok")))
    assert (await ask(pepper).generate()).content == "ok"
    assert len(scripted.requests) == 2


async def test_retry_after_beyond_the_budget_is_not_waited_for(pepper, scripted):
    scripted.reset(Reply(status=429, headers={"retry-after": "60"}, json={"error": {"message": "quota exceeded"}}))
    with pytest.raises(RateLimitError, match="quota exceeded"):
        await ask(pepper).generate()
    assert len(scripted.requests) == 1


async def test_500_twice_then_success(pepper, scripted):
    error = Reply(status=500, json={"error": {"message": "overloaded"}})
    scripted.reset(error, error, Reply(json=chat_answer("finally")))
    assert (await ask(pepper).generate()).content == "finally"
    assert len(scripted.requests) == 3


async def test_5xx_beyond_the_retry_budget_raises_with_the_service_message(pepper, scripted):
    error = Reply(status=503, json={"error": {"message": "try later"}})
    scripted.reset(error, error, error)
    with pytest.raises(ProviderError, match=r"HTTP 503.*try later \(tried 3 times\)$"):
        await ask(pepper).generate()
    assert len(scripted.requests) == 3


async def test_401_is_not_retried_and_the_key_is_not_shown(pepper, scripted):
    scripted.reset(Reply(status=401, json={"error": {"message": "Incorrect API key provided"}}))
    messages = []
    logger.enable("pepperpy")
    sink = logger.add(messages.append, level="DEBUG")
    try:
        with pytest.raises(AuthenticationError, match="Incorrect API key provided") as raised:
            await ask(pepper).generate()
    finally:
        logger.remove(sink)
        logger.disable("pepperpy")
    assert len(scripted.requests) == 1
    assert SECRET not in str(raised.value) and SECRET not in repr(pepper.llm) and SECRET not in repr(pepper)
    assert messages and all(SECRET not in m for m in messages)


async def test_400_keeps_the_service_message_and_is_not_retried(pepper, scripted):
    scripted.reset(Reply(status=400, json={"error": {"message": "model 'x' does not exist"}}))
    with pytest.raises(ProviderError, match="model 'x' does not exist"):
        await ask(pepper).generate()
    assert len(scripted.requests) == 1


async def test_hang_becomes_a_timeout_of_the_whole_call(pepper, scripted):
    scripted.reset(*[Reply(delay=30, json=chat_answer("late"))] * 3)
    with pytest.raises(ProviderTimeoutError, match=r"within timeout=0.2s \(the limit covers the whole call"):
        await ask(pepper).with_options(timeout=0.2).generate()
    assert len(scripted.requests) == 1, "no retry may outlive the call's timeout"


async def test_cut_stream_raises_and_keeps_what_was_received(pepper, scripted):
    scripted.reset(Reply(events=chat_stream_events(["one ", "two ", "three"]), cut_after=3))
    received = []
    with pytest.raises(ProviderError, match="broke off midway"):
        async for chunk in ask(pepper).stream():
            received.append(chunk.content)
    assert "".join(received) == "one two "
    assert len(scripted.requests) == 1, "a stream that has yielded is never retried (no duplicate output)"


async def test_stream_without_finish_is_an_error(pepper, scripted):
    scripted.reset(Reply(events=chat_stream_events(["half"])[:2]))
    with pytest.raises(LLMError, match="ended before the answer was complete"):
        async for _ in ask(pepper).stream():
            pass


async def test_stream_is_retried_before_its_first_event(pepper, scripted):
    scripted.reset(Reply(status=502, json={"error": {"message": "bad gateway"}}), Reply(events=chat_stream_events(["a", "b"])))
    assert "".join([c.content async for c in ask(pepper).stream()]) == "ab"
    assert len(scripted.requests) == 2


async def test_malformed_json_body_is_a_provider_error(pepper, scripted):
    scripted.reset(Reply(raw=b"{not json"))
    with pytest.raises(ProviderError, match="malformed JSON"):
        await ask(pepper).generate()


async def test_unreachable_server_is_a_clear_error(remote_manager):
    from tests.integration.conftest import free_port

    pepper = PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=f"http://127.0.0.1:{free_port()}/v1", api_key="k", max_retries=1, retry_budget=2
    )
    with pytest.raises(ProviderError, match="cannot connect to .*127.0.0.1.*is the server running"):
        await ask(pepper).generate()
    await pepper.aclose()


class Person(BaseModel):
    name: str
    age: int


async def test_structured_output_retries_once_with_the_validation_error(pepper, scripted):
    scripted.reset(Reply(json=chat_answer('{"name": "Ada"}')), Reply(json=chat_answer('```json\n{"name": "Ada", "age": 36}\n```')))
    result = await pepper.chat.with_user("Who?").with_response_model(Person).generate()
    assert result.parsed == Person(name="Ada", age=36)
    first, second = (r.json() for r in scripted.requests)
    assert first["response_format"]["type"] == "json_schema"
    assert first["response_format"]["json_schema"]["schema"]["required"] == ["name", "age"]
    assert "age" in second["messages"][-1]["content"] and second["messages"][-2]["content"] == '{"name": "Ada"}'


async def test_structured_output_gives_up_after_one_retry(pepper, scripted):
    scripted.reset(Reply(json=chat_answer("no json")), Reply(json=chat_answer("still none")))
    with pytest.raises(LLMError, match="did not fit Person after one retry"):
        await pepper.chat.with_user("Who?").with_response_model(Person).generate()


async def test_json_mode_for_services_without_schemas(remote_manager, scripted):
    scripted.reset(Reply(json=chat_answer('{"name": "Bo", "age": 3}')))
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "mistral", base_url=scripted.base_url, api_key="k"
    ) as pepper:
        result = await pepper.chat.with_user("Who?").with_response_model(Person).generate()
    assert result.parsed == Person(name="Bo", age=3)
    assert scripted.requests[0].json()["response_format"] == {"type": "json_object"}


def test_missing_key_fails_at_with_llm_naming_the_variable(remote_manager, monkeypatch):
    monkeypatch.delenv("OPENROUTER_API_KEY", raising=False)
    monkeypatch.setenv("PEPPERPY_HOME", "/nonexistent")
    with pytest.raises(ConfigError, match="set the OPENROUTER_API_KEY environment variable, or run `pepperpy keys set OPENROUTER_API_KEY`"):
        PepperPy(plugin_manager=remote_manager).with_llm("openrouter")


async def test_presets_reuse_the_openai_plugin(remote_manager, monkeypatch):
    for preset, url in [("groq", "https://api.groq.com/openai/v1"), ("deepseek", "https://api.deepseek.com/v1"), ("ollama", "http://127.0.0.1:11434/v1")]:
        monkeypatch.setenv(f"{preset.upper()}_API_KEY", "k")
        provider = PepperPy(plugin_manager=remote_manager).with_llm(preset).llm
        assert type(provider).__name__ == "OpenAIProvider" and provider.base_url == url and provider.alias == preset


async def test_an_mcp_tools_image_follows_the_tool_messages_in_a_user_message(pepper, scripted):
    """The demo MCP server's ``picture`` tool (a real server, stdio): a Chat Completions tool message takes text
    only, so its image goes in a user message after the round's tool messages, naming the call."""
    import base64
    import sys
    from pathlib import Path

    from pepperpy import MCPServer

    demo = str(Path(__file__).resolve().parents[1] / "servers" / "mcp_demo.py")
    scripted.reset(Reply(json=chat_answer(tool_calls=[tool_call("c1", "picture", {}), tool_call("c2", "echo", {"text": "hi"})],
                                          finish="tool_calls")),
                   Reply(json=chat_answer("A red dot.")))
    server = MCPServer.stdio(sys.executable, demo, name="demo")
    result = await pepper.chat.with_user("Draw").with_tools(server).generate()
    assert result.content == "A red dot."
    sent = scripted.requests[1].json()["messages"]
    assert [(m["role"], m.get("tool_call_id")) for m in sent] == [
        ("user", None), ("assistant", None), ("tool", "c1"), ("tool", "c2"), ("user", None),
    ]
    label, image = sent[-1]["content"]
    assert label == {"type": "text", "text": "The image from the tool result of picture (c1):"}
    prefix = "data:image/png;base64,"
    assert image["type"] == "image_url" and image["image_url"]["url"].startswith(prefix)
    assert base64.b64decode(image["image_url"]["url"][len(prefix):]).startswith(b"\x89PNG")
