"""Record every LLM call of a run to a readable JSON file, and replay it later without the provider.

``pepperpy.hooks.record(path, mode)`` returns a ``Recording``; ``PepperPy().with_recording(...)`` puts one
between your hooks and the response cache (so your hooks run in a replay, and a warm cache hides no
call from it), and the pytest fixture ``pepperpy_recording`` does so for every facade of the test.

Modes (vcrpy's, as pytest-recording names them): ``"once"`` records every call when the file does not exist
yet, else replays (as ``"replay"``); ``"replay"`` never calls the provider and raises ``RecordingError`` for a
request the file has no unused answer for; ``"new"`` replays what it has and records (appends) what it does
not, keeping every recorded call, used or not; ``"rewrite"`` never replays: every call goes to the provider
and the file holds only the calls of this ``Recording`` (its first recorded call replaces what was there).

A request matches a recorded one when its model, ``stream``, messages (a media part by its hash) and
per-call options (tools and response models by their JSON schema) are equal. Left out as volatile:
the provider's id and settings other than the model (base URL, keys, defaults), the conversation id,
and the options that change how a call is made, not its answer (``timeout`` and the retry settings).
Equal requests are answered in the order they were recorded, each answer once per ``Recording``.

Secrets never reach the file: options named as secrets (``pepperpy._redact.is_secret_option``) are
left out, and every string passes through ``redact`` (the provider's keys registered first).
Errors are not recorded; a stream left early is, marked ``"complete": false`` (a replay that reads
past its end raises ``RecordingError``). The file is rewritten atomically after each recorded call,
under a lock, so several facades or processes may add to one file. Files of format 1 (a response
model's schema wrapped twice) are read too, and written back as format 2 when a call is added.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import threading
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Literal

from pepperpy import _redact
from pepperpy._atomic import atomic_write
from pepperpy._filelock import file_lock
from pepperpy.errors import ConfigError, RecordingError
from pepperpy.llm import TRANSPORT_OPTIONS, GenerationChunk, GenerationResult, Message, message_json, option_json

RecordMode = Literal["once", "replay", "new", "rewrite"]
MODES = ("once", "replay", "new", "rewrite")
FORMAT = 2  # 1 held a response model as {"response_model": {"response_model": schema}}; read and upgraded
REQUEST_MESSAGES = "<request messages>"  # in a stored result's messages: the request's own, not repeated


def _scrub(value: Any) -> Any:
    """``value`` (JSON data) with every registered secret masked in its strings."""
    if isinstance(value, str):
        return _redact.redact(value)
    if isinstance(value, dict):
        return {_redact.redact(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(item) for item in value]
    return value


def request_data(call: Any) -> dict[str, Any]:
    """What a recorded request is matched on (and stored as): JSON data, secrets left out or masked."""
    _redact.remember_options(call.target)
    options = {
        name: value for name, value in call.options.items()
        if name not in TRANSPORT_OPTIONS and name != "model" and not _redact.is_secret_option(name, value)
    }
    messages = [message_json(m, exclude_defaults=True) for m in call.messages]
    data = {"model": call.model, "stream": call.stream, "messages": messages, "options": options}
    return _one_schema(_scrub(json.loads(json.dumps(data, default=option_json, ensure_ascii=False))))


def _one_schema(request: dict[str, Any]) -> dict[str, Any]:
    """``request`` with its response model as the schema alone: ``option_json`` gives the cache key
    ``{"response_model": schema}``, which under the option's own name would say it twice (as format 1 files do)."""
    options = request.get("options")
    model = options.get("response_model") if isinstance(options, dict) else None
    if isinstance(model, dict) and list(model) == ["response_model"]:
        options["response_model"] = model["response_model"]
    return request


