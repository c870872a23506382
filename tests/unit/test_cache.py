"""The response cache: hits make no provider call, the key covers everything that decides the answer,
streams replay chunk by chunk, and what must not be cached is not."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
import textwrap
import threading
from contextlib import closing
from typing import Any

import pytest
from pydantic import BaseModel

from pepperpy import PepperPy
from pepperpy._cache import SQLiteStore, cache_key
from pepperpy.errors import ConfigError, LLMError
from pepperpy.hooks import Call
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message, MessageRole, ReasoningPart, TextPart, ToolCall
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir


class ToolAsker(LLMProvider):
    """Asks for a tool on every call; counts its calls."""

    calls_made: int = 0

    async def generate(self, messages, **options):
        self.calls_made += 1
        return GenerationResult(content="", tool_calls=[ToolCall(id="1", name="clock", arguments={})])


class CutStream(LLMProvider):
    """Streams two chunks, then fails: a stream cut short."""

    async def generate(self, messages, **options):
        return GenerationResult(content="whole")

    async def generate_stream(self, messages, **options):
        yield GenerationChunk(content="half ")
        raise LLMError("llm/cut: the connection dropped")


class Signed(LLMProvider):
    """Answers with a signed reasoning part in its reply message (no stream of its own: the default one)."""

    async def generate(self, messages, **options):
        reply = Message(role=MessageRole.ASSISTANT, content=[ReasoningPart(text="Hm.", signature="sig-1"), TextPart(text="Four.")])
        return GenerationResult(content="Four.", reasoning="Hm.", messages=[*messages, reply])


@pytest.fixture
def manager(tmp_path):
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")
    manager.register_plugin("llm", "toolish", ToolAsker)
    manager.register_plugin("llm", "cut", CutStream)
    manager.register_plugin("llm", "signed", Signed)
    return manager


def mock(manager: PluginManager, **config: Any) -> PepperPy:
    return PepperPy(plugin_manager=manager).with_llm("mock", **config)


async def test_a_hit_makes_no_provider_call_and_loads_nothing(manager):
    pepper = mock(manager).with_cache()
    first = await pepper.chat.with_user("hello there").generate()
    second = await pepper.chat.with_user("hello there").generate()
    assert first.content == second.content == "hello there"
    assert len(pepper.llm.calls) == 1
    assert "cache" not in first.metadata and second.metadata["cache"] == "hit"
    assert pepper.usage.total.calls == 1 and pepper.usage.total.cached_calls == 1
    await pepper.aclose()


async def test_the_key_covers_messages_options_model_and_provider_config(manager):
    pepper = mock(manager).with_cache()
    base = pepper.chat.with_system("be brief").with_user("q")

    class Answer(BaseModel):
        text: str

    class OtherAnswer(BaseModel):
        number: int

    variants = [
        base,
        base.with_options(temperature=0.1),
        base.with_options(temperature=0.2),
        base.with_options(max_tokens=5),
        base.with_options(model="other-model"),
        pepper.chat.with_system("be long").with_user("q"),
        pepper.chat.with_user("q"),
        base.with_assistant("earlier").with_user("q"),
    ]
    for builder in variants:
        await builder.generate()
    assert len(pepper.llm.calls) == len(variants)  # every variant missed
    for builder in variants:
        await builder.generate()
    assert len(pepper.llm.calls) == len(variants)  # and every one hits the second time

    def key_with(**changes: Any) -> str:
        call = Call("llm/mock", (Message(role=MessageRole.USER, content="q"),), {}, target=pepper.llm)
        return cache_key(call.replace(**changes))

    assert key_with() != key_with(provider="llm/other")
    assert key_with(options={"response_model": Answer}) != key_with(options={"response_model": OtherAnswer})
    assert key_with(options={"timeout": 5}) == key_with(options={"timeout": 50})  # how long to wait is not the answer
    other_config = mock(manager, replies=["scripted"])
    assert key_with() != key_with(target=other_config.llm)
    assert key_with() != key_with(stream=True)
    await pepper.aclose()


async def test_a_stream_is_cached_once_complete_and_replayed_chunk_by_chunk(manager):
    pepper = mock(manager).with_cache()
    original = [c.content async for c in pepper.chat.with_user("one two three").stream()]
    replayed = [c async for c in pepper.chat.with_user("one two three").stream()]
    assert [c.content for c in replayed] == original and len(original) == 4  # three words and the final chunk
    assert len(pepper.llm.calls) == 1
    assert replayed[0].metadata["cache"] == "hit" and replayed[-1].usage is not None
    await pepper.chat.with_user("one two three").generate()  # a plain call is not served by the stream's entry
    assert len(pepper.llm.calls) == 2
    await pepper.aclose()


@pytest.mark.parametrize("path", [None, "answers.db"], ids=["memory", "sqlite"])
async def test_a_cached_answer_is_replayed_to_the_same_request_streamed_as_one_chunk(manager, tmp_path, path):
    pepper = mock(manager).with_cache(path=None if path is None else tmp_path / path)
    answer = await pepper.chat.with_system("be brief").with_user("one two three").generate()
    chunks = [c async for c in pepper.chat.with_system("be brief").with_user("one two three").stream()]
    assert len(pepper.llm.calls) == 1, "the stream was served by the generate() entry"
    assert len(chunks) == 1 and chunks[0].content == answer.content == "one two three"
    assert chunks[0].finish_reason == "stop" and chunks[0].usage == answer.usage
    assert chunks[0].metadata == {"model": "mock", "cache": "hit"}
    assert pepper.usage.total.cached_calls == 1 and pepper.usage.total.calls == 1
    [c async for c in pepper.chat.with_user("one two three").stream()]  # another request: not served
    assert len(pepper.llm.calls) == 2
    await pepper.aclose()


async def test_streams_closed_early_or_cut_are_not_cached(manager):
    pepper = mock(manager).with_cache()
    async for _ in pepper.chat.with_user("a b c").stream():
        break  # the caller stops reading
    async for _ in pepper.chat.with_user("a b c").stream():
        pass
    assert len(pepper.llm.calls) == 2
    await pepper.aclose()

    cut = PepperPy(plugin_manager=manager).with_llm("cut").with_cache()
    for _ in range(2):
        with pytest.raises(LLMError, match="dropped"):
            async for _ in cut.chat.with_user("x").stream():
                pass
    await cut.aclose()


async def test_errors_tool_rounds_and_cache_false_are_not_cached(manager):
    pepper = mock(manager, replies=["only"], cycle=False).with_cache()
    await pepper.chat.with_user("x").generate()
    for _ in range(2):  # the replies are used up: each try reaches the provider and fails
        with pytest.raises(LLMError):
            await pepper.chat.with_user("y").generate()
    assert len(pepper.llm.calls) == 3
    await pepper.aclose()

    skipping = mock(manager).with_cache()
    for _ in range(2):
        await skipping.chat.with_user("same").with_options(cache=False).generate()
    assert len(skipping.llm.calls) == 2
    await skipping.aclose()

    tools = PepperPy(plugin_manager=manager).with_llm("toolish").with_cache()

    def clock() -> str:
        """The time."""
        return "noon"

    for _ in range(2):
        result = await tools.chat.with_user("time?").with_tools(clock, run=False).generate()
        assert result.tool_calls
    assert tools.llm.calls_made == 2
    await tools.aclose()


async def test_the_sqlite_cache_serves_another_facade_without_opening_its_provider(manager, tmp_path):
    path = tmp_path / "cache.db"
    first = mock(manager).with_cache(path=path)
    await first.chat.with_user("remember me").generate()
    await first.aclose()
    second = mock(manager).with_cache(path=path)
    result = await second.chat.with_user("remember me").generate()
    assert result.content == "remember me" and result.metadata["cache"] == "hit"
    assert not second.llm.initialized and second.llm.calls == []
    await second.aclose()


async def test_entries_older_than_the_ttl_are_not_used(manager, tmp_path, monkeypatch):
    import pepperpy._cache as cache_module

    now = [1000.0]
    monkeypatch.setattr(cache_module.time, "time", lambda: now[0])
    for path in (None, tmp_path / "ttl.db"):
        pepper = mock(manager).with_cache(path=path, ttl=60)
        await pepper.chat.with_user("t").generate()
        now[0] += 30
        await pepper.chat.with_user("t").generate()
        now[0] += 61
        await pepper.chat.with_user("t").generate()
        assert len(pepper.llm.calls) == 2, path
        await pepper.aclose()


@pytest.mark.parametrize("content", [b"this is not a database" * 100, "foreign"])
async def test_a_corrupt_or_foreign_cache_file_is_named(manager, tmp_path, content):
    path = tmp_path / "bad.db"
    if content == "foreign":
        with sqlite3.connect(path) as db:
            db.execute("CREATE TABLE pepperpy_cache (something TEXT)")
    else:
        path.write_bytes(content)
    pepper = mock(manager).with_cache(path=path)
    with pytest.raises(ConfigError, match=f"{path}.*delete it"):
        await pepper.chat.with_user("x").generate()
    await pepper.aclose()


def test_a_bad_ttl_is_refused(manager):
    with pytest.raises(ConfigError, match="ttl"):
        mock(manager).with_cache(ttl=-1)


CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

    async def main():
        manager = PluginManager(search_paths=[builtin_plugins_dir()], home=sys.argv[2])
        pepper = PepperPy(plugin_manager=manager).with_llm("mock").with_cache(path=sys.argv[1])
        hits = 0
        for n in range(30):
            result = await pepper.chat.with_user(f"question {n}").generate()
            hits += result.metadata.get("cache") == "hit"
        await pepper.aclose()
        print(json.dumps({"provider_calls": len(pepper.llm.calls), "hits": hits}))

    asyncio.run(main())
    """
)


