"""A forward HTTP proxy on 127.0.0.1 for the tests of the proxy settings: it reads a request in absolute
form (``POST http://host:port/path HTTP/1.1``), notes its request line, and relays the connection to that
host both ways, as a proxy for plain HTTP does. ``CONNECT`` (HTTPS through a tunnel) is not served."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit


class ForwardProxy:
    def __init__(self) -> None:
        self.request_lines: list[str] = []
        self.server: asyncio.Server | None = None
        self.port = 0

    async def start(self) -> ForwardProxy:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()
            return
        line, _, rest = head.partition(b"\r\n")
        method, target, version = line.decode().split(" ")
        self.request_lines.append(f"{method} {target}")
        url = urlsplit(target)
        upstream_reader, upstream_writer = await asyncio.open_connection(url.hostname, url.port or 80)
        path = url.path + (f"?{url.query}" if url.query else "")
        upstream_writer.write(f"{method} {path} {version}\r\n".encode() + rest)
        await asyncio.gather(_pipe(reader, upstream_writer), _pipe(upstream_reader, writer))


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except ConnectionError:
        pass
    finally:
        writer.close()
