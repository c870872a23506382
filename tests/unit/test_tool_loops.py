"""Tool loops on both paths: ``stream()`` runs tool rounds too (text as it comes, the calls and their results as
chunks, then the answer), the calls of one round run concurrently (sync and async tools), ``max_rounds`` bounds
both paths, and every round is one LLM call through the hooks and the call log. Driven by llm/mock's scripted
tool calls, so what happens never depends on a model's luck."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy._calllog import recent
from pepperpy.errors import InvalidInputError, LLMError
from pepperpy.hooks import Call
from pepperpy.llm import MessageRole, ToolCall

WEATHER = {"tool": "get_weather", "arguments": {"city": "Paris"}}
TIME = {"tool": "get_time", "arguments": {"city": "Lima"}}


def get_weather(city: str) -> dict[str, object]:
    """The weather in a city."""
    return {"city": city, "sky": "sunny"}


async def get_time(city: str) -> str:
    """The local time in a city."""
    return f"noon in {city}"


def mock(manager, replies):
    return PepperPy(plugin_manager=manager).with_llm("mock", replies=replies, cycle=False)


async def test_stream_runs_the_tool_rounds_and_streams_the_final_answer(builtin_manager):
    replies = [[WEATHER, TIME], "Sunny in Paris, noon in Lima."]
    async with mock(builtin_manager, replies) as pepper:
        chat = pepper.chat.with_user("Weather in Paris, time in Lima?").with_tools(get_weather, get_time)
        chunks = [chunk async for chunk in chat.stream()]
        first, second = pepper.llm.calls
    asking = [i for i, c in enumerate(chunks) if c.tool_calls]
    answering = [i for i, c in enumerate(chunks) if c.tool_results]
    assert len(asking) == 1 and answering == [asking[0] + 1], "the calls, then their results, as chunks"
    calls = chunks[asking[0]].tool_calls
    assert [(c.id, c.name) for c in calls] == [("call_1", "get_weather"), ("call_2", "get_time")]
    results = chunks[answering[0]].tool_results
    assert [(r.role, r.tool_call_id, r.name) for r in results] == [
        (MessageRole.TOOL, "call_1", "get_weather"), (MessageRole.TOOL, "call_2", "get_time"),
    ]
    assert json.loads(results[0].content) == {"city": "Paris", "sky": "sunny"} and results[1].content == "noon in Lima"
    # what a user printing chunk.content sees: only the text, never a call or a result
    assert "".join(c.content for c in chunks) == "Sunny in Paris, noon in Lima."
    assert len([c for c in chunks[answering[0] + 1:] if c.content]) > 1, "the final answer streams piece by piece"
    assert chunks[-1].finish_reason == "stop"
    # the second round sent the first round's answer (with its calls) and the results back
    assert [m.role for m in second] == [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL, MessageRole.TOOL]
    assert second[1].tool_calls == calls and second[2:] == results


async def test_several_rounds_stream_each_round(builtin_manager):
    replies = [WEATHER, TIME, "Both done."]
    async with mock(builtin_manager, replies) as pepper:
        chunks = [c async for c in pepper.chat.with_user("?").with_tools(get_weather, get_time).stream()]
        assert len(pepper.llm.calls) == 3
        last_request = pepper.llm.calls[-1]
    assert [c.tool_calls[0].name for c in chunks if c.tool_calls] == ["get_weather", "get_time"]
    assert [c.tool_results[0].content for c in chunks if c.tool_results] == [
        json.dumps({"city": "Paris", "sky": "sunny"}), "noon in Lima",
    ]
    assert [m.role for m in last_request] == [MessageRole.USER, *[MessageRole.ASSISTANT, MessageRole.TOOL] * 2]


async def test_run_false_streams_the_calls_without_running_them(builtin_manager):
    ran = []

    def record(city: str) -> str:
        """Records its calls."""
        ran.append(city)
        return city

    async with mock(builtin_manager, [{"tool": "record", "arguments": {"city": "Paris"}}]) as pepper:
        chunks = [c async for c in pepper.chat.with_user("?").with_tools(record, run=False).stream()]
    assert chunks[-1].finish_reason == "tool_calls" and chunks[-1].tool_calls[0].name == "record"
    assert ran == [] and not any(c.tool_results for c in chunks)


@pytest.mark.parametrize("path", ["generate", "stream"])
@pytest.mark.parametrize("kind", ["sync", "async"])
async def test_the_calls_of_one_round_run_concurrently(builtin_manager, path, kind):
    """Each tool waits (with a 10 s guard against a hang, not a speed limit) until both have started: run one
    after the other, the first one's wait breaks and its result is an error."""
    if kind == "sync":
        barrier = threading.Barrier(2, timeout=10)

        def meet(name: str) -> str:
            """Waits for the other call."""
            barrier.wait()
            return f"{name} met"
    else:
        started: list[str] = []
        both = asyncio.Event()

        async def meet(name: str) -> str:
            """Waits for the other call."""
            started.append(name)
            if len(started) == 2:
                both.set()
            await asyncio.wait_for(both.wait(), 10)
            return f"{name} met"

    replies = [[{"tool": "meet", "arguments": {"name": "a"}}, {"tool": "meet", "arguments": {"name": "b"}}], "ok"]
    async with mock(builtin_manager, replies) as pepper:
        chat = pepper.chat.with_user("?").with_tools(meet)
        if path == "generate":
            assert (await chat.generate()).content == "ok"
        else:
            assert "".join([c.content async for c in chat.stream()]) == "ok"
        sent_back = pepper.llm.calls[-1][-2:]
    assert [m.content for m in sent_back] == ["a met", "b met"]


