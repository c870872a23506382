"""Issue 11 figures: the per-call cost of a fallback chain, and how fast a refused connection falls through.

The serving member is llm/mock, so the figures are PepperPy's own cost, not a model's.
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from scripts.bench.common import table

CALLS = 20_000
FALLBACK_CALLS = 300


async def _per_call(action: Callable[[], Awaitable[Any]], calls: int) -> float:
    for _ in range(min(calls // 10, 200)):
        await action()
    rounds = []
    for _ in range(5):
        started = time.perf_counter()
        for _ in range(calls // 5):
            await action()
        rounds.append((time.perf_counter() - started) / (calls // 5))
    return statistics.median(rounds)


def _closed_port_url() -> str:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}/v1"


async def figures() -> list[tuple[str, str, str]]:
    from pepperpy._fallback import FallbackLLM
    from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir

    manager = PluginManager(search_paths=[builtin_plugins_dir()])
    manager.register_plugin_alias("llm", "quick", "mock", {"replies": ["ok"]})
    mock = manager.create_provider("llm", "mock", replies=["ok"])
    chain = FallbackLLM(manager, ["quick"])  # an alias, resolved through a one-member chain
    refused = FallbackLLM(manager, [("openai", {"base_url": _closed_port_url(), "api_key": "k"}), ("mock", {"replies": ["ok"]})])
    async with mock, chain, refused:
        direct = await _per_call(lambda: mock.generate("hi"), CALLS)
        through_chain = await _per_call(lambda: chain.generate("hi"), CALLS)
        falling = await _per_call(lambda: refused.generate("hi"), FALLBACK_CALLS)
    return [
        ("llm/mock called directly", f"{direct * 1e6:.1f} us", "1.00x"),
        ("the same through an alias in a one-member fallback chain", f"{through_chain * 1e6:.1f} us",
         f"+{(through_chain - direct) * 1e6:.1f} us"),
        ("chain [openai on a refused port, mock]: refused, then served", f"{falling * 1e6:.1f} us",
         f"+{(falling - direct) * 1e3:.2f} ms above mock's own"),
    ]


def main() -> None:
    rows = asyncio.run(figures())
    table("fallback chains (llm/mock serves; median of 5 rounds)", rows, ("call", "per call", "vs direct"))
    print("targets: alias + chain overhead < 20 us per call; falling through a refused connection < 5 ms above the next member")


if __name__ == "__main__":
    main()
