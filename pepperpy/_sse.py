"""Server-sent events (``text/event-stream``) decoded as the HTML standard says; used by ``pepperpy.http``."""

from __future__ import annotations

import math
from typing import NamedTuple

_BOM = b"\xef\xbb\xbf"
_new_event = tuple.__new__  # ServerSentEvent(...) without its Python-level __new__: a fifth of the decoding cost


class EventTooLarge(ValueError):
    """One server-sent event passed ``SSEDecoder.max_event_bytes`` (``stream_sse`` turns it into a ProviderError)."""


class ServerSentEvent(NamedTuple):
    """One dispatched event: ``event`` is "" when the stream named no type (the standard's "message")."""

    event: str
    data: str
    id: str = ""
    retry: int | None = None


class SSEDecoder:
    """Server-sent events from the bytes of a ``text/event-stream`` body, read as the HTML standard says.

    Lines end with CRLF, LF or CR (also split across chunks); a leading BOM is dropped;
    ``:`` starts a comment; a field is ``name: value`` (one leading space removed) or a
    bare ``name`` (empty value); ``data`` lines join with "\\n"; ``event``, ``id`` (not
    with NUL) and ``retry`` (ASCII digits only) are kept, other fields ignored; a blank
    line dispatches the event, unless no ``data`` came; an event not ended by a blank
    line when the stream ends is dropped. Lines are split on bytes (``bytes.splitlines``
    splits on exactly CRLF, LF and CR), so an event is never held in memory past
    ``max_event_bytes``.
    """

    def __init__(self, max_event_bytes: int | None = None) -> None:
        self.max_event_bytes = max_event_bytes if max_event_bytes is not None else math.inf
        self.last_event_id = ""
        self.retry: int | None = None
        self._pending: list[bytes] = []  # the start of a line not ended yet
        self._pending_size = 0
        self._first = True  # a BOM may open the stream
        self._skip_lf = False  # the last chunk ended with CR: an LF opening the next one ends no line
        self._event = ""
        self._data: list[bytes] = []
        self._id = ""
        self._size = 0  # bytes of the complete lines of the event being read

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """The events completed by ``chunk``; raises ``EventTooLarge`` past ``max_event_bytes``."""
        if self._skip_lf and chunk[:1] == b"\n":
            chunk = chunk[1:]
            self._skip_lf = False
        if not chunk:
            return []
        self._skip_lf = chunk[-1] == 13  # CR
        if 13 not in chunk:  # no CR (the byte 13 is found faster than b"\r"): one split, no line end to strip
            lines = chunk.split(b"\n")
            if len(lines) == 1:
                return self._keep(chunk)
            if self._pending:
                lines[0] = b"".join([*self._pending, lines[0]])
            rest = lines.pop()  # the last line, not ended yet ("" when the chunk ends one)
        else:
            if self._pending:
                chunk = b"".join([*self._pending, chunk])
            lines = chunk.splitlines(keepends=True)
            rest = b"" if lines[-1][-1] in (10, 13) else lines.pop()
            lines = [line.rstrip(b"\r\n") for line in lines]
        if self._first:
            lines[0], self._first = lines[0].removeprefix(_BOM), False
        self._pending, self._pending_size = ([rest], len(rest)) if rest else ([], 0)
        events: list[ServerSentEvent] = []
        data, limit, size = self._data, self.max_event_bytes, self._size
        for line in lines:
            if not line:  # a blank line dispatches the event
                self.last_event_id = self._id
                if data:
                    joined = data[0] if len(data) == 1 else b"\n".join(data)
                    event = (self._event, joined.decode("utf-8", "replace"), self._id, self.retry)
                    events.append(_new_event(ServerSentEvent, event))
                    data = self._data = []
                self._event, size = "", 0
                continue
            size += len(line) + 1
            if size > limit:
                raise EventTooLarge(f"an event passed {self.max_event_bytes} bytes")
            if line.startswith(b"data:"):
                data.append(line[6:] if line[5:6] == b" " else line[5:])
            elif line[:1] != b":":
                self._field(line)
        self._size = size
        if size + self._pending_size > limit:
            raise EventTooLarge(f"an event passed {self.max_event_bytes} bytes")
        return events

    def _keep(self, piece: bytes) -> list[ServerSentEvent]:
        """Hold ``piece``, which ends no line, until a line end comes."""
        self._pending.append(piece)
        self._pending_size += len(piece)
        if self._size + self._pending_size > self.max_event_bytes:
            raise EventTooLarge(f"an event passed {self.max_event_bytes} bytes")
        return []

    def _field(self, line: bytes) -> None:
        name, colon, value = line.decode("utf-8", "replace").partition(":")
        if value.startswith(" "):
            value = value[1:]
        if name == "data":  # a bare "data" (no colon)
            self._data.append(value.encode())
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._id = value
        elif name == "retry" and value.isascii() and value.isdigit():
            self.retry = int(value)


__all__ = ["EventTooLarge", "SSEDecoder", "ServerSentEvent"]
