"""llm/openai: Chat Completions over httpx for OpenAI and every compatible service (see the aliases);
``api="responses"`` speaks the Responses API instead (responses.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import aclosing
from typing import Any, Literal

import httpx
from pydantic import Field, SecretStr

from pepperpy.errors import ConfigError, LLMError, MissingKeyError
from pepperpy.http import RemoteProvider, bearer, parse_event_data
from pepperpy.llm import (
    GenerationChunk, GenerationResult, LLMProvider, Message, MessageRole, ReasoningPart, TextPart, Usage,
)

from . import azure, responses
from .wire import MEDIA_TYPES, ToolCallAccumulator, checked_reasoning, first_choice, reasoning_of, request_body, service_of, tool_call, usage


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
    api: Literal["chat", "responses"] = Field("chat", description="the wire format: Chat Completions or the Responses API")
    store: bool = Field(False, description="api='responses': let the service keep the response (PepperPy sends the history)")

    # Azure OpenAI (the ``azure`` preset; azure.py), named as in the openai SDK's AzureOpenAI client.
    azure_endpoint: str | None = Field(None, description="Azure: the resource endpoint, e.g. https://my-resource.openai.azure.com")
    azure_deployment: str | None = Field(None, description="Azure: the deployment (with api_version; default: model)")
    api_version: str | None = Field(None, description="Azure: the api-version of the deployment route; none: the v1 route")
    azure_ad_token: SecretStr | None = Field(None, description="Azure: a Microsoft Entra ID token (Authorization: Bearer)")
    azure_ad_token_provider: Callable[[], str] | None = Field(
        None, description="Azure: a callable returning a Microsoft Entra ID token, asked on every request"
    )

    def __init__(self, **config: Any):
        entra = config.get("azure_ad_token") or config.get("azure_ad_token_provider")
        if config.get("azure_endpoint") and config.get("api_key") is None and entra:
            config["api_key"] = ""  # Microsoft Entra ID instead of a key
        try:
            super().__init__(**config)
        except MissingKeyError:
            variable = self._context.env.get("azure_endpoint")
            if not variable:
                raise
            # the azure preset: one error with all that is missing (a token without an endpoint lacks only that)
            if entra and not config.get("azure_endpoint"):
                raise ConfigError(azure.missing_endpoint(variable)) from None
            raise MissingKeyError(azure.missing_credentials(self._context.env, config.get("azure_endpoint"))) from None
        self._paths = ("chat/completions", "responses")
        variable = self._context.env.get("azure_endpoint")
        if self.azure_endpoint is None and variable:  # the azure preset: never fall back to OpenAI's own URL
            raise ConfigError(azure.missing_endpoint(variable))
        if self.azure_endpoint:
            self.base_url = azure.base_url(self.azure_endpoint, self.api_version)
            self._paths = azure.paths(self.api_version, self.azure_deployment or self.model)

    def media_types_for(self, model: str | None) -> frozenset[str]:
        return responses.MEDIA_TYPES if self.api == "responses" else super().media_types_for(model)

    def headers(self) -> dict[str, str | SecretStr]:
        if self.azure_endpoint:
            return azure.headers(self.api_key, self.azure_ad_token, self.azure_ad_token_provider)
        return {"Authorization": bearer(self.api_key)}  # a SecretStr until httpx sends it

    def url_setting(self) -> str:
        return "azure_endpoint" if self.azure_endpoint else "base_url"

    def auth(self) -> httpx.Auth | None:
        if self.azure_endpoint and self.azure_ad_token_provider is not None:
            return azure.TokenProviderAuth(self.azure_ad_token_provider)
        return None

    def _defaults(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in ("model", "temperature", "max_tokens", "stop", "seed")}

    def _checked(self, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with ``reasoning`` checked against the model (refused, or dropped, for one that cannot reason)
        on the hosted services; a local server or proxy may serve any model under any name, so it decides."""
        if options.get("reasoning") is None or self._service() is None:
            return options
        reasoning = checked_reasoning(self.plugin_id, options.get("model") or self.model, options["reasoning"])
        return {**options, "reasoning": reasoning}

    def _body(self, who: str, messages: list[Message], options: dict[str, Any], stream: bool) -> dict[str, Any]:
        options = self._checked(options)
        return request_body(who, self._defaults(), messages, options, json_schema=self.supports_json_schema, stream=stream)

    def _responses_body(self, messages: list[Message], options: dict[str, Any], stream: bool) -> dict[str, Any]:
        who = f"{self.plugin_id} (api='responses')"
        options = self._checked(options)
        return responses.request_body(who, self._defaults(), messages, options, store=self.store, stream=stream)

    def _service(self) -> str | None:
        """The genai-prices provider id of the service at base_url (None: not priced)."""
        return service_of(str(self.base_url))

    def _usage(self, answer: dict[str, Any]) -> Usage:
        """The counts of an answer (or of a stream's usage event), with the model and service that price them."""
        return usage(answer.get("usage"), answer.get("model"), self._service())

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        who = self.plugin_id
        if self.api == "responses":
            body = self._responses_body(messages, options, stream=False)
            return await responses.generate(
                self.endpoint, self._paths[1], body, messages, who, options.get("timeout"), self._service()
            )
        body = self._body(who, messages, options, stream=False)
        endpoint = self.endpoint
        answer = await endpoint.post(self._paths[0], body, options.get("timeout"))
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
        if self.api == "responses":
            body = self._responses_body(messages, options, stream=True)
            streamed = responses.stream(self.endpoint, self._paths[1], body, who, options.get("timeout"), self._service())
            async with aclosing(streamed) as chunks:
                async for chunk in chunks:
                    yield chunk
            return
        body = self._body(who, messages, options, stream=True)
        endpoint = self.endpoint
        tools = ToolCallAccumulator()
        finished = False
        async with aclosing(endpoint.stream(self._paths[0], body, options.get("timeout"))) as events:
            async for _, data in events:  # read to the end, past [DONE], so the connection is reused
                if data == "[DONE]":
                    finished = True
                    continue
                event = parse_event_data(data, who)
                choices = event.get("choices")
                if not choices:
                    if event.get("usage"):
                        yield GenerationChunk(usage=self._usage(event))
                    continue
                choice = choices[0]
                delta = choice.get("delta") or {}
                deltas = delta.get("tool_calls")
                if deltas:
                    tools.add(deltas)
                content = delta.get("content")
                reason = choice.get("finish_reason")
                reasoning = reasoning_of(delta) if "reasoning_content" in delta or "reasoning" in delta else ""
                if reason:
                    finished = True
                    yield GenerationChunk(
                        content=content or "", reasoning=reasoning, finish_reason=reason, tool_calls=tools.calls(who)
                    )
                elif reasoning:
                    yield GenerationChunk(content=content or "", reasoning=reasoning)
                elif content:
                    yield GenerationChunk.from_text(content)  # the usual chunk, built without validation (a str already)
        if not finished:
            raise LLMError(f"{who}: the stream ended before the answer was complete; try again")
