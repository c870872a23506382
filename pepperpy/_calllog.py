"""The call log: every LLM call of a facade recorded in SQLite (``PepperPy().with_logging()``).

One row per call: when it started (UTC), the provider and model, the messages and options
(JSON), the answer, tokens, duration, the error if any, the conversation id, whether it was
streamed or served from a cache, the fallback report, and how it ended (``complete``,
``error``, or ``stopped``: a stream closed early or a call cancelled by the caller). Keys
never reach the file: secret options (``_redact.is_secret_option``) are masked, error texts
go through ``pepperpy._redact``, and nothing is read from the provider's settings.

The file (default ``<home>/logs.db``) is shared safely by several processes (WAL journal,
busy timeout); it carries an application id and a schema version (``PRAGMA application_id``,
``PRAGMA user_version``), so a foreign or newer file is refused with an error naming it.
Each hook keeps one connection, opened on its first call (an unusable file fails the call
before the provider is asked); rows are written in autocommit with ``synchronous=NORMAL``
(no fsync per row). A row that cannot be written later (a full disk) is a RuntimeWarning,
not a failed call. Add the hook outside a cache (``with_logging()`` before ``with_cache()``)
to see cache hits too.

Fragments (``ChatBuilder.with_fragment``, ``pepperpy chat -f``: text parts with a ``source``) are stored
once by the SHA-256 of their text in ``fragments``; a call's message keeps ``{"type": "fragment", "sha256",
"source"}`` in their place and ``call_fragments`` links the call to each one, in order (simonw/llm's
``fragments`` and ``prompt_fragments``). A log of an earlier schema is brought up to date in place.

The read side (``recent``, ``last_conversation``, ``conversation_messages``) serves the
``pepperpy logs`` and ``pepperpy chat -c`` commands.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pepperpy._redact import is_secret_option
from pepperpy._tally import StreamTally
from pepperpy.errors import ConfigError

if TYPE_CHECKING:
    import sqlite3

    from pepperpy.hooks import Call, CallNext
    from pepperpy.llm import Message

LOG_FILE = "logs.db"
APPLICATION_ID = 0x50505943  # "PPYC": marks the file as a PepperPy call log
SCHEMA_VERSION = 3
MASK = "***"

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS calls (
        id INTEGER PRIMARY KEY,
        time TEXT NOT NULL,
        provider TEXT NOT NULL,
        model TEXT,
        messages TEXT NOT NULL,
        options TEXT NOT NULL,
        answer TEXT,
        prompt_tokens INTEGER,
        completion_tokens INTEGER,
        duration_ms REAL NOT NULL,
        error TEXT,
        conversation_id TEXT,
        stream INTEGER NOT NULL,
        cached INTEGER NOT NULL,
        fallback TEXT,
        outcome TEXT NOT NULL,
        cache_read_tokens INTEGER,
        cache_write_tokens INTEGER,
        reasoning_tokens INTEGER
    )""",
    "CREATE INDEX IF NOT EXISTS calls_by_conversation ON calls (conversation_id, id)",
)
_FRAGMENT_TABLES = (
    """CREATE TABLE IF NOT EXISTS fragments (
        id INTEGER PRIMARY KEY,
        hash TEXT NOT NULL UNIQUE,
        content TEXT NOT NULL
    )""",
    """CREATE TABLE IF NOT EXISTS call_fragments (
        call_id INTEGER NOT NULL REFERENCES calls (id),
        fragment_id INTEGER NOT NULL REFERENCES fragments (id),
        position INTEGER NOT NULL,
        source TEXT,
        PRIMARY KEY (call_id, position)
    )""",
    "CREATE INDEX IF NOT EXISTS call_fragments_by_fragment ON call_fragments (fragment_id)",
)
_COLUMNS = (
    "time", "provider", "model", "messages", "options", "answer", "prompt_tokens", "completion_tokens",
    "duration_ms", "error", "conversation_id", "stream", "cached", "fallback", "outcome",
    "cache_read_tokens", "cache_write_tokens", "reasoning_tokens",
)
# What each schema version added, for a log an earlier version wrote (in place).
_MIGRATIONS = {
    2: tuple(f"ALTER TABLE calls ADD COLUMN {column} INTEGER"
             for column in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens")),
    3: _FRAGMENT_TABLES,
}
_INSERT = f"INSERT INTO calls ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' * len(_COLUMNS))})"


def default_path(home: str | os.PathLike[str]) -> Path:
    """``<home>/logs.db``."""
    return Path(home) / LOG_FILE


# -- the file ----------------------------------------------------------------------------


def _what_to_do(path: Path) -> str:
    return (f"move {path} away (a new log is started there on the next call) or log elsewhere with "
            "with_logging(path=...)")


def connect(path: Path) -> sqlite3.Connection:
    """An open connection to the call log at ``path``, created with its schema if new; ConfigError if unusable."""
    import sqlite3

    from pepperpy import _sqlite

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        connection = _sqlite.connect(path)
    except (OSError, sqlite3.Error) as exc:
        raise ConfigError(f"cannot open the call log {path}: {exc}; make its folder writable or pass another "
                          "path to with_logging(path=...)") from None
    try:
        _prepare(connection, path)
    except sqlite3.DatabaseError as exc:
        connection.close()
        raise ConfigError(f"the call log {path} is not a usable SQLite database ({exc}); {_what_to_do(path)}") from None
    except BaseException:
        connection.close()
        raise
    return connection


def _prepare(connection: sqlite3.Connection, path: Path) -> None:
    from pepperpy import _sqlite

    with _transaction(connection, "BEGIN"):  # one snapshot: the file's id and its tables from the same moment
        ours = _is_ours(connection, path)
    if not ours:  # one process creates the schema; the others wait for its write lock, then see it
        with _transaction(connection, "BEGIN IMMEDIATE"):
            if not _is_ours(connection, path):
                version = connection.execute("PRAGMA user_version").fetchone()[0]
                if version == 0:  # a new file: the whole schema
                    for statement in (*_SCHEMA, *_FRAGMENT_TABLES):
                        connection.execute(statement)
                for added in range(version + 1, SCHEMA_VERSION + 1) if version else ():  # an earlier version's log
                    for statement in _MIGRATIONS.get(added, ()):
                        connection.execute(statement)
                connection.execute(f"PRAGMA application_id = {APPLICATION_ID}")
                connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    _sqlite.use_wal(connection)


@contextmanager
def _transaction(connection: sqlite3.Connection, begin: str) -> Iterator[None]:
    connection.execute(begin)
    try:
        yield
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise
    connection.execute("COMMIT")


def _is_ours(connection: sqlite3.Connection, path: Path) -> bool:
    """True for a PepperPy call log of this version, False for an empty file or an earlier version's log (brought
    up to date by ``_prepare``); ConfigError for anything else."""
    application = connection.execute("PRAGMA application_id").fetchone()[0]
    version = connection.execute("PRAGMA user_version").fetchone()[0]
    if application == APPLICATION_ID:
        if version > SCHEMA_VERSION:
            raise ConfigError(f"the call log {path} was written by a newer PepperPy (schema {version}, this one "
                              f"reads {SCHEMA_VERSION}); upgrade pepperpy, or {_what_to_do(path)}")
        return version == SCHEMA_VERSION
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if application != 0 or tables:
        shown = f"tables {', '.join(tables[:5])}" if tables else f"application id {application:#x}"
        raise ConfigError(f"{path} is a SQLite database of another program ({shown}), not a PepperPy call log; "
                          + _what_to_do(path))
    return False


# -- turning a call into a row -----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class _Fragment:
    sha256: str
    text: str
    source: str | None


def _part_record(part: Any, redact: Callable[[str], str] | None, fragments: list[_Fragment]) -> dict[str, Any]:
    """A part as the log keeps it: text (redacted), a fragment's hash and source (its text goes to ``fragments``),
    or a media part's type, media type, size and hash — never its bytes, its data URL or its path."""
    if getattr(part, "source", None) is not None and part.type == "text":
        import hashlib

        text = _registry_redact(redact(part.text) if redact is not None else part.text)
        fragment = _Fragment(hashlib.sha256(text.encode("utf-8")).hexdigest(), text, part.source)
        fragments.append(fragment)
        return {"type": "fragment", "sha256": fragment.sha256, "source": fragment.source}
    record = part.describe()
    if redact is not None and isinstance(record.get("text"), str):
        record["text"] = redact(record["text"])
    return record


def _message_record(message: Message, redact: Callable[[str], str] | None, fragments: list[_Fragment]) -> dict[str, Any]:
    content: Any = message.content
    if isinstance(content, list):
        content = [_part_record(part, redact, fragments) for part in content]
    elif content is not None and redact is not None:
        content = redact(content)
    record: dict[str, Any] = {"role": message.role.value, "content": content}
    if message.name is not None:
        record["name"] = message.name
    if message.tool_calls:
        record["tool_calls"] = [call.model_dump() for call in message.tool_calls]
    if message.tool_call_id is not None:
        record["tool_call_id"] = message.tool_call_id
    return record


def _option_value(name: str, value: Any) -> Any:
    if is_secret_option(name, value):
        return MASK
    if name == "tools" and isinstance(value, list):
        return [{"name": getattr(t, "name", str(t)), "parameters": getattr(t, "parameters", None)} for t in value]
    if name == "response_model" and isinstance(value, type):
        return value.__name__
    return value


def _json_default(value: Any) -> Any:
    if type(value).__name__ in ("SecretStr", "SecretBytes"):
        return MASK
    if hasattr(value, "model_dump"):
        return value.model_dump(mode="json")
    if isinstance(value, type):
        return value.__name__
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=_json_default)


