"""The SQL of rag/pgvector: one table per collection, its indexes, and PepperPy filters as SQL.

A collection is the table ``pepperpy_<collection>``: ``id`` (the primary key), ``text``,
``metadata`` (JSONB, GIN-indexed), ``embedding`` (``vector(<dimension>)``, HNSW-indexed for
cosine distance) and ``tsv``, a tsvector generated from ``text`` (GIN-indexed) for keyword
search. The table's comment records the embedding model, the dimension and the text search
configuration as JSON: a table without it is not a PepperPy store and is never written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from psycopg import sql

from pepperpy.rag import Filter

COLLECTION = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


def table_name(collection: str) -> str:
    return f"pepperpy_{collection}"


def create_table(table: str, dimension: int, text_search: str) -> sql.Composed:
    return sql.SQL(
        "CREATE TABLE {t} (id text PRIMARY KEY, text text NOT NULL, metadata jsonb NOT NULL, "
        "embedding vector({dimension}) NOT NULL, "
        "tsv tsvector GENERATED ALWAYS AS (to_tsvector({config}, text)) STORED)"
    ).format(t=sql.Identifier(table), dimension=sql.Literal(dimension), config=sql.Literal(text_search))


def create_indexes(table: str, m: int, ef_construction: int) -> list[sql.Composed]:
    """HNSW (cosine) on the vectors, GIN on the metadata and on the words."""
    t = sql.Identifier(table)
    return [
        sql.SQL("CREATE INDEX {i} ON {t} USING hnsw (embedding vector_cosine_ops) WITH (m = {m}, ef_construction = {e})")
        .format(i=sql.Identifier(f"{table}_embedding"), t=t, m=sql.Literal(m), e=sql.Literal(ef_construction)),
        sql.SQL("CREATE INDEX {i} ON {t} USING gin (metadata jsonb_path_ops)").format(
            i=sql.Identifier(f"{table}_metadata"), t=t
        ),
        sql.SQL("CREATE INDEX {i} ON {t} USING gin (tsv)").format(i=sql.Identifier(f"{table}_tsv"), t=t),
    ]


def comment(table: str, model: str, dimension: int, text_search: str) -> sql.Composed:
    note = json.dumps({"pepperpy_model": model, "dimension": dimension, "text_search": text_search})
    return sql.SQL("COMMENT ON TABLE {t} IS {note}").format(t=sql.Identifier(table), note=sql.Literal(note))


def where(filter: Filter | None, gin: bool = True) -> tuple[sql.Composable, list[Any]]:
    """``filter`` ({key: value or [values]}, keys ANDed) as a WHERE clause and its parameters.

    A value matches a metadata value equal to it as JSON (as in rag/local: ``2024`` is not
    ``"2024"``). With ``gin``, a containment test ``metadata @> {key: value}`` lets the GIN index
    find the candidates, the equality keeps the match exact (containment alone would also match a
    list holding the value). Without it, the equality alone: the same rows, and the GIN index
    cannot be used (so a nearest-neighbour query walks the HNSW index instead).
    """
    if not filter:
        return sql.SQL("TRUE"), []
    clauses: list[sql.Composable] = []
    params: list[Any] = []
    for key, wanted in filter.items():
        options = wanted if isinstance(wanted, list) else [wanted]
        if not options:
            return sql.SQL("FALSE"), []
        equal = sql.SQL("metadata -> %s = ANY(%s::jsonb[])")
        if gin:
            contains = sql.SQL(" OR ").join([sql.SQL("metadata @> %s::jsonb")] * len(options))
            clauses.append(sql.SQL("(({contains}) AND {equal})").format(contains=contains, equal=equal))
            params += [json.dumps({key: option}) for option in options]
        else:
            clauses.append(sql.SQL("({equal})").format(equal=equal))
        params += [key, [json.dumps(option) for option in options]]
    return sql.SQL(" AND ").join(clauses), params
