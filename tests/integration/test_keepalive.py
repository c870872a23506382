"""Keep-alive connections that the service closes: what is sent again and what is not.

Rule (pepperpy/http.py's docstring): a request on a *reused* connection that the service
closed or reset before any response header is sent again once, on a new connection (the
keep-alive race: the service closed the idle connection as the request went out); a cut
after the answer began, or any failure on a new connection, is never sent again silently.

``KeepAliveServer`` is scripted because nothing real closes an idle connection on cue:
real servers close it after their keep-alive timeout, and hitting that instant takes luck
(the llama.cpp soak in test_llm_openai_real.py is the real-server check).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import struct

import pytest

from pepperpy import PepperPy
from pepperpy.errors import LLMError
from tests.servers.scripted import chat_answer, chat_stream_events

pytestmark = pytest.mark.integration
PROCESSED = re.escape("the service may have processed (and billed) the request, so it was not sent again")


class KeepAliveServer:
    """An HTTP/1.1 keep-alive server that answers each connection's first request and misbehaves on the next.

    ``on_reuse`` says what a connection's second request gets: ``"close"`` (read it, then
    close: the client reads end-of-file), ``"reset"`` (close with SO_LINGER 0: the client
    reads a reset), ``"cut"`` (answer 200 with half the promised body, then close), or
    ``"idle_close"`` (no second request expected: the connection is closed 0.2 s after the
    first answer, while idle). With ``answer_only_first=True`` only the server's very
    first request is answered; every later one, on any connection, gets ``on_reuse``.
    ``seen`` lists ``(connection number, user message)`` of every request that arrived.
    """

    def __init__(self, on_reuse: str, answer_only_first: bool = False) -> None:
        self.on_reuse, self.answer_only_first = on_reuse, answer_only_first
        self.seen: list[tuple[int, str]] = []
        self.connections = 0
        self.closed_idle = asyncio.Event()  # set once an idle connection was closed ("idle_close")
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/v1"

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _read_request(self, reader: asyncio.StreamReader) -> dict | None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        return json.loads(await reader.readexactly(length))

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        try:
            served = 0
            while (body := await self._read_request(reader)) is not None:
                self.seen.append((number, body["messages"][-1]["content"]))
                if served == 0 and not (self.answer_only_first and len(self.seen) > 1):
                    await self._answer(writer, body)
                    served += 1
                    if self.on_reuse == "idle_close":
                        await asyncio.sleep(0.2)
                        break
                    continue
                if self.on_reuse == "reset":
                    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif self.on_reuse == "cut":
                    kind, part = (b"text/event-stream", b"data: {") if body.get("stream") else (b"application/json", b'{"id":')
                    writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: %s\r\ncontent-length: 400\r\n\r\n%s" % (kind, part))
                    await writer.drain()
                break
        finally:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
            if self.on_reuse == "idle_close":
                self.closed_idle.set()

    async def _answer(self, writer: asyncio.StreamWriter, body: dict) -> None:
        content = "echo: " + body["messages"][-1]["content"]
        if body.get("stream"):
            data = "".join(f"{event}\n\n" for event in chat_stream_events([content])).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-length: %d\r\n\r\n" % len(data) + data)
        else:
            data = json.dumps(chat_answer(content)).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(data) + data)
        await writer.drain()


def openai(manager, base_url: str) -> PepperPy:
    settings = {"api_key": "k", "max_retries": 2, "retry_budget": 5, "timeout": 10}
    return PepperPy(plugin_manager=manager).with_llm("openai", base_url=base_url, **settings)


async def call(pepper: PepperPy, text: str, stream: bool) -> str:
    chat = pepper.chat.with_user(text)
    if stream:
        return "".join([chunk.content async for chunk in chat.stream()])
    return (await chat.generate()).content


@pytest.mark.parametrize(("on_reuse", "stream"), [("close", False), ("reset", False), ("close", True)])
async def test_a_reused_connection_closed_as_the_request_arrives_is_sent_again_once(remote_manager, on_reuse, stream):
    server = KeepAliveServer(on_reuse)
    base_url = await server.start()
    try:
        async with openai(remote_manager, base_url) as pepper:
            assert await call(pepper, "first", stream) == "echo: first"
            assert await call(pepper, "second", stream) == "echo: second"  # the first connection is reused, then closed
    finally:
        await server.aclose()
    assert server.seen == [(1, "first"), (1, "second"), (2, "second")]


@pytest.mark.parametrize("stream", [False, True])
async def test_an_answer_cut_on_a_reused_connection_is_not_sent_again(remote_manager, stream):
    server = KeepAliveServer("cut")
    base_url = await server.start()
    try:
        async with openai(remote_manager, base_url) as pepper:
            await call(pepper, "first", stream)
            with pytest.raises(LLMError, match=rf"broke off after HTTP 200 .*; {PROCESSED}") as raised:
                await call(pepper, "second", stream)
    finally:
        await server.aclose()
    assert server.seen == [(1, "first"), (1, "second")]
    assert not raised.value.retryable


async def test_the_request_sent_again_is_not_sent_a_third_time_when_its_new_connection_fails(remote_manager):
    server = KeepAliveServer("close", answer_only_first=True)
    base_url = await server.start()
    try:
        async with openai(remote_manager, base_url) as pepper:
            await call(pepper, "first", False)
            with pytest.raises(LLMError, match=rf"broke off after the request was sent .*; {PROCESSED}"):
                await call(pepper, "second", False)
    finally:
        await server.aclose()
    assert server.seen == [(1, "first"), (1, "second"), (2, "second")]


async def test_a_connection_the_service_closed_while_idle_is_not_used(remote_manager):
    """The close arrived before the next request: httpcore sees it and opens a new connection; nothing is re-sent."""
    server = KeepAliveServer("idle_close")
    base_url = await server.start()
    try:
        async with openai(remote_manager, base_url) as pepper:
            await call(pepper, "first", False)
            await server.closed_idle.wait()
            assert await call(pepper, "second", False) == "echo: second"
    finally:
        await server.aclose()
    assert server.seen == [(1, "first"), (2, "second")]
