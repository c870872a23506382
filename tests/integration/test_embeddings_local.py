"""embeddings/local with the real all-MiniLM-L6-v2 int8 model."""

from __future__ import annotations

import math

import pytest

from pepperpy import PepperPy
from pepperpy.errors import ConfigError

pytestmark = pytest.mark.integration


def dot(a, b):
    return sum(x * y for x, y in zip(a, b))


@pytest.fixture
async def embeddings(chroma_manager):
    async with PepperPy(plugin_manager=chroma_manager).with_embeddings("local", batch_size=2) as pepper:
        yield pepper.provider("embeddings")


async def test_paraphrases_rank_above_unrelated_sentences(embeddings):
    guitar, paraphrase, unrelated = await embeddings.embed(
        ["A man is playing a guitar.", "Someone plays the guitar.", "The stock market fell sharply today."]
    )
    assert len(guitar) == 384
    assert all(math.isclose(dot(v, v), 1.0, rel_tol=1e-4) for v in (guitar, paraphrase, unrelated))
    assert dot(guitar, paraphrase) > 0.7 > 0.2 > dot(guitar, unrelated)


async def test_batches_keep_the_order_of_the_texts(embeddings):
    texts = ["short", "a much longer sentence about many different things", "mid length text", "x y"]
    together = await embeddings.embed(texts)
    alone = [await embeddings.embed_one(t) for t in texts]
    assert all(dot(a, b) > 0.999 for a, b in zip(together, alone))


async def test_empty_text_is_refused(embeddings):
    with pytest.raises(ConfigError, match="cannot embed an empty text"):
        await embeddings.embed(["fine", ""])


async def test_missing_model_file_names_it(chroma_manager, tmp_path):
    pepper = PepperPy(plugin_manager=chroma_manager).with_embeddings("local", model_path=tmp_path / "none.onnx")
    with pytest.raises(ConfigError, match=r"model_path '.*none\.onnx' does not exist"):
        async with pepper:
            pass
