"""A fast Gemini API stub for the benchmarks: fixed answers, keep-alive, chunked SSE.

Usage: python gemini_stub.py PORT STREAM_CHUNKS. A path containing ':streamGenerateContent' gets
STREAM_CHUNKS text events, the last with its finishReason and usage; any other POST one answer.
"""

from __future__ import annotations

import asyncio
import json
import sys

USAGE = {"promptTokenCount": 5, "candidatesTokenCount": 5, "totalTokenCount": 10}
ANSWER = json.dumps({
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from the stub."}]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": USAGE, "modelVersion": "stub", "responseId": "stub",
}).encode()


def stream_body(chunks: int) -> bytes:
    out = b""
    for i in range(chunks):
        candidate = {"content": {"role": "model", "parts": [{"text": f"tok{i} "}]}, "index": 0}
        if i == chunks - 1:
            candidate["finishReason"] = "STOP"
        data = f"data: {json.dumps({'candidates': [candidate], 'usageMetadata': USAGE})}\r\n\r\n".encode()
        out += f"{len(data):x}\r\n".encode() + data + b"\r\n"
    return out + b"0\r\n\r\n"


class StubProtocol(asyncio.Protocol):
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER) + ANSWER
    streamed = b""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buffer[:end].lower()
            start = head.find(b"content-length:")
            stop = head.find(b"\r\n", start)
            length = int(head[start + 15 : stop if stop > 0 else None]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self.streamed if b":streamgeneratecontent" in head.split(b"\r\n", 1)[0] else self.answer)


async def serve(port: int, chunks: int) -> None:
    StubProtocol.streamed = (
        b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" + stream_body(chunks)
    )
    server = await asyncio.get_running_loop().create_server(StubProtocol, "127.0.0.1", port)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(serve(int(sys.argv[1]), int(sys.argv[2])))
