"""httpcore's trace for one request (pepperpy.http._Attempt): it learns whether the request opened a new
connection, then stops, so that the request's later steps are not traced (they would cost every call ~1.5%)."""

from __future__ import annotations

import asyncio

import httpcore
import httpx

from pepperpy.http import _Attempt


def request(attempt: _Attempt) -> httpcore.Request:
    return httpcore.Request("POST", "http://127.0.0.1/v1/chat", extensions=attempt.extensions(30.0))


async def test_a_new_connection_is_seen_and_the_trace_stops_at_the_first_http_step():
    attempt = _Attempt()
    req = request(attempt)
    trace = req.extensions["trace"]
    await trace("connection.connect_tcp.started", {"host": "127.0.0.1"})
    await trace("connection.connect_tcp.complete", {"return_value": None})
    assert attempt.new_connection and "trace" in req.extensions, "the connection steps come before the request's"
    await trace("http11.send_request_headers.started", {"request": req})
    assert "trace" not in req.extensions
    assert attempt.new_connection and not attempt.answered


async def test_a_reused_connection_reports_no_connect_step():
    attempt = _Attempt()
    req = request(attempt)
    await req.extensions["trace"]("http11.send_request_headers.started", {"request": req})
    assert not attempt.new_connection and "trace" not in req.extensions


async def test_a_real_request_is_traced_through_its_first_http_step_only():
    """Against a local server answering on keep-alive: the second request reuses the connection."""
    answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.readuntil(b"\r\n\r\n"):
                writer.write(answer)
        except (asyncio.IncompleteReadError, ConnectionError):  # the client closed its connection
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    requests: list[list[str]] = []
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}/") as client:
            for _ in range(2):
                attempt, events = _Attempt(), []
                requests.append(events)
                traced = attempt._trace

                async def recording(event: str, info: dict, traced=traced, events=events) -> None:
                    events.append(event)
                    await traced(event, info)

                async with client.stream("GET", "x", extensions={"trace": recording}) as response:
                    await response.aread()
                assert response.json() == {} and attempt.new_connection == (len(requests) == 1)
    finally:
        server.close()
        await server.wait_closed()
    first, second = requests
    assert first == ["connection.connect_tcp.started", "connection.connect_tcp.complete",
                     "http11.send_request_headers.started", "http11.send_request_headers.complete"]
    assert second == ["http11.send_request_headers.started", "http11.send_request_headers.complete"]


def test_the_timeout_extension_is_the_one_httpx_builds_from_the_number():
    """The request carries ``timeout_s`` for every phase, as ``build_request(timeout=timeout_s)`` would set it."""
    client = httpx.AsyncClient(base_url="http://127.0.0.1/")
    ours = client.build_request("POST", "x", extensions=_Attempt().extensions(12.5))
    theirs = client.build_request("POST", "x", timeout=12.5)
    assert ours.extensions["timeout"] == theirs.extensions["timeout"] == httpx.Timeout(12.5).as_dict()
