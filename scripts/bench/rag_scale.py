"""Issue 23 figures: rag/local at 100k and 1M chunks (the approximate index) against exact search and Chroma embedded.

Vectors are 384-d, clustered and anisotropic like real sentence embeddings (a shared mean
direction, topic centres, sub-topics and noise; top-10 neighbours at cosine ~0.6, random
pairs ~0.1), generated batch by batch so that no process holds the whole collection.
Each store runs in its own process, so its resident memory is its own: VmRSS after the
queries and the peak VmHWM; in brackets, VmRSS once the store was opened, before any chunk
(rag/local opens its embeddings dependency there, the local ONNX model). Recall@10 is against exact search over the same vectors,
computed while the batches stream in. "index build" is the first search after the ingest
(rag/local builds its index lazily; the ingest figure is the SQLite store part only).

The same table has rag/pgvector at 100k and 1M (a real PostgreSQL from tests/servers/postgres.py; its
ingest CPU is the server's, so only wall-clock rates are comparable) and Chroma embedded at 100k
as the anchor. Ingest is given as wall-clock chunks/s and as chunks per CPU-second of the store's
process (what one free core would do: the figure to compare across runs on a shared machine).

PEPPERPY_BENCH_SCALE_SIZES="100000" skips the 1M pass (which takes minutes: the index build runs
at a few thousand vectors/s on 2 idle cores). PEPPERPY_BENCH_SCALE_STORES="local" runs rag/local
only (default "chroma,exact,local,pgvector"; exact runs at 100k and below only);
"local-ingest" measures rag/local's ingest and memory without the index build and the queries.

PEPPERPY_BENCH_SCALE_KEEP=<folder> keeps the rag/local stores there (with their exact-search truth and
ingest figures beside them): a later run reopens a kept store instead of ingesting it again, to compare
search settings at 1M without an index build each time. A reopened store's "index build" is the first
search of a fresh process (loading the saved index and the metadata), and its RSS is that process's.
Query times are wall-clock p50 / p99 and, in brackets, the p50 CPU time of the querying process.

rag/pgvector ingests one add of all but the last 10,000 chunks, then adds of 5,000 (scripts/bench/pgvector.py: scale);
its memory is the client's RSS plus the server's PSS.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scripts.bench.common import ROOT, ms, percentile, table

DIMENSION = 384
QUERIES = 200
BATCH = 5000
K = 10


def centres():
    import numpy as np

    rng = np.random.default_rng(7)
    topics = rng.standard_normal((1000, DIMENSION)).astype(np.float32)
    topics /= np.linalg.norm(topics, axis=1, keepdims=True)
    mean = rng.standard_normal(DIMENSION).astype(np.float32)
    return topics, mean / np.linalg.norm(mean)


def clustered(seed: int, count: int, topics, mean):
    """``count`` unit vectors shaped like sentence embeddings (see the module docstring)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    vectors = 0.5 * mean + topics[rng.integers(len(topics), size=count)]
    vectors += 0.35 * topics[rng.integers(len(topics), size=count)]
    vectors += rng.standard_normal((count, DIMENSION), dtype=np.float32) * (0.9 / DIMENSION**0.5)
    return (vectors / np.linalg.norm(vectors, axis=1, keepdims=True)).astype(np.float32)


def add_to_truth(truth: dict, queries, vectors, start: int) -> None:
    """Fold a batch of vectors (ids ``start``...) into the exact top K per query, unfiltered (key None) and per group."""
    import numpy as np

    scores = queries @ vectors.T
    ids = np.arange(start, start + len(vectors))
    for group, (best, best_ids) in truth.items():
        part = scores if group is None else np.where(ids % 10 == group, scores, -np.inf)
        merged, merged_ids = np.hstack([best, part]), np.hstack([best_ids, np.broadcast_to(ids, part.shape)])
        order = np.argsort(-merged, axis=1)[:, :K]
        truth[group] = (np.take_along_axis(merged, order, 1), np.take_along_axis(merged_ids, order, 1))


def memory_kb() -> tuple[int, int]:
    status = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return int(status["VmRSS"].split()[0]), int(status["VmHWM"].split()[0])


