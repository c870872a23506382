"""Gemini's generateContent wire format: PepperPy messages and options to request bodies, answers back.

Thought signatures: Gemini puts a ``thoughtSignature`` on a thought part, or on the part that
follows its thinking (an answer text or the first function call). Each is kept as a
``ReasoningPart`` at the place it came from: on the thought's reasoning part, or as a
reasoning part with no text just before the part that carried it (after the text, for a
function call: calls are kept in ``tool_calls``). Sent back, a signature-only reasoning part
puts its signature on the next part of the message (the next text, else the first call),
so every signature goes back unchanged where it was.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from pepperpy.errors import InvalidInputError, LLMError
from pepperpy.llm import Message, MessageRole, ToolCall, Usage
from pepperpy.parts import MediaPart, ReasoningPart, TextPart

# Effort names to a thinking budget in tokens (Gemini 2.5); Gemini 3 takes the level by name.
SERVICE = "google"  # the genai-prices provider id that prices usage.cost
THINKING_BUDGETS = {"low": 1024, "medium": 8192, "high": 24576}
FINISH_REASONS = {
    "STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter", "PROHIBITED_CONTENT": "content_filter", "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
}
URL_SCHEMES = ("https://", "gs://")  # what fileData takes; others must be sent as bytes


def model_path(model: str) -> str:
    """``models/<name>`` for a model given with or without its ``models/`` prefix."""
    return model if model.startswith(("models/", "tunedModels/")) else f"models/{model}"


def _media(part: MediaPart, who: str) -> dict[str, Any]:
    if part.data is None and part.path is None and part.url is not None:
        if not part.url.startswith(URL_SCHEMES):
            raise InvalidInputError(
                f"{who} cannot take the {part.type} at {part.url}: Gemini fetches only https:// and gs:// URLs "
                f"(PepperPy never fetches one); download it and pass {part.type.capitalize()}(bytes, media_type) or a path"
            )
        return {"fileData": {"mimeType": part.media_type, "fileUri": part.url}}
    return {"inlineData": {"mimeType": part.media_type, "data": part.base64()}}


def _user_parts(message: Message, who: str) -> list[dict[str, Any]]:
    if isinstance(message.content, str) or message.content is None:
        return [{"text": message.content or ""}]
    parts: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            parts.append({"text": part.text})
        elif isinstance(part, MediaPart):
            parts.append(_media(part, who))
        # a reasoning part in a user message has no meaning to Gemini: left out
    return parts or [{"text": ""}]


def _model_parts(message: Message, who: str) -> list[dict[str, Any]]:
    """An assistant message's parts: thoughts, texts and function calls, each signature where it came from."""
    parts: list[dict[str, Any]] = []
    pending: str | None = None  # a signature waiting for the part it belongs to

    def add(part: dict[str, Any]) -> None:
        nonlocal pending
        if pending is not None:
            part["thoughtSignature"], pending = pending, None
        parts.append(part)

    content = message.content if isinstance(message.content, list) else ([] if not message.content else [message.content])
    for item in content:
        if isinstance(item, str):
            add({"text": item})
        elif isinstance(item, ReasoningPart) and item.text:
            add({"text": item.text, "thought": True} | ({"thoughtSignature": item.signature} if item.signature else {}))
        elif isinstance(item, ReasoningPart) and item.signature:
            if pending is not None:
                add({"text": ""})
            pending = item.signature
        elif isinstance(item, TextPart):
            add({"text": item.text})
        elif isinstance(item, MediaPart):
            add(_media(item, who))
    for call in message.tool_calls:
        add({"functionCall": {"id": call.id, "name": call.name, "args": call.arguments}})
    if pending is not None:
        add({"text": ""})
    return parts or [{"text": ""}]


