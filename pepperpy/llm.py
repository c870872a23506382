"""LLM types and the LLMProvider contract."""

from __future__ import annotations

import abc
import asyncio
import difflib
import functools
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import aclosing
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, TypeVar

from pydantic import BaseModel, BeforeValidator, Field, ValidationError

from pepperpy._deadline import Deadline
from pepperpy.core import PepperpyPlugin, State, check_async, close_guard, guard, open_guard, plugin_failure
from pepperpy.errors import ConfigError, InvalidInputError, LLMTimeoutError, PepperPyError, PluginError, UnsupportedPartError
from pepperpy.parts import (
    Audio,
    AudioPart,
    DocumentPart,
    File,
    Image,
    ImagePart,
    MediaPart,
    Part,
    ReasoningPart,
    TextPart,
    UNKNOWN_TYPE,
    accepts,
)

if TYPE_CHECKING:
    import re
    from decimal import Decimal

T = TypeVar("T")


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


def _text_part(item: Any) -> Any:
    """In a list of parts, a plain str is a text part (a per-item validator: a str content runs no Python)."""
    return TextPart(text=item) if isinstance(item, str) else item


class Message(BaseModel):
    """One turn. ``content`` is a str, or a list of parts (text, images, audio, files, reasoning) — see
    pepperpy.parts; ``text`` is the message's text either way."""

    role: MessageRole
    content: str | list[Annotated[Part, BeforeValidator(_text_part)]] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    tool_call_id: str | None = None

    @property
    def text(self) -> str:
        """The message's text: ``content`` itself, or its text parts joined ("" when it has none)."""
        if self.content is None or isinstance(self.content, str):
            return self.content or ""
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def parts(self) -> list[Any]:
        """``content`` as a list of parts (a str is one text part; no content, none)."""
        if self.content is None or self.content == "":
            return []
        return [TextPart(text=self.content)] if isinstance(self.content, str) else list(self.content)

    @property
    def reasoning(self) -> str:
        """The text of the message's reasoning parts ("" when it has none)."""
        if not isinstance(self.content, list):
            return ""
        return "".join(part.text for part in self.content if isinstance(part, ReasoningPart))


class Usage(BaseModel):
    """Token counts of a call, and what prices them.

    ``prompt_tokens`` counts every input token, the cached ones included (``cache_read_tokens`` read from the
    service's prompt cache, ``cache_write_tokens`` written to it); ``completion_tokens`` every output token, the
    reasoning ones included (``reasoning_tokens``). The three details are None when the service does not report
    them. ``model`` and ``service`` (a genai-prices provider id: openai, anthropic, google, aws, azure, groq, ...;
    None for a local or unknown server) are what ``cost`` is priced by.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    model: str | None = None
    service: str | None = None

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> Decimal | None:
        """The call's price in USD, computed when read (pepperpy/_prices.py); None for a model or service
        genai-prices does not know, and when genai-prices is not installed (``pip install 'pepperpy[cost]'``)."""
        from pepperpy._prices import price

        return price(self)


class GenerationResult(BaseModel):
    """A finished answer: its text, the conversation that produced it, usage."""

    content: str
    reasoning: str = ""
    messages: list[Message] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    metadata: dict[str, Any] = Field(default_factory=dict)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    parsed: Any = None

    def __str__(self) -> str:
        return self.content


class GenerationChunk(BaseModel):
    """One piece of a streamed answer; the last ones carry finish_reason, tool calls and usage
    (and ``parsed``, the validated answer, when the chat has a response model).

    ``message``, on the last chunk where the provider gives one, is the whole assistant message as
    ``generate`` would have put it in ``result.messages``: its reasoning parts with their signatures,
    which a conversation keeps to send back unchanged (the chunks' text alone would lose them).

    ``tool_results``: when a chat's ``stream()`` runs tools, after each round's chunk with ``tool_calls`` comes
    one chunk (no text) holding the tool messages sent back to the model, one per call, in the calls' order."""

    content: str = ""
    reasoning: str = ""
    finish_reason: str | None = None
    tool_calls: list[ToolCall] = Field(default_factory=list)
    usage: Usage | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)
    parsed: Any = None
    message: Message | None = None
    tool_results: list[Message] = Field(default_factory=list)

    @classmethod
    def from_text(cls, content: str) -> GenerationChunk:
        """A chunk of text only, built as ``model_construct`` builds it (no validation: ``content`` must be a str)
        but without its per-call inspection of the default factories. A stream is mostly such chunks: built this
        way, a no-hook stream costs about 5% less CPU per chunk (1.19x -> 1.13x of raw httpx, scripts/bench.py http).
        Anything but a str is validated as ``GenerationChunk(content=...)`` would (and refused the same way)."""
        if type(content) is not str:
            return cls(content=content)
        chunk = _new_object(cls)
        _set_attribute(chunk, "__dict__", {
            "content": content, "reasoning": "", "finish_reason": None, "tool_calls": [], "usage": None,
            "metadata": {}, "parsed": None, "message": None, "tool_results": [],
        })
        _set_attribute(chunk, "__pydantic_fields_set__", {"content"})
        _set_attribute(chunk, "__pydantic_extra__", None)
        _set_attribute(chunk, "__pydantic_private__", None)
        return chunk


