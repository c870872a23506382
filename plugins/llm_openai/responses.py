"""The OpenAI Responses API (``POST responses``): PepperPy messages to input items, answers and stream events back.

System messages become ``instructions``; user parts become ``input_text`` / ``input_image`` /
``input_file``; an assistant's tool calls become ``function_call`` items and tool messages
``function_call_output`` items; reasoning parts go back as ``reasoning`` items with their
``encrypted_content`` unchanged (requests ask for it with ``include`` when ``store`` is off).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from pepperpy.errors import ConfigError, LLMError
from pepperpy.http import Endpoint, parse_event_data
from pepperpy.llm import (
    DocumentPart,
    GenerationChunk,
    GenerationResult,
    ImagePart,
    Message,
    MessageRole,
    ReasoningPart,
    TextPart,
    ToolCall,
    Usage,
)

from .wire import reasoning_effort, tool_call

# What ``input_image`` and ``input_file`` take.
MEDIA_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp", "application/pdf"})


def _part(part: Any) -> dict[str, Any] | None:
    if isinstance(part, TextPart):
        return {"type": "input_text", "text": part.text}
    if isinstance(part, ImagePart):
        url = part.url if part.data is None and part.path is None else part.data_url()
        return {"type": "input_image", "image_url": url, "detail": "auto"}
    if isinstance(part, DocumentPart):
        if part.data is None and part.path is None:
            return {"type": "input_file", "file_url": part.url}
        return {"type": "input_file", "file_data": part.data_url(), "filename": part.name or "file.pdf"}
    return None  # reasoning in a user message: nothing to send


def _reasoning_item(part: ReasoningPart, store: bool) -> dict[str, Any] | None:
    """A reasoning part as the service gave it; without its id (or, with ``store`` off, its encrypted
    content) the service cannot take it back, so it is left out."""
    if not part.id or (not store and not part.encrypted):
        return None
    item: dict[str, Any] = {"type": "reasoning", "id": part.id, "summary": []}
    if part.text:
        item["summary"] = [{"type": "summary_text", "text": part.text}]
    if part.encrypted:
        item["encrypted_content"] = part.encrypted
    return item


def _items(message: Message, store: bool) -> list[dict[str, Any]]:
    if message.role == MessageRole.TOOL:
        output: Any = message.text
        if isinstance(message.content, list) and any(isinstance(p, (ImagePart, DocumentPart)) for p in message.content):
            output = [item for item in map(_part, message.content) if item is not None]  # text, images and files
        return [{"type": "function_call_output", "call_id": message.tool_call_id or "", "output": output}]
    if message.role == MessageRole.ASSISTANT:
        items: list[dict[str, Any]] = []
        for part in message.parts:
            if isinstance(part, ReasoningPart):
                item = _reasoning_item(part, store)
                if item is not None:
                    items.append(item)
        if message.text:  # with its type: llama.cpp's /v1/responses refuses an assistant message without one
            items.append({"type": "message", "role": "assistant", "content": message.text})
        items += [
            {"type": "function_call", "call_id": c.id, "name": c.name, "arguments": json.dumps(c.arguments)}
            for c in message.tool_calls
        ]
        return items
    if isinstance(message.content, list):
        content = [wire for wire in map(_part, message.content) if wire is not None]
        return [{"role": message.role.value, "content": content}]
    return [{"role": message.role.value, "content": message.content or ""}]


def _reasoning(value: Any) -> dict[str, Any]:
    """``reasoning=`` as ``reasoning.effort`` (as Chat Completions' ``reasoning_effort``), with summaries unless off."""
    return {"effort": reasoning_effort(value)} | ({"summary": "auto"} if value is not False else {})


def request_body(
    who: str, defaults: dict[str, Any], messages: list[Message], options: dict[str, Any], *, store: bool, stream: bool
) -> dict[str, Any]:
    """The JSON body of ``POST responses`` for ``messages`` and the call's options (over ``defaults``)."""
    for unsupported in ("stop", "seed"):
        if options.get(unsupported, defaults.get(unsupported)) is not None:
            raise ConfigError(f"{who}: the Responses API has no {unsupported!r}; leave it out, or use api='chat'")
    system = [m.text for m in messages if m.role == MessageRole.SYSTEM]
    body: dict[str, Any] = {"model": options.get("model", defaults.get("model"))}
    if system:
        body["instructions"] = "\n\n".join(system)
    body["input"] = [item for m in messages if m.role != MessageRole.SYSTEM for item in _items(m, store)]
    for key, wire in (("temperature", "temperature"), ("top_p", "top_p"), ("max_tokens", "max_output_tokens")):
        value = options.get(key, defaults.get(key))
        if value is not None:
            body[wire] = value
    if options.get("tools"):
        body["tools"] = [
            {"type": "function", "name": t.name, "description": t.description, "parameters": t.parameters, "strict": False}
            for t in options["tools"]
        ]
    model = options.get("response_model")
    if model is not None:
        body["text"] = {"format": {"type": "json_schema", "name": model.__name__, "schema": model.model_json_schema()}}
    if options.get("reasoning") is not None:
        body["reasoning"] = _reasoning(options["reasoning"])
        if not store and options["reasoning"] is not False:
            body["include"] = ["reasoning.encrypted_content"]
    body["store"] = store
    if stream:
        body["stream"] = True
    return body


def usage(raw: dict[str, Any] | None, model: str | None = None, service: str | None = None) -> Usage:
    """The counts, with cached and reasoning tokens where reported (None otherwise); ``model`` and ``service``
    price them."""
    raw = raw or {}
    return Usage(
        prompt_tokens=raw.get("input_tokens") or 0, completion_tokens=raw.get("output_tokens") or 0,
        cache_read_tokens=(raw.get("input_tokens_details") or {}).get("cached_tokens"),
        reasoning_tokens=(raw.get("output_tokens_details") or {}).get("reasoning_tokens"), model=model, service=service,
    )


def _reasoning_part(item: dict[str, Any]) -> ReasoningPart:
    texts = [s.get("text") or "" for s in item.get("summary") or []]
    texts += [c.get("text") or "" for c in item.get("content") or [] if c.get("type") == "reasoning_text"]
    return ReasoningPart(text="\n\n".join(t for t in texts if t), id=item.get("id"), encrypted=item.get("encrypted_content"))


def _finish_reason(answer: dict[str, Any], calls: list[ToolCall]) -> str:
    if answer.get("status") == "incomplete":
        reason = (answer.get("incomplete_details") or {}).get("reason")
        return {"max_output_tokens": "length", "content_filter": "content_filter"}.get(reason or "", reason or "length")
    return "tool_calls" if calls else "stop"


def _failed(answer: dict[str, Any], who: str) -> None:
    if answer.get("status") == "failed" or answer.get("error"):
        error = answer.get("error") or {}
        raise LLMError(f"{who}: the response failed: {error.get('message') or error or 'no reason given'}")


def result(answer: dict[str, Any], messages: list[Message], who: str, service: str | None = None) -> GenerationResult:
    """A ``GenerationResult`` from a whole Responses answer (``response.completed``'s ``response``)."""
    if not isinstance(answer, dict) or not isinstance(answer.get("output"), list):
        raise LLMError(f"{who}: the answer has no output: {str(answer)[:200]}")
    _failed(answer, who)
    texts: list[str] = []
    thoughts: list[ReasoningPart] = []
    calls: list[ToolCall] = []
    for item in answer["output"]:
        kind = item.get("type")
        if kind == "message":
            texts += [c.get("text") or "" for c in item.get("content") or [] if c.get("type") == "output_text"]
        elif kind == "reasoning":
            thoughts.append(_reasoning_part(item))
        elif kind == "function_call":
            calls.append(tool_call({"id": item.get("call_id"), "function": item}, who))
    content = "".join(texts)
    reply_content: Any = [*thoughts, TextPart(text=content)] if thoughts else content
    reply = Message(role=MessageRole.ASSISTANT, content=reply_content, tool_calls=calls)
    return GenerationResult(
        content=content, reasoning="\n\n".join(t.text for t in thoughts if t.text), messages=[*messages, reply],
        usage=usage(answer.get("usage"), answer.get("model"), service), tool_calls=calls,
        metadata={"model": answer.get("model"), "finish_reason": _finish_reason(answer, calls), "id": answer.get("id")},
    )


async def generate(endpoint: Endpoint, path: str, body: dict[str, Any], messages: list[Message], who: str,
                   timeout: float | None, service: str | None = None) -> GenerationResult:
    return result(await endpoint.post(path, body, timeout), messages, who, service)


async def stream(endpoint: Endpoint, path: str, body: dict[str, Any], who: str,
                 timeout: float | None, service: str | None = None) -> AsyncIterator[GenerationChunk]:
    """The chunks of a streamed answer: text and reasoning deltas as they come; the last chunk carries the
    finish reason, tool calls, usage and the reply message (``message``: its reasoning parts with their ids and
    encrypted content, which a conversation keeps)."""
    finished = False
    reasoned = apart = False  # reasoning streamed so far; a new summary part or reasoning item began since
    async with aclosing(endpoint.stream(path, body, timeout)) as events:
        async for kind, data in events:  # read to the end so the connection is reused
            event = parse_event_data(data, who)
            kind = event.get("type") or kind
            if kind == "response.output_text.delta":
                yield GenerationChunk.from_text(event.get("delta") or "")
            elif kind in ("response.reasoning_summary_text.delta", "response.reasoning_text.delta"):
                delta = event.get("delta") or ""
                if delta:  # pieces joined as ``result()`` joins summaries and items: with a blank line
                    yield GenerationChunk(reasoning=("\n\n" if apart else "") + delta)
                    reasoned, apart = True, False
            elif kind in ("response.reasoning_summary_part.added", "response.output_item.added"):
                apart = apart or reasoned
            elif kind in ("response.completed", "response.incomplete", "response.failed"):
                done = result(event.get("response") or {}, [], who, service)
                finished = True
                yield GenerationChunk(
                    finish_reason=done.metadata["finish_reason"], tool_calls=done.tool_calls, usage=done.usage,
                    metadata=done.metadata, message=done.messages[-1],
                )
            elif kind == "error":
                raise LLMError(f"{who}: the stream reported an error: {event.get('message') or event}")
    if not finished:
        raise LLMError(f"{who}: the stream ended before the answer was complete; try again")
