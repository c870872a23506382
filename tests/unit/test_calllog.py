"""The call log (``PepperPy().with_logging()``, pepperpy/_calllog.py): what is recorded, what never is, and the file."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from contextlib import aclosing, closing
from pathlib import Path

import pytest
from pydantic import BaseModel, SecretStr

from pepperpy import PepperPy
from pepperpy._calllog import (
    APPLICATION_ID,
    SCHEMA_VERSION,
    connect,
    conversation_messages,
    default_path,
    last_conversation,
    recent,
)
from pepperpy.errors import ConfigError, LLMError, ProviderError
from pepperpy.hooks import Call
from pepperpy.llm import GenerationChunk, GenerationResult, Message, MessageRole, Usage
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

SENTINEL = "sk-SENTINEL-4f1c9e0b7a2d4c11"
OPTION_SENTINEL = "opt-SENTINEL-83b2a9d1c0"


@pytest.fixture
def builtins(tmp_path) -> PluginManager:
    return PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")


@pytest.fixture
def log_path(tmp_path) -> Path:
    return tmp_path / "calls.db"


def log_bytes(path: Path) -> bytes:
    """The database and its WAL and shared-memory files: wherever a row may be before a checkpoint."""
    return b"".join(p.read_bytes() for p in sorted(path.parent.glob(path.name + "*")))


async def answer_without_network(call: Call, call_next) -> object:
    """Stands in for the service: the provider object stays unopened and nothing is sent anywhere."""
    text = f"answer to {call.messages[-1].content}"
    if call.stream:
        async def chunks():
            for word in text.split(" "):
                yield GenerationChunk(content=word + " ")
            yield GenerationChunk(finish_reason="stop", usage=Usage(prompt_tokens=5, completion_tokens=4))

        return chunks()
    if "fail" in (call.messages[-1].content or ""):
        raise ProviderError(f"llm/openai: 401 invalid api key {SENTINEL}; check OPENAI_API_KEY")
    return GenerationResult(content=text, usage=Usage(prompt_tokens=5, completion_tokens=4), metadata={"model": "gpt-x"})


async def test_the_log_holds_prompts_and_answers_but_never_the_key(builtins, log_path):
    pepper = (
        PepperPy(plugin_manager=builtins)
        .with_llm("openai", api_key=SENTINEL, model="gpt-x", base_url="http://127.0.0.1:9/v1")
        .with_logging(log_path)
        .with_hook(answer_without_network)
    )
    assert not pepper.llm.initialized
    await pepper.chat.with_user("first question").generate()
    chunks = [c async for c in pepper.chat.with_user("streamed question").stream()]
    assert "".join(c.content for c in chunks).strip() == "answer to streamed question"
    await pepper.chat.with_user("second").with_options(api_key=SecretStr(OPTION_SENTINEL), user_token=OPTION_SENTINEL).generate()
    with pytest.raises(ProviderError):
        await pepper.chat.with_user("please fail").generate()
    await pepper.aclose()

    content = log_bytes(log_path)
    for text in (b"first question", b"answer to first question", b"answer to streamed question", b"please fail"):
        assert text in content
    assert SENTINEL.encode() not in content
    assert OPTION_SENTINEL.encode() not in content
    calls = recent(log_path, 0)
    assert [c.outcome for c in calls] == ["complete", "complete", "complete", "error"]
    assert calls[2].options == {"api_key": "***", "user_token": "***"}
    assert calls[3].error.startswith("ProviderError: llm/openai: 401 invalid api key ***")
    assert calls[0].provider == "llm/openai" and calls[0].model == "gpt-x"
    assert (calls[0].prompt_tokens, calls[0].completion_tokens) == (5, 4)


async def test_the_redact_function_applies_to_every_message_and_the_answer(builtins, log_path):
    def hide_email(text: str) -> str:
        return text.replace("alice@example.com", "[email]")

    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path, redact=hide_email) as pepper:
        await pepper.chat.with_system("alice@example.com is the user").with_user("mail alice@example.com").generate()
    (call,) = recent(log_path)
    assert [m["content"] for m in call.messages] == ["[email] is the user", "mail [email]"]
    assert call.answer == "mail [email]"
    assert b"alice@example.com" not in log_bytes(log_path)


async def test_a_stream_is_logged_once_when_it_ends_with_the_whole_text(builtins, log_path):
    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path) as pepper:
        conversation = pepper.conversation()
        stream = conversation.stream("one two three four")
        received = [await anext(stream)]
        assert recent(log_path) == []  # nothing yet: the stream is still running
        received += [chunk async for chunk in stream]
    (call,) = recent(log_path, 0)
    assert call.stream and call.outcome == "complete" and call.error is None
    assert call.answer == "one two three four" == "".join(c.content for c in received)
    assert call.conversation_id == conversation.conversation_id
    assert call.completion_tokens == 4


async def test_a_stream_closed_early_is_logged_at_once_with_its_partial_answer(builtins, log_path):
    """The hook alone, around the real mock provider's stream: closing what it returned writes the row."""
    from pepperpy._calllog import CallLog

    provider = builtins.create_provider("llm", "mock")
    async with provider:
        call = Call("llm/mock", (Message(role=MessageRole.USER, content="left early after one"),), stream=True,
                    conversation_id="c1", target=provider)

        async def provider_stream(call: Call):
            return provider.generate_stream(list(call.messages))

        log = CallLog(log_path)
        async with aclosing(await log(call, provider_stream)) as stream:
            first = await anext(stream)
        assert first.content == "left "
        (row,) = recent(log_path)
        log.close()
    assert (row.outcome, row.answer, row.error, row.conversation_id) == ("stopped", "left ", None, "c1")