def _known_secrets_hidden(text: str, call: Call) -> str:
    """``text`` through ``pepperpy._redact`` (when present), after registering the provider's own keys."""
    try:
        from pepperpy import _redact
    except ImportError:
        return text
    _redact.remember_options(call.target)
    return _redact.redact(text)


def _registry_redact(text: str) -> str:
    try:
        from pepperpy._redact import redact
    except ImportError:
        return text
    return redact(text)


@dataclasses.dataclass
class _Outcome(StreamTally):
    """What a call produced, filled in as it goes (a stream's pieces arrive one by one)."""

    error: BaseException | None = None
    outcome: str = "complete"


class CallLog:
    """The hook behind ``with_logging``: records each call it wraps as one row of the log at ``path``."""

    def __init__(self, path: str | os.PathLike[str], redact: Callable[[str], str] | None = None):
        if redact is not None and not callable(redact):
            raise ConfigError(f"with_logging(redact=...) takes a function str -> str, got {redact!r:.80}")
        self.path = Path(path)
        self.redact = redact
        self._connection: sqlite3.Connection | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"CallLog({str(self.path)!r})"

    def _open(self) -> sqlite3.Connection:
        connection = self._connection
        if connection is None:
            with self._lock:
                if self._connection is None:
                    self._connection = connect(self.path)
                    weakref.finalize(self, self._connection.close)
                connection = self._connection
        return connection

    def close(self) -> None:
        """Close the connection (the next call opens it again)."""
        with self._lock:
            connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()

    async def __call__(self, call: Call, call_next: CallNext) -> Any:
        self._open()  # a broken log file fails before the provider is asked anything
        started, wall = time.perf_counter(), datetime.now(UTC)
        if call.stream:
            try:
                chunks = await call_next(call)
            except BaseException as exc:
                self._write(call, wall, started, _Outcome(error=exc, outcome=_ended_by(exc)))
                raise
            return self._logged_stream(call, chunks, wall, started)
        try:
            result = await call_next(call)
        except BaseException as exc:
            self._write(call, wall, started, _Outcome(error=exc, outcome=_ended_by(exc)))
            raise
        self._write(call, wall, started, _Outcome([result.content], result.usage, result.metadata))
        return result

    async def _logged_stream(self, call: Call, chunks: Any, wall: datetime, started: float) -> AsyncIterator[Any]:
        from pepperpy.hooks import closing_stream

        seen = _Outcome(outcome="stopped")
        try:
            async with closing_stream(chunks) as inner:  # closing this stream closes the provider's at once
                async for chunk in inner:
                    seen.add(chunk)
                    yield chunk
            seen.outcome = "complete"
        except BaseException as exc:  # GeneratorExit: the caller closed the stream early ("stopped")
            if not isinstance(exc, GeneratorExit):
                seen.error, seen.outcome = exc, _ended_by(exc)
            raise
        finally:
            self._write(call, wall, started, seen)

    def _write(self, call: Call, wall: datetime, started: float, seen: _Outcome) -> None:
        duration_ms = (time.perf_counter() - started) * 1000
        metadata = seen.metadata
        fallback = metadata.get("fallback")
        provider = f"llm/{fallback['served_by']}" if fallback else call.provider
        answer = "".join(seen.pieces) if seen.pieces or seen.outcome == "complete" else None
        if answer is not None:
            answer = _registry_redact(self.redact(answer) if self.redact is not None else answer)
        error = None
        if seen.error is not None and seen.outcome == "error":
            error = _known_secrets_hidden(f"{type(seen.error).__name__}: {seen.error}", call)
        usage = seen.usage
        fragments: list[_Fragment] = []
        messages = [_message_record(m, self.redact, fragments) for m in call.messages]
        row = (
            wall.isoformat(timespec="milliseconds"),
            provider,
            metadata.get("model") or call.model,
            _registry_redact(_dumps(messages)),
            _registry_redact(_dumps({k: _option_value(k, v) for k, v in call.options.items()})),
            answer,
            usage.prompt_tokens if usage is not None else None,
            usage.completion_tokens if usage is not None else None,
            round(duration_ms, 3),
            error,
            call.conversation_id,
            int(call.stream),
            int(metadata.get("cache") == "hit"),
            _known_secrets_hidden(_dumps(fallback), call) if fallback else None,
            seen.outcome,
            *(getattr(usage, field, None) for field in ("cache_read_tokens", "cache_write_tokens", "reasoning_tokens")),
        )
        self._insert(row, fragments)

    def _insert(self, row: tuple[Any, ...], fragments: list[_Fragment]) -> None:
        """Write one row (and its fragments, once each); a failure (a full disk, a lock held too long) is a
        RuntimeWarning and the call goes on."""
        import sqlite3

        connection = self._open()
        try:
            with self._lock:
                if not fragments:
                    connection.execute(_INSERT, row)
                    return
                with _transaction(connection, "BEGIN IMMEDIATE"):
                    connection.executemany("INSERT OR IGNORE INTO fragments (hash, content) VALUES (?, ?)",
                                           [(f.sha256, f.text) for f in fragments])
                    call_id = connection.execute(_INSERT, row).lastrowid
                    connection.executemany(
                        "INSERT INTO call_fragments (call_id, fragment_id, position, source) "
                        "SELECT ?, id, ?, ? FROM fragments WHERE hash = ?",
                        [(call_id, n, f.source, f.sha256) for n, f in enumerate(fragments)],
                    )
        except sqlite3.Error as exc:
            import warnings

            warnings.warn(f"call log {self.path}: a call was not recorded ({type(exc).__name__}: {exc}); "
                          "check the disk and the file", RuntimeWarning, stacklevel=2)