async def measure(name: str, config: dict, size: int) -> dict:
    """Runs in a child process: ingest, build, queries; returns the figures."""
    import numpy as np

    from pepperpy.plugin_manager import PluginManager
    from pepperpy.rag import Document

    topics, mean = centres()
    queries = clustered(10**9, QUERIES, topics, mean)
    truth = {None: (np.full((QUERIES, K), -np.inf), np.zeros((QUERIES, K), dtype=np.int64))}
    truth[3] = (truth[None][0].copy(), truth[None][1].copy())
    ingest_only = config.pop("ingest_only", False)
    kept = Path(f"{config['path']}.bench.npz") if config.pop("keep", False) else None
    store = PluginManager.instance().create_provider("rag", name, **config)
    await store.initialize()
    opened_kb = memory_kb()[0]  # the process before any chunk: Python, PepperPy and the store's dependencies
    spent = cpu = 0.0
    reopened = kept is not None and kept.is_file()
    if reopened:  # the truth and ingest figures of the run that built it
        saved = np.load(kept)
        truth = {None: (None, saved["plain"]), 3: (None, saved["filtered"])}
        spent, cpu = float(saved["spent"]), float(saved["cpu"])
    for start in range(0, 0 if reopened else size, BATCH):
        count = min(BATCH, size - start)
        vectors = clustered(start, count, topics, mean)
        documents = [
            Document(id=f"c{n}", text=f"chunk {n}", metadata={"group": n % 10}) for n in range(start, start + count)
        ]
        began, began_cpu = time.perf_counter(), time.process_time()
        await store.add(documents, vectors=list(vectors))
        spent += time.perf_counter() - began
        cpu += time.process_time() - began_cpu
        add_to_truth(truth, queries, vectors, start)
    if kept and not reopened:
        np.savez(kept, plain=truth[None][1], filtered=truth[3][1], spent=spent, cpu=cpu)
    figures: dict = {"ingest": size / spent, "ingest_cpu": size / cpu, "opened_kb": opened_kb}
    if ingest_only:  # no index build, no queries
        figures["rss_kb"], figures["peak_kb"] = memory_kb()
        await store.cleanup()
        return figures
    began = time.perf_counter()
    await store.search(list(queries[0]), k=K)
    figures["build"] = time.perf_counter() - began
    for label, group in (("plain", None), ("filtered", 3)):
        filter = None if group is None else {"group": group}
        await store.search(list(queries[0]), k=K, filter=filter)
        samples, cpu_samples, recalls = [], [], []
        for query, expected in zip(queries, truth[group][1]):
            began, began_cpu = time.perf_counter(), time.process_time()
            hits = await store.search(list(query), k=K, filter=filter)
            samples.append(time.perf_counter() - began)
            cpu_samples.append(time.process_time() - began_cpu)
            found = {int(hit.document.id[1:]) for hit in hits}
            recalls.append(len(found & set(expected.tolist())) / K)
            assert group is None or all(hit.document.metadata["group"] == group for hit in hits)
        figures[label] = (
            statistics.median(samples), percentile(samples, 0.99), statistics.mean(recalls), statistics.median(cpu_samples)
        )
    figures["rss_kb"], figures["peak_kb"] = memory_kb()
    await store.cleanup()
    return figures


