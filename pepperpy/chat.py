"""The chat builder (one request: messages, options, tools, response model) and conversations."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import aclosing
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from pepperpy.errors import InvalidInputError, LLMError
from pepperpy.llm import GenerationChunk, GenerationResult, Message, MessageRole, to_message
from pepperpy.structured import parse as parse_structured
from pepperpy.tools import Tool, run_tool_calls, tool_from_function

T = TypeVar("T")


class ProviderSource(Protocol):
    """What builders need from the facade: an open provider of a category, and the sync runner."""

    def ready(self, category: str) -> Awaitable[Any]: ...

    def run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T: ...


def _text(method: str, content: Any) -> str:
    if not isinstance(content, str):
        raise InvalidInputError(f"{method}() takes the message text as a str, got {type(content).__name__}: {content!r:.80}")
    return content


class ChatBuilder:
    """Assembles one request; every ``with_*`` returns a new builder, so a partial chat can be reused.

    Finish with ``await .generate()``, ``async for chunk in .stream()`` or ``.generate_sync()``.
    """

    def __init__(self, source: ProviderSource, messages: list[Message] | None = None):
        self._source = source
        self._messages: list[Message] = list(messages or [])
        self._options: dict[str, Any] = {}
        self._tools: tuple[Tool, ...] = ()
        self._run_tools = False
        self._max_rounds = 5
        self._response_model: type[BaseModel] | None = None

    def _with(self, **changes: Any) -> ChatBuilder:
        builder = copy.copy(self)
        builder.__dict__.update(changes)
        return builder

    @property
    def messages(self) -> list[Message]:
        """The messages so far (a copy)."""
        return list(self._messages)

    @property
    def options(self) -> dict[str, Any]:
        return dict(self._options)

    def _add(self, role: MessageRole, method: str, content: Any) -> ChatBuilder:
        message = Message(role=role, content=_text(method, content))
        return self._with(_messages=[*self._messages, message])

    def with_system(self, content: str) -> ChatBuilder:
        return self._add(MessageRole.SYSTEM, "with_system", content)

    def with_user(self, content: str) -> ChatBuilder:
        return self._add(MessageRole.USER, "with_user", content)

    def with_assistant(self, content: str) -> ChatBuilder:
        return self._add(MessageRole.ASSISTANT, "with_assistant", content)

    def with_messages(self, messages: list[Any]) -> ChatBuilder:
        """Append messages given as ``Message`` objects or dicts with role and content."""
        if isinstance(messages, (str, bytes)) or not hasattr(messages, "__iter__"):
            raise InvalidInputError(f"with_messages() takes a list of messages, got {type(messages).__name__}")
        added = [to_message(m, "with_messages()") for m in messages]
        return self._with(_messages=[*self._messages, *added])

    def with_options(self, **options: Any) -> ChatBuilder:
        """Generation options such as ``temperature``, ``max_tokens``, ``stop``, ``seed``, ``timeout``."""
        changes: dict[str, Any] = {}
        if "response_model" in options:
            changes["_response_model"] = options.pop("response_model")
        return self._with(_options={**self._options, **options}, **changes)

    def with_tools(self, *functions: Callable[..., Any], run: bool = True, max_rounds: int = 5) -> ChatBuilder:
        """Offer plain functions (type hints + docstring) as tools.

        With ``run=True`` (default) ``generate()`` calls the functions the model asks
        for and sends the results back, for at most ``max_rounds`` rounds; with
        ``run=False`` it returns the model's tool calls in ``result.tool_calls``.
        """
        tools = (*self._tools, *(tool_from_function(f) for f in functions))
        return self._with(_tools=tools, _run_tools=run, _max_rounds=max_rounds)

    def with_response_model(self, model: type[BaseModel]) -> ChatBuilder:
        """Ask for JSON fitting ``model``; the validated instance is ``result.parsed``."""
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidInputError(f"with_response_model() takes a pydantic model class, got {model!r:.80}")
        return self._with(_response_model=model)

    def _request_options(self) -> dict[str, Any]:
        options = dict(self._options)
        if self._tools:
            options["tools"] = list(self._tools)
        if self._response_model is not None:
            options["response_model"] = self._response_model
        return options

    async def generate(self) -> GenerationResult:
        provider = await self._source.ready("llm")
        options = self._request_options()
        result = await self._generate_running_tools(provider, list(self._messages), options)
        if self._response_model is not None:
            result = await self._validated(provider, result, options)
        return result

    async def _generate_running_tools(self, provider: Any, messages: list[Message], options: dict[str, Any]) -> Any:
        for round_number in range(self._max_rounds + 1):
            result = await provider.generate(messages, **options)
            if not (self._run_tools and result.tool_calls):
                return result
            if round_number == self._max_rounds:
                raise LLMError(
                    f"{provider.plugin_id}: the model still asked for tools after {self._max_rounds} rounds; "
                    "pass a larger max_rounds to with_tools() or run=False to handle the calls yourself"
                )
            messages = [*result.messages, *await run_tool_calls(list(self._tools), result.tool_calls)]
        raise AssertionError("unreachable")

    async def _validated(self, provider: Any, result: Any, options: dict[str, Any]) -> Any:
        """Validate into the response model; on failure retry once, telling the model what was wrong."""
        model = self._response_model
        assert model is not None
        parsed, problem = parse_structured(model, result.content)
        if problem is None:
            return result.model_copy(update={"parsed": parsed})
        feedback = Message(
            role=MessageRole.USER,
            content=f"That answer is not valid for the schema: {problem}\nReply again with corrected JSON only.",
        )
        retried = await provider.generate([*result.messages, feedback], **options)
        parsed, problem = parse_structured(model, retried.content)
        if problem is not None:
            raise LLMError(f"{provider.plugin_id}: the answer did not fit {model.__name__} after one retry: {problem}")
        return retried.model_copy(update={"parsed": parsed})

    async def stream(self) -> AsyncIterator[GenerationChunk]:
        """Stream the answer; tool calls, if any, arrive on the last chunks (tools are not run)."""
        provider = await self._source.ready("llm")
        async with aclosing(provider.generate_stream(list(self._messages), **self._request_options())) as chunks:
            async for chunk in chunks:  # leaving early closes the provider's stream at once
                yield chunk

    def generate_sync(self) -> GenerationResult:
        """``generate()`` for scripts without an event loop; the provider stays open for the next call."""
        return self._source.run_sync(self.generate())


class Conversation:
    """A chat that keeps its history: ``await conv.say("...")``, ``conv.stream("...")``, ``conv.messages``."""

    def __init__(self, source: ProviderSource, system: str | None = None, **options: Any):
        self._source = source
        self.messages: list[Message] = [] if system is None else [Message(role=MessageRole.SYSTEM, content=_text("system", system))]
        self.options = options

    def _turn(self, content: str, options: dict[str, Any]) -> ChatBuilder:
        builder = ChatBuilder(self._source, self.messages).with_user(content)
        return builder.with_options(**{**self.options, **options})

    async def say(self, content: str, **options: Any) -> GenerationResult:
        """Send ``content`` as the next user message; the answer joins the history."""
        builder = self._turn(content, options)
        result = await builder.generate()
        reply = Message(role=MessageRole.ASSISTANT, content=result.content, tool_calls=result.tool_calls)
        self.messages = [*builder._messages, reply]
        return result

    async def stream(self, content: str, **options: Any) -> AsyncIterator[GenerationChunk]:
        """Stream the answer to ``content``; the whole answer joins the history once the stream ends."""
        builder = self._turn(content, options)
        pieces: list[str] = []
        async for chunk in builder.stream():
            pieces.append(chunk.content)
            yield chunk
        self.messages = [*builder._messages, Message(role=MessageRole.ASSISTANT, content="".join(pieces))]

    def say_sync(self, content: str, **options: Any) -> GenerationResult:
        """``say()`` for scripts without an event loop."""
        return self._source.run_sync(self.say(content, **options))


__all__ = ["ChatBuilder", "Conversation", "ProviderSource"]
