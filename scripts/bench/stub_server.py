"""A fast OpenAI-compatible stub for the HTTP benchmarks: fixed answers, keep-alive, chunked SSE.

Usage: python stub_server.py PORT STREAM_CHUNKS. Answers POST /v1/chat/completions; a body
containing '"stream": true' gets STREAM_CHUNKS content chunks, usage and [DONE].
"""

from __future__ import annotations

import asyncio
import json
import sys

ANSWER = json.dumps({
    "id": "chatcmpl-stub", "object": "chat.completion", "created": 0, "model": "stub",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello from the stub."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 5, "total_tokens": 10},
}).encode()


def stream_body(chunks: int) -> bytes:
    def event(delta: dict, reason: str | None = None) -> dict:
        return {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub",
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": f"tok{i} "}) for i in range(chunks)]
    events.append(event({}, "stop"))
    events.append({"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub", "choices": [],
                   "usage": {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": 5 + chunks}})
    out = b""
    for payload in [*(f"data: {json.dumps(e)}\n\n" for e in events), "data: [DONE]\n\n"]:
        data = payload.encode()
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
            length = int(head[start + 15 : head.find(b"\r\n", start) if head.find(b"\r\n", start) > 0 else None]) if start >= 0 else 0
            if len(self.buffer) < end + 4 + length:
                return
            body = self.buffer[end + 4 : end + 4 + length]
            self.buffer = self.buffer[end + 4 + length :]
            self.transport.write(self.streamed if b'"stream": true' in body or b'"stream":true' in body else self.answer)


def main() -> None:
    port, chunks = int(sys.argv[1]), int(sys.argv[2])
    StubProtocol.streamed = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n" + stream_body(chunks)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(StubProtocol, "127.0.0.1", port, backlog=1024))
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