def _ended_by(exc: BaseException) -> str:
    return "error" if isinstance(exc, Exception) else "stopped"  # CancelledError, KeyboardInterrupt: the caller stopped


# -- reading -----------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoggedCall:
    """One row of the call log."""

    id: int
    time: str
    provider: str
    model: str | None
    messages: list[dict[str, Any]]
    options: dict[str, Any]
    answer: str | None
    prompt_tokens: int | None
    completion_tokens: int | None
    duration_ms: float
    error: str | None
    conversation_id: str | None
    stream: bool
    cached: bool
    fallback: dict[str, Any] | None
    outcome: str
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None
    fragments: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # sha256, source, size of each

    @property
    def prompt(self) -> str | None:
        """The last user message."""
        for message in reversed(self.messages):
            if message.get("role") == "user":
                return _shown(message.get("content"))
        return None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_SELECT = f"SELECT id, {', '.join(_COLUMNS)} FROM calls"


def _row(row: tuple[Any, ...]) -> LoggedCall:
    values: Mapping[str, Any] = dict(zip(("id", *_COLUMNS), row))
    return LoggedCall(
        id=values["id"], time=values["time"], provider=values["provider"], model=values["model"],
        messages=json.loads(values["messages"]), options=json.loads(values["options"]), answer=values["answer"],
        prompt_tokens=values["prompt_tokens"], completion_tokens=values["completion_tokens"],
        duration_ms=values["duration_ms"], error=values["error"], conversation_id=values["conversation_id"],
        stream=bool(values["stream"]), cached=bool(values["cached"]),
        fallback=json.loads(values["fallback"]) if values["fallback"] else None, outcome=values["outcome"],
        cache_read_tokens=values["cache_read_tokens"], cache_write_tokens=values["cache_write_tokens"],
        reasoning_tokens=values["reasoning_tokens"],
    )


