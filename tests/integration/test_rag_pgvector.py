"""rag/pgvector beyond the shared store contract (tests/integration/test_rag_stores.py), on a real PostgreSQL with
pgvector (fixture `postgres_dsn`): bad settings, a secret DSN, a foreign table, writers in several processes, filtered
approximate search and keyword search."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from pepperpy import Document, PepperPy
from pepperpy.errors import ConfigError, ProviderError
from tests.integration.conftest import free_port
from tests.servers.postgres import PASSWORD

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def manager(chroma_manager):
    chroma_manager.load_class("rag", "pgvector")  # installs psycopg into the plugin's env, as a user's first use does
    return chroma_manager


@pytest.fixture
def collection(request) -> str:
    return f"t{hashlib.sha1(request.node.name.encode()).hexdigest()[:12]}"


def superuser(dsn: str):
    import psycopg  # from rag/pgvector's env, loaded by the `manager` fixture

    return psycopg.connect(dsn, autocommit=True)


def unit_vectors(count: int, seed: int = 0) -> list[list[float]]:
    import numpy as np

    rng = np.random.default_rng(seed)
    vectors = rng.standard_normal((count, 16)).astype(np.float32)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).tolist()


async def test_a_wrong_password_names_the_server_and_the_setting_but_not_the_password(manager, postgres_dsn):
    wrong = postgres_dsn.replace(PASSWORD, "xxx-wrong-secret-not-real")
    port = postgres_dsn.rsplit(":", 1)[1].split("/")[0]
    with pytest.raises(ProviderError) as caught:
        async with PepperPy(plugin_manager=manager).with_rag("pgvector", dsn=wrong):
            pass
    message = str(caught.value)
    assert f"cannot connect to the PostgreSQL database postgresql://postgres@127.0.0.1:{port}/postgres" in message
    assert "password authentication failed" in message and "PEPPERPY_PG_DSN" in message
    assert "xxx-wrong-secret-not-real" not in message and PASSWORD not in message


async def test_a_server_that_is_down_is_named(manager):
    port = free_port()
    dsn = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{port}/postgres"
    with pytest.raises(ProviderError, match=rf"postgresql://postgres@127\.0\.0\.1:{port}/postgres .*refused") as caught:
        async with PepperPy(plugin_manager=manager).with_rag("pgvector", dsn=dsn, connect_timeout=2):
            pass
    assert PASSWORD not in str(caught.value)


async def test_a_malformed_dsn_is_a_config_error_without_the_password(manager):
    bad = f"postgresql//postgres:{PASSWORD}@127.0.0.1/postgres"  # "://" mistyped: libpq quotes the whole string
    with pytest.raises(ConfigError, match=r"the DSN is not a valid connection string .*fix dsn=") as caught:
        async with PepperPy(plugin_manager=manager).with_rag("pgvector", dsn=bad):
            pass
    assert PASSWORD not in str(caught.value)


async def test_the_dsn_is_a_secret_in_reprs_and_comes_from_pepperpy_pg_dsn(manager, postgres_dsn, collection,
                                                                           monkeypatch):
    monkeypatch.setenv("PEPPERPY_PG_DSN", postgres_dsn)
    async with PepperPy(plugin_manager=manager).with_rag("pgvector", collection=collection) as pepper:
        store = pepper.rag.provider
        assert PASSWORD not in repr(store) and PASSWORD not in store.where
        await pepper.rag.add([Document(id="a", text="Stored through the DSN from the environment.")])
        assert await pepper.rag.count() == 1


async def test_a_database_without_pgvector_that_cannot_create_it_says_what_to_do(manager, postgres_dsn):
    plain_password = "xxx-plain-secret-not-real"
    with superuser(postgres_dsn) as admin:
        admin.execute("DROP DATABASE IF EXISTS noext")
        admin.execute("CREATE DATABASE noext")
        admin.execute("DROP ROLE IF EXISTS plain")
        admin.execute(f"CREATE ROLE plain LOGIN PASSWORD '{plain_password}'")
    port = postgres_dsn.rsplit(":", 1)[1].split("/")[0]
    dsn = f"postgresql://plain:{plain_password}@127.0.0.1:{port}/noext"
    with pytest.raises(ConfigError) as caught:
        async with PepperPy(plugin_manager=manager).with_rag("pgvector", dsn=dsn):
            pass
    message = str(caught.value)
    assert f"the PostgreSQL database postgresql://plain@127.0.0.1:{port}/noext has no pgvector extension" in message
    assert "CREATE EXTENSION vector" in message and plain_password not in message
    with superuser(postgres_dsn.rsplit("/", 1)[0] + "/noext") as admin:
        assert admin.execute("SELECT count(*) FROM pg_extension WHERE extname = 'vector'").fetchone()[0] == 0


async def test_a_table_that_is_not_a_store_is_refused_and_left_alone(manager, postgres_dsn):
    with superuser(postgres_dsn) as admin:
        admin.execute("DROP TABLE IF EXISTS pepperpy_theirs")
        admin.execute("CREATE TABLE pepperpy_theirs (x int)")
        admin.execute("INSERT INTO pepperpy_theirs VALUES (1)")
    async with PepperPy(plugin_manager=manager).with_rag("pgvector", dsn=postgres_dsn, collection="theirs") as pepper:
        with pytest.raises(ConfigError, match=r"table 'pepperpy_theirs' .* is not a PepperPy store.*another collection="):
            await pepper.rag.add([Document(id="a", text="Anything.")])
    with superuser(postgres_dsn) as admin:
        assert admin.execute("SELECT x FROM pepperpy_theirs").fetchall() == [(1,)]


async def test_a_bad_collection_name_is_refused(manager, postgres_dsn):
    with pytest.raises(ConfigError, match=r"collection='My-Table' is not a valid name"):
        async with PepperPy(plugin_manager=manager).with_rag("pgvector", dsn=postgres_dsn, collection="My-Table"):
            pass


WRITER = textwrap.dedent("""
    import asyncio, sys
    sys.path.insert(0, sys.argv[1])
    from pepperpy import Document
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
    from tests.integration.test_rag_pgvector import unit_vectors

    async def main(home, dsn, collection, writer):
        manager = PluginManager(search_paths=[builtin_plugins_dir()], home=home)
        store = manager.create_provider("rag", "pgvector", dsn=dsn, collection=collection)
        await store.initialize()
        for batch in range(5):
            # own ids, and ids every writer shares (given in another order by each): upserts that meet
            ids = [f"w{writer}-{batch}-{i}" for i in range(40)] + [f"shared-{i}" for i in range(20)]
            ids = ids if writer % 2 else ids[::-1]
            docs = [Document(id=i, text=f"written by {writer}", metadata={"writer": writer}) for i in ids]
            await store.add(docs, vectors=unit_vectors(len(docs), seed=writer * 10 + batch))
        await store.cleanup()

    asyncio.run(main(*sys.argv[2:5], int(sys.argv[5])))
