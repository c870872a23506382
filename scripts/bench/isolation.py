"""Process isolation figures (issue 13): what a worker process costs over the same plugin in-process.

- Per call: llm/mock ``generate`` in-process vs ``isolation="process"``, p50 and p99 over 1,000 calls
  (target: < 0.3 ms added at p50). Baseline: a bare JSON-lines round trip over a subprocess's pipes.
- Cold start: from ``create_provider`` (env already built) to the first answer, against a bare
  interpreter spawn and the imports the worker needs (PepperPy's modules and the plugin's) in a fresh
  interpreter (target: < 150 ms plus those imports). The worker starts when the provider is created
  (``with_*``), in the background: a caller doing its own work first finds it warm.
- Streaming: per-chunk cost of a 2,000-chunk llm/mock stream, in-process vs across the boundary
  (target: < 30 us added per chunk).
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.common import ms, percentile, table

CALLS = 1000
COLD_STARTS = 5
CHUNKS = 2000
RAW_CHILD = r"""
import asyncio, json, os
loop = asyncio.new_event_loop()
pending = b""
def readable():
    global pending
    data = os.read(0, 65536)
    if not data:
        os._exit(0)
    lines = (pending + data).split(b"\n")
    pending = lines.pop()
    for line in lines:
        os.write(1, (json.dumps({"id": json.loads(line)["id"], "ok": "x" * 100}) + "\n").encode())
loop.add_reader(0, readable)
loop.run_forever()
"""


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us"


async def _latencies(provider: Any, calls: int) -> list[float]:
    from pepperpy.llm import Message

    messages = [Message(role="user", content="ping " * 16)]
    for _ in range(100):
        await provider.generate(messages)
    samples = []
    for _ in range(calls):
        started = time.perf_counter()
        await provider.generate(messages)
        samples.append(time.perf_counter() - started)
    return samples


async def _raw_round_trips(calls: int) -> list[float]:
    """A bare JSON-lines round trip of ~100 B over a subprocess's stdin/stdout, read with add_reader."""
    import json

    child = subprocess.Popen(  # noqa: ASYNC220 - started once, before the timing
        [sys.executable, "-c", RAW_CHILD], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
    )
    assert child.stdin is not None and child.stdout is not None
    loop = asyncio.get_running_loop()
    waiting: list[asyncio.Future[bytes]] = []
    loop.add_reader(child.stdout.fileno(), lambda: waiting[-1].set_result(os.read(child.stdout.fileno(), 65536)))
    samples = []
    try:
        for number in range(calls + 100):
            waiting.append(loop.create_future())
            started = time.perf_counter()
            os.write(child.stdin.fileno(), (json.dumps({"id": number, "x": "y" * 100}) + "\n").encode())
            await waiting[-1]
            if number >= 100:
                samples.append(time.perf_counter() - started)
    finally:
        loop.remove_reader(child.stdout.fileno())
        child.stdin.close()
        child.wait()
        child.stdout.close()
    return samples


async def per_call(manager: Any) -> list[tuple[str, str, str, str]]:
    raw = await _raw_round_trips(CALLS)
    async with manager.create_provider("llm", "mock") as inprocess:
        local = await _latencies(inprocess, CALLS)
    async with manager.create_provider("llm", "mock", isolation="process") as isolated:
        remote = await _latencies(isolated, CALLS)
    added = percentile(remote, 0.5) - percentile(local, 0.5)
    return [
        ("JSON-lines round trip, bare (baseline)", us(percentile(raw, 0.5)), us(percentile(raw, 0.99)), ""),
        ("llm/mock in-process", us(percentile(local, 0.5)), us(percentile(local, 0.99)), ""),
        ("llm/mock isolation=process", us(percentile(remote, 0.5)), us(percentile(remote, 0.99)),
         f"+{us(added)} at p50 ({'ok' if added < 300e-6 else 'over'}: target < 300 us)"),
    ]


