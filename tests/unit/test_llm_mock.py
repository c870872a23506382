"""llm/mock scripts tool calls, so a with_tools flow runs offline from the first request to the final answer."""

from __future__ import annotations

import json

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, LLMError
from pepperpy.llm import MessageRole, ToolCall

WEATHER_CALL = {"tool": "get_weather", "arguments": {"city": "Paris"}}


def get_weather(city: str) -> dict[str, object]:
    """The weather in a city."""
    asked.append(city)
    return {"city": city, "sky": "sunny", "celsius": 21}


def get_time(city: str) -> str:
    """The local time in a city."""
    return f"noon in {city}"


asked: list[str] = []


@pytest.fixture(autouse=True)
def fresh_log():
    asked.clear()


async def test_a_scripted_tool_call_runs_the_tool_and_sends_its_result_back(builtin_manager):
    replies = [WEATHER_CALL, "It is sunny in Paris, 21 C."]
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=replies) as pepper:
        result = await pepper.chat.with_user("Weather in Paris?").with_tools(get_weather).generate()
        first, second = pepper.llm.calls
    assert result.content == "It is sunny in Paris, 21 C."
    assert asked == ["Paris"]
    assert [m.role for m in second] == [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL]
    request, tool_result = second[1], second[2]
    assert request.tool_calls == [ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})]
    assert tool_result.tool_call_id == "call_1" and tool_result.name == "get_weather"
    assert json.loads(tool_result.content) == {"city": "Paris", "sky": "sunny", "celsius": 21}
    assert [m.role for m in result.messages][-1] == MessageRole.ASSISTANT


async def test_several_calls_in_one_answer_and_run_false(builtin_manager):
    both = [WEATHER_CALL, {"tool": "get_time", "arguments": {"city": "Lima"}}]
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=[both, "Done."]) as pepper:
        chat = pepper.chat.with_user("Weather in Paris, time in Lima?").with_tools(get_weather, get_time)
        assert (await chat.generate()).content == "Done."
        sent_back = pepper.llm.calls[-1][-2:]
    assert [(m.tool_call_id, m.content) for m in sent_back] == [
        ("call_1", json.dumps({"city": "Paris", "sky": "sunny", "celsius": 21})), ("call_2", "noon in Lima"),
    ]
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=[both]) as pepper:
        asked.clear()
        handled = await pepper.chat.with_user("Weather?").with_tools(get_weather, get_time, run=False).generate()
    assert [(c.id, c.name, c.arguments) for c in handled.tool_calls] == [
        ("call_1", "get_weather", {"city": "Paris"}), ("call_2", "get_time", {"city": "Lima"}),
    ]
    assert asked == [] and handled.content == "", "with run=False the calls come back to the caller, not run"


async def test_a_streamed_tool_call_arrives_on_the_last_chunk(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=[WEATHER_CALL]) as pepper:
        chunks = [c async for c in pepper.chat.with_user("Weather?").with_tools(get_weather, run=False).stream()]
    assert chunks[-1].finish_reason == "tool_calls"
    assert chunks[-1].tool_calls == [ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})]
    assert asked == [], "with run=False a stream returns the calls; it does not run them"


async def test_a_call_to_a_tool_not_offered_is_an_error(builtin_manager):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=[WEATHER_CALL]) as pepper:
        with pytest.raises(LLMError, match=r"llm/mock: replies\[0\] calls the tool 'get_weather', but this call offers "
                                           r"no tools \(add them with \.with_tools\(\.\.\.\)\)"):
            await pepper.chat.with_user("Weather?").generate()
        with pytest.raises(LLMError, match=r"offers only get_time"):
            await pepper.chat.with_user("Weather?").with_tools(get_time).generate()


@pytest.mark.parametrize("reply, problem", [
    ({"name": "get_weather"}, r"has no 'tool' name"),
    ({"tool": "get_weather", "args": {}}, r"takes only 'tool' and an 'arguments' dict"),
    ({"tool": "get_weather", "arguments": "Paris"}, r"takes only 'tool' and an 'arguments' dict"),
    ([], r"an empty list"),
])
def test_a_badly_scripted_tool_call_fails_at_with_llm(builtin_manager, reply, problem):
    with pytest.raises(ConfigError, match=rf"llm/mock: replies\[1\] is .*{problem}"):
        PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=["fine", reply])
