"""The chat builder: one request's messages, options, tools and response model."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from pepperpy.errors import LLMError
from pepperpy.llm import GenerationChunk, GenerationResult, Message, MessageRole
from pepperpy.structured import parse as parse_structured
from pepperpy.tools import Tool, run_tool_calls, tool_from_function

if TYPE_CHECKING:
    from pepperpy.pepperpy import PepperPy


class ChatBuilder:
    """Assembles one request: messages, options, tools, response model; then ``generate()`` or ``stream()``."""

    def __init__(self, pepper: PepperPy):
        self._pepper = pepper
        self.messages: list[Message] = []
        self.options: dict[str, Any] = {}
        self.tools: list[Tool] = []
        self.run_tools = False
        self.max_rounds = 5
        self.response_model: type[BaseModel] | None = None

    def _add(self, role: MessageRole, content: str) -> ChatBuilder:
        self.messages.append(Message(role=role, content=content))
        return self

    def with_system(self, content: str) -> ChatBuilder:
        return self._add(MessageRole.SYSTEM, content)

    def with_user(self, content: str) -> ChatBuilder:
        return self._add(MessageRole.USER, content)

    def with_assistant(self, content: str) -> ChatBuilder:
        return self._add(MessageRole.ASSISTANT, content)

    def with_messages(self, messages: list[Any]) -> ChatBuilder:
        """Append messages given as ``Message`` objects or dicts with role and content."""
        self.messages.extend(Message.model_validate(m) for m in messages)
        return self

    def with_options(self, **options: Any) -> ChatBuilder:
        """Generation options such as ``temperature``, ``max_tokens``, ``stop``, ``seed``, ``timeout``."""
        if "response_model" in options:
            self.response_model = options.pop("response_model")
        self.options.update(options)
        return self

    def with_tools(self, *functions: Callable[..., Any], run: bool = True, max_rounds: int = 5) -> ChatBuilder:
        """Offer plain functions (type hints + docstring) as tools.

        With ``run=True`` (default) ``generate()`` calls the functions the model asks
        for and sends the results back, for at most ``max_rounds`` rounds; with
        ``run=False`` it returns the model's tool calls in ``result.tool_calls``.
        """
        self.tools.extend(tool_from_function(f) for f in functions)
        self.run_tools, self.max_rounds = run, max_rounds
        return self

    def with_response_model(self, model: type[BaseModel]) -> ChatBuilder:
        """Ask for JSON fitting ``model``; the validated instance is ``result.parsed``."""
        self.response_model = model
        return self

    def _request_options(self) -> dict[str, Any]:
        options = dict(self.options)
        if self.tools:
            options["tools"] = self.tools
        if self.response_model is not None:
            options["response_model"] = self.response_model
        return options

    async def generate(self) -> GenerationResult:
        provider = await self._pepper.ready("llm")
        options = self._request_options()
        result = await self._generate_running_tools(provider, list(self.messages), options)
        if self.response_model is not None:
            result = await self._validated(provider, result, options)
        return result

    async def _generate_running_tools(self, provider: Any, messages: list[Message], options: dict[str, Any]) -> Any:
        for round_number in range(self.max_rounds + 1):
            result = await provider.generate(messages, **options)
            if not (self.run_tools and result.tool_calls):
                return result
            if round_number == self.max_rounds:
                raise LLMError(
                    f"{provider.plugin_id}: the model still asked for tools after {self.max_rounds} rounds; "
                    "pass a larger max_rounds to with_tools() or run=False to handle the calls yourself"
                )
            messages = [*result.messages, *await run_tool_calls(self.tools, result.tool_calls)]
        raise AssertionError("unreachable")

    async def _validated(self, provider: Any, result: Any, options: dict[str, Any]) -> Any:
        """Validate into the response model; on failure retry once, telling the model what was wrong."""
        model = self.response_model
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
        provider = await self._pepper.ready("llm")
        async for chunk in provider.generate_stream(list(self.messages), **self._request_options()):
            yield chunk

    def generate_sync(self) -> GenerationResult:
        """``generate()`` for scripts without an event loop; cleans up before returning."""

        async def generate_and_close() -> GenerationResult:
            try:
                return await self.generate()
            finally:
                await self._pepper.aclose()

        from pepperpy.pepperpy import run_sync

        return run_sync(generate_and_close())


__all__ = ["ChatBuilder"]
