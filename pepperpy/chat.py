"""The chat builder (one request: messages, options, tools, response model) and conversations."""

from __future__ import annotations

import dataclasses
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import aclosing
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from pepperpy.errors import InvalidInputError, LLMError
from pepperpy.hooks import Call, closing_stream, split_options
from pepperpy.llm import (
    GenerationChunk,
    GenerationResult,
    Message,
    MessageRole,
    ReasoningPart,
    TextPart,
    ToolCall,
    Usage,
    assistant_reply,
    check_prompt,
    has_prompt,
    to_message,
)
from pepperpy.parts import content_of
from pepperpy.structured import parse as parse_structured
from pepperpy.tools import Approve, Tool, ToolSource, collect_tools, run_tool_calls, tool_from_function

T = TypeVar("T")


class ProviderSource(Protocol):
    """What builders need from the facade: providers, the hooked LLM call, and the sync runner."""

    def provider(self, category: str) -> Any: ...

    def ready(self, category: str) -> Awaitable[Any]: ...

    def configured(self, category: str) -> Awaitable[Any]: ...

    def call_llm(self, call: Call) -> Awaitable[Any]: ...

    def run_sync(self, coroutine: Coroutine[Any, Any, T]) -> T: ...

    @property
    def plugin_manager(self) -> Any: ...


def _text(method: str, content: Any) -> str:
    if not isinstance(content, str):
        raise InvalidInputError(f"{method}() takes the message text as a str, got {type(content).__name__}: {content!r:.80}")
    return content


Fragment = tuple[str | os.PathLike[str], dict[str, Any]]  # a fragment's source and how to read it


def _fragment(source: Any, fetch: bool, max_bytes: int | None, timeout: float | None) -> Fragment:
    """A fragment for ``with_fragment()``: its source, checked, and its reading settings."""
    if not isinstance(source, (str, os.PathLike)):
        raise InvalidInputError(f"with_fragment() takes a path, '-', a URL or PREFIX:ARG, got {source!r:.60}")
    limits = {k: v for k, v in (("max_bytes", max_bytes), ("timeout", timeout)) if v is not None}
    return source, {"fetch": fetch, **limits}


