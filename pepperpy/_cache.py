"""The response cache: ``PepperPy().with_cache()`` (in memory) or ``with_cache(path=..., ttl=...)`` (SQLite).

The key covers the format version, the provider id, the provider's own settings (model,
base URL, default temperature, ...), every message, every per-call option (tools by
their schema, a response model by its JSON schema; a media part by its content hash and media
type, not its path) and whether the call streams. Not
cached: errors, streams cut by an error or closed early, answers asking for tools (a
tool round in progress), and calls made with ``with_options(cache=False)``. A cached
stream is replayed chunk by chunk, as it came; a stream with no entry of its own is
served by the same request's ``generate`` answer, as one chunk (a streamed answer does
not serve ``generate``). Hits carry ``metadata["cache"] == "hit"``. A stored answer keeps only the
messages the answer added (the request's own, images included, come from the call on a hit).
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from pepperpy.errors import ConfigError
from pepperpy.hooks import Call, CallNext, closing_stream
from pepperpy.llm import TRANSPORT_OPTIONS, GenerationChunk, GenerationResult, assistant_reply, message_json, option_json

FORMAT_VERSION = 2  # 2: media parts keyed by hash; answers stored without the request's messages
def cache_key(call: Call) -> str:
    """A hash of everything that decides the answer to ``call``."""
    config = {k: v for k, v in call.config.items() if k not in TRANSPORT_OPTIONS}
    options = {k: v for k, v in call.options.items() if k not in TRANSPORT_OPTIONS}
    payload = {
        "format": FORMAT_VERSION,
        "provider": call.provider,
        "config": config,
        "messages": [message_json(m) for m in call.messages],
        "options": options,
        "stream": call.stream,
    }
    text = json.dumps(payload, sort_keys=True, default=option_json, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


class MemoryStore:
    """Entries in a dict, least recently used dropped beyond ``max_entries``."""

    def __init__(self, ttl: float | None, max_entries: int = 1000):
        self.ttl, self.max_entries = ttl, max_entries
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()

    def get(self, key: str) -> str | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        if self.ttl is not None and time.time() - entry[0] > self.ttl:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return entry[1]

    def put(self, key: str, value: str) -> None:
        self._entries[key] = (time.time(), value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def close(self) -> None:
        self._entries.clear()


class SQLiteStore:
    """Entries in a SQLite file, shared safely by several processes (``pepperpy._sqlite``: WAL, busy timeout)."""

    def __init__(self, path: Path, ttl: float | None):
        self.path, self.ttl = path, ttl
        self._connection: Any = None
        self._lock = threading.Lock()  # the sync path runs calls on another thread

    def _problem(self, exc: Exception) -> ConfigError:
        return ConfigError(
            f"response cache {self.path}: cannot use it ({exc}); it is not a PepperPy cache or it is damaged: "
            "delete it or pass another with_cache(path=...)"
        )

    def _open(self) -> Any:
        import sqlite3

        from pepperpy import _sqlite

        connection = None
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            connection = _sqlite.connect(self.path)
            _sqlite.use_wal(connection)
            connection.execute("CREATE TABLE IF NOT EXISTS pepperpy_cache (key TEXT PRIMARY KEY, created REAL, value TEXT)")
            connection.execute("SELECT key, created, value FROM pepperpy_cache LIMIT 0")
        except (sqlite3.Error, OSError) as exc:
            if connection is not None:
                connection.close()
            raise self._problem(exc) from None
        return connection

    def _run(self, sql: str, parameters: tuple[Any, ...]) -> list[Any]:
        import sqlite3

        with self._lock:
            if self._connection is None:
                self._connection = self._open()
            try:
                return self._connection.execute(sql, parameters).fetchall()
            except sqlite3.Error as exc:
                raise self._problem(exc) from None

    def get(self, key: str) -> str | None:
        rows = self._run("SELECT created, value FROM pepperpy_cache WHERE key = ?", (key,))
        if not rows:
            return None
        created, value = rows[0]
        if self.ttl is not None and time.time() - created > self.ttl:
            self._run("DELETE FROM pepperpy_cache WHERE key = ? AND created = ?", (key, created))
            return None
        return value

    def put(self, key: str, value: str) -> None:
        self._run("INSERT OR REPLACE INTO pepperpy_cache (key, created, value) VALUES (?, ?, ?)", (key, time.time(), value))

    def close(self) -> None:
        with self._lock:
            if self._connection is not None:
                self._connection.close()
                self._connection = None


class ResponseCache:
    """The hook that ``with_cache`` adds."""

    def __init__(self, path: str | Path | None = None, ttl: float | None = None, max_entries: int = 1000):
        if ttl is not None and not (isinstance(ttl, (int, float)) and ttl > 0):
            raise ConfigError(f"with_cache(ttl=...) takes a positive number of seconds or None, got {ttl!r:.40}")
        self.store: MemoryStore | SQLiteStore = (
            MemoryStore(ttl, max_entries) if path is None else SQLiteStore(Path(path).expanduser(), ttl)
        )

    def __repr__(self) -> str:
        where = "memory" if isinstance(self.store, MemoryStore) else str(self.store.path)
        return f"ResponseCache({where})"

    async def __call__(self, call: Call, call_next: CallNext) -> Any:
        if call.settings.get("cache", True) is False:
            return await call_next(call)
        key = cache_key(call)
        stored = self.store.get(key)
        if stored is not None:
            return self._replayed(call, stored)
        if call.stream:
            whole = self.store.get(cache_key(call.replace(stream=False)))
            if whole is not None:
                return _replay([_one_chunk(_loaded(call, whole))])
        outcome = await call_next(call)
        if call.stream:
            return self._recorded_stream(key, outcome)
        if not outcome.tool_calls:
            self._put(key, lambda: _dumped(call, outcome))
        return outcome

    def _put(self, key: str, serialize: Any) -> None:
        try:
            value = serialize()
        except (TypeError, ValueError) as exc:  # metadata a provider filled with objects JSON cannot hold
            from pepperpy._log import logger

            logger.debug("response cache: not stored, the answer does not serialize: {}", exc)
            return
        self.store.put(key, value)

    @staticmethod
    def _replayed(call: Call, stored: str) -> Any:
        if not call.stream:
            result = _loaded(call, stored)
            result.metadata["cache"] = "hit"
            return result
        chunks = [GenerationChunk.model_validate(c) for c in json.loads(stored)]
        if chunks:
            chunks[0].metadata["cache"] = "hit"
        return _replay(chunks)

    async def _recorded_stream(self, key: str, chunks: Any) -> AsyncIterator[GenerationChunk]:
        seen: list[GenerationChunk] = []
        async with closing_stream(chunks) as stream:
            async for chunk in stream:  # an error or an early close ends this before the store
                seen.append(chunk)
                yield chunk
        if not any(chunk.tool_calls for chunk in seen):
            self._put(key, lambda: json.dumps([chunk.model_dump(mode="json") for chunk in seen]))


def _dumped(call: Call, result: GenerationResult) -> str:
    """``result`` as stored: when its messages start with the call's own, only the ones after them."""
    asked = len(call.messages)
    messages = result.messages
    if len(messages) >= asked and all(a is b for a, b in zip(messages, call.messages)):
        result = result.model_copy(update={"messages": messages[asked:]})
        return json.dumps({"asked": True, "result": json.loads(result.model_dump_json(exclude={"parsed"}))})
    return json.dumps({"asked": False, "result": json.loads(result.model_dump_json(exclude={"parsed"}))})


def _loaded(call: Call, stored: str) -> GenerationResult:
    entry = json.loads(stored)
    result = GenerationResult.model_validate(entry["result"])
    if entry["asked"]:
        result.messages = [*call.messages, *result.messages]
    return result


def _one_chunk(result: GenerationResult) -> GenerationChunk:
    """A stored ``generate`` answer as the single chunk of a stream (never a tool round: those are not stored)."""
    return GenerationChunk(
        content=result.content, reasoning=result.reasoning, finish_reason=result.metadata.get("finish_reason") or "stop",
        usage=result.usage,
        metadata={**result.metadata, "cache": "hit"}, message=assistant_reply(result),
    )


async def _replay(chunks: list[GenerationChunk]) -> AsyncIterator[GenerationChunk]:
    for chunk in chunks:
        yield chunk


__all__ = ["FORMAT_VERSION", "MemoryStore", "ResponseCache", "SQLiteStore", "cache_key"]
