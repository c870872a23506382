"""The HTTP edge's one retry rule and its size caps, counted in requests a server received.

Rule (pepperpy/http.py's docstring): retry what never reached the service (connect
errors), 429/503 after their Retry-After, 408 and other 5xx with backoff, all within the
retry budget; never retry a read timeout, a connection dropped after the request was
sent, or a body cut short after a 2xx — those say the request may have been processed.

Most cases run llm/openai and embeddings/openai against the scripted server
(tests/servers/scripted.py), since no real service fails on demand. Two cases need what
the scripted server cannot do — refuse connections until it starts listening, and hang up
after reading a request without answering — so ``RawServer`` below, a bare asyncio
socket server of a few lines, plays the service there.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
from email.utils import format_datetime
from datetime import datetime, timedelta, timezone

import pytest
from loguru import logger

from pepperpy import PepperPy
from pepperpy.errors import ConfigError, LLMError, ProviderError, ProviderTimeoutError, RateLimitError
from tests.integration.conftest import free_port
from tests.servers.scripted import Reply, chat_answer, chat_stream_events

pytestmark = pytest.mark.integration
PROCESSED = re.escape("the service may have processed (and billed) the request, so it was not sent again")


def openai(manager, base_url: str, **options) -> PepperPy:
    settings = {"api_key": "k", "max_retries": 2, "retry_budget": 5, "timeout": 5} | options
    return PepperPy(plugin_manager=manager).with_llm("openai", base_url=base_url, **settings)


@pytest.fixture
async def pepper(remote_manager, scripted):
    async with openai(remote_manager, scripted.base_url) as ready:
        yield ready


def ask(pepper):
    return pepper.chat.with_user("hi")


def error_reply(status: int, **headers: str) -> Reply:
    return Reply(status=status, headers=headers, json={"error": {"message": f"scripted {status}"}})


# -- retried: the request never reached the service, or the service said "later" --------------------


class RawServer:
    """A bare HTTP/1.1 listener on a port chosen before it listens, for what the scripted server cannot show.

    ``listen()`` starts accepting on ``port``; until then connections are refused. With
    ``hang_up=True`` it reads each request and closes the connection without a word.
    """

    def __init__(self, hang_up: bool = False) -> None:
        self.port = free_port()
        self.hang_up = hang_up
        self.requests = 0
        self.server: asyncio.Server | None = None

    def listen(self) -> None:
        """Bind and listen now (connections queue at once), serving from the running loop."""
        sock = socket.socket()
        sock.bind(("127.0.0.1", self.port))
        sock.listen(16)
        asyncio.get_running_loop().create_task(self._serve(sock))

    async def _serve(self, sock: socket.socket) -> None:
        self.server = await asyncio.start_server(self._answer, sock=sock)

    async def _answer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = next(int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length"))
        await reader.readexactly(length)
        self.requests += 1
        if not self.hang_up:
            body = json.dumps(chat_answer("reached")).encode()
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(body) + body)
            await writer.drain()
        writer.close()

    async def aclose(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()


async def test_a_refused_connection_is_retried_and_reaches_the_service_once_it_listens(remote_manager):
    """Nothing listens at the first attempt; the server starts listening when that failure is logged."""
    server = RawServer()
    logger.enable("pepperpy")
    sink = logger.add(lambda m: server.listen() if "cannot connect" in m and server.server is None else None, level="INFO")
    try:
        async with openai(remote_manager, f"http://127.0.0.1:{server.port}/v1") as pepper:
            result = await ask(pepper).generate()
    finally:
        logger.remove(sink)
        logger.disable("pepperpy")
        await server.aclose()
    assert result.content == "reached"
    assert server.requests == 1


async def test_a_connection_dropped_after_the_request_was_sent_is_not_retried(remote_manager):
    server = RawServer(hang_up=True)
    server.listen()
    try:
        async with openai(remote_manager, f"http://127.0.0.1:{server.port}/v1") as pepper:
            with pytest.raises(LLMError, match=rf"broke off after the request was sent .*; {PROCESSED}") as raised:
                await ask(pepper).generate()
    finally:
        await server.aclose()
    assert server.requests == 1
    assert not raised.value.retryable


@pytest.mark.parametrize("status", [408, 500, 502, 503, 504])
async def test_408_and_5xx_are_retried_within_the_budget(pepper, scripted, status):
    scripted.reset(error_reply(status), Reply(json=chat_answer("second try")))
    assert (await ask(pepper).generate()).content == "second try"
    assert len(scripted.requests) == 2


async def test_503_retry_after_is_honored(pepper, scripted):
    scripted.reset(error_reply(503, **{"retry-after": "0.1"}), Reply(json=chat_answer("after the wait")))
    assert (await ask(pepper).generate()).content == "after the wait"
    assert len(scripted.requests) == 2


async def test_503_retry_after_beyond_the_budget_is_not_waited_for(pepper, scripted):
    """retry_budget=5: a 503 asking for 60 s is raised at once (without Retry-After it would be retried)."""
    scripted.reset(error_reply(503, **{"retry-after": "60"}), Reply(json=chat_answer("never asked")))
    with pytest.raises(ProviderError, match="HTTP 503.*scripted 503") as raised:
        await ask(pepper).generate()
    assert len(scripted.requests) == 1
    assert raised.value.retry_after == 60


@pytest.mark.parametrize(("offset", "requests"), [(timedelta(hours=1), 1), (timedelta(hours=-1), 2)], ids=["future", "past"])
async def test_retry_after_as_an_http_date(pepper, scripted, offset, requests):
    when = format_datetime(datetime.now(timezone.utc) + offset, usegmt=True)
    scripted.reset(error_reply(429, **{"retry-after": when}), Reply(json=chat_answer("ok")))
    if requests == 1:
        with pytest.raises(RateLimitError):
            await ask(pepper).generate()
    else:
        assert (await ask(pepper).generate()).content == "ok"
    assert len(scripted.requests) == requests


async def test_a_4xx_is_never_retried(pepper, scripted):
    scripted.reset(error_reply(422), Reply(json=chat_answer("never asked")))
    with pytest.raises(ProviderError, match="HTTP 422"):
        await ask(pepper).generate()
    assert len(scripted.requests) == 1


# -- never retried: the service has the request -----------------------------------------------------


async def test_a_json_body_cut_short_after_200_is_not_retried(pepper, scripted):
    """The scripted server sends the first chunk of a chunked 200 body, then closes the connection."""
    body = json.dumps(chat_answer("a whole answer"))
    scripted.reset(Reply(events=[body[:40], body[40:]], cut_after=1), Reply(json=chat_answer("must not be asked")))
    with pytest.raises(LLMError, match=rf"the answer from .* broke off after HTTP 200 .*; {PROCESSED}") as raised:
        await ask(pepper).generate()
    assert len(scripted.requests) == 1
    assert not raised.value.retryable


async def test_a_stream_cut_after_200_before_any_event_is_not_retried(pepper, scripted):
    scripted.reset(Reply(events=chat_stream_events(["never"]), cut_after=0), Reply(events=chat_stream_events(["again"])))
    with pytest.raises(LLMError, match=rf"broke off after HTTP 200 .*; {PROCESSED}"):
        async for _ in ask(pepper).stream():
            pass
    assert len(scripted.requests) == 1


async def test_an_error_status_before_a_stream_is_still_retried(pepper, scripted):
    scripted.reset(error_reply(503), Reply(events=chat_stream_events(["a", "b"])))
    assert "".join([c.content async for c in ask(pepper).stream()]) == "ab"
    assert len(scripted.requests) == 2


async def test_a_hanging_embeddings_service_is_asked_once_and_the_error_says_it_may_have_processed_it(
    remote_manager, scripted
):
    """embeddings/openai has no LLM guard around it: the HTTP edge's own deadline answers."""
    hang = Reply(delay=30, json={"data": [{"index": 0, "embedding": [1.0]}]})
    scripted.reset(hang, hang, hang)
    pepper = PepperPy(plugin_manager=remote_manager).with_embeddings(
        "openai", base_url=scripted.base_url, api_key="k", timeout=0.5, max_retries=2, retry_budget=30
    )
    async with pepper:
        with pytest.raises(ProviderTimeoutError, match="if the request reached the service, it may have been processed"):
            await pepper.provider("embeddings").embed(["some text"])
    assert len(scripted.requests) == 1


