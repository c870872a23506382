"""Runs inside the benchmark venv: the same calls through raw httpx, PepperPy, the openai SDK and LiteLLM.

Usage: python http_clients.py BASE_URL STREAM_CHUNKS [CLIENTS]: one JSON line of figures per client.
       python http_clients.py paired BASE_URL LONG_URL LONG_CHUNKS: PepperPy over raw httpx, measured in
       alternating pairs on one event loop (a pair is taken moments apart, so that a shared machine's load,
       which moves the figures by 2x within a minute, cancels out); one JSON line of per-pair ratios.
"""

from __future__ import annotations

import asyncio
import json
import math
import statistics
import sys
import time

MESSAGES = [{"role": "user", "content": "Say hello."}]
SEQUENTIAL, CONCURRENT_TOTAL, CONCURRENCY, STREAMS = 1000, 3000, 64, 200
PAIRS, PAIR_CALLS, PAIR_BURST, PAIR_STREAMS = 15, 100, 640, 5  # per pair: sequential calls, 64-way calls, long streams


class RawHttpx:
    name = "raw httpx"

    async def open(self, base_url: str) -> None:
        import httpx

        self.client = httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        self.headers = {"Authorization": "Bearer sk-bench"}

    async def call(self) -> tuple[str, dict]:
        """What a user of raw httpx writes for PepperPy's result: build the body, POST, parse, take text and usage."""
        body = {"model": "stub", "messages": [{"role": "user", "content": "Say hello."}]}
        response = await self.client.post("chat/completions", json=body, headers=self.headers)
        response.raise_for_status()
        answer = response.json()
        return answer["choices"][0]["message"]["content"], answer["usage"]

    async def stream(self):
        body = {"model": "stub", "messages": MESSAGES, "stream": True}
        async with self.client.stream("POST", "chat/completions", json=body, headers=self.headers) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:") and line[5:].strip() != "[DONE]":
                    event = json.loads(line[5:])
                    if event["choices"] and event["choices"][0]["delta"].get("content"):
                        yield event["choices"][0]["delta"]["content"]

    async def close(self) -> None:
        await self.client.aclose()


class RawTransport(RawHttpx):
    """Raw httpx one layer down: the request sent through httpx's transport, with no ``AsyncClient`` (no URL and
    header merging, cookies, redirects or event hooks): the floor PepperPy's HTTP edge stands on."""

    name = "raw httpx transport"

    async def open(self, base_url: str) -> None:
        import httpx

        self.transport = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        self.url = httpx.URL(base_url.rstrip("/") + "/chat/completions")
        self.headers = {"Authorization": "Bearer sk-bench"}

    async def call(self) -> tuple[str, dict]:
        import httpx

        body = {"model": "stub", "messages": [{"role": "user", "content": "Say hello."}]}
        response = await self.transport.handle_async_request(httpx.Request("POST", self.url, headers=self.headers, json=body))
        try:
            await response.aread()
        finally:
            await response.aclose()
        if response.status_code >= 400:
            raise RuntimeError(f"HTTP {response.status_code}")
        answer = response.json()
        return answer["choices"][0]["message"]["content"], answer["usage"]

    async def close(self) -> None:
        await self.transport.aclose()


class PepperPyClient:
    name = "PepperPy"

    async def open(self, base_url: str, **config: object) -> None:
        from pepperpy import PepperPy

        self.pepper = PepperPy().with_llm("openai", base_url=base_url, api_key="sk-bench", model="stub", **config)
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


class OpenAISDK:
    name = "openai SDK"

    async def open(self, base_url: str) -> None:
        import openai

        self.client = openai.AsyncOpenAI(base_url=base_url, api_key="sk-bench", max_retries=0)

    async def call(self) -> str:
        answer = await self.client.chat.completions.create(model="stub", messages=MESSAGES)
        return answer.choices[0].message.content

    async def stream(self):
        answer = await self.client.chat.completions.create(model="stub", messages=MESSAGES, stream=True)
        async for chunk in answer:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    async def close(self) -> None:
        await self.client.close()


class LiteLLM:
    name = "LiteLLM"

    async def open(self, base_url: str) -> None:
        import litellm

        self.litellm, self.base_url = litellm, base_url

    async def call(self) -> str:
        answer = await self.litellm.acompletion(model="openai/stub", messages=MESSAGES, api_base=self.base_url, api_key="sk-bench")
        return answer.choices[0].message.content

    async def stream(self):
        answer = await self.litellm.acompletion(
            model="openai/stub", messages=MESSAGES, api_base=self.base_url, api_key="sk-bench", stream=True
        )
        async for chunk in answer:
            if chunk.choices and chunk.choices[0].delta.content:
                yield chunk.choices[0].delta.content

    async def close(self) -> None:
        pass


