"""Issue 6 figures: local embeddings speed; ingest and query of rag/local vs Chroma embedded at 10k and 100k chunks.

Store figures use precomputed unit vectors (384 dimensions, like the local model), so
that store time is measured apart from embedding time; the embedding rate is measured
on real text with the real model. PEPPERPY_BENCH_SIZES="10000" runs a shorter pass.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import tempfile
import time
from pathlib import Path

from scripts.bench.common import ms, percentile, table

DIMENSION = 384
QUERIES = 200
ADD_BATCH = 5000


async def embedding_rate(manager) -> float:
    texts = [f"Sentence {i} talks about subject {i % 37} and how it relates to topic {i % 11}." for i in range(2000)]
    provider = manager.create_provider("embeddings", "local")
    await provider.initialize()
    await provider.embed(texts[:64])  # warm-up
    started = time.perf_counter()
    await provider.embed(texts)
    rate = len(texts) / (time.perf_counter() - started)
    await provider.cleanup()
    return rate


async def store_figures(manager, name: str, config: dict, size: int) -> dict:
    import numpy as np

    from pepperpy.rag import Document

    rng = np.random.default_rng(size)
    vectors = rng.standard_normal((size, DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    documents = [Document(id=f"c{i}", text=f"chunk {i}", metadata={"group": i % 10}) for i in range(size)]
    store = manager.create_provider("rag", name, **config)
    await store.initialize()
    started = time.perf_counter()
    for start in range(0, size, ADD_BATCH):
        await store.add(documents[start : start + ADD_BATCH], vectors=list(vectors[start : start + ADD_BATCH]))
    ingest = size / (time.perf_counter() - started)
    queries = rng.standard_normal((QUERIES + 5, DIMENSION), dtype=np.float32)
    figures = {"ingest": ingest}
    for label, filter in (("plain", None), ("filtered", {"group": 3})):
        await store.search(list(queries[0]), k=5, filter=filter)  # first search loads the store
        samples = []
        for query in queries[5:]:
            began = time.perf_counter()
            hits = await store.search(list(query), k=5, filter=filter)
            samples.append(time.perf_counter() - began)
        assert len(hits) == 5
        figures[label] = (statistics.median(samples), percentile(samples, 0.99))
    await store.cleanup()
    return figures


async def run() -> None:
    from pepperpy.plugin_manager import PluginManager

    manager = PluginManager.instance()
    sizes = [int(s) for s in os.environ.get("PEPPERPY_BENCH_SIZES", "10000,100000").split(",")]
    embed_rate = await embedding_rate(manager)
    rows = []
    for size in sizes:
        with tempfile.TemporaryDirectory() as tmp:
            local = await store_figures(manager, "local", {"path": Path(tmp) / "local.sqlite3"}, size)
            chroma = await store_figures(manager, "chroma", {"path": Path(tmp) / "chroma"}, size)
        for name, figures, baseline in (("rag/local", local, chroma), ("Chroma embedded", chroma, chroma)):
            whole = 1 / (1 / embed_rate + 1 / figures["ingest"])
            rows.append((
                f"{size:,}", name,
                f"{figures['ingest']:,.0f}/s ({figures['ingest'] / baseline['ingest']:.1f}x)",
                f"{whole:,.0f}/s",
                f"{ms(figures['plain'][0])} / {ms(figures['plain'][1])}",
                f"{ms(figures['filtered'][0])} / {ms(figures['filtered'][1])}",
            ))
    table(
        f"vector stores ({DIMENSION}-d, k=5, filter matches 10%; embeddings/local embeds {embed_rate:,.0f} sentences/s)",
        rows,
        ("chunks", "store", "ingest, store part (vs Chroma)", "ingest incl. embedding", "query p50 / p99", "filtered p50 / p99"),
    )
    print("target: rag/local query p50 < 10 ms at 100k with and without a filter; store ingest >= 10x Chroma embedded")


def main() -> None:
    asyncio.run(run())
