"""Runs inside the benchmark venv for instructions.py: PepperPy's per-call latency over raw httpx's on a local stub,
for each wire format (memory_clients.CLIENTS), in interleaved pairs.

Usage: python latency_pairs.py STUB_URL (http://127.0.0.1:PORT). Per pair, PAIR_CALLS sequential calls through
each client back to back (which goes first alternates), so a shared machine's load cancels out; prints one JSON
line: per format, the pairs' wall-clock and this process's CPU-time ratios (the stub runs in its own process).
"""

from __future__ import annotations

import asyncio
import json
import sys
import time

from memory_clients import CLIENTS
from http_clients import sequential_s

PAIRS, PAIR_CALLS = 31, 100


async def pairs(stub_url: str) -> dict[str, dict[str, list[float]]]:
    figures: dict[str, dict[str, list[float]]] = {}
    for wire, classes in CLIENTS.items():
        clients = [cls() for cls in classes]  # raw, PepperPy
        for client in clients:
            await client.open(stub_url + ("/v1beta" if wire == "gemini" else "/v1"))
            await sequential_s(client, 50)  # warm the pool and the code paths
        wall, cpu = [], []
        for pair in range(PAIRS):
            seconds, cpu_seconds = [0.0, 0.0], [0.0, 0.0]
            for i in (0, 1) if pair % 2 == 0 else (1, 0):
                started = time.process_time()
                seconds[i] = await sequential_s(clients[i], PAIR_CALLS)
                cpu_seconds[i] = time.process_time() - started
            wall.append(seconds[1] / seconds[0])
            cpu.append(cpu_seconds[1] / cpu_seconds[0])
        for client in clients:
            await client.close()
        figures[wire] = {"wall": wall, "cpu": cpu}
    return figures


if __name__ == "__main__":
    print(json.dumps(asyncio.run(pairs(sys.argv[1]))), flush=True)