class ChatBuilder:
    """Assembles one request; every ``with_*`` returns a new builder, so a partial chat can be reused.

    Finish with ``await .generate()``, ``async for chunk in .stream()`` or ``.generate_sync()``.
    """

    def __init__(self, source: ProviderSource, messages: list[Message] | None = None, conversation_id: str | None = None):
        self._source = source
        self._conversation_id = conversation_id
        self._messages: list[Message] = list(messages or [])
        self._options: dict[str, Any] = {}
        self._tools: tuple[Tool | ToolSource, ...] = ()
        self._run_tools = False
        self._max_rounds = 5
        self._response_model: type[BaseModel] | None = None
        self._fragments: tuple[Fragment, ...] = ()

    def _with(self, **changes: Any) -> ChatBuilder:
        builder = object.__new__(type(self))  # a shallow copy, as copy.copy makes, at a fifth of its cost
        builder.__dict__.update(self.__dict__, **changes)
        return builder

    @property
    def messages(self) -> list[Message]:
        """The messages built so far (a copy: changing it does not change the builder)."""
        return list(self._messages)

    @property
    def options(self) -> dict[str, Any]:
        """The options set so far (a copy)."""
        return dict(self._options)

    def _add(self, message: Message) -> ChatBuilder:
        return self._with(_messages=[*self._messages, message])

    def with_system(self, content: str, *, cache: bool = False) -> ChatBuilder:
        """A system message; ``cache=True`` marks a prompt-cache point after it (for services that take one)."""
        text = _text("with_system", content)
        return self._add(Message(role=MessageRole.SYSTEM, content=[TextPart(text=text, cache=True)] if cache else text))

    def with_user(self, *content: Any) -> ChatBuilder:
        """A user message: its text and parts, in any order: ``with_user("What is this?", Image("cat.png"))``."""
        return self._add(Message(role=MessageRole.USER, content=content_of(content, "with_user()")))

    def with_assistant(self, *content: Any) -> ChatBuilder:
        return self._add(Message(role=MessageRole.ASSISTANT, content=content_of(content, "with_assistant()")))

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

    def with_tools(
        self, *tools: Callable[..., Any] | ToolSource, run: bool = True, max_rounds: int = 5, approve: Approve | None = None
    ) -> ChatBuilder:
        """Offer plain functions (type hints + docstring) and MCP servers (``MCPServer``, ``server.tools(...)``) as tools.

        With ``run=True`` (default) ``generate()`` and ``stream()`` call the tools the
        model asks for (the calls of one answer concurrently) and send the results back,
        for at most ``max_rounds`` rounds; with ``run=False`` the model's tool calls come
        back in ``result.tool_calls`` (on a stream, on its last chunk).
        ``approve(server, tool, arguments)`` (sync or async) is asked before each call of these tools
        (server is None for a function); a False tells the model the call was refused.
        """
        if not (type(max_rounds) is int and max_rounds >= 1):
            raise InvalidInputError(
                f"with_tools(): max_rounds must be a whole number of at least 1 (the tool rounds allowed before "
                f"the final answer), got {max_rounds!r:.40}"
            )
        added = [t.with_approval(approve) if isinstance(t, ToolSource) else tool_from_function(t) for t in tools]
        if approve is not None:
            added = [dataclasses.replace(t, approve=approve) if isinstance(t, Tool) else t for t in added]
        return self._with(_tools=(*self._tools, *added), _run_tools=run, _max_rounds=max_rounds)

    def with_response_model(self, model: type[BaseModel]) -> ChatBuilder:
        """Ask for JSON fitting ``model``; the validated instance is ``result.parsed``."""
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            raise InvalidInputError(f"with_response_model() takes a pydantic model class, got {model!r:.80}")
        return self._with(_response_model=model)

    def with_fragment(
        self, source: str | os.PathLike[str], *, fetch: bool = False, max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> ChatBuilder:
        """Context sent before the prompt, in the last user message: a file (a PDF or another document through
        the loader plugin of its suffix), ``"-"`` (standard input), ``"PREFIX:ARG"`` (the loader plugin PREFIX,
        e.g. ``"pdf:report.pdf"``) or a URL, fetched only with ``fetch=True`` (at most ``max_bytes``, 5 MB by
        default, within ``timeout`` seconds, 20 by default). Read when the chat is sent; the call log stores
        each fragment's text once, by its hash.
        """
        return self._with(_fragments=(*self._fragments, _fragment(source, fetch, max_bytes, timeout)))

    def from_template(self, name: str, /, **variables: Any) -> ChatBuilder:
        """The saved template NAME (``<home>/templates/NAME.yaml``) added: its system prompt and prompt with
        ``variables`` filled in (then its defaults), its options, its schema as the response model.

        A TemplateError names the file and the variable when one is missing or unknown. The template's
        ``provider`` and ``model`` are the command's; a script chooses both with ``with_llm``.
        """
        from pepperpy.templates import load_template

        template = load_template(self._source.plugin_manager.home, name)
        system, prompt = template.render(variables)
        builder = self if system is None else self.with_system(system)
        if prompt is not None:
            builder = builder.with_user(prompt)
        if template.options:
            builder = builder.with_options(**template.options)
        model = template.response_model()
        return builder if model is None else builder.with_response_model(model)

    async def _sent(self) -> list[Message]:
        """The messages to send: the chat's, with its fragments read and put first in the last user message."""
        messages = list(self._messages)
        if not self._fragments:
            return messages
        from pepperpy._fragments import resolve

        manager = self._source.plugin_manager
        parts = [(await resolve(source, manager=manager, **settings)).part() for source, settings in self._fragments]
        for position in range(len(messages) - 1, -1, -1):
            if messages[position].role == MessageRole.USER:
                last = messages[position]
                messages[position] = last.model_copy(update={"content": [*parts, *last.parts]})
                return messages
        return [*messages, Message(role=MessageRole.USER, content=parts)]

    async def _tool_list(self) -> list[Tool]:
        """The offered tools, an MCP server's listed (its session opened in the facade's, on first use)."""
        return await collect_tools(self._tools, self._source)

    async def _request_options(self) -> dict[str, Any]:
        """The chat's options with its tools and response model (``Call`` copies them: no copy here without those)."""
        if not self._tools and self._response_model is None:
            return self._options
        options = dict(self._options)
        if self._tools:
            options["tools"] = await self._tool_list()
        if self._response_model is not None:
            options["response_model"] = self._response_model
        return options

    async def _call(self, messages: list[Message], stream: bool = False) -> Any:
        """One LLM call through the facade's hooks (pepperpy/hooks.py); the provider opens inside the innermost."""
        provider = await self._source.configured("llm")
        options, settings = split_options(await self._request_options())
        model = options.get("model") or getattr(provider, "model", None)
        call = Call(provider.plugin_id, tuple(messages), options, stream, self._conversation_id,
                    model if isinstance(model, str) else None, settings, provider)
        return await self._source.call_llm(call)

    def _check_prompt(self, method: str) -> None:
        if not self._fragments and not has_prompt(self._messages):
            check_prompt(self._messages, "chat", f"add a user message with .with_user(...) before .{method}()")

    async def generate(self) -> GenerationResult:
        """The answer. With tools run, the loop's rounds come first; ``result.usage`` is then the sum of the rounds'."""
        self._check_prompt("generate")
        result, _sent = await self._generate_running_tools(await self._sent())
        if self._response_model is not None:
            result = await self._validated(result)
        return result

    async def _generate_with_history(self) -> tuple[GenerationResult, list[Message]]:
        """The answer, and the messages its last call was sent: the chat's, then each tool round's assistant
        message and tool results (what a conversation keeps)."""
        self._check_prompt("generate")
        result, sent = await self._generate_running_tools(await self._sent())
        if self._response_model is not None:
            result = await self._validated(result)
        return result, sent

    async def _generate_running_tools(self, messages: list[Message]) -> tuple[Any, list[Message]]:
        spent: Usage | None = None
        for round_number in range(self._max_rounds + 1):
            result = await self._call(messages)
            spent = result.usage if spent is None else _added(spent, result.usage)
            if not (self._run_tools and result.tool_calls):
                return (result if round_number == 0 else result.model_copy(update={"usage": spent})), messages
            if round_number == self._max_rounds:
                raise await self._too_many_rounds(result.tool_calls)
            messages = [*result.messages, *await run_tool_calls(await self._tool_list(), result.tool_calls)]
        raise AssertionError("unreachable")

    async def _too_many_rounds(self, calls: list[ToolCall]) -> LLMError:
        asked = ", ".join(call.name for call in calls)
        return LLMError(
            f"{(await self._source.configured('llm')).plugin_id}: the model still asked for tools ({asked}) after "
            f"max_rounds={self._max_rounds} tool rounds; pass a larger max_rounds to with_tools() or run=False "
            "to handle the calls yourself"
        )

    async def _validated(self, result: Any) -> Any:
        """Validate into the response model; on failure retry once, telling the model what was wrong."""
        model = self._response_model
        assert model is not None
        parsed, problem = parse_structured(model, result.content)
        if problem is None:
            return result.model_copy(update={"parsed": parsed})
        await self._refuse_if_cut(result, model)  # a retry would be cut at the same limit
        feedback = Message(
            role=MessageRole.USER,
            content=f"That answer is not valid for the schema: {problem}\nReply again with corrected JSON only.",
        )
        retried = await self._call([*result.messages, feedback])
        parsed, problem = parse_structured(model, retried.content)
        if problem is not None:
            await self._refuse_if_cut(retried, model)
            raise LLMError(f"{(await self._source.configured('llm')).plugin_id}: the answer did not fit {model.__name__} after one retry: {problem}")
        return retried.model_copy(update={"parsed": parsed})

    async def _refuse_if_cut(self, result: Any, model: type) -> None:
        """An answer that stopped at the token limit (finish_reason "length") is an error that says so."""
        if result.metadata.get("finish_reason") != "length":
            return
        provider = await self._source.configured("llm")
        plugin_id = provider.plugin_id
        limit = (await self._request_options()).get("max_tokens") or getattr(provider, "max_tokens", None)
        raise LLMError(
            f"{plugin_id}: the answer was cut at the token limit" + (f" (max_tokens={limit})" if limit else "")
            + f" before its JSON for {model.__name__} was complete; pass a larger max_tokens "
            "(.with_options(max_tokens=...)), or ask for less"
        )

    async def stream(self) -> AsyncIterator[GenerationChunk]:
        """Stream the answer. With tools run (``with_tools(fn)``), each round streams its text, then a chunk
        with its ``tool_calls``, then one with their ``tool_results``, and the next round follows, up to the
        final answer; with ``run=False`` the tool calls arrive on the last chunk and are not run.

        With a response model, the last chunk carries ``parsed``, the validated answer.
        """
        self._check_prompt("stream")
        if self._tools and self._run_tools:
            async with aclosing(self._stream_running_tools(await self._sent())) as rounds:
                async for chunk in rounds:
                    yield chunk
            return
        chunks = await self._call(await self._sent(), stream=True)
        if self._response_model is not None:
            chunks = self._parsed_on_the_last(chunks)
        async with closing_stream(chunks) as stream:  # leaving early closes the hooks' and provider's at once
            async for chunk in stream:
                yield chunk

    async def _stream_running_tools(self, messages: list[Message]) -> AsyncIterator[GenerationChunk]:
        """The tool loop of ``stream()``: each round is one streamed call through the hooks, passed on as it
        comes; its tool calls are run (concurrently), their results yielded, and sent back in the next round."""
        for round_number in range(self._max_rounds + 1):
            chunks = await self._call(messages, stream=True)
            if self._response_model is not None:
                chunks = self._parsed_on_the_last(chunks)
            pieces: list[str] = []
            thoughts: list[str] = []
            calls: list[ToolCall] = []
            given: Message | None = None
            async with closing_stream(chunks) as stream:
                async for chunk in stream:
                    pieces.append(chunk.content)
                    if chunk.reasoning:
                        thoughts.append(chunk.reasoning)
                    if chunk.tool_calls:
                        calls.extend(chunk.tool_calls)
                    if chunk.message is not None:
                        given = chunk.message
                    yield chunk
            if not calls:
                return
            if round_number == self._max_rounds:
                raise await self._too_many_rounds(calls)
            results = await run_tool_calls(await self._tool_list(), calls)
            yield GenerationChunk(tool_results=results)
            messages = [*messages, _round_reply("".join(pieces), thoughts, calls, given), *results]

    async def _parsed_on_the_last(self, chunks: Any) -> AsyncIterator[GenerationChunk]:
        """Pass chunks on one behind, so that the last one, once known, can carry the parsed answer."""
        model = self._response_model
        assert model is not None
        held: GenerationChunk | None = None
        pieces: list[str] = []
        asked_for_tools = False
        async with closing_stream(chunks) as stream:
            async for chunk in stream:
                if held is not None:
                    yield held
                held = chunk
                pieces.append(chunk.content)
                asked_for_tools = asked_for_tools or bool(chunk.tool_calls)
        if held is None or asked_for_tools:  # nothing came, or the model asks for tools instead of answering
            if held is not None:
                yield held
            return
        parsed, problem = parse_structured(model, "".join(pieces))
        if problem is None:
            yield held.model_copy(update={"parsed": parsed})
            return
        yield held
        raise LLMError(
            f"{(await self._source.configured('llm')).plugin_id}: the streamed answer did not fit {model.__name__}: "
            f"{problem}; a stream is not retried: use generate() to retry once with the validation error"
        )

    def generate_sync(self) -> GenerationResult:
        """``generate()`` for scripts without an event loop; the provider stays open for the next call."""
        return self._source.run_sync(self.generate())


class Conversation:
    """A chat that keeps its history: ``await conv.say("...")``, ``conv.stream("...")``, ``conv.messages``."""

    def __init__(
        self, source: ProviderSource, system: str | None = None, conversation_id: str | None = None, **options: Any
    ):
        import uuid

        self._source = source
        self.conversation_id = conversation_id or uuid.uuid4().hex
        self.messages: list[Message] = [] if system is None else [Message(role=MessageRole.SYSTEM, content=_text("system", system))]
        self.options = options
        self.tools: tuple[Any, ...] = ()  # functions and MCP servers each turn offers (see ChatBuilder.with_tools)
        self.approve: Approve | None = None
        self._fragments: tuple[Fragment, ...] = ()  # for the next turn

    def with_fragment(
        self, source: str | os.PathLike[str], *, fetch: bool = False, max_bytes: int | None = None,
        timeout: float | None = None,
    ) -> Conversation:
        """Context for the next turn, as ``ChatBuilder.with_fragment`` takes it: read when that turn is sent and put
        first in its user message, which joins the history with it (later turns see it, not read again). Returns
        the conversation: ``await conv.with_fragment("report.pdf").say("Summarize it.")``. A turn that fails
        keeps it for the next."""
        self._fragments = (*self._fragments, _fragment(source, fetch, max_bytes, timeout))
        return self

    async def _turn(self, content: tuple[Any, ...], options: dict[str, Any]) -> ChatBuilder:
        asked = ChatBuilder(self._source)  # the new user message: content, fragments first (alone, the message)
        if content or not self._fragments:
            asked = asked.with_user(*content)
        messages = await asked._with(_fragments=self._fragments)._sent()  # read now: the history keeps them
        builder = ChatBuilder(self._source, [*self.messages, *messages], self.conversation_id)
        if self.tools:
            builder = builder.with_tools(*self.tools, approve=self.approve)
        return builder.with_options(**{**self.options, **options})

    async def say(self, *content: Any, **options: Any) -> GenerationResult:
        """Send ``content`` (text, and parts such as ``Image(...)``) as the next user message; the answer joins
        the history, with its reasoning (on an error, nothing does)."""
        builder = await self._turn(content, options)
        result, sent = await builder._generate_with_history()
        self.messages = [*sent, _reply(result)]  # with the tool rounds' messages, as the model saw them
        self._fragments = ()
        return result

    async def stream(self, *content: Any, **options: Any) -> AsyncIterator[GenerationChunk]:
        """Stream the answer to ``content``; the whole answer joins the history once the stream ends: the
        provider's own assistant message when its last chunk carries one (reasoning signatures kept), else
        one made from the chunks.

        The user's message joins as the stream starts; left early (a ``break``, a cancel, Ctrl-C),
        the part of the answer received joins too. On an error the history is as it was, as with ``say()``.
        """
        before, fragments = self.messages, self._fragments
        turn = await self._turn(content, options)
        asked = self.messages = turn.messages
        self._fragments = ()
        pieces: list[str] = []
        thoughts: list[str] = []
        calls: list[ToolCall] = []
        given: Message | None = None
        rounds: list[Message] = []  # each finished tool round: its assistant message, then its tool results
        try:
            async with aclosing(turn.stream()) as stream:
                async for chunk in stream:
                    if chunk.tool_results:  # a round ended: what it sent back joins, the next round starts afresh
                        rounds += [_round_reply("".join(pieces), thoughts, calls, given), *chunk.tool_results]
                        pieces, thoughts, calls, given = [], [], [], None
                    pieces.append(chunk.content)
                    if chunk.reasoning:
                        thoughts.append(chunk.reasoning)
                    calls.extend(chunk.tool_calls)
                    if chunk.message is not None:
                        given = chunk.message
                    yield chunk
        except Exception:
            if self.messages is asked:
                self.messages, self._fragments = before, fragments
            raise
        except BaseException:  # left early: GeneratorExit (a break, aclose()) or CancelledError
            received = "".join(pieces)
            # unless another turn changed the history since (a stream abandoned without aclosing() closes later)
            if self.messages is asked and (received or rounds):
                self.messages = [*asked, *rounds, *([_streamed_reply(received, thoughts, given)] if received else [])]
            raise
        self.messages = [*asked, *rounds, _streamed_reply("".join(pieces), thoughts, given)]

    def say_sync(self, *content: Any, **options: Any) -> GenerationResult:
        """``say()`` for scripts without an event loop."""
        return self._source.run_sync(self.say(*content, **options))


def _reply(result: GenerationResult) -> Message:
    """The answer as the history keeps it: the provider's own assistant message (with its reasoning parts and
    their signatures) when it gave one, else one made from the result."""
    given = assistant_reply(result)
    if given is not None:
        return given
    if result.reasoning:
        content: Any = [ReasoningPart(text=result.reasoning), TextPart(text=result.content)]
        return Message(role=MessageRole.ASSISTANT, content=content, tool_calls=result.tool_calls)
    return Message(role=MessageRole.ASSISTANT, content=result.content, tool_calls=result.tool_calls)


def _added(spent: Usage, more: Usage) -> Usage:
    """Two calls' usage as one: the counts summed (a detail stays None only when neither reports it), the model and
    service the later call's."""

    def detail(a: int | None, b: int | None) -> int | None:
        return None if a is None and b is None else (a or 0) + (b or 0)

    return more.model_copy(update={
        "prompt_tokens": spent.prompt_tokens + more.prompt_tokens,
        "completion_tokens": spent.completion_tokens + more.completion_tokens,
        "cache_read_tokens": detail(spent.cache_read_tokens, more.cache_read_tokens),
        "cache_write_tokens": detail(spent.cache_write_tokens, more.cache_write_tokens),
        "reasoning_tokens": detail(spent.reasoning_tokens, more.reasoning_tokens),
    })


def _round_reply(text: str, thoughts: list[str], calls: list[ToolCall], given: Message | None) -> Message:
    """The assistant message of a streamed tool round, as the next round sends it back: the provider's own from the
    round's last chunk when it asks for the same calls (its reasoning signatures kept), else one made from the chunks."""
    if given is not None and given.role == MessageRole.ASSISTANT and given.tool_calls == calls:
        return given
    reply = _streamed_reply(text, thoughts, None)
    return reply.model_copy(update={"tool_calls": calls})


def _streamed_reply(text: str, thoughts: list[str], given: Message | None) -> Message:
    """The streamed answer as the history keeps it: the provider's message from the last chunk when it matches
    the text the caller received (a hook may have changed the chunks), else one made from the chunks."""
    if given is not None and given.role == MessageRole.ASSISTANT and given.text == text:
        return given
    if not thoughts:
        return Message(role=MessageRole.ASSISTANT, content=text)
    return Message(role=MessageRole.ASSISTANT, content=[ReasoningPart(text="".join(thoughts)), TextPart(text=text)])


__all__ = ["ChatBuilder", "Conversation", "ProviderSource"]
