"""Opening a SQLite file that several processes share (the response cache, the call log).

A connection waits up to ``timeout`` seconds for the others (SQLite's busy handler). One step does
not wait by itself: switching a file to the WAL journal reads the file, then writes it, and when
another connection starts writing in between, SQLite answers SQLITE_BUSY at once (the busy handler
only covers a transaction's first lock). ``use_wal`` retries that step until ``timeout``.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

BUSY_TIMEOUT_S = 10.0


def connect(path: Path, timeout: float = BUSY_TIMEOUT_S) -> sqlite3.Connection:
    """An autocommit connection to ``path``, usable from any thread, waiting up to ``timeout`` for the others."""
    return sqlite3.connect(path, timeout=timeout, isolation_level=None, check_same_thread=False)


def use_wal(connection: sqlite3.Connection, timeout: float = BUSY_TIMEOUT_S) -> None:
    """Put the file in WAL mode (a no-op when it is already), with ``synchronous=NORMAL``; sqlite3.Error if it
    cannot be done within ``timeout`` seconds."""
    deadline, pause = time.monotonic() + timeout, 0.001
    while True:
        try:
            connection.execute("PRAGMA journal_mode = WAL")
            break
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode & 0xFF != sqlite3.SQLITE_BUSY or time.monotonic() + pause > deadline:
                raise
        time.sleep(pause)
        pause = min(pause * 2, 0.05)
    connection.execute("PRAGMA synchronous = NORMAL")


__all__ = ["BUSY_TIMEOUT_S", "connect", "use_wal"]