async def test_a_stream_cut_by_an_error_keeps_its_partial_answer_and_the_error(builtins, log_path):
    async def cut_after_two(call: Call, call_next):
        chunks = await call_next(call)

        async def cut():
            count = 0
            async for chunk in chunks:
                yield chunk
                count += 1
                if count == 2:
                    raise LLMError("llm/mock: the connection dropped")

        return cut()

    pepper = PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path).with_hook(cut_after_two)
    received = []
    with pytest.raises(LLMError):
        async for chunk in pepper.chat.with_user("cut here please").stream():
            received.append(chunk.content)
    await pepper.aclose()
    (cut,) = recent(log_path, 0)
    assert (cut.outcome, cut.answer) == ("error", "cut here ") and received == ["cut ", "here "]
    assert cut.error == "LLMError: llm/mock: the connection dropped"


async def test_a_failing_call_is_logged_with_its_error(builtins, log_path):
    pepper = PepperPy(plugin_manager=builtins).with_llm("mock", replies=["only one"], cycle=False).with_logging(log_path)
    await pepper.chat.with_user("a").generate()
    with pytest.raises(LLMError, match="scripted replies were used"):
        await pepper.chat.with_user("b").generate()
    await pepper.aclose()
    ok, failed = recent(log_path)
    assert ok.answer == "only one" and ok.error is None
    assert failed.outcome == "error" and failed.answer is None and failed.prompt == "b"
    assert failed.error.startswith("LLMError: llm/mock: all 1 scripted replies were used")
    assert failed.duration_ms >= 0


class City(BaseModel):
    name: str


def get_weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


async def test_options_record_tools_by_schema_and_the_response_model_by_name(builtins, log_path):
    pepper = PepperPy(plugin_manager=builtins).with_llm("mock", replies=['{"name": "Paris"}']).with_logging(log_path)
    chat = pepper.chat.with_user("capital?").with_options(temperature=0.2)
    await chat.with_response_model(City).generate()
    await chat.with_tools(get_weather, run=False).generate()
    await pepper.aclose()
    structured, tools = recent(log_path)
    assert structured.options == {"temperature": 0.2, "response_model": "City"}
    assert tools.options["tools"][0]["name"] == "get_weather"
    assert tools.options["tools"][0]["parameters"]["properties"]["city"]["type"] == "string"


async def test_a_cache_hit_is_flagged(builtins, log_path):
    async def cache_hit(call: Call, call_next):
        return GenerationResult(content="from cache", metadata={"cache": "hit"})

    pepper = PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path).with_hook(cache_hit)
    await pepper.chat.with_user("q").generate()
    await pepper.chat.with_user("q").with_options(temperature=0).generate()
    await pepper.aclose()
    rows = recent(log_path, 0)
    assert [(r.cached, r.answer) for r in rows] == [(True, "from cache"), (True, "from cache")]
    plain = PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path)
    await plain.chat.with_user("q").generate()
    await plain.aclose()
    assert recent(log_path, 1)[0].cached is False


async def test_a_fallback_chain_logs_who_served_and_who_failed(builtins, log_path):
    chain = [("mock", {"replies": [" "]}), ("mock", {"replies": ["served"]})]
    async with PepperPy(plugin_manager=builtins).with_llm(chain).with_logging(log_path) as pepper:
        await pepper.chat.with_user("q").generate()
    (call,) = recent(log_path)
    assert call.answer == "served" and call.provider == "llm/mock"
    assert call.fallback["served_by"] == "mock"
    assert "the answer was empty" in call.fallback["failed"][0]["error"]


