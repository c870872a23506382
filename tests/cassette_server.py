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
cassette holds. Runs its own event loop in a thread.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import yaml

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


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


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


class CassetteServer:
    """Serves one cassette (``load``/``serve`` a new one any time); ``base_url`` is ``http://127.0.0.1:<port>``."""

    def __init__(self) -> None:
        self.interactions: list[Interaction] = []
        self.requests: list[Received] = []
        self._pending: list[Interaction] = []
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> CassetteServer:
        self._thread.start()
        self._ready.wait(10)
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def serve(self, cassette: Path | list[Interaction]) -> list[Interaction]:
        """Answer from ``cassette`` (a path or loaded interactions) from now on; forget earlier requests."""
        self.interactions = load_cassette(cassette) if isinstance(cassette, Path) else list(cassette)
        self._pending = list(self.interactions)
        self.requests = []
        return self.interactions

    async def _shutdown(self) -> None:
        current = asyncio.current_task()
        tasks = [task for task in asyncio.all_tasks() if task is not current]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        server = self._loop.run_until_complete(asyncio.start_server(self._serve, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    def _take(self, method: str, path: str) -> Interaction | None:
        for index, interaction in enumerate(self._pending):
            if interaction.method == method and interaction.path == path:
                return self._pending.pop(index)
        return None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while not reader.at_eof():
                head = await reader.readuntil(b"\r\n\r\n")
                lines = head.decode("latin-1").split("\r\n")
                method, path, _ = lines[0].split(" ", 2)
                headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:] if ":" in line)}
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.requests.append(Received(method, path, headers, body))
                await self._answer(writer, self._take(method, path), method, path)
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
