"""Fragments in scripts (``chat.with_fragment``, pepperpy/_fragments.py) on real files and the real loader_text
plugin, and how the call log stores them: once per text, by hash, linked to each call that used it."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from pepperpy import PepperPy
from pepperpy._fragments import resolve
from pepperpy._calllog import APPLICATION_ID, SCHEMA_VERSION, conversation_messages, fragment_text, recent
from pepperpy.errors import FileLoadError, InvalidInputError
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

BOOK = "Chapter one. The lighthouse keeper counted forty-two ships.\n"


@pytest.fixture
def builtins(tmp_path) -> PluginManager:
    return PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")


@pytest.fixture
def book(tmp_path) -> Path:
    path = tmp_path / "book.md"
    path.write_text(BOOK)
    return path


async def test_a_fragment_goes_before_the_prompt_in_the_last_user_message(builtins, book, tmp_path):
    log = tmp_path / "calls.db"
    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log) as pepper:
        chat = pepper.chat.with_system("Be brief.").with_fragment(book).with_user("How many ships?")
        answer = await chat.generate()  # the mock echoes the last user message
        assert answer.content == BOOK.rstrip() + "\n\nHow many ships?"
        alone = await pepper.chat.with_fragment(str(book)).generate()  # no prompt: the fragment is the message
        assert alone.content == BOOK.rstrip() + "\n\n"
        assert chat.messages[-1].content == "How many ships?"  # the builder is unchanged: read when sent
    first, second = recent(log, 0)
    assert first.messages[1]["content"] == [
        {"type": "fragment", "sha256": first.fragments[0]["sha256"], "source": str(book)},
        {"type": "text", "text": "How many ships?"},
    ]
    assert first.fragments == second.fragments == [
        {"sha256": first.fragments[0]["sha256"], "source": str(book), "size": len(BOOK.rstrip()) + 2}]
    with sqlite3.connect(log) as db:  # stored once, linked twice
        assert db.execute("SELECT count(*) FROM fragments").fetchone() == (1,)
        assert db.execute("SELECT call_id, position FROM call_fragments ORDER BY call_id").fetchall() == [(1, 0), (2, 0)]
        assert db.execute("SELECT count(*) FROM calls WHERE messages LIKE '%lighthouse%'").fetchone() == (0,)
    db.close()
    assert fragment_text(log, first.fragments[0]["sha256"][:10]) == BOOK.rstrip() + "\n\n"
    assert [call.id for call in recent(log, 0, query="lighthouse")] == [1, 2]  # -q searches fragments too


async def test_continuing_a_conversation_sends_the_fragment_text_again(builtins, book, tmp_path):
    from pepperpy.chat import ChatBuilder

    log = tmp_path / "calls.db"
    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log) as pepper:
        await ChatBuilder(pepper, conversation_id="c1").with_fragment(book).with_user("count").generate()
    user, answer = conversation_messages(log, "c1")
    assert [(part.text, part.source) for part in user.parts] == [(BOOK.rstrip() + "\n\n", str(book)), ("count", None)]
    assert answer.content == BOOK.rstrip() + "\n\ncount"


async def test_a_conversation_sends_a_fragment_with_its_next_turn_and_keeps_it_in_the_history(builtins, book,
                                                                                               tmp_path):
    async with PepperPy(plugin_manager=builtins).with_llm("mock") as pepper:
        conv = pepper.conversation(system="Be brief.")
        answer = await conv.with_fragment(book).say("How many ships?")  # the mock echoes the last user message
        assert answer.content == BOOK.rstrip() + "\n\nHow many ships?"
        assert [part.text for part in conv.messages[1].parts] == [BOOK.rstrip() + "\n\n", "How many ships?"]
        book.write_text("changed\n")  # read once, when its turn was sent
        later = await conv.say("And now?")
        assert later.content == "And now?" and conv.messages[1].parts[0].text == BOOK.rstrip() + "\n\n"

        streamed = conv.with_fragment(f"text:{book}")
        assert streamed is conv
        chunks = [c.content async for c in conv.stream()]  # a fragment alone is the message
        assert "".join(chunks) == "changed\n\n" and conv.messages[-2].parts[0].text == "changed\n\n"

        conv.with_fragment(tmp_path / "absent.txt")
        with pytest.raises(FileLoadError, match="absent.txt: no such file"):
            await conv.say("fails")
        assert len(conv.messages) == 7  # the failed turn left the history as it was
        (tmp_path / "absent.txt").write_text("there now\n")
        assert (await conv.say("again")).content == "there now\n\nagain"  # the fragment waited for the next turn
        assert (await conv.say("plain")).content == "plain"
    with pytest.raises(InvalidInputError, match="takes a path, '-', a URL or PREFIX:ARG"):
        PepperPy(plugin_manager=builtins).with_llm("mock").conversation().with_fragment(42)  # type: ignore[arg-type]


async def test_a_loader_prefix_reads_through_the_loader_plugin(builtins, tmp_path):
    notes = tmp_path / "notes.log"
    notes.write_text("Line one of the log.\n")
    async with PepperPy(plugin_manager=builtins).with_llm("mock") as pepper:
        answer = await pepper.chat.with_fragment(f"text:{notes}").with_user("ok").generate()
    assert answer.content == "Line one of the log.\n\nok"


async def test_fragment_errors_name_what_was_given(builtins, tmp_path):
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01binary")
    async with PepperPy(plugin_manager=builtins).with_llm("mock") as pepper:
        cases = [
            ("https://example.invalid/page", InvalidInputError, "never fetches a URL unless asked; pass fetch=True"),
            (str(tmp_path / "absent.txt"), FileLoadError, "absent.txt: no such file"),
            (str(tmp_path / "blob.bin"), FileLoadError, "blob.bin: not UTF-8 text, and no loader plugin reads"),
            ("nosuch:thing.txt", InvalidInputError, "no loader plugin named 'nosuch' \\(loaders: .*pdf"),
            (str(tmp_path), FileLoadError, "is a folder"),
        ]
        for source, error, message in cases:
            with pytest.raises(error, match=message):
                await pepper.chat.with_fragment(source).with_user("hi").generate()
    with pytest.raises(InvalidInputError, match="takes a path, '-', a URL or PREFIX:ARG"):
        PepperPy(plugin_manager=builtins).with_llm("mock").chat.with_fragment(42)  # type: ignore[arg-type]


V2_SCHEMA = """CREATE TABLE calls (
    id INTEGER PRIMARY KEY, time TEXT NOT NULL, provider TEXT NOT NULL, model TEXT, messages TEXT NOT NULL,
    options TEXT NOT NULL, answer TEXT, prompt_tokens INTEGER, completion_tokens INTEGER, duration_ms REAL NOT NULL,
    error TEXT, conversation_id TEXT, stream INTEGER NOT NULL, cached INTEGER NOT NULL, fallback TEXT,
    outcome TEXT NOT NULL, cache_read_tokens INTEGER, cache_write_tokens INTEGER, reasoning_tokens INTEGER)"""


async def test_a_log_of_schema_2_gets_the_fragment_tables_and_keeps_its_rows(builtins, book, tmp_path):
    log = tmp_path / "calls.db"
    db = sqlite3.connect(log)
    db.execute(V2_SCHEMA)
    db.execute("INSERT INTO calls (time, provider, messages, options, answer, duration_ms, stream, cached, outcome) "
               "VALUES ('2026-01-01T00:00:00.000+00:00', 'llm/mock', ?, '{}', 'old answer', 1.0, 0, 0, 'complete')",
               (json.dumps([{"role": "user", "content": "old"}]),))
    db.execute(f"PRAGMA application_id = {APPLICATION_ID}")
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log) as pepper:
        await pepper.chat.with_fragment(book).with_user("new").generate()
    old, new = recent(log, 0)
    assert (old.prompt, old.answer, old.fragments) == ("old", "old answer", [])
    assert new.prompt == f"[fragment {book}] new" and new.fragments[0]["source"] == str(book)
    with sqlite3.connect(log) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (SCHEMA_VERSION,) == (3,)
    db.close()


async def test_a_fragment_passes_through_redact_before_it_is_stored(builtins, tmp_path):
    secret_file = tmp_path / "env.txt"
    secret_file.write_text("token=xxx-test-secret-not-real\n")
    log = tmp_path / "calls.db"
    hide = lambda text: text.replace("xxx-test-secret-not-real", "[hidden]")  # noqa: E731
    async with PepperPy(plugin_manager=builtins).with_llm("mock").with_logging(log, redact=hide) as pepper:
        await pepper.chat.with_fragment(secret_file).with_user("check").generate()
    (call,) = recent(log, 0)
    assert fragment_text(log, call.fragments[0]["sha256"]) == "token=[hidden]\n\n"
    assert b"xxx-test-secret-not-real" not in b"".join(p.read_bytes() for p in tmp_path.glob("calls.db*"))


CSV_LOADER = """
from pepperpy.loaders import LoaderProvider, read_utf8, section

