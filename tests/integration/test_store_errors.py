"""Store files that are damaged, foreign or cannot be created: an error naming the file and what to do.

rag/local runs for real (its numpy is installed into the session home on first use);
the vectors are given directly, so no embedding model is needed. storage/local and the
state files of @persistent_plugin providers run on real files under tmp_path.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
from pathlib import Path

import pytest

from pepperpy import Document
from pepperpy.errors import PluginError, ProviderError
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from pepperpy.plugins import PepperpyPlugin, persistent_plugin

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


# -- rag/local: truncated, foreign or misplaced files --------------------------------------------------

FOREIGN = "rag/local leaves it untouched: move it away or pass another path="
LONG_DOCS = [Document(id=f"d{n}", text=f"document {n} " + "words " * 400, metadata={"n": n}) for n in range(40)]


async def open_and_use(manager: PluginManager, store: Path) -> None:
    async with manager.create_provider("rag", "local", path=store) as provider:
        await provider.count()
        await provider.search([1.0, 1.0, 1.0], k=3)
        await provider.add([Document(id="new", text="a new document")], vectors=[[1.0, 2.0, 3.0]])


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize("keep", [100, 4096, 0.5, 0.9], ids=["header", "first-page", "half", "most"])
async def test_a_truncated_store_is_refused_naming_it(rag_manager, tmp_path, keep):
    """A copy cut short (a full disk, an interrupted copy): open or the first read fails, never a raw sqlite3 error."""
    store = tmp_path / "store.sqlite3"
    async with rag_manager.create_provider("rag", "local", path=store) as provider:
        await provider.add(LONG_DOCS, vectors=VECTORS)
    data = store.read_bytes()
    assert len(data) > 20 * 4096 and not store.with_name("store.sqlite3-wal").exists()
    store.write_bytes(data[: keep if isinstance(keep, int) else int(len(data) * keep)])
    with pytest.raises(ProviderError) as raised:
        await open_and_use(rag_manager, store)
    message = str(raised.value)
    assert re.match(rf"rag/local: the store {re.escape(str(store))} failed to (open|count|search|add) \(", message), message
    assert message.endswith(DAMAGED)


async def test_a_folder_in_place_of_the_store_is_refused_and_left_alone(rag_manager, tmp_path):
    store = tmp_path / "store.sqlite3"
    store.mkdir()
    with pytest.raises(ProviderError) as raised:
        await open_and_use(rag_manager, store)
    assert str(raised.value) == f"rag/local: the store {store} failed to open (it is a folder, not a file); {FOREIGN}"
    assert list(store.iterdir()) == []


def foreign_database(path: Path, table: str = "users (id INTEGER, name TEXT)") -> Path:
    db = sqlite3.connect(path)
    db.execute(f"CREATE TABLE {table}")
    db.execute(f"INSERT INTO {table.split()[0]} VALUES (1, 'ada')")
    db.commit()
    db.close()
    return path


@pytest.mark.parametrize(
    ("table", "problem"),
    [("users (id INTEGER, name TEXT)", "it is a SQLite database with other tables (users)"),
     ("docs (id INTEGER, name TEXT)", "its table 'docs' has the columns id, name")],
    ids=["other-tables", "a-docs-table-of-its-own"],
)
async def test_another_programs_sqlite_database_is_refused_and_left_unchanged(rag_manager, tmp_path, table, problem):
    store = foreign_database(tmp_path / "app.db", table)
    before = digest(store)
    with pytest.raises(ProviderError) as raised:
        await open_and_use(rag_manager, store)
    assert str(raised.value) == f"rag/local: the store {store} failed to open ({problem}); {FOREIGN}"
    assert digest(store) == before
    db = sqlite3.connect(store)
    try:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete", "the journal mode was changed"
        assert [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")] == [table.split()[0]]
    finally:
        db.close()


async def test_an_empty_file_is_a_new_store(rag_manager, tmp_path):
    store = tmp_path / "store.sqlite3"
    store.write_bytes(b"")
    async with rag_manager.create_provider("rag", "local", path=store) as provider:
        await provider.add(DOCS[:3], vectors=VECTORS[:3])
        assert await provider.count() == 3


def tamper(store: Path, statement: str) -> None:
    db = sqlite3.connect(store, isolation_level=None)
    try:
        db.execute(statement)
    finally:
        db.close()


@pytest.mark.parametrize(
    ("statement", "operation", "problem"),
    [("DELETE FROM meta WHERE key = 'model'", "add", "its meta table holds no valid model and dimension"),
     ("UPDATE meta SET value = 'three' WHERE key = 'dimension'", "search", "its meta table holds no valid model"),
     ("UPDATE docs SET vector = x'00ff' WHERE id = 'd3'", "search", "its rows cannot be read back"),
     ("UPDATE docs SET metadata = 'not json' WHERE id = 'd3'", "search", "its rows cannot be read back")],
    ids=["no-model", "bad-dimension", "short-vector", "bad-metadata"],
)
async def test_rows_another_program_broke_are_reported_naming_the_file(rag_manager, tmp_path, statement, operation, problem):
    store = tmp_path / "store.sqlite3"
    async with rag_manager.create_provider("rag", "local", path=store) as provider:
        await provider.add(DOCS, vectors=VECTORS)
    tamper(store, statement)
    async with rag_manager.create_provider("rag", "local", path=store) as provider:
        with pytest.raises(ProviderError) as raised:
            if operation == "add":
                await provider.add([Document(id="new", text="a new document")], vectors=[[1.0, 2.0, 3.0]])
            else:
                await provider.search([1.0, 1.0, 1.0])
    message = str(raised.value)
    assert message.startswith(f"rag/local: the store {store} failed to {operation} ({problem}")
    assert message.endswith(DAMAGED)


# -- storage/local -------------------------------------------------------------------------------------


@pytest.fixture
def storage_manager(tmp_path) -> PluginManager:
    return PluginManager(search_paths=[builtin_plugins_dir()], home=tmp_path / "home")


async def test_storage_path_naming_a_file_fails_every_call_naming_it(storage_manager, tmp_path):
    root = tmp_path / "notes.txt"
    root.write_text("a file, not a folder\n")
    fix = f"{root} is a file where a folder is needed: move it away, or pass another path="
    async with storage_manager.create_provider("storage", "local", path=root) as storage:
        for call in (storage.get("k"), storage.set("k", b"v"), storage.delete("k"), storage.list()):
            with pytest.raises(ProviderError) as raised:
                await call
            assert str(raised.value).startswith("storage/local: cannot ") and str(raised.value).endswith(fix)
    assert root.read_text() == "a file, not a folder\n"


async def test_a_folder_where_a_value_belongs_is_named(storage_manager, tmp_path):
    (tmp_path / "data" / "k").mkdir(parents=True)
    fix = f"{tmp_path / 'data' / 'k'} is a folder where the value of 'k' belongs: move it away"
    async with storage_manager.create_provider("storage", "local", path=tmp_path / "data") as storage:
        for action, call in (("read", storage.get("k")), ("write", storage.set("k", b"v")), ("delete", storage.delete("k"))):
            with pytest.raises(ProviderError) as raised:
                await call
            assert str(raised.value) == f"storage/local: cannot {action} {tmp_path / 'data' / 'k'} (Is a directory); {fix}"


async def test_a_key_under_another_keys_value_does_not_exist_and_cannot_be_set(storage_manager, tmp_path):
    async with storage_manager.create_provider("storage", "local", path=tmp_path / "data") as storage:
        await storage.set("a", b"one")
        assert await storage.get("a/b") is None
        await storage.delete("a/b")
        with pytest.raises(ProviderError, match=r"the key 'a' holds a value where 'a/b' needs a folder: delete that key"):
            await storage.set("a/b", b"two")
        assert await storage.list() == ["a"] and await storage.get("a") == b"one"


# -- state files of @persistent_plugin providers ----------------------------------------------------------


@persistent_plugin
class Counter(PepperpyPlugin):
    counter: int = 0


@pytest.fixture
def state_manager(tmp_path) -> PluginManager:
    manager = PluginManager(search_paths=[], home=tmp_path / "home")
    manager.register_plugin("demo", "counter", Counter)
    return manager


@pytest.mark.parametrize("blocked", ["state", "state/demo"])
async def test_a_file_in_the_way_of_the_state_folder_is_named_at_open_and_at_close(state_manager, blocked):
    in_the_way = state_manager.home / blocked
    in_the_way.parent.mkdir(parents=True, exist_ok=True)
    in_the_way.write_text("not a folder\n")
    fix = f"{in_the_way} is a file where a folder is needed: move it away or point PEPPERPY_HOME elsewhere"
    provider = state_manager.create_provider("demo", "counter")
    with pytest.warns(RuntimeWarning, match="demo/counter: cannot read the state file ") as warned:
        with pytest.raises(PluginError) as raised:
            async with provider:
                provider.counter += 1
    assert str(warned[0].message).endswith(f"{fix}; starting with fresh state")
    state = state_manager.home / "state" / "demo" / "counter.json"
    assert str(raised.value).startswith(f"demo/counter: cannot save its state to {state} (")
    assert str(raised.value).endswith(fix)
    in_the_way.unlink()
    async with state_manager.create_provider("demo", "counter") as provider:
        provider.counter += 1
    assert state.read_text().strip() == '{\n  "counter": 1\n}'


async def test_a_folder_in_place_of_the_state_lock_is_named(state_manager):
    lock = state_manager.home / "state" / "demo" / "counter.json.lock"
    lock.mkdir(parents=True)
    provider = state_manager.create_provider("demo", "counter")
    with pytest.raises(PluginError) as raised:
        async with provider:
            provider.counter += 1
    assert str(raised.value).endswith(f"(Is a directory); {lock} is a folder where a file is needed: move it away")