# -- size caps ---------------------------------------------------------------------------------------


async def test_an_answer_over_max_response_bytes_is_refused_naming_the_cap(remote_manager, scripted):
    scripted.reset(Reply(json=chat_answer("x" * 5000)), Reply(json=chat_answer("must not be asked")))
    async with openai(remote_manager, scripted.base_url, max_response_bytes=1000) as pepper:
        with pytest.raises(LLMError) as raised:
            await ask(pepper).generate()
    message = str(raised.value)
    assert message.startswith("llm/openai: the answer from http://127.0.0.1:")
    assert "is larger than max_response_bytes=1000 bytes" in message
    assert message.endswith("raise max_response_bytes=... if answers this large are expected")
    assert len(scripted.requests) == 1


async def test_a_chunked_answer_without_a_length_is_cut_at_the_cap(remote_manager, scripted):
    """No content-length to refuse up front: the body is counted as it arrives, and the client hangs up."""
    pieces = [json.dumps(chat_answer("y" * 600))] * 40  # 40 chunks of about 800 bytes
    scripted.reset(Reply(events=pieces, pauses={index: 0.2 for index in range(40)}))
    async with openai(remote_manager, scripted.base_url, max_response_bytes=2000) as pepper:
        with pytest.raises(LLMError, match="is larger than max_response_bytes=2000 bytes"):
            await ask(pepper).generate()
    (request,) = scripted.requests
    assert not request.finished and request.sent < 40


