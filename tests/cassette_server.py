"""Recorded traffic served from 127.0.0.1: a VCR cassette's responses, for services that cannot run here.

A cassette (VCR YAML: ``interactions[]`` of ``request`` and ``response``, bodies as
``body.string`` — text, or bytes under ``!!binary`` — or as ``parsed_body`` JSON) is
answered request by request: a request takes the next recorded interaction with the same
method and path (the URI's path and query; the host is ignored), in recorded order, and gets
its status, headers and body back. Event streams (server-sent events, and AWS's binary
``application/vnd.amazon.eventstream``) are sent in chunks, one per event, so a client reads
them as it would the service's. Every request received is kept in
``requests`` (method, path, headers, body) to compare with the recorded ones
(``interaction.request_json``). A request nothing matches gets a 404 naming what the
cassette holds. Runs its own event loop in a thread (tests/servers/threaded.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

from tests.servers.threaded import Received, ThreadedServer, read_request

_NOT_REPLAYED = {"content-length", "transfer-encoding", "content-encoding", "connection"}


@dataclass
class Interaction:
    """One recorded request and its response."""

    method: str
    path: str
    request: dict[str, Any]
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def request_json(self) -> Any:
        """The recorded request body, parsed."""
        if "parsed_body" in self.request:
            return self.request["parsed_body"]
        body = self.request.get("body")
        if isinstance(body, dict):  # {string: ...}; a bare string is the body itself
            body = body.get("string")
        return json.loads(body) if body else None


def _path(uri: str) -> str:
    parts = urlsplit(uri)
    return parts.path + (f"?{parts.query}" if parts.query else "")


def load_cassette(path: Path) -> list[Interaction]:
    """The interactions of a VCR YAML cassette."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    interactions = []
    for item in data["interactions"]:
        request, response = item["request"], item["response"]
        if "parsed_body" in response:
            body: Any = json.dumps(response["parsed_body"]).encode()
        else:
            body = (response.get("body") or {}).get("string", b"")
            body = body.encode() if isinstance(body, str) else bytes(body)
        headers = [
            (name, value) for name, values in (response.get("headers") or {}).items()
            if name.lower() not in _NOT_REPLAYED for value in values
        ]
        interactions.append(Interaction(
            request["method"].upper(), _path(request["uri"]), request, response["status"]["code"], headers, body,
        ))
    return interactions


class CassetteServer(ThreadedServer):
    """Serves one cassette (``load``/``serve`` a new one any time); ``base_url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        super().__init__()
        self.interactions: list[Interaction] = []
        self.requests: list[Received] = []
        self._pending: list[Interaction] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def serve(self, cassette: Path | list[Interaction]) -> list[Interaction]:
        """Answer from ``cassette`` (a path or loaded interactions) from now on; forget earlier requests."""
        self.interactions = load_cassette(cassette) if isinstance(cassette, Path) else list(cassette)
        self._pending = list(self.interactions)
        self.requests = []
        return self.interactions

    def _take(self, method: str, path: str) -> Interaction | None:
        for index, interaction in enumerate(self._pending):
            if interaction.method == method and interaction.path == path:
                return self._pending.pop(index)
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while (request := await read_request(reader)) is not None:
                self.requests.append(request)
                await self._answer(writer, self._take(request.method, request.path), request.method, request.path)
        except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
            return  # a cancel comes from stop(): end quietly (a cancelled handler task is logged as an error)
        finally:
            writer.close()

    async def _answer(self, writer: asyncio.StreamWriter, found: Interaction | None, method: str, path: str) -> None:
        if found is None:
            held = sorted({f"{i.method} {i.path}" for i in self._pending}) or ["nothing (all served)"]
            message = f"no recorded interaction left for {method} {path}; the cassette still holds: {', '.join(held)}"
            found = Interaction(method, path, {}, 404, [("content-type", "application/json")],
                                json.dumps({"error": {"code": 404, "message": message}}).encode())
        head = [f"HTTP/1.1 {found.status} Recorded"] + [f"{name}: {value}" for name, value in found.headers]
        kind = next((value for name, value in found.headers if name.lower() == "content-type"), "")
        streamed = "event-stream" in kind or "amazon.eventstream" in kind
        if not streamed:
            head.append(f"content-length: {len(found.body)}")
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + found.body)
        else:
            writer.write(("\r\n".join(head) + "\r\ntransfer-encoding: chunked\r\n\r\n").encode())
            for event in (_frames(found.body) if "amazon.eventstream" in kind else _events(found.body)):
                writer.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
        await writer.drain()


def _frames(body: bytes) -> list[bytes]:
    """An AWS event stream cut into its frames (each starts with its total length, 4 bytes big-endian)."""
    pieces, start = [], 0
    while start + 4 <= len(body):
        end = start + int.from_bytes(body[start:start + 4], "big")
        pieces.append(body[start:end])
        start = end
    if start < len(body):
        pieces.append(body[start:])
    return pieces


def _events(body: bytes) -> list[bytes]:
    """``body`` cut after each blank line (an event's end), keeping every byte."""
    pieces, start = [], 0
    for separator in (b"\r\n\r\n", b"\n\n"):
        if separator in body:
            while (end := body.find(separator, start)) != -1:
                pieces.append(body[start:end + len(separator)])
                start = end + len(separator)
            break
    if start < len(body):
        pieces.append(body[start:])
    return pieces


__all__ = ["CassetteServer", "Interaction", "Received", "load_cassette"]