def _tool_result(message: Message, names: dict[str, str], who: str, nested: bool) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The functionResponse part, and the media of the result: inside it (``parts``, Gemini 3) when ``nested``,
    else returned to follow the round's function responses in the same user turn (earlier models)."""
    name = message.name or names.get(message.tool_call_id or "")
    if not name:
        raise InvalidInputError(
            f"{who}: a tool message (tool_call_id={message.tool_call_id!r}) names no tool, and no earlier assistant "
            "message has that call; Gemini needs the tool's name: set the message's name"
        )
    text = message.text
    try:
        value = json.loads(text)
    except ValueError:
        value = None
    response = value if isinstance(value, dict) else {"output": text}
    result: dict[str, Any] = {"name": name, "response": response}
    if message.tool_call_id:
        result["id"] = message.tool_call_id
    media = [_media(p, who) for p in message.content if isinstance(p, MediaPart)] if isinstance(message.content, list) else []
    if media and nested:
        result["parts"] = media
        media = []
    return {"functionResponse": result}, media


def contents(messages: list[Message], who: str, model: str = "") -> tuple[dict[str, Any] | None, list[dict[str, Any]]]:
    """The system instruction and the turns; consecutive tool results join one user turn, as the API wants (their
    images inside each functionResponse on Gemini 3, after the function responses on earlier models)."""
    system = [{"text": m.text} for m in messages if m.role == MessageRole.SYSTEM and m.text]
    names = {call.id: call.name for m in messages for call in m.tool_calls}
    nested = model.removeprefix("models/").startswith("gemini-3")
    turns: list[dict[str, Any]] = []
    responses = 0  # function responses in the last turn, when it holds tool results; -1 otherwise
    for message in messages:
        if message.role == MessageRole.SYSTEM:
            continue
        if message.role == MessageRole.TOOL:
            part, media = _tool_result(message, names, who, nested)
            if not turns or responses < 0:
                turns.append({"role": "user", "parts": []})
                responses = 0
            turns[-1]["parts"].insert(responses, part)
            turns[-1]["parts"] += media
            responses += 1
            continue
        responses = -1
        if message.role == MessageRole.ASSISTANT:
            turns.append({"role": "model", "parts": _model_parts(message, who)})
        else:
            turns.append({"role": "user", "parts": _user_parts(message, who)})
    return ({"parts": system} if system else None), turns


def thinking_config(reasoning: Any, model: str) -> dict[str, Any]:
    """``reasoning=`` as Gemini's ``thinkingConfig``: False turns thinking off (budget 0); anything else
    asks for the thoughts too. Gemini 3 takes an effort as a level, earlier models as a token budget."""
    if reasoning is False:
        return {"thinkingBudget": 0}
    config: dict[str, Any] = {"includeThoughts": True}
    if isinstance(reasoning, str):
        if model.removeprefix("models/").startswith("gemini-3"):
            config["thinkingLevel"] = reasoning.upper()
        else:
            config["thinkingBudget"] = THINKING_BUDGETS[reasoning]
    elif reasoning is not True:
        config["thinkingBudget"] = reasoning
    return config


def request_body(who: str, defaults: dict[str, Any], messages: list[Message], options: dict[str, Any]) -> dict[str, Any]:
    model = options.get("model", defaults.get("model"))
    system, turns = contents(messages, who, model if isinstance(model, str) else "")
    body: dict[str, Any] = {"contents": turns}
    if system:
        body["systemInstruction"] = system
    config: dict[str, Any] = {}
    for key, wire_key in (("temperature", "temperature"), ("top_p", "topP"), ("max_tokens", "maxOutputTokens"),
                          ("seed", "seed"), ("stop", "stopSequences")):
        value = options.get(key, defaults.get(key))
        if value is not None:
            config[wire_key] = [value] if key == "stop" and isinstance(value, str) else value
    model = options.get("response_model")
    if model is not None:
        config["responseMimeType"] = "application/json"
        config["responseJsonSchema"] = model.model_json_schema()
    reasoning = options.get("reasoning", defaults.get("reasoning"))
    if reasoning is not None:
        config["thinkingConfig"] = thinking_config(reasoning, options.get("model") or defaults["model"])
    if config:
        body["generationConfig"] = config
    if options.get("tools"):
        declarations = [
            {"name": t.name, "description": t.description, "parametersJsonSchema": t.parameters} for t in options["tools"]
        ]
        body["tools"] = [{"functionDeclarations": declarations}]
    return body


