"""The rag/local store: documents and vectors in one SQLite file, searched exactly with numpy
up to ``index_threshold`` rows and through an approximate index (``index.py``) past it.

SQLite (WAL) makes every write one transaction (the keyword index of words.py included),
so a process killed during an add leaves either the old or the new state. Search keeps a
normalized float32 matrix in memory, reloaded when the file changed (``PRAGMA
data_version``) or this store wrote, and an inverted index of metadata values for filters.

A file that is not a rag/local store is never changed: a folder in its place, or a
SQLite database with other tables (another program's), raises ``NotAStore`` before
anything is written; rows that cannot be read back raise it too.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pepperpy.plugins import use_wal

from .index import CANDIDATES, AnnIndex, bump_generation, changes_schema, read_vectors
from .words import WORD_COLUMNS, ensure_word_index, keyword_rows

SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS docs (
    row INTEGER PRIMARY KEY,
    id TEXT NOT NULL UNIQUE,
    text TEXT NOT NULL,
    metadata TEXT NOT NULL,
    vector BLOB NOT NULL
);
""" + changes_schema() + """
COMMIT;
"""
COLUMNS = {
    "meta": {"key", "value"},
    "docs": {"row", "id", "text", "metadata", "vector"},
    "changes": {"row", "generation"},
    **WORD_COLUMNS,
}
INDEX_THRESHOLD = 20_000  # rows from which search goes through the approximate index
EXACT_SUBSET = 2_048  # past the threshold, a filter matching at most this many rows is searched exactly
UPSERT = """
INSERT INTO docs (id, text, metadata, vector) VALUES (?, ?, ?, ?)
ON CONFLICT(id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, vector = excluded.vector
"""


class NotAStore(Exception):
    """The file is not a sound rag/local store; ``foreign`` when it is another program's database."""

    def __init__(self, problem: str, foreign: bool = False):
        super().__init__(problem)
        self.foreign = foreign


def check_schema(db: sqlite3.Connection) -> set[str]:
    """This store's tables found in ``db``; refuses a database holding anything else, before anything is written."""
    tables = {
        name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
    }
    others = sorted(tables - COLUMNS.keys())
    if others:
        raise NotAStore(f"it is a SQLite database with other tables ({', '.join(others)})", foreign=True)
    for table in sorted(tables):
        columns = {row[1] for row in db.execute(f"PRAGMA table_info({table})")}
        if columns != COLUMNS[table]:
            raise NotAStore(f"its table {table!r} has the columns {', '.join(sorted(columns))}", foreign=True)
    return tables


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class Snapshot:
    """What search needs in memory: row ids, the vector matrix, and metadata -> row positions.

    ``rows`` are (row, id, metadata, vector) with ``vector`` None past the index threshold:
    then ``matrix`` is None and the vectors stay in SQLite and the approximate index.
    """

    def __init__(self, rows: list[tuple[int, str, str, bytes | None]], dimension: int):
        self.rows = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        self.ids = [row[1] for row in rows]
        self.matrix = None
        if rows and rows[0][3] is not None:
            self.matrix = np.frombuffer(b"".join(row[3] for row in rows), dtype=np.float32).reshape(len(rows), dimension)
        elif not rows:
            self.matrix = np.empty((0, dimension), dtype=np.float32)
        index: dict[tuple[str, str], list[int]] = {}
        for position, (_, _, metadata, _) in enumerate(rows):
            for key, value in json.loads(metadata).items():
                index.setdefault((key, _key(value)), []).append(position)
        self.index = {key: np.array(positions, dtype=np.int64) for key, positions in index.items()}

    def positions(self, filter: dict[str, Any]) -> np.ndarray | None:
        """Rows matching every key of ``filter`` (a list value matches any of its items); None = all rows."""
        selected: np.ndarray | None = None
        for key, wanted in filter.items():
            options = wanted if isinstance(wanted, list) else [wanted]
            parts = [self.index.get((key, _key(option))) for option in options]
            rows = np.unique(np.concatenate([p for p in parts if p is not None] or [np.empty(0, dtype=np.int64)]))
            selected = rows if selected is None else np.intersect1d(selected, rows, assume_unique=True)
        return selected

    def top(self, query: np.ndarray, k: int, filter: dict[str, Any] | None) -> list[tuple[int, float]]:
        if not self.ids:
            return []  # a new store has no dimension yet: its 0x0 matrix cannot meet a query
        rows = self.positions(filter) if filter else None
        if rows is None:
            scores = self.matrix @ query
        elif len(rows) * 3 < len(self.ids):
            scores = self.matrix[rows] @ query  # a small subset: gather it
        else:
            scores = (self.matrix @ query)[rows]
        k = min(k, len(scores))
        if k == 0:
            return []
        best = np.argpartition(-scores, k - 1)[:k]
        best = best[np.argsort(-scores[best])]
        positions = best if rows is None else rows[best]
        return [(int(p), float(scores[b])) for p, b in zip(positions, best)]


