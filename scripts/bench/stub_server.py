"""A fast OpenAI-compatible stub for the HTTP benchmarks: fixed answers, keep-alive, chunked SSE.

Usage: python stub_server.py PORT STREAM_CHUNKS. Answers POST /v1/chat/completions; a body
containing '"stream": true' gets STREAM_CHUNKS content chunks, usage and [DONE]. POST /v1/responses
gets the same in the Responses API's format (output_text deltas, then response.completed). A path
containing ':streamGenerateContent' gets STREAM_CHUNKS Gemini text events, the last with its finishReason and
usage; one containing ':generateContent' one Gemini answer.
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


RESPONSE = {
    "id": "resp_stub", "object": "response", "status": "completed", "model": "stub",
    "output": [{"type": "message", "id": "msg_stub", "role": "assistant", "status": "completed",
                "content": [{"type": "output_text", "text": "Hello from the stub.", "annotations": []}]}],
    "usage": {"input_tokens": 5, "output_tokens": 5, "total_tokens": 10, "input_tokens_details": {"cached_tokens": 0},
              "output_tokens_details": {"reasoning_tokens": 0}},
}


GEMINI_USAGE = {"promptTokenCount": 5, "candidatesTokenCount": 5, "totalTokenCount": 10}
GEMINI_ANSWER = json.dumps({
    "candidates": [{"content": {"role": "model", "parts": [{"text": "Hello from the stub."}]}, "finishReason": "STOP", "index": 0}],
    "usageMetadata": GEMINI_USAGE, "modelVersion": "stub", "responseId": "stub",
}).encode()


def _chunked(payloads: list[str]) -> bytes:
    out = b""
    for payload in payloads:
        data = payload.encode()
        out += f"{len(data):x}\r\n".encode() + data + b"\r\n"
    return out + b"0\r\n\r\n"


def responses_stream_body(chunks: int) -> bytes:
    events = [{"type": "response.created", "response": {**RESPONSE, "status": "in_progress", "output": []}}]
    events += [{"type": "response.output_text.delta", "item_id": "msg_stub", "output_index": 0, "content_index": 0,
                "delta": f"tok{i} "} for i in range(chunks)]
    events.append({"type": "response.completed", "response": RESPONSE})
    return _chunked([f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events])


def gemini_stream_body(chunks: int) -> bytes:
    events = []
    for i in range(chunks):
        candidate = {"content": {"role": "model", "parts": [{"text": f"tok{i} "}]}, "index": 0}
        if i == chunks - 1:
            candidate["finishReason"] = "STOP"
        events.append(f"data: {json.dumps({'candidates': [candidate], 'usageMetadata': GEMINI_USAGE})}\r\n\r\n")
    return _chunked(events)


def stream_body(chunks: int) -> bytes:
    def event(delta: dict, reason: str | None = None) -> dict:
        return {"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub",
                "choices": [{"index": 0, "delta": delta, "finish_reason": reason}]}

    events = [event({"role": "assistant", "content": ""})]
    events += [event({"content": f"tok{i} "}) for i in range(chunks)]
    events.append(event({}, "stop"))
    events.append({"id": "chatcmpl-stub", "object": "chat.completion.chunk", "created": 0, "model": "stub", "choices": [],
                   "usage": {"prompt_tokens": 5, "completion_tokens": chunks, "total_tokens": 5 + chunks}})
    return _chunked([*(f"data: {json.dumps(e)}\n\n" for e in events), "data: [DONE]\n\n"])


class StubProtocol(asyncio.Protocol):
    answer = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(ANSWER) + ANSWER
    streamed = b""
    responses_answer = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                        % len(json.dumps(RESPONSE)) + json.dumps(RESPONSE).encode())
    responses_streamed = b""
    gemini_answer = (b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n"
                     % len(GEMINI_ANSWER) + GEMINI_ANSWER)
    gemini_streamed = b""

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
            streaming = b'"stream": true' in body or b'"stream":true' in body
            request_line = head.split(b"\r\n", 1)[0]
            if b":streamgeneratecontent" in request_line:
                self.transport.write(self.gemini_streamed)
            elif b":generatecontent" in request_line:
                self.transport.write(self.gemini_answer)
            elif head.startswith(b"post /v1/responses"):
                self.transport.write(self.responses_streamed if streaming else self.responses_answer)
            else:
                self.transport.write(self.streamed if streaming else self.answer)


def main() -> None:
    port, chunks = int(sys.argv[1]), int(sys.argv[2])
    sse = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
    StubProtocol.streamed = sse + stream_body(chunks)
    StubProtocol.responses_streamed = sse + responses_stream_body(chunks)
    StubProtocol.gemini_streamed = sse + gemini_stream_body(chunks)
    loop = asyncio.new_event_loop()
    server = loop.run_until_complete(loop.create_server(StubProtocol, "127.0.0.1", port, backlog=1024))
    print("ready", flush=True)
    try:
        loop.run_forever()
    finally:
        server.close()


if __name__ == "__main__":
    main()
