"""Runs under valgrind for scripts/bench/instructions.py: raw httpx or PepperPy calls over an in-memory network.

Usage: python memory_clients.py raw|transport|PepperPy seq|concurrent|stream CALLS [chat|responses|gemini] (transport:
Chat Completions only; stream: CALLS streams of STREAM_CHUNKS chunks, raw or PepperPy, Chat Completions). The clients are
http_clients.py's (Chat Completions), responses_api.py's (the Responses API) and this file's (Gemini); their
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
sys.path.insert(0, str(Path(__file__).parents[2]))
from http_clients import CONCURRENCY, PepperPyClient, RawHttpx, RawTransport  # noqa: E402
from stub_server import ANSWER, GEMINI_ANSWER, RESPONSE as RESPONSES_ANSWER, stream_body  # noqa: E402

from scripts.bench.responses_api import PepperPyResponses, RawResponses  # noqa: E402

WARM_UP = 320
STREAM_CHUNKS, STREAM_WARM_UP = 2000, 2
READ_BYTES = 65536  # what httpcore asks a socket for at once
SLOW_TIMEOUT_S = 3600.0
GEMINI_MODEL = "gemini-2.5-flash"


class RawGemini(RawHttpx):
    """Raw httpx speaking Gemini's generateContent: the body built, POSTed, parsed, text and usage taken."""

    async def call(self) -> tuple[str, dict]:
        body = {"contents": [{"role": "user", "parts": [{"text": "Say hello."}]}]}
        response = await self.client.post(f"models/{GEMINI_MODEL}:generateContent", json=body, headers=self.headers)
        response.raise_for_status()
        answer = response.json()
        return answer["candidates"][0]["content"]["parts"][0]["text"], answer["usageMetadata"]


class PepperPyGemini(PepperPyClient):
    async def open(self, base_url: str, **config: object) -> None:
        from pepperpy import PepperPy

        self.pepper = PepperPy().with_llm("gemini", base_url=base_url, api_key="sk-bench", model=GEMINI_MODEL, **config)
        await self.pepper.__aenter__()


CLIENTS = {"chat": (RawHttpx, PepperPyClient), "responses": (RawResponses, PepperPyResponses), "gemini": (RawGemini, PepperPyGemini)}


def http_answer(body: bytes) -> bytes:
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body


ANSWERS = {"chat": http_answer(ANSWER), "responses": http_answer(json.dumps(RESPONSES_ANSWER).encode()),
           "gemini": http_answer(GEMINI_ANSWER)}


STREAM_ANSWER = (b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
                 + stream_body(STREAM_CHUNKS))


class AnsweringStream(httpcore.AsyncNetworkStream):
    """Answers each request with ``answer``, read in pieces of at most READ_BYTES as from a socket."""

    def __init__(self, answer: bytes) -> None:
        self.pieces = [answer[i:i + READ_BYTES] for i in range(0, len(answer), READ_BYTES)]
        self.next = 0

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        await asyncio.sleep(0)  # let the other calls run, as a socket read would
        piece = self.pieces[self.next]
        self.next += 1
        return piece

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self.next = 0  # a new request: its answer from the start

    async def aclose(self) -> None:
        pass


class InMemoryBackend(httpcore.AsyncNetworkBackend):
    def __init__(self, answer: bytes) -> None:
        self.answer = answer

    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):  # noqa: ANN001
        return AnsweringStream(self.answer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


def in_memory(transport, answer: bytes) -> None:  # noqa: ANN001
    """Swap the httpx transport's pool (a private attribute: a benchmark may) for one on the in-memory backend, with
    PepperPy's keep-alive expiry (3 s) for every client. That expiry is in seconds, so the 64-at-a-time row counts
    differently as valgrind's slowness and the machine's load stretch a run (it moved between 1.05x and 1.23x
    from run to run); without an expiry httpcore's pool does ten times the work per call at 64 at a time, for
    every client, which is no fairer a picture."""
    transport._pool = httpcore.AsyncConnectionPool(
        max_connections=256, max_keepalive_connections=64, keepalive_expiry=3.0, network_backend=InMemoryBackend(answer)
    )


async def main(name: str, mode: str, calls: int, wire: str = "chat") -> None:
    raw_class, pepper_class = CLIENTS[wire]
    client = {"raw": raw_class, "transport": RawTransport}.get(name, pepper_class)()
    base_url = "http://127.0.0.1:9/v1beta" if wire == "gemini" else "http://127.0.0.1:9/v1"
    # Under valgrind a loaded machine runs 64 calls at a time slower than the default 60 s limit of a whole call:
    # a longer one (the same work per call: one deadline either way).
    if name == "PepperPy":
        await client.open(base_url, timeout=SLOW_TIMEOUT_S)
        transport = (await client.pepper.ready("llm")).endpoint.client.transport
    else:
        await client.open(base_url)
        transport = client.transport if name == "transport" else client.client._transport
    in_memory(transport, STREAM_ANSWER if mode == "stream" else ANSWERS[wire])
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated() -> None:
        async with gate:
            await client.call()

    async def run(count: int) -> None:
        if mode == "seq":
            for _ in range(count):
                await client.call()
        elif mode == "stream":
            for _ in range(count):
                pieces = [piece async for piece in client.stream()]
                assert len(pieces) == STREAM_CHUNKS, len(pieces)
        else:
            await asyncio.gather(*(gated() for _ in range(count)))

    await run(STREAM_WARM_UP if mode == "stream" else WARM_UP)
    await run(calls)
    await client.close()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), *sys.argv[4:5]))