_new_object, _set_attribute = object.__new__, object.__setattr__


MessagesInput = str | list[Message] | list[dict[str, Any]]


def assistant_reply(result: GenerationResult) -> Message | None:
    """The provider's own assistant message for ``result`` (the last of ``result.messages``, with its reasoning
    parts and their signatures), when it gave one that matches the answer's text; else None."""
    last = result.messages[-1] if result.messages else None
    if last is not None and last.role == MessageRole.ASSISTANT and last.text == result.content:
        return last
    return None


def _message_problem(error: Any) -> str:
    where = ".".join(map(str, error["loc"])) or "message"
    if where == "role" and error["type"] == "enum":
        return f"role must be one of {', '.join(sorted({r.value for r in MessageRole}))}"
    return f"{where}: {error['msg']}"


def to_message(item: Any, who: str = "messages") -> Message:
    """A ``Message`` from a Message or a ``{"role", "content"}`` dict; InvalidInputError otherwise."""
    if type(item) is Message:
        return item
    try:
        return Message.model_validate(item)
    except ValidationError as exc:
        problem = "; ".join(_message_problem(e) for e in exc.errors())
        raise InvalidInputError(
            f"{who}: {str(item)[:100]!r} is not a message ({problem}); pass a str, Message objects, "
            "or dicts with 'role' (system, user, assistant, tool) and 'content'"
        ) from None


def to_messages(messages: Any, who: str = "messages") -> list[Message]:
    """Normalize what callers pass (a str, Messages, role/content dicts) into a list of ``Message``."""
    if isinstance(messages, str):
        return [Message(role=MessageRole.USER, content=messages)]
    if isinstance(messages, (list, tuple)):
        if all(type(m) is Message for m in messages):
            return messages if type(messages) is list else list(messages)
        return [to_message(m, who) for m in messages]
    raise InvalidInputError(
        f"{who}: expected a str or a list of messages, got {type(messages).__name__}; "
        "pass a str, Message objects, or dicts with 'role' and 'content'"
    )


_ASKING = (MessageRole.USER, MessageRole.SYSTEM)


def text_only(messages: Any) -> bool:
    """True when every item of ``messages`` is a ``Message`` whose content is text (or none): nothing to convert,
    no part to check."""
    for message in messages:  # a plain loop: this runs on every call
        if type(message) is not Message or not (message.content is None or type(message.content) is str):
            return False
    return True


def has_prompt(messages: list[Message]) -> bool:
    """True when ``messages`` hold a user or system message (something to answer)."""
    for message in messages:  # a plain loop: this runs on every call
        if message.role in _ASKING:
            return True
    return False