def _query(path: str | os.PathLike[str], sql: str, parameters: tuple[Any, ...]) -> list[tuple[Any, ...]]:
    path = Path(path)
    if not path.exists():
        return []
    connection = connect(path)
    try:
        return connection.execute(sql, parameters).fetchall()
    finally:
        connection.close()


def _fragments_of(path: str | os.PathLike[str], call_ids: list[int]) -> dict[int, list[dict[str, Any]]]:
    """Call id -> the fragments it used, in order: their hash, source and size (not their text)."""
    if not call_ids:
        return {}
    rows = _query(
        path, "SELECT call_fragments.call_id, fragments.hash, call_fragments.source, length(fragments.content) "
        "FROM call_fragments JOIN fragments ON fragments.id = call_fragments.fragment_id "
        f"WHERE call_fragments.call_id IN ({', '.join('?' * len(call_ids))}) ORDER BY call_fragments.call_id, "
        "call_fragments.position", tuple(call_ids),
    )
    used: dict[int, list[dict[str, Any]]] = {}
    for call_id, sha256, source, size in rows:
        used.setdefault(call_id, []).append({"sha256": sha256, "source": source, "size": size})
    return used


def fragment_text(path: str | os.PathLike[str], sha256: str) -> str | None:
    """The text of the fragment with this hash (a prefix of 8 characters or more will do), or None."""
    sha256 = sha256.lower()
    if not (8 <= len(sha256) <= 64 and all(c in "0123456789abcdef" for c in sha256)):
        return None
    rows = _query(path, "SELECT content FROM fragments WHERE hash LIKE ? ORDER BY hash LIMIT 2", (sha256 + "%",))
    return rows[0][0] if len(rows) == 1 else None


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def recent(
    path: str | os.PathLike[str], n: int = 3, query: str | None = None, conversation_id: str | None = None
) -> list[LoggedCall]:
    """The last ``n`` calls (``n=0``: all), oldest first; ``query`` searches messages and answers (SQL LIKE)."""
    where, parameters = [], []
    if query:
        where.append("(messages LIKE ? ESCAPE '\\' OR answer LIKE ? ESCAPE '\\' OR id IN (SELECT call_id FROM "
                     "call_fragments JOIN fragments ON fragments.id = fragment_id WHERE content LIKE ? ESCAPE '\\'))")
        parameters += [_like(query), _like(query), _like(query)]
    if conversation_id:
        where.append("conversation_id = ?")
        parameters.append(conversation_id)
    sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "") + " ORDER BY id DESC LIMIT ?"
    rows = _query(path, sql, (*parameters, n if n > 0 else -1))
    calls = [_row(r) for r in reversed(rows)]
    used = _fragments_of(path, [call.id for call in calls])
    return [dataclasses.replace(call, fragments=used[call.id]) if call.id in used else call for call in calls]


