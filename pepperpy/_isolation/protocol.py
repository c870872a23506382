"""The worker protocol: one JSON object per line over the worker's stdin (requests) and stdout (replies).

Requests (parent -> worker), each with an ``id`` unique per worker:

- ``{"op": "load", "id": 0, "plugin": {...}, "config": {...}, "env": {...}, "defaults": {...}, "home": ..., "open": bool}``
  imports the plugin class and creates the provider; the reply is the hello (``ok``: its public async
  methods, call options, public config);
- ``{"op": "open"|"close", "id": n}`` runs the provider's ``initialize()`` / ``cleanup()``;
- ``{"op": "call"|"stream", "id": n, "method": name, "args": [...], "kwargs": {...}}`` calls a method;
- ``{"op": "cancel", "id": n}`` cancels request ``n`` (a stream left early, a caller's timeout);
- ``{"op": "dependencies", "dependencies": {key: description}}``: the provider's dependencies, which live
  in the parent (also in the load request); ``{"op": "dep", "dep": n, ...}`` answers the worker's request
  ``n`` to one of them (``dependencies.py``).

Replies (worker -> parent): ``{"id": n, "ok": value}``, ``{"id": n, "chunk": value}`` (streams, then
``{"id": n, "end": true}``), ``{"id": n, "error": {"type": ..., "base": ..., "message": ...}}``; and, without
an id, ``{"log": {"level": ..., "no": ..., "message": ..., "extra": {...}, ...}}``: a record the plugin logged
(``logs.py``), and ``{"dep": n, "key": ..., "op": ..., ...}``: the plugin calls a dependency (``dependencies.py``).
The load request's ``log_level`` is the lowest level the worker sends.

Values cross as JSON: ``bytes`` as ``{"$bytes": base64}``, pydantic models as their JSON dump, a
``response_model`` class as ``{"$model": name, "schema": its JSON schema}`` (the parent validates the
answer), tools as their name, description and JSON schema (they run in the parent).
"""

from __future__ import annotations

import base64
import json
from typing import Any

from pepperpy import errors

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=True)
_DECODER = json.JSONDecoder()
BYTES_TAG = "$bytes"
MODEL_TAG = "$model"
MAX_TRACEBACK_LINES = 12


class WireError(errors.ConfigError, TypeError):
    """A value that cannot cross the process boundary (not JSON, bytes or a pydantic model): the caller's."""


def encode(message: dict[str, Any]) -> bytes:
    """One protocol line."""
    return (_ENCODER.encode(message) + "\n").encode("utf-8")


def decode(line: bytes) -> dict[str, Any]:
    """The message on one line; ValueError when the line is not a JSON object."""
    message = _DECODER.decode(line.decode("utf-8"))
    if not isinstance(message, dict):
        raise ValueError(f"a protocol line must be a JSON object, got {type(message).__name__}")
    return message


# -- values ----------------------------------------------------------------------------


def to_wire(value: Any) -> Any:
    """``value`` as JSON data: bytes tagged as base64, pydantic models dumped, tuples as lists."""
    if value is None or isinstance(value, (str, bool, int, float)):
        return value
    if isinstance(value, (list, tuple)):
        return [to_wire(item) for item in value]
    if isinstance(value, dict):
        wired = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise WireError(f"a dict key must be a str to cross the process boundary, got {type(key).__name__}")
            wired[key] = to_wire(item)
        return wired
    if isinstance(value, (bytes, bytearray, memoryview)):
        return {BYTES_TAG: base64.b64encode(bytes(value)).decode("ascii")}
    dump = getattr(value, "model_dump", None)
    if callable(dump):  # a pydantic model
        return dump(mode="json")
    tolist = getattr(value, "tolist", None)
    if callable(tolist):  # a numpy array or scalar
        return to_wire(tolist())
    raise WireError(
        f"a value of type {type(value).__name__} cannot cross the process boundary; use str, numbers, bool, None, lists, "
        "dicts with str keys, bytes or pydantic models"
    )


def from_wire(value: Any) -> Any:
    """The inverse of ``to_wire`` (pydantic models stay dicts)."""
    if isinstance(value, list):
        return [from_wire(item) for item in value]
    if isinstance(value, dict):
        if len(value) == 1 and BYTES_TAG in value:
            return base64.b64decode(value[BYTES_TAG])
        return {key: from_wire(item) for key, item in value.items()}
    return value


# -- LLM calls: messages, tools and the response model ------------------------------------


def llm_request(messages: list[Any], options: dict[str, Any]) -> tuple[list[Any], dict[str, Any]]:
    """Parent side: the wire form of a ``generate``/``generate_stream`` call."""
    wired_messages = [m.model_dump(mode="json", exclude_defaults=True) for m in messages]
    wired: dict[str, Any] = {}
    for name, value in options.items():
        if name == "tools" and value is not None:
            wired[name] = [
                {"name": t.name, "description": t.description, "parameters": t.parameters} if hasattr(t, "parameters")
                else to_wire(t)
                for t in value
            ]
        elif name == "response_model" and isinstance(value, type):
            wired[name] = {MODEL_TAG: value.__name__, "schema": value.model_json_schema()}
        else:
            wired[name] = to_wire(value)
    return [wired_messages], wired


