"""LLM tools: plain Python functions (a JSON schema from type hints and docstring), tool sources such as MCP
servers (pepperpy/mcp.py), and running the calls a model asks for.

A tool returns a value (sent as JSON), a str, or a list of parts (text and images, from an MCP server): that
list is the tool message's content as it is. A failure the model may recover from goes back as text starting
with ``error:``; a ``ToolError`` (the tool's server crashed, hung or spoke garbage) is raised to the caller.
"""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol, get_type_hints, runtime_checkable

from pydantic import TypeAdapter

from pepperpy.errors import ConfigError, ToolError
from pepperpy.llm import Message, MessageRole, ToolCall
from pepperpy.parts import MediaPart, TextPart

# approve(server, tool, arguments) -> True to run the call; server is None for a plain function.
Approve = Callable[[str | None, str, dict[str, Any]], bool | Awaitable[bool]]


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, description and JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]
    source: str | None = None  # the MCP server it comes from; None for a plain function
    approve: Approve | None = None

    def origin(self) -> str:
        """Where the tool comes from, for messages."""
        if self.source is not None:
            return f"MCP server {self.source!r}"
        return f"function {getattr(self.function, '__module__', '?')}.{getattr(self.function, '__qualname__', self.name)}"

    @functools.cached_property
    def _signature(self) -> inspect.Signature:
        return inspect.signature(self.function)

    @functools.cached_property
    def _on_the_loop(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    async def run(self, arguments: dict[str, Any]) -> Any:
        """Call the function with ``arguments``: an ``async def`` on the event loop, a plain ``def`` in a worker
        thread (``asyncio.to_thread``), so that the calls of one round run at once and a slow one never stops the loop."""
        if self.approve is not None:
            allowed = self.approve(self.source, self.name, arguments)
            if not (await allowed if inspect.isawaitable(allowed) else allowed):
                return f"error: the user refused this call of {self.name}; do not retry it"
        try:
            bound = self._signature.bind(**arguments)
        except TypeError as exc:
            return f"error: bad arguments for {self.name}: {exc}"
        if self._on_the_loop:
            return await self.function(*bound.args, **bound.kwargs)
        result = await asyncio.to_thread(self.function, *bound.args, **bound.kwargs)
        return await result if inspect.isawaitable(result) else result


def tool_from_function(function: Callable[..., Any]) -> Tool:
    """Describe ``function`` as a tool; every parameter needs a type hint."""
    name = function.__name__
    hints = get_type_hints(function)
    properties: dict[str, Any] = {}
    required: list[str] = []
    for parameter in inspect.signature(function).parameters.values():
        if parameter.name not in hints:
            raise ConfigError(f"tool {name}: parameter {parameter.name!r} needs a type hint to build its schema")
        schema = TypeAdapter(hints[parameter.name]).json_schema()
        if parameter.default is inspect.Parameter.empty:
            required.append(parameter.name)
        elif isinstance(parameter.default, (str, int, float, bool, type(None))):
            schema["default"] = parameter.default
        properties[parameter.name] = schema
    description = inspect.getdoc(function) or name
    parameters = {"type": "object", "properties": properties, "required": required}
    return Tool(name=name, description=description.split("\n\n")[0], parameters=parameters, function=function)


@runtime_checkable
class ToolSource(Protocol):
    """Tools listed from elsewhere (an MCP server) when a chat of ``owner`` (the facade) first needs them."""

    name: str

    async def tools_for(self, owner: Any) -> list[Tool]: ...

    def with_approval(self, approve: Approve | None) -> ToolSource: ...


async def collect_tools(items: Iterable[Tool | ToolSource], owner: Any) -> list[Tool]:
    """The tools of ``items`` (a source's listed for ``owner``); a name offered twice is a ConfigError naming both."""
    tools: dict[str, Tool] = {}
    for item in items:
        for tool in [item] if isinstance(item, Tool) else await item.tools_for(owner):
            if tool.name in tools and tools[tool.name] is not tool:
                raise ConfigError(
                    f"two tools are named {tool.name!r}: one from {tools[tool.name].origin()}, one from {tool.origin()}; "
                    "rename one with server.tools(prefix=...) or leave one out with server.tools(exclude=[...])"
                )
            tools[tool.name] = tool
    return list(tools.values())


def _content(output: Any) -> Any:
    """A tool's output as a tool message's content: a str as it is; a list holding parts (Image(...), text parts,
    strs) as parts, or as one str when all of it is text; anything else as JSON."""
    if isinstance(output, str):
        return output
    if isinstance(output, list) and any(isinstance(p, (TextPart, MediaPart)) for p in output):
        if all(isinstance(p, (str, TextPart, MediaPart)) for p in output):
            parts = [TextPart(text=p) if isinstance(p, str) else p for p in output]
            return "\n".join(p.text for p in parts) if all(isinstance(p, TextPart) for p in parts) else parts
    return json.dumps(output, default=str)


async def _reply(by_name: dict[str, Tool], call: ToolCall) -> Message:
    """The tool message answering ``call``; a missing tool or a tool's exception is an error the model sees."""
    tool = by_name.get(call.name)
    if tool is None:
        output: Any = f"error: there is no tool named {call.name!r}; tools are: {', '.join(by_name)}"
    else:
        try:
            output = await tool.run(call.arguments)
        except ToolError:
            raise
        except Exception as exc:  # the model sees the failure and may recover
            output = f"error: {type(exc).__name__}: {exc}"
    return Message(role=MessageRole.TOOL, content=_content(output), tool_call_id=call.id, name=call.name)


async def run_tool_calls(tools: list[Tool], calls: list[ToolCall]) -> list[Message]:
    """Run the calls of one answer concurrently; the tool messages to send back, in the calls' order."""
    by_name = {tool.name: tool for tool in tools}
    if len(calls) == 1:
        return [await _reply(by_name, calls[0])]
    return list(await asyncio.gather(*(_reply(by_name, call) for call in calls)))


__all__ = ["Approve", "Tool", "ToolSource", "collect_tools", "run_tool_calls", "tool_from_function"]
