"""rag/local's keyword search: an SQLite FTS5 index of the documents' text, ranked by BM25.

The index (``docs_words``) is an external-content FTS5 table over ``docs``, kept in step inside the
same transaction as every write: ``Store.upsert`` indexes the rows it wrote with one statement
(``forget_words`` before, ``index_words`` after: a row trigger would make FTS5 flush a segment per
row, 6x slower), and a trigger removes deleted rows. So a write is still one transaction and a
process killed mid-add leaves the index and the documents in step. A store file from before keyword
search gets the index (built from its rows) when it is first opened, in one transaction; one from
before the bulk indexing loses its insert and update triggers then. Queries are the user's words
(``pepperpy.ranking.query_words``: English stop words left out), each quoted as an FTS5 string (so
``E_CONN-42``, quotes, ``AND``/``NOT``/``NEAR`` and ``*`` are plain words, never FTS5 syntax) and ORed.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from typing import Any

from pepperpy.ranking import query_words

# The tables FTS5 keeps for the index, with their columns (check_schema accepts them).
WORD_COLUMNS = {
    "docs_words": {"text"},
    "docs_words_data": {"id", "block"},
    "docs_words_idx": {"segid", "term", "pgno"},
    "docs_words_docsize": {"id", "sz"},
    "docs_words_config": {"k", "v"},
}
# Porter stemming: "dances" finds "dance"; unicode61 splits E_CONN-42 into e, conn, 42 (queried as one phrase).
WORD_INDEX = (
    """CREATE VIRTUAL TABLE docs_words USING fts5(
        text, content='docs', content_rowid='row', tokenize='porter unicode61 remove_diacritics 2'
    )""",
    """CREATE TRIGGER docs_words_delete AFTER DELETE ON docs BEGIN
        INSERT INTO docs_words (docs_words, rowid, text) VALUES ('delete', old.row, old.text);
    END""",
    "INSERT INTO docs_words (docs_words) VALUES ('rebuild')",  # index the rows a store from before holds
)
ROW_TRIGGERS = ("docs_words_insert", "docs_words_update")  # of stores from before the bulk indexing
SELECTED = "SELECT row, text FROM docs WHERE id IN (SELECT value FROM json_each(?))"
KEYWORD_SEARCH = """
SELECT d.id, d.text, d.metadata, -bm25(docs_words) FROM docs_words JOIN docs AS d ON d.row = docs_words.rowid
WHERE docs_words MATCH ? ORDER BY rank
"""


def ensure_word_index(db: sqlite3.Connection) -> None:
    """Create the keyword index (and fill it from the stored rows) unless the file has it, and drop the row
    triggers of a store from before the bulk indexing; one transaction."""
    db.execute("BEGIN IMMEDIATE")
    try:
        held = db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'docs_words'").fetchone()
        if held is None:
            for statement in WORD_INDEX:  # one by one: executescript would commit the open transaction
                db.execute(statement)
        for trigger in ROW_TRIGGERS:
            db.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        db.execute("COMMIT")
    except BaseException:
        if db.in_transaction:
            db.execute("ROLLBACK")
        raise


def has_row_triggers(db: sqlite3.Connection) -> bool:
    """Whether the file still has the per-row index triggers (a store from before the bulk indexing)."""
    names = ",".join(f"'{name}'" for name in ROW_TRIGGERS)
    return db.execute(f"SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name IN ({names})").fetchone() is not None


def forget_words(db: sqlite3.Connection, ids: str) -> None:
    """Take the rows with these ids (a JSON list) out of the index; inside the write, before they change."""
    db.execute(f"INSERT INTO docs_words (docs_words, rowid, text) SELECT 'delete', row, text FROM ({SELECTED})", (ids,))


def index_words(db: sqlite3.Connection, ids: str) -> None:
    """Index the rows with these ids (a JSON list); inside the write, after they were written."""
    db.execute(f"INSERT INTO docs_words (rowid, text) {SELECTED}", (ids,))


def match_expression(query: str) -> str | None:
    """``query``'s words (stop words left out) as an FTS5 expression, each one a quoted string, ORed; None when
    it has no word."""
    terms = query_words(query)
    return " OR ".join('"' + term.replace('"', '""') + '"' for term in terms) or None


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def matches(metadata: dict[str, Any], filter: dict[str, Any]) -> bool:
    """The rule of the metadata index: every key equal to the value, or to one of a list's values."""
    for key, wanted in filter.items():
        if key not in metadata:
            return False
        options = wanted if isinstance(wanted, list) else [wanted]
        if _key(metadata[key]) not in {_key(option) for option in options}:
            return False
    return True


def keyword_rows(
    db: sqlite3.Connection, query: str, k: int, filter: dict[str, Any] | None
) -> list[tuple[str, str, dict, float]]:
    """The ``k`` rows best matching ``query``'s words by BM25, as (id, text, metadata, score), higher is better."""
    expression = match_expression(query)
    if expression is None or k <= 0:
        return []
    found: list[tuple[str, str, dict, float]] = []
    rows: Iterator[tuple[str, str, str, float]] = db.execute(KEYWORD_SEARCH, (expression,))
    for identifier, text, metadata, score in rows:  # best first; read lazily until k pass the filter
        parsed = json.loads(metadata)
        if filter and not matches(parsed, filter):
            continue
        found.append((identifier, text, parsed, score))
        if len(found) == k:
            break
    return found
