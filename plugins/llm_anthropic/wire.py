"""Anthropic Messages API wire format: PepperPy messages and options to request bodies, answers back."""

from __future__ import annotations

import json
import re
from typing import Any

from pepperpy.errors import InvalidInputError, LLMError
from pepperpy.llm import (
    DocumentPart, ImagePart, Message, MessageRole, ReasoningPart, TextPart, ToolCall, Usage, reasoning_for_model,
)
from pepperpy.structured import schema_instruction

# What the Messages API takes, and the sizes it documents as its limits.
MEDIA_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp", "application/pdf", "text/plain"})
LIMITS = {"image": 5 * 1024 * 1024, "document": 32 * 1024 * 1024}
# reasoning=... as a thinking budget (tokens); the answer keeps its own max_tokens on top.
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
EPHEMERAL = {"type": "ephemeral"}

# The Messages API counts cached prompt tokens apart from ``input_tokens``: the prompt is their sum.
INPUT_TOKEN_FIELDS = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")


SERVICE = "anthropic"  # the genai-prices provider id that prices usage.cost (a Claude model name is needed too)


def prompt_tokens(raw: dict[str, Any]) -> int:
    """Every prompt token of a ``usage`` object: uncached, written to the cache, and read from it."""
    return sum(value for field in INPUT_TOKEN_FIELDS if isinstance(value := raw.get(field), int))


def usage(raw: dict[str, Any], model: str | None) -> Usage:
    """The counts of a ``usage`` object, cache reads and writes apart (None when not reported)."""
    return Usage(
        prompt_tokens=prompt_tokens(raw), completion_tokens=raw.get("output_tokens") or 0,
        cache_read_tokens=raw.get("cache_read_input_tokens"), cache_write_tokens=raw.get("cache_creation_input_tokens"),
        model=model, service=SERVICE,
    )


def _source(who: str, part: Any) -> dict[str, Any]:
    if part.url is not None and part.data is None and part.path is None:
        return {"type": "url", "url": part.url}
    limit = LIMITS.get(part.type)
    if limit is not None and len(part.read()) > limit:
        raise InvalidInputError(
            f"{who}: the {part.type} {part.source} is {len(part.read())} bytes; the Messages API takes at most "
            f"{limit // (1024 * 1024)} MB per {part.type}: make it smaller, or pass it by URL"
        )
    if part.media_type == "text/plain":
        return {"type": "text", "media_type": "text/plain", "data": part.read().decode("utf-8", "replace")}
    return {"type": "base64", "media_type": part.media_type, "data": part.base64()}


def _block(who: str, part: Any) -> dict[str, Any] | None:
    """A part as a content block (None for reasoning that cannot be sent back: it has no signature)."""
    if isinstance(part, TextPart):
        block: dict[str, Any] = {"type": "text", "text": part.text}
    elif isinstance(part, ReasoningPart):
        if part.encrypted is not None:
            return {"type": "redacted_thinking", "data": part.encrypted}
        if part.signature is None:
            return None
        return {"type": "thinking", "thinking": part.text, "signature": part.signature}
    elif isinstance(part, ImagePart):
        block = {"type": "image", "source": _source(who, part)}
    elif isinstance(part, DocumentPart):
        block = {"type": "document", "source": _source(who, part)}
    else:
        raise InvalidInputError(f"{who}: the Messages API takes no {part.type} parts; leave it out")
    if getattr(part, "cache", False):
        block["cache_control"] = EPHEMERAL
    return block


def _blocks(who: str, message: Message) -> list[dict[str, Any]]:
    return [block for part in message.parts if (block := _block(who, part)) is not None]


def _assistant_blocks(who: str, message: Message) -> list[dict[str, Any]] | str:
    if not message.tool_calls and not isinstance(message.content, list):
        return message.content or ""
    blocks = _blocks(who, message)  # thinking first, as the model wrote it
    blocks += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in message.tool_calls]
    return blocks


def _system(who: str, messages: list[Message]) -> str | list[dict[str, Any]] | None:
    """The system prompt: one text, or blocks when a part of it carries a cache point."""
    system = [m for m in messages if m.role == MessageRole.SYSTEM]
    if not any(isinstance(m.content, list) for m in system):
        return "\n\n".join(m.content or "" for m in system) or None
    return [block for m in system for block in _blocks(who, m)]


