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
from functools import lru_cache
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from pepperpy.plugins import use_wal

from .index import CANDIDATES, FILTERED_CANDIDATES, AnnIndex, bump_generation, changes_schema, read_vectors
from .words import WORD_COLUMNS, ensure_word_index, forget_words, has_row_triggers, index_words, keyword_rows

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
READ_BATCH = 10_000  # rows read from SQLite at a time when a snapshot is taken
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
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
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
    """What search needs in memory: the row numbers, the vector matrix, and metadata -> row positions.

    Past the index threshold ``matrix`` is None: the vectors stay in SQLite and the approximate
    index. Ids, texts and metadata are read from SQLite for the rows a search returns only.
    """

    def __init__(self, rows: np.ndarray, matrix: np.ndarray | None, index: dict[tuple[str, str], np.ndarray]):
        self.rows, self.matrix, self.index = rows, matrix, index

    @classmethod
    def read(cls, db: sqlite3.Connection, dimension: int, with_vectors: bool) -> Snapshot:
        """Stream the rows in batches (no list of a million tuples held at once); vectors only if ``with_vectors``."""
        rows: list[np.ndarray] = []
        vectors: list[bytes] = []
        positions: dict[tuple[str, str], list[np.ndarray]] = {}
        cursor = db.execute(f"SELECT row, metadata, {'vector' if with_vectors else 'NULL'} FROM docs ORDER BY row")
        start = 0
        while batch := cursor.fetchmany(READ_BATCH):
            rows.append(np.fromiter((row for row, _, _ in batch), dtype=np.int64, count=len(batch)))
            if with_vectors:
                vectors.append(b"".join(vector for _, _, vector in batch))
            found: dict[tuple[str, str], list[int]] = {}
            for offset, (_, metadata, _) in enumerate(batch):
                for pair in _pairs(metadata):
                    found.setdefault(pair, []).append(start + offset)
            for pair, at in found.items():
                positions.setdefault(pair, []).append(np.array(at, dtype=np.int32))
            start += len(batch)
        matrix = None
        if with_vectors:
            matrix = np.frombuffer(b"".join(vectors), dtype=np.float32).reshape(start, dimension)
        index = {pair: np.concatenate(parts) for pair, parts in positions.items()}
        return cls(np.concatenate(rows) if rows else np.empty(0, dtype=np.int64), matrix, index)

    def positions(self, filter: dict[str, Any]) -> np.ndarray | None:
        """Rows matching every key of ``filter`` (a list value matches any of its items); None = all rows."""
        selected: np.ndarray | None = None
        for key, wanted in filter.items():
            options = wanted if isinstance(wanted, list) else [wanted]
            parts = [part for option in options if (part := self.index.get((key, _key(option)))) is not None]
            if len(parts) == 1:
                rows = parts[0]  # sorted and unique already (Snapshot.read): no copy
            else:
                rows = np.unique(np.concatenate(parts or [np.empty(0, dtype=np.int32)]))
            selected = rows if selected is None else np.intersect1d(selected, rows, assume_unique=True)
        return selected

    def top(self, query: np.ndarray, k: int, filter: dict[str, Any] | None) -> list[tuple[int, float]]:
        """The ``k`` best (position, score) by exact search over the matrix."""
        assert self.matrix is not None
        if not len(self.rows):
            return []  # a new store has no dimension yet: its 0x0 matrix cannot meet a query
        rows = self.positions(filter) if filter else None
        if rows is None:
            scores = self.matrix @ query
        elif len(rows) * 3 < len(self.rows):
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


@lru_cache(maxsize=4096)
def _pairs(metadata: str) -> tuple[tuple[str, str], ...]:
    """(key, canonical JSON value) of one row's metadata; cached: many rows share the same metadata."""
    return tuple((key, _key(value)) for key, value in json.loads(metadata).items())


