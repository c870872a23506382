"""llm/gemini: Google's Gemini API (generateContent, streamGenerateContent over SSE) over httpx."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from pydantic import Field, SecretStr

from pepperpy.errors import LLMError
from pepperpy.http import RemoteProvider, parse_event_data
from pepperpy.llm import CALL_OPTIONS, GenerationChunk, GenerationResult, LLMProvider, Message, reasoning_for_model
from pepperpy.plugins import first_key, versioned_url

from .wire import Reply, candidate, finish_reason, model_path, request_body, usage

KEY_VARIABLES = ("GEMINI_API_KEY", "GOOGLE_API_KEY")  # GEMINI_API_KEY is plugin.json's; GOOGLE_API_KEY the fallback
# Models that do not think: a reasoning option for them is refused before any request.
NOT_THINKING = re.compile(r"^(models/)?(gemini-1\.|gemini-2\.0-|gemma-)")
# What the Gemini API takes inline or by URI (its documented image, audio, video and document types).
MEDIA_TYPES = frozenset({
    "image/png", "image/jpeg", "image/webp", "image/heic", "image/heif",
    "audio/wav", "audio/mp3", "audio/mpeg", "audio/aiff", "audio/aac", "audio/ogg", "audio/flac",
    "video/*", "application/pdf", "text/plain", "text/html", "text/css", "text/csv", "text/xml", "text/markdown",
    "text/rtf", "application/json", "application/x-javascript", "text/javascript", "application/x-python", "text/x-python",
})


class GeminiProvider(RemoteProvider, LLMProvider):
    """Gemini models through the native API: system instructions, tools, JSON schema output, thinking, media."""

    call_options = frozenset(CALL_OPTIONS)  # reasoning too: thinkingConfig
    media_types = MEDIA_TYPES

    model: str = Field(description="the model to use, e.g. gemini-2.5-flash")
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    reasoning: bool | str | int | None = None  # the default reasoning= of every call

    def __init__(self, **config: Any):
        if config.get("api_key") is None:  # GEMINI_API_KEY (plugin.json's) was read already; GOOGLE_API_KEY next
            config["api_key"] = first_key(*KEY_VARIABLES)
        super().__init__(**config)
        # Like Google's SDK, a base URL without the API version (GOOGLE_GEMINI_BASE_URL=https://host) means its /v1beta.
        self.base_url = versioned_url(self.base_url, "v1beta")

    def headers(self) -> dict[str, str | SecretStr]:
        return {"x-goog-api-key": self.api_key}  # a header, never the URL; a SecretStr until httpx sends it

    def _body(self, messages: list[Message], options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        model = options.get("model") or self.model
        reasoning = reasoning_for_model(
            self.plugin_id, model, options.get("reasoning", self.reasoning),
            cannot_reason=NOT_THINKING, use="a thinking model (gemini-2.5-* or later)",
        )
        options = {**options, "reasoning": reasoning}
        defaults = {k: getattr(self, k) for k in ("model", "temperature", "max_tokens", "stop", "seed", "reasoning")}
        return model_path(model), request_body(self.plugin_id, defaults, messages, options)

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        who = self.plugin_id
        path, body = self._body(messages, options)
        endpoint = self.endpoint
        answer = await endpoint.post(f"{path}:generateContent", body, options.get("timeout"))
        found = candidate(answer, who)
        if found is None:
            raise LLMError(f"{who}: the answer has no candidates: {str(answer)[:200]}")
        reply = Reply()
        text, thoughts = [], []
        for part in (found.get("content") or {}).get("parts") or []:
            piece, thought = reply.add(part)
            text.append(piece)
            thoughts.append(thought)
        metadata = {
            "model": answer.get("modelVersion"), "id": answer.get("responseId"),
            "finish_reason": finish_reason(found.get("finishReason"), reply.calls),
        }
        message = reply.message()
        return GenerationResult(
            content="".join(text), reasoning="".join(thoughts), messages=[*messages, message],
            usage=usage(answer.get("usageMetadata"), answer.get("modelVersion")),
            tool_calls=reply.calls, metadata=metadata,
        )

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        who = self.plugin_id
        path, body = self._body(messages, options)
        endpoint = self.endpoint
        reply = Reply()
        raw_reason: str | None = None
        last_usage: dict[str, Any] | None = None
        model: str | None = None
        async with aclosing(endpoint.stream(f"{path}:streamGenerateContent?alt=sse", body, options.get("timeout"))) as events:
            async for _, data in events:  # read to the end, so the connection is reused
                event = parse_event_data(data, who)
                found = candidate(event, who)
                last_usage = event.get("usageMetadata") or last_usage
                model = event.get("modelVersion") or model
                if found is None:
                    continue
                raw_reason = found.get("finishReason") or raw_reason
                text, thought = [], []
                for part in (found.get("content") or {}).get("parts") or []:
                    piece, reasoning = reply.add(part)
                    text.append(piece)
                    thought.append(reasoning)
                if any(text) or any(thought):
                    yield GenerationChunk(content="".join(text), reasoning="".join(thought))
        if raw_reason is None:
            raise LLMError(f"{who}: the stream ended before the answer was complete (no finishReason); try again")
        yield GenerationChunk(
            finish_reason=finish_reason(raw_reason, reply.calls), tool_calls=reply.calls, usage=usage(last_usage, model),
            metadata={"model": model} if model else {},
            message=reply.message(),  # with the thought signatures, for a conversation's next turn
        )
