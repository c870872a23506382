"""Record and replay (pepperpy.hooks.record, with_recording) on llm/mock: every mode and error, secrets kept out of
the file, streams, tool rounds and structured output."""

from __future__ import annotations

import json
from contextlib import aclosing
from typing import Any

import pytest
from pydantic import BaseModel, SecretStr

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, LLMError, RecordingError
from pepperpy.hooks import record
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

SECRET = "xxx-test-secret-not-real"


class Echoing(LLMProvider):
    """A service that echoes the key it was sent (in its answer and metadata), as some error bodies do."""

    call_options = None  # takes any per-call option
    api_key: SecretStr | None = None

    async def generate(self, messages, **options):
        key = self.api_key.get_secret_value() if self.api_key else ""
        return GenerationResult(content=f"you sent {key}", metadata={"echo": key, "options": sorted(options)})


class Weather(BaseModel):
    city: str
    degrees: int


@pytest.fixture
def manager(tmp_path):
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")
    manager.register_plugin("llm", "echoing", Echoing)
    return manager


def mock(manager: PluginManager, *replies: Any, **config: Any) -> PepperPy:
    return PepperPy(plugin_manager=manager).with_llm("mock", replies=list(replies), **config)


def dumped(chunks: list[GenerationChunk]) -> list[dict[str, Any]]:
    return [chunk.model_dump() for chunk in chunks]


async def test_once_records_then_replays_generate_and_stream_without_opening_the_provider(manager, tmp_path):
    path = tmp_path / "calls.json"
    async with mock(manager, "Red, green and blue.", "One two three.").with_recording(path) as pepper:
        answer = await pepper.chat.with_system("Be brief.").with_user("Colours?").generate()
        chunks = [c async for c in pepper.chat.with_user("Count.").with_options(temperature=0).stream()]
    assert pepper._recording.recorded == 2 and pepper._recording.replayed == 0
    assert path.exists()

    later = mock(manager, "something else").with_recording(path)  # the file exists now: once replays
    async with later:
        again = await later.chat.with_system("Be brief.").with_user("Colours?").generate()
        replayed = [c async for c in later.chat.with_user("Count.").with_options(temperature=0).stream()]
        assert not later.llm.initialized, "a replay must not open the provider, not even in async with"
    assert later.llm.calls == [], "the provider was called"
    assert again.model_dump() == answer.model_dump()  # content, usage, metadata, messages: all of it
    assert dumped(replayed) == dumped(chunks) and len(chunks) > 2  # the same chunks, in order
    assert later._recording.replayed == 2 and later._recording.recorded == 0
    assert later.usage.total.completion_tokens == pepper.usage.total.completion_tokens  # what the recorded run used


async def test_the_file_is_json_a_person_can_read_and_diff(manager, tmp_path):
    path = tmp_path / "calls.json"
    pepper = mock(manager, "One two three.").with_recording(path)
    [c async for c in pepper.chat.with_user("Count.").stream()]
    text = path.read_text()
    data = json.loads(text)
    (call,) = data["calls"]
    assert data["pepperpy_recording"] == 2 and call["provider"] == "llm/mock"
    assert call["request"]["messages"] == [{"role": "user", "content": "Count."}] and call["complete"] is True
    assert [json.loads(line.rstrip(",")) for line in text.splitlines() if line.startswith('    {"content"')] == [
        {"content": "One "}, {"content": "two "}, {"content": "three."}]  # a chunk on a line of its own
    await pepper.aclose()


