"""Synthetic vectors shaped like text embeddings, for the store benchmarks.

Uniform noise is the easy case for an approximate index and the wrong one for exact search
(every vector is nearly orthogonal to every other). Real sentence embeddings sit in clusters
(topics) around a shared mean direction, with cosine similarities mostly 0.1-0.6 and a few
close neighbours. These are: a common offset, ``clusters`` topic centres, and per-vector noise,
normalized; queries are fresh draws from the same clusters (not copies of stored vectors).
"""

from __future__ import annotations

from typing import Any

DIMENSION = 384


def clustered(count: int, seed: int, clusters: int = 1000, dimension: int = DIMENSION) -> Any:
    """``count`` unit float32 vectors in ``clusters`` topics (numpy array, one row each); same seed, same vectors."""
    import numpy as np

    rng = np.random.default_rng(seed)
    common = np.random.default_rng(0).standard_normal(dimension).astype(np.float32) * 0.6
    centres = np.random.default_rng(1).standard_normal((clusters, dimension)).astype(np.float32)
    out = np.empty((count, dimension), dtype=np.float32)
    step = 50_000
    for start in range(0, count, step):
        n = min(step, count - start)
        topic = rng.integers(0, clusters, n)
        rows = common + centres[topic] + rng.standard_normal((n, dimension), dtype=np.float32) * 0.9
        out[start : start + n] = rows / np.linalg.norm(rows, axis=1, keepdims=True)
    return out