def _fresh_seconds(command: list[str], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(command, check=True)
        samples.append(time.perf_counter() - started)
    return statistics.median(samples)


async def cold_start(manager: Any) -> list[tuple[str, str, str]]:
    from pepperpy._isolation import env

    info = manager.discover()["llm/mock"]
    venv = env.ensure_env(manager.home, info.id, manager.requirement_set(info))
    python = str(env.venv_python(venv))
    bare = _fresh_seconds([python, "-S", "-I", "-c", "pass"], COLD_STARTS)
    site = _fresh_seconds([python, "-s", "-P", "-c", "pass"], COLD_STARTS)
    needed = "import pepperpy.plugin_manager, pepperpy._config, pepperpy.llm, pepperpy.hooks, pepperpy._worker"
    imports = _fresh_seconds([python, "-s", "-P", "-c", needed], COLD_STARTS) - site
    firsts, creates, warm_firsts = [], [], []
    for _ in range(COLD_STARTS):
        started = time.perf_counter()
        provider = manager.create_provider("llm", "mock", isolation="process")
        creates.append(time.perf_counter() - started)
        async with provider:
            await provider.generate("ping")
        firsts.append(time.perf_counter() - started)
        provider = manager.create_provider("llm", "mock", isolation="process")
        await asyncio.sleep(0.5)  # the caller's own work, while the worker starts
        started = time.perf_counter()
        async with provider:
            await provider.generate("ping")
        warm_firsts.append(time.perf_counter() - started)
    first = statistics.median(firsts)
    beyond = first - imports
    return [
        ("bare interpreter spawn (python -S -I)", ms(bare), "baseline"),
        ("interpreter with site (the worker's flags)", ms(site), ""),
        ("imports the worker needs (PepperPy modules, llm/mock)", ms(imports), "fresh interpreter"),
        ("create_provider, isolation=process (worker spawned)", ms(statistics.median(creates)), "returns at once"),
        ("create to first answer", ms(first),
         f"{ms(beyond)} beyond the imports ({'ok' if beyond < 0.150 else 'over'}: target < 150 ms)"),
        ("open + first answer after 500 ms of the caller's own work", ms(statistics.median(warm_firsts)),
         "the worker started at create: cost overlapped"),
    ]


async def streaming(manager: Any) -> list[tuple[str, str, str]]:
    reply = "w " * (CHUNKS - 1)
    rows = []
    per_chunk = {}
    for label, extra in (("in-process", {}), ("isolation=process", {"isolation": "process"})):
        async with manager.create_provider("llm", "mock", replies=[reply], **extra) as provider:
            rounds = []
            for _ in range(5):
                started, count = time.perf_counter(), 0
                async for _ in provider.generate_stream("go"):
                    count += 1
                rounds.append((time.perf_counter() - started) / count)
            per_chunk[label] = statistics.median(rounds)
            rows.append((f"llm/mock stream, {label}", us(per_chunk[label]), f"{count} chunks"))
    added = per_chunk["isolation=process"] - per_chunk["in-process"]
    rows.append(("added per chunk", us(added), f"{'ok' if added < 30e-6 else 'over'}: target < 30 us"))
    return rows


async def figures(home: Path) -> tuple[list[Any], list[Any], list[Any]]:
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=home)
    started = time.perf_counter()
    manager.create_provider("llm", "mock", isolation="process")  # builds the worker env (uv venv) once
    print(f"(worker env for llm/mock built by uv in {ms(time.perf_counter() - started)}, once per home)")
    return await per_call(manager), await cold_start(manager), await streaming(manager)


def main() -> None:
    with tempfile.TemporaryDirectory() as home:
        calls, cold, stream = asyncio.run(figures(Path(home)))
    table(f"isolation: one llm/mock generate, {CALLS} calls", calls, ("case", "p50", "p99", "added"))
    table("isolation: worker cold start (median of 5)", cold, ("step", "time", "note"))
    table(f"isolation: streaming {CHUNKS} chunks", stream, ("case", "per chunk", "note"))


if __name__ == "__main__":
    main()