def _match_key(request: dict[str, Any]) -> str:
    return json.dumps(request, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _dump(model: Any, **exclude: Any) -> Any:
    return json.loads(model.model_dump_json(exclude_defaults=True, fallback=repr, **exclude))


def _result_data(call: Any, result: GenerationResult) -> dict[str, Any]:
    data = _dump(result, exclude={"parsed", "messages"})
    asked, messages = len(call.messages), result.messages
    if asked and len(messages) >= asked and all(a is b or a == b for a, b in zip(messages, call.messages)):
        data["messages"] = [REQUEST_MESSAGES, *(_dump(m) for m in messages[asked:])]
    elif messages:
        data["messages"] = [_dump(m) for m in messages]
    return data


class Recording:
    """The hook ``pepperpy.hooks.record()`` returns; ``replayed`` and ``recorded`` count its calls so far."""

    def __init__(self, path: str | Any, mode: RecordMode = "once"):
        if mode not in MODES:
            raise ConfigError(f"recording mode {mode!r:.40} is not one of {', '.join(MODES)}: "
                              "'once' records when the file is missing and replays after, 'replay' only replays, "
                              "'new' replays what it has and records the rest, 'rewrite' records every call "
                              "afresh and drops the ones recorded before")
        self.path = Path(path).expanduser().absolute()
        self.mode = mode
        self.replays_only = mode == "replay" or (mode == "once" and self.path.exists())
        self._replays = mode in ("replay", "new") or self.replays_only
        self._fresh = mode == "rewrite"  # the next recorded call replaces the file's calls
        self.replayed = 0
        self.recorded = 0
        self._lock = threading.Lock()  # the sync path runs calls on another thread
        self._answers: dict[str, list[tuple[dict[str, Any], str]]] | None = None  # match key -> (entry, answer JSON)
        self._used: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, mode={self.mode!r})"

    async def __call__(self, call: Any, call_next: Any) -> Any:
        request = request_data(call)
        if self._replays:
            answer = self._take(request)
            if answer is not None:
                return self._replayed(call, answer)
        outcome = await call_next(call)
        if call.stream:
            return self._recorded_stream(call, request, outcome)
        self._add({"provider": call.provider, "request": request, "result": _result_data(call, outcome)})
        return outcome

    # -- replay --------------------------------------------------------------------------

    def _take(self, request: dict[str, Any]) -> tuple[dict[str, Any], str] | None:
        key = _match_key(request)
        with self._lock:
            if self._answers is None:
                self._answers = self._index(self._read() if self.path.exists() else [])
            answers = self._answers.get(key, [])
            used = self._used.get(key, 0)
            if used < len(answers):
                self._used[key] = used + 1
                self.replayed += 1
                return answers[used]
        if self.replays_only:
            raise self._unmatched(request, len(answers))
        return None

    @staticmethod
    def _index(calls: list[dict[str, Any]]) -> dict[str, list[tuple[dict[str, Any], str]]]:
        answers: dict[str, list[tuple[dict[str, Any], str]]] = {}
        for entry in calls:
            answer = {k: entry[k] for k in ("result", "chunks", "complete") if k in entry}
            answers.setdefault(_match_key(entry["request"]), []).append((entry, json.dumps(answer)))
        return answers

    def _replayed(self, call: Any, answer: tuple[dict[str, Any], str]) -> Any:
        from pydantic import ValidationError

        stored = json.loads(answer[1])  # a fresh copy per replay: callers may change what they get
        try:
            if call.stream:
                chunks = [GenerationChunk.model_validate(c) for c in stored["chunks"]]
                return self._replay_stream(chunks, stored.get("complete", True))
            data = stored["result"]
            messages = data.pop("messages", [])
            result = GenerationResult.model_validate(data)
            if messages and messages[0] == REQUEST_MESSAGES:
                result.messages = [*call.messages, *(Message.model_validate(m) for m in messages[1:])]
            else:
                result.messages = [Message.model_validate(m) for m in messages]
            return result
        except ValidationError as exc:
            problem = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors()[:3])
            raise RecordingError(
                f"recording {self.path}: the answer recorded for this request is not valid ({problem}); fix it, or "
                "delete the file to record every call again"
            ) from None

    async def _replay_stream(self, chunks: list[GenerationChunk], complete: bool) -> AsyncIterator[GenerationChunk]:
        for chunk in chunks:
            yield chunk
        if not complete:
            raise RecordingError(
                f"recording {self.path}: this stream was recorded only up to chunk {len(chunks)} (the recorded run "
                "stopped reading it there) and this run reads on; delete the recording (or that call in it) and "
                "record it again"
            )

    def _unmatched(self, request: dict[str, Any], recorded: int) -> RecordingError:
        how = "mode='new' (in pytest: --pepperpy-record=new, or PEPPERPY_RECORD=new)"
        if not self.path.exists():
            why, fix = "the file does not exist", f"Record it: run once with mode='once' or {how}."
        else:
            why = (f"its {recorded} answer(s) to it were replayed already by earlier calls of this run" if recorded
                   else "it has no answer to it" + self._nearest(request))
            fix = f"Record it: run with {how} to add the calls missing, or delete the file to record every call again."
        return RecordingError(
            f"recording {self.path} (mode {self.mode!r}) cannot answer this request: {why}.\n"
            f"  request: {_brief(request)}\n{fix}"
        )

    def _nearest(self, request: dict[str, Any]) -> str:
        """``; the nearest recorded request differs in ...``: the fields of the closest recorded request that differ."""
        best: tuple[int, int, list[str]] | None = None
        for answers in (self._answers or {}).values():
            recorded = answers[0][0]["request"]
            differs = [k for k in ("model", "stream", "messages", "options") if recorded.get(k) != request.get(k)]
            was, now = recorded.get("messages") or [], request.get("messages") or []
            same = next((i for i, (a, b) in enumerate(zip(was, now)) if a != b), min(len(was), len(now)))
            if differs == ["options"]:  # name the options
                was, now = recorded.get("options") or {}, request.get("options") or {}
                differs = [f"option {n}" for n in sorted(set(was) | set(now)) if was.get(n) != now.get(n)]
            elif differs == ["messages"]:  # name the first message that differs
                differs = [f"messages[{same}] (recorded: {_brief_message(was[same]) if same < len(was) else 'none'})"]
            if best is None or (len(differs), -same) < best[:2]:
                best = (len(differs), -same, differs)
        return f"; the nearest recorded request differs in {', '.join(best[2])}" if best else ""

    # -- record --------------------------------------------------------------------------

    async def _recorded_stream(self, call: Any, request: dict[str, Any], chunks: Any) -> AsyncIterator[GenerationChunk]:
        seen: list[Any] = []
        ended = "error"
        try:
            try:
                async for chunk in chunks:
                    seen.append(_dump(chunk, exclude={"parsed"}))
                    yield chunk
                ended = "complete"
            except BaseException as exc:
                if not isinstance(exc, Exception):  # left early: GeneratorExit (a break, aclose()) or a cancel
                    ended = "stopped"
                raise
            finally:
                aclose = getattr(chunks, "aclose", None)
                if aclose is not None:
                    await aclose()
        finally:
            if ended != "error":
                self._add({"provider": call.provider, "request": request, "chunks": seen, "complete": ended == "complete"})

    def _add(self, entry: dict[str, Any]) -> None:
        """Append ``entry`` to the file (read again under the lock: another facade or process may have added)."""
        entry = _scrub(entry)
        lock = Path(tempfile.gettempdir()) / f"pepperpy-recording-{hashlib.sha256(str(self.path).encode()).hexdigest()[:16]}.lock"
        try:
            with file_lock(lock, timeout_s=60):
                calls = self._read() if self.path.exists() and not self._fresh else []
                atomic_write(self.path, render([*calls, entry]).encode())
                self._fresh = False
        except OSError as exc:
            raise RecordingError(f"recording {self.path}: cannot write it ({exc}); make its folder writable") from None
        with self._lock:
            self.recorded += 1

    def _read(self) -> list[dict[str, Any]]:
        fix = "it is not a PepperPy recording, or an edit broke it: fix it, or delete it to record every call again"
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            where = f"line {exc.lineno}, column {exc.colno}"
            raise RecordingError(f"recording {self.path}: {where}: {exc.msg.removesuffix(' at')}; {fix}") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise RecordingError(f"recording {self.path}: cannot read it ({exc}); {fix}") from None
        version = data.get("pepperpy_recording") if isinstance(data, dict) else None
        if version not in (1, FORMAT) or not isinstance(data.get("calls"), list):
            raise RecordingError(f"recording {self.path}: no \"pepperpy_recording\": {FORMAT} with a \"calls\" list; {fix}")
        for number, entry in enumerate(data["calls"]):
            request = entry.get("request") if isinstance(entry, dict) else None
            streamed = isinstance(request, dict) and request.get("stream") is True
            if not (isinstance(request, dict) and isinstance(entry.get("chunks" if streamed else "result"),
                                                             list if streamed else dict)):
                raise RecordingError(f"recording {self.path}: calls[{number}] needs a \"request\" and its \"result\" "
                                     f"(\"chunks\" for a stream); {fix}")
            if version == 1:
                _one_schema(request)
        return data["calls"]