class Rows(LoaderProvider):
    def read(self, path):
        return [section("", "rows: " + " | ".join(read_utf8(path).split()))]
"""


async def test_a_file_whose_suffix_a_loader_reads_goes_through_it_and_other_text_is_sent_as_it_is(
        tmp_path, make_plugin):
    """`-f people.csv` is read by a loader/csv on the search path (as `-f csv:people.csv`); with no loader for
    .csv, and for the text and markdown loaders' suffixes, the file's text is sent unchanged."""
    people = tmp_path / "people.csv"
    people.write_text("name,age\nAda,36\n")
    plain = PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")
    assert (await resolve(str(people), manager=plain)).text == "name,age\nAda,36\n"
    make_plugin("loader_csv", category="loader", provider_name="csv", entry_point="provider:Rows",
                suffixes=[".csv"], files={"provider.py": CSV_LOADER})
    with_csv = PluginManager(search_paths=[builtin_plugins_dir(), tmp_path / "plugins"], home=tmp_path / "home")
    assert (await resolve(str(people), manager=with_csv)).text == "rows: name,age | Ada,36"
    assert (await resolve(f"csv:{people}", manager=with_csv)).text == "rows: name,age | Ada,36"
    book = tmp_path / "book.md"
    book.write_text("# Title\n\n\n\nBody  \n")
    assert (await resolve(str(book), manager=with_csv)).text == "# Title\n\n\n\nBody  \n"
    with pytest.raises(FileLoadError, match="absent.csv: no such file"):
        await resolve(str(tmp_path / "absent.csv"), manager=with_csv)
