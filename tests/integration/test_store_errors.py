"""Store files that are damaged or cannot be created: a ProviderError naming the file and what to do.

rag/local runs for real (its numpy is installed into the session home on first use);
the vectors are given directly, so no embedding model is needed.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from pepperpy import Document
from pepperpy.errors import ProviderError
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

pytestmark = pytest.mark.integration

DOCS = [Document(id=f"d{n}", text=f"document number {n}", metadata={"n": n}) for n in range(40)]
VECTORS = [[float(n), 1.0, float(n % 3)] for n in range(40)]
DAMAGED = "move it away (or delete it, losing its documents) and add the documents again, or pass another path="


@pytest.fixture(scope="module")
def rag_manager(session_home) -> PluginManager:
    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=session_home)
    manager.load_class("rag", "local")
    return manager


@pytest.fixture
def file_in_the_way(tmp_path) -> Path:
    (tmp_path / "afile").write_text("a regular file where a folder is needed\n")
    return tmp_path / "afile"


async def test_a_garbage_store_file_is_refused_naming_it(rag_manager, tmp_path):
    store = tmp_path / "store.sqlite3"
    store.write_bytes(b"this is not a SQLite database " * 200)
    provider = rag_manager.create_provider("rag", "local", path=store)
    with pytest.raises(ProviderError) as raised:
        async with provider:
            pass
    message = str(raised.value)
    assert message.startswith(f"rag/local: the store {store} failed to open (file is not a database)")
    assert message.endswith(DAMAGED)
    assert not provider.initialized


async def test_a_store_path_under_a_regular_file_is_refused_naming_it(rag_manager, file_in_the_way):
    store = file_in_the_way / "rag" / "store.sqlite3"
    provider = rag_manager.create_provider("rag", "local", path=store)
    with pytest.raises(ProviderError) as raised:
        async with provider:
            pass
    message = str(raised.value)
    assert message.startswith(f"rag/local: the store {store} failed to open (")
    assert str(file_in_the_way) in message and "or pass another path=" in message


def damage_while_open(store: Path) -> None:
    """What a failing disk or another program does to the file under an open store: its pages turn to garbage.

    Another connection moves every committed page into the main file, writes one small
    transaction (so the open store's page cache is stale), then page 3 onwards (the
    tables' pages after the schema and ``meta``) are overwritten.
    """
    other = sqlite3.connect(store, isolation_level=None)
    try:
        other.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        other.execute("INSERT INTO meta (key, value) VALUES ('touched', 'by another program')")
        page_size = other.execute("PRAGMA page_size").fetchone()[0]
    finally:
        other.close()
    size = store.stat().st_size
    with open(store, "r+b") as handle:
        handle.seek(2 * page_size)
        handle.write(b"\xff" * (size - 2 * page_size))


@pytest.mark.parametrize("operation", ["add", "search", "count", "delete"])
async def test_a_store_damaged_while_open_fails_naming_the_file(rag_manager, tmp_path, operation):
    store = tmp_path / "store.sqlite3"
    calls = {
        "add": lambda p: p.add([Document(id="new", text="a new document")], vectors=[[1.0, 2.0, 3.0]]),
        "search": lambda p: p.search([1.0, 1.0, 1.0]),
        "count": lambda p: p.count(),
        "delete": lambda p: p.delete(["d1"]),
    }
    async with rag_manager.create_provider("rag", "local", path=store) as provider:
        await provider.add(DOCS, vectors=VECTORS)
        assert len(await provider.search([1.0, 1.0, 1.0], k=3)) == 3
        damage_while_open(store)
        with pytest.raises(ProviderError) as raised:
            await calls[operation](provider)
    message = str(raised.value)
    pattern = rf"rag/local: the store {re.escape(str(store))} failed to {operation} \(database disk image is malformed\)"
    assert re.match(pattern, message), message
    assert message.endswith(DAMAGED)


async def test_a_chroma_store_path_under_a_regular_file_is_refused_naming_it(chroma_manager, file_in_the_way):
    store = file_in_the_way / "chroma"
    provider = chroma_manager.create_provider("rag", "chroma", path=store)
    with pytest.raises(ProviderError) as raised:
        async with provider:
            pass
    message = str(raised.value)
    assert message.startswith(f"rag/chroma: cannot create the Chroma store {store} (")
    assert str(file_in_the_way) in message and message.endswith("pass a path= in a writable folder")
