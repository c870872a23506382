"""AWS's event-stream framing (``application/vnd.amazon.eventstream``), as ConverseStream sends it.

A frame is: total length (u32), headers length (u32), CRC32 of those 8 bytes, the headers,
the payload, and the CRC32 of everything before it (all big-endian). Headers are ``name``
(u8 length + bytes), a type byte and a value. ``:message-type`` says what a frame is: an
``event`` (``:event-type`` names it: messageStart, contentBlockDelta, ...), an
``exception`` (``:exception-type``: throttlingException, validationException, ...) or an
``error`` (``:error-code``, ``:error-message``). A frame's length is known from its first
four bytes, so one over ``max_event_bytes`` is refused before it is held in memory.
"""

from __future__ import annotations

import json
import struct
import zlib
from typing import NamedTuple

from pepperpy.errors import LLMError
from pepperpy.http import EventTooLarge

PRELUDE = 12  # total length, headers length, prelude CRC
# Sizes of the fixed-size header value types (0 and 1 are the booleans true and false: no value bytes).
_FIXED = {0: 0, 1: 0, 2: 1, 3: 2, 4: 4, 5: 8, 8: 8, 9: 16}


class Frame(NamedTuple):
    """One event as ``stream_sse`` hands it on: ``event`` is its type, ``data`` its payload as text.

    An exception frame's ``event`` is its exception type (``throttlingException``, ...), as the
    service model names it; an ``error`` frame's is ``error`` with ``{"code", "message"}`` as data."""

    event: str
    data: str


def _headers(raw: bytes) -> dict[str, object]:
    headers: dict[str, object] = {}
    at = 0
    while at < len(raw):
        size = raw[at]
        name = raw[at + 1:at + 1 + size].decode("utf-8")
        kind = raw[at + 1 + size]
        at += 2 + size
        if kind in (6, 7):  # bytes, string: u16 length
            (length,) = struct.unpack_from(">H", raw, at)
            value: object = raw[at + 2:at + 2 + length]
            value = value.decode("utf-8") if kind == 7 else value  # type: ignore[union-attr]
            at += 2 + length
        elif kind in _FIXED:
            value = kind == 0 if kind in (0, 1) else raw[at:at + _FIXED[kind]]
            at += _FIXED[kind]
        else:
            raise ValueError(f"header {name!r} has unknown type {kind}")
        headers[name] = value
    return headers


class EventStreamDecoder:
    """Frames from the bytes of an event stream, checked (both CRCs) and read as they complete."""

    def __init__(self, max_event_bytes: int | None = None, who: str = "llm/bedrock") -> None:
        self.max_event_bytes = max_event_bytes
        self.who = who
        self._buffer = bytearray()

    def feed(self, chunk: bytes) -> list[Frame]:
        self._buffer += chunk
        frames = []
        while len(self._buffer) >= PRELUDE:
            total, headers_length, prelude_crc = struct.unpack_from(">III", self._buffer)
            if zlib.crc32(self._buffer[:8]) != prelude_crc:
                raise self._broken("its prelude checksum does not match")
            if self.max_event_bytes is not None and total > self.max_event_bytes:
                raise EventTooLarge(f"an event of {total} bytes")
            if total < PRELUDE + headers_length + 4:
                raise self._broken(f"a frame of {total} bytes cannot hold {headers_length} bytes of headers")
            if len(self._buffer) < total:
                break
            frame = bytes(self._buffer[:total])
            del self._buffer[:total]
            (message_crc,) = struct.unpack_from(">I", frame, total - 4)
            if zlib.crc32(frame[:-4]) != message_crc:
                raise self._broken("its message checksum does not match")
            try:
                headers = _headers(frame[PRELUDE:PRELUDE + headers_length])
                payload = frame[PRELUDE + headers_length:-4].decode("utf-8")
            except (ValueError, IndexError, struct.error) as exc:
                raise self._broken(f"its headers cannot be read ({exc})") from None
            frames.append(_frame(headers, payload))
        return frames

    def _broken(self, why: str) -> LLMError:
        return LLMError(
            f"{self.who}: a malformed event-stream frame: {why}; "
            "the chunks already received stand, so try again for a whole answer"
        )


def _frame(headers: dict[str, object], payload: str) -> Frame:
    kind = headers.get(":message-type")
    if kind == "exception":
        return Frame(str(headers.get(":exception-type") or "exception"), payload)
    if kind == "error":
        return Frame("error", json.dumps({"code": headers.get(":error-code"), "message": headers.get(":error-message")}))
    return Frame(str(headers.get(":event-type") or ""), payload)


__all__ = ["EventStreamDecoder", "Frame"]
