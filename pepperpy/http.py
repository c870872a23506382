"""The HTTP edge shared by remote providers: pooled connections, one retry rule, size caps, error mapping, SSE.

The retry rule, here and only here (``max_retries`` attempts more at most, all within
``retry_budget`` seconds and the call's ``timeout``):

- Retried: failures where the request never reached the service (a refused or failed
  connection, a connect or pool timeout; ``retry_connect=False`` turns these off inside
  fallback chains); 429 and 503, after the service's ``Retry-After`` (seconds or an
  HTTP date; one beyond the budget, the deadline or ``max_retry_after`` is not waited
  for) or our own exponential backoff; 408 and every other 5xx, with backoff.
- Never retried: a read timeout, a connection dropped after the request was sent, a
  body or stream cut short after a 2xx, an answer over the size cap, any other 4xx.
  The service may have processed (and billed) such a request, so the error says so
  instead of sending it again. A stream is never retried once its 2xx arrived.
- Sent again once, at once, whatever the policy: a request on a **reused** keep-alive
  connection that the service closed or reset before the response's headers arrived
  (httpx's "Server disconnected without sending a response", a read or write error).
  That is the keep-alive race: the service closed the idle connection just as the
  request went out, so it never read it. (A service that read the request and crashed
  before answering looks the same; like browsers, PepperPy takes the likely case.)
  Browsers and the openai SDK send such a request again too (Go's net/http does for
  requests it may replay). httpcore's ``trace`` extension tells a reused connection from
  a new one (a new one reports ``connection.connect_tcp`` before its first HTTP step; the
  trace is stopped at that step); the headers arrived once ``PooledClient.send()`` hands the
  response over. The same failure on a new connection follows the rules above (not sent
  again): nothing tells a service that hung up at once from one that read the request
  first. One limit: httpcore reports a close after part of a status line the same way as
  a close before any byte, so that rare case is sent again too.

Keep-alive: an idle pooled connection is closed after ``KEEPALIVE_EXPIRY_S`` (3 s), below
the 5 s after which common servers (llama.cpp's cpp-httplib, Node, uvicorn) close theirs,
so a connection is rarely picked just as the service closes it. No request waits on a
dead connection: httpcore drops an idle connection whose socket turned readable (the
service's close) before sending on it, and a close that arrives after the request went
out ends the read at once. A long wait with the request sent is the service's own (for
llama.cpp, its queue of requests waiting for a free slot).

Size caps: a JSON answer larger than ``max_response_bytes`` (default 32 MiB: a batch of
128 embeddings of 3072 dimensions is about 8 MB of JSON), or one server-sent event
larger than ``max_event_bytes`` (default 1 MiB), is refused with a ``ProviderError``
naming the provider, the cap and the option; nothing larger is ever held in memory.
Error answers are read up to 64 KiB only (their message is all that is shown).

Streams are parsed as the HTML standard's server-sent events (``SSEDecoder``).

For a whole answer, ``timeout`` is a deadline for the call, retries and slow bodies
included; for a stream the LLM base class bounds the first chunk and every gap. Errors
are raised as the category's classes (``LLMTimeoutError`` for an LLM,
``ProviderTimeoutError`` for embeddings, ...).
"""

from __future__ import annotations

import abc
import asyncio
import json
import math
import ssl
import time
import urllib.request
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

import httpx
from pydantic import Field, SecretStr

from pepperpy._deadline import enforced_by
from pepperpy._log import logger
from pepperpy._sse import EventTooLarge, ServerSentEvent, SSEDecoder
from pepperpy._redact import redact, remember, remember_options
from pepperpy.core import PepperpyPlugin, ResourceMixin
from pepperpy.errors import (
    AuthenticationError,
    ProviderError,
    ProviderTimeoutError,
    RateLimitError,
    provider_error_type,
)

