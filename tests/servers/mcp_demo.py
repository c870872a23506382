"""A real MCP server written with the ``mcp`` SDK, for the MCP client tests and the benchmark.

    python tests/servers/mcp_demo.py                 # stdio
    python tests/servers/mcp_demo.py --http PORT     # Streamable HTTP on 127.0.0.1:PORT/mcp
    python tests/servers/mcp_demo.py --many 200      # also tool_0 ... tool_199 (listing benchmark)

Its tools return text, structured content and an image, report an error, sleep, exit mid-call,
echo a request header (HTTP), add a tool (announcing the change) and ask the client for a completion (sampling); with MCP_DEMO_FACTS
(JSON: name -> fact) set, ``retrieve_entity_info`` answers from it, as in a recorded Anthropic conversation. ``pid`` tells
the test which process to watch; stderr gets one line at start and one per ``shout``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from typing import Annotated

import mcp_types as types
from pydantic import BaseModel

from mcp.server.mcpserver import Context, MCPServer, Resolve, Sample
from mcp.server.mcpserver.utilities.types import Image

# 1x1 red PNG
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010802000000907753de0000000c4944415408d763f8cfc0000003"
    "010100c9fe92ef0000000049454e44ae426082"
)

server = MCPServer("demo")


class Weather(BaseModel):
    city: str
    celsius: float


@server.tool()
def echo(text: str) -> str:
    """Return the text unchanged."""
    return text


@server.tool()
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


@server.tool()
def weather(city: str) -> Weather:
    """The weather in a city, as structured content."""
    return Weather(city=city, celsius=21.5)


@server.tool()
def picture() -> Image:
    """A 1x1 red PNG."""
    return Image(data=PNG, format="png")


@server.tool()
def bad_image() -> types.ImageContent:
    """An image block whose data is not base64 (garbage content)."""
    return types.ImageContent(type="image", data="this is not base64!", mime_type="image/png")


@server.tool()
def fail(reason: str) -> str:
    """Always fails with the reason."""
    raise ValueError(f"failed on purpose: {reason}")


@server.tool()
async def sleep(seconds: float) -> str:
    """Sleep, then answer."""
    await asyncio.sleep(seconds)
    return "slept"


@server.tool()
def die() -> str:
    """Exit the server process in the middle of the call."""
    os._exit(3)


@server.tool()
def pid() -> int:
    """The server's process id."""
    return os.getpid()


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The value of one header of the HTTP request that called this tool ("" over stdio, or when absent)."""
    request = ctx.request_context.request
    return request.headers.get(name, "") if request is not None and hasattr(request, "headers") else ""


@server.tool()
def shout(text: str) -> str:
    """Write the text to stderr."""
    print(f"shouting {text}", file=sys.stderr, flush=True)
    return "done"


@server.tool()
async def grow(ctx: Context) -> str:
    """Add the tool 'grown' and tell the client the tool list changed."""
    server.add_tool(lambda: "I grew", name="grown", description="Added at run time.")
    await ctx.notify_tools_changed()
    return "grown"


def _sampled(question: str) -> Sample:
    return Sample([types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))], max_tokens=50)


@server.tool()
async def ask_llm(question: str, answer: Annotated[types.CreateMessageResult, Resolve(_sampled)]) -> str:
    """Ask the client's LLM (MCP sampling) and return its answer."""
    return f"the client said: {getattr(answer.content, 'text', answer.content)}"


def retrieve_entity_info(name: str) -> str:
    """Get the knowledge about the given entity."""
    return json.loads(os.environ["MCP_DEMO_FACTS"])[name]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--http", type=int)
    parser.add_argument("--many", type=int, default=0)
    options = parser.parse_args()
    if "MCP_DEMO_FACTS" in os.environ:  # the facts of a recorded conversation (tests/integration/test_mcp_client.py)
        server.add_tool(retrieve_entity_info)
    for number in range(options.many):
        server.add_tool(lambda x=number: x, name=f"tool_{number}", description=f"Tool number {number}.")
    print("demo MCP server starting", file=sys.stderr, flush=True)
    if options.http:
        server.run("streamable-http", host="127.0.0.1", port=options.http)
    else:
        server.run()


if __name__ == "__main__":
    main()
