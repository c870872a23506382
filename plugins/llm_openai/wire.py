"""Chat Completions wire format: PepperPy messages and options to request bodies, answers back."""

from __future__ import annotations

import json
from typing import Any

from pepperpy.errors import ProviderError
from pepperpy.llm import Message, ToolCall, Usage
from pepperpy.structured import json_schema_format

def message_to_wire(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role.value, "content": message.content}
    if message.tool_calls:
        wire["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in message.tool_calls
        ]
    if message.tool_call_id:
        wire["tool_call_id"] = message.tool_call_id
    elif message.name:
        wire["name"] = message.name
    return wire


def request_body(
    who: str, defaults: dict[str, Any], messages: list[Message], options: dict[str, Any], *, json_schema: bool, stream: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": [message_to_wire(m) for m in messages]}
    for key in ("model", "temperature", "max_tokens", "stop", "seed", "top_p"):
        value = options.get(key, defaults.get(key))
        if value is not None:
            body[key] = value
    if options.get("tools"):
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in options["tools"]
        ]
    model = options.get("response_model")
    if model is not None:
        body["response_format"] = json_schema_format(model) if json_schema else {"type": "json_object"}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


def tool_call(raw: dict[str, Any], who: str) -> ToolCall:
    function = raw.get("function") or {}
    arguments = function.get("arguments") or "{}"
    try:
        parsed = json.loads(arguments) if isinstance(arguments, str) else arguments
    except ValueError:
        raise ProviderError(f"{who}: the model called {function.get('name')!r} with malformed JSON arguments: {arguments[:200]!r}") from None
    return ToolCall(id=raw.get("id") or "", name=function.get("name") or "", arguments=parsed)


def usage(raw: dict[str, Any] | None) -> Usage:
    raw = raw or {}
    return Usage(prompt_tokens=raw.get("prompt_tokens") or 0, completion_tokens=raw.get("completion_tokens") or 0)


def first_choice(answer: dict[str, Any], who: str) -> dict[str, Any]:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not choices:
        raise ProviderError(f"{who}: the answer has no choices: {str(answer)[:200]}")
    return choices[0]


class ToolCallAccumulator:
    """Joins the pieces of streamed tool calls (they arrive as deltas keyed by index)."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, deltas: list[dict[str, Any]]) -> None:
        for delta in deltas:
            call = self._calls.setdefault(delta.get("index", 0), {"id": "", "function": {"name": "", "arguments": ""}})
            call["id"] = delta.get("id") or call["id"]
            function = delta.get("function") or {}
            call["function"]["name"] += function.get("name") or ""
            call["function"]["arguments"] += function.get("arguments") or ""

    def calls(self, who: str) -> list[ToolCall]:
        return [tool_call(self._calls[i], who) for i in sorted(self._calls)]