class Store:
    """One SQLite file; every method blocks (call it from a worker thread)."""

    def __init__(
        self, path: Path, logger: Any, index_threshold: int = INDEX_THRESHOLD, exact_subset: int = EXACT_SUBSET
    ):
        self.path = path
        self.logger = logger
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
            if tables != COLUMNS.keys() or has_row_triggers(self._db):
                ensure_word_index(self._db)  # keyword search (words.py); built or updated for a store from before it
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
            ids = json.dumps([row[0] for row in rows])
            forget_words(self._db, ids)  # the keyword index of the rows replaced (words.py)
            self._db.executemany(
                UPSERT, ((i, text, json.dumps(meta), vector.tobytes()) for i, text, meta, vector in rows)
            )
            index_words(self._db, ids)

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
            snapshot = Snapshot.read(self._db, dimension, with_vectors=not indexed)
        except (ValueError, TypeError, AttributeError) as exc:  # vectors of the wrong size, metadata not JSON
            raise NotAStore(f"its rows cannot be read back ({exc})") from None
        if indexed:
            if self._index is None or self._index.dimension != dimension:
                self._index = AnnIndex(self.path, dimension, self.logger)
            self._index.sync(self._db, len(snapshot.rows))
        return snapshot

    def ids(self, filter: dict[str, Any]) -> list[str]:
        """The ids of the rows matching ``filter``."""
        with self._lock:
            snapshot = self._fresh_snapshot()
            positions = snapshot.positions(filter)
            if positions is None:
                return [i for (i,) in self._db.execute("SELECT id FROM docs ORDER BY row")]
            rows = snapshot.rows[positions]
            found = self._documents(rows)
            return [found[row][0] for row in rows.tolist() if row in found]

    def _documents(self, rows: np.ndarray) -> dict[int, tuple[str, str, str]]:
        """row -> (id, text, metadata JSON) of those of ``rows`` still in the store."""
        found = self._db.execute(
            "SELECT row, id, text, metadata FROM docs WHERE row IN (SELECT value FROM json_each(?))",
            (json.dumps(rows.tolist()),),
        )
        return {row: (i, text, metadata) for row, i, text, metadata in found}

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
            rows = snapshot.rows[[position for position, _ in best]]
            found = self._documents(rows)
        hits = []
        for row, (_, score) in zip(rows.tolist(), best):
            if row in found:  # else deleted by another process since the snapshot
                identifier, text, metadata = found[row]
                hits.append((identifier, text, json.loads(metadata), score))
        return hits

    def _top_indexed(
        self, snapshot: Snapshot, query: np.ndarray, k: int, filter: dict[str, Any] | None
    ) -> list[tuple[int, float]]:
        """Top ``k`` (position, score) past the threshold: approximate candidates ranked exactly.

        A filter matching at most ``exact_subset`` rows is searched exactly over those rows.
        A larger one asks the index for neighbours in inverse proportion to the share of rows
        it matches (so that about ``FILTERED_CANDIDATES`` of them match), and 4x as many again
        until ``k`` match or the whole store was asked. Either way only matching rows come back.
        """
        assert self._index is not None
        total = len(snapshot.rows)
        positions = snapshot.positions(filter) if filter else None
        if positions is not None and len(positions) <= self.exact_subset:
            candidates = snapshot.rows[positions]
        elif positions is None:
            candidates = self._index.candidates(query, max(k, CANDIDATES))
        else:
            count = int(max(k, FILTERED_CANDIDATES) * total / len(positions))
            while True:
                candidates = self._index.candidates(query, count)
                at = np.minimum(np.searchsorted(snapshot.rows, candidates), total - 1)
                matching = positions[np.minimum(np.searchsorted(positions, at), len(positions) - 1)] == at
                candidates = candidates[(snapshot.rows[at] == candidates) & matching]
                if len(candidates) >= k or count >= total:
                    break
                count *= 4
        keys, matrix = read_vectors(self._db, candidates, len(query))
        at = np.minimum(np.searchsorted(snapshot.rows, keys), max(total - 1, 0))
        known = snapshot.rows[at] == keys if total else np.zeros(len(keys), dtype=bool)
        at, scores = at[known], matrix[known] @ query  # rows another process added since the snapshot wait for it
        best = np.argsort(-scores)[:k]
        return [(int(at[b]), float(scores[b])) for b in best]
