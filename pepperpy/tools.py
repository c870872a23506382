"""Plain Python functions as LLM tools: a JSON schema from type hints and docstring, and running calls."""

from __future__ import annotations

import asyncio
import functools
import inspect
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, get_type_hints

from pydantic import TypeAdapter

from pepperpy.errors import ConfigError
from pepperpy.llm import Message, MessageRole, ToolCall


@dataclass(frozen=True)
class Tool:
    """A function the model may call: its name, description and JSON-schema parameters."""

    name: str
    description: str
    parameters: dict[str, Any]
    function: Callable[..., Any]

    @functools.cached_property
    def _signature(self) -> inspect.Signature:
        return inspect.signature(self.function)

    @functools.cached_property
    def _on_the_loop(self) -> bool:
        return inspect.iscoroutinefunction(self.function)

    async def run(self, arguments: dict[str, Any]) -> Any:
        """Call the function with ``arguments``: an ``async def`` on the event loop, a plain ``def`` in a worker
        thread (``asyncio.to_thread``), so that the calls of one round run at once and a slow one never stops the loop."""
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


async def _reply(by_name: dict[str, Tool], call: ToolCall) -> Message:
    """The tool message answering ``call``; a missing tool or a tool's exception is an error the model sees."""
    tool = by_name.get(call.name)
    if tool is None:
        output: Any = f"error: there is no tool named {call.name!r}; tools are: {', '.join(by_name)}"
    else:
        try:
            output = await tool.run(call.arguments)
        except Exception as exc:  # the model sees the failure and may recover
            output = f"error: {type(exc).__name__}: {exc}"
    content = output if isinstance(output, str) else json.dumps(output, default=str)
    return Message(role=MessageRole.TOOL, content=content, tool_call_id=call.id, name=call.name)


async def run_tool_calls(tools: list[Tool], calls: list[ToolCall]) -> list[Message]:
    """Run the calls of one answer concurrently; the tool messages to send back, in the calls' order."""
    by_name = {tool.name: tool for tool in tools}
    if len(calls) == 1:
        return [await _reply(by_name, calls[0])]
    return list(await asyncio.gather(*(_reply(by_name, call) for call in calls)))


__all__ = ["Tool", "run_tool_calls", "tool_from_function"]