@pytest.mark.parametrize("path", ["generate", "stream"])
async def test_max_rounds_bounds_both_paths(builtin_manager, path):
    async with PepperPy(plugin_manager=builtin_manager).with_llm("mock", replies=[WEATHER]) as pepper:  # always asks
        chat = pepper.chat.with_user("?").with_tools(get_weather, max_rounds=2)
        message = r"llm/mock: the model still asked for tools \(get_weather\) after max_rounds=2 tool rounds; " \
                  r"pass a larger max_rounds to with_tools\(\) or run=False"
        with pytest.raises(LLMError, match=message):
            if path == "generate":
                await chat.generate()
            else:
                [c async for c in chat.stream()]
        assert len(pepper.llm.calls) == 3, "two tool rounds, then the third answer still asks: refused"
        assert [m.role for m in pepper.llm.calls[-1]].count(MessageRole.TOOL) == 2


@pytest.mark.parametrize("bad", [0, -1, "3", 2.5, True, None])
def test_a_bad_max_rounds_is_refused_at_with_tools(bad):
    from pepperpy.chat import ChatBuilder

    with pytest.raises(InvalidInputError, match=r"with_tools\(\): max_rounds must be a whole number of at least 1"):
        ChatBuilder(source=None).with_tools(get_weather, max_rounds=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize("path", ["generate", "stream"])
async def test_every_round_is_one_call_through_the_hooks_and_the_call_log(builtin_manager, tmp_path, path):
    seen: list[tuple[bool, list[MessageRole]]] = []

    async def watch(call: Call, call_next):
        seen.append((call.stream, [m.role for m in call.messages]))
        return await call_next(call)

    log = tmp_path / "calls.db"
    pepper = mock(builtin_manager, [WEATHER, TIME, "done"]).with_hook(watch).with_logging(log)
    async with pepper:
        chat = pepper.chat.with_user("?").with_tools(get_weather, get_time)
        if path == "generate":
            await chat.generate()
        else:
            [c async for c in chat.stream()]
    streamed = path == "stream"
    assert seen == [
        (streamed, [MessageRole.USER]),
        (streamed, [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL]),
        (streamed, [MessageRole.USER, MessageRole.ASSISTANT, MessageRole.TOOL, MessageRole.ASSISTANT, MessageRole.TOOL]),
    ]
    rows = recent(log, n=0)
    assert len(rows) == 3 and all(row.stream is streamed for row in rows)
    assert all(row.outcome == "complete" for row in rows)


async def test_a_hook_changing_the_text_does_not_lose_the_calls(builtin_manager):
    """The assistant message sent back is made from the chunks when the provider's own does not fit them."""
    async def louder(call: Call, call_next):
        chunks = await call_next(call)
        if not call.stream:
            return chunks

        async def upper():
            async for chunk in chunks:
                yield chunk.model_copy(update={"content": chunk.content.upper(), "message": None})
        return upper()

    async with mock(builtin_manager, [WEATHER, "sunny"]).with_hook(louder) as pepper:
        text = "".join([c.content async for c in pepper.chat.with_user("?").with_tools(get_weather).stream()])
        sent = pepper.llm.calls[-1]
    assert text == "SUNNY"
    assert sent[1].role == MessageRole.ASSISTANT and sent[1].tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    ]


async def test_tool_errors_and_unknown_tools_stream_as_results(builtin_manager):
    def broken(city: str) -> str:
        """Always fails."""
        raise RuntimeError(f"no data for {city}")

    calls = [{"tool": "broken", "arguments": {"city": "Oslo"}}, {"tool": "broken", "arguments": {"town": "Oslo"}}]
    async with mock(builtin_manager, [calls, "sorry"]) as pepper:
        chunks = [c async for c in pepper.chat.with_user("?").with_tools(broken).stream()]
    (results,) = [c.tool_results for c in chunks if c.tool_results]
    assert results[0].content == "error: RuntimeError: no data for Oslo"
    assert results[1].content.startswith("error: bad arguments for broken:")
    assert "".join(c.content for c in chunks) == "sorry"


