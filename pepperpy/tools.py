"""Plain Python functions as LLM tools: a JSON schema from type hints and docstring, and running calls."""

from __future__ import annotations

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

    async def run(self, arguments: dict[str, Any]) -> Any:
        try:
            bound = inspect.signature(self.function).bind(**arguments)
        except TypeError as exc:
            return f"error: bad arguments for {self.name}: {exc}"
        result = self.function(*bound.args, **bound.kwargs)
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


async def run_tool_calls(tools: list[Tool], calls: list[ToolCall]) -> list[Message]:
    """Call each requested tool and return the tool messages to send back."""
    by_name = {tool.name: tool for tool in tools}
    replies = []
    for call in calls:
        tool = by_name.get(call.name)
        if tool is None:
            output: Any = f"error: there is no tool named {call.name!r}; tools are: {', '.join(by_name)}"
        else:
            try:
                output = await tool.run(call.arguments)
            except Exception as exc:  # the model sees the failure and may recover
                output = f"error: {type(exc).__name__}: {exc}"
        content = output if isinstance(output, str) else json.dumps(output, default=str)
        replies.append(Message(role=MessageRole.TOOL, content=content, tool_call_id=call.id, name=call.name))
    return replies


__all__ = ["Tool", "run_tool_calls", "tool_from_function"]
