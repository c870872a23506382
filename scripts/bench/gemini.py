"""Issue 21 figures for llm/gemini: per-call latency and stream cost against raw httpx on a local Gemini stub.

The stub runs in its own process. Raw httpx sends the same body to the same path and parses the JSON
(or reads the SSE lines); PepperPy goes through the provider (``pepper.llm``) and through the facade
(``pepper.chat``). Rounds alternate between the clients so a noisy machine slows each alike.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scripts.bench.common import table
from scripts.bench.remote_llm import free_port

CALLS = 200
ROUNDS = 7
STREAM_CHUNKS = 100
MODEL = "gemini-2.5-flash"


async def measure(base_url: str) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    import httpx

    from pepperpy import PepperPy

    body = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
    headers = {"x-goog-api-key": "bench-key"}
    names = ("raw httpx", "provider", "facade", "raw stream", "provider stream")
    times: dict[str, list[float]] = {name: [] for name in names}
    cpu: dict[str, list[float]] = {name: [] for name in names}
    async with httpx.AsyncClient(base_url=base_url + "/", timeout=60) as client, \
            PepperPy().with_llm("gemini", base_url=base_url, api_key="bench-key", model=MODEL) as pepper:

        async def raw() -> None:  # what a user of raw httpx writes for the same result: body, POST, JSON, text and usage
            request = {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}
            answer = (await client.post(f"models/{MODEL}:generateContent", json=request, headers=headers)).json()
            assert answer["candidates"][0]["content"]["parts"][0]["text"] and answer["usageMetadata"]

        async def provider() -> None:
            assert (await pepper.llm.generate("Hi")).content

        async def facade() -> None:
            assert (await pepper.chat.with_user("Hi").generate()).content

        async def raw_stream() -> None:
            async with client.stream("POST", f"models/{MODEL}:streamGenerateContent?alt=sse", json=body, headers=headers) as r:
                texts = [json.loads(line[6:])["candidates"][0]["content"]["parts"][0]["text"]
                         async for line in r.aiter_lines() if line.startswith("data: ")]
            assert len(texts) == STREAM_CHUNKS

        async def provider_stream() -> None:
            chunks = [chunk async for chunk in pepper.llm.generate_stream("Hi")]
            assert len(chunks) == STREAM_CHUNKS + 1

        runs = {"raw httpx": raw, "provider": provider, "facade": facade, "raw stream": raw_stream,
                "provider stream": provider_stream}
        for action in runs.values():  # warm up: connections, imports
            for _ in range(20):
                await action()
        for _ in range(ROUNDS):
            for name, action in runs.items():
                count = CALLS if "stream" not in name else CALLS // 10
                started, started_cpu = time.perf_counter(), time.process_time()
                for _ in range(count):
                    await action()
                times[name].append((time.perf_counter() - started) / count)
                cpu[name].append((time.process_time() - started_cpu) / count)
    return times, cpu


def main() -> None:
    port = free_port()
    stub = subprocess.Popen([sys.executable, str(Path(__file__).with_name("stub_server.py")), str(port), str(STREAM_CHUNKS)],
                            stdout=subprocess.PIPE, text=True)
    try:
        assert stub.stdout is not None and stub.stdout.readline().strip() == "ready"
        times, cpu = asyncio.run(measure(f"http://127.0.0.1:{port}/v1beta"))
    finally:
        stub.kill()
        stub.wait()
    median = {name: statistics.median(samples) for name, samples in times.items()}
    median_cpu = {name: statistics.median(samples) for name, samples in cpu.items()}
    rows = []
    for name in median:
        base = "raw stream" if "stream" in name else "raw httpx"
        rows.append((
            name, f"{median[name] * 1000:.3f} ms ({median[name] / median[base]:.2f}x)",
            f"{median_cpu[name] * 1000:.3f} ms (+{(median_cpu[name] - median_cpu[base]) * 1e6:.0f} us)",
        ))
    table(f"llm/gemini on a local stub (median of {ROUNDS} alternating rounds of {CALLS} calls, {CALLS // 10} "
          f"{STREAM_CHUNKS}-chunk streams)", rows, ("client", "wall per call (vs raw)", "CPU per call (over raw)"))
    print("target: provider <= 1.05x raw httpx latency")
