"""The approximate index of a large rag/local store: usearch HNSW over int8 vectors, derived from SQLite.

SQLite stays the source of truth. Every write transaction bumps the store's ``generation``
(table ``meta``) and triggers record each changed row with that generation (table
``changes``). The index is two files beside the store: ``<store>.ann`` (usearch) and
``<store>.ann.json``, a stamp naming the store, the generation the index reflects and the
index file's size and CRC-32. An index is trusted only when its stamp matches byte for byte;
a missing, torn, foreign or newer-than-the-store index is rebuilt from SQLite, a stale one
catches up from ``changes``. Files are written under ``<store>.ann.lock`` to a temporary
name and renamed, so a process killed while saving leaves the old files (or none).

Search takes ``CANDIDATES`` approximate neighbours and ranks them exactly against the
float32 vectors read back from SQLite, so the int8 quantization costs little recall.
The graph compares int8 vectors by inner product: the store's vectors and queries are unit
length, so it ranks as cosine does, for a third of the arithmetic.
"""

from __future__ import annotations

import json
import os
import sqlite3
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from pepperpy.plugins import file_lock

FORMAT = 3  # 3: inner product (2: cosine, connectivity 24; 1: 16); an index of another format is rebuilt
# Measured on the kept 1M / 200k / 100k stores of scripts/bench.py rag-scale (clustered 384-d, connectivity 24,
# expansion_add 128), ranking the candidates exactly: with the cosine graph the true top 10 were among the first
# 32 candidates (recall@10 0.958 with 32, 0.9585 with 48 to 128); with inner product, 32 gave 0.945 against
# 0.960 with 48 (one build each; its int8 distances order the candidates less well). Each candidate is a row
# read back from SQLite: ~10 us from the page cache, a disk read when the file is not cached.
CANDIDATES = 48  # approximate neighbours ranked exactly per query
FILTERED_CANDIDATES = 32  # matching neighbours wanted from the index for a filtered query
EXPANSION_SEARCH = 160  # HNSW search width, at least; see expansion_search()
EXPANSION_AT_1M = 896
# 24 rather than usearch's default 16: at 1M and search width 768, recall@10 0.958 instead of 0.922,
# for a build +26% longer (1,400 vs 1,112 CPU-s) and RSS 915 MB instead of 889 (a reopened 1M store).
CONNECTIVITY = 24
# On 200k clustered 384-d vectors (connectivity 16): expansion_add 64 -> 128 lifted recall@10 from 0.952 to
# 0.988 at search width 256, at twice the build time.
EXPANSION_ADD = 128
# Rows read from SQLite per index.add: 20,000 raised the process's peak by 125 MB and left it 96 MB larger
# (fetched rows of 1.5 KB, joined); 5,000: 33 MB.
BUILD_BATCH = 5_000
SAVE_AFTER = 1_000  # changes caught up from the log before the files are saved again
LOCK_TIMEOUT_S = 600.0


def changes_schema() -> str:
    """The change log and the triggers that fill it; run inside the store's schema transaction."""
    log_row = (
        "INSERT INTO changes (row, generation) VALUES ({}.row, {}) "
        "ON CONFLICT(row) DO UPDATE SET generation = excluded.generation"
    )
    generation = "(SELECT CAST(value AS INTEGER) FROM meta WHERE key = 'generation')"
    return f"""
CREATE TABLE IF NOT EXISTS changes (row INTEGER PRIMARY KEY, generation INTEGER NOT NULL);
CREATE TRIGGER IF NOT EXISTS docs_inserted AFTER INSERT ON docs BEGIN {log_row.format("NEW", generation)}; END;
CREATE TRIGGER IF NOT EXISTS docs_updated AFTER UPDATE OF vector ON docs BEGIN {log_row.format("NEW", generation)}; END;
CREATE TRIGGER IF NOT EXISTS docs_deleted AFTER DELETE ON docs BEGIN {log_row.format("OLD", generation)}; END;
"""


def bump_generation(db: sqlite3.Connection) -> None:
    """Start a new generation; call first inside every write transaction."""
    db.execute(
        "INSERT INTO meta (key, value) VALUES ('generation', '1') "
        "ON CONFLICT(key) DO UPDATE SET value = CAST(value AS INTEGER) + 1"
    )
    db.execute("INSERT INTO meta (key, value) VALUES ('store', lower(hex(randomblob(16)))) ON CONFLICT(key) DO NOTHING")


