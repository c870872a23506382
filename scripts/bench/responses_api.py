"""Issue 21 figures: llm/openai with api="responses" vs raw httpx speaking the Responses API, on the local stub.

Both run in this process, one after another, with the same calls as the "http" section
(http_clients.measure: sequential and concurrent calls, streams). Target: <= 1.05x raw httpx latency.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path

from scripts.bench.common import table
from scripts.bench.http_clients import RawHttpx, measure
from scripts.bench.remote_llm import STREAM_CHUNKS, free_port

INPUT = [{"role": "user", "content": "Say hello."}]


class RawResponses(RawHttpx):
    """The "http" section's raw httpx client (same pool, same key) speaking the Responses API."""

    async def call(self) -> tuple[str, dict]:
        body = {"model": "stub", "input": [{"role": "user", "content": "Say hello."}]}
        response = await self.client.post("responses", json=body, headers=self.headers)
        response.raise_for_status()
        answer = response.json()
        return "".join(c["text"] for item in answer["output"] for c in item["content"]), answer["usage"]

    async def stream(self):
        body = {"model": "stub", "input": INPUT, "stream": True}
        async with self.client.stream("POST", "responses", json=body, headers=self.headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event["type"] == "response.output_text.delta":
                        yield event["delta"]


class PepperPyResponses:
    name = "PepperPy api=responses"

    async def open(self, base_url: str, **config: object) -> None:
        from pepperpy import PepperPy

        self.pepper = PepperPy().with_llm("openai", base_url=base_url, api_key="sk-bench", model="stub", api="responses", **config)
        await self.pepper.__aenter__()

    async def call(self) -> tuple[str, object]:
        result = await self.pepper.chat.with_user("Say hello.").generate()
        return result.content, result.usage

    async def stream(self):
        async for chunk in self.pepper.chat.with_user("Say hello.").stream():
            if chunk.content:
                yield chunk.content

    async def close(self) -> None:
        await self.pepper.aclose()


def main() -> None:
    port = free_port()
    stub = subprocess.Popen([sys.executable, str(Path(__file__).with_name("stub_server.py")), str(port), str(STREAM_CHUNKS)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert stub.stdout is not None and stub.stdout.readline().strip() == "ready"
        base_url = f"http://127.0.0.1:{port}/v1"
        results = [asyncio.run(measure(client, base_url, STREAM_CHUNKS)) for client in (RawResponses(), PepperPyResponses())]
    finally:
        stub.kill()
        stub.wait()
    raw = results[0]
    rows = [
        (r["client"], f"{r['mean_ms']:.3f} ms ({r['mean_ms'] / raw['mean_ms']:.2f}x)",
         f"{r['throughput']:.0f}/s ({r['throughput'] / raw['throughput']:.2f}x)",
         f"{r['ttfc_ms']:.3f} ms ({r['ttfc_ms'] / raw['ttfc_ms']:.2f}x)",
         f"{r['stream_ms']:.3f} ms ({r['stream_ms'] / raw['stream_ms']:.2f}x)")
        for r in results
    ]
    table(f"Responses API calls on a local stub (1,000 sequential; 3,000 at 64 concurrent; {STREAM_CHUNKS}-event streams)",
          rows, ("client", "mean latency", "throughput", "first chunk", "whole stream"))
    print("target: PepperPy api=responses <= 1.05x raw httpx mean latency")
