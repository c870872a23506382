"""Recording figures: a replayed call (``with_recording(..., mode="replay")``) against a cache hit and a live call,
all on llm/mock through the facade, in the same run.

CPU time per call (steadier than wall time on a shared machine), batches of the three interleaved, medians. Each
recorded answer is replayed once per ``Recording``, so every replay batch gets a fresh ``Recording`` over a file
holding as many copies of the recorded call as the batch makes (written once, read by the batch's first call,
which is not timed).
"""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.common import table

BATCH = 300
ROUNDS = 9
REPLY = "Red, green and blue are three colours of the rainbow, and there are four more."


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us"


async def _per_call(pepper: Any, stream: bool, calls: int) -> float:
    chat = pepper.chat.with_system("Be brief.").with_user("Name three colours.").with_options(temperature=0)
    started = time.process_time()
    for _ in range(calls):
        if stream:
            async for _chunk in chat.stream():
                pass
        else:
            await chat.generate()
    return (time.process_time() - started) / calls


async def _figures(folder: Path, stream: bool) -> tuple[float, float, float]:
    from pepperpy import PepperPy
    from pepperpy._recording import render

    one = folder / f"one-{stream}.json"
    await _per_call(PepperPy().with_llm("mock", replies=[REPLY]).with_recording(one), stream, 1)
    (call,) = json.loads(one.read_text())["calls"]
    many = folder / f"many-{stream}.json"
    many.write_text(render([call] * (BATCH + 1)))

    live = PepperPy().with_llm("mock", replies=[REPLY])
    cached = PepperPy().with_llm("mock", replies=[REPLY]).with_cache()
    await _per_call(cached, stream, 1)  # stored: the batches below are hits
    times: dict[str, list[float]] = {"live": [], "cache": [], "replay": []}
    async with live, cached:
        for _ in range(ROUNDS):
            times["live"].append(await _per_call(live, stream, BATCH))
            times["cache"].append(await _per_call(cached, stream, BATCH))
            replaying = PepperPy().with_llm("mock", replies=[REPLY]).with_recording(many, mode="replay")
            await _per_call(replaying, stream, 1)  # reads the file
            times["replay"].append(await _per_call(replaying, stream, BATCH))
            assert not replaying.llm.initialized
    return statistics.median(times["live"]), statistics.median(times["cache"]), statistics.median(times["replay"])


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for stream in (False, True):
            live, cached, replayed = asyncio.run(_figures(Path(folder), stream))
            kind = "stream (16 chunks)" if stream else "generate"
            rows.append((kind, us(replayed), f"{us(cached)} ({replayed / cached:.2f}x)", f"{us(live)} ({replayed / live:.2f}x)"))
    table(
        f"recording: a replayed llm/mock call vs a cache hit and a live call, CPU per call (median of {ROUNDS} batches of {BATCH})",
        rows, ("call", "replayed", "cache hit (replay / hit)", "live llm/mock (replay / live)"),
    )


if __name__ == "__main__":
    main()