def read_vectors(db: sqlite3.Connection, rows: np.ndarray, dimension: int) -> tuple[np.ndarray, np.ndarray]:
    """The float32 vectors of ``rows`` still in the store, as (rows found, matrix)."""
    found = db.execute(
        "SELECT row, vector FROM docs WHERE row IN (SELECT value FROM json_each(?))", (json.dumps(rows.tolist()),)
    ).fetchall()
    keys = np.fromiter((row for row, _ in found), dtype=np.int64, count=len(found))
    matrix = np.frombuffer(b"".join(vector for _, vector in found), dtype=np.float32).reshape(len(found), dimension)
    return keys, matrix


def expansion_search(size: int) -> int:
    """The HNSW search width for an index of ``size`` vectors: 160, growing in proportion past 179k (896 at 1M).

    Clustered vectors crowd closer as a store grows, so a fixed width finds fewer of the true
    neighbours; what recall is lost is mostly whole queries whose region of the graph is not reached.
    Recall@10 of ``scripts/bench.py rag-scale`` with inner product and 48 candidates ranked exactly:
    100k 1.000 and 200k 0.990 at width 160; at 1M (one graph, a reopened store) 768 -> 0.955, 896 -> 0.964,
    1024 -> 0.971, query p50 2.3-3.3 ms for all three (the machine's noise is larger than their difference);
    two other graphs gave 0.960 and 0.961 at 768. With cosine and 48 candidates (CPU per index search, one
    idle core):
    100k: 64 -> 0.985 (one query finds none of its neighbours), 96 -> 1.000, 128 -> 1.000 (1.4 ms);
    200k: 128 -> 0.982 (one query finds none), 154 -> 0.9975 (1.6 ms), 256 -> 0.9975 (2.8 ms);
    1M: 640 -> 0.948, 704 -> 0.9535, 768 -> 0.9585 (3.2 ms).
    """
    return max(EXPANSION_SEARCH, EXPANSION_AT_1M * size // 1_000_000)


def _crc(path: Path) -> int:
    crc = 0
    with path.open("rb") as file:
        while block := file.read(1 << 22):
            crc = zlib.crc32(block, crc)
    return crc


class AnnIndex:
    """The usearch index of one store, kept in step with it; call every method with the store's lock held."""

    def __init__(self, store_path: Path, dimension: int, logger: Any):
        self.logger = logger  # the provider's (loguru, silent until ``logger.enable("pepperpy")``)
        self.file = store_path.with_name(store_path.name + ".ann")
        self.stamp_file = store_path.with_name(store_path.name + ".ann.json")
        self.lock_file = store_path.with_name(store_path.name + ".ann.lock")
        self.dimension = dimension
        self.generation = -1
        self.store_id = ""
        self._index: Any = None
        self._unsaved = 0

    # keeping in step ------------------------------------------------------------------------------

    def sync(self, db: sqlite3.Connection, count: int) -> None:
        """Bring the index to the store's current generation (call inside a read transaction)."""
        meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN ('generation', 'store')").fetchall())
        generation, store_id = int(meta.get("generation", 0)), meta.get("store", "")
        if self._index is None or store_id != self.store_id or generation < self.generation:
            self._open(db, generation, store_id)
        if generation > self.generation:
            self._catch_up(db, generation)
        if len(self._index) != count:  # cannot happen with a sound log; never trust a mismatch
            self.logger.warning(
                "the index {} holds {} vectors, the store {}: rebuilding it", self.file, len(self._index), count
            )
            self._build(db, generation, store_id)
        if self._unsaved >= SAVE_AFTER:
            self._save()

    def _open(self, db: sqlite3.Connection, generation: int, store_id: str) -> None:
        with file_lock(self.lock_file, LOCK_TIMEOUT_S):
            problem = self._load(generation, store_id)
        if problem:
            self.logger.info(
                "the index {} {}: building it from the store (about 20 s per 100k chunks on 2 idle cores)",
                self.file, problem,
            )
            self._build(db, generation, store_id)

    def _load(self, generation: int, store_id: str) -> str:
        """Load the saved index if its stamp proves it sound; else say why not ('' when loaded)."""
        try:
            stamp = json.loads(self.stamp_file.read_text())
            size = self.file.stat().st_size
        except FileNotFoundError:
            return "is missing"
        except (OSError, ValueError) as exc:
            return f"has an unreadable stamp ({exc})"
        expected = {"format": FORMAT, "store": store_id, "dimension": self.dimension, "size": size}
        if not isinstance(stamp, dict) or any(stamp.get(key) != value for key, value in expected.items()):
            return "belongs to another store, format or size"
        if not isinstance(stamp.get("generation"), int) or stamp["generation"] > generation:
            return "is newer than the store"
        if stamp.get("crc32") != _crc(self.file):
            return "is torn or damaged (checksum mismatch)"
        index = self._new_index()
        try:
            index.load(str(self.file))
        except Exception as exc:  # usearch raises plain RuntimeError/ValueError on a bad file
            return f"cannot be loaded ({exc})"
        self._index, self.generation, self.store_id, self._unsaved = index, stamp["generation"], store_id, 0
        return ""

    def _new_index(self) -> Any:
        from usearch.index import Index

        # Inner product, not cosine: the store's vectors and queries are unit length (the provider normalizes
        # them), so both rank alike, and SimSIMD's int8 inner product is one product per dimension where its
        # cosine is three. On 1M clustered vectors (one process, both indexes loaded, queries alternated):
        # build 389 CPU-s instead of 584; search at width 768 1.75 ms instead of 2.32 (recall@10 of 48
        # candidates ranked exactly 0.938 vs 0.9485, so the width grows to match: see expansion_search()).
        return Index(
            ndim=self.dimension, metric="ip", dtype="i8",
            connectivity=CONNECTIVITY, expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH,
        )

    def _build(self, db: sqlite3.Connection, generation: int, store_id: str) -> None:
        index = self._new_index()
        for keys, matrix in self._batches(db.execute("SELECT row, vector FROM docs ORDER BY row")):
            index.add(keys, matrix)
        self._index, self.generation, self.store_id = index, generation, store_id
        self._save(replace=True)

    def _batches(self, cursor: sqlite3.Cursor) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while rows := cursor.fetchmany(BUILD_BATCH):
            keys = np.fromiter((row for row, _ in rows), dtype=np.int64, count=len(rows))
            vectors = b"".join(vector for _, vector in rows)
            yield keys, np.frombuffer(vectors, dtype=np.float32).reshape(len(rows), self.dimension)

    def _catch_up(self, db: sqlite3.Connection, generation: int) -> None:
        changed = [row for (row,) in db.execute("SELECT row FROM changes WHERE generation > ?", (self.generation,))]
        index = self._index
        stale = [row for row in changed if index.contains(row)]
        if stale:
            index.remove(stale)
        for start in range(0, len(changed), BUILD_BATCH):
            keys, matrix = read_vectors(db, np.array(changed[start : start + BUILD_BATCH], dtype=np.int64), self.dimension)
            if len(keys):
                index.add(keys, matrix)
        self.generation = generation
        self._unsaved += len(changed)

    def _save(self, replace: bool = False) -> None:
        """Write the files under the lock: temporary names first, then renamed; the stamp last.

        Unless ``replace`` (after a build: the files on disk were found unsound), files another
        process saved at a newer generation are kept.
        """
        with file_lock(self.lock_file, LOCK_TIMEOUT_S):
            for leftover in self.file.parent.glob(self.file.name + ".tmp-*"):  # of a process killed while saving
                leftover.unlink(missing_ok=True)
            try:
                on_disk = json.loads(self.stamp_file.read_text())
                newer = on_disk.get("store") == self.store_id and on_disk.get("generation", -1) > self.generation
                if newer and not replace:
                    self._unsaved = 0
                    return  # another process saved this generation or a newer one
            except (OSError, ValueError, AttributeError):
                pass
            temporary = self.file.with_name(f"{self.file.name}.tmp-{os.getpid()}")
            self._index.save(str(temporary))
            stamp = {
                "format": FORMAT, "store": self.store_id, "generation": self.generation,
                "dimension": self.dimension, "size": temporary.stat().st_size, "crc32": _crc(temporary),
            }
            stamp_temporary = self.stamp_file.with_name(f"{self.file.name}.tmp-{os.getpid()}.json")
            stamp_temporary.write_text(json.dumps(stamp))
            os.replace(temporary, self.file)
            os.replace(stamp_temporary, self.stamp_file)
            self._unsaved = 0

    # searching --------------------------------------------------------------------------------------

    def candidates(self, query: np.ndarray, count: int) -> np.ndarray:
        """Up to ``count`` approximate nearest rows of ``query``."""
        index = self._index
        count = min(count, len(index))
        if count == 0:
            return np.empty(0, dtype=np.int64)
        index.expansion_search = max(expansion_search(len(index)), count)
        # threads=1: one query gains nothing from usearch's worker pool (interleaved A/B on the 100k and
        # 1M stores, load 11-14: wall p50 8% lower, CPU 3-5% lower, p99 no better).
        return np.asarray(index.search(query, count, threads=1).keys, dtype=np.int64)
