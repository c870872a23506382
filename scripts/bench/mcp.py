"""MCP client figures, against the real demo server (tests/servers/mcp_demo.py, the ``mcp`` SDK) over stdio.

Each figure is PepperPy's path against the ``mcp`` SDK's own ``Client`` doing the same, measured in the
same run, batches interleaved, medians:
- spawn to first tool list: a new facade opening the server (child process, handshake) and listing its
  tools, vs ``Client(stdio_client(...))`` entered and ``list_tools()``;
- one tool call's round trip (``add``): PepperPy's ``run_tool_calls`` (approval check, the call, parts,
  the tool message) vs ``client.call_tool`` (target <= 1.10x);
- listing 200 tools: PepperPy listing again (after a change) and building its tools, vs ``list_tools()``;
  and PepperPy's cached list, what each round of a tool loop costs.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import time
from typing import Any

from scripts.bench.common import ROOT, ms, table

DEMO = str(ROOT / "tests" / "servers" / "mcp_demo.py")
CALLS = 40  # per batch; batches of the two alternate, which comes first alternating too (a noisy shared machine)
ROUNDS = 25


def us(seconds: float) -> str:
    return f"{seconds * 1e6:.0f} us"


def sdk_client(*args: str) -> Any:
    from mcp import Client
    from mcp.client.stdio import StdioServerParameters, stdio_client

    return Client(stdio_client(StdioServerParameters(command=sys.executable, args=[DEMO, *args])), cache=None)


def facade() -> Any:
    from pepperpy import PepperPy

    return PepperPy().with_llm("mock")


async def spawn_to_list() -> tuple[float, float]:
    from pepperpy import MCPServer

    ours, theirs = [], []
    for _ in range(5):
        started = time.perf_counter()
        async with facade() as pepper:
            await MCPServer.stdio(sys.executable, DEMO).tools_for(pepper)
            ours.append(time.perf_counter() - started)
        started = time.perf_counter()
        async with sdk_client() as client:
            await client.list_tools()
            theirs.append(time.perf_counter() - started)
    return statistics.median(ours), statistics.median(theirs)


async def round_trip() -> tuple[float, float]:
    from pepperpy import MCPServer
    from pepperpy.llm import ToolCall
    from pepperpy.tools import run_tool_calls

    calls = [ToolCall(id="c1", name="add", arguments={"a": 2, "b": 3})]
    async with facade() as pepper, sdk_client() as client:
        tools = await MCPServer.stdio(sys.executable, DEMO).tools_for(pepper)
        async def pepperpy() -> None:
            await run_tool_calls(tools, calls)

        async def sdk() -> None:
            await client.call_tool("add", {"a": 2, "b": 3})

        samples: dict[Any, list[float]] = {pepperpy: [], sdk: []}
        for number in range(ROUNDS):
            for action in (pepperpy, sdk) if number % 2 else (sdk, pepperpy):
                started = time.perf_counter()
                for _ in range(CALLS):
                    await action()
                samples[action].append((time.perf_counter() - started) / CALLS)
    return statistics.median(samples[pepperpy]), statistics.median(samples[sdk])


async def listing(count: int) -> tuple[float, float, float]:
    from pepperpy import MCPServer

    server = MCPServer.stdio(sys.executable, DEMO, "--many", str(count))
    async with facade() as pepper, sdk_client("--many", str(count)) as client:
        await server.tools_for(pepper)
        opened = await pepper.kept_open(server._key, None)  # the session tools_for opened (kept: not made again)
        ours, theirs, cached = [], [], []
        for _ in range(ROUNDS * 3):
            opened.listed = None  # as after a change announced by the server
            started = time.perf_counter()
            tools = await server.tools_for(pepper)
            ours.append(time.perf_counter() - started)
            started = time.perf_counter()
            await server.tools_for(pepper)
            cached.append(time.perf_counter() - started)
            started = time.perf_counter()
            listed = await client.list_tools()
            theirs.append(time.perf_counter() - started)
        assert len(tools) >= count and len(listed.tools) >= count
    return statistics.median(ours), statistics.median(theirs), statistics.median(cached)


def main() -> None:
    spawn_ours, spawn_sdk = asyncio.run(spawn_to_list())
    call_ours, call_sdk = asyncio.run(round_trip())
    list_ours, list_sdk, list_cached = asyncio.run(listing(200))
    table(
        "mcp: PepperPy vs the mcp SDK's own Client, stdio demo server (wall time, medians)",
        [
            ("spawn to first tool list", ms(spawn_ours), ms(spawn_sdk), f"{spawn_ours / spawn_sdk:.2f}x"),
            ("one tool call round trip (target <= 1.10x)", us(call_ours), us(call_sdk), f"{call_ours / call_sdk:.2f}x"),
            ("listing 200 tools", ms(list_ours), ms(list_sdk), f"{list_ours / list_sdk:.2f}x"),
            ("200 tools, cached (each tool-loop round)", us(list_cached), ms(list_sdk), f"{list_cached / list_sdk:.3f}x"),
        ],
        ("figure", "PepperPy", "mcp SDK", "ratio"),
    )


if __name__ == "__main__":
    main()