MIB = 1024 * 1024
DEFAULT_MAX_RESPONSE_BYTES = 32 * MIB
DEFAULT_MAX_EVENT_BYTES = 1 * MIB
ERROR_BODY_BYTES = 64 * 1024  # of an error answer: its message is all that is shown
MAY_HAVE_BEEN_PROCESSED = "the service may have processed (and billed) the request, so it was not sent again"
_BODY_HEADERS = {"content-encoding", "content-length", "transfer-encoding"}
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)  # the request never reached the service
KEEPALIVE_EXPIRY_S = 3.0  # below the common 5 s server keep-alive timeout (module docstring)


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
    """The pooled connections of one PluginManager on one event loop: one ``httpx.AsyncHTTPTransport`` per base URL.

    A pool is the shared resource ``"http_clients"`` with ``per_loop=True`` (rules in
    ``pepperpy._resources``): asyncio objects belong to one event loop, hence one pool
    per loop. Every remote provider of the manager opened on that loop holds it while
    open, and it is kept while the loop runs even when no provider is open, so a second
    ``PepperPy`` opened on the same service reuses the transport and its keep-alive
    connections (no new TCP/TLS handshake). The pool is closed, exactly once, when its
    loop shuts down (``asyncio.run()`` returning, a sync runner closing; if providers are
    still open then, when the last of them closes), or at interpreter exit.

    Requests go to the transport directly, not through an ``httpx.AsyncClient``: the
    client's layer (URL and header merging, cookies, redirects, event hooks, its
    response wrapper) cost about a third of a call's CPU, and PepperPy uses none of it
    but the proxy settings, which are read here once per base URL from the same
    environment variables (``environment_proxy``). Each provider gets its own
    ``PooledClient`` handle, closed when the provider closes. One SSL context serves
    every transport of the manager (building one costs ~25 ms).
    """

    def __init__(self, ssl_context: ssl.SSLContext | None = None) -> None:
        # per base URL: its transport, and the proxy it goes through as errors show it (None: straight)
        self._transports: dict[str, tuple[httpx.AsyncHTTPTransport, str | None]] = {}
        self._ssl_context = ssl_context
        self.is_closed = False

    def acquire(self, base_url: str) -> PooledClient:
        """A new handle on the pooled transport for ``base_url`` (created on first use)."""
        url = httpx.URL(base_url)
        pooled = self._transports.get(base_url)
        if pooled is None:
            if self._ssl_context is None:
                self._ssl_context = httpx.create_ssl_context()
            limits = httpx.Limits(max_connections=256, max_keepalive_connections=64, keepalive_expiry=KEEPALIVE_EXPIRY_S)
            proxy = environment_proxy(url)
            transport = httpx.AsyncHTTPTransport(verify=self._ssl_context, limits=limits, proxy=proxy)
            pooled = self._transports[base_url] = (transport, _shown_proxy(proxy))
        return PooledClient(pooled[0], url, self, pooled[1])

    async def aclose(self) -> None:
        """Close every pooled transport and its connections (the resource's cleanup)."""
        pooled, self._transports = list(self._transports.values()), {}
        self.is_closed = True
        for transport, _ in pooled:
            await transport.aclose()


def environment_proxy(url: httpx.URL) -> str | None:
    """The proxy that ``HTTPS_PROXY``/``HTTP_PROXY``/``ALL_PROXY`` name for ``url``, unless ``NO_PROXY`` exempts
    it (``*``; a name, which covers its subdomains; ``.name``, its subdomains only; an address; any of these with
    ``:port``, for that port only), read as ``httpx.AsyncClient`` reads them (curl's rules)."""
    settings = urllib.request.getproxies_environment()
    proxy = settings.get(url.scheme) or settings.get("all")
    if not proxy:
        return None
    for entry in settings.get("no", "").lower().split(","):
        if _exempts(entry.strip().split("://", 1)[-1], url):
            return None
    return proxy if "://" in proxy else f"http://{proxy}"


def _exempts(entry: str, url: httpx.URL) -> bool:
    """Whether one ``NO_PROXY`` entry (scheme removed) covers ``url``."""
    if entry == "*":
        return True
    name, port = entry, ""
    if entry.startswith("["):  # [IPv6] or [IPv6]:port
        name, _, rest = entry[1:].partition("]")
        port = rest.removeprefix(":")
    elif entry.count(":") == 1:  # name:port (an IPv6 address has more colons)
        name, port = entry.split(":")
    if not name or (port and port != str(url.port or (443 if url.scheme == "https" else 80))):
        return False
    host = url.host.lower()
    return host == name or host.endswith(name if name.startswith(".") else "." + name)


def _shown_proxy(proxy: str | None) -> str | None:
    """``proxy`` as errors show it: its password masked."""
    if proxy is None:
        return None
    url = httpx.URL(proxy)
    return str(url.copy_with(username=url.username, password="***")) if url.password else proxy


