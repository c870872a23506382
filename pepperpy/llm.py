"""LLM types and the LLMProvider contract."""

from __future__ import annotations

from collections.abc import AsyncIterator
from enum import Enum
from typing import Any, ClassVar

from pydantic import BaseModel, Field

from pepperpy.core import Provider
from pepperpy.errors import ConfigError


class MessageRole(str, Enum):
    SYSTEM = "system"
    USER = "user"
    ASSISTANT = "assistant"
    TOOL = "tool"
    FUNCTION = "tool"  # older name for TOOL, kept as an alias


class ToolCall(BaseModel):
    """A function call the model asked for."""

    id: str
    name: str
    arguments: dict[str, Any] = Field(default_factory=dict)


class Message(BaseModel):
    role: MessageRole
    content: str | None = None
    name: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None


class Usage(BaseModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


class GenerationResult(BaseModel):
    """A finished answer: its text, the conversation that produced it, usage."""

    content: str
    messages: list[Message] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    metadata: dict[str, Any] = Field(default_factory=dict)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    parsed: Any = None

    def __str__(self) -> str:
        return self.content


class GenerationChunk(BaseModel):
    """One piece of a streamed answer; the last ones carry finish_reason, tool calls and usage."""

    content: str = ""
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


def check_call_options(who: str, options: dict[str, Any], allowed: set[str]) -> None:
    """Refuse per-call options a provider does not know, naming them and the known ones."""
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ConfigError(f"{who}: unknown option(s) {', '.join(map(repr, unknown))}; options are: {', '.join(sorted(allowed))}")


class LLMProvider(Provider):
    """Turns a list of messages into an answer, whole or streamed.

    Options every provider honors where its backend can: ``model``,
    ``temperature``, ``max_tokens``, ``stop``, ``tools``, ``response_model``,
    ``timeout``.
    """

    category: ClassVar[str] = "llm"
    can_stream: ClassVar[bool] = True

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        raise NotImplementedError

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        """Stream the answer; the default yields the whole answer as one chunk."""
        result = await self.generate(messages, **options)
        yield GenerationChunk(content=result.content, finish_reason="stop", usage=result.usage)


__all__ = [
    "GenerationChunk",
    "GenerationResult",
    "LLMProvider",
    "Message",
    "MessageRole",
    "ToolCall",
    "Usage",
    "check_call_options",
]
