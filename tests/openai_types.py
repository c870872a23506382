"""The openai SDK's own request types as a conformance check (test-only): a body with a misspelled or unknown
field, at any depth, fails validation (every TypedDict of the SDK's Responses types is made to forbid extras)."""

from __future__ import annotations

import functools
import importlib
import pkgutil
from typing import Any

from pydantic import ConfigDict, TypeAdapter
from typing_extensions import is_typeddict


@functools.cache
def _responses_adapter() -> TypeAdapter[Any]:
    import openai.types.responses as responses
    import openai.types.shared_params as shared

    for package in (responses, shared):
        for info in pkgutil.iter_modules(package.__path__):
            module = importlib.import_module(f"{package.__name__}.{info.name}")
            for value in vars(module).values():
                if isinstance(value, type) and is_typeddict(value) and value.__module__.startswith("openai."):
                    value.__pydantic_config__ = ConfigDict(extra="forbid")  # type: ignore[attr-defined]
    from openai.types.responses import response_create_params as params

    return TypeAdapter(params.ResponseCreateParamsStreaming | params.ResponseCreateParamsNonStreaming)


def check_responses_body(body: dict[str, Any]) -> None:
    """Raise pydantic's ValidationError unless ``body`` is a valid ``POST /responses`` body."""
    _responses_adapter().validate_python(body)


def record_bodies(monkeypatch: Any, suffix: str = "/responses") -> list[dict[str, Any]]:
    """The JSON bodies httpx sends to URLs ending in ``suffix`` from now on (the requests still go out)."""
    import json

    import httpx

    bodies: list[dict[str, Any]] = []
    send = httpx.AsyncHTTPTransport.handle_async_request

    async def recording(self: httpx.AsyncHTTPTransport, request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith(suffix):
            bodies.append(json.loads(request.content))
        return await send(self, request)

    monkeypatch.setattr(httpx.AsyncHTTPTransport, "handle_async_request", recording)
    return bodies
