"""llm/openai with api="responses" against llama.cpp's real ``/v1/responses`` serving SmolLM2 on 127.0.0.1:
text, instructions, streaming events, usage (with llama.cpp's real prompt cache), tool results sent back.
Every request body is also checked against the openai SDK's own Responses types.
What llama.cpp cannot show (tool calls, text.format, reasoning items) is tested against recordings
in test_openai_responses_recorded.py."""

from __future__ import annotations

import pytest

from pepperpy import PepperPy
from pepperpy.llm import Message, ToolCall
from tests.openai_types import check_responses_body, record_bodies

pytestmark = pytest.mark.integration
SETTINGS = {"temperature": 0, "max_tokens": 30}


@pytest.fixture
def sent_bodies(monkeypatch):
    """The JSON bodies sent to /responses (each checked against the SDK's request types by the test)."""
    return record_bodies(monkeypatch)


@pytest.fixture
async def pepper(remote_manager, llama_server):
    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=llama_server, api_key="sk-local-test", api="responses", **SETTINGS
    ) as ready:
        yield ready


def capital_question(pepper):
    return pepper.chat.with_system("Be brief.").with_user("What is the capital of France?")


async def test_generate_sends_instructions_and_input_and_reads_the_answer(pepper, sent_bodies):
    result = await capital_question(pepper).generate()
    assert "Paris" in result.content
    assert result.usage.prompt_tokens > 5 and 0 < result.usage.completion_tokens <= SETTINGS["max_tokens"]
    assert result.metadata["finish_reason"] == "stop" and result.metadata["id"].startswith("resp_")
    (body,) = sent_bodies
    check_responses_body(body)
    assert body["instructions"] == "Be brief."
    assert body["input"] == [{"role": "user", "content": "What is the capital of France?"}]
    assert body["max_output_tokens"] == 30 and body["store"] is False


async def test_stream_matches_generate_and_ends_with_usage(pepper, sent_bodies):
    whole = await capital_question(pepper).generate()
    chunks = [chunk async for chunk in capital_question(pepper).stream()]
    assert "".join(c.content for c in chunks) == whole.content
    assert len([c for c in chunks if c.content]) > 2
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == whole.usage.completion_tokens
    assert sent_bodies[-1]["stream"] is True
    for body in sent_bodies:
        check_responses_body(body)


async def test_a_repeated_prompt_reports_cached_tokens(pepper):
    question = "Name three rivers of Europe, one per line."
    await pepper.chat.with_user(question).generate()
    again = await pepper.chat.with_user(question).generate()
    assert 0 < again.usage.cache_read_tokens <= again.usage.prompt_tokens


async def test_a_tool_result_goes_back_as_function_call_output(pepper, sent_bodies):
    history = [
        Message(role="user", content="What is the weather in Paris?"),
        Message(role="assistant", content="", tool_calls=[ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})]),
        Message(role="tool", content="Sunny, 21 C", tool_call_id="call_1"),
    ]
    result = await pepper.llm.generate(history)
    assert result.content and result.usage.prompt_tokens > 10
    (body,) = sent_bodies
    check_responses_body(body)
    assert body["input"][1:] == [
        {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city": "Paris"}'},
        {"type": "function_call_output", "call_id": "call_1", "output": "Sunny, 21 C"},
    ]


async def test_stop_and_seed_are_refused_before_any_request(remote_manager, llama_server, sent_bodies):
    from pepperpy.errors import ConfigError

    async with PepperPy(plugin_manager=remote_manager).with_llm(
        "openai", base_url=llama_server, api_key="k", api="responses", seed=3
    ) as pepper:
        with pytest.raises(ConfigError, match=r"api='responses'.*no 'seed'.*api='chat'"):
            await pepper.chat.with_user("hi").generate()
    assert sent_bodies == []


async def test_a_conversation_goes_on_over_several_turns(pepper, sent_bodies):
    conv = pepper.conversation(system="Be brief.")
    first = await conv.say("What is the capital of France?")
    second = await conv.say("And of Italy?")
    assert first.content and second.content
    check_responses_body(sent_bodies[-1])
    assert sent_bodies[-1]["input"][1] == {"type": "message", "role": "assistant", "content": first.content}
