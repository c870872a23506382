"""embeddings/openai against llama.cpp's real /v1/embeddings (SmolLM2, mean pooling), and batching on the scripted server."""

from __future__ import annotations

import math

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, ProviderError
from tests.servers.scripted import Reply

pytestmark = pytest.mark.integration
TEXTS = ["The cat sleeps.", "Paris is in France.", "Stocks fell today.", "A kitten naps.", "Rain is coming."]


def cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


def close(a: list[float], b: list[float]) -> bool:
    """The same text's vector; batching changes llama.cpp's float sums slightly, not the direction."""
    return cosine(a, b) > 0.999


async def test_batched_vectors_match_one_by_one_in_order(remote_manager, llama_embeddings_server):
    """The llamacpp preset sends one batch at a time (see its plugin.json description)."""
    pepper = PepperPy(plugin_manager=remote_manager).with_embeddings("llamacpp", base_url=llama_embeddings_server, batch_size=2)
    async with pepper:
        provider = pepper.provider("embeddings")
        batched = await provider.embed(TEXTS)
        singles = [await provider.embed_one(text) for text in TEXTS]
    assert len(batched) == len(TEXTS)
    assert len({len(v) for v in batched}) == 1 and len(batched[0]) > 100
    assert all(close(b, s) for b, s in zip(batched, singles))
    assert not close(batched[0], batched[1])


async def test_batches_are_split_and_reassembled_by_index(remote_manager, scripted):
    def answer(count: int, offset: int) -> dict:
        rows = [{"index": i, "embedding": [float(offset + i)]} for i in reversed(range(count))]
        return {"data": rows, "model": "scripted"}

    scripted.reset(Reply(json=answer(2, 0)), Reply(json=answer(2, 2)), Reply(json=answer(1, 4)))
    pepper = PepperPy(plugin_manager=remote_manager).with_embeddings(
        "openai", base_url=scripted.base_url, api_key="k", batch_size=2, concurrency=1
    )
    async with pepper:
        vectors = await pepper.provider("embeddings").embed(TEXTS)
    assert vectors == [[0.0], [1.0], [2.0], [3.0], [4.0]]
    assert [r.json()["input"] for r in scripted.requests] == [TEXTS[0:2], TEXTS[2:4], TEXTS[4:5]]
    assert scripted.requests[0].json()["model"] == "text-embedding-3-small"


async def test_wrong_vector_count_and_empty_text_are_clear_errors(remote_manager, scripted):
    scripted.reset(Reply(json={"data": [{"index": 0, "embedding": [1.0]}]}))
    pepper = PepperPy(plugin_manager=remote_manager).with_embeddings("openai", base_url=scripted.base_url, api_key="k")
    async with pepper:
        with pytest.raises(ProviderError, match="sent 2 texts, got 1 vectors back"):
            await pepper.provider("embeddings").embed(["a", "b"])
        with pytest.raises(ConfigError, match="cannot embed an empty text"):
            await pepper.provider("embeddings").embed(["a", "  "])
