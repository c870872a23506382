"""The HTTP edge shared by remote providers: pooled clients, bounded retries, error mapping, SSE.

Retries happen here and only here, for failures marked retryable: connect errors,
timeouts, 429 (honoring ``Retry-After``) and 5xx, within a bounded number of attempts
and total time that never outlives the call's ``timeout``. For a whole answer,
``timeout`` is a deadline for the call, retries and slow bodies included; for a stream
the LLM base class bounds the first chunk and every gap. A stream is never retried once
it has yielded. Errors are raised as the category's classes (``LLMTimeoutError`` for an
LLM, ``ProviderTimeoutError`` for embeddings, ...).
"""

from __future__ import annotations

import abc
import asyncio
import json
import ssl
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import Field, SecretStr

from pepperpy._log import logger
from pepperpy._resources import ResourceMixin
from pepperpy.core import PepperpyPlugin
from pepperpy.errors import (
    AuthenticationError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    provider_error_type,
)


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, total time budget, backoff between tries."""

    attempts: int = 3
    budget_s: float = 30.0
    backoff_s: float = 0.25
    max_wait_s: float = 10.0
    retry_connect: bool = True  # False inside a fallback chain: a refused connection moves on at once
    max_retry_after_s: float | None = None  # a longer Retry-After is not waited for (the chain moves on)


class ClientPool:
    """The pooled ``httpx.AsyncClient``s of one PluginManager on one event loop: one per base URL.

    A pool is the shared resource ``"http_clients"`` with ``per_loop=True`` (rules in
    ``pepperpy._resources``): asyncio objects belong to one event loop, hence one pool
    per loop. Every remote provider of the manager opened on that loop holds it while
    open, and it is kept while the loop runs even when no provider is open, so a second
    ``PepperPy`` opened on the same service reuses the client and its keep-alive
    connections (no new client, no new TCP/TLS handshake). The pool is closed, exactly
    once, when its loop shuts down (``asyncio.run()`` returning, a sync runner closing;
    if providers are still open then, when the last of them closes), or at interpreter
    exit. It holds one client per distinct base URL used on that loop.

    Each provider gets its own ``PooledClient`` handle, closed when the provider closes.
    One SSL context serves every client of the manager (building one costs ~25 ms).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        self._clients: dict[str, httpx.AsyncClient] = {}
        self._ssl_context = ssl_context

    def acquire(self, base_url: str) -> PooledClient:
        """A new handle on the pooled client for ``base_url`` (created on first use)."""
        client = self._clients.get(base_url)
        if client is None or client.is_closed:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            client = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=None, verify=self._ssl_context)
            self._clients[base_url] = client
        return PooledClient(client)

    async def aclose(self) -> None:
        """Close every pooled client and its connections (the resource's cleanup)."""
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            await client.aclose()


class PooledClient:
    """One provider's handle on a pooled ``httpx.AsyncClient``.

    ``post``, ``stream`` and ``base_url`` are the pooled client's, at no per-call cost. ``aclose()`` (done when the provider closes) closes
    the handle only: it then refuses requests and reads ``is_closed``, while the pooled
    client and its connections live on in the ``ClientPool``.
    """

    def __init__(self, client: httpx.AsyncClient) -> None:
        self.client = client
        self.base_url = client.base_url
        self.post = client.post
        self.stream = client.stream
        self._closed = False

    @property
    def is_closed(self) -> bool:
        return self._closed or self.client.is_closed

    async def aclose(self) -> None:
        self._closed = True
        self.post = self.stream = _refuse_closed  # type: ignore[method-assign]


def _refuse_closed(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("Cannot send a request, as the client has been closed (the provider closed).")


def _service_message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:500] or response.reason_phrase
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return str(error.get("message") or error)
        return str(error)
    return str(body)[:500]


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("retry-after")
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def _who(who: str) -> tuple[str, str]:
    """``(plugin id, category)`` from a plugin id such as ``llm/openai``."""
    return who, who.split("/", 1)[0]


