"""The HTTP edge shared by remote providers: pooled clients, bounded retries, error mapping, SSE.

Retries happen here and only here, for failures marked retryable: connect errors,
timeouts, 429 (honoring ``Retry-After``) and 5xx, within a bounded number of attempts
and total time. A stream is never retried once it has yielded.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
from pydantic import PrivateAttr, SecretStr

from pepperpy._log import logger
from pepperpy.core import Provider
from pepperpy.errors import AuthenticationError, ProviderError, ProviderTimeoutError, RateLimitError


@dataclass(frozen=True)
class RetryPolicy:
    """How hard to try: attempts, total time budget, backoff between tries."""

    attempts: int = 3
    budget_s: float = 30.0
    backoff_s: float = 0.25
    max_wait_s: float = 10.0


class ClientPool:
    """One pooled ``httpx.AsyncClient`` per base URL and event loop, shared by providers, refcounted."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, int], tuple[httpx.AsyncClient, int]] = {}

    def acquire(self, base_url: str) -> httpx.AsyncClient:
        key = (base_url, id(asyncio.get_running_loop()))
        client, users = self._clients.get(key, (None, 0))
        if client is None or client.is_closed:
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64)
            client, users = httpx.AsyncClient(base_url=base_url, limits=limits, timeout=None), 0
        self._clients[key] = (client, users + 1)
        return client

    async def release(self, client: httpx.AsyncClient) -> None:
        for key, (known, users) in list(self._clients.items()):
            if known is client:
                if users <= 1:
                    del self._clients[key]
                    await client.aclose()
                else:
                    self._clients[key] = (known, users - 1)
                return


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


def error_for_status(response: httpx.Response, who: str) -> ProviderError:
    """Map an HTTP error answer to the PepperPy hierarchy, keeping the service's message."""
    status, message = response.status_code, _service_message(response)
    text = f"{who}: HTTP {status} from {response.request.url}: {message}"
    if status in (401, 403):
        return AuthenticationError(f"{text}; check the API key", status_code=status)
    if status == 429:
        return RateLimitError(
            f"{text}; slow down or raise your quota", status_code=status, retryable=True, retry_after=_retry_after(response)
        )
    return ProviderError(text, status_code=status, retryable=status >= 500 or status == 408)


def error_for_exception(exc: httpx.HTTPError, who: str, timeout_s: float | None) -> ProviderError:
    try:
        url: Any = exc.request.url
    except RuntimeError:  # httpx raises it for an error that carries no request
        url = "the service"
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeoutError(f"{who}: no answer from {url} within {timeout_s}s; raise timeout=...", retryable=True)
    if isinstance(exc, httpx.ConnectError):
        return ProviderError(f"{who}: cannot connect to {url} ({exc}); is the server running?", retryable=True)
    return ProviderError(f"{who}: {type(exc).__name__} talking to {url}: {exc}", retryable=True)


async def _pause_before_retry(error: ProviderError, attempt: int, policy: RetryPolicy, deadline: float) -> bool:
    """Sleep before the next attempt; False when the error or the budget says stop."""
    # The service's Retry-After is honored as given; only our own backoff is capped.
    wait = error.retry_after if error.retry_after is not None else min(policy.backoff_s * 2 ** (attempt - 1), policy.max_wait_s)
    if not error.retryable or attempt >= policy.attempts or time.monotonic() + wait > deadline:
        logger.debug("giving up after attempt {}: {}", attempt, error)
        return False
    logger.info("attempt {} failed, retrying in {:.2f}s: {}", attempt, wait, error)
    await asyncio.sleep(wait)
    return True


async def post_json(
    client: httpx.AsyncClient, path: str, body: dict[str, Any], *, headers: dict[str, str], timeout_s: float,
    policy: RetryPolicy, who: str,
) -> dict[str, Any]:
    """POST ``body`` and return the JSON answer, retrying transient failures within ``policy``."""
    deadline = time.monotonic() + policy.budget_s
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
                raise ProviderError(f"{who}: the service answered with malformed JSON: {response.text[:200]!r}") from None
        except httpx.HTTPError as exc:
            error = error_for_exception(exc, who, timeout_s)
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

    Failures before the first event are retried within ``policy``; after it, never.
    """
    deadline = time.monotonic() + policy.budget_s
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
                raise ProviderError(f"{who}: the stream broke off midway ({exc}); the partial answer was kept") from exc
            if not await _pause_before_retry(error, attempt, policy, deadline):
                raise error from exc
        except ProviderError as error:
            if yielded or not await _pause_before_retry(error, attempt, policy, deadline):
                raise


def parse_event_data(data: str, who: str) -> dict[str, Any]:
    try:
        return json.loads(data)
    except ValueError:
        raise ProviderError(f"{who}: malformed event in the stream: {data[:200]!r}") from None




class Endpoint:
    """A base URL with its headers, timeout and retry policy, over a client shared through a ClientPool."""

    def __init__(self, pool: ClientPool, base_url: str, headers: dict[str, str], timeout_s: float,
                 policy: RetryPolicy, who: str):
        self._pool, self._headers, self.timeout_s, self.policy, self.who = pool, headers, timeout_s, policy, who
        self.base_url = base_url.rstrip("/") + "/"
        self._client: httpx.AsyncClient | None = None

    def _open(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = self._pool.acquire(self.base_url)
        return self._client

    async def post(self, path: str, body: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        return await post_json(
            self._open(), path, body, headers=self._headers, timeout_s=timeout_s or self.timeout_s,
            policy=self.policy, who=self.who,
        )

    def stream(self, path: str, body: dict[str, Any], timeout_s: float | None = None) -> AsyncIterator[tuple[str | None, str]]:
        return stream_sse(
            self._open(), path, body, headers=self._headers, timeout_s=timeout_s or self.timeout_s,
            policy=self.policy, who=self.who,
        )

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            await self._pool.release(client)


class RemoteProvider(Provider):
    """Options and lifecycle shared by providers that talk to an HTTP service.

    Subclasses set ``base_url`` and ``api_key`` defaults (or an ``env`` mapping in
    plugin.json) and implement ``headers()``.
    """

    base_url: str
    api_key: SecretStr
    timeout: float = 60.0
    max_retries: int = 2
    retry_budget: float = 30.0

    _endpoint: Endpoint | None = PrivateAttr(default=None)

    def headers(self) -> dict[str, str]:
        raise NotImplementedError

    async def setup(self) -> None:
        policy = RetryPolicy(attempts=1 + self.max_retries, budget_s=self.retry_budget)
        pool = self.shared_resource("http_clients", ClientPool)
        self._endpoint = Endpoint(pool, self.base_url, self.headers(), self.timeout, policy, self.plugin_id)

    async def teardown(self) -> None:
        endpoint, self._endpoint = self._endpoint, None
        if endpoint is not None:
            await endpoint.close()

    async def endpoint(self) -> Endpoint:
        """The endpoint, initializing the provider on first use."""
        endpoint = self._endpoint
        if endpoint is None:
            await self.initialize()
            endpoint = self._endpoint
            assert endpoint is not None
        return endpoint


__all__ = [
    "ClientPool",
    "Endpoint",
    "RemoteProvider",
    "RetryPolicy",
    "error_for_exception",
    "error_for_status",
    "parse_event_data",
    "post_json",
    "stream_sse",
]
