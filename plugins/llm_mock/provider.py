"""llm/mock: scripted replies (cycled, or exhausted with a clear error) or an echo of the last user message.

A scripted reply is a text, an answer with reasoning ``{"reasoning": "...", "content": "..."}``, a tool
call ``{"tool": "get_weather", "arguments": {"city": "Paris"}}``, or a list of tool calls made in one answer;
see README.md. It takes every kind of part (images, audio, files), so tests can check what was sent.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from typing import Any

from pepperpy.errors import ConfigError, LLMError
from pepperpy.llm import (
    CALL_OPTIONS,
    GenerationChunk,
    GenerationResult,
    LLMProvider,
    Message,
    MessageRole,
    ReasoningPart,
    TextPart,
    ToolCall,
    Usage,
)

TOOL_CALL_FORM = '{"tool": "name", "arguments": {...}}'
REASONED_FORM = '{"reasoning": "...", "content": "..."}'


def _reasoned(reply: dict[str, Any]) -> bool:
    """True for a scripted answer with reasoning, checked (ConfigError when it is malformed)."""
    if "reasoning" not in reply:
        return False
    if set(reply) - {"reasoning", "content"} or not all(isinstance(v, str) for v in reply.values()):
        raise ConfigError(f"llm/mock: {reply!r:.80} is not an answer with reasoning; write {REASONED_FORM}")
    return True


def _scripted_calls(reply: dict[str, Any] | list[Any], number: int) -> list[dict[str, Any]]:
    """The tool calls of scripted reply ``number``, checked: each a dict with a ``tool`` name and ``arguments``."""
    calls = reply if isinstance(reply, list) else [reply]
    for call in calls:
        problem = None
        if not isinstance(call, dict):
            problem = f"{type(call).__name__} {call!r:.60}"
        elif not isinstance(call.get("tool"), str) or not call["tool"]:
            problem = f"{call!r:.80} has no 'tool' name"
        elif not isinstance(call.get("arguments", {}), dict) or set(call) - {"tool", "arguments"}:
            problem = f"{call!r:.80} takes only 'tool' and an 'arguments' dict"
        if problem is not None:
            raise ConfigError(
                f"llm/mock: replies[{number}] is not a tool call ({problem}); a reply is a str, an answer with reasoning "
                f"{REASONED_FORM}, a tool call "
                f"{TOOL_CALL_FORM}, or a list of tool calls"
            )
    if not calls:
        raise ConfigError(f"llm/mock: replies[{number}] is an empty list; a list holds the tool calls of one answer")
    return calls


class MockLLMProvider(LLMProvider):
    """Answers with ``replies`` in order; with no replies, echoes the last user (else system) message."""

    call_options = frozenset(CALL_OPTIONS)  # reasoning too: recorded in ``options``, the replies say what is shown
    media_types = frozenset({"*/*"})

    replies: list[str | dict[str, Any] | list[dict[str, Any]]] = []
    cycle: bool = True

    def __init__(self, **config: Any):
        super().__init__(**config)
        for number, reply in enumerate(self.replies):
            if not isinstance(reply, str) and not (isinstance(reply, dict) and _reasoned(reply)):
                _scripted_calls(reply, number)
        self.calls: list[list[Message]] = []  # the messages of every call so far, to assert on in tests
        self.options: list[dict[str, Any]] = []  # the options of every call so far
        self._next = 0
        self._tool_calls_made = 0

    def _reply(self, messages: list[Message], options: dict[str, Any]) -> tuple[str, str, list[ToolCall]]:
        """``(content, reasoning, tool calls)`` of the next answer."""
        self.calls.append(list(messages))
        self.options.append(dict(options))
        if not self.replies:
            return self._echo(messages), "", []
        if self._next >= len(self.replies):
            if not self.cycle:
                raise LLMError(
                    f"llm/mock: all {len(self.replies)} scripted replies were used; "
                    "add replies or pass cycle=True"
                )
            self._next = 0
        number, reply = self._next, self.replies[self._next]
        self._next += 1
        if isinstance(reply, str):
            return reply, "", []
        if isinstance(reply, dict) and _reasoned(reply):
            return reply.get("content", ""), reply["reasoning"], []
        return "", "", self._tool_calls(_scripted_calls(reply, number), number, options)

    @staticmethod
    def _echo(messages: list[Message]) -> str:
        for role in (MessageRole.USER, MessageRole.SYSTEM):
            said = [m.text for m in messages if m.role == role]
            if said:
                return said[-1]
        return ""  # not reached: the base class refuses a request without a user or system message

    def _tool_calls(self, scripted: list[dict[str, Any]], number: int, options: dict[str, Any]) -> list[ToolCall]:
        offered = [tool.name for tool in options.get("tools") or []]
        calls = []
        for call in scripted:
            if call["tool"] not in offered:
                raise LLMError(
                    f"llm/mock: replies[{number}] calls the tool {call['tool']!r}, but this call offers "
                    + (f"only {', '.join(offered)}" if offered else "no tools (add them with .with_tools(...))")
                )
            self._tool_calls_made += 1
            calls.append(ToolCall(id=f"call_{self._tool_calls_made}", name=call["tool"], arguments=call.get("arguments", {})))
        return calls

    @staticmethod
    def _usage(messages: list[Message], reply: str) -> Usage:
        prompt_words = sum(len(m.text.split()) for m in messages)
        return Usage(prompt_tokens=prompt_words, completion_tokens=len(reply.split()))

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        reply, reasoning, tool_calls = self._reply(messages, options)
        content: Any = [ReasoningPart(text=reasoning), TextPart(text=reply)] if reasoning else reply
        answer = Message(role=MessageRole.ASSISTANT, content=content, tool_calls=tool_calls)
        return GenerationResult(
            content=reply, reasoning=reasoning, messages=[*messages, answer], usage=self._usage(messages, reply),
            tool_calls=tool_calls, metadata={"model": "mock"},
        )

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        reply, reasoning, tool_calls = self._reply(messages, options)
        for piece in re.findall(r"\S+\s*|\s+", reasoning):
            yield GenerationChunk(reasoning=piece)
        for piece in re.findall(r"\S+\s*|\s+", reply):
            yield GenerationChunk(content=piece)
        yield GenerationChunk(
            finish_reason="tool_calls" if tool_calls else "stop", tool_calls=tool_calls,
            usage=self._usage(messages, reply), metadata={"model": "mock"},
        )
