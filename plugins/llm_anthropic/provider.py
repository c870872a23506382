"""llm/anthropic: the Messages API over httpx, with system prompts, streaming events and tool use."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr

from pepperpy.errors import LLMError
from pepperpy.http import RemoteProvider, parse_event_data
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message
from pepperpy.plugins import versioned_url

from .wire import MEDIA_TYPES, StreamState, parse_answer, reply_message, request_body

API_VERSION = "2023-06-01"


class AnthropicProvider(RemoteProvider, LLMProvider):
    """Claude models through the Messages API. Structured output is asked for in the system prompt."""

    call_options = (LLMProvider.call_options - {"seed"}) | {"reasoning"}  # the Messages API has no seed
    media_types = MEDIA_TYPES

    model: str = Field(description="the model to use")
    max_tokens: int = 1024
    temperature: float | None = None
    stop: list[str] | None = None

    def __init__(self, **config: Any):
        super().__init__(**config)
        # Like Anthropic's SDK, a base URL without the API version (ANTHROPIC_BASE_URL=https://api.anthropic.com)
        # means its /v1; one that already ends in a version is taken as it is.
        self.base_url = versioned_url(self.base_url, "v1")

    def headers(self) -> dict[str, str | SecretStr]:
        return {"x-api-key": self.api_key, "anthropic-version": API_VERSION}  # a SecretStr until httpx sends it

    def _body(self, messages: list[Message], options: dict[str, Any], stream: bool) -> dict[str, Any]:
        defaults = {k: getattr(self, k) for k in ("model", "max_tokens", "temperature", "stop")}
        hosted = (urlsplit(self.base_url).hostname or "").endswith("anthropic.com")  # Anthropic's own model names
        return request_body(self.plugin_id, defaults, messages, options, stream, hosted=hosted)

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        body = self._body(messages, options, stream=False)
        endpoint = self.endpoint
        answer = await endpoint.post("messages", body, options.get("timeout"))
        text, calls, usage = parse_answer(answer, self.plugin_id)
        reply = reply_message(answer["content"], text, calls)
        metadata = {"model": answer.get("model"), "finish_reason": answer.get("stop_reason"), "id": answer.get("id")}
        return GenerationResult(
            content=text, reasoning=reply.reasoning, messages=[*messages, reply], usage=usage,
            tool_calls=calls, metadata=metadata,
        )

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        body = self._body(messages, options, stream=True)
        endpoint = self.endpoint
        who = self.plugin_id
        state = StreamState(who)
        async with aclosing(endpoint.stream("messages", body, options.get("timeout"))) as events:
            async for event_type, data in events:  # read to the end, so the connection is reused
                event = parse_event_data(data, who)
                text, reasoning = state.take(event_type or event.get("type", ""), event)
                if text or reasoning:
                    yield GenerationChunk(content=text, reasoning=reasoning)
        if not state.finished:
            raise LLMError(f"{who}: the stream ended before message_stop; try again")
        reply = state.message()
        yield GenerationChunk(finish_reason=state.stop_reason, tool_calls=reply.tool_calls, usage=state.usage, message=reply)