class PooledClient:
    """One provider's handle on the pooled transport for its base URL: it sends a request (signed by an
    ``httpx.Auth`` when given) and hands the response over with its body unread.

    ``aclose()`` (done when the provider closes) closes the handle only: it then refuses requests and
    reads ``is_closed``, while the transport and its connections live on in the ``ClientPool``.
    """

    def __init__(
        self, transport: httpx.AsyncHTTPTransport, base_url: httpx.URL, pool: ClientPool, proxy: str | None = None
    ) -> None:
        self.transport = transport
        self.base_url = base_url
        self.pool = pool
        self.proxy = proxy  # the proxy requests go through (password masked), None when straight
        self._urls: dict[str, httpx.URL] = {}
        self.is_closed = False

    def url(self, path: str) -> httpx.URL:
        """``path`` under the base URL (an absolute URL as it is), as ``httpx.AsyncClient(base_url=...)`` joins them."""
        url = self._urls.get(path)
        if url is None:
            url = httpx.URL(path)
            if url.is_relative_url:
                url = self.base_url.copy_with(raw_path=self.base_url.raw_path + url.raw_path.lstrip(b"/"))
            if len(self._urls) < 256:  # a provider's paths are few (one per model and method); kept bounded
                self._urls[path] = url
        return url

    async def post(
        self, url: httpx.URL, content: bytes, headers: Mapping[str, str], extensions: dict[str, Any],
        auth: httpx.Auth | None,
    ) -> httpx.Response:
        """POST the JSON ``content`` to ``url``; the response as ``send`` hands it over."""
        return await self.send(httpx.Request("POST", url, headers=headers, content=content, extensions=extensions), auth)

    async def send(self, request: httpx.Request, auth: httpx.Auth | None = None) -> httpx.Response:
        """The response to ``request`` once its headers are in (body unread: read it, then ``aclose()`` it)."""
        if auth is None:
            return await self._send(request)
        flow = auth.async_auth_flow(request)  # the loop of httpx.AsyncClient._send_handling_auth, redirects aside
        try:
            request = await flow.__anext__()
            while True:
                response = await self._send(request)
                try:
                    request = await flow.asend(response)
                except StopAsyncIteration:
                    return response
                except BaseException:
                    await response.aclose()
                    raise
                await response.aread()
        finally:
            await flow.aclose()

    async def _send(self, request: httpx.Request) -> httpx.Response:
        try:
            response = await self.transport.handle_async_request(request)
        except httpx.HTTPError as exc:
            exc.request = request  # as httpx.AsyncClient sets it: errors name the URL
            raise
        response.request = request
        return response

    async def aclose(self) -> None:
        self.is_closed = True
        self.send = _refuse_closed  # type: ignore[method-assign]


def _refuse_closed(*args: Any, **kwargs: Any) -> Any:
    raise RuntimeError("Cannot send a request, as the client has been closed (the provider closed).")


class _Attempt:
    """One request: on a new or a reused connection (httpcore's ``trace`` extension says), answered or not
    (``answered`` is set once the response's headers are in: where ``PooledClient.send()`` hands the response over)."""

    __slots__ = ("new_connection", "answered")

    def __init__(self) -> None:
        self.new_connection = self.answered = False

    def extensions(self, timeout_s: float) -> dict[str, Any]:
        """The request's extensions: this trace, and ``timeout_s`` for every phase as httpx's ``timeout`` extension
        (given so, httpx builds no ``Timeout`` object per request)."""
        return {"trace": self._trace, "timeout": {"connect": timeout_s, "read": timeout_s, "write": timeout_s, "pool": timeout_s}}

    async def _trace(self, event: str, info: dict[str, Any]) -> None:
        if event.startswith("connection."):
            if event.startswith(("connection.connect_tcp.", "connection.connect_unix_socket.")):
                self.new_connection = True
            return
        # The request is on its connection: nothing more to learn. Stop the trace for the rest of it (the
        # step under way reports once more); the eight later steps would add ~1.5% to every request's CPU.
        request = info.get("request")
        if request is not None:
            request.extensions.pop("trace", None)

    def never_read(self, exc: httpx.HTTPError) -> bool:
        """The keep-alive race: a reused connection closed or reset before the response's headers (module docstring)."""
        if self.new_connection or self.answered:
            return False
        if isinstance(exc, httpx.RemoteProtocolError):
            return "without sending a response" in str(exc)
        return isinstance(exc, (httpx.ReadError, httpx.WriteError))