async def test_replay_mode_names_the_file_and_the_request_it_has_no_answer_for(manager, tmp_path):
    path = tmp_path / "calls.json"
    pepper = mock(manager, "Four.").with_recording(path)
    await pepper.chat.with_user("Two and two?").with_options(temperature=0).generate()

    replaying = mock(manager).with_recording(path, mode="replay")
    with pytest.raises(RecordingError) as caught:
        await replaying.chat.with_user("Two and two?").with_options(temperature=0.7).generate()
    message = str(caught.value)
    assert str(path) in message and "mode 'replay'" in message
    assert "user: 'Two and two?'" in message and "temperature=0.7" in message  # the request, briefly
    assert "differs in option temperature" in message and "--pepperpy-record=new" in message
    with pytest.raises(RecordingError, match=r"differs in messages\[0\] \(recorded: user: 'Two and two\?'\)"):
        await replaying.chat.with_user("Three and three?").with_options(temperature=0).generate()
    assert replaying.llm.calls == []

    with pytest.raises(RecordingError, match="the file does not exist") as caught:
        await mock(manager).with_recording(tmp_path / "missing.json", mode="replay").chat.with_user("Hi").generate()
    assert "mode='once'" in str(caught.value) and "delete" not in str(caught.value)
    assert not (tmp_path / "missing.json").exists()


async def test_equal_requests_are_answered_in_recorded_order_each_answer_once(manager, tmp_path):
    path = tmp_path / "calls.json"
    pepper = mock(manager, "first", "second").with_recording(path)
    chat = pepper.chat.with_user("Again?")
    assert [(await chat.generate()).content for _ in range(2)] == ["first", "second"]

    replaying = mock(manager).with_recording(path)
    chat = replaying.chat.with_user("Again?")
    assert [(await chat.generate()).content for _ in range(2)] == ["first", "second"]
    with pytest.raises(RecordingError, match=r"its 2 answer\(s\) to it were replayed already"):
        await chat.generate()


async def test_new_mode_replays_what_it_has_and_appends_the_rest(manager, tmp_path):
    path = tmp_path / "calls.json"
    await mock(manager, "A.").with_recording(path).chat.with_user("a?").generate()

    adding = mock(manager, "B.").with_recording(path, mode="new")
    assert (await adding.chat.with_user("a?").generate()).content == "A."  # replayed, not the mock's "B."
    assert (await adding.chat.with_user("b?").generate()).content == "B."  # recorded
    assert len(adding.llm.calls) == 1
    assert [c["request"]["messages"][0]["content"] for c in json.loads(path.read_text())["calls"]] == ["a?", "b?"]

    replaying = mock(manager).with_recording(path, mode="replay")
    assert [(await replaying.chat.with_user(q).generate()).content for q in ("a?", "b?")] == ["A.", "B."]


async def test_new_keeps_a_stale_call_and_rewrite_records_every_call_afresh_without_it(manager, tmp_path):
    path = tmp_path / "calls.json"
    recorded = mock(manager, "A.", "Old.").with_recording(path)
    await recorded.chat.with_user("a?").generate()
    await recorded.chat.with_user("old prompt?").generate()  # the code asks "new prompt?" from now on

    adding = mock(manager, "New.").with_recording(path, mode="new")
    await adding.chat.with_user("a?").generate()
    await adding.chat.with_user("new prompt?").generate()
    asked = [c["request"]["messages"][0]["content"] for c in json.loads(path.read_text())["calls"]]
    assert asked == ["a?", "old prompt?", "new prompt?"]  # new: the stale call stays

    rewriting = mock(manager, "A2.", "New2.").with_recording(path, mode="rewrite")
    assert (await rewriting.chat.with_user("a?").generate()).content == "A2."  # recorded, yet asked again
    assert (await rewriting.chat.with_user("new prompt?").generate()).content == "New2."
    calls = json.loads(path.read_text())["calls"]
    assert [(c["request"]["messages"][0]["content"], c["result"]["content"]) for c in calls] == [
        ("a?", "A2."), ("new prompt?", "New2.")]
    assert rewriting._recording.replayed == 0 and rewriting._recording.recorded == 2
    path.write_text("{not a recording")  # rewrite replaces a broken file too
    await mock(manager, "Fresh.").with_recording(path, mode="rewrite").chat.with_user("a?").generate()
    assert [c["result"]["content"] for c in json.loads(path.read_text())["calls"]] == ["Fresh."]


