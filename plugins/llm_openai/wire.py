"""Chat Completions wire format: PepperPy messages and options to request bodies, answers back."""

from __future__ import annotations

import functools
import json
import re
from typing import Any
from urllib.parse import urlsplit

from pepperpy.errors import InvalidInputError, LLMError
from pepperpy.llm import (
    AudioPart, DocumentPart, ImagePart, Message, MessageRole, TextPart, ToolCall, Usage, reasoning_for_model,
)
from pepperpy.structured import json_schema_format

# The parts Chat Completions takes in a user message (the model must take them too: the service says if not).
MEDIA_TYPES = frozenset({
    "image/png", "image/jpeg", "image/gif", "image/webp", "audio/wav", "audio/mpeg", "application/pdf",
})
_AUDIO_FORMATS = {"audio/wav": "wav", "audio/mpeg": "mp3"}
# reasoning=... as Chat Completions' reasoning_effort; a token budget becomes the effort it falls in.
_BUDGET_EFFORTS = ((2048, "low"), (8192, "medium"))


def _part_to_wire(part: Any) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if isinstance(part, ImagePart):
        url = part.url if part.url is not None and part.data is None and part.path is None else part.data_url()
        return {"type": "image_url", "image_url": {"url": url}}
    if isinstance(part, AudioPart):
        return {"type": "input_audio", "input_audio": {"data": part.base64(), "format": _AUDIO_FORMATS[part.media_type or ""]}}
    if isinstance(part, DocumentPart):
        return {"type": "file", "file": {"filename": part.name or "document.pdf", "file_data": part.data_url()}}
    raise InvalidInputError(f"llm/openai: a {type(part).__name__} cannot be sent in a user message")


def _content(message: Message) -> Any:
    """A user message's parts as content parts; any other message's text (reasoning is not sent back)."""
    if not isinstance(message.content, list):
        return message.content
    if message.role != MessageRole.USER:
        return message.text
    return [_part_to_wire(part) for part in message.content if part.type != "reasoning"]


# OpenAI's models that do not reason (their own names, as OpenAI, Azure and OpenRouter call them): on those hosted
# services, reasoning=... for one is refused before any request; reasoning=False is left out (they refuse "none").
NOT_REASONING = re.compile(r"^(openai/)?(gpt-4o|gpt-4\.1|gpt-4-|gpt-4$|gpt-3\.5|chatgpt-4o)")


def checked_reasoning(who: str, model: str, value: Any) -> Any:
    """``reasoning=`` for an OpenAI ``model`` (see ``reasoning_for_model``)."""
    return reasoning_for_model(who, model, value, cannot_reason=NOT_REASONING, use="a reasoning model (gpt-5*, o3, o4-mini)")


def reasoning_effort(value: Any) -> str | None:
    """``reasoning=`` as ``reasoning_effort``: an effort as it is, True "medium", False "none", a budget its band."""
    if value is None:
        return None
    if value is True:
        return "medium"
    if value is False:
        return "none"
    if isinstance(value, int):
        return next((effort for limit, effort in _BUDGET_EFFORTS if value <= limit), "high")
    return value


def message_to_wire(message: Message) -> dict[str, Any]:
    wire: dict[str, Any] = {"role": message.role.value, "content": _content(message)}
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


def messages_to_wire(messages: list[Message]) -> list[dict[str, Any]]:
    """The messages as Chat Completions takes them. A tool message carries text only, so the images of a round's
    tool results follow its tool messages in one user message, each after a line naming its tool call."""
    wire: list[dict[str, Any]] = []
    images: list[dict[str, Any]] = []
    for message in messages:
        if message.role != MessageRole.TOOL and images:
            wire.append({"role": "user", "content": images})
            images = []
        wire.append(message_to_wire(message))
        if message.role == MessageRole.TOOL and isinstance(message.content, list):
            for part in message.content:
                if isinstance(part, ImagePart):
                    called = f"{message.name} ({message.tool_call_id})" if message.name else message.tool_call_id
                    images += [{"type": "text", "text": f"The image from the tool result of {called}:"}, _part_to_wire(part)]
    if images:
        wire.append({"role": "user", "content": images})
    return wire


def request_body(
    who: str, defaults: dict[str, Any], messages: list[Message], options: dict[str, Any], *, json_schema: bool, stream: bool
) -> dict[str, Any]:
    body: dict[str, Any] = {"messages": messages_to_wire(messages)}
    for key in ("model", "temperature", "max_tokens", "stop", "seed", "top_p"):
        value = options.get(key, defaults.get(key))
        if value is not None:
            body[key] = value
    if options.get("tools"):
        body["tools"] = [
            {"type": "function", "function": {"name": t.name, "description": t.description, "parameters": t.parameters}}
            for t in options["tools"]
        ]
    effort = reasoning_effort(options.get("reasoning"))
    if effort is not None:
        body["reasoning_effort"] = effort
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
        raise LLMError(f"{who}: the model called {function.get('name')!r} with malformed JSON arguments: {arguments[:200]!r}") from None
    return ToolCall(id=raw.get("id") or "", name=function.get("name") or "", arguments=parsed)


def reasoning_of(message: dict[str, Any]) -> str:
    """The reasoning beside the answer: ``reasoning_content`` (llama.cpp, DeepSeek, vLLM) or ``reasoning``."""
    reasoning = message.get("reasoning_content") or message.get("reasoning")
    return reasoning if isinstance(reasoning, str) else ""


# The services a base URL's host bills as (genai-prices provider ids, for ``usage.cost``); any other host — a
# local server, a proxy — is not priced.
SERVICES = {
    "api.openai.com": "openai", "api.groq.com": "groq", "api.deepseek.com": "deepseek", "api.mistral.ai": "mistral",
    "api.together.xyz": "together", "openrouter.ai": "openrouter", "api.x.ai": "x-ai", "api.fireworks.ai": "fireworks",
}
AZURE_HOSTS = (".openai.azure.com", ".services.ai.azure.com", ".cognitiveservices.azure.com")


@functools.lru_cache(maxsize=64)  # asked on every call: a URL is parsed once
def service_of(base_url: str) -> str | None:
    """The genai-prices provider id of the service at ``base_url``; None for a host it does not bill for."""
    host = (urlsplit(base_url).hostname or "").lower()
    if host.endswith(AZURE_HOSTS):
        return "azure"
    return SERVICES.get(host)


def usage(raw: dict[str, Any] | None, model: str | None = None, service: str | None = None) -> Usage:
    """The counts of a ``usage`` object: cached prompt tokens (OpenAI, llama.cpp) and reasoning tokens where the
    service reports them; ``model`` and ``service`` price them."""
    raw = raw or {}
    prompt_details = raw.get("prompt_tokens_details") or {}
    completion_details = raw.get("completion_tokens_details") or {}
    return Usage(
        prompt_tokens=raw.get("prompt_tokens") or 0, completion_tokens=raw.get("completion_tokens") or 0,
        cache_read_tokens=prompt_details.get("cached_tokens"), reasoning_tokens=completion_details.get("reasoning_tokens"),
        model=model, service=service,
    )


def first_choice(answer: dict[str, Any], who: str) -> dict[str, Any]:
    choices = answer.get("choices") if isinstance(answer, dict) else None
    if not choices:
        raise LLMError(f"{who}: the answer has no choices: {str(answer)[:200]}")
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