def _resend(exc: httpx.HTTPError, attempt: _Attempt, resent: bool, who: str) -> bool:
    """True when the request is to be sent again at once: the keep-alive race, once per call."""
    if resent or not attempt.never_read(exc):
        return False
    logger.info("{}: a reused connection was closed before any answer ({}: {}); sending the request again",
                who, type(exc).__name__, exc)
    return True


def _service_message(response: httpx.Response) -> str:
    """The error answer's message; an AWS service's error type (its ``x-amzn-ErrorType`` header) leads it."""
    kind = response.headers.get("x-amzn-errortype", "").split(":", 1)[0]
    prefix = f"{kind}: " if kind else ""
    try:
        body = response.json()
    except ValueError:
        return prefix + (redact(response.text)[:500] or response.reason_phrase)  # redacted before cut: no half key survives
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict):
            return prefix + redact(str(error.get("message") or error.get("Message") or error))
        return prefix + redact(str(error))
    return prefix + redact(str(body))[:500]


def _retry_after(response: httpx.Response) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date); None when absent or invalid."""
    value = response.headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            return None
        seconds = (when - datetime.now(timezone.utc)).total_seconds()
    return max(0.0, seconds) if math.isfinite(seconds) else None


def _who(who: str) -> tuple[str, str]:
    """``(plugin id, category)`` from a plugin id such as ``llm/openai``."""
    return who, who.split("/", 1)[0]


def error_for_status(response: httpx.Response, who: str) -> ProviderError:
    """Map an HTTP error answer to the PepperPy hierarchy (the category's classes), keeping the service's message."""
    status, message = response.status_code, _service_message(response)
    category = _who(who)[1]
    text = redact(f"{who}: HTTP {status} from {response.request.url}: {message}")  # a key echoed back shows ***
    if status in (401, 403) or (status == 400 and b"API_KEY_INVALID" in response.content):  # Google's 400 for a bad key
        return provider_error_type(AuthenticationError, category)(f"{text}; check the API key", status_code=status)
    if status == 429:
        return provider_error_type(RateLimitError, category)(
            f"{text}; slow down or raise your quota", status_code=status, retryable=True, retry_after=_retry_after(response)
        )
    return provider_error_type(ProviderError, category)(
        text, status_code=status, retryable=status >= 500 or status == 408,
        retry_after=_retry_after(response) if status == 503 else None,
    )


def error_for_exception(
    exc: httpx.HTTPError, who: str, timeout_s: float | None, url_setting: str = "base_url", proxy: str | None = None
) -> ProviderError:
    """The ProviderError for a failed exchange; ``url_setting`` names the option that set the URL, ``proxy`` the
    proxy the request went through (a connection that failed was the proxy's)."""
    try:
        url: Any = exc.request.url
    except RuntimeError:  # httpx raises it for an error that carries no request
        url = "the service"
    category = _who(who)[1]
    if proxy is not None and isinstance(exc, (httpx.ConnectError, httpx.ConnectTimeout)):
        return provider_error_type(ProviderError, category)(
            f"{who}: cannot connect to the proxy {proxy} (named by HTTPS_PROXY, HTTP_PROXY or ALL_PROXY) to reach "
            f"{url} ({type(exc).__name__}: {exc}); check the proxy, or exempt the host with NO_PROXY", retryable=True,
        )
    if isinstance(exc, (httpx.ConnectTimeout, httpx.PoolTimeout)):  # never sent
        return provider_error_type(ProviderTimeoutError, category)(
            f"{who}: could not connect to {url} within timeout={timeout_s}s; check {url_setting} and the network, "
            "or raise timeout=...", retryable=True
        )
    if isinstance(exc, httpx.TimeoutException):
        return provider_error_type(ProviderTimeoutError, category)(
            f"{who}: no answer from {url} within timeout={timeout_s}s; {MAY_HAVE_BEEN_PROCESSED}; raise timeout=..."
        )
    if isinstance(exc, httpx.ConnectError):
        return provider_error_type(ProviderError, category)(
            f"{who}: cannot connect to {url} ({exc}); check {url_setting} and the network (is the server running?)",
            retryable=True,
        )
    if isinstance(exc, httpx.LocalProtocolError):  # refused before a byte was sent; its text would show the header
        return provider_error_type(ProviderError, category)(
            f"{who}: the request to {url} was not sent: the HTTP library refused a header (a line break in a value, "
            "or a value empty or with a space at its start or end); check the plugin's key options and headers()"
        )
    return provider_error_type(ProviderError, category)(
        f"{who}: the connection to {url} broke off after the request was sent ({type(exc).__name__}: {exc}); "
        f"{MAY_HAVE_BEEN_PROCESSED}; check the network or proxy, then try again"
    )


def _cut_short(exc: httpx.HTTPError, response: httpx.Response, who: str, timeout_s: float) -> ProviderError:
    """The body of a 2xx answer broke off: never retried, the service has the request."""
    if isinstance(exc, httpx.TimeoutException):
        return error_for_exception(exc, who, timeout_s)
    return provider_error_type(ProviderError, _who(who)[1])(
        f"{who}: the answer from {response.request.url} broke off after HTTP {response.status_code} "
        f"({type(exc).__name__}: {exc}); {MAY_HAVE_BEEN_PROCESSED}; try again if a repeat is acceptable"
    )


def _too_large(who: str, url: Any, what: str, limit: int, option: str) -> ProviderError:
    return provider_error_type(ProviderError, _who(who)[1])(
        f"{who}: {what} from {url} is larger than {option}={limit} bytes, so it was refused; "
        f"{MAY_HAVE_BEEN_PROCESSED}; raise {option}=... if answers this large are expected"
    )


def _body(response: httpx.Response) -> AsyncIterable[bytes]:
    """The body's bytes as they arrive: straight from the connection, or through httpx's decoders when the
    service compressed them."""
    return response.aiter_bytes() if "content-encoding" in response.headers else response.stream


async def _read_body(response: httpx.Response, limit: int, who: str) -> bytes:
    """The whole (decoded) body, refused as soon as it passes ``limit`` bytes."""
    declared = response.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_large(who, response.request.url, "the answer", limit, "max_response_bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in _body(response):
        size += len(chunk)
        if size > limit:
            raise _too_large(who, response.request.url, "the answer", limit, "max_response_bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _error_answer(response: httpx.Response) -> httpx.Response:
    """An error answer with at most ``ERROR_BODY_BYTES`` of its body, for ``error_for_status``."""
    body = bytearray()
    async for chunk in _body(response):
        body += chunk
        if len(body) >= ERROR_BODY_BYTES:
            break
    headers = [(k, v) for k, v in response.headers.multi_items() if k.lower() not in _BODY_HEADERS]
    return httpx.Response(
        response.status_code, headers=headers, content=bytes(body[:ERROR_BODY_BYTES]), request=response.request,
        extensions={"reason_phrase": response.extensions.get("reason_phrase", b"")},
    )


async def _pause_before_retry(error: ProviderError, attempt: int, policy: RetryPolicy, deadline: float) -> bool:
    """Sleep before the next attempt; False when the error or the budget says stop."""
    # The service's Retry-After is honored as given; only our own backoff is capped.
    wait = error.retry_after if error.retry_after is not None else min(policy.backoff_s * 2 ** (attempt - 1), policy.max_wait_s)
    too_long = policy.max_retry_after_s is not None and error.retry_after is not None and wait > policy.max_retry_after_s
    if not error.retryable or too_long or attempt >= policy.attempts or time.monotonic() + wait > deadline:
        logger.debug("giving up after attempt {}: {}", attempt, error)
        if attempt > 1:  # say that it was retried, so nobody retries again by hand thinking it was not
            error.args = (f"{error} (tried {attempt} times)",)
        return False
    logger.info("attempt {} failed, retrying in {:.2f}s: {}", attempt, wait, error)
    await asyncio.sleep(wait)
    return True


def json_body(body: dict[str, Any]) -> bytes:
    """``body`` as the bytes of a JSON request, as httpx's ``json=`` encodes it (compact, UTF-8); done once per
    call, whatever the retries."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


async def _pause_or_raise(
    exc: httpx.HTTPError, attempt: int, policy: RetryPolicy, deadline: float, who: str, timeout_s: float,
    url_setting: str, proxy: str | None,
) -> None:
    """After a failed exchange (not the keep-alive race): wait before the next attempt, or raise its error."""
    error = error_for_exception(exc, who, timeout_s, url_setting, proxy)
    if isinstance(exc, httpx.LocalProtocolError):
        raise error from None  # its text holds the refused header, perhaps a key
    if isinstance(exc, _NOT_SENT) and not policy.retry_connect:
        raise error from exc
    if not await _pause_before_retry(error, attempt, policy, deadline):
        raise error from exc


async def post_json(
    client: PooledClient, path: str, body: dict[str, Any], *, headers: Mapping[str, str], timeout_s: float,
    policy: RetryPolicy, who: str, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, auth: httpx.Auth | None = None,
    url_setting: str = "base_url",
) -> dict[str, Any]:
    """POST ``body`` and return the JSON answer within ``timeout_s`` in all, retrying as the module docstring says.

    ``headers`` are sent as given (with ``Host`` and ``Content-Length``): ``with_default_headers`` adds the usual
    ones. ``auth`` signs each attempt (an ``httpx.Auth``, e.g. a request signature that covers the body and the
    time)."""
    loop = asyncio.get_running_loop()
    content = json_body(body)
    if enforced_by(loop.time() + timeout_s):  # inside an LLM generate() whose deadline comes first: it fires first
        return await _post_with_retries(
            client, path, content, headers, timeout_s, policy, who, max_response_bytes, auth, url_setting
        )
    scope = asyncio.timeout(timeout_s)
    try:
        async with scope:
            return await _post_with_retries(
                client, path, content, headers, timeout_s, policy, who, max_response_bytes, auth, url_setting
            )
    except TimeoutError:
        if not scope.expired():
            raise
        raise provider_error_type(ProviderTimeoutError, _who(who)[1])(
            f"{who}: no complete answer from {client.url(path)} within timeout={timeout_s}s (the limit "
            "covers the whole call, retries and slow bodies included); if the request reached the service, it may "
            "have been processed; raise timeout=...",
            retryable=True,
        ) from None


async def _post_with_retries(
    client: PooledClient, path: str, content: bytes, headers: Mapping[str, str], timeout_s: float,
    policy: RetryPolicy, who: str, max_response_bytes: int, auth: httpx.Auth | None, url_setting: str,
) -> dict[str, Any]:
    deadline = time.monotonic() + min(policy.budget_s, timeout_s)
    url = client.url(path)
    attempt, resent = 0, False
    while True:
        attempt += 1
        trace = _Attempt()
        try:
            response = await client.post(url, content, headers, trace.extensions(timeout_s), auth)
            try:
                trace.answered = True
                if response.status_code >= 400:
                    raise error_for_status(await _error_answer(response), who)
                try:
                    raw = await _read_body(response, max_response_bytes, who)
                except httpx.HTTPError as exc:
                    raise _cut_short(exc, response, who, timeout_s) from exc
            finally:
                await response.aclose()
            try:
                return json.loads(raw)
            except ValueError:
                raise provider_error_type(ProviderError, _who(who)[1])(
                    f"{who}: the service answered with malformed JSON: {raw[:200].decode('utf-8', 'replace')!r}"
                ) from None
        except httpx.HTTPError as exc:
            if _resend(exc, trace, resent, who):
                attempt, resent = attempt - 1, True
                continue
            await _pause_or_raise(exc, attempt, policy, deadline, who, timeout_s, url_setting, client.proxy)
        except ProviderError as error:
            if not await _pause_before_retry(error, attempt, policy, deadline):
                raise


async def stream_sse(
    client: PooledClient, path: str, body: dict[str, Any], *, headers: Mapping[str, str], timeout_s: float,
    policy: RetryPolicy, who: str, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES, auth: httpx.Auth | None = None,
    decoder: Callable[[int], Any] = SSEDecoder, url_setting: str = "base_url",
) -> AsyncIterator[tuple[str | None, str]]:
    """POST ``body`` and yield ``(event type or None, data)`` of each server-sent event; ``headers`` and ``auth``
    as for ``post_json``.

    ``decoder(max_event_bytes)`` reads the stream: ``SSEDecoder``, or, for a stream framed otherwise (AWS's
    event stream), an object whose ``feed(bytes)`` returns the events complete so far, each with ``event`` (its
    type, or "") and ``data`` (text), and which raises ``EventTooLarge`` for an event over ``max_event_bytes``.

    Failures before the service's 2xx answer are retried within ``policy`` and ``timeout_s``;
    after it, never (the service has the request).
    """
    deadline = time.monotonic() + min(policy.budget_s, timeout_s)
    url, content = client.url(path), json_body(body)
    attempt, resent = 0, False
    while True:
        attempt += 1
        answered = yielded = False
        trace = _Attempt()
        try:
            response = await client.post(url, content, headers, trace.extensions(timeout_s), auth)
            try:
                trace.answered = True
                if response.status_code >= 400:
                    raise error_for_status(await _error_answer(response), who)
                answered = True
                events = decoder(max_event_bytes)
                try:
                    async for chunk in _body(response):
                        for event in events.feed(chunk):
                            yielded = True
                            yield event.event or None, event.data
                except EventTooLarge:
                    raise _too_large(who, url, "one event of the stream", max_event_bytes, "max_event_bytes") from None
                except httpx.HTTPError as exc:
                    if not yielded:
                        raise _cut_short(exc, response, who, timeout_s) from exc
                    raise provider_error_type(ProviderError, _who(who)[1])(
                        f"{who}: the stream broke off midway ({exc}); the chunks already received stand, "
                        "so try again for a whole answer"
                    ) from exc
                return
            finally:
                await response.aclose()
        except httpx.HTTPError as exc:
            if _resend(exc, trace, resent, who):
                attempt, resent = attempt - 1, True
                continue
            await _pause_or_raise(exc, attempt, policy, deadline, who, timeout_s, url_setting, client.proxy)
        except ProviderError as error:
            if answered or not await _pause_before_retry(error, attempt, policy, deadline):
                raise


_raw_decode = json.JSONDecoder().raw_decode


def parse_event_data(data: str, who: str) -> dict[str, Any]:
    """The JSON of one event's data, as ``json.loads`` reads it; ProviderError when malformed."""
    try:
        value, end = _raw_decode(data)  # the usual event, one document and nothing around it: 0.8 us less
    except ValueError:
        end = -1
    if end == len(data):
        return value
    try:  # whitespace around the document, extra data, or no JSON: json.loads decides
        return json.loads(data)
    except ValueError:
        raise provider_error_type(ProviderError, _who(who)[1])(f"{who}: malformed event in the stream: {data[:200]!r}") from None




class Endpoint:
    """A base URL with its headers (every one sent: see ``with_default_headers``), timeout, retry policy and size
    caps, over a transport shared through a ClientPool."""

    def __init__(
        self, client: PooledClient, headers: Mapping[str, str], timeout_s: float, policy: RetryPolicy,
        who: str, *, max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES, max_event_bytes: int = DEFAULT_MAX_EVENT_BYTES,
        auth: httpx.Auth | None = None, url_setting: str = "base_url",
    ):
        self.client, self._headers, self.timeout_s, self.policy, self.who = client, headers, timeout_s, policy, who
        self.max_response_bytes, self.max_event_bytes, self.auth = max_response_bytes, max_event_bytes, auth
        self.url_setting = url_setting  # the option a connection error tells the user to check

    async def post(self, path: str, body: dict[str, Any], timeout_s: float | None = None) -> dict[str, Any]:
        return await post_json(
            self.client, path, body, headers=self._headers, timeout_s=timeout_s or self.timeout_s,
            policy=self.policy, who=self.who, max_response_bytes=self.max_response_bytes, auth=self.auth,
            url_setting=self.url_setting,
        )

    def stream(
        self, path: str, body: dict[str, Any], timeout_s: float | None = None, decoder: Callable[[int], Any] = SSEDecoder,
    ) -> AsyncIterator[tuple[str | None, str]]:
        return stream_sse(
            self.client, path, body, headers=self._headers, timeout_s=timeout_s or self.timeout_s,
            policy=self.policy, who=self.who, max_event_bytes=self.max_event_bytes, auth=self.auth, decoder=decoder,
            url_setting=self.url_setting,
        )


DEFAULT_HEADERS = {  # what httpx.AsyncClient sends unless told otherwise, and the body's type
    "Accept": "*/*",
    "Accept-Encoding": "gzip, deflate",
    "Connection": "keep-alive",
    "User-Agent": f"python-httpx/{httpx.__version__}",
    "Content-Type": "application/json",
}


def with_default_headers(headers: Mapping[str, Any]) -> dict[str, Any]:
    """``headers``, then the ``DEFAULT_HEADERS`` they do not set (names compared without case)."""
    given = {name.lower() for name in headers}
    return {**headers, **{name: value for name, value in DEFAULT_HEADERS.items() if name.lower() not in given}}


class SecretHeaders(Mapping[str, str]):
    """Request headers whose values stay ``SecretStr`` until httpx reads them to send a request.

    Its repr shows ``***`` for every value, so a traceback with locals (loguru's
    ``diagnose=True``, pytest's ``--showlocals``, rich's ``show_locals``) never shows a key
    in PepperPy's frames. ``SecretStr`` values are registered with ``pepperpy._redact``.
    """

    __slots__ = ("_values",)

    def __init__(self, headers: Mapping[str, str | SecretStr]) -> None:
        values: dict[str, SecretStr] = {}
        for name, value in headers.items():
            if isinstance(value, SecretStr):
                remember(value)
            values[name] = value if isinstance(value, SecretStr) else SecretStr(str(value))
        self._values = values

    def __getitem__(self, name: str) -> str:
        return self._values[name].get_secret_value()

    def items(self) -> list[tuple[str, str]]:  # type: ignore[override]
        """The headers as httpx reads them for every request, in one step (a Mapping's view would call back per item)."""
        return [(name, value.get_secret_value()) for name, value in self._values.items()]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return "SecretHeaders({" + ", ".join(f"{name!r}: '***'" for name in self._values) + "})"


def bearer(api_key: SecretStr) -> SecretStr:
    """The ``Authorization`` header value for ``api_key``, still a ``SecretStr``."""
    return SecretStr(f"Bearer {api_key.get_secret_value()}")


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
    max_response_bytes: int = Field(
        DEFAULT_MAX_RESPONSE_BYTES, gt=0, description="the largest JSON answer accepted, in bytes (decoded)"
    )
    max_event_bytes: int = Field(
        DEFAULT_MAX_EVENT_BYTES, gt=0, description="the largest single server-sent event of a stream accepted, in bytes"
    )

    @abc.abstractmethod
    def headers(self) -> Mapping[str, str | SecretStr]:
        """The HTTP headers of every request (authentication, versions); give keys as ``SecretStr`` (``bearer()``)."""

    def auth(self) -> httpx.Auth | None:
        """An ``httpx.Auth`` that signs every request sent (each retry again), for services that want a signature
        rather than a key header (AWS SigV4); None (the default) when ``headers()`` is enough."""
        return None

    def url_setting(self) -> str:
        """The option that sets the service's URL, named in connection errors (``base_url`` unless overridden)."""
        return "base_url"

    async def initialize(self) -> None:
        pool = await self.get_resource("http_clients", factory=self._new_pool, cleanup=ClientPool.aclose, per_loop=True)
        policy = RetryPolicy(
            attempts=1 + self.max_retries, budget_s=self.retry_budget, retry_connect=self.retry_connect,
            max_retry_after_s=self.max_retry_after,
        )
        client = pool.acquire(self.base_url.rstrip("/") + "/")
        self.endpoint = Endpoint(
            client, self._secret_headers(), self.timeout, policy, self.plugin_id,
            max_response_bytes=self.max_response_bytes, max_event_bytes=self.max_event_bytes, auth=self.auth(),
            url_setting=self.url_setting(),
        )

    async def cleanup(self) -> None:
        await self.endpoint.client.aclose()  # the handle; the pool is released by the base lifecycle
        del self.endpoint

    def _new_pool(self) -> ClientPool:
        return ClientPool(self.shared_resource("http_ssl_context", httpx.create_ssl_context))

    def _secret_headers(self) -> SecretHeaders:
        """``headers()`` with the defaults, kept secret until sent; every ``SecretStr`` option is registered for redaction first,
        so a key the service echoes back shows as ``***`` in errors and logs."""
        remember_options(self)
        return SecretHeaders(with_default_headers(self.headers()))


__all__ = [
    "ClientPool",
    "Endpoint",
    "PooledClient",
    "RemoteProvider",
    "RetryPolicy",
    "SecretHeaders",
    "bearer",
    "EventTooLarge",
    "SSEDecoder",
    "ServerSentEvent",
    "DEFAULT_HEADERS",
    "environment_proxy",
    "error_for_exception",
    "error_for_status",
    "json_body",
    "parse_event_data",
    "post_json",
    "remember",
    "stream_sse",
    "with_default_headers",
]