def run_child(name: str, config: dict, size: int) -> dict:
    code = "import asyncio, json, sys; from scripts.bench.rag_scale import measure; " \
        "print(json.dumps(asyncio.run(measure(sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3])))))"
    if name == "pgvector":  # its own ingest pattern (scripts/bench/pgvector.py)
        code = "import asyncio, json, sys; from scripts.bench.pgvector import scale; " \
            "print(json.dumps(asyncio.run(scale(json.loads(sys.argv[2]), int(sys.argv[3])))))"
    done = subprocess.run(
        [sys.executable, "-c", code, name, json.dumps(config), str(size)],
        cwd=ROOT, capture_output=True, text=True, check=False,
    )
    if done.returncode:
        raise SystemExit(f"rag-scale: the {name} pass at {size:,} failed:\n{done.stderr[-3000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    shown = {key: value for key, value in config.items() if key != "dsn"}
    print(f"  {name} {shown} at {size:,}: {figures}", file=sys.stderr, flush=True)
    return figures


def row(size: int, label: str, figures: dict, anchor: dict) -> tuple[str, ...]:
    def timed(key: str) -> tuple[str, str]:
        if key not in figures:  # an ingest-only pass
            return "-", "-"
        p50, p99, recall, *cpu = figures[key]  # rag/pgvector's queries run in the server: no CPU figure
        return f"{ms(p50)} / {ms(p99)}" + (f" ({ms(cpu[0])} CPU)" if cpu else ""), f"{recall:.3f}"

    filtered = timed("filtered")
    if "filtered_gin" in figures:  # rag/pgvector: the same filter through its GIN index, p50 of 20 queries
        filtered = (f"{filtered[0]} (GIN path {ms(figures['filtered_gin'])})", filtered[1])
    return (
        f"{size:,}", label,
        f"{figures['ingest']:,.0f}/s ({figures['ingest'] / anchor['ingest']:.1f}x)"
        + ((f", later adds {figures['later']:,.0f}/s" if figures["later"] else "") if label.startswith("rag/pgvector")
           else f", {figures['ingest_cpu']:,.0f}/CPU-s"),
        ms(figures["build"]) if "build" in figures else "-",
        *timed("plain"), *filtered,
        f"{figures['rss_kb'] / 1024:,.0f} / {figures['peak_kb'] / 1024:,.0f} MB"
        + (f" ({figures['opened_kb'] / 1024:,.0f} MB at open)" if "opened_kb" in figures else "")
        + (f" + server {figures['server_kb'] / 1024:,.0f} MB" if "server_kb" in figures else ""),
    )


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def main() -> None:
    sizes = [int(s) for s in os.environ.get("PEPPERPY_BENCH_SCALE_SIZES", "100000,1000000").split(",")]
    stores = os.environ.get("PEPPERPY_BENCH_SCALE_STORES", "chroma,exact,local,pgvector").split(",")
    print(f"rag-scale: load average {os.getloadavg()[0]:.1f} at the start", file=sys.stderr, flush=True)
    results: list[tuple[int, str, dict]] = []
    keep = os.environ.get("PEPPERPY_BENCH_SCALE_KEEP")
    if keep:
        Path(keep).mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for size in sizes:  # rag/local first: the figures this section is for
            if size <= 100_000 and "exact" in stores:
                config = {"path": str(Path(tmp) / f"exact{size}.sqlite3"), "index_threshold": 10**9}
                results.append((size, "rag/local exact (no index)", run_child("local", config, size)))
            if "local-ingest" in stores:
                config = {"path": str(Path(tmp) / f"ingest{size}.sqlite3"), "ingest_only": True}
                results.append((size, "rag/local (ingest only)", run_child("local", config, size)))
            if "local" in stores:
                config = {"path": str(Path(keep or tmp) / f"local{size}.sqlite3"), "keep": bool(keep)}
                reopened = keep and Path(f"{config['path']}.bench.npz").is_file()
                if keep and not reopened:  # a store left half-built by an interrupted run
                    for leftover in Path(keep).glob(f"local{size}.sqlite3*"):
                        leftover.unlink()
                label = "rag/local (index, reopened)" if reopened else "rag/local (index)"
                results.append((size, label, run_child("local", config, size)))
        if "chroma" in stores:
            chroma = run_child("chroma", {"path": str(Path(tmp) / "chroma")}, 100_000)
            results.insert(0, (100_000, "Chroma embedded (anchor)", chroma))
        if "pgvector" in stores:
            from tests.servers.postgres import running_postgres

            with running_postgres(Path(tmp) / "pg", free_port()) as dsn:
                for size in sizes:  # the first add's index build needs ~2.2 KB per vector (below: 2.5 GB at 1M)
                    memory = f"{max(512, size * 25 // 10_000)}MB"
                    config = {"dsn": dsn, "collection": f"scale{size}", "index_build_memory": memory}
                    results.append((size, "rag/pgvector (HNSW)", run_child("pgvector", config, size)))
    anchor = results[0][2] if results[0][1].startswith("Chroma") else None
    rows = [row(size, label, figures, anchor or figures) for size, label, figures in results]
    table(
        f"rag stores at scale ({DIMENSION}-d clustered vectors, k={K}, filter matches 10%; "
        "ingest ratio vs Chroma at 100k; "
        f"load average {os.getloadavg()[0]:.1f} at the end)",
        rows,
        ("chunks", "store", "ingest, store part", "index build", "query p50 / p99", "recall@10",
         "filtered p50 / p99", "filtered recall@10", "RSS after / peak"),
    )
    print("targets at 1M: query p50 < 5 ms, recall@10 >= 0.95, filtered p50 < 10 ms, RSS < 1 GB, ingest >= 20k/s")
