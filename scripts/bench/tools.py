"""Tool-loop figures: what a 3-round tool loop costs beyond the tools' own time.

llm/mock scripts three rounds of two tool calls (one sync, one async tool), then the answer. The
baseline is the same loop written by hand in the same run: the same four LLM calls through the same
facade (``with_tools(..., run=False)``), the tools called directly one after the other, the tool
messages built by hand. With instant tools the difference is the loop's own overhead (schema lookup,
a worker thread for the sync tool, gather, the tool_results chunk); with tools that wait 5 ms each,
the loop runs a round's two calls at once, the hand-written loop one after the other.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from typing import Any

from scripts.bench.common import ms, table

ROUNDS = 3
CALLS = [{"tool": "lookup", "arguments": {"key": "a"}}, {"tool": "fetch", "arguments": {"key": "b"}}]
REPLIES: list[Any] = [CALLS] * ROUNDS + ["done"]


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


def make_tools(wait: float, sync: bool = True) -> tuple[Any, Any]:
    """A sync (or, with ``sync=False``, async) tool and an async one, each waiting ``wait`` seconds (0: instant)."""
    def lookup(key: str) -> str:
        """Look a key up (sync)."""
        if wait:
            time.sleep(wait)
        return f"value of {key}"

    async def lookup_async(key: str) -> str:
        """Look a key up (async)."""
        if wait:
            await asyncio.sleep(wait)
        return f"value of {key}"

    if not sync:
        lookup_async.__name__ = "lookup"
        lookup = lookup_async  # type: ignore[assignment]

    async def fetch(key: str) -> str:
        """Fetch a key (async)."""
        if wait:
            await asyncio.sleep(wait)
        return f"fetched {key}"

    return lookup, fetch


async def by_hand(pepper: Any, chat: Any, functions: dict[str, Any], stream: bool) -> None:
    """The loop written by hand: ``chat`` offers the tools with ``run=False``; the tools are called directly."""
    from pepperpy.llm import Message, MessageRole

    messages = chat.with_user("go").messages
    for _ in range(ROUNDS + 1):
        builder = chat.with_messages(messages)
        if stream:
            calls, pieces = [], []
            async for chunk in builder.stream():
                pieces.append(chunk.content)
                calls.extend(chunk.tool_calls)
            messages = [*messages, Message(role=MessageRole.ASSISTANT, content="".join(pieces), tool_calls=calls)]
        else:
            result = await builder.generate()
            calls, messages = result.tool_calls, result.messages
        if not calls:
            return
        replies = []
        for call in calls:
            output = functions[call.name](**call.arguments)
            if asyncio.iscoroutine(output):
                output = await output
            content = output if isinstance(output, str) else json.dumps(output)
            replies.append(Message(role=MessageRole.TOOL, content=content, tool_call_id=call.id, name=call.name))
        messages = [*messages, *replies]


async def looped(pepper: Any, chat: Any, functions: dict[str, Any], stream: bool) -> None:
    """The loop PepperPy runs: ``chat`` offers the tools with ``run=True``."""
    if stream:
        async for _ in chat.with_user("go").stream():
            pass
    else:
        await chat.with_user("go").generate()


async def figures(wait: float, repeat: int, sync: bool = True) -> dict[str, float]:
    """Median wall seconds per loop of each way, batches interleaved (the tools' schemas built once, outside)."""
    from pepperpy import PepperPy

    lookup, fetch = make_tools(wait, sync)
    functions = {"lookup": lookup, "fetch": fetch}
    samples: dict[str, list[float]] = {}
    async with PepperPy().with_llm("mock", replies=REPLIES) as pepper:
        ways = {
            "by hand": (by_hand, pepper.chat.with_tools(lookup, fetch, run=False)),
            "with_tools": (looped, pepper.chat.with_tools(lookup, fetch)),
        }
        for path in ("generate", "stream"):
            for name, (run, chat) in ways.items():
                await run(pepper, chat, functions, path == "stream")  # warm up
        for _ in range(repeat):
            for path in ("generate", "stream"):
                for name, (run, chat) in ways.items():
                    started = time.perf_counter()
                    await run(pepper, chat, functions, path == "stream")
                    samples.setdefault(f"{path}, {name}", []).append(time.perf_counter() - started)
    return {name: statistics.median(values) for name, values in samples.items()}


def rows(found: dict[str, float], show: Any) -> list[tuple[str, ...]]:
    out = []
    for path in ("generate", "stream"):
        hand, loop = found[f"{path}, by hand"], found[f"{path}, with_tools"]
        out.append((f"{path}, by hand", show(hand), "baseline", ""))
        out.append((f"{path}, with_tools loop", show(loop), f"{loop / hand:.2f}x", f"{show(loop - hand)} per loop"))
    return out


def main() -> None:
    instant = asyncio.run(figures(0.0, 300))
    table(f"tool loop, {ROUNDS} rounds x 2 calls (a sync and an async tool) + answer, llm/mock, instant tools: "
          "the loop's own overhead", rows(instant, us), ("way", "per loop", "vs by hand", "difference"))
    no_thread = asyncio.run(figures(0.0, 300, sync=False))
    table("the same with both tools async (no worker thread): what the sync tool's thread costs is the difference",
          rows(no_thread, us), ("way", "per loop", "vs by hand", "difference"))
    waiting = asyncio.run(figures(0.005, 20))
    table(f"tool loop, {ROUNDS} rounds x 2 calls waiting 5 ms each (30 ms of tool time in all)",
          rows(waiting, ms), ("way", "per loop", "vs by hand", "difference"))


if __name__ == "__main__":
    main()