async def test_conversation_history_comes_back_from_the_log(builtins, log_path):
    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path) as pepper:
        first = pepper.conversation(system="be brief")
        await first.say("hello")
        await first.say("again")
        other = pepper.conversation()
        await other.say("unrelated")
    assert last_conversation(log_path) == other.conversation_id
    history = conversation_messages(log_path, first.conversation_id)
    assert [(m.role, m.content) for m in history] == [
        (MessageRole.SYSTEM, "be brief"), (MessageRole.USER, "hello"), (MessageRole.ASSISTANT, "hello"),
        (MessageRole.USER, "again"), (MessageRole.ASSISTANT, "again"),
    ]
    assert conversation_messages(log_path, "no-such-id") == []
    assert [c.prompt for c in recent(log_path, 2)] == ["again", "unrelated"]
    assert [c.prompt for c in recent(log_path, 0, query="hel")] == ["hello", "again"]  # "again" carries the first turn
    assert [c.prompt for c in recent(log_path, 0, conversation_id=other.conversation_id)] == ["unrelated"]
    assert recent(log_path, 0, query="100%_") == []


def test_reading_a_log_that_does_not_exist_finds_nothing_and_creates_nothing(tmp_path):
    missing = tmp_path / "none" / "logs.db"
    assert recent(missing, 0) == [] and last_conversation(missing) is None
    assert not missing.parent.exists()


async def test_the_default_path_is_logs_db_in_the_home(builtins):
    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging() as pepper:
        await pepper.chat.with_user("hi").generate()
    path = default_path(builtins.home)
    assert path == builtins.home / "logs.db"
    assert [c.answer for c in recent(path)] == ["hi"]
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


@pytest.mark.parametrize("kind", ["garbage", "foreign", "newer"])
async def test_a_corrupt_foreign_or_newer_file_is_a_clear_error_before_the_provider_is_called(builtins, log_path, kind):
    if kind == "garbage":
        log_path.write_bytes(b"this is not a database at all, just text " * 200)
    else:
        db = sqlite3.connect(log_path)
        if kind == "foreign":
            db.execute("CREATE TABLE recipes (name TEXT)")
        else:
            db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        db.commit()
        db.close()
    pepper = PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path)
    with pytest.raises(ConfigError) as caught:
        await pepper.chat.with_user("hi").generate()
    message = str(caught.value)
    assert str(log_path) in message and "with_logging(path=...)" in message
    expected = {"garbage": "not a usable SQLite database", "foreign": "another program (tables recipes)",
                "newer": "newer PepperPy"}[kind]
    assert expected in message
    assert pepper.llm.calls == []  # the provider was never asked
    await pepper.aclose()


def test_redact_must_be_a_function(builtins):
    with pytest.raises(ConfigError, match="redact"):
        PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(redact="no")


WRITER = textwrap.dedent("""
    import asyncio, sys, time
    from pathlib import Path
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

    path, name, count, go = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), Path(sys.argv[4])

    async def main():
        manager = PluginManager(search_paths=[builtin_plugins_dir()], home=path.parent / name)
        pepper = PepperPy(plugin_manager=manager).with_llm("mock").with_logging(path)
        await pepper.chat.with_user(f"{name} warm-up").generate()  # the file exists for both from here
        (path.parent / f"{name}.ready").touch()
        while not go.exists():
            await asyncio.sleep(0.01)
        for i in range(count):
            await pepper.chat.with_user(f"{name} {i}").generate()
        await pepper.aclose()

    asyncio.run(main())
""")


def test_two_processes_writing_at_once_lose_no_row(tmp_path, log_path):
    count = 300
    go = tmp_path / "go"
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    writers = [
        subprocess.Popen([sys.executable, str(script), str(log_path), name, str(count), str(go)])
        for name in ("alpha", "beta")
    ]
    try:
        while not all((tmp_path / f"{n}.ready").exists() for n in ("alpha", "beta")):
            assert all(w.poll() in (None, 0) for w in writers), "a writer died before starting"
            time.sleep(0.05)
        go.touch()
        assert [w.wait(timeout=120) for w in writers] == [0, 0]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
    prompts = [c.prompt for c in recent(log_path, 0)]
    assert len(prompts) == 2 * (count + 1)
    for name in ("alpha", "beta"):
        assert [p for p in prompts if p.startswith(name) and "warm" not in p] == [f"{name} {i}" for i in range(count)]


def test_a_log_another_process_is_writing_is_waited_for_not_refused(log_path):
    """Switching a file to WAL reads it, then writes it; SQLite answers "database is locked" at once, without
    its busy timeout, when another connection writes in between. The open waits for that writer instead."""
    connect(log_path).close()
    writer = sqlite3.connect(log_path, isolation_level=None, check_same_thread=False)
    writer.execute("PRAGMA journal_mode = DELETE")  # a log not (yet) in WAL mode, as one just created is
    writer.execute("BEGIN IMMEDIATE")  # another process holds its write lock
    release = threading.Timer(0.5, writer.execute, ("COMMIT",))
    release.start()
    try:
        connection = connect(log_path)
    finally:
        release.join()
        writer.close()
    assert connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    connection.close()


