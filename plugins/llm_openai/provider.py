"""llm/openai: Chat Completions over httpx for OpenAI and every compatible service (see the aliases)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import aclosing
from typing import Any

from pydantic import Field, SecretStr

from pepperpy.errors import ProviderError
from pepperpy.http import RemoteProvider, bearer, parse_event_data
from pepperpy.llm import (
    GenerationChunk, GenerationResult, LLMProvider, Message, MessageRole, ReasoningPart, TextPart, Usage,
)

from .wire import MEDIA_TYPES, ToolCallAccumulator, first_choice, reasoning_of, request_body, service_of, tool_call, usage


class OpenAIProvider(RemoteProvider, LLMProvider):
    """Any OpenAI-compatible Chat Completions endpoint."""

    call_options = LLMProvider.call_options | {"reasoning"}
    media_types = MEDIA_TYPES

    model: str = Field(description="the model to use")
    temperature: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    supports_json_schema: bool = True

    def headers(self) -> dict[str, str | SecretStr]:
        return {"Authorization": bearer(self.api_key)}  # a SecretStr until httpx sends it

    def _body(self, who: str, messages: list[Message], options: dict[str, Any], stream: bool) -> dict[str, Any]:
        defaults = {k: getattr(self, k) for k in ("model", "temperature", "max_tokens", "stop", "seed")}
        return request_body(who, defaults, messages, options, json_schema=self.supports_json_schema, stream=stream)

    def _usage(self, answer: dict[str, Any]) -> Usage:
        """The counts of an answer (or of a stream's usage event), with the model and service that price them."""
        return usage(answer.get("usage"), answer.get("model"), service_of(str(self.base_url)))

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        who = self.plugin_id
        body = self._body(who, messages, options, stream=False)
        endpoint = self.endpoint
        answer = await endpoint.post("chat/completions", body, options.get("timeout"))
        choice = first_choice(answer, who)
        message = choice.get("message") or {}
        calls = [tool_call(raw, who) for raw in message.get("tool_calls") or []]
        content = message.get("content") or ""
        reasoning = reasoning_of(message)
        said: Any = [ReasoningPart(text=reasoning), TextPart(text=content)] if reasoning else content
        reply = Message(role=MessageRole.ASSISTANT, content=said, tool_calls=calls)
        return GenerationResult(
            content=content, reasoning=reasoning, messages=[*messages, reply], usage=self._usage(answer), tool_calls=calls,
            metadata={"model": answer.get("model"), "finish_reason": choice.get("finish_reason"), "id": answer.get("id")},
        )

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        who = self.plugin_id
        body = self._body(who, messages, options, stream=True)
        endpoint = self.endpoint
        tools = ToolCallAccumulator()
        finished = False
        async with aclosing(endpoint.stream("chat/completions", body, options.get("timeout"))) as events:
            async for _, data in events:  # read to the end, past [DONE], so the connection is reused
                if data == "[DONE]":
                    finished = True
                    continue
                event = parse_event_data(data, who)
                if event.get("usage") and not event.get("choices"):
                    yield GenerationChunk(usage=self._usage(event))
                    continue
                if not event.get("choices"):
                    continue
                choice = event["choices"][0]
                delta = choice.get("delta") or {}
                tools.add(delta.get("tool_calls") or [])
                reason = choice.get("finish_reason")
                reasoning = reasoning_of(delta)
                if delta.get("content") or reasoning or reason:
                    finished = finished or bool(reason)
                    calls = tools.calls(who) if reason else []
                    yield GenerationChunk(
                        content=delta.get("content") or "", reasoning=reasoning, finish_reason=reason, tool_calls=calls
                    )
        if not finished:
            raise ProviderError(f"{who}: the stream ended before the answer was complete; try again")