async def test_volatile_fields_do_not_change_the_match(manager, tmp_path):
    path = tmp_path / "calls.json"
    await mock(manager, "Yes.").with_recording(path).conversation().say("Ready?")
    # another provider config, a timeout and retry settings, another conversation id: the same request
    replaying = mock(manager, "No.", cycle=False).with_recording(path, mode="replay")
    result = await replaying.conversation().say("Ready?", timeout=30, max_retries=1)
    assert result.content == "Yes."


async def test_secrets_never_reach_the_file(manager, tmp_path):
    path = tmp_path / "calls.json"

    async def sign(call, call_next):  # a hook adding credentials to the call's options
        return await call_next(call.replace(options={**call.options, "auth_token": SECRET, "api_key": SECRET}))

    pepper = PepperPy(plugin_manager=manager).with_llm("echoing", api_key=SECRET).with_hook(sign).with_recording(path)
    result = await pepper.chat.with_user("Hello").generate()
    assert SECRET in result.content and result.metadata["options"] == ["api_key", "auth_token"]  # the call had them
    text = path.read_text()
    assert SECRET not in text
    assert "you sent ***" in text and "auth_token" not in json.dumps(json.loads(text)["calls"][0]["request"])

    replaying = PepperPy(plugin_manager=manager).with_llm("echoing", api_key=SECRET).with_hook(sign)
    replayed = await replaying.with_recording(path, mode="replay").chat.with_user("Hello").generate()
    assert replayed.content == "you sent ***"  # what the file holds


async def test_tool_rounds_are_each_recorded_and_tools_run_again_in_a_replay(manager, tmp_path):
    path = tmp_path / "calls.json"
    ran: list[str] = []

    def get_weather(city: str) -> str:
        """The weather in a city."""
        ran.append(city)
        return f"sunny in {city}"

    replies = [{"tool": "get_weather", "arguments": {"city": "Paris"}}, "It is sunny in Paris."]
    chat = mock(manager, *replies).with_recording(path).chat.with_user("Weather in Paris?").with_tools(get_weather)
    answer = await chat.generate()
    assert len(json.loads(path.read_text())["calls"]) == 2  # one per round

    replaying = mock(manager).with_recording(path, mode="replay")
    again = await replaying.chat.with_user("Weather in Paris?").with_tools(get_weather).generate()
    assert again.content == answer.content == "It is sunny in Paris." and again.usage == answer.usage
    assert ran == ["Paris", "Paris"]  # the tool ran in the replay too: its result is part of the next request

    def changed_weather(city: str) -> str:
        """The weather in a city."""
        return f"rain in {city}"

    changed_weather.__name__ = "get_weather"
    with pytest.raises(RecordingError, match=r"messages\[2\] \(recorded: tool: 'sunny in Paris'\)") as caught:  # the tool's result differs: the round is not recorded
        await mock(manager).with_recording(path, mode="replay").chat.with_user("Weather in Paris?").with_tools(
            changed_weather).generate()
    assert "assistant: '' (calls get_weather) | tool: 'rain in Paris'; options tools=[get_weather]" in str(caught.value)


async def test_streamed_tool_rounds_replay_their_chunks_in_order(manager, tmp_path):
    path = tmp_path / "calls.json"

    def get_weather(city: str) -> str:
        """The weather in a city."""
        return f"sunny in {city}"

    replies = [{"tool": "get_weather", "arguments": {"city": "Paris"}}, "It is sunny in Paris."]
    chat = mock(manager, *replies).with_recording(path).chat.with_user("Weather?").with_tools(get_weather)
    chunks = [c async for c in chat.stream()]
    replaying = mock(manager).with_recording(path, mode="replay")
    replayed = [c async for c in replaying.chat.with_user("Weather?").with_tools(get_weather).stream()]
    assert dumped(replayed) == dumped(chunks)
    assert any(c.tool_calls for c in replayed) and any(c.tool_results for c in replayed)