def check_prompt(messages: list[Message], who: str, how: str) -> None:
    """Refuse a request with nothing to answer (no user or system message): a model would make an answer up."""
    if has_prompt(messages):
        return
    roles = sorted({m.role.value for m in messages})
    got = f"only {' and '.join(roles)} messages, no user or system message" if roles else "no messages"
    raise InvalidInputError(f"{who}: nothing to answer ({got}); {how}")


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _whole(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _stop(value: Any) -> bool:
    return isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value))


def _model_class(value: Any) -> bool:
    return isinstance(value, type) and issubclass(value, BaseModel)


REASONING_EFFORTS = ("low", "medium", "high")


def _reasoning(value: Any) -> bool:
    return value is False or value is True or value in REASONING_EFFORTS or (_whole(value) and value > 0)


# The per-call options of every LLM provider (where its backend can honor them): name -> (check, expected).
CALL_OPTIONS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "model": (lambda v: isinstance(v, str), "a model name (str)"),
    "temperature": (_number, "a number"),
    "top_p": (_number, "a number"),
    "max_tokens": (_whole, "a whole number"),
    "seed": (_whole, "a whole number"),
    "stop": (_stop, "a str or a list of str"),
    "tools": (lambda v: isinstance(v, list), "a list of tools (use with_tools)"),
    "response_model": (_model_class, "a pydantic model class"),
    "timeout": (lambda v: v is None or (_number(v) and v > 0), "a positive number of seconds"),
    "reasoning": (_reasoning, "'low', 'medium', 'high', True, False, or a token budget (a positive whole number)"),
}
# Options a provider takes only when it says so (adds them to its ``call_options``).
OPT_IN_OPTIONS = frozenset({"reasoning"})
# Options that change how a call is made, not what it answers (left out of cache keys and recorded requests).
TRANSPORT_OPTIONS = frozenset({"timeout", "max_retries", "retry_budget", "retry_connect", "max_retry_after"})


def option_json(value: Any) -> Any:
    """A call option's value as JSON data (``json.dumps``' ``default``): a response model as its schema, a tool
    as its declaration, a pydantic object dumped, anything else its repr."""
    schema = getattr(value, "model_json_schema", None)
    if isinstance(value, type) and schema is not None:
        return {"response_model": schema()}
    if hasattr(value, "parameters") and hasattr(value, "name"):  # a pepperpy.tools.Tool
        return {"tool": value.name, "description": getattr(value, "description", ""), "parameters": value.parameters}
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    return repr(value)


def message_json(message: Message, *, exclude_defaults: bool = False) -> dict[str, Any]:
    """A message as JSON data with its parts by ``describe()`` (a media part's hash, never its path or bytes)."""
    data = message.model_dump(mode="json", exclude={"content"}, exclude_defaults=exclude_defaults)
    content = message.content
    data["content"] = [part.describe() for part in content] if isinstance(content, list) else content
    return data


def reasoning_for_model(who: str, model: str, value: Any, *, cannot_reason: re.Pattern[str], use: str) -> Any:
    """``reasoning=`` for ``model``: as given, None for False on a model ``cannot_reason`` matches, refused
    (naming ``who`` and suggesting ``use``) for any other value on such a model."""
    if value is None or not cannot_reason.match(model):
        return value
    if value is False:
        return None
    raise InvalidInputError(
        f"{who} (model {model}) does not reason, so it takes no reasoning option; leave reasoning= out, or use {use}"
    )


