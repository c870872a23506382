"""A scripted HTTP server on 127.0.0.1 for what a real server cannot show on demand.

Each request takes the next ``Reply`` from the script: a JSON answer with any status
and headers, a server-sent-event stream (optionally cut off midway, or paused before
chosen events), malformed bytes, a hang, or a body trickled byte by byte. Requests are
recorded for assertions, with how much of the reply the server had sent and whether the
client hung up before the end. Runs its own event loop in a thread (tests/servers/threaded.py).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from tests.servers.threaded import Received, ThreadedServer, read_request


@dataclass
class Reply:
    status: int = 200
    json: Any = None
    raw: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)
    events: list[str] | None = None  # SSE lines ("data: {...}" or "event: x\ndata: {...}")
    cut_after: int | None = None  # close the connection after this many events, mid-stream
    delay: float = 0.0  # seconds to wait before answering (a hang, with a large value)
    trickle: float | None = None  # send the JSON/raw body one byte at a time, this many seconds apart
    pauses: dict[int, float] = field(default_factory=dict)  # extra seconds to wait before the event at an index


@dataclass
class Request(Received):
    sent: int = 0  # body bytes (trickle) or events (stream) written before the answer ended or the client left
    finished: bool = False  # the whole reply was written
    client_left: bool = False  # the client closed the connection before the reply was complete


class ScriptedServer(ThreadedServer):
    def __init__(self) -> None:
        super().__init__()
        self.script: list[Reply] = []
        self.requests: list[Request] = []

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def reset(self, *replies: Reply) -> None:
        self.script = list(replies)
        self.requests = []

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                received = await read_request(reader)
                if received is None:
                    return
                request = Request(received.method, received.path, received.headers, received.body)
                self.requests.append(request)
                reply = self.script.pop(0) if self.script else Reply(status=500, json={"error": {"message": "script exhausted"}})
                if reply.delay:
                    await asyncio.sleep(reply.delay)
                if not await self._answer(reader, writer, reply, request):
                    return
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            writer.close()

    @staticmethod
    async def _answer(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, reply: Reply, request: Request
    ) -> bool:
        """Write the reply; False when the connection was deliberately cut or the client left."""
        head = [f"HTTP/1.1 {reply.status} Scripted"] + [f"{k}: {v}" for k, v in reply.headers.items()]
        if reply.events is not None:
            head += ["content-type: text/event-stream", "transfer-encoding: chunked"]
            writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
            await writer.drain()
            for index, event in enumerate(reply.events):
                if reply.cut_after is not None and index == reply.cut_after:
                    await writer.drain()
                    writer.transport.abort()
                    return False
                pause = reply.pauses.get(index, 0.0)
                if pause and not await _wait_unless_left(reader, writer, pause, request):
                    return False
                payload = (event + "\n\n").encode()
                writer.write(f"{len(payload):x}\r\n".encode() + payload + b"\r\n")
                await writer.drain()
                request.sent += 1
            writer.write(b"0\r\n\r\n")
        else:
            body = reply.raw if reply.raw is not None else json.dumps(reply.json).encode()
            head += ["content-type: application/json", f"content-length: {len(body)}"]
            if reply.trickle is None:
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode() + body)
                request.sent = len(body)
            else:
                writer.write(("\r\n".join(head) + "\r\n\r\n").encode())
                await writer.drain()
                for byte in body:
                    if not await _wait_unless_left(reader, writer, reply.trickle, request):
                        return False
                    writer.write(bytes([byte]))
                    await writer.drain()
                    request.sent += 1
        await writer.drain()
        request.finished = True
        return True


async def _wait_unless_left(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seconds: float, request: Request
) -> bool:
    """Sleep ``seconds`` unless the client closes the connection first; False (and noted) if it did."""
    try:
        await asyncio.wait_for(_closed_by_peer(reader), seconds)
    except TimeoutError:
        return True
    request.client_left = True
    writer.transport.abort()
    return False


async def _closed_by_peer(reader: asyncio.StreamReader) -> None:
    """Return once the peer has closed its end (the client gave up); the request was read already."""
    try:
        while await reader.read(1024):
            pass
    except ConnectionError:
        pass


def chat_answer(content: str = "", tool_calls: list[dict] | None = None, finish: str = "stop") -> dict:
    """A Chat Completions answer in the documented wire format."""
    message: dict[str, Any] = {"role": "assistant", "content": content or None}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "chatcmpl-scripted", "object": "chat.completion", "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
    }


def chat_stream_events(pieces: list[str], finish: str = "stop") -> list[str]:
    """Chat Completions streaming chunks for ``pieces``, a finish chunk, usage and [DONE]."""
    def chunk(delta: dict, reason: str | None = None) -> str:
        return "data: " + json.dumps({"choices": [{"index": 0, "delta": delta, "finish_reason": reason}]})

    events = [chunk({"role": "assistant", "content": ""})]
    events += [chunk({"content": piece}) for piece in pieces]
    events.append(chunk({}, finish))
    events.append("data: " + json.dumps({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": len(pieces)}}))
    events.append("data: [DONE]")
    return events


def tool_call(call_id: str, name: str, arguments: dict) -> dict:
    return {"id": call_id, "type": "function", "function": {"name": name, "arguments": json.dumps(arguments)}}