class Store:
    """One SQLite file; every method blocks (call it from a worker thread)."""

    def __init__(self, path: Path, index_threshold: int = INDEX_THRESHOLD, exact_subset: int = EXACT_SUBSET):
        self.path = path
        self.index_threshold = index_threshold
        self.exact_subset = exact_subset
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_dir():
            raise NotAStore("it is a folder, not a file", foreign=True)
        self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None, timeout=60)
        try:
            tables = check_schema(self._db)
            use_wal(self._db, timeout=60)  # waits for another process writing, as the busy timeout does not here
            if tables != COLUMNS.keys():
                self._db.executescript(SCHEMA)
                ensure_word_index(self._db)  # keyword search (words.py); built for a store from before it
        except BaseException:
            self._db.close()  # not a database, or not writable: do not leak the connection
            raise
        self._lock = threading.Lock()
        self._snapshot: Snapshot | None = None
        self._snapshot_version: int | None = None
        self._index: AnnIndex | None = None

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def meta(self) -> dict[str, str]:
        with self._lock:
            return dict(self._db.execute("SELECT key, value FROM meta").fetchall())

    def model(self) -> tuple[str, int] | None:
        """The embedding model and dimension the vectors come from; None for a new store."""
        meta = self.meta()
        if not meta.keys() - {"generation", "store"}:  # a new store (a delete may have stamped it)
            return None
        try:
            return meta["model"], int(meta["dimension"])
        except (KeyError, ValueError):
            raise NotAStore("its meta table holds no valid model and dimension") from None

    def upsert(self, rows: list[tuple[str, str, dict[str, Any], np.ndarray]], model: str) -> None:
        """Insert or replace rows of (id, text, metadata, normalized float32 vector) in one transaction."""
        dimension = len(rows[0][3]) if rows else 0
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO NOTHING",
                [("model", model), ("dimension", str(dimension))],
            )
            self._db.executemany(
                UPSERT, ((i, text, json.dumps(meta), vector.tobytes()) for i, text, meta, vector in rows)
            )

    def delete(self, ids: list[str]) -> None:
        with self._lock, self._transaction():
            self._db.executemany("DELETE FROM docs WHERE id = ?", ((i,) for i in ids))

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction (call with ``self._lock`` held); rolled back on any error."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            bump_generation(self._db)
            yield
            self._db.execute("COMMIT")
        except BaseException:
            if self._db.in_transaction:  # SQLite may have rolled back already (a full disk, say)
                self._db.execute("ROLLBACK")
            raise
        finally:
            self._snapshot = None

    def count(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]

    def _fresh_snapshot(self) -> Snapshot:
        version = self._db.execute("PRAGMA data_version").fetchone()[0]
        if self._snapshot is None or version != self._snapshot_version:
            self._db.execute("BEGIN")  # one read transaction: the rows and the index see the same state
            try:
                snapshot = self._read_snapshot()
            finally:
                self._db.execute("COMMIT")
            self._snapshot, self._snapshot_version = snapshot, version
        return self._snapshot

    def _read_snapshot(self) -> Snapshot:
        try:
            dimension = int(dict(self._db.execute("SELECT key, value FROM meta").fetchall()).get("dimension", 0))
            count = self._db.execute("SELECT COUNT(*) FROM docs").fetchone()[0]
            indexed = count >= self.index_threshold
            vector = "NULL" if indexed else "vector"
            rows = self._db.execute(f"SELECT row, id, metadata, {vector} FROM docs ORDER BY row").fetchall()
            snapshot = Snapshot(rows, dimension)
        except (ValueError, TypeError, AttributeError) as exc:  # vectors of the wrong size, metadata not JSON
            raise NotAStore(f"its rows cannot be read back ({exc})") from None
        del rows  # ~200 MB of tuples at 1M rows: not held while the index builds
        if indexed:
            if self._index is None or self._index.dimension != dimension:
                self._index = AnnIndex(self.path, dimension)
            self._index.sync(self._db, len(snapshot.ids))
        return snapshot

    def ids(self, filter: dict[str, Any]) -> list[str]:
        """The ids of the rows matching ``filter``."""
        with self._lock:
            snapshot = self._fresh_snapshot()
            rows = snapshot.positions(filter)
            return list(snapshot.ids) if rows is None else [snapshot.ids[position] for position in rows]

    def keyword_search(self, query: str, k: int, filter: dict[str, Any] | None) -> list[tuple[str, str, dict, float]]:
        """The ``k`` rows best matching the words of ``query`` (BM25), as (id, text, metadata, score)."""
        with self._lock:
            return keyword_rows(self._db, query, k, filter)

    def search(self, query: np.ndarray, k: int, filter: dict[str, Any] | None) -> list[tuple[str, str, dict, float]]:
        """The ``k`` closest rows as (id, text, metadata, score)."""
        with self._lock:
            snapshot = self._fresh_snapshot()
            if snapshot.matrix is None:
                best = self._top_indexed(snapshot, query, k, filter)
            else:
                best = snapshot.top(query, k, filter)
            ids = [snapshot.ids[position] for position, _ in best]
            found = {
                row[0]: row
                for row in self._db.execute(
                    f"SELECT id, text, metadata FROM docs WHERE id IN ({','.join('?' * len(ids))})", ids
                )
            }
        return [(i, found[i][1], json.loads(found[i][2]), score) for i, (_, score) in zip(ids, best)]

    def _top_indexed(
        self, snapshot: Snapshot, query: np.ndarray, k: int, filter: dict[str, Any] | None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (position, score) past the threshold: approximate candidates ranked exactly.

        A filter matching at most ``exact_subset`` rows is searched exactly over those rows;
        a larger one widens the candidate set until enough candidates match it. Either way
        only matching rows come back.
        """
        assert self._index is not None
        positions = snapshot.positions(filter) if filter else None
        if positions is not None and len(positions) <= self.exact_subset:
            candidates = snapshot.rows[positions]
        else:
            wanted = max(k, CANDIDATES)
            allowed = None
            if positions is not None:
                allowed = np.zeros(len(snapshot.rows), dtype=bool)
                allowed[positions] = True
                wanted = min(wanted, len(positions))
            count = wanted if allowed is None else int(wanted * len(snapshot.rows) / max(len(positions), 1) * 1.2) + k
            while True:
                candidates = self._index.candidates(query, count)
                if allowed is not None:
                    at = np.searchsorted(snapshot.rows, candidates)
                    at = np.minimum(at, len(snapshot.rows) - 1)
                    candidates = candidates[(snapshot.rows[at] == candidates) & allowed[at]]
                if len(candidates) >= wanted or count >= len(snapshot.rows):
                    break
                count *= 4
        keys, matrix = read_vectors(self._db, candidates, len(query))
        at = np.minimum(np.searchsorted(snapshot.rows, keys), max(len(snapshot.rows) - 1, 0))
        known = snapshot.rows[at] == keys if len(snapshot.rows) else np.zeros(len(keys), dtype=bool)
        at, scores = at[known], matrix[known] @ query  # rows another process added since the snapshot wait for it
        best = np.argsort(-scores)[:k]
        return [(int(at[b]), float(scores[b])) for b in best]
