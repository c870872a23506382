"""Azure OpenAI's routes in front of llama.cpp's real server: a path-rewriting reverse proxy on 127.0.0.1.

The answers are llama.cpp's own (chat, streamed events, Responses); the proxy only plays the parts of
Azure's front door that no Azure service can show here, and those parts are scripted after Azure's
documented behaviour:

- routes: ``/openai/deployments/{deployment}/chat/completions?api-version=V`` and
  ``/openai/responses?api-version=V`` (the deployment route; the deployment goes to llama.cpp as
  ``model``), and the v1 route ``/openai/v1/chat/completions`` and ``/openai/v1/responses``, all
  forwarded to llama.cpp's ``/v1/...``;
- authentication: the ``api-key`` header, or ``Authorization: Bearer <Microsoft Entra ID token>``;
  anything else gets Azure's 401;
- ``api-version``: missing on the deployment route is Azure's 404 ``Resource not found``; one Azure does
  not know is its 400 ``{"error": {"code": "BadRequest", "message": "API version not supported"}}``
  (the shape Azure answers with, as reported against the openai SDK and many clients).

Every request is kept in ``requests`` (method, path, headers, body) with the route it took.
"""

from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import httpx

from tests.servers.threaded import Received, ThreadedServer, read_request

API_VERSIONS = frozenset({"2024-06-01", "2024-10-21", "2025-04-01-preview", "preview"})
DEPLOYMENT_CHAT = re.compile(r"^/openai/deployments/([^/]+)/chat/completions$")
UNAUTHORIZED = {"error": {"code": "401", "message": (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource.")}}
NOT_FOUND = {"error": {"code": "404", "message": "Resource not found"}}
BAD_VERSION = {"error": {"code": "BadRequest", "message": "API version not supported"}}


@dataclass
class Forwarded(Received):
    route: str = ""  # "deployment" or "v1" (or "" when refused before forwarding)
    deployment: str | None = None
    upstream_path: str = ""
    status: int = 0


class AzureProxy(ThreadedServer):
    """``AzureProxy(upstream, api_key, tokens)``: ``upstream`` is llama.cpp's base URL (``http://.../v1``);
    ``api_key`` the accepted ``api-key``; ``tokens`` the accepted Entra ID bearer tokens (a set, may grow)."""

    def __init__(self, upstream: str, api_key: str, tokens: set[str] | None = None) -> None:
        super().__init__()
        self.upstream = upstream.rstrip("/")
        self.api_key = api_key
        self.tokens = tokens if tokens is not None else set()
        self.requests: list[Forwarded] = []

    @property
    def endpoint(self) -> str:
        """What a user passes as ``azure_endpoint`` (the resource's root URL)."""
        return f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        async with httpx.AsyncClient(timeout=120) as client:
            try:
                while (received := await read_request(reader)) is not None:
                    request = Forwarded(received.method, received.path, received.headers, received.body)
                    self.requests.append(request)
                    await self._answer(client, request, writer)
            except (ConnectionError, asyncio.IncompleteReadError, asyncio.CancelledError):
                return  # the client left, or stop() ended an idle keep-alive connection
            finally:
                writer.close()

    def _refusal(self, request: Forwarded) -> tuple[int, dict] | None:
        """Azure's answer for a request its front door refuses, or None (then ``route`` etc. are set)."""
        url = urlsplit(request.path)
        version = (parse_qs(url.query).get("api-version") or [None])[0]
        key = request.headers.get("api-key")
        bearer = request.headers.get("authorization", "")
        if not (key == self.api_key or (bearer.startswith("Bearer ") and bearer[7:] in self.tokens)):
            return 401, UNAUTHORIZED
        match = DEPLOYMENT_CHAT.match(url.path)
        v1 = url.path.startswith("/openai/v1/")
        if not (v1 or match or url.path == "/openai/responses") or (version is None and not v1):
            return 404, NOT_FOUND
        if version is not None and version not in API_VERSIONS:
            return 400, BAD_VERSION
        if v1:
            request.route, request.upstream_path = "v1", "/" + url.path.removeprefix("/openai/v1/")
        else:
            request.route, request.deployment = "deployment", match.group(1) if match else None
            request.upstream_path = "/chat/completions" if match else "/responses"
        return None

    async def _answer(self, client: httpx.AsyncClient, request: Forwarded, writer: asyncio.StreamWriter) -> None:
        refused = self._refusal(request)
        if refused is not None:
            request.status, answer = refused
            body = json.dumps(answer).encode()
            writer.write(f"HTTP/1.1 {request.status} Azure\r\ncontent-type: application/json\r\n"
                         f"content-length: {len(body)}\r\n\r\n".encode() + body)
            await writer.drain()
            return
        payload = request.json()
        if request.deployment:  # the deployment route takes the model from the path
            payload["model"] = request.deployment
        async with client.stream("POST", self.upstream + request.upstream_path, json=payload) as upstream:
            request.status = upstream.status_code
            kind = upstream.headers.get("content-type", "application/json")
            writer.write(f"HTTP/1.1 {upstream.status_code} Forwarded\r\ncontent-type: {kind}\r\n"
                         "transfer-encoding: chunked\r\n\r\n".encode())
            async for piece in upstream.aiter_bytes():
                if not piece:
                    continue
                writer.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                await writer.drain()
            writer.write(b"0\r\n\r\n")
            await writer.drain()
