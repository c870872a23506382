"""The MCP client that the conformance suite's client mode drives (tests/mcp_conformance.py).

The suite runs ``python tests/mcp_conformance_client.py <server url>`` with the scenario's name in
``MCP_CONFORMANCE_SCENARIO``. For ``initialize`` and ``tools_call`` a client connects over Streamable HTTP, lists the
tools and calls the first one with ``{"a": 2, "b": 3}`` (what the suite's own reference client does).

``CLIENT`` picks who does it. Today it is ``"sdk"``: the ``mcp`` SDK's ``Client`` directly (installed through the
``mcp/client`` plugin, as PepperPy installs it). PepperPy's own MCP client (``MCPServer.http(url)``, issue 22) plugs in
at ``run_with_pepperpy`` below: once it is merged, set ``CLIENT = "pepperpy"`` (or ``PEPPERPY_CONFORMANCE_CLIENT``).
"""

from __future__ import annotations

import asyncio
import os
import sys

CLIENT = os.environ.get("PEPPERPY_CONFORMANCE_CLIENT", "sdk")
ARGUMENTS = {"a": 2, "b": 3}


def _require_sdk() -> None:
    from pepperpy.cli.mcp import require_sdk

    require_sdk()


async def run_with_sdk(url: str) -> None:
    """initialize, tools/list, tools/call of the first tool: the ``mcp`` SDK's own client."""
    from mcp import Client

    async with Client(url) as client:
        tools = (await client.list_tools()).tools
        if tools:
            result = await client.call_tool(tools[0].name, ARGUMENTS)
            print(f"{tools[0].name} -> {result.content}", file=sys.stderr)


async def run_with_pepperpy(url: str) -> None:
    """The same through PepperPy's MCP client: the place to switch to once it is merged (branch i22-mcp-client).

    With that branch's API: ``server = MCPServer.http(url, name="conformance")``; a ``PepperPy()`` whose
    ``llm/mock`` is scripted to call the server's first tool with ``ARGUMENTS`` (``{"tool": name, "arguments":
    ARGUMENTS}``, then a final reply); ``chat.with_user("go").with_tools(server).generate()``; then ``aclose()``.
    The session's initialize and tools/list happen on the chat's first use of the tools."""
    raise NotImplementedError("PepperPy's MCP client (MCPServer) is not merged yet; run with CLIENT='sdk'")


RUNNERS = {"sdk": run_with_sdk, "pepperpy": run_with_pepperpy}


def main(argv: list[str]) -> int:
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    if len(argv) < 2:
        print("usage: mcp_conformance_client.py <server url> (run by the conformance suite)", file=sys.stderr)
        return 2
    if scenario not in ("initialize", "tools_call"):
        print(f"scenario {scenario!r} is not handled by this client", file=sys.stderr)
        return 1
    _require_sdk()
    asyncio.run(RUNNERS[CLIENT](argv[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
