"""PepperPy's HTTP edge sends through httpx's transport, not an ``httpx.AsyncClient`` (pepperpy/http.py): what the
client did for it is done here, and shown against servers on 127.0.0.1: the proxy the environment names (through
a forward proxy, tests/servers/forward_proxy.py), the client's default headers (a provider's own win), compressed
answers decoded, an ``httpx.Auth`` that needs the service's answer before it signs, errors naming the URL."""

from __future__ import annotations

import asyncio
import gzip
import json

import httpx
import pytest

from pepperpy import PepperPy
from pepperpy.errors import AuthenticationError, LLMError
from pepperpy.http import environment_proxy, with_default_headers
from tests.integration.conftest import free_port
from tests.servers.forward_proxy import ForwardProxy
from tests.servers.scripted import Reply, chat_answer

pytestmark = pytest.mark.integration

# The proxy tests take builtin_manager (a manager of their own): a pool keeps the proxy it read when a base URL was
# first used on the loop, so a proxy set with the session's manager would reach later tests' calls.
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY", "http_proxy", "https_proxy", "all_proxy", "no_proxy")


@pytest.fixture
def no_proxy_settings(monkeypatch):
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def openai(manager, base_url: str, **options) -> PepperPy:
    return PepperPy(plugin_manager=manager).with_llm("openai", base_url=base_url, api_key="k", max_retries=0, **options)


async def test_requests_go_through_the_proxy_the_environment_names(builtin_manager, scripted, no_proxy_settings):
    scripted.reset(Reply(json=chat_answer("via the proxy")))
    proxy = await ForwardProxy().start()
    no_proxy_settings.setenv("HTTP_PROXY", proxy.url)
    try:
        async with openai(builtin_manager, scripted.base_url) as pepper:
            assert (await pepper.chat.with_user("hi").generate()).content == "via the proxy"
    finally:
        await proxy.aclose()
    assert proxy.request_lines == [f"POST {scripted.base_url}/chat/completions"]
    assert len(scripted.requests) == 1


async def test_no_proxy_sends_straight_to_the_service(builtin_manager, scripted, no_proxy_settings):
    scripted.reset(Reply(json=chat_answer("direct")))
    proxy = await ForwardProxy().start()
    no_proxy_settings.setenv("HTTP_PROXY", proxy.url)
    no_proxy_settings.setenv("NO_PROXY", "example.com,127.0.0.1")
    try:
        async with openai(builtin_manager, scripted.base_url) as pepper:
            assert (await pepper.chat.with_user("hi").generate()).content == "direct"
    finally:
        await proxy.aclose()
    assert proxy.request_lines == [] and len(scripted.requests) == 1


@pytest.mark.parametrize(("settings", "url", "expected"), [
    ({}, "https://api.example.com/v1/", None),
    ({"HTTPS_PROXY": "http://proxy:3128"}, "https://api.example.com/v1/", "http://proxy:3128"),
    ({"HTTPS_PROXY": "proxy:3128"}, "https://api.example.com/v1/", "http://proxy:3128"),  # no scheme: http://
    ({"HTTPS_PROXY": "http://proxy:3128"}, "http://api.example.com/v1/", None),  # for https only
    ({"ALL_PROXY": "socks5://proxy:1080"}, "http://api.example.com/v1/", "socks5://proxy:1080"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "*"}, "https://api.example.com/", None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "https://api.example.com/", None),  # subdomains too
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "example.com"}, "https://example.com/", None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com"}, "https://example.com/", "http://p:1"),  # only subdomains
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "ample.com"}, "https://example.com/", "http://p:1"),  # not a suffix match
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "::1"}, "https://[::1]:8080/", None),
    ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1:8080"}, "http://127.0.0.1:8080/v1/", None),  # host:port
    ({"HTTP_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1:8080"}, "http://127.0.0.1:9090/v1/", "http://p:1"),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "api.example.com:443"}, "https://api.example.com/", None),
    ({"HTTPS_PROXY": "http://p:1", "NO_PROXY": "[::1]:8080"}, "https://[::1]:8080/", None),
])
def test_environment_proxy_reads_the_variables_as_httpx_does(no_proxy_settings, settings, url, expected):
    for name, value in settings.items():
        no_proxy_settings.setenv(name, value)
    assert environment_proxy(httpx.URL(url)) == expected


async def test_the_client_default_headers_are_sent(remote_manager, scripted):
    scripted.reset(Reply(json=chat_answer("a")))
    async with openai(remote_manager, scripted.base_url) as pepper:
        await pepper.chat.with_user("hi").generate()
    headers = scripted.requests[0].headers
    assert headers["user-agent"] == f"python-httpx/{httpx.__version__}" and headers["accept"] == "*/*"
    assert headers["content-type"] == "application/json" and headers["authorization"] == "Bearer k"
    assert headers["accept-encoding"] == "gzip, deflate" and headers["host"] == scripted.base_url.split("/")[2]
    assert json.loads(scripted.requests[0].body)["messages"] == [{"role": "user", "content": "hi"}]


