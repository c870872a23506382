"""Call-log figures: what ``with_logging()`` adds to one LLM call (one SQLite row, WAL, synchronous=NORMAL).

Each round times the same llm/mock calls on a facade without logging and on one with it,
alternating, so that machine noise hits both alike; the difference is the write cost.
Target: < 1 ms per call.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from scripts.bench.common import table

CALLS = 2000
ROUNDS = 5


def _pepper(log: Path | None) -> Any:
    from pepperpy import PepperPy
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

    manager = PluginManager(search_paths=[builtin_plugins_dir()], home=Path(tempfile.mkdtemp(prefix="bench-home-")))
    pepper = PepperPy(plugin_manager=manager).with_llm("mock")
    return pepper.with_logging(log) if log is not None else pepper


async def _per_call(pepper: Any, stream: bool, calls: int) -> float:
    conversation = pepper.conversation(system="Be brief.")
    message = "What is the capital of France? Answer in one word, please."

    async def one() -> None:
        if stream:
            async for _ in pepper.chat.with_messages(conversation.messages).with_user(message).stream():
                pass
        else:
            await pepper.chat.with_messages(conversation.messages).with_user(message).generate()

    for _ in range(50):
        await one()
    started = time.perf_counter()
    for _ in range(calls):
        await one()
    return (time.perf_counter() - started) / calls


async def figures() -> list[tuple[str, ...]]:
    folder = Path(tempfile.mkdtemp(prefix="bench-calllog-"))
    plain, logged = _pepper(None), _pepper(folder / "logs.db")
    rows = []
    for stream in (False, True):
        without, with_log = [], []
        for _ in range(ROUNDS):
            without.append(await _per_call(plain, stream, CALLS))
            with_log.append(await _per_call(logged, stream, CALLS))
        a, b = statistics.median(without), statistics.median(with_log)
        what = "stream()" if stream else "generate()"
        rows.append((f"llm/mock {what}", f"{a * 1e6:.1f} us", f"{b * 1e6:.1f} us", f"{(b - a) * 1e6:.1f} us"))
    await plain.aclose()
    await logged.aclose()
    total = sum(1 for _ in _rows(folder / "logs.db"))
    rows.append(("rows written", "", f"{total:,}", ""))
    return rows


def _rows(path: Path) -> list[Any]:
    from pepperpy._calllog import recent

    return recent(path, 0)


def main() -> None:
    rows = asyncio.run(figures())
    table(
        f"call log: one llm/mock call without and with with_logging() ({CALLS:,} calls, median of {ROUNDS} rounds)",
        rows, ("call", "without log", "with log", "write cost per call"),
    )
    print("target: write cost < 1 ms per call")


if __name__ == "__main__":
    main()
