"""llm/mock: scripted replies (cycled, or exhausted with a clear error) or an echo of the last user message."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from pepperpy.errors import LLMError
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message, MessageRole, Usage


class MockLLMProvider(LLMProvider):
    """Answers with ``replies`` in order; with no replies, echoes the last user message."""

    replies: list[str] = []
    cycle: bool = True

    def __init__(self, **config: Any):
        super().__init__(**config)
        self.calls: list[list[Message]] = []  # the messages of every call so far, to assert on in tests
        self._next = 0

    def _reply(self, messages: list[Message]) -> str:
        self.calls.append(list(messages))
        if not self.replies:
            users = [m.content or "" for m in messages if m.role == MessageRole.USER]
            return users[-1] if users else ""
        if self._next >= len(self.replies):
            if not self.cycle:
                raise LLMError(
                    f"llm/mock: all {len(self.replies)} scripted replies were used; "
                    "add replies or pass cycle=True"
                )
            self._next = 0
        reply = self.replies[self._next]
        self._next += 1
        return reply

    @staticmethod
    def _usage(messages: list[Message], reply: str) -> Usage:
        prompt_words = sum(len((m.content or "").split()) for m in messages)
        return Usage(prompt_tokens=prompt_words, completion_tokens=len(reply.split()))

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        reply = self._reply(messages)
        answer = Message(role=MessageRole.ASSISTANT, content=reply)
        return GenerationResult(
            content=reply, messages=[*messages, answer], usage=self._usage(messages, reply), metadata={"model": "mock"}
        )

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        reply = self._reply(messages)
        for piece in re.findall(r"\S+\s*|\s+", reply):
            yield GenerationChunk(content=piece)
        yield GenerationChunk(finish_reason="stop", usage=self._usage(messages, reply), metadata={"model": "mock"})