def test_several_processes_share_one_sqlite_cache(tmp_path):
    path = tmp_path / "shared.db"
    children = [
        subprocess.Popen([sys.executable, "-c", CHILD, str(path), str(tmp_path / f"home{n}")], stdout=subprocess.PIPE, text=True)
        for n in range(3)
    ]
    reports = [json.loads(child.communicate(timeout=120)[0]) for child in children]
    assert all(child.returncode == 0 for child in children)
    assert all(r["provider_calls"] + r["hits"] == 30 for r in reports)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM pepperpy_cache").fetchone()[0] == 30
    late = subprocess.run([sys.executable, "-c", CHILD, str(path), str(tmp_path / "home-late")],
                          capture_output=True, text=True, timeout=120)
    assert json.loads(late.stdout) == {"provider_calls": 0, "hits": 30}


def test_a_cache_file_another_process_is_writing_is_waited_for_not_refused(tmp_path):
    """Switching a file to WAL reads it, then writes it; SQLite answers "database is locked" at once, without
    its busy timeout, when another connection writes in between. The open waits for that writer instead."""
    path = tmp_path / "shared.db"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock of the new file
    release = threading.Timer(0.5, writer.execute, ("COMMIT",))
    release.start()
    store = SQLiteStore(path, ttl=None)
    try:
        store.put("key", "value")
        assert store.get("key") == "value"
    finally:
        release.join()
        store.close()
        writer.close()
    with closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_the_cache_sits_inside_every_hook_and_the_log_outside_whatever_the_order(manager, tmp_path):
    from pepperpy._calllog import recent

    async def same_question(call: Call, call_next):  # two different questions reach the provider as one
        last = call.messages[-1].model_copy(update={"content": "the question"})
        return await call_next(call.replace(messages=[*call.messages[:-1], last]))

    log = tmp_path / "logs.db"
    pepper = mock(manager).with_cache().with_logging(log).with_hook(same_question)
    first = await pepper.chat.with_user("asked one way").generate()
    second = await pepper.chat.with_user("asked another way").generate()
    assert first.content == second.content == "the question"
    assert len(pepper.llm.calls) == 1 and second.metadata["cache"] == "hit"  # keyed on what the provider would get
    rows = recent(log, 0)
    assert [(r.cached, r.prompt) for r in rows] == [(False, "asked one way"), (True, "asked another way")]
    await pepper.aclose()