async def test_structured_output_is_parsed_again_from_the_replayed_answer(manager, tmp_path):
    path = tmp_path / "calls.json"
    reply = '{"city": "Paris", "degrees": 21}'
    pepper = mock(manager, reply).with_recording(path)
    result = await pepper.chat.with_user("Weather?").with_response_model(Weather).generate()
    chunks = [c async for c in pepper.chat.with_user("Weather?").with_response_model(Weather).stream()]
    request = json.loads(path.read_text())["calls"][0]["request"]
    assert request["options"]["response_model"] == Weather.model_json_schema()  # matched by its schema, said once

    replaying = mock(manager).with_recording(path, mode="replay")
    again = await replaying.chat.with_user("Weather?").with_response_model(Weather).generate()
    streamed = [c async for c in replaying.chat.with_user("Weather?").with_response_model(Weather).stream()]
    assert again.parsed == result.parsed == Weather(city="Paris", degrees=21)
    assert streamed[-1].parsed == chunks[-1].parsed == Weather(city="Paris", degrees=21)

    class Other(BaseModel):
        city: str

    with pytest.raises(RecordingError, match="differs in option response_model"):
        await replaying.chat.with_user("Weather?").with_response_model(Other).generate()


async def test_a_format_1_recording_with_the_schema_said_twice_replays_and_is_upgraded_when_added_to(manager,
                                                                                                   tmp_path):
    path = tmp_path / "calls.json"
    reply = '{"city": "Paris", "degrees": 21}'
    await mock(manager, reply).with_recording(path).chat.with_user("Weather?").with_response_model(Weather).generate()
    data = json.loads(path.read_text())
    options = data["calls"][0]["request"]["options"]
    options["response_model"] = {"response_model": options["response_model"]}  # as format 1 wrote it
    data["pepperpy_recording"] = 1
    path.write_text(json.dumps(data))

    replaying = mock(manager, "a new answer").with_recording(path, mode="new")
    again = await replaying.chat.with_user("Weather?").with_response_model(Weather).generate()
    assert again.parsed == Weather(city="Paris", degrees=21) and replaying.llm.calls == []
    await replaying.chat.with_user("Another?").generate()  # recorded: the file is written again
    upgraded = json.loads(path.read_text())
    assert upgraded["pepperpy_recording"] == 2 and len(upgraded["calls"]) == 2
    assert upgraded["calls"][0]["request"]["options"]["response_model"] == Weather.model_json_schema()


async def test_a_stream_left_early_replays_up_to_where_it_was_left(manager, tmp_path):
    path = tmp_path / "calls.json"
    pepper = mock(manager, "one two three four").with_recording(path)
    async with aclosing(pepper.chat.with_user("Count.").stream()) as stream:
        async for chunk in stream:
            break
    (call,) = json.loads(path.read_text())["calls"]
    assert call["complete"] is False and call["chunks"] == [{"content": "one "}]

    replaying = mock(manager).with_recording(path, mode="replay")
    async with aclosing(replaying.chat.with_user("Count.").stream()) as stream:
        async for chunk in stream:
            assert chunk.content == "one "
            break
    with pytest.raises(RecordingError, match="recorded only up to chunk 1"):
        [c async for c in mock(manager).with_recording(path).chat.with_user("Count.").stream()]


async def test_failed_calls_are_not_recorded(manager, tmp_path):
    path = tmp_path / "calls.json"
    pepper = mock(manager, "only one", cycle=False).with_recording(path)
    await pepper.chat.with_user("1").generate()
    with pytest.raises(LLMError):
        await pepper.chat.with_user("2").generate()
    assert len(json.loads(path.read_text())["calls"]) == 1


