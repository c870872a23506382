"""Bedrock's Converse wire format: PepperPy messages and options to request bodies, answers back."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from pepperpy.errors import InvalidInputError, LLMError, UnsupportedPartError
from pepperpy.llm import DocumentPart, ImagePart, Message, MessageRole, ReasoningPart, TextPart, ToolCall, Usage

# The media types Converse takes as bytes, with its format names.
IMAGE_FORMATS = {"image/png": "png", "image/jpeg": "jpeg", "image/gif": "gif", "image/webp": "webp"}
DOCUMENT_FORMATS = {
    "application/pdf": "pdf", "text/csv": "csv", "text/html": "html", "text/plain": "txt", "text/markdown": "md",
    "application/msword": "doc", "application/vnd.openxmlformats-officedocument.wordprocessingml.document": "docx",
    "application/vnd.ms-excel": "xls", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": "xlsx",
}
MEDIA_TYPES = frozenset(IMAGE_FORMATS) | frozenset(DOCUMENT_FORMATS)
# Bedrock's documented limits (Converse API reference, ImageBlock and DocumentBlock).
MAX_IMAGE_BYTES = 3_750_000  # 3.75 MB
MAX_DOCUMENT_BYTES = 4_500_000  # 4.5 MB
MAX_DOCUMENTS = 5
MAX_IMAGES = 20
# A document name: alphanumerics, single whitespace characters, hyphens, parentheses, square brackets; 1-200 long.
DOCUMENT_NAME = re.compile(r"^(?!.*\s\s)[A-Za-z0-9\s\-()\[\]]{1,200}$")
NOT_IN_NAMES = re.compile(r"[^A-Za-z0-9\s\-()\[\]]+")
CACHE_POINT = {"cachePoint": {"type": "default"}}
# reasoning=... as a thinking budget (tokens) for Anthropic models; the answer keeps its own maxTokens on top.
THINKING_BUDGETS = {"low": 1024, "medium": 4096, "high": 16384}
ANSWER_TOOL = "final_result"  # the tool a structured answer is given through (structured_output="tool")
STOP_REASONS = {
    "end_turn": "stop", "stop_sequence": "stop", "tool_use": "tool_calls", "max_tokens": "length",
    "model_context_window_exceeded": "length", "guardrail_intervened": "content_filter", "content_filtered": "content_filter",
}


class Limits:
    """Counts the documents and images of one request, against Bedrock's limits, before anything is sent
    (an ``UnsupportedPartError`` beyond them: a fallback chain's next member may take the part)."""

    def __init__(self, who: str) -> None:
        self.who = who
        self.documents = self.images = 0
        self.names: set[str] = set()

    def image(self, part: ImagePart) -> None:
        self.images += 1
        if self.images > MAX_IMAGES:
            raise UnsupportedPartError(f"{self.who}: Converse takes at most {MAX_IMAGES} images per request; send fewer")
        size = len(part.read())
        if size > MAX_IMAGE_BYTES:
            raise UnsupportedPartError(
                f"{self.who}: the image {part.source} is {size} bytes; Bedrock takes at most 3.75 MB per image: "
                "make it smaller (scale it down or compress it)"
            )

    def document(self, part: DocumentPart) -> str:
        """The document's name as Bedrock takes it (checked), after checking its count and size."""
        self.documents += 1
        if self.documents > MAX_DOCUMENTS:
            raise UnsupportedPartError(
                f"{self.who}: Converse takes at most {MAX_DOCUMENTS} documents per request; send fewer, or split the work"
            )
        size = len(part.read())
        if size > MAX_DOCUMENT_BYTES:
            raise UnsupportedPartError(
                f"{self.who}: the document {part.source} is {size} bytes; Bedrock takes at most 4.5 MB per document: "
                "split it or make it smaller"
            )
        name = self._name(part)
        if name in self.names:
            name = f"{name} ({self.documents})"
        self.names.add(name)
        return name

    def _name(self, part: DocumentPart) -> str:
        if part.name is None:
            return f"Document {self.documents}"
        if part.path is not None and part.name == Path(part.path).name:  # named after its file: made fit
            fitted = " ".join(NOT_IN_NAMES.sub(" ", Path(part.name).stem).split())[:200]
            return fitted or f"Document {self.documents}"
        if not DOCUMENT_NAME.match(part.name):
            raise UnsupportedPartError(
                f"{self.who}: the document name {part.name!r} is not one Bedrock takes: 1 to 200 letters, digits, "
                "hyphens, parentheses, square brackets and single spaces; pass File(..., name='...') with such a name"
            )
        return part.name


def _media(part: Any, limits: Limits) -> dict[str, Any]:
    if part.data is None and part.path is None:
        raise UnsupportedPartError(
            f"{limits.who} cannot take the {part.type} at {part.url}: Converse takes bytes (PepperPy never fetches "
            f"a URL); download it and pass {part.type.capitalize()}(bytes, media_type) or a path"
        )
    if isinstance(part, ImagePart):
        limits.image(part)
        return {"image": {"format": IMAGE_FORMATS[part.media_type or ""], "source": {"bytes": part.base64()}}}
    name = limits.document(part)
    return {"document": {"format": DOCUMENT_FORMATS[part.media_type or ""], "name": name, "source": {"bytes": part.base64()}}}


def _blocks(message: Message, limits: Limits) -> list[dict[str, Any]]:
    """A message's parts as content blocks, a cache point after each part that asks for one."""
    blocks: list[dict[str, Any]] = []
    for part in message.parts:
        if isinstance(part, TextPart):
            if part.text:
                blocks.append({"text": part.text})
        elif isinstance(part, ReasoningPart):
            if part.encrypted is not None:
                blocks.append({"reasoningContent": {"redactedContent": part.encrypted}})
            elif part.signature is not None:  # reasoning without its signature cannot go back: left out
                blocks.append({"reasoningContent": {"reasoningText": {"text": part.text, "signature": part.signature}}})
        elif isinstance(part, (ImagePart, DocumentPart)):
            blocks.append(_media(part, limits))
        else:
            raise UnsupportedPartError(f"{limits.who}: Converse takes no {part.type} parts; leave it out")
        if getattr(part, "cache", False):
            blocks.append(CACHE_POINT)
    return blocks


def _tool_result(message: Message, limits: Limits) -> dict[str, Any]:
    """A tool's result; one with images (an MCP tool's) keeps them as image blocks, which toolResult takes."""
    content = _blocks(message, limits) if isinstance(message.content, list) else []
    return {"toolResult": {
        "toolUseId": message.tool_call_id or "", "content": content or [{"text": message.text}], "status": "success",
    }}


def system_blocks(messages: list[Message], limits: Limits) -> list[dict[str, Any]]:
    return [block for m in messages if m.role == MessageRole.SYSTEM for block in _blocks(m, limits)]


def turns(messages: list[Message], limits: Limits) -> list[dict[str, Any]]:
    """The conversation as Converse messages: roles alternate, so consecutive user-side turns (tool results,
    then a user's text) join one turn, as do consecutive assistant turns."""
    result: list[dict[str, Any]] = []
    for message in messages:
        if message.role == MessageRole.SYSTEM:
            continue
        if message.role == MessageRole.TOOL:
            role, content = "user", [_tool_result(message, limits)]
        elif message.role == MessageRole.ASSISTANT:
            role = "assistant"
            content = _blocks(message, limits) + [
                {"toolUse": {"toolUseId": c.id, "name": c.name, "input": c.arguments}} for c in message.tool_calls
            ]
        else:
            role, content = "user", _blocks(message, limits)
        if not content:
            continue  # Converse refuses an empty turn (or an empty text block)
        if result and result[-1]["role"] == role:
            result[-1]["content"].extend(content)
        else:
            result.append({"role": role, "content": content})
    return result


def reasoning_fields(value: Any, model: str, who: str) -> dict[str, Any]:
    """``reasoning=`` as the model family's own request fields (additionalModelRequestFields)."""
    if value is None or value is False:
        return {}  # thinking is off unless asked for, on every model that can turn it off
    if "anthropic." in model:
        budget = THINKING_BUDGETS["medium" if value is True else value] if isinstance(value, (str, bool)) else value
        return {"thinking": {"type": "enabled", "budget_tokens": budget}}
    if "amazon.nova-2" in model:
        effort = "medium" if value is True else value
        if not isinstance(effort, str):
            raise InvalidInputError(f"{who}: Amazon Nova takes reasoning='low', 'medium' or 'high', not a token budget")
        return {"reasoningConfig": {"type": "enabled", "maxReasoningEffort": effort}}
    raise InvalidInputError(
        f"{who}: reasoning= is mapped for Anthropic Claude (a thinking budget) and Amazon Nova 2 models on Bedrock, "
        f"not for {model}; leave it out, or pass the model's own fields with additional_model_request_fields={{...}}"
    )


def request_body(who: str, defaults: dict[str, Any], messages: list[Message], options: dict[str, Any]) -> dict[str, Any]:
    model = options.get("model") or defaults["model"]
    limits = Limits(who)
    body: dict[str, Any] = {"messages": turns(messages, limits)}
    system = system_blocks(messages, limits)
    if system:
        body["system"] = system
    extra = dict(defaults.get("additional_model_request_fields") or {})
    extra.update(reasoning_fields(options.get("reasoning", defaults.get("reasoning")), model, who))
    config: dict[str, Any] = {}
    for key, wire_key in (("max_tokens", "maxTokens"), ("temperature", "temperature"), ("top_p", "topP"),
                          ("stop", "stopSequences")):
        value = options.get(key, defaults.get(key))
        if value is not None:
            config[wire_key] = [value] if key == "stop" and isinstance(value, str) else value
    budget = (extra.get("thinking") or {}).get("budget_tokens")
    if budget and "maxTokens" in config:
        config["maxTokens"] += budget  # the thinking budget comes out of maxTokens: the answer keeps its own
    if config:
        body["inferenceConfig"] = config
    tools = [
        {"toolSpec": {"name": t.name, "inputSchema": {"json": t.parameters}} | ({"description": t.description} if t.description else {})}
        for t in options.get("tools") or []
    ]
    response_model = options.get("response_model")
    if response_model is not None and defaults.get("structured_output") == "json_schema":
        body["outputConfig"] = {"textFormat": {"type": "json_schema", "structure": {"jsonSchema": {
            "schema": json.dumps(response_model.model_json_schema()), "name": response_model.__name__,
        }}}}
    elif response_model is not None:
        tools.append({"toolSpec": {
            "name": ANSWER_TOOL, "description": "Give the final answer with this tool, in this structure.",
            "inputSchema": {"json": response_model.model_json_schema()},
        }})
    if tools:
        body["toolConfig"] = {"tools": tools}
        if response_model is not None and "outputConfig" not in body:
            only = len(tools) == 1
            body["toolConfig"]["toolChoice"] = {"tool": {"name": ANSWER_TOOL}} if only else {"any": {}}
    if extra:
        body["additionalModelRequestFields"] = extra
    return body


SERVICE = "aws"  # the genai-prices provider id that prices usage.cost


def usage(raw: dict[str, Any] | None, model: str | None) -> Usage:
    """``Usage``: the prompt counts cached tokens too, read (``cache_read_tokens``) or written
    (``cache_write_tokens``); None where not reported. ``model`` (the model id asked for) prices them."""
    raw = raw or {}
    read, written = raw.get("cacheReadInputTokens"), raw.get("cacheWriteInputTokens")
    return Usage(
        prompt_tokens=(raw.get("inputTokens") or 0) + (read or 0) + (written or 0),
        completion_tokens=raw.get("outputTokens") or 0, cache_read_tokens=read, cache_write_tokens=written,
        model=model, service=SERVICE,
    )


def finish_reason(raw: str | None) -> str | None:
    return None if raw is None else STOP_REASONS.get(raw, raw)


class Reply:
    """Builds the answer from content blocks, whole or streamed: text, reasoning (signatures kept), tool calls.

    With ``structured`` (structured_output="tool"), the answer tool's input is the answer's text (``answer``);
    text the model writes beside it is not part of the answer (it is, when the model gives no answer tool)."""

    def __init__(self, structured: bool = False) -> None:
        self.structured = structured
        self.parts: list[TextPart | ReasoningPart] = []
        self.calls: list[ToolCall] = []
        self.answer: str | None = None
        self._open: dict[int, dict[str, Any]] = {}  # streamed tool-use blocks by index: id, name, partial JSON

    # -- whole answers -----------------------------------------------------------------------------------------
    def add_block(self, block: dict[str, Any]) -> None:
        if "text" in block:
            self._text(block["text"])
        elif "reasoningContent" in block:
            reasoning = block["reasoningContent"] or {}
            if "redactedContent" in reasoning:
                self.parts.append(ReasoningPart(encrypted=reasoning["redactedContent"]))
            else:
                found = reasoning.get("reasoningText") or {}
                self.parts.append(ReasoningPart(text=found.get("text", ""), signature=found.get("signature")))
        elif "toolUse" in block:
            use = block["toolUse"]
            self._call(use.get("toolUseId") or "", use.get("name") or "", use.get("input") or {})

    def _text(self, text: str) -> None:
        last = self.parts[-1] if self.parts else None
        if isinstance(last, TextPart):
            last.text += text
        else:
            self.parts.append(TextPart(text=text))

    def _call(self, call_id: str, name: str, arguments: dict[str, Any]) -> None:
        if self.structured and name == ANSWER_TOOL:
            self.answer = json.dumps(arguments)
        else:
            self.calls.append(ToolCall(id=call_id, name=name, arguments=arguments))

    # -- streamed answers --------------------------------------------------------------------------------------
    def start(self, event: dict[str, Any]) -> None:
        use = (event.get("start") or {}).get("toolUse")
        if use is not None:
            self._open[event.get("contentBlockIndex", 0)] = {"id": use.get("toolUseId", ""), "name": use.get("name", ""), "json": ""}

    def delta(self, event: dict[str, Any], who: str) -> tuple[str, str]:
        """A contentBlockDelta in; the ``(text, reasoning)`` it adds."""
        delta = event.get("delta") or {}
        index = event.get("contentBlockIndex", 0)
        if "text" in delta:
            self._text(delta["text"])
            return ("" if self.structured else delta["text"]), ""  # a structured answer's text waits (held_text)
        if "toolUse" in delta:
            tool = self._open.get(index)
            if tool is None:
                raise LLMError(f"{who}: a tool-use delta for block {index}, which never started")
            piece = (delta["toolUse"] or {}).get("input", "")
            tool["json"] += piece
            if self.structured and tool["name"] == ANSWER_TOOL:
                self.answer = (self.answer or "") + piece
                return piece, ""
            return "", ""
        reasoning = delta.get("reasoningContent")
        if reasoning is not None:
            last = self.parts[-1] if self.parts else None
            if "redactedContent" in reasoning:
                self.parts.append(ReasoningPart(encrypted=reasoning["redactedContent"]))
                return "", ""
            if not isinstance(last, ReasoningPart) or last.encrypted is not None or last.signature is not None:
                last = ReasoningPart()
                self.parts.append(last)
            last.text += reasoning.get("text", "")
            if reasoning.get("signature"):
                last.signature = reasoning["signature"]
            return "", reasoning.get("text", "")
        return "", ""

    def stop(self, event: dict[str, Any], who: str) -> None:
        tool = self._open.pop(event.get("contentBlockIndex", 0), None)
        if tool is None:
            return
        try:
            arguments = json.loads(tool["json"] or "{}")
        except ValueError:
            raise LLMError(f"{who}: tool call {tool['name']!r} has malformed JSON input") from None
        if self.structured and tool["name"] == ANSWER_TOOL:
            self.answer = json.dumps(arguments)  # its JSON text was streamed as the answer
            return
        self.calls.append(ToolCall(id=tool["id"], name=tool["name"], arguments=arguments))

    # -- results -----------------------------------------------------------------------------------------------
    @property
    def text(self) -> str:
        """The answer's text: the answer tool's JSON for a structured answer given through it."""
        return self.answer if self.answer is not None else self.held_text

    @property
    def held_text(self) -> str:
        """The text blocks (what a structured stream holds back, unless no answer tool came)."""
        return "".join(p.text for p in self.parts if isinstance(p, TextPart))

    @property
    def reasoning(self) -> str:
        return "".join(p.text for p in self.parts if isinstance(p, ReasoningPart))

    def message(self) -> Message:
        """The assistant message: plain text when it has no reasoning, else its parts in order."""
        thoughts = [p for p in self.parts if isinstance(p, ReasoningPart)]
        if self.answer is not None:  # the answer, as text (its tool call has no result to go back with)
            parts: list[Any] = [*thoughts, TextPart(text=self.answer)]
        else:
            parts = list(self.parts)
        if not thoughts:
            return Message(role=MessageRole.ASSISTANT, content=self.text, tool_calls=self.calls)
        return Message(role=MessageRole.ASSISTANT, content=parts, tool_calls=self.calls)


__all__ = ["MEDIA_TYPES", "Reply", "finish_reason", "request_body", "usage"]