def split_messages(messages: list[Message], who: str = "llm/anthropic") -> tuple[Any, list[dict[str, Any]]]:
    """The system prompt and the turns; consecutive tool results join one user turn, as the API wants."""
    system = _system(who, messages)
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == MessageRole.SYSTEM:
            continue
        if message.role == MessageRole.TOOL:
            # a result with images (an MCP tool's) goes as text and image blocks, which tool_result takes
            content = _blocks(who, message) if isinstance(message.content, list) else message.text
            block = {"type": "tool_result", "tool_use_id": message.tool_call_id, "content": content}
            if turns and turns[-1]["role"] == "user" and isinstance(turns[-1]["content"], list):
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": "user", "content": [block]})
        elif message.role == MessageRole.ASSISTANT:
            turns.append({"role": "assistant", "content": _assistant_blocks(who, message)})
        elif isinstance(message.content, list):
            turns.append({"role": "user", "content": _blocks(who, message)})
        else:
            turns.append({"role": "user", "content": message.content or ""})
    return system, turns


def request_body(
    who: str, defaults: dict[str, Any], messages: list[Message], options: dict[str, Any], stream: bool,
    hosted: bool = False,
) -> dict[str, Any]:
    system, turns = split_messages(messages, who)
    if options.get("response_model") is not None:  # no schema mode here: ask for JSON in the system prompt
        instruction = schema_instruction(options["response_model"])
        if isinstance(system, list):
            system = [*system, {"type": "text", "text": instruction}]
        else:
            system = "\n\n".join(filter(None, [system, instruction]))
    body: dict[str, Any] = {"model": options.get("model", defaults["model"]), "messages": turns}
    body["max_tokens"] = options.get("max_tokens", defaults["max_tokens"])
    for key, wire_key in (("temperature", "temperature"), ("top_p", "top_p"), ("stop", "stop_sequences")):
        value = options.get(key, defaults.get(key))
        if value is not None:
            body[wire_key] = value
    if system:
        body["system"] = system
    reasoning = options.get("reasoning")
    thinking = thinking_config(checked_reasoning(who, body["model"], reasoning) if hosted else reasoning)
    if thinking is not None:
        body["thinking"] = thinking
        body["max_tokens"] += thinking.get("budget_tokens", 0)  # the budget comes out of max_tokens
    if options.get("tools"):
        body["tools"] = [{"name": t.name, "description": t.description, "input_schema": t.parameters} for t in options["tools"]]
    if stream:
        body["stream"] = True
    return body


# Claude models before 3.7 do not think: on Anthropic's service, reasoning=... for one is refused before any request,
# reasoning=False left out (a local server or proxy may serve any model under these names: it decides).
NOT_THINKING = re.compile(r"^(anthropic/)?claude-(2|instant|3-(opus|sonnet|haiku|5-))")


def checked_reasoning(who: str, model: str, value: Any) -> Any:
    """``reasoning=`` for a Claude ``model`` (see ``reasoning_for_model``)."""
    return reasoning_for_model(
        who, model, value, cannot_reason=NOT_THINKING, use="a thinking model (claude-3-7-sonnet, claude-sonnet-4 or later)"
    )


def thinking_config(value: Any) -> dict[str, Any] | None:
    """``reasoning=`` as ``thinking``: an effort or True as a budget, a number as the budget itself, False off."""
    if value is None:
        return None
    if value is False:
        return {"type": "disabled"}
    budget = THINKING_BUDGETS["medium" if value is True else value] if isinstance(value, (str, bool)) else value
    return {"type": "enabled", "budget_tokens": budget}


def reasoning_parts(blocks: list[dict[str, Any]]) -> list[ReasoningPart]:
    """The answer's thinking blocks as parts, signatures and redacted data kept to send back unchanged."""
    parts = []
    for block in blocks:
        if block.get("type") == "thinking":
            parts.append(ReasoningPart(text=block.get("thinking", ""), signature=block.get("signature") or None))
        elif block.get("type") == "redacted_thinking":
            parts.append(ReasoningPart(encrypted=block.get("data")))
    return parts