async def test_embeddings_answers_are_capped_too(remote_manager, scripted):
    scripted.reset(Reply(json={"data": [{"index": 0, "embedding": [0.123456789] * 1000}]}))
    pepper = PepperPy(plugin_manager=remote_manager).with_embeddings(
        "openai", base_url=scripted.base_url, api_key="k", max_response_bytes=4096
    )
    async with pepper:
        with pytest.raises(ProviderError, match=r"embeddings/openai: the answer .* max_response_bytes=4096") as raised:
            await pepper.provider("embeddings").embed(["some text"])
    assert not isinstance(raised.value, LLMError)


async def test_a_stream_event_over_max_event_bytes_is_refused_naming_the_cap(remote_manager, scripted):
    events = chat_stream_events(["fine ", "z" * 3000, "never"])
    scripted.reset(Reply(events=events))
    received = []
    async with openai(remote_manager, scripted.base_url, max_event_bytes=1000) as pepper:
        with pytest.raises(LLMError) as raised:
            async for chunk in ask(pepper).stream():
                received.append(chunk.content)
    message = str(raised.value)
    assert message.startswith("llm/openai: one event of the stream from http://127.0.0.1:")
    assert "is larger than max_event_bytes=1000 bytes" in message and message.endswith("are expected")
    assert "".join(received) == "fine "
    assert len(scripted.requests) == 1


async def test_a_large_error_body_keeps_the_start_of_the_message(pepper, scripted):
    scripted.reset(Reply(status=400, raw=b'{"error": {"message": "too long: ' + b"w" * 500_000 + b'"}}'))
    with pytest.raises(ProviderError, match=r"HTTP 400 from .*too long: www") as raised:
        await ask(pepper).generate()
    assert len(str(raised.value)) < 2000


@pytest.mark.parametrize("option", ["max_response_bytes", "max_event_bytes"])
def test_a_cap_must_be_positive(remote_manager, option):
    with pytest.raises(ConfigError, match=rf"option '{option}' for llm/openai: .*greater than 0"):
        openai(remote_manager, "http://127.0.0.1:9/v1", **{option: 0})