def error_for_status(response: httpx.Response, who: str) -> ProviderError:
    """Map an HTTP error answer to the PepperPy hierarchy (the category's classes), keeping the service's message."""
    status, message = response.status_code, _service_message(response)
    category = _who(who)[1]
    text = f"{who}: HTTP {status} from {response.request.url}: {message}"
    if status in (401, 403):
        return provider_error_type(AuthenticationError, category)(f"{text}; check the API key", status_code=status)
    if status == 429:
        return provider_error_type(RateLimitError, category)(
            f"{text}; slow down or raise your quota", status_code=status, retryable=True, retry_after=_retry_after(response)
        )
    return provider_error_type(ProviderError, category)(text, status_code=status, retryable=status >= 500 or status == 408)


def error_for_exception(exc: httpx.HTTPError, who: str, timeout_s: float | None) -> ProviderError:
    try:
        url: Any = exc.request.url
    except RuntimeError:  # httpx raises it for an error that carries no request
        url = "the service"
    category = _who(who)[1]
    if isinstance(exc, httpx.TimeoutException):
        return provider_error_type(ProviderTimeoutError, category)(
            f"{who}: no answer from {url} within timeout={timeout_s}s (one attempt); raise timeout=...", retryable=True
        )
    if isinstance(exc, httpx.ConnectError):
        return provider_error_type(ProviderError, category)(
            f"{who}: cannot connect to {url} ({exc}); check base_url and the network (is the server running?)", retryable=True
        )
    return provider_error_type(ProviderError, category)(f"{who}: {type(exc).__name__} talking to {url}: {exc}", retryable=True)


async def _pause_before_retry(error: ProviderError, attempt: int, policy: RetryPolicy, deadline: float) -> bool:
    """Sleep before the next attempt; False when the error or the budget says stop."""
    # The service's Retry-After is honored as given; only our own backoff is capped.
    wait = error.retry_after if error.retry_after is not None else min(policy.backoff_s * 2 ** (attempt - 1), policy.max_wait_s)
    too_long = policy.max_retry_after_s is not None and error.retry_after is not None and wait > policy.max_retry_after_s
    if not error.retryable or too_long or attempt >= policy.attempts or time.monotonic() + wait > deadline:
        logger.debug("giving up after attempt {}: {}", attempt, error)
        return False
    logger.info("attempt {} failed, retrying in {:.2f}s: {}", attempt, wait, error)
    await asyncio.sleep(wait)
    return True


async def post_json(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], *, headers: dict[str, str], timeout_s: float,
    policy: RetryPolicy, who: str,
) -> dict[str, Any]:
    """POST ``body`` and return the JSON answer within ``timeout_s`` in all, retrying transient failures."""
    scope = asyncio.timeout(timeout_s)
    try:
        async with scope:
            return await _post_with_retries(client, path, body, headers, timeout_s, policy, who)
    except TimeoutError:
        if not scope.expired():
            raise
        raise provider_error_type(ProviderTimeoutError, _who(who)[1])(
            f"{who}: no complete answer from {client.base_url.join(path)} within timeout={timeout_s}s (the limit "
            "covers the whole call, retries and slow bodies included); raise timeout=...",
            retryable=True,
        ) from None


async def _post_with_retries(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float,
    policy: RetryPolicy, who: str,
) -> dict[str, Any]:
    deadline = time.monotonic() + min(policy.budget_s, timeout_s)
    attempt = 0
    while True:
        attempt += 1
        try:
            response = await client.post(path, json=body, headers=headers, timeout=timeout_s)
            if response.status_code >= 400:
                raise error_for_status(response, who)
            try:
                return response.json()
            except ValueError:
                raise provider_error_type(ProviderError, _who(who)[1])(
                    f"{who}: the service answered with malformed JSON: {response.text[:200]!r}"
                ) from None
        except httpx.HTTPError as exc:
            error = error_for_exception(exc, who, timeout_s)
            if isinstance(exc, httpx.ConnectError) and not policy.retry_connect:
                raise error from exc
            if not await _pause_before_retry(error, attempt, policy, deadline):
                raise error from exc
        except ProviderError as error:
            if not await _pause_before_retry(error, attempt, policy, deadline):
                raise