@pytest.mark.parametrize(("content", "problem"), [
    ('{"pepperpy_recording": 1, "calls": [\n  {"request": }', "line 2, column 15: Expecting value;"),
    ('{"pepperpy_recording": 1, "calls": [\n  "a\tb"]}', "line 2, column 5: Invalid control character;"),
    ('{"calls": []}', 'no "pepperpy_recording": 2'),
    ('{"pepperpy_recording": 3, "calls": []}', 'no "pepperpy_recording": 2'),
    ('{"pepperpy_recording": 1, "calls": [{"request": {}}]}', 'calls\\[0\\] needs a "request" and its "result"'),
    ('{"pepperpy_recording": 1, "calls": [{"request": {"stream": true}, "result": {}}]}',
     'calls\\[0\\] needs a "request" and its "result" \\("chunks" for a stream\\)'),
])
async def test_a_broken_recording_is_named_with_the_problem(manager, tmp_path, content, problem):
    path = tmp_path / "calls.json"
    path.write_text(content)
    with pytest.raises(RecordingError, match=problem) as caught:
        await mock(manager).with_recording(path).chat.with_user("Hi").generate()
    assert str(path) in str(caught.value) and "delete it to record every call again" in str(caught.value)


async def test_a_recorded_answer_edited_into_an_invalid_one_is_named(manager, tmp_path):
    path = tmp_path / "calls.json"
    await mock(manager, "Hi.").with_recording(path).chat.with_user("Hi").generate()
    path.write_text(path.read_text().replace('"role": "assistant"', '"role": "robot"'))
    with pytest.raises(RecordingError, match=r"the answer recorded for this request is not valid \(role: ") as caught:
        await mock(manager).with_recording(path).chat.with_user("Hi").generate()
    assert str(path) in str(caught.value)


def test_a_bad_mode_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="recording mode 'twice' is not one of once, replay, new"):
        record(tmp_path / "calls.json", "twice")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="has its mode already"):
        PepperPy().with_recording(record(tmp_path / "calls.json"), mode="new")


async def test_the_recording_sits_inside_every_hook_and_outside_the_cache(manager, tmp_path):
    path = tmp_path / "calls.json"
    seen: list[str] = []

    async def brief(call, call_next):  # your hook: it runs in a replay too, and what it sends is what is matched
        seen.append(call.messages[-1].text)
        return await call_next(call.replace(messages=[*call.messages[:-1], call.messages[-1].model_copy(
            update={"content": call.messages[-1].text + " Be brief."})]))

    recorded = mock(manager, "Hi!").with_hook(brief).with_cache().with_recording(path)
    await recorded.chat.with_user("Hello.").generate()
    await recorded.chat.with_user("Hello.").generate()  # the cache answers, the recording still sees the call
    calls = json.loads(path.read_text())["calls"]
    assert [c["request"]["messages"][0]["content"] for c in calls] == ["Hello. Be brief."] * 2
    assert calls[1]["result"]["metadata"]["cache"] == "hit"

    replaying = mock(manager).with_hook(brief).with_cache().with_recording(path, mode="replay")
    assert (await replaying.chat.with_user("Hello.").generate()).content == "Hi!"
    assert seen == ["Hello."] * 3


async def test_a_recording_is_shared_by_facades_and_the_managers_serves_those_without_one(manager, tmp_path):
    path = tmp_path / "calls.json"
    shared = record(path)
    await mock(manager, "one").with_recording(shared).chat.with_user("1").generate()
    manager.recording = shared
    try:
        await mock(manager, "two").chat.with_user("2").generate()  # no with_recording: the manager's
    finally:
        manager.recording = None
    assert shared.recorded == 2 and len(json.loads(path.read_text())["calls"]) == 2

    manager.recording = record(path, "replay")
    try:
        lazy = mock(manager)
        assert [(await lazy.chat.with_user(q).generate()).content for q in ("1", "2")] == ["one", "two"]
        assert lazy.llm.calls == []
    finally:
        manager.recording = None


def test_the_sync_path_replays_too(manager, tmp_path):
    path = tmp_path / "calls.json"
    pepper = mock(manager, "Sync.").with_recording(path)
    assert pepper.chat.with_user("Hi").generate_sync().content == "Sync."
    pepper.close()
    replaying = mock(manager).with_recording(path, mode="replay")
    assert replaying.chat.with_user("Hi").generate_sync().content == "Sync."
    assert not replaying.llm.initialized
    replaying.close()