def _brief(request: dict[str, Any]) -> str:
    """A line or two showing a request: model, kind, the last messages, the options."""
    said = [_brief_message(message) for message in request.get("messages", [])[-2:]]
    options = ", ".join(f"{k}={_brief_option(k, v)}" for k, v in request.get("options", {}).items())
    count = len(request.get("messages", []))
    return (f"model {request.get('model')!r}, {'stream' if request.get('stream') else 'generate'}, {count} message(s)"
            f" ending {' | '.join(said)}" + (f"; options {options}" if options else ""))


def _brief_message(message: Any) -> str:
    if not isinstance(message, dict):
        return repr(message)[:80]
    content = message.get("content")
    text = content if isinstance(content, str) else " ".join(
        str(p.get("text", f"<{p.get('type')}>")) for p in content or [] if isinstance(p, dict))
    calls = [c.get("name") for c in message.get("tool_calls") or [] if isinstance(c, dict)]
    return f"{message.get('role')}: {text[:80]!r}" + (f" (calls {', '.join(map(str, calls))})" if calls else "")


def _brief_option(name: str, value: Any) -> str:
    if name == "tools" and isinstance(value, list):
        return "[" + ", ".join(str(t.get("tool")) if isinstance(t, dict) else "?" for t in value) + "]"
    if name == "response_model" and isinstance(value, dict):
        return str(value.get("title", "?"))
    return json.dumps(value, ensure_ascii=False)[:40]


def render(calls: list[dict[str, Any]]) -> str:
    """The file's text: one key per line down to each call's parts; a message or chunk on a line of its own."""
    return _layout({"pepperpy_recording": FORMAT, "calls": calls}, 0, True) + "\n"


def _layout(value: Any, indent: int, expand: bool) -> str:
    if not value or not isinstance(value, (dict, list)) or (isinstance(value, dict) and not expand) or indent > 8:
        return json.dumps(value, ensure_ascii=False)
    pad = " " * (indent + 1)
    if isinstance(value, list):
        calls = indent == 1  # the file's "calls": each call opened up, as its parts are
        items = [pad + _layout(item, indent + 1, calls) for item in value]
        return "[\n" + ",\n".join(items) + "\n" + " " * indent + "]"
    items = [f"{pad}{json.dumps(k, ensure_ascii=False)}: {_layout(v, indent + 1, True)}" for k, v in value.items()]
    return "{\n" + ",\n".join(items) + "\n" + " " * indent + "}"


__all__ = ["MODES", "RecordMode", "Recording", "render", "request_data"]
