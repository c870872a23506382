"""rag/pgvector: a collection in PostgreSQL with pgvector, the same contract as rag/local and rag/chroma.

One connection (psycopg 3, autocommit) per provider; its calls take turns, and every write is
one transaction, so several providers, processes or machines may write one collection at
once (rows are upserted in id order, so two writers never deadlock). The table is created by
the first add, once its vectors' dimension is known, with that add's rows loaded before the
indexes are built (several times faster than growing the HNSW graph row by row), under an
advisory lock (two first adds do not race). Search is approximate (HNSW, cosine) with ``ef_search`` candidates and
pgvector's iterative scan; a filter that few rows pass is answered exactly from the metadata index.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from psycopg import sql
from pydantic import Field, SecretStr

from pepperpy.embeddings import Vector
from pepperpy.errors import ConfigError, ProviderError
from pepperpy.ranking import words
from pepperpy.rag import Document, Filter, RAGProvider, SearchResult, check_same_embeddings, check_vectors

from .connection import PgVector, describe, password_of, redact, register_vector
from .sql import COLLECTION, comment, create_indexes, create_table, table_name, where

RARE_FILTERS = 1000  # filters that few rows pass, remembered (forgotten all at once beyond)...
RARE_FOR = 60.0  # ... for this many seconds (the table grows; the HNSW walk is tried again)
DSN_SETTING = "dsn= (or the PEPPERPY_PG_DSN environment variable, or libpq's PGHOST/PGPORT/PGUSER/PGPASSWORD/PGDATABASE)"


class PgvectorRAGProvider(RAGProvider):
    """The table ``pepperpy_<collection>`` of the database ``dsn`` points to."""

    dsn: SecretStr | None = Field(None, description="a libpq connection string or postgresql:// URI")
    collection: str = "default"
    text_search: str = Field("english", description="the text search configuration of the keyword column")
    ef_search: int = Field(100, ge=1, le=1000, description="HNSW candidates per query (recall against speed)")
    filtered_ef_search: int = Field(
        400, ge=1, le=1000, description="HNSW candidates per filtered query (the filter leaves only some of them)"
    )
    filter_scan_rows: int = Field(
        2000, ge=1, description="rows a filtered search walks in the HNSW graph before it turns to the metadata index"
    )
    hnsw_m: int = Field(16, ge=2, le=100)
    hnsw_ef_construction: int = Field(64, ge=4, le=1000)
    index_build_memory: str = Field("512MB", description="maintenance_work_mem while the first add builds the index")
    connect_timeout: int = Field(10, ge=1)

    @property
    def table(self) -> str:
        return table_name(self.collection)

    @property
    def where(self) -> str:
        return f"table {self.table!r} of the PostgreSQL database {describe(self._dsn)}"

    @property
    def _dsn(self) -> str:
        return self.dsn.get_secret_value() if self.dsn else ""

    async def initialize(self) -> None:
        if not COLLECTION.match(self.collection):
            raise ConfigError(
                f"{self.plugin_id}: collection={self.collection!r} is not a valid name; use lowercase letters, "
                "digits and _ (starting with a letter, at most 40)"
            )
        self._meta: dict[str, Any] | None = None  # the table's comment, once the table exists
        self._rare_filters: dict[str, float] = {}  # filter -> until when it goes to the GIN index at once
        self._turn = asyncio.Lock()
        self._connection = await self._connect()

    async def _connect(self) -> Any:
        import psycopg

        try:
            connection = await psycopg.AsyncConnection.connect(
                self._dsn, autocommit=True, connect_timeout=self.connect_timeout
            )
        except psycopg.ProgrammingError as exc:  # libpq cannot parse the DSN (its message quotes it)
            raise ConfigError(
                f"{self.plugin_id}: the DSN is not a valid connection string ({self._redact(exc)}); "
                f"fix {DSN_SETTING}: 'postgresql://user:password@host:5432/dbname' or 'host=... dbname=...'"
            ) from None
        except psycopg.Error as exc:
            raise ProviderError(
                f"{self.plugin_id}: cannot connect to the PostgreSQL database {describe(self._dsn)} "
                f"({self._redact(exc)}); check that the server is running and reachable, and fix {DSN_SETTING}"
            ) from None
        try:
            await self._prepare(connection)
        except BaseException:
            await connection.close()
            raise
        return connection

    async def _prepare(self, connection: Any) -> None:
        """Make sure the database has pgvector; send vectors in binary; set the search options."""
        import psycopg

        installed = await (await connection.execute("SELECT 1 FROM pg_extension WHERE extname = 'vector'")).fetchone()
        if not installed:
            try:
                await connection.execute("CREATE EXTENSION IF NOT EXISTS vector")
            except psycopg.Error as exc:
                raise ConfigError(
                    f"{self.plugin_id}: the PostgreSQL database {describe(self._dsn)} has no pgvector extension and "
                    f"it cannot be created ({self._redact(exc)}); install pgvector on the server and run "
                    "`CREATE EXTENSION vector;` in that database as its owner or a superuser, or point "
                    f"{DSN_SETTING} to a database that has it"
                ) from None
        oid = (await (await connection.execute("SELECT 'vector'::regtype::oid")).fetchone())[0]
        register_vector(connection, oid)
        self._vector_oid = oid
        await connection.execute(f"SET hnsw.ef_search = {int(self.ef_search)}")
        await connection.execute("SET hnsw.iterative_scan = strict_order")
        await connection.execute(f"SET hnsw.max_scan_tuples = {int(self.filter_scan_rows)}")
        connection.add_notice_handler(self._notice)

    def _notice(self, diagnostic: Any) -> None:
        """pgvector's notice that the index build outgrew its memory becomes a warning saying what to change."""
        message = diagnostic.message_primary or ""
        if "no longer fits into maintenance_work_mem" in message:
            self.logger.warning(
                "{}: building the HNSW index of the {}: {}; the rest of the index is built row by row, several "
                "times slower: raise index_build_memory= (now {}; the graph takes about 2 KB per 384-d vector)",
                self.plugin_id, self.where, message, self.index_build_memory,
            )

    async def cleanup(self) -> None:
        connection, self._connection = self._connection, None
        await connection.close()

    def _redact(self, exc: BaseException) -> str:
        return redact(str(exc).strip(), self._dsn, password_of(self._dsn))  # libpq may quote a DSN it cannot parse

    @asynccontextmanager
    async def _using(self, doing: str) -> AsyncIterator[Any]:
        """The connection, for one operation at a time; driver errors become a ProviderError naming the table."""
        import psycopg

        async with self._turn:
            try:
                yield self._connection
            except psycopg.OperationalError as exc:
                raise ProviderError(
                    f"{self.plugin_id}: the {self.where} failed to {doing} ({self._redact(exc)}); check that the "
                    "server is running and reachable, then open the store again"
                ) from None
            except psycopg.Error as exc:
                raise ProviderError(
                    f"{self.plugin_id}: the {self.where} failed to {doing} ({type(exc).__name__}: "
                    f"{self._redact(exc)}); check the server's log"
                ) from None

    async def _read_meta(self, connection: Any) -> dict[str, Any] | None:
        """The table's PepperPy comment (model, dimension, text search); None while the table does not exist."""
        if self._meta is not None:
            return self._meta
        row = await (await connection.execute(
            "SELECT to_regclass(%s) IS NOT NULL, obj_description(to_regclass(%s), 'pg_class')",
            [f'public."{self.table}"', f'public."{self.table}"'],
        )).fetchone()
        exists, note = row
        if not exists:
            return None
        try:
            meta = json.loads(note or "")
            meta["pepperpy_model"], int(meta["dimension"])
        except (ValueError, TypeError, KeyError):
            raise ConfigError(
                f"{self.plugin_id}: the {self.where} exists but is not a PepperPy store (its comment does not "
                "record an embedding model); rag/pgvector leaves it untouched: pass another collection="
            ) from None
        self._meta = meta
        return meta

    def _check_model(self, meta: dict[str, Any] | None, dimension: int) -> None:
        stored = None if meta is None else (meta["pepperpy_model"], int(meta["dimension"]))
        check_same_embeddings(self.plugin_id, self.where, stored, (self.embedding_model, dimension))

    async def _create_table(
        self, connection: Any, dimension: int, documents: list[Document], vectors: list[Vector]
    ) -> bool:
        """Create the table with ``documents`` in it, then its indexes, in one transaction; False (nothing done) when
        another writer made the table first.

        Building the HNSW index over the first add's rows at once is several times faster than growing it row by
        row (a first add is often a whole folder). Writers take turns on a session advisory lock and check again
        in a transaction begun after they got it (one begun before would not see the table another just made)."""
        await connection.execute("SELECT pg_advisory_lock(hashtext(%s))", [self.table])
        try:
            async with connection.transaction():
                if await self._read_meta(connection) is not None:
                    return False
                await connection.execute(create_table(self.table, dimension, self.text_search))
                await self._upsert(connection, documents, vectors)
                await connection.execute(
                    sql.SQL("SET LOCAL maintenance_work_mem = {}").format(sql.Literal(self.index_build_memory))
                )
                for statement in create_indexes(self.table, self.hnsw_m, self.hnsw_ef_construction):
                    await connection.execute(statement)
                await connection.execute(comment(self.table, self.embedding_model, dimension, self.text_search))
        finally:
            await connection.execute("SELECT pg_advisory_unlock(hashtext(%s))", [self.table])
        self._meta = None  # read back after the commit
        return True

    async def _upsert(self, connection: Any, documents: list[Document], vectors: list[Vector]) -> None:
        """Insert or update ``documents``; call in a transaction.

        The rows go to a temporary table with one binary COPY (each vector turned into pgvector's binary form as
        it is sent, so the add's rows are never held twice), then into the table with one INSERT ... SELECT."""
        await connection.execute(
            "CREATE TEMP TABLE pepperpy_incoming (id text, text text, metadata jsonb, embedding vector, n int) "
            "ON COMMIT DROP"
        )
        cursor = connection.cursor()
        async with cursor.copy("COPY pepperpy_incoming FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "text", "jsonb", self._vector_oid, "int4"])
            for n, (document, vector) in enumerate(zip(documents, vectors)):
                await copy.write_row((document.id, document.text, document.metadata, PgVector(vector), n))
        # The last of repeated ids wins, as in rag/local; inserting in id order keeps concurrent writers of the
        # same ids from deadlocking.
        await connection.execute(sql.SQL(
            "INSERT INTO {t} (id, text, metadata, embedding) "
            "SELECT DISTINCT ON (id) id, text, metadata, embedding FROM pepperpy_incoming ORDER BY id, n DESC "
            "ON CONFLICT (id) DO UPDATE SET text = excluded.text, metadata = excluded.metadata, "
            "embedding = excluded.embedding"
        ).format(t=sql.Identifier(self.table)))

    async def add(self, documents: list[Document], vectors: list[Vector] | None = None) -> None:
        if not documents:
            return
        vectors = vectors if vectors is not None else await self.embed_texts([d.text for d in documents])
        check_vectors(self.plugin_id, documents, vectors)
        dimension = len(vectors[0])
        async with self._using("add") as connection:
            meta = await self._read_meta(connection)
            self._check_model(meta, dimension)
            if meta is None and await self._create_table(connection, dimension, documents, vectors):
                return
            self._check_model(await self._read_meta(connection), dimension)
            async with connection.transaction():
                await self._upsert(connection, documents, vectors)

    async def search(self, query: str | Vector, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        """The ``k`` nearest documents (HNSW). A filtered search walks the HNSW graph first, keeping the rows that
        pass (pgvector's iterative scan, at most ``filter_scan_rows`` of them); when that finds fewer than ``k``,
        few rows pass, and the metadata (GIN) index finds them all and ranks them exactly (and does so at once for
        that filter for the next minute: such a filter is often one file's chunks)."""
        vector = await self.query_vector(query)
        async with self._using("search") as connection:
            meta = await self._read_meta(connection)
            self._check_model(meta, len(vector))
            if meta is None:
                return []
            point = PgVector(vector)
            key = json.dumps(filter, sort_keys=True) if filter else ""
            if time.monotonic() < self._rare_filters.get(key, 0.0):
                return self._results(await self._nearest(connection, point, k, filter, gin=True))
            found = await self._nearest(connection, point, k, filter, gin=False)
            if filter and len(found) < k:
                found = await self._nearest(connection, point, k, filter, gin=True)
                if len(self._rare_filters) >= RARE_FILTERS:
                    self._rare_filters.clear()
                self._rare_filters[key] = time.monotonic() + RARE_FOR
        return self._results(found)

    @staticmethod
    def _results(found: list) -> list[SearchResult]:
        return [SearchResult(document=Document(id=i, text=t, metadata=m), score=float(s)) for i, t, m, s in found]

    async def _nearest(self, connection: Any, point: PgVector, k: int, filter: Filter | None, gin: bool) -> list:
        condition, params = where(filter, gin)
        statement = sql.SQL(
            "SELECT id, text, metadata, 1 - (embedding <=> %s) FROM {t} WHERE {c} ORDER BY embedding <=> %s LIMIT %s"
        ).format(t=sql.Identifier(self.table), c=condition)
        if not filter or gin:
            return await (await connection.execute(statement, [point, *params, point, k])).fetchall()
        async with connection.transaction():  # the HNSW walk of a filtered search, with its own candidate count
            await connection.execute(f"SET LOCAL hnsw.ef_search = {int(self.filtered_ef_search)}")
            return await (await connection.execute(statement, [point, *params, point, k])).fetchall()

    async def keyword_search(self, query: str, k: int = 5, filter: Filter | None = None) -> list[SearchResult]:
        """The ``k`` documents whose text best matches the words of ``query``, best first (Postgres full text search
        over the ``tsv`` column, ranked by ``ts_rank``, the score). As in rag/local, each word of the query
        (``pepperpy.ranking.words``: codes such as ``E_CONN-42`` stay whole) is a phrase of its lexemes, and any
        word matches (OR); the query is never tsquery syntax. A query of stop words alone finds nothing."""
        terms = list(dict.fromkeys(words(query)))
        if not terms or k <= 0:
            return []
        condition, params = where(filter)
        statement = sql.SQL(
            "WITH q AS (SELECT string_agg('(' || p::text || ')', ' | ')::tsquery AS query FROM "
            "(SELECT phraseto_tsquery({config}, term) AS p FROM unnest(%s::text[]) AS term) AS phrases "
            "WHERE p::text <> '') "
            "SELECT id, text, metadata, ts_rank(tsv, q.query) AS rank FROM {t}, q "
            "WHERE q.query IS NOT NULL AND tsv @@ q.query AND {c} ORDER BY rank DESC, id LIMIT %s"
        )
        async with self._using("search") as connection:
            meta = await self._read_meta(connection)
            if meta is None:
                return []
            statement = statement.format(
                config=sql.Literal(meta.get("text_search", self.text_search)), t=sql.Identifier(self.table),
                c=condition,
            )
            found = await (await connection.execute(statement, [terms, *params, k])).fetchall()
        return self._results(found)

    async def delete(self, ids: list[str]) -> None:
        async with self._using("delete") as connection:
            if await self._read_meta(connection) is None:
                return
            await connection.execute(
                sql.SQL("DELETE FROM {t} WHERE id = ANY(%s)").format(t=sql.Identifier(self.table)), [list(ids)]
            )

    async def count(self) -> int:
        async with self._using("count") as connection:
            if await self._read_meta(connection) is None:
                return 0
            row = await (await connection.execute(
                sql.SQL("SELECT count(*) FROM {t}").format(t=sql.Identifier(self.table))
            )).fetchone()
        return int(row[0])

    async def ids(self, filter: Filter) -> list[str]:
        condition, params = where(filter)
        async with self._using("list ids") as connection:
            if await self._read_meta(connection) is None:
                return []
            found = await (await connection.execute(
                sql.SQL("SELECT id FROM {t} WHERE {c} ORDER BY id").format(t=sql.Identifier(self.table), c=condition),
                params,
            )).fetchall()
        return [row[0] for row in found]