def test_a_log_another_process_creates_meanwhile_is_not_taken_for_a_foreign_file(log_path, monkeypatch):
    """The file's application id and its tables are read in one transaction: a log created by another process
    between the two reads is not "a SQLite database of another program"."""
    with closing(sqlite3.connect(log_path)) as empty:
        empty.execute("PRAGMA journal_mode = WAL")  # an empty file (in WAL mode, a reader never blocks a writer)
    created = []
    sqlite_connect = sqlite3.connect

    def connect_watched(*args, **kwargs):
        connection = sqlite_connect(*args, **kwargs)

        def on_statement(sql: str) -> None:
            if "sqlite_master" in sql and not created:  # the opener has read the id, not yet the tables
                created.append(sql)
                connect(log_path).close()  # another process creates the log right then

        if not created:
            connection.set_trace_callback(on_statement)
        return connection

    monkeypatch.setattr(sqlite3, "connect", connect_watched)
    connect(log_path).close()
    assert created
    with closing(sqlite_connect(log_path)) as db:
        assert db.execute("PRAGMA application_id").fetchone()[0] == APPLICATION_ID


DETAILED = Usage(prompt_tokens=1200, completion_tokens=300, cache_read_tokens=1024, cache_write_tokens=0,
                 reasoning_tokens=256, model="gpt-x", service="openai")


async def answer_with_usage_details(call: Call, call_next) -> object:
    """Stands in for a service reporting cached and reasoning tokens (nothing is sent anywhere)."""
    if call.stream:
        async def chunks():
            yield GenerationChunk(content="streamed")
            yield GenerationChunk(finish_reason="stop", usage=DETAILED)

        return chunks()
    return GenerationResult(content="answered", usage=DETAILED, metadata={"model": "gpt-x"})


async def test_cached_cache_write_and_reasoning_tokens_are_logged(builtins, log_path):
    async with (PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path)
                .with_hook(answer_with_usage_details)) as pepper:
        await pepper.chat.with_user("one").generate()
        [c async for c in pepper.chat.with_user("two").stream()]
    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path) as pepper:
        await pepper.chat.with_user("three").generate()  # the mock reports no details
    calls = recent(log_path, 0)
    assert [(c.cache_read_tokens, c.cache_write_tokens, c.reasoning_tokens) for c in calls] == [
        (1024, 0, 256), (1024, 0, 256), (None, None, None)]
    assert calls[0].to_dict()["cache_read_tokens"] == 1024


V1_SCHEMA = """CREATE TABLE calls (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, provider TEXT NOT NULL, model TEXT, messages TEXT NOT NULL,
    options TEXT NOT NULL, answer TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, duration_ms REAL NOT NULL,
    error TEXT, conversation_id TEXT, stream INTEGER NOT NULL, cached INTEGER NOT NULL, fallback TEXT,
    outcome TEXT NOT NULL)"""


async def test_a_log_written_before_usage_details_is_brought_up_to_date_keeping_its_rows(builtins, log_path):
    db = sqlite3.connect(log_path)
    db.execute(V1_SCHEMA)
    db.execute("INSERT INTO calls (time, provider, model, messages, options, answer, prompt_tokens, completion_tokens, "
               "duration_ms, stream, cached, outcome) VALUES ('2026-01-01T00:00:00.000+00:00', 'llm/mock', 'mock', "
               "'[{\"role\": \"user\", \"content\": \"old\"}]', '{}', 'old answer', 1, 2, 3.0, 0, 0, 'complete')")
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 1")
    db.commit()
    db.close()
    async with (PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log_path)
                .with_hook(answer_with_usage_details)) as pepper:
        await pepper.chat.with_user("new").generate()
    old, new = recent(log_path, 0)
    assert (old.prompt, old.answer, old.prompt_tokens, old.cache_read_tokens) == ("old", "old answer", 1, None)
    assert (new.prompt, new.cache_read_tokens, new.reasoning_tokens) == ("new", 1024, 256)
    with sqlite3.connect(log_path) as db:
        assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    db.close()


def test_pepperpy_logs_shows_the_usage_details_it_has():
    from pepperpy._calllog import LoggedCall
    from pepperpy.cli.logs import format_call

    fields = dict(id=1, time="2026-01-01T00:00:00.000", provider="llm/openai", model="gpt-x", messages=[], options={},
                  answer="a", prompt_tokens=1200, completion_tokens=300, duration_ms=1.0, error=None,
                  conversation_id=None, stream=False, cached=False, fallback=None, outcome="complete")
    shown = format_call(LoggedCall(**fields, cache_read_tokens=1024, cache_write_tokens=0, reasoning_tokens=256))
    assert "tokens 1200+300 (1024 cache read, 256 reasoning)" in shown
    assert "tokens 1200+300  " in format_call(LoggedCall(**fields))
