"""rag/local's keyword index (FTS5) on real store files: built for a store from before it, kept in step by every
write, even from several threads at once. Vectors are given directly: no embedding model is needed."""

from __future__ import annotations

import asyncio
import sqlite3
import struct

import pytest

from pepperpy import Document
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

pytestmark = pytest.mark.integration

# The schema rag/local wrote before keyword search.
OLD_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE docs (row INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, text TEXT NOT NULL, metadata TEXT NOT NULL,
                   vector BLOB NOT NULL);
"""


@pytest.fixture(scope="module")
def rag_manager(session_home) -> PluginManager:
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=session_home)
    manager.load_class("rag", "local")
    return manager


def fts_check(path) -> int:
    """FTS5's own integrity check (index == rows; raises otherwise), then how many rows the index finds."""
    with sqlite3.connect(path) as db:
        db.execute("INSERT INTO docs_words (docs_words) VALUES ('integrity-check')")
        return db.execute("SELECT COUNT(*) FROM docs_words WHERE docs_words MATCH 'document'").fetchone()[0]


async def test_a_store_from_before_keyword_search_gets_its_index_on_open(rag_manager, tmp_path):
    path = tmp_path / "old.sqlite3"
    with sqlite3.connect(path) as db:
        db.executescript(OLD_SCHEMA)
        db.executemany("INSERT INTO meta VALUES (?, ?)", [("model", "all-MiniLM-L6-v2-int8"), ("dimension", "2")])
        db.executemany(
            "INSERT INTO docs (id, text, metadata, vector) VALUES (?, ?, ?, ?)",
            [(f"d{n}", f"document {n} code E_OLD-{n}", f'{{"n": {n}}}', struct.pack("2f", 0.6, 0.8))
             for n in range(50)],
        )
    store = rag_manager.create_provider("rag", "local", path=path)
    async with store:
        (hit,) = await store.keyword_search("E_OLD-7", k=1)
        assert hit.document == Document(id="d7", text="document 7 code E_OLD-7", metadata={"n": 7})
        assert [h.document.id for h in await store.keyword_search("E_OLD-7 E_OLD-9", k=5, filter={"n": 9})] == ["d9"]
        await store.add([Document(id="new", text="document new")], vectors=[[1.0, 0.0]])
    assert fts_check(path) == 51
    async with rag_manager.create_provider("rag", "local", path=path) as again:  # opened again: nothing rebuilt
        assert await again.count() == 51 and len(await again.keyword_search("document", k=100)) == 51


async def test_writers_in_threads_keep_the_index_in_step(rag_manager, tmp_path):
    path = tmp_path / "store.sqlite3"
    stores = [rag_manager.create_provider("rag", "local", path=path) for _ in range(3)]
    for store in stores:
        await store.initialize()

    async def write(store, writer: int) -> None:
        for batch in range(5):
            ids = range(writer * 1000 + batch * 40, writer * 1000 + batch * 40 + 40)
            documents = [Document(id=f"d{i}", text=f"document {i} by W{writer}") for i in ids]
            await store.add(documents, vectors=[[1.0, float(i)] for i in ids])
            await store.delete([f"d{writer * 1000 + batch * 40}"])

    await asyncio.gather(*(write(store, n) for n, store in enumerate(stores)))
    assert fts_check(path) == 3 * 5 * 39
    for n, store in enumerate(stores):
        assert len(await store.keyword_search(f"W{n}", k=1000)) == 5 * 39
        await store.cleanup()


# The per-row triggers rag/local kept the keyword index with before it indexed each write in one statement.
ROW_TRIGGERS = """
CREATE TRIGGER docs_words_insert AFTER INSERT ON docs BEGIN
    INSERT INTO docs_words (rowid, text) VALUES (new.row, new.text);
END;
CREATE TRIGGER docs_words_update AFTER UPDATE OF text ON docs BEGIN
    INSERT INTO docs_words (docs_words, rowid, text) VALUES ('delete', old.row, old.text);
    INSERT INTO docs_words (rowid, text) VALUES (new.row, new.text);
END;
"""


async def test_a_store_with_the_row_triggers_loses_them_and_rewritten_texts_are_indexed_once(rag_manager, tmp_path):
    path = tmp_path / "store.sqlite3"
    async with rag_manager.create_provider("rag", "local", path=path) as store:
        await store.add([Document(id=f"d{n}", text=f"document {n} alpha") for n in range(20)], vectors=[[1.0, 0.0]] * 20)
    with sqlite3.connect(path) as db:
        db.executescript(ROW_TRIGGERS)
    async with rag_manager.create_provider("rag", "local", path=path) as store:
        changed = [Document(id=f"d{n}", text=f"document {n} beta") for n in range(10)]  # replaced: old words go
        added = [Document(id=f"e{n}", text=f"document e{n} beta") for n in range(5)]
        await store.add(changed + added, vectors=[[0.0, 1.0]] * 15)
        assert len(await store.keyword_search("alpha", k=100)) == 10
        assert len(await store.keyword_search("beta", k=100)) == 15
    assert fts_check(path) == 25  # each row indexed once: a leftover trigger would have indexed it twice
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND name LIKE 'docs_words_%'").fetchall() == [
            ("docs_words_delete",)
        ]