def call_arguments(category: str, method: str, args: list[Any] | None, kwargs: dict[str, Any] | None
                   ) -> tuple[list[Any], dict[str, Any]]:
    """The receiving side of a call of ``method`` of a ``category`` provider: arguments back as objects (an LLM's
    tools and response model, a store's documents; bytes)."""
    args, kwargs = args or [], kwargs or {}
    if category == "llm" and method in ("generate", "generate_stream"):
        return args, llm_options(kwargs)
    args, kwargs = from_wire(args), from_wire(kwargs)
    if category == "rag" and method == "add" and args:
        from pepperpy.rag import Document

        args[0] = [Document.model_validate(d) for d in args[0]]
    return args, kwargs


def llm_options(options: dict[str, Any]) -> dict[str, Any]:
    """Worker side: tools and the response model back as objects a provider can use."""
    tools = options.get("tools")
    if tools:
        options["tools"] = [_tool(t) for t in tools]
    model = options.get("response_model")
    if isinstance(model, dict) and MODEL_TAG in model:
        options["response_model"] = schema_model(model[MODEL_TAG], model.get("schema") or {})
    return options


def _tool(description: Any) -> Any:
    from pepperpy.tools import Tool

    if not isinstance(description, dict) or "name" not in description:
        return description

    def runs_in_parent(**arguments: Any) -> Any:
        raise errors.PluginError(
            f"tool {description['name']} runs in the parent process, not in a plugin's worker; "
            "return the tool calls (the chat builder runs them)"
        )

    return Tool(description["name"], description.get("description", ""), description.get("parameters", {}), runs_in_parent)


def schema_model(name: str, schema: dict[str, Any]) -> type:
    """A pydantic model class that stands for a parent's ``response_model``: same name, same JSON schema."""
    import copy

    from pydantic import BaseModel, ConfigDict

    def model_json_schema(cls: type, *args: Any, **kwargs: Any) -> dict[str, Any]:
        return copy.deepcopy(schema)

    namespace = {"model_config": ConfigDict(extra="allow"), "model_json_schema": classmethod(model_json_schema)}
    return type(name if name.isidentifier() else "ResponseModel", (BaseModel,), namespace)


# -- errors ------------------------------------------------------------------------------


def error_to_wire(exc: BaseException) -> dict[str, Any]:
    """Worker side: an exception's type, nearest PepperPy base, message and attributes."""
    import traceback

    base = next((k.__name__ for k in type(exc).__mro__ if getattr(errors, k.__name__, None) is k), None)
    wired: dict[str, Any] = {"type": type(exc).__name__, "base": base, "message": str(exc)}
    for name in ("status_code", "retryable", "retry_after"):
        value = getattr(exc, name, None)
        if isinstance(value, (int, float, bool)):
            wired[name] = value
    if isinstance(exc, BaseExceptionGroup):
        wired["errors"] = [error_to_wire(e) for e in exc.exceptions]
    cause = exc.__cause__
    origin = exc if base is None else cause
    if origin is not None and not isinstance(origin, errors.PepperPyError):  # the plugin's own exception (or the cause of its PluginError): where it came from
        lines = "".join(traceback.format_exception(origin)).rstrip().splitlines()
        wired["traceback"] = "\n".join(lines[-MAX_TRACEBACK_LINES:])
    return wired


def error_from_wire(wired: dict[str, Any], plugin_id: str) -> Exception:
    """Parent side: the same PepperPy error class (a plugin's own subclass becomes its PepperPy base);
    anything else a PluginError naming the original type."""
    from pepperpy._redact import redact

    kind = str(wired.get("type") or "Exception")
    message = redact(str(wired.get("message") or ""))  # a key this process knows never shows
    known = getattr(errors, kind, None)
    if not (isinstance(known, type) and issubclass(known, errors.PepperPyError)):
        base = getattr(errors, str(wired.get("base") or ""), None)
        if isinstance(base, type) and issubclass(base, errors.PepperPyError):
            known, message = base, f"{message} ({kind})"
        else:
            known = None
    if known is errors.PepperPyErrorGroup or (known is None and wired.get("errors")):
        nested = [error_from_wire(e, plugin_id) for e in wired.get("errors") or ()]
        if nested:
            return errors.PepperPyErrorGroup(message, nested)
    if known is None:
        exc: Exception = errors.PluginError(
            f"{plugin_id}: the plugin raised {kind} in its worker process: {message}"
        )
        if wired.get("traceback"):
            exc.add_note(f"worker traceback:\n{redact(str(wired['traceback']))}")
        return exc
    if issubclass(known, errors.ProviderError):
        exc = known(
            message,
            status_code=wired.get("status_code"),
            retryable=bool(wired.get("retryable", False)),
            retry_after=wired.get("retry_after"),
        )
    elif known is errors.PepperPyErrorGroup:
        exc = errors.PluginError(message)
    else:
        exc = known(message)
    if wired.get("traceback"):  # a PluginError for the plugin's own exception: where that came from
        exc.add_note(f"worker traceback:\n{redact(str(wired['traceback']))}")
    return exc


__all__ = [
    "WireError", "call_arguments", "decode", "encode", "error_from_wire", "error_to_wire", "from_wire", "llm_options",
    "llm_request", "schema_model", "to_wire",
]
