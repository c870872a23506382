"""Issue 23 figures: retrieval quality by search mode on the labelled set (tests/fixtures/retrieval/labelled.json).

recall@5 (and recall@1) of vector, keyword and hybrid search with the real local embeddings, on
rag/local (FTS5 + BM25) and Chroma embedded (where_document + PepperPy's BM25), for the
paraphrase questions, the exact-term questions (identifiers, codes, names) and all of them.
"""

from __future__ import annotations

import asyncio
import json
import tempfile
from pathlib import Path

from scripts.bench.common import table

LABELLED = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "retrieval" / "labelled.json"
MODES = ("vector", "keyword", "hybrid")


async def recalls(pepper, passages: list[dict], mode: str) -> dict[str, tuple[float, float]]:
    """kind -> (recall@1, recall@5) of ``mode`` over ``passages``."""
    found: dict[str, list[tuple[bool, bool]]] = {}
    for passage in passages:
        ids = [hit.document.id for hit in await pepper.rag.search(passage["question"], k=5, mode=mode)]
        found.setdefault(passage["kind"], []).append((ids[:1] == [passage["id"]], passage["id"] in ids))
    found["all"] = [hit for kind in list(found) for hit in found[kind]]
    return {
        kind: (sum(a for a, _ in hits) / len(hits), sum(b for _, b in hits) / len(hits)) for kind, hits in found.items()
    }


async def run() -> None:
    from pepperpy import Document, PepperPy

    labelled = json.loads(LABELLED.read_text())
    documents = [Document(id=p["id"], text=p["text"]) for p in labelled["passages"]]
    documents += [Document(id=f"noise{n}", text=text) for n, text in enumerate(labelled["distractors"])]
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        stores = (("local", {"path": Path(folder) / "store.sqlite3"}), ("chroma", {"path": Path(folder) / "chroma"}))
        for store, config in stores:
            async with PepperPy().with_rag(store, **config) as pepper:
                await pepper.rag.add(documents)
                for mode in MODES:
                    figures = await recalls(pepper, labelled["passages"], mode)
                    rows.append((f"rag/{store}", mode, *(f"{figures[kind][1]:.2f} ({figures[kind][0]:.2f})"
                                                          for kind in ("paraphrase", "exact", "all"))))
    kinds = {kind: sum(p["kind"] == kind for p in labelled["passages"]) for kind in ("paraphrase", "exact")}
    table(
        f"retrieval quality: recall@5 (recall@1) on the labelled set, {kinds['paraphrase']} paraphrase + "
        f"{kinds['exact']} exact-term questions, {len(documents)} passages",
        rows, ("store", "mode", "paraphrase", "exact terms", "all"),
    )


def main() -> None:
    asyncio.run(run())
