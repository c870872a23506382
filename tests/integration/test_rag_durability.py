"""Stores across processes: persistence (rag/local and Chroma embedded); for rag/local also concurrent
writers and a kill -9 in the middle of a large add."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time

import pytest

pytestmark = pytest.mark.integration

CHILD = textwrap.dedent(
    """
    import asyncio, json, sys
    from pepperpy import Document
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

    path, action, start, count, home, name = sys.argv[1:7]
    start, count = int(start), int(count)

    async def main():
        manager = PluginManager(search_paths=[builtin_plugins_dir()], home=home)
        store = manager.create_provider("rag", name, path=path)  # puts the plugin's packages on sys.path
        await store.initialize()
        import numpy as np

        rng = np.random.default_rng(start)
        if action == "add":
            docs = [Document(id=f"d{i}", text=f"document {i}", metadata={"writer": start}) for i in range(start, start + count)]
            vectors = rng.standard_normal((count, 64), dtype=np.float32)
            print("adding", flush=True)
            await store.add(docs, vectors=list(vectors))
        hits = await store.search(list(rng.standard_normal(64)), k=3)
        print(json.dumps({"count": await store.count(), "hits": len(hits)}), flush=True)
        await store.cleanup()

    asyncio.run(main())
    """
)


@pytest.fixture
def child(tmp_path, session_home):
    def start(action: str, first: int, count: int, store: str = "local") -> subprocess.Popen:
        path = tmp_path / ("store.sqlite3" if store == "local" else "chroma")
        arguments = [str(path), action, str(first), str(count), str(session_home), store]
        return subprocess.Popen([sys.executable, "-c", CHILD, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    return start


def finish(process: subprocess.Popen) -> dict:
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    return json.loads(stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("store", ["local", "chroma"])
def test_what_one_process_adds_another_finds(child, chroma_manager, store):
    assert finish(child("add", 0, 100, store)) == {"count": 100, "hits": 3}
    assert finish(child("read", 0, 0, store)) == {"count": 100, "hits": 3}


def keyword_index(folder) -> int:
    """FTS5's integrity check of rag/local's keyword index (raises if it differs from the rows), then its rows."""
    with sqlite3.connect(folder / "store.sqlite3") as db:
        db.execute("INSERT INTO docs_words (docs_words) VALUES ('integrity-check')")
        return db.execute("SELECT COUNT(*) FROM docs_words WHERE docs_words MATCH 'document'").fetchone()[0]


def test_concurrent_writer_processes_lose_nothing(child, tmp_path):
    writers = [child("add", start, 2000) for start in (0, 10_000, 20_000)]
    results = [finish(w) for w in writers]
    assert max(r["count"] for r in results) == 6000
    assert finish(child("read", 0, 0))["count"] == 6000
    assert keyword_index(tmp_path) == 6000, "every row is in the keyword index"


def test_kill_during_a_large_add_leaves_the_old_or_the_new_state(child, tmp_path):
    assert finish(child("add", 0, 1000))["count"] == 1000
    process = child("add", 100_000, 300_000)
    assert process.stdout.readline().strip() == "adding"
    wal = tmp_path / "store.sqlite3-wal"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and (not wal.exists() or wal.stat().st_size < 8_000_000):
        time.sleep(0.005)  # wait until the add's transaction has written 8 MB of its ~100 MB
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    after = finish(child("read", 0, 0))
    assert after["count"] in (1000, 301_000) and after["hits"] == 3
    with sqlite3.connect(tmp_path / "store.sqlite3") as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert keyword_index(tmp_path) == after["count"], "the keyword index holds the rows that were kept"


async def test_a_store_file_another_process_is_writing_is_waited_for_not_refused(chroma_manager, tmp_path):
    """Switching a file to WAL reads it, then writes it; SQLite answers "database is locked" at once, without
    its busy timeout, when another connection writes in between. rag/local's open waits for that writer."""
    path = tmp_path / "store.sqlite3"
    writer = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock of the new file
    release = threading.Timer(0.5, writer.execute, ("COMMIT",))
    release.start()
    store = chroma_manager.create_provider("rag", "local", path=path)
    try:
        await store.initialize()
        assert await store.count() == 0
    finally:
        release.join()
        await store.cleanup()
        writer.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