def usage(raw: dict[str, Any] | None, model: str | None) -> Usage:
    """``Usage`` of a ``usageMetadata``: thinking tokens count as completion tokens, as they are billed, and are
    ``reasoning_tokens`` too; ``cache_read_tokens`` is cachedContentTokenCount (part of the prompt). The Gemini
    API reports no cache writes (an explicit cache is created and billed apart)."""
    raw = raw or {}
    thoughts = raw.get("thoughtsTokenCount")
    prompt = (raw.get("promptTokenCount") or 0) + (raw.get("toolUsePromptTokenCount") or 0)
    return Usage(
        prompt_tokens=prompt, completion_tokens=(raw.get("candidatesTokenCount") or 0) + (thoughts or 0),
        cache_read_tokens=raw.get("cachedContentTokenCount"), reasoning_tokens=thoughts, model=model, service=SERVICE,
    )


def finish_reason(raw: str | None, calls: list[ToolCall]) -> str | None:
    if raw is None:
        return None
    if raw == "STOP" and calls:
        return "tool_calls"
    return FINISH_REASONS.get(raw, raw.lower())


def candidate(answer: Any, who: str) -> dict[str, Any] | None:
    """The first candidate of an answer (None in a stream event that has none yet); a blocked prompt or an
    error event is an LLMError with the service's reason."""
    if not isinstance(answer, dict):
        raise LLMError(f"{who}: unexpected answer: {str(answer)[:200]}")
    if isinstance(answer.get("error"), dict):
        error = answer["error"]
        raise LLMError(f"{who}: the service reported {error.get('status') or error.get('code')}: {error.get('message')}")
    candidates = answer.get("candidates")
    if candidates:
        return candidates[0]
    blocked = (answer.get("promptFeedback") or {}).get("blockReason")
    if blocked:
        raise LLMError(f"{who}: the service refused the prompt (blockReason {blocked}); change the prompt")
    return None


class Reply:
    """Builds the assistant message from answer parts, whole or streamed (text deltas join their part).

    Answer text is kept as plain str runs; parts objects are made only when the answer has reasoning."""

    def __init__(self) -> None:
        self.parts: list[str | ReasoningPart] = []
        self.calls: list[ToolCall] = []

    def add(self, part: dict[str, Any]) -> tuple[str, str]:
        """Take one wire part in; return the ``(text, reasoning)`` it adds."""
        signature = part.get("thoughtSignature")
        if "functionCall" in part:
            call = part["functionCall"] or {}
            if signature:
                self.parts.append(ReasoningPart(signature=signature))
            self.calls.append(ToolCall(
                id=call.get("id") or f"call_{uuid.uuid4().hex[:24]}", name=call.get("name") or "",
                arguments=call.get("args") or {},
            ))
            return "", ""
        text = part.get("text")
        if text is None:
            return "", ""  # parts PepperPy does not read (executableCode, inlineData answers, ...)
        last = self.parts[-1] if self.parts else None
        if part.get("thought"):
            if isinstance(last, ReasoningPart) and last.text and not last.signature:
                last.text += text
                last.signature = signature
            else:
                self.parts.append(ReasoningPart(text=text, signature=signature))
            return "", text
        if signature:
            self.parts.append(ReasoningPart(signature=signature))
            if text:
                self.parts.append(text)
        elif isinstance(last, str):
            self.parts[-1] = last + text
        else:
            self.parts.append(text)
        return text, ""

    def message(self) -> Message:
        """The assistant message: plain text when it has no reasoning parts, else its parts in order."""
        if not any(isinstance(p, ReasoningPart) for p in self.parts):
            return Message(role=MessageRole.ASSISTANT, content="".join(self.parts), tool_calls=self.calls)  # type: ignore[arg-type]
        content = [TextPart(text=p) if isinstance(p, str) else p for p in self.parts]
        return Message(role=MessageRole.ASSISTANT, content=content, tool_calls=self.calls)


__all__ = ["Reply", "candidate", "finish_reason", "model_path", "request_body", "thinking_config", "usage"]