""")


async def test_several_processes_write_one_new_collection_at_once(manager, postgres_dsn, collection, session_home):
    """Four processes race to create the table and then upsert overlapping ids: none fails, nothing is lost."""
    writers = [
        subprocess.Popen([sys.executable, "-c", WRITER, str(ROOT), str(session_home), postgres_dsn, collection, str(n)],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for n in range(4)
    ]
    outputs = [writer.communicate(timeout=300)[0] for writer in writers]
    assert [writer.returncode for writer in writers] == [0] * 4, outputs
    async with manager.create_provider("rag", "pgvector", dsn=postgres_dsn, collection=collection) as store:
        assert await store.count() == 4 * 5 * 40 + 20
        assert len(await store.ids({"writer": 2})) >= 5 * 40


async def test_connections_in_one_process_upsert_the_same_ids_in_opposite_orders(manager, postgres_dsn, collection):
    stores = [manager.create_provider("rag", "pgvector", dsn=postgres_dsn, collection=collection) for _ in range(3)]
    for store in stores:
        await store.initialize()
    try:
        docs = [Document(id=f"d{i}", text=f"document {i}") for i in range(300)]

        async def write(n: int) -> None:
            ordered = docs if n % 2 else docs[::-1]
            for _ in range(3):
                await stores[n].add(ordered, vectors=unit_vectors(len(ordered), seed=n))

        await asyncio.gather(*(write(n) for n in range(3)))
        assert await stores[0].count() == 300
    finally:
        for store in stores:
            await store.cleanup()


async def test_a_filter_few_rows_pass_still_finds_k_of_them(manager, postgres_dsn, collection):
    """HNSW alone would keep the filter's matches among its first ef_search candidates (about 1 here); the iterative
    scan goes on until k rows pass. The filter stays exact."""
    vectors = unit_vectors(3000, seed=1)
    docs = [Document(id=f"r{i}", text=f"row {i}", metadata={"group": i % 100, "tags": ["x"]}) for i in range(3000)]
    async with manager.create_provider("rag", "pgvector", dsn=postgres_dsn, collection=collection,
                                       ef_search=20) as store:
        for start in range(0, 3000, 1000):
            await store.add(docs[start:start + 1000], vectors=vectors[start:start + 1000])
        hits = await store.search(vectors[7], k=10, filter={"group": [7, 8]})
        assert len(hits) == 10 and {h.document.metadata["group"] for h in hits} <= {7, 8}
        assert hits[0].document.id == "r7" and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
        assert await store.search(vectors[7], k=5, filter={"tags": "x"}) == [], "a list value is not equal to 'x'"
        assert len(await store.ids({"group": 7})) == 30


async def test_keyword_search_finds_exact_terms_with_filters(manager, postgres_dsn, collection):
    docs = [
        Document(id="err", text="The upload fails with error code E4021 when the token expired.", metadata={"k": "a"}),
        Document(id="other", text="Uploads are retried three times before failing.", metadata={"k": "b"}),
        Document(id="none", text="Paris is the capital of France.", metadata={"k": "a"}),
    ]
    async with PepperPy(plugin_manager=manager).with_rag("pgvector", dsn=postgres_dsn, collection=collection) as pepper:
        store = pepper.rag.provider
        assert await store.keyword_search("E4021") == []  # an empty store
        await pepper.rag.add(docs)
        hits = await store.keyword_search("what does E4021 mean?")
        assert [h.document.id for h in hits] == ["err"] and hits[0].score > 0
        hits = await store.keyword_search("upload failing", k=5)
        assert {h.document.id for h in hits} == {"err", "other"}, "any word matches, stemmed (uploads, failing)"
        assert [h.document.id for h in await store.keyword_search("upload", filter={"k": "b"})] == ["other"]
        assert await store.keyword_search("the of is") == [], "stop words alone match nothing"
        assert await store.keyword_search("?! --") == [], "no words at all"


async def test_a_filter_the_hnsw_walk_gives_up_on_is_answered_from_the_metadata_index(
    manager, postgres_dsn, collection
):
    """A filtered search walks at most filter_scan_rows rows of the HNSW graph; three rows far from the query pass
    the filter here, beyond that walk, so the search turns to the GIN index and ranks all three exactly."""
    vectors = unit_vectors(20_000, seed=3)  # enough rows for the planner to walk the HNSW index, not scan the table
    query = vectors[0]
    far = sorted(range(20_000), key=lambda i: sum(a * b for a, b in zip(query, vectors[i])))[:3]  # the least similar
    docs = [Document(id=f"r{i}", text=f"row {i}", metadata={"far": i in far}) for i in range(20_000)]
    async with manager.create_provider("rag", "pgvector", dsn=postgres_dsn, collection=collection,
                                       filtered_ef_search=10, filter_scan_rows=50) as store:
        await store.add(docs, vectors=vectors)
        hits = await store.search(query, k=5, filter={"far": True})
        expected = sorted(far, key=lambda i: -sum(a * b for a, b in zip(query, vectors[i])))
        assert [h.document.id for h in hits] == [f"r{i}" for i in expected]
        assert await store.search(query, k=5, filter={"far": True}) == hits, "again (now from the GIN index at once)"
        plain = await store.search(query, k=5, filter={"far": False})
        assert len(plain) == 5 and plain[0].document.id == "r0", "a filter most rows pass stays on the HNSW walk"


async def test_an_index_build_that_outgrows_its_memory_warns_what_to_raise(manager, postgres_dsn, collection):
    """pgvector's notice (the graph no longer fits maintenance_work_mem, the rest is slow) becomes a warning naming
    index_build_memory; the store is complete all the same."""
    import numpy as np
    from loguru import logger

    warnings: list[str] = []
    logger.enable("pepperpy")
    sink = logger.add(lambda message: warnings.append(message.record["message"]), level="WARNING")
    try:
        vectors = np.random.default_rng(4).standard_normal((3000, 256)).astype(np.float32)
        docs = [Document(id=f"m{i}", text=f"row {i}") for i in range(3000)]
        async with manager.create_provider("rag", "pgvector", dsn=postgres_dsn, collection=collection,
                                           index_build_memory="1MB") as store:
            await store.add(docs, vectors=list(vectors))
            assert await store.count() == 3000
            assert (await store.search(list(vectors[42]), k=1))[0].document.id == "m42"
    finally:
        logger.remove(sink)
        logger.disable("pepperpy")
    [warning] = [w for w in warnings if "index_build_memory" in w]
    assert "no longer fits into maintenance_work_mem" in warning and "now 1MB" in warning
    assert PASSWORD not in warning
