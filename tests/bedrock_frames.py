"""AWS event-stream frames, written as the service writes them, for tests of llm/bedrock (a scripted server's bytes)."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Any


def frame(headers: dict[str, str], payload: bytes) -> bytes:
    """One frame with string headers: prelude (lengths + CRC32), headers, payload, CRC32 of it all."""
    raw = b"".join(
        bytes([len(name)]) + name.encode() + b"\x07" + struct.pack(">H", len(value.encode())) + value.encode()
        for name, value in headers.items()
    )
    prelude = struct.pack(">II", 12 + len(raw) + len(payload) + 4, len(raw))
    body = prelude + struct.pack(">I", zlib.crc32(prelude)) + raw + payload
    return body + struct.pack(">I", zlib.crc32(body))


def event(kind: str, payload: dict[str, Any]) -> bytes:
    headers = {":event-type": kind, ":content-type": "application/json", ":message-type": "event"}
    return frame(headers, json.dumps(payload).encode())


def exception(kind: str, message: str) -> bytes:
    headers = {":exception-type": kind, ":content-type": "application/json", ":message-type": "exception"}
    return frame(headers, json.dumps({"message": message}).encode())


def text_stream(*pieces: str, stop: str | None = "end_turn") -> bytes:
    """A ConverseStream answer of text deltas; ``stop=None`` leaves messageStop and metadata out (a cut stream)."""
    frames = [event("messageStart", {"role": "assistant"})]
    frames += [event("contentBlockDelta", {"contentBlockIndex": 0, "delta": {"text": p}}) for p in pieces]
    if stop is not None:
        frames += [event("contentBlockStop", {"contentBlockIndex": 0}), event("messageStop", {"stopReason": stop}),
                   event("metadata", {"usage": {"inputTokens": 5, "outputTokens": len(pieces), "totalTokens": 5 + len(pieces)},
                                      "metrics": {"latencyMs": 10}})]
    return b"".join(frames)
