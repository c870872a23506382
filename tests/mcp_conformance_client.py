"""The MCP client that the conformance suite's client mode drives (tests/mcp_conformance.py): PepperPy's own.

The suite runs ``python tests/mcp_conformance_client.py <server url>`` with the scenario's name in
``MCP_CONFORMANCE_SCENARIO``. PepperPy's client does what the suite's own reference client does, through the public
API a user has: ``MCPServer.http(url)`` offered to a chat (``with_tools``) whose ``llm/mock`` is scripted to call the
server's first tool (with ``{"a": 2, "b": 3}``, the arguments the suite's ``add_numbers`` takes, kept to those the
tool's schema names), then to answer. The session's initialize and tools/list happen on the chat's first use of the
tools; the call goes through the tool loop; ``aclose`` ends the session.

``PEPPERPY_CONFORMANCE_CLIENT=sdk`` runs the ``mcp`` SDK's ``Client`` alone instead (to tell a PepperPy bug from an
SDK one). Which client scenarios run, and why the others do not apply, is in tests/mcp_conformance.py.
"""

from __future__ import annotations

import asyncio
import os
import sys

CLIENT = os.environ.get("PEPPERPY_CONFORMANCE_CLIENT", "pepperpy")
ARGUMENTS = {"a": 2, "b": 3}


def _require_sdk() -> None:
    from pepperpy.cli.mcp import require_sdk

    require_sdk()


def _arguments(schema: dict) -> dict:
    """``ARGUMENTS`` kept to the parameters a tool's input schema names."""
    return {key: value for key, value in ARGUMENTS.items() if key in (schema.get("properties") or {})}


async def run_with_sdk(url: str) -> None:
    """initialize, tools/list, tools/call of the first tool: the ``mcp`` SDK's own client."""
    from mcp import Client

    async with Client(url) as client:
        tools = (await client.list_tools()).tools
        if tools:
            result = await client.call_tool(tools[0].name, _arguments(tools[0].input_schema or {}))
            print(f"{tools[0].name} -> {result.content}", file=sys.stderr)


async def run_with_pepperpy(url: str) -> None:
    """initialize, tools/list, tools/call of the first tool: PepperPy's MCP client in a mock-scripted tool loop."""
    from pepperpy import MCPServer, PepperPy

    server = MCPServer.http(url, name="conformance")
    pepper = PepperPy().with_llm("mock", replies=["listed"])
    try:  # the session opens and lists the tools on the chat's first use of them; the mock records what was offered
        await pepper.chat.with_user("which tools?").with_tools(server, run=False).generate()
        offered = pepper.llm.options[-1]["tools"]
    finally:
        await pepper.aclose()
    if not offered:
        return
    first = offered[0]
    call = {"tool": first.name, "arguments": _arguments(first.parameters)}
    pepper = PepperPy().with_llm("mock", replies=[call, "done"], cycle=False)
    try:
        result = await pepper.chat.with_user("go").with_tools(server).generate()
        sent = pepper.llm.calls[-1][-1]  # the tool result the loop sent back to the model
        print(f"{first.name} -> {sent.content!r}; answer {result.content!r}", file=sys.stderr)
    finally:
        await pepper.aclose()


RUNNERS = {"sdk": run_with_sdk, "pepperpy": run_with_pepperpy}


def main(argv: list[str]) -> int:
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    if len(argv) < 2:
        print("usage: mcp_conformance_client.py <server url> (run by the conformance suite)", file=sys.stderr)
        return 2
    if CLIENT not in RUNNERS:
        print(f"PEPPERPY_CONFORMANCE_CLIENT={CLIENT!r}: use one of {', '.join(RUNNERS)}", file=sys.stderr)
        return 2
    _require_sdk()
    print(f"scenario {scenario or '(none)'} with the {CLIENT} client", file=sys.stderr)
    asyncio.run(RUNNERS[CLIENT](argv[-1]))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
