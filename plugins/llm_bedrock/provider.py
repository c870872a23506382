"""llm/bedrock: AWS Bedrock's Converse and ConverseStream over PepperPy's httpx transport, signed with SigV4."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from contextlib import aclosing
from functools import partial
from typing import Any, Literal
from urllib.parse import quote

import httpx
from pydantic import Field, SecretStr

from pepperpy.errors import AuthenticationError, ConfigError, LLMError, ProviderError, RateLimitError, provider_error_type
from pepperpy.http import RemoteProvider, bearer, parse_event_data
from pepperpy.llm import CALL_OPTIONS, GenerationChunk, GenerationResult, LLMProvider, Message

from .eventstream import EventStreamDecoder
from .signing import SigV4, region_of, resolve_credentials, session
from .wire import MEDIA_TYPES, Reply, finish_reason, request_body, usage

CREDENTIALS_HINT = (
    "check the AWS credentials (an expired session token or SSO login: refresh it, e.g. `aws sso login`) and that "
    "their IAM policy allows bedrock:InvokeModel (and bedrock:InvokeModelWithResponseStream to stream) on this "
    "model, and that the model is enabled in this region"
)
# ConverseStream's exception events (the ConverseStreamOutput union's members), as PepperPy error types.
STREAM_EXCEPTIONS = {"throttlingException": RateLimitError}


class BedrockProvider(RemoteProvider, LLMProvider):
    """Models on AWS Bedrock through Converse: tools, structured output, reasoning, cache points, media."""

    call_options = frozenset(CALL_OPTIONS) - {"seed"}  # Converse has no seed; reasoning= maps per model family
    media_types = MEDIA_TYPES

    model: str = Field(description="a model id or inference profile, e.g. us.anthropic.claude-sonnet-4-20250514-v1:0")
    region: str | None = Field(None, description="the AWS region; default: AWS_REGION, AWS_DEFAULT_REGION, the profile's")
    profile: str | None = Field(None, description="the AWS profile of ~/.aws/config; default: AWS_PROFILE, else default")
    base_url: str | None = Field(None, description="the endpoint; default: https://bedrock-runtime.<region>.amazonaws.com")
    api_key: SecretStr | None = Field(None, description="a Bedrock API key, sent instead of SigV4 signatures")
    max_tokens: int | None = None
    temperature: float | None = None
    stop: list[str] | None = None
    reasoning: bool | str | int | None = None  # the default reasoning= of every call
    structured_output: Literal["tool", "json_schema"] = Field(
        "tool", description="with_response_model(): a forced answer tool, or Converse's JSON schema output format"
    )
    additional_model_request_fields: dict[str, Any] | None = None

    def __init__(self, **config: Any):
        super().__init__(**config)
        self._session = session(self.profile)
        if self.region is None:
            self.region = os.environ.get("AWS_REGION") or region_of(self._session)
        if self.region is None and (self.base_url is None or self.api_key is None):  # the endpoint's, or the signature's
            raise ConfigError(
                f"{self.plugin_id} needs an AWS region: pass region='us-east-1' (say), set AWS_REGION, or set "
                "the profile's region in ~/.aws/config"
            )
        if self.base_url is None:
            self.base_url = f"https://bedrock-runtime.{self.region}.amazonaws.com"
        self._credentials: Any = None

    def headers(self) -> dict[str, str | SecretStr]:
        return {"authorization": bearer(self.api_key)} if self.api_key is not None else {}

    def auth(self) -> httpx.Auth | None:
        return None if self.api_key is not None else SigV4(self._credentials, self.region or "", self.plugin_id)

    async def initialize(self) -> None:
        if self.api_key is None:  # the chain may read files or ask the instance metadata service: off the loop
            self._credentials = await asyncio.to_thread(resolve_credentials, self._session, self.plugin_id)
        await super().initialize()

    def _request(self, messages: list[Message], options: dict[str, Any], action: str) -> tuple[str, dict[str, Any]]:
        model = options.get("model") or self.model
        defaults = {k: getattr(self, k) for k in (
            "model", "max_tokens", "temperature", "stop", "reasoning", "structured_output", "additional_model_request_fields",
        )}
        return f"model/{quote(model, safe='')}/{action}", request_body(self.plugin_id, defaults, messages, options)

    def _credentials_error(self, exc: AuthenticationError) -> AuthenticationError:
        text = str(exc).removesuffix("; check the API key")
        return type(exc)(f"{text}; {CREDENTIALS_HINT}", status_code=exc.status_code)

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        path, body = self._request(messages, options, "converse")
        endpoint = self.endpoint
        try:
            answer = await endpoint.post(path, body, options.get("timeout"))
        except AuthenticationError as exc:
            raise self._credentials_error(exc) from None
        content = ((answer.get("output") or {}).get("message") or {}).get("content")
        if not isinstance(content, list):
            raise LLMError(f"{self.plugin_id}: the answer has no output message: {str(answer)[:200]}")
        reply = Reply(structured=options.get("response_model") is not None and self.structured_output == "tool")
        for block in content:
            reply.add_block(block)
        metadata = {
            "finish_reason": finish_reason(answer.get("stopReason")), "stop_reason": answer.get("stopReason"),
            "latency_ms": (answer.get("metrics") or {}).get("latencyMs"),
        }
        return GenerationResult(
            content=reply.text, reasoning=reply.reasoning, messages=[*messages, reply.message()],
            usage=usage(answer.get("usage"), options.get("model") or self.model),
            tool_calls=reply.calls, metadata=metadata,
        )

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        who = self.plugin_id
        path, body = self._request(messages, options, "converse-stream")
        endpoint = self.endpoint
        reply = Reply(structured=options.get("response_model") is not None and self.structured_output == "tool")
        stop_reason: str | None = None
        raw_usage: dict[str, Any] | None = None
        decoder = partial(EventStreamDecoder, who=who)
        try:
            async with aclosing(endpoint.stream(path, body, options.get("timeout"), decoder=decoder)) as events:
                async for event_type, data in events:  # read to the end (metadata comes last), so the connection is reused
                    event = parse_event_data(data, who)
                    if event_type == "contentBlockDelta":
                        text, reasoning = reply.delta(event, who)
                        if text or reasoning:
                            yield GenerationChunk(content=text, reasoning=reasoning)
                    elif event_type == "contentBlockStart":
                        reply.start(event)
                    elif event_type == "contentBlockStop":
                        reply.stop(event, who)
                    elif event_type == "messageStop":
                        stop_reason = event.get("stopReason")
                    elif event_type == "metadata":
                        raw_usage = event.get("usage")
                    elif event_type == "error" or (event_type or "").endswith("Exception"):
                        raise self._stream_error(event_type or "error", event)
        except AuthenticationError as exc:
            raise self._credentials_error(exc) from None
        if stop_reason is None:
            raise LLMError(f"{who}: the stream ended before messageStop (the answer is incomplete); try again")
        if reply.structured and reply.answer is None and reply.held_text:
            yield GenerationChunk(content=reply.held_text)  # no answer tool came: the text is the answer
        yield GenerationChunk(
            finish_reason=finish_reason(stop_reason), tool_calls=reply.calls,
            usage=usage(raw_usage, options.get("model") or self.model), metadata={"stop_reason": stop_reason},
            message=reply.message(),  # signatures, for the next turn
        )

    def _stream_error(self, kind: str, event: dict[str, Any]) -> ProviderError:
        """An exception event inside a stream (never retried: the answer had begun)."""
        message = str(event.get("message") or event.get("Message") or json.dumps(event)[:300])
        text = (f"{self.plugin_id}: the service reported {kind} in the stream: {message}; "
                "the chunks already received stand, so try again for a whole answer")
        if "expired" in message.lower() or "token" in kind.lower():
            return provider_error_type(AuthenticationError, "llm")(f"{text}; {CREDENTIALS_HINT}")
        return provider_error_type(STREAM_EXCEPTIONS.get(kind, ProviderError), "llm")(text)
