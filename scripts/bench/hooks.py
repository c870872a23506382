"""Hook figures: the cost of one hook on a call, and a cache hit vs a miss on the real local model.

Per-hook overhead: the same llm/mock call through a facade with 0 and with 10 pass-through
hooks; (time with 10 - time with 0) / 10. Cache: a miss on llm/local (SmolLM2 answering)
against a hit of the same call from the in-memory and the SQLite cache.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.common import ms, table

CALLS = 3000
HOOKS = 10


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} us"


async def _batch(chat: Any, calls: int) -> float:
    """CPU seconds per call over ``calls`` calls (CPU time: steadier than wall time on a shared machine)."""
    started = time.process_time()
    for _ in range(calls):
        await chat.generate()
    return (time.process_time() - started) / calls


async def hook_overhead() -> tuple[float, float]:
    """Per-call CPU time without and with ``HOOKS`` pass-through hooks, batches interleaved, medians."""
    from pepperpy import PepperPy

    async def passing(call: Any, call_next: Any) -> Any:
        return await call_next(call)

    bare = PepperPy().with_llm("mock")
    hooked = PepperPy().with_llm("mock")
    for _ in range(HOOKS):
        hooked.with_hook(passing)
    async with bare, hooked:
        plain, wrapped = bare.chat.with_user("ping"), hooked.chat.with_user("ping")
        await _batch(plain, 100), await _batch(wrapped, 100)
        without, with_hooks = [], []
        for _ in range(9):
            without.append(await _batch(plain, CALLS // 9))
            with_hooks.append(await _batch(wrapped, CALLS // 9))
    return statistics.median(without), statistics.median(with_hooks)


async def cache_figures() -> list[tuple[str, str, str]]:
    from pepperpy import PepperPy

    settings = {"temperature": 0, "seed": 1, "max_tokens": 48}
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for label, path in (("memory", None), ("SQLite", Path(folder) / "cache.db")):
            async with PepperPy().with_llm("local").with_cache(path=path) as pepper:
                misses, hits = [], []
                for n in range(3):
                    chat = pepper.chat.with_user(f"Name a colour ({label} {n}).").with_options(**settings)
                    started = time.perf_counter()
                    await chat.generate()
                    misses.append(time.perf_counter() - started)
                    for _ in range(200):
                        started = time.perf_counter()
                        await chat.generate()
                        hits.append(time.perf_counter() - started)
            miss, hit = statistics.median(misses), statistics.median(hits)
            rows.append((f"llm/local, {label} cache", f"miss {ms(miss)}", f"hit {us(hit)} ({miss / hit:,.0f}x faster)"))
    return rows


def main() -> None:
    without, with_hooks = asyncio.run(hook_overhead())
    per_hook = (with_hooks - without) / HOOKS
    table(
        "hooks: one llm/mock call, CPU time (target < 20 us per hook)",
        [
            ("no user hook", us(without), "baseline"),
            (f"{HOOKS} pass-through hooks", us(with_hooks), f"{with_hooks / without:.2f}x"),
            ("per hook", us(per_hook), f"{per_hook / without:.3f}x of a call"),
        ],
        ("facade call", "per call", "vs baseline"),
    )
    table("response cache: hit vs miss", asyncio.run(cache_figures()), ("case", "miss", "hit"))


if __name__ == "__main__":
    main()
