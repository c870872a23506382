"""Runs inside the benchmark venv: the same calls through raw httpx, PepperPy, the openai SDK and LiteLLM.

Usage: python http_clients.py BASE_URL STREAM_CHUNKS LONG_URL LONG_CHUNKS [ROUNDS [CLIENTS]]. BASE_URL serves
STREAM_CHUNKS-chunk streams (first chunk), LONG_URL LONG_CHUNKS-chunk ones (the cost per chunk). Raw httpx and
PepperPy run ROUNDS times, alternating, so that their ratios compare runs taken moments apart on a noisy
machine; the others once. Prints one JSON line of figures per client and round.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

MESSAGES = [{"role": "user", "content": "Say hello."}]
SEQUENTIAL, CONCURRENT_TOTAL, CONCURRENCY, STREAMS, LONG_STREAMS = 1000, 3000, 64, 200, 15


class RawHttpx:
    name = "raw httpx"

    async def open(self, base_url: str) -> None:
        import httpx

        self.client = httpx.AsyncClient(base_url=base_url, limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        self.headers = {"Authorization": "Bearer sk-bench"}

    async def call(self) -> str:
        response = await self.client.post("chat/completions", json={"model": "stub", "messages": MESSAGES}, headers=self.headers)
        response.raise_for_status()
        return response.json()["choices"][0]["message"]["content"]

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


class PepperPyClient:
    name = "PepperPy"

    async def open(self, base_url: str) -> None:
        from pepperpy import PepperPy

        self.pepper = PepperPy().with_llm("openai", base_url=base_url, api_key="sk-bench", model="stub")
        await self.pepper.__aenter__()

    async def call(self) -> str:
        return (await self.pepper.chat.with_user("Say hello.").generate()).content

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


async def per_chunk_us(client, chunks: int) -> float:
    """The median time of one LONG stream, per chunk, in microseconds (the stream's set-up spread thin)."""
    whole = []
    for _ in range(LONG_STREAMS + 1):
        started = time.perf_counter()
        count = 0
        async for _piece in client.stream():
            count += 1
        whole.append(time.perf_counter() - started)
        assert count == chunks, f"{client.name} streamed {count} chunks, expected {chunks}"
    return statistics.median(whole[1:]) / chunks * 1e6


async def measure(client, base_url: str, chunks: int, long_url: str, long_chunks: int) -> dict:
    await client.open(long_url)
    long_us = await per_chunk_us(client, long_chunks)
    await client.close()
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
        "long_chunk_us": long_us,
    }


def main() -> None:
    base_url, chunks, long_url, long_chunks = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    rounds = int(sys.argv[5]) if len(sys.argv) > 5 else 1
    names = sys.argv[6].split(",") if len(sys.argv) > 6 else ["raw httpx", "PepperPy", "openai SDK", "LiteLLM"]
    runs = [(r, c) for r in range(rounds) for c in (RawHttpx(), PepperPyClient()) if c.name in names]
    runs += [(0, c) for c in (OpenAISDK(), LiteLLM()) if c.name in names]
    for round_number, client in runs:
        figures = asyncio.run(measure(client, base_url, chunks, long_url, long_chunks))
        print(json.dumps({**figures, "round": round_number}), flush=True)


if __name__ == "__main__":
    main()