class City(BaseModel):
    name: str


async def test_a_streamed_tool_loop_with_a_response_model_parses_the_final_answer(builtin_manager):
    async with mock(builtin_manager, [WEATHER, '{"name": "Paris"}']) as pepper:
        chat = pepper.chat.with_user("?").with_tools(get_weather).with_response_model(City)
        chunks = [c async for c in chat.stream()]
    assert chunks[-1].parsed == City(name="Paris")
    assert any(c.tool_results for c in chunks)


async def test_leaving_a_tool_stream_early_closes_it(builtin_manager, tmp_path):
    log = tmp_path / "calls.db"
    async with mock(builtin_manager, [WEATHER, "one two three"]).with_logging(log) as pepper:
        stream = pepper.chat.with_user("?").with_tools(get_weather).stream()
        async for chunk in stream:
            if chunk.content:
                break
        await stream.aclose()
    statuses = [row.outcome for row in recent(log, n=0)]
    assert sorted(statuses) == ["complete", "stopped"], "the first round complete, the second left early"


WHOLE_ANSWERS = """
from pepperpy.llm import GenerationResult, LLMProvider, Message, MessageRole, ToolCall


class WholeAnswers(LLMProvider):
    \"\"\"Implements generate only: stream() gets the base class's one-chunk stream.\"\"\"

    async def generate(self, messages, **options):
        if messages[-1].role == MessageRole.TOOL:
            return GenerationResult(content="the tool said " + messages[-1].text, messages=list(messages))
        call = ToolCall(id="w1", name="get_weather", arguments={"city": "Rome"})
        asked = Message(role=MessageRole.ASSISTANT, content="", tool_calls=[call])
        return GenerationResult(content="", messages=[*messages, asked], tool_calls=[call])
"""


async def test_a_provider_without_generate_stream_runs_a_streamed_tool_loop(make_plugin, manager):
    """The base class's default stream carries the answer's tool calls, so the loop runs on every provider."""
    make_plugin("whole", files={"provider.py": WHOLE_ANSWERS}, entry_point="provider:WholeAnswers")
    async with PepperPy(plugin_manager=manager).with_llm("whole") as pepper:
        chunks = [c async for c in pepper.chat.with_user("?").with_tools(get_weather).stream()]
    (asked,) = [c for c in chunks if c.tool_calls]
    assert asked.finish_reason == "tool_calls" and asked.tool_calls[0].id == "w1"
    assert "".join(c.content for c in chunks) == 'the tool said {"city": "Rome", "sky": "sunny"}'


async def test_a_conversation_keeps_the_tool_rounds_in_its_history(builtin_manager):
    """conv.say() and conv.stream() keep each round's assistant message (with its calls) and the tool results, so
    the next turn sends the model what it saw (and a provider sees each tool call answered)."""
    replies = [WEATHER, "Sunny.", "Still sunny.", TIME, "Noon.", "Yes."]
    async with mock(builtin_manager, replies) as pepper:
        conv = pepper.conversation()
        conv.tools = (get_weather, get_time)
        await conv.say("Weather in Paris?")
        kept = [(m.role, bool(m.tool_calls), m.text) for m in conv.messages]
        assert kept == [
            (MessageRole.USER, False, "Weather in Paris?"),
            (MessageRole.ASSISTANT, True, ""),
            (MessageRole.TOOL, False, json.dumps({"city": "Paris", "sky": "sunny"})),
            (MessageRole.ASSISTANT, False, "Sunny."),
        ]
        await conv.say("And now?")
        assert [m.role for m in pepper.llm.calls[-1]] == [m.role for m in conv.messages[:-1]]
        assert pepper.llm.calls[-1][2].role == MessageRole.TOOL, "the next turn sends the tool result back"
        async for _chunk in conv.stream("Time in Lima?"):
            pass
        streamed = [(m.role, [c.name for c in m.tool_calls], m.text) for m in conv.messages[6:]]
        assert streamed == [
            (MessageRole.USER, [], "Time in Lima?"),
            (MessageRole.ASSISTANT, ["get_time"], ""),
            (MessageRole.TOOL, [], "noon in Lima"),
            (MessageRole.ASSISTANT, [], "Noon."),
        ]
        await conv.say("Sure?")
        assert [m.role for m in pepper.llm.calls[-1]] == [m.role for m in conv.messages[:-1]]


async def test_result_usage_after_a_tool_loop_is_the_sum_of_its_rounds(builtin_manager):
    async with mock(builtin_manager, [WEATHER, TIME, "It is sunny in Paris and noon in Lima."]) as pepper:
        result = await pepper.chat.with_user("Weather in Paris, time in Lima?").with_tools(get_weather, get_time).generate()
        totals = pepper.usage.total
    assert totals.calls == 3
    assert result.usage.prompt_tokens == totals.prompt_tokens and result.usage.completion_tokens == totals.completion_tokens