def reply_message(blocks: list[dict[str, Any]], text: str, calls: list[ToolCall]) -> Message:
    """The assistant message of an answer: its thinking blocks (signatures kept) before its text, and its calls."""
    thoughts = reasoning_parts(blocks)
    content: Any = [*thoughts, TextPart(text=text)] if thoughts else text
    return Message(role=MessageRole.ASSISTANT, content=content, tool_calls=calls)


def parse_answer(answer: dict[str, Any], who: str) -> tuple[str, list[ToolCall], Usage]:
    if not isinstance(answer, dict) or not isinstance(answer.get("content"), list):
        raise LLMError(f"{who}: unexpected answer: {str(answer)[:200]}")
    text = "".join(block.get("text", "") for block in answer["content"] if block.get("type") == "text")
    calls = [
        ToolCall(id=block["id"], name=block["name"], arguments=block.get("input") or {})
        for block in answer["content"] if block.get("type") == "tool_use"
    ]
    return text, calls, usage(answer.get("usage") or {}, answer.get("model"))


class StreamState:
    """Follows the streaming events: text deltas, tool-use blocks with partial JSON, usage, stop reason."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.usage = Usage(service=SERVICE)
        self.stop_reason: str | None = None
        self.finished = False
        self._tools: dict[int, dict[str, Any]] = {}
        self._thinking: dict[int, dict[str, Any]] = {}  # thinking and redacted_thinking blocks, by index
        self._text: list[str] = []
        self._input: dict[str, Any] = {}  # the latest of each INPUT_TOKEN_FIELDS (message_delta may repeat them)

    def _count(self, raw: dict[str, Any]) -> None:
        self._input.update({key: raw[key] for key in INPUT_TOKEN_FIELDS if key in raw})
        output = raw.get("output_tokens")
        self.usage = usage({**self._input, "output_tokens": self.usage.completion_tokens if output is None else output},
                           self.usage.model)

    def take(self, event_type: str, event: dict[str, Any]) -> tuple[str, str]:
        """Take one event in; return the text and the reasoning it adds (often none). Thinking blocks are
        kept whole, with the signature their ``signature_delta`` brings, for ``message()``."""
        if event_type == "content_block_start":
            block = event.get("content_block") or {}
            if block.get("type") in ("thinking", "redacted_thinking"):
                self._thinking[event.get("index", len(self._thinking))] = dict(block)
                return "", block.get("thinking", "")
        elif event_type == "content_block_delta":
            delta = event.get("delta") or {}
            block = self._thinking.get(event.get("index", -1))
            if delta.get("type") == "thinking_delta":
                if block is not None:
                    block["thinking"] = block.get("thinking", "") + delta.get("thinking", "")
                return "", delta.get("thinking", "")
            if delta.get("type") == "signature_delta":
                if block is not None:
                    block["signature"] = block.get("signature") or ""
                    block["signature"] += delta.get("signature", "")
                return "", ""
        text = self.text_of(event_type, event)
        if text:
            self._text.append(text)
        return text, ""

    def message(self) -> Message:
        """The assistant message streamed, as ``generate`` would give it: thinking blocks with their signatures."""
        blocks = [self._thinking[index] for index in sorted(self._thinking)]
        return reply_message(blocks, "".join(self._text), self.tool_calls())

    def text_of(self, event_type: str, event: dict[str, Any]) -> str:
        """Take one event in; return the text it adds (often none)."""
        if event_type == "message_start":
            message = event.get("message") or {}
            self.usage.model = message.get("model")
            self._count(message.get("usage") or {})
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
            raise LLMError(f"{self.who}: the service reported {error.get('type')}: {error.get('message')}")
        return ""

    def tool_calls(self) -> list[ToolCall]:
        calls = []
        for index in sorted(self._tools):
            tool = self._tools[index]
            try:
                arguments = json.loads(tool["json"] or "{}")
            except ValueError:
                raise LLMError(f"{self.who}: tool call {tool['name']!r} has malformed JSON input") from None
            calls.append(ToolCall(id=tool["id"], name=tool["name"], arguments=arguments))
        return calls
