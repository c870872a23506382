"""Anthropic Messages API wire format: PepperPy messages and options to request bodies, answers back."""

from __future__ import annotations

import json
from typing import Any

from pepperpy.errors import ProviderError
from pepperpy.llm import Message, MessageRole, ToolCall, Usage
from pepperpy.structured import schema_instruction

# The Messages API counts cached prompt tokens apart from ``input_tokens``: the prompt is their sum.
INPUT_TOKEN_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


def prompt_tokens(raw: dict[str, Any]) -> int:
    """Every prompt token of a ``usage`` object: uncached, written to the cache, and read from it."""
    return sum(value for field in INPUT_TOKEN_FIELDS if isinstance(value := raw.get(field), int))


def _assistant_blocks(message: Message) -> list[dict[str, Any]] | str:
    if not message.tool_calls:
        return message.content or ""
    blocks: list[dict[str, Any]] = [{"type": "text", "text": message.content}] if message.content else []
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in message.tool_calls]
    return blocks


def split_messages(messages: list[Message]) -> tuple[str | None, list[dict[str, Any]]]:
    """The system prompt and the turns; consecutive tool results join one user turn, as the API wants."""
    system = "\n\n".join(m.content or "" for m in messages if m.role == MessageRole.SYSTEM) or None
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == MessageRole.SYSTEM:
            continue
        if message.role == MessageRole.TOOL:
            block = {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": message.content or ""}
            if turns and turns[-1]["role"] == "user" and isinstance(turns[-1]["content"], list):
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        elif message.role == MessageRole.ASSISTANT:
            turns.append({"role": "assistant", "content": _assistant_blocks(message)})
        else:
            turns.append({"role": "user", "content": message.content or ""})
    return system, turns


def request_body(
    who: str, defaults: dict[str, Any], messages: list[Message], options: dict[str, Any], stream: bool
) -> dict[str, Any]:
    system, turns = split_messages(messages)
    if options.get("response_model") is not None:  # no schema mode here: ask for JSON in the system prompt
        system = "\n\n".join(filter(None, [system, schema_instruction(options["response_model"])]))
    body: dict[str, Any] = {"model": options.get("model", defaults["model"]), "messages": turns}
    body["max_tokens"] = options.get("max_tokens", defaults["max_tokens"])
    for key, wire_key in (("temperature", "temperature"), ("top_p", "top_p"), ("stop", "stop_sequences")):
        value = options.get(key, defaults.get(key))
        if value is not None:
            body[wire_key] = value
    if system:
        body["system"] = system
    if options.get("tools"):
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in options["tools"]]
    if stream:
        body["stream"] = True
    return body


def parse_answer(answer: dict[str, Any], who: str) -> tuple[str, list[ToolCall], Usage]:
    if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
        raise ProviderError(f"{who}: unexpected answer: {str(answer)[:200]}")
    text = "".join(block.get("text", "") for block in answer["content"] if block.get("type") == "text")
    calls = [
        ToolCall(id=block["id"], name=block["name"], arguments=block.get("input") or {})
        for block in answer["content"] if block.get("type") == "tool_use"
    ]
    raw = answer.get("usage") or {}
    return text, calls, Usage(prompt_tokens=prompt_tokens(raw), completion_tokens=raw.get("output_tokens") or 0)


class StreamState:
    """Follows the streaming events: text deltas, tool-use blocks with partial JSON, usage, stop reason."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.usage = Usage()
        self.stop_reason: str | None = None
        self.finished = False
        self._tools: dict[int, dict[str, Any]] = {}
        self._input: dict[str, Any] = {}  # the latest of each INPUT_TOKEN_FIELDS (message_delta may repeat them)

    def _count(self, raw: dict[str, Any]) -> None:
        self._input.update({key: raw[key] for key in INPUT_TOKEN_FIELDS if key in raw})
        self.usage.prompt_tokens = prompt_tokens(self._input)
        if raw.get("output_tokens") is not None:
            self.usage.completion_tokens = raw["output_tokens"]

    def text_of(self, event_type: str, event: dict[str, Any]) -> str:
        """Take one event in; return the text it adds (often none)."""
        if event_type == "message_start":
            self._count((event.get("message") or {}).get("usage") or {})
        elif event_type == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") == "tool_use":
                self._tools[event["index"]] = {"id": block["id"], "name": block["name"], "json": ""}
            return block.get("text", "")
        elif event_type == "content_block_delta":
            delta = event.get("delta") or {}
            if delta.get("type") == "input_json_delta":
                self._tools[event["index"]]["json"] += delta.get("partial_json", "")
            return delta.get("text", "")
        elif event_type == "message_delta":
            self.stop_reason = (event.get("delta") or {}).get("stop_reason")
            self._count(event.get("usage") or {})  # cumulative counts
        elif event_type == "message_stop":
            self.finished = True
        elif event_type == "error":
            error = event.get("error") or {}
            raise ProviderError(f"{self.who}: the service reported {error.get('type')}: {error.get('message')}")
        return ""

    def tool_calls(self) -> list[ToolCall]:
        calls = []
        for index in sorted(self._tools):
            tool = self._tools[index]
            try:
                arguments = json.loads(tool["json"] or "{}")
            except ValueError:
                raise ProviderError(f"{self.who}: tool call {tool['name']!r} has malformed JSON input") from None
            calls.append(ToolCall(id=tool["id"], name=tool["name"], arguments=arguments))
        return calls