def last_conversation(path: str | os.PathLike[str]) -> str | None:
    """The conversation id of the newest logged call that has one."""
    rows = _query(path, "SELECT conversation_id FROM calls WHERE conversation_id IS NOT NULL ORDER BY id DESC LIMIT 1", ())
    return rows[0][0] if rows else None


def conversation_messages(path: str | os.PathLike[str], conversation_id: str) -> list[Message]:
    """The history to continue ``conversation_id``: its last complete call's messages and answer ([] if none)."""
    from pepperpy.llm import Message, MessageRole

    rows = _query(
        path, _SELECT + " WHERE conversation_id = ? AND outcome = 'complete' ORDER BY id DESC LIMIT 1", (conversation_id,)
    )
    if not rows:
        return []
    call = _row(rows[0])
    texts = {f["sha256"]: fragment_text(path, f["sha256"]) for f in _fragments_of(path, [call.id]).get(call.id, [])}
    messages = [Message.model_validate(_restorable(m, texts)) for m in call.messages]
    return [*messages, Message(role=MessageRole.ASSISTANT, content=call.answer or "")]


def _shown(content: Any) -> Any:
    """A logged message's content as text: its text parts, and ``[image image/png, 1234 bytes]`` for a media part."""
    if not isinstance(content, list):
        return content
    shown = []
    for part in content:
        if part.get("type") == "text":
            shown.append(part.get("text", ""))
        elif part.get("type") == "fragment":
            shown.append(f"[fragment {part.get('source')}]")
        elif part.get("type") != "reasoning":
            size = f", {part['size']} bytes" if "size" in part else ""
            shown.append(f"[{part.get('type')} {part.get('media_type')}{size}]")
    return " ".join(shown)


def _restorable(record: dict[str, Any], fragments: Mapping[str, str | None]) -> dict[str, Any]:
    """A logged message as one to send again: a fragment gets its text back (``fragments``: hash -> text); a
    media part (logged without its bytes) becomes a note saying what was attached; reasoning (logged without
    its signature) is left out."""
    content = record.get("content")
    if not isinstance(content, list):
        return record
    kept: list[Any] = []
    for part in content:
        if part.get("type") == "text":
            kept.append({"type": "text", "text": part.get("text", "")})
        elif part.get("type") == "fragment" and fragments.get(part.get("sha256", "")) is not None:
            kept.append({"type": "text", "text": fragments[part["sha256"]], "source": part.get("source")})
        elif part.get("type") != "reasoning":
            kept.append({"type": "text", "text": f"{_shown([part])} (attached earlier; the call log keeps no bytes)"})
    return {**record, "content": kept}


__all__ = [
    "APPLICATION_ID", "CallLog", "LOG_FILE", "LoggedCall", "SCHEMA_VERSION", "connect", "conversation_messages",
    "default_path", "fragment_text", "last_conversation", "recent",
]