def test_a_providers_own_header_replaces_the_default_of_that_name():
    headers = with_default_headers({"user-agent": "mine/1.0", "X-Api-Key": "k"})
    assert [name for name in headers if name.lower() == "user-agent"] == ["user-agent"]
    assert headers["user-agent"] == "mine/1.0" and headers["Accept"] == "*/*" and list(headers)[:2] == ["user-agent", "X-Api-Key"]


async def test_a_compressed_answer_is_decoded(remote_manager, scripted):
    body = gzip.compress(json.dumps(chat_answer("unzipped")).encode())
    scripted.reset(Reply(raw=body, headers={"content-encoding": "gzip"}))
    async with openai(remote_manager, scripted.base_url) as pepper:
        assert (await pepper.chat.with_user("hi").generate()).content == "unzipped"


async def test_a_compressed_stream_is_decoded(remote_manager):
    """The scripted server writes events uncompressed; this bare server sends one gzip-compressed SSE body."""
    events = [{"choices": [{"index": 0, "delta": {"content": word}, "finish_reason": None}]} for word in ("a", "b")]
    events.append({"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    body = gzip.compress(("".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n").encode())

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(v) for k, _, v in (line.partition(b":") for line in head.split(b"\r\n")) if k.lower() == b"content-length")
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncontent-encoding: gzip\r\n"
                     b"content-length: %d\r\n\r\n" % len(body) + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    base_url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        async with openai(remote_manager, base_url) as pepper:
            pieces = [chunk.content async for chunk in pepper.chat.with_user("hi").stream()]
    finally:
        server.close()
        await server.wait_closed()
    assert "".join(pieces) == "ab"


class AnswerFirst(httpx.Auth):
    """Sends once unsigned, reads the service's 401 challenge, then sends again with the token it names: an
    ``httpx.Auth`` whose flow needs the answer (as Digest authentication does)."""

    async def async_auth_flow(self, request: httpx.Request):
        response = yield request
        if response.status_code == 401:
            request.headers["Authorization"] = f"Token {response.headers['x-challenge']}"
            yield request


async def test_an_auth_flow_that_reads_the_answer_signs_the_second_request(remote_manager, scripted):
    scripted.reset(
        Reply(status=401, headers={"x-challenge": "abc"}, json={"error": {"message": "sign it"}}),
        Reply(json=chat_answer("signed")),
    )
    async with openai(remote_manager, scripted.base_url) as pepper:
        pepper.llm.endpoint.auth = AnswerFirst()  # what a provider's auth() returns
        assert (await pepper.chat.with_user("hi").generate()).content == "signed"
    assert [r.headers["authorization"] for r in scripted.requests] == ["Bearer k", "Token abc"]


async def test_a_connection_error_names_the_url(remote_manager):
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    async with openai(remote_manager, base_url) as pepper:
        with pytest.raises(LLMError, match=f"cannot connect to {base_url}/chat/completions"):
            await pepper.chat.with_user("hi").generate()


async def test_a_proxy_that_refuses_the_connection_is_named_in_the_error(builtin_manager, no_proxy_settings):
    no_proxy_settings.setenv("HTTP_PROXY", f"http://user:proxy-pass-5e1f@127.0.0.1:{free_port()}")
    async with openai(builtin_manager, "http://api.example.invalid/v1") as pepper:
        with pytest.raises(LLMError) as raised:
            await pepper.chat.with_user("hi").generate()
    message = str(raised.value)
    assert "cannot connect to the proxy http://user:***@127.0.0.1:" in message and "HTTP_PROXY" in message
    assert "http://api.example.invalid/v1/chat/completions" in message and "proxy-pass-5e1f" not in message


async def test_googles_answer_to_a_bad_key_is_an_authentication_error(remote_manager, scripted):
    """Google answers an invalid key with HTTP 400 (INVALID_ARGUMENT, reason API_KEY_INVALID), not 401."""
    scripted.reset(Reply(status=400, json={"error": {
        "code": 400, "message": "API key not valid. Please pass a valid API key.", "status": "INVALID_ARGUMENT",
        "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID", "domain": "googleapis.com"}],
    }}))
    pepper = PepperPy(plugin_manager=remote_manager).with_llm("gemini", base_url=scripted.base_url, api_key="bad", max_retries=0)
    async with pepper:
        with pytest.raises(AuthenticationError, match="API key not valid.*check the API key"):
            await pepper.chat.with_user("hi").generate()
    assert len(scripted.requests) == 1
