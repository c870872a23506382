"""Runs under valgrind for scripts/bench/instructions.py: raw httpx or PepperPy calls over an in-memory network.

Usage: python memory_clients.py raw|PepperPy seq|concurrent CALLS. The clients are http_clients.py's; their
httpx client's connection pool is swapped for one on an in-memory backend that answers every request at once
(the bench's stub answer), so that the count holds the Python work of a call only: no kernel, no server,
no other process. The work of warming up (320 calls) is the same whatever CALLS is, so two runs' difference
over their CALLS is the cost of one call.
"""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import httpcore

sys.path.insert(0, str(Path(__file__).parent))
from http_clients import CONCURRENCY, PepperPyClient, RawHttpx  # noqa: E402

ANSWER = json.dumps({
    "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "stub",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the stub."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
}).encode()
RESPONSE = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER) + ANSWER
WARM_UP = 320


class AnsweringStream(httpcore.AsyncNetworkStream):
    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await asyncio.sleep(0)  # let the other calls run, as a socket read would
        return RESPONSE

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        pass

    async def aclose(self) -> None:
        pass


class InMemoryBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ANN001
        return AnsweringStream()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def in_memory(client) -> None:  # noqa: ANN001
    """Swap the httpx client's pool (a private attribute: a benchmark may) for one on the in-memory backend."""
    client._transport._pool = httpcore.AsyncConnectionPool(
        max_connections=256, max_keepalive_connections=64, keepalive_expiry=3.0, network_backend=InMemoryBackend()
    )


async def main(name: str, mode: str, calls: int) -> None:
    client = RawHttpx() if name == "raw" else PepperPyClient()
    await client.open("http://127.0.0.1:9/v1")
    in_memory(client.client if name == "raw" else (await client.pepper.ready("llm")).endpoint.client.client)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated() -> None:
        async with gate:
            await client.call()

    async def run(count: int) -> None:
        if mode == "seq":
            for _ in range(count):
                await client.call()
        else:
            await asyncio.gather(*(gated() for _ in range(count)))

    await run(WARM_UP)
    await run(calls)
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