async def stream_sse(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], *, headers: dict[str, str], timeout_s: float,
    policy: RetryPolicy, who: str,
) -> AsyncIterator[tuple[str | None, str]]:
    """POST ``body`` and yield ``(event, data)`` of each server-sent event.

    Failures before the first event are retried within ``policy`` and ``timeout_s``; after it, never.
    """
    deadline = time.monotonic() + min(policy.budget_s, timeout_s)
    attempt = 0
    yielded = False
    while True:
        attempt += 1
        try:
            async with client.stream("POST", path, json=body, headers=headers, timeout=timeout_s) as response:
                if response.status_code >= 400:
                    await response.aread()
                    raise error_for_status(response, who)
                event: str | None = None
                async for line in response.aiter_lines():
                    if line.startswith("data:"):
                        yielded = True
                        yield event, line[5:].strip()
                        event = None
                    elif line.startswith("event:"):
                        event = line[6:].strip()
                return
        except httpx.HTTPError as exc:
            error = error_for_exception(exc, who, timeout_s)
            if yielded:
                raise provider_error_type(ProviderError, _who(who)[1])(
                    f"{who}: the stream broke off midway ({exc}); the partial answer was kept"
                ) from exc
            if isinstance(exc, httpx.ConnectError) and not policy.retry_connect:
                raise error from exc
            if not await _pause_before_retry(error, attempt, policy, deadline):
                raise error from exc
        except ProviderError as error:
            if yielded or not await _pause_before_retry(error, attempt, policy, deadline):
                raise


def parse_event_data(data: str, who: str) -> dict[str, Any]:
    try:
        return json.loads(data)
    except ValueError:
        raise provider_error_type(ProviderError, _who(who)[1])(f"{who}: malformed event in the stream: {data[:200]!r}") from None




class Endpoint:
    """A base URL with its headers, timeout and retry policy, over a client shared through a ClientPool."""

    def __init__(
        self, client: PooledClient | httpx.AsyncClient, headers: dict[str, str], timeout_s: float, policy: RetryPolicy,
        who: str,
    ):
        self.client, self._headers, self.timeout_s, self.policy, self.who = client, headers, timeout_s, policy, who

    async def post(self, path: str, body: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        return await post_json(
            self.client, path, body, headers=self._headers, timeout_s=timeout_s or self.timeout_s,
            policy=self.policy, who=self.who,
        )

    def stream(self, path: str, body: dict[str, Any], timeout_s: float | None = None) -> AsyncIterator[tuple[str | None, str]]:
        return stream_sse(
            self.client, path, body, headers=self._headers, timeout_s=timeout_s or self.timeout_s,
            policy=self.policy, who=self.who,
        )


class RemoteProvider(PepperpyPlugin, ResourceMixin):
    """Options and lifecycle shared by providers that talk to an HTTP service.

    Subclasses implement ``headers()``; ``base_url`` and ``api_key`` come from the
    config, plugin.json's ``config``/``env``, or keys.json. While open, ``self.endpoint``
    posts and streams, over the manager's pooled client for ``base_url`` on the running
    loop (``ClientPool``, a shared resource: ``get_resource`` is available here too).
    """

    base_url: str = Field(description="the service's base URL, e.g. https://api.openai.com/v1")
    api_key: SecretStr = Field(description="the service's API key")
    timeout: float = 60.0
    max_retries: int = 2
    retry_budget: float = 30.0
    retry_connect: bool = True
    max_retry_after: float | None = None

    @abc.abstractmethod
    def headers(self) -> dict[str, str]:
        """The HTTP headers of every request (authentication, versions)."""

    async def initialize(self) -> None:
        pool = await self.get_resource("http_clients", factory=self._new_pool, cleanup=ClientPool.aclose, per_loop=True)
        policy = RetryPolicy(
            attempts=1 + self.max_retries, budget_s=self.retry_budget, retry_connect=self.retry_connect,
            max_retry_after_s=self.max_retry_after,
        )
        client = pool.acquire(self.base_url.rstrip("/") + "/")
        self.endpoint = Endpoint(client, self.headers(), self.timeout, policy, self.plugin_id)

    async def cleanup(self) -> None:
        await self.endpoint.client.aclose()  # the handle; the pool is released by the base lifecycle
        del self.endpoint

    def _new_pool(self) -> ClientPool:
        return ClientPool(self.shared_resource("http_ssl_context", httpx.create_ssl_context))


__all__ = [
    "ClientPool",
    "Endpoint",
    "PooledClient",
    "RemoteProvider",
    "RetryPolicy",
    "error_for_exception",
    "error_for_status",
    "parse_event_data",
    "post_json",
    "stream_sse",
]