async def test_media_is_keyed_by_its_content_and_stored_without_its_bytes(manager, tmp_path):
    import base64

    from pepperpy import Image

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(200))
    for name in ("a.png", "b.png"):
        (tmp_path / name).write_bytes(png)
    (tmp_path / "other.png").write_bytes(png + b"!")
    path = tmp_path / "cache.db"
    async with PepperPy(plugin_manager=manager).with_llm("mock").with_cache(path=path) as pepper:
        first = await pepper.chat.with_user("Describe", Image(tmp_path / "a.png")).generate()
        same_bytes = await pepper.chat.with_user("Describe", Image(tmp_path / "b.png")).generate()
        other_bytes = await pepper.chat.with_user("Describe", Image(tmp_path / "other.png")).generate()
        assert len(pepper.llm.calls) == 2  # a.png and b.png hold the same bytes: one call
    assert "cache" not in first.metadata and same_bytes.metadata["cache"] == "hit" and "cache" not in other_bytes.metadata
    assert same_bytes.messages[0].content[1].path == str(tmp_path / "b.png")  # the request's own messages on a hit
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("cache.db*"))  # the database and its WAL journal
    assert base64.b64encode(png)[:40] not in stored and b"a.png" not in stored


async def test_a_stream_served_by_a_stored_answer_keeps_its_reasoning(manager):
    replies = [{"reasoning": "Two and two.", "content": "Four."}]
    async with PepperPy(plugin_manager=manager).with_llm("mock", replies=replies).with_cache() as pepper:
        whole = await pepper.chat.with_user("2+2?").generate()
        chunks = [chunk async for chunk in pepper.chat.with_user("2+2?").stream()]
    assert whole.reasoning == "Two and two."
    assert "".join(c.reasoning for c in chunks) == "Two and two." and chunks[0].metadata["cache"] == "hit"


@pytest.mark.parametrize("cached", [False, True])
async def test_a_streamed_conversation_keeps_the_signature_of_a_whole_answer_streamed_as_one_chunk(manager, cached):
    """The default generate_stream, and a stream served by a stored generate answer, carry the reply message."""
    pepper = PepperPy(plugin_manager=manager).with_llm("signed")
    async with (pepper.with_cache() if cached else pepper) as ready:
        if cached:
            await ready.chat.with_user("2+2?").generate()
        conversation = ready.conversation()
        chunks = [chunk async for chunk in conversation.stream("2+2?")]
    assert [c.metadata.get("cache") for c in chunks] == ["hit" if cached else None]
    assert conversation.messages[-1].content == [ReasoningPart(text="Hm.", signature="sig-1"), TextPart(text="Four.")]