def check_call_options(provider: LLMProvider, options: dict[str, Any]) -> None:
    """Refuse unknown per-call options (with a close match) and known ones of the wrong type."""
    allowed = type(provider).call_options
    for key, value in options.items():
        if allowed is not None and key not in allowed:
            if key in OPT_IN_OPTIONS:
                raise ConfigError(
                    f"{provider.plugin_id}: does not take the call option {key!r} (its plugin does not offer it); "
                    "leave it out, or use a provider that takes it"
                )
            close = difflib.get_close_matches(key, sorted(allowed), n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"options are: {', '.join(sorted(allowed))}"
            raise ConfigError(f"{provider.plugin_id}: unknown call option {key!r}; {hint}")
        check = CALL_OPTIONS.get(key)
        if check is not None and value is not None and not check[0](value):
            raise ConfigError(
                f"{provider.plugin_id}: call option {key!r} must be {check[1]}, got {type(value).__name__} {value!r:.60}"
            )


def call_timeout(provider: Any, options: dict[str, Any]) -> float | None:
    """The call's ``timeout`` option, else the provider's ``timeout`` option, else None (no limit)."""
    timeout = options.get("timeout")
    return timeout if timeout is not None else getattr(provider, "timeout", None)


def _refused(provider: LLMProvider, model: str | None, part: MediaPart, taken: frozenset[str]) -> UnsupportedPartError:
    which = f"{provider.plugin_id}" + (f" (model {model})" if model else "")
    hint = type(provider).media_hint
    takes = ", ".join(sorted(taken)) if taken else "text only" + (f"; {hint}" if hint else "")
    unknown = " (its media type is unknown: pass it, e.g. File(path, media_type='text/csv'))" \
        if part.media_type == UNKNOWN_TYPE else ""
    return UnsupportedPartError(
        f"{which} cannot take the {part.type} part ({part.media_type}, {part.source}){unknown}; it takes {takes}. "
        "Use a provider or model that takes it, or leave the part out",
        part,
    )


def check_parts(provider: LLMProvider, messages: list[Message], model: str | None) -> list[Message]:
    """Refuse media parts ``provider`` cannot take (before any request); for a provider that takes no media,
    messages with parts become plain text (text parts joined, reasoning left out), as before parts existed.

    For messages that are not ``text_only`` (the callers' guard has just scanned them: not scanned again here)."""
    taken = provider.media_types_for(model)
    for message in messages:
        for part in message.content if isinstance(message.content, list) else ():
            if isinstance(part, MediaPart) and not accepts(taken, part.media_type or ""):
                raise _refused(provider, model, part, taken)
    if taken:
        return messages
    return [m.model_copy(update={"content": m.text}) if isinstance(m.content, list) else m for m in messages]


def _prepare(provider: LLMProvider, messages: Any, options: dict[str, Any], method: str) -> list[Message]:
    plain = type(messages) is list and text_only(messages)
    normalized = messages if plain else to_messages(messages, f"{provider.plugin_id}: {method}()")
    if not has_prompt(normalized):
        check_prompt(normalized, f"{provider.plugin_id}: {method}()", "pass a str or add a user message")
    if options:
        check_call_options(provider, options)
    if not plain and not text_only(normalized):
        normalized = check_parts(provider, normalized, options.get("model") or getattr(provider, "model", None))
    if provider._lifecycle.state is not State.OPEN:
        provider.check_open(method)
    return normalized


async def _own_errors(provider: LLMProvider, method: str, call: Awaitable[T]) -> T:
    """``await call``; the plugin's own exception becomes a PluginError naming ``method`` (``plugin_failure``)."""
    try:
        return await call
    except PepperPyError:
        raise
    except Exception as exc:
        raise plugin_failure(provider, method, exc) from exc


def _generate_guard(generate: Callable[..., Any]) -> Callable[..., Any]:
    """Every ``generate``: normalized messages, open check, whole-call deadline, result type check."""
    check_async(generate, generate.__qualname__)

    @functools.wraps(generate)
    async def call(self: LLMProvider, messages: MessagesInput, **options: Any) -> GenerationResult:
        normalized = _prepare(self, messages, options, "generate")
        timeout = call_timeout(self, options)
        deadline = Deadline(timeout) if timeout is not None else None  # the HTTP edge inside arms no second timer
        try:
            try:
                result = await generate(self, normalized, **options)
            finally:
                expired = deadline is not None and deadline.close()
        except asyncio.CancelledError:
            if not expired:
                raise
            raise LLMTimeoutError(
                f"{self.plugin_id}: no complete answer within timeout={timeout}s {self.timeout_note}; "
                "pass a larger timeout=...",
                retryable=True,
            ) from None
        except PepperPyError:
            raise
        except Exception as exc:
            raise plugin_failure(self, "generate", exc) from exc
        if not isinstance(result, GenerationResult):
            raise PluginError(
                f"{self.plugin_id}: {type(self).__name__}.generate returned {type(result).__name__}; "
                "it must return a pepperpy.llm.GenerationResult (e.g. GenerationResult(content=text))"
            )
        return result

    return guard(call)


class _ChunkTimer:
    """Bounds every wait for a chunk (the first and each gap) to ``limit`` seconds, cheaply.

    One loop timer serves the whole stream: a wait records when it started (``start()``;
    ``waiting_since = None`` when it ends), and the timer, when it fires, either cancels
    the task still waiting past the limit or re-arms itself for the current wait's
    deadline. Time the consumer spends between chunks (outside a wait) is never counted
    and never cancelled.
    """

    def __init__(self, limit: float):
        self.limit = limit
        self.loop = loop = asyncio.get_running_loop()
        # asyncio's own loops read time.monotonic in a Python method: read it directly (per chunk, that call counts)
        self.now = time.monotonic if type(loop).time is asyncio.BaseEventLoop.time else loop.time
        self.task: asyncio.Task[Any] | None = None
        self.waiting_since: float | None = None
        self.handle: asyncio.TimerHandle | None = None
        self.expired = False

    def start(self) -> None:
        self.task = asyncio.current_task(self.loop)  # with the loop given: a third of the cost (Python 3.11)
        self.waiting_since = self.now()
        if self.handle is None:
            self.handle = self.loop.call_at(self.waiting_since + self.limit, self._check)

    def _check(self) -> None:
        self.handle = None
        if self.waiting_since is None or self.task is None:
            return  # not waiting: the next wait arms the timer again
        deadline = self.waiting_since + self.limit
        if self.now() >= deadline:
            self.expired = True
            self.task.cancel()
        else:
            self.handle = self.loop.call_at(deadline, self._check)

    def close(self) -> None:
        if self.handle is not None:
            self.handle.cancel()

    def timed_out(self) -> bool:
        """After a CancelledError: True when this timer caused it (and nobody else cancelled the task)."""
        return self.expired and self.task is not None and self.task.uncancel() == 0


def _stream_timeout(provider: PepperpyPlugin, timer: _ChunkTimer, first: bool) -> LLMTimeoutError:
    limit = "for the first chunk" if first else "between two chunks"
    return LLMTimeoutError(
        f"{provider.plugin_id}: waited more than timeout={timer.limit}s {limit} of the stream (for a stream "
        "the limit bounds the first chunk and every gap, not the whole answer); pass a larger timeout=...",
        retryable=first,
    )


async def _started(provider: PepperpyPlugin, produced: Any) -> AsyncIterator[Any]:
    """The author's stream: an async generator, or what an ``async def`` returning one gave."""
    if asyncio.iscoroutine(produced):
        produced = await produced
    if not hasattr(produced, "__anext__"):
        raise PluginError(
            f"{provider.plugin_id}: {type(provider).__name__}.generate_stream returned {type(produced).__name__}; "
            "it must be an async generator (`async def` with `yield GenerationChunk(...)`)"
        )
    return produced


def _stream_guard(generate_stream: Callable[..., Any]) -> Callable[..., Any]:
    """Every ``generate_stream``: normalized messages, open check, first-chunk and gap limits, chunk type check."""
    check_async(generate_stream, generate_stream.__qualname__)

    @functools.wraps(generate_stream)
    async def stream(self: LLMProvider, messages: MessagesInput, **options: Any) -> AsyncIterator[GenerationChunk]:
        normalized = _prepare(self, messages, options, "generate_stream")
        timeout = call_timeout(self, options)
        started = _started(self, generate_stream(self, normalized, **options))
        produced = await _own_errors(self, "generate_stream", started)
        timer = _ChunkTimer(timeout) if timeout is not None else None
        try:
            async with aclosing(produced) as chunks:
                first = True
                next_chunk = chunks.__anext__
                while True:
                    if timer is not None:
                        timer.start()
                    try:
                        chunk = await next_chunk()
                    except StopAsyncIteration:
                        return
                    except asyncio.CancelledError:
                        if timer is None or not timer.timed_out():
                            raise
                        raise _stream_timeout(self, timer, first) from None
                    except PepperPyError:
                        raise
                    except Exception as exc:
                        raise plugin_failure(self, "generate_stream", exc) from exc
                    finally:
                        if timer is not None:
                            timer.waiting_since = None  # the consumer's own time between chunks is never counted
                    if not isinstance(chunk, GenerationChunk):
                        raise PluginError(
                            f"{self.plugin_id}: {type(self).__name__}.generate_stream yielded {type(chunk).__name__}; "
                            "yield pepperpy.llm.GenerationChunk(content=...) objects"
                        )
                    first = False
                    yield chunk
        finally:
            if timer is not None:
                timer.close()

    return guard(stream)


class LLMProvider(PepperpyPlugin):
    """Turns messages into an answer, whole or streamed.

    Implement ``generate`` (and ``generate_stream`` to stream token by token). Callers
    may pass a ``str``, ``Message`` objects or role/content dicts; the base class hands
    your methods a list of ``Message``. Per-call options are checked against
    ``call_options`` (names) and ``CALL_OPTIONS`` (types) before your method runs;
    ``timeout`` is enforced by the base class. Parts (images, audio, files) reach your
    methods only when ``media_types`` (or ``media_types_for(model)``) says you take them;
    a part you do not take fails before your method runs. Without media types, every
    message arrives with plain-text ``content``.
    """

    category: ClassVar[str] = "llm"
    can_stream: ClassVar[bool] = True
    # What the timeout error of a whole ``generate`` says the limit covers and what became of the request;
    # a provider that sends nothing anywhere (a local model) says so instead.
    timeout_note: ClassVar[str] = (
        "(the limit covers the whole call, retries and slow bodies included); "
        "if the request reached the service, it may have been processed"
    )
    # Per-call options this provider takes (see CALL_OPTIONS); None accepts any. Add "reasoning" if it reasons.
    call_options: ClassVar[frozenset[str] | None] = frozenset(CALL_OPTIONS) - OPT_IN_OPTIONS
    # Media types of the parts it takes ("image/png", "image/*", "*/*"); none: it gets every message as plain text.
    media_types: ClassVar[frozenset[str]] = frozenset()
    # What a refused part's error adds when this provider, as configured, takes no media: how to make it take some.
    media_hint: ClassVar[str] = ""
    wrapped_methods: ClassVar[dict[str, Callable[[Any], Any]]] = {
        "initialize": open_guard,
        "cleanup": close_guard,
        "generate": _generate_guard,
        "generate_stream": _stream_guard,
    }

    def media_types_for(self, model: str | None) -> frozenset[str]:
        """The media types ``model`` takes; override where they vary by model (the default: ``media_types``)."""
        return type(self).media_types

    @abc.abstractmethod
    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        """The whole answer to ``messages``."""

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        """Stream the answer; the default yields the whole answer as one chunk (its tool calls on it)."""
        result = await self.generate(messages, **options)
        yield GenerationChunk(
            content=result.content, reasoning=result.reasoning, finish_reason="tool_calls" if result.tool_calls else "stop",
            tool_calls=result.tool_calls, usage=result.usage, message=assistant_reply(result),
        )


__all__ = [
    "Audio",
    "AudioPart",
    "DocumentPart",
    "File",
    "Image",
    "ImagePart",
    "MediaPart",
    "Part",
    "ReasoningPart",
    "TextPart",
    "GenerationChunk",
    "GenerationResult",
    "LLMProvider",
    "Message",
    "MessageRole",
    "MessagesInput",
    "assistant_reply",
    "ToolCall",
    "Usage",
    "CALL_OPTIONS",
    "call_timeout",
    "check_call_options",
    "check_parts",
    "check_prompt",
    "has_prompt",
    "text_only",
    "TRANSPORT_OPTIONS",
    "message_json",
    "option_json",
    "reasoning_for_model",
    "to_message",
    "to_messages",
]