async def measure(client, base_url: str, chunks: int) -> dict:
    await client.open(base_url)
    for _ in range(50):  # warm the pool and the code paths
        await client.call()
    latencies = []
    for _ in range(SEQUENTIAL):
        started = time.perf_counter()
        await client.call()
        latencies.append(time.perf_counter() - started)
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated() -> None:
        async with gate:
            await client.call()

    started = time.perf_counter()
    await asyncio.gather(*(gated() for _ in range(CONCURRENT_TOTAL)))
    throughput = CONCURRENT_TOTAL / (time.perf_counter() - started)
    first_chunk, whole = [], []
    for _ in range(STREAMS):
        started = time.perf_counter()
        count = 0
        async for _piece in client.stream():
            if count == 0:
                first_chunk.append(time.perf_counter() - started)
            count += 1
        whole.append(time.perf_counter() - started)
        assert count == chunks, f"{client.name} streamed {count} chunks, expected {chunks}"
    await client.close()
    latencies.sort()
    return {
        "client": client.name,
        "mean_ms": statistics.mean(latencies) * 1000,
        "p99_ms": latencies[int(0.99 * len(latencies))] * 1000,
        "throughput": throughput,
        "ttfc_ms": statistics.median(first_chunk) * 1000,
        "stream_ms": statistics.median(whole) * 1000,
    }


async def sequential_s(client, calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        await client.call()
    return (time.perf_counter() - started) / calls


async def concurrent_per_s(client, calls: int) -> float:
    gate = asyncio.Semaphore(CONCURRENCY)

    async def gated() -> None:
        async with gate:
            await client.call()

    started = time.perf_counter()
    await asyncio.gather(*(gated() for _ in range(calls)))
    return calls / (time.perf_counter() - started)


async def stream_chunk_s(client, chunks: int) -> tuple[float, float]:
    """One stream, per chunk (its set-up spread over ``chunks`` chunks), in wall-clock and this process's CPU time."""
    started, started_cpu = time.perf_counter(), time.process_time()
    count = 0
    async for _piece in client.stream():
        count += 1
    assert count == chunks, f"{client.name} streamed {count} chunks, expected {chunks}"
    return (time.perf_counter() - started) / chunks, (time.process_time() - started_cpu) / chunks


async def each_in_turn(clients, order, measure) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """``measure`` of each client in ``order``, in wall-clock and this process's CPU time (the stub runs in its own)."""
    wall, cpu = [0.0, 0.0], [0.0, 0.0]
    for i in order:
        started = time.process_time()
        wall[i] = await measure(clients[i])
        cpu[i] = time.process_time() - started
    return wall, cpu


async def fastest_streams(clients, order, chunks: int) -> tuple[list[float], list[float]]:  # noqa: ANN001
    """PAIR_STREAMS streams of each client, the two taking turns, and each client's fastest per chunk, in wall-clock
    and CPU time apart (the least disturbed stream, as ``timeit`` takes its fastest run; taking turns stream by
    stream lets both sides meet the same phases of a shared machine, whose speed moves by 2x within a minute)."""
    wall, cpu = [math.inf, math.inf], [math.inf, math.inf]
    for _ in range(PAIR_STREAMS):
        for i in order:
            stream_wall, stream_cpu = await stream_chunk_s(clients[i], chunks)
            wall[i], cpu[i] = min(wall[i], stream_wall), min(cpu[i], stream_cpu)
    return wall, cpu


async def paired(base_url: str, long_url: str, long_chunks: int) -> dict:
    """Per pair, the same work through raw httpx and PepperPy back to back (which goes first alternates)."""
    raw, ours, raw_long, ours_long = RawHttpx(), PepperPyClient(), RawHttpx(), PepperPyClient()
    for client, url in ((raw, base_url), (ours, base_url), (raw_long, long_url), (ours_long, long_url)):
        await client.open(url)
    for client in (raw, ours):
        await sequential_s(client, 50)  # warm the pools and the code paths
        await concurrent_per_s(client, CONCURRENCY)
    for client in (raw_long, ours_long):
        await stream_chunk_s(client, long_chunks)
    figures: dict[str, list[float]] = {"raw_chunk_us": []}
    for pair in range(PAIRS):
        order = (0, 1) if pair % 2 == 0 else (1, 0)
        for key, measured in (
            ("latency", each_in_turn((raw, ours), order, lambda c: sequential_s(c, PAIR_CALLS))),
            ("throughput", each_in_turn((raw, ours), order, lambda c: concurrent_per_s(c, PAIR_BURST))),
            ("stream_chunk", fastest_streams((raw_long, ours_long), order, long_chunks)),
        ):
            wall, cpu = await measured
            figures.setdefault(key, []).append(wall[1] / wall[0])
            figures.setdefault(f"{key}_cpu", []).append(cpu[0] / cpu[1] if key == "throughput" else cpu[1] / cpu[0])
            if key == "stream_chunk":
                figures["raw_chunk_us"].append(wall[0] * 1e6)
    for client in (raw, ours, raw_long, ours_long):
        await client.close()
    return figures


def main() -> None:
    if sys.argv[1] == "paired":
        print(json.dumps(asyncio.run(paired(sys.argv[2], sys.argv[3], int(sys.argv[4])))), flush=True)
        return
    base_url, chunks = sys.argv[1], int(sys.argv[2])
    names = sys.argv[3].split(",") if len(sys.argv) > 3 else ["raw httpx", "PepperPy", "openai SDK", "LiteLLM"]
    clients = [c for c in (RawHttpx(), PepperPyClient(), OpenAISDK(), LiteLLM()) if c.name in names]
    for client in clients:
        print(json.dumps(asyncio.run(measure(client, base_url, chunks))), flush=True)


if __name__ == "__main__":
    main()
