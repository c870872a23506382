"""One session with one MCP server through the ``mcp`` SDK's ``Client`` (see README.md).

The SDK's transports are anyio context managers that must be left in the task that entered
them, while a facade may close from any task: so one runner task per session enters the
transport and the client, sets ``ready``, waits for ``stop`` and leaves them (the SDK's stdio
transport then closes the server's stdin, waits, and kills its process tree: the process is reaped).
"""

from __future__ import annotations

import asyncio
import collections
import json
import os
import threading
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from typing import Any

import pepperpy
from pepperpy.errors import ConfigError, ToolError
from pepperpy.parts import Image, TextPart
from pepperpy.plugins import PepperpyPlugin

STDERR_TAIL_LINES, STDERR_LINE_CHARS = 5, 300  # what a start failure quotes of the server's stderr
STDERR_WAIT_S = 2.0  # how long a start failure waits for the rest of that stderr

# sample(messages as role/content dicts, system prompt, max_tokens) -> (answer text, model name)
Sample = Callable[[list[dict[str, Any]], str | None, int], Awaitable[tuple[str, str]]]


class MCPClient(PepperpyPlugin):
    """A session with the server described by ``spec`` (set by pepperpy.mcp before ``initialize()``)."""

    # Plain attributes, not options (their headers and env stay out of reprs):
    spec = None  # pepperpy.mcp.MCPServer, set before initialize()
    sample = None  # a Sample answering sampling requests; None refuses them
    listed = None  # the server's tools (the SDK's Tool objects); None until listed, and after a change

    async def initialize(self) -> None:
        await self._start()

    async def cleanup(self) -> None:
        await self._stop()

    # -- the runner ------------------------------------------------------------------

    async def _start(self) -> None:
        self.listed = None
        self._ready = asyncio.Event()
        self._stopping = asyncio.Event()
        self._client: Any = None
        self._runner = asyncio.ensure_future(self._run())
        waiter = asyncio.ensure_future(self._ready.wait())
        try:
            await asyncio.wait({waiter, self._runner}, timeout=self.spec.connect_timeout, return_when=asyncio.FIRST_COMPLETED)
        finally:
            waiter.cancel()
        if self._ready.is_set():
            return
        failure = self._runner.exception() if self._runner.done() and not self._runner.cancelled() else None
        await self._stop()
        what = f"failed: {_describe(failure)}" if failure else f"did not answer within {self.spec.connect_timeout:g} s"
        raise ToolError(f"MCP server {self.spec.name!r}: starting it {what}{await self._last_stderr()}; "
                        f"{self.spec.hint()}") from failure

    async def _last_stderr(self) -> str:
        """The last lines a stdio server wrote on stderr (its traceback, when it died starting), for an error."""
        reader = getattr(self, "_stderr_reader", None)
        if reader is None:
            return ""
        await asyncio.to_thread(reader.join, STDERR_WAIT_S)  # the pipe ends when the process has exited
        lines = list(self._stderr_tail)
        return f"; its stderr ended with: {self.spec.redacted(' | '.join(lines))}" if lines else ""

    async def _run(self) -> None:
        import mcp_types as types
        from mcp import Client

        async with AsyncExitStack() as stack:
            transport = await self._transport(stack)
            client = Client(
                transport, sampling_callback=self._sampling if self.sample is not None else None,
                message_handler=self._on_message, cache=None, read_timeout_seconds=self.spec.tool_timeout,
                client_info=types.Implementation(name="pepperpy", version=pepperpy.__version__),
            )
            self._client = await stack.enter_async_context(client)
            listener = asyncio.ensure_future(self._listen(self._client))
            try:
                self._ready.set()
                await self._stopping.wait()
            finally:
                listener.cancel()
                await asyncio.wait({listener})

    async def _listen(self, client: Any) -> None:
        """Forget the tool list on each change the server announces (a 2026-07-28 server: subscriptions/listen;
        an older one sends notifications/tools/list_changed, see _on_message)."""
        try:
            async with client.listen(tools_list_changed=True) as events:
                async for _event in events:
                    self.listed = None
        except Exception as exc:  # an older protocol, or the session ended
            self.logger.debug("MCP server {}: no change events: {}", self.spec.name, _describe(exc))

    async def _transport(self, stack: AsyncExitStack) -> Any:
        spec = self.spec
        if spec.url is not None:
            from mcp.client.streamable_http import streamable_http_client
            from mcp.shared._httpx_utils import create_mcp_http_client

            http = await stack.enter_async_context(create_mcp_http_client(headers=dict(spec.headers)))
            return streamable_http_client(spec.url, http_client=http)
        from mcp.client.stdio import StdioServerParameters, get_default_environment, stdio_client

        env = {**get_default_environment(), **spec.env} if spec.env else None
        parameters = StdioServerParameters(command=spec.command, args=list(spec.args), env=env, cwd=spec.cwd)
        return stdio_client(parameters, errlog=self._stderr_to_log(stack))

    def _stderr_to_log(self, stack: AsyncExitStack) -> Any:
        """A pipe for the server's stderr; a thread logs each line under the server's name until the pipe ends."""
        read_fd, write_fd = os.pipe()
        name = self.spec.name
        log = self.logger.bind(mcp_server=name)
        tail = self._stderr_tail = collections.deque(maxlen=STDERR_TAIL_LINES)

        def forward() -> None:
            with open(read_fd, encoding="utf-8", errors="replace") as lines:
                for line in lines:
                    log.info("MCP server {}: {}", name, line.rstrip())
                    tail.append(line.rstrip()[:STDERR_LINE_CHARS])

        self._stderr_reader = threading.Thread(target=forward, name=f"pepperpy-mcp-{name}-stderr", daemon=True)
        self._stderr_reader.start()
        errlog = open(write_fd, "w")  # noqa: SIM115 - closed with the session; the child keeps its own copy
        stack.callback(errlog.close)
        return errlog

    async def _stop(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is None:
            return
        self._runner = None
        self._client = None
        self._stopping.set()
        if not self._ready.is_set():
            runner.cancel()  # still starting (a handshake that never ends): the transport's exit reaps the process
        try:
            await asyncio.shield(runner)
        except asyncio.CancelledError:
            if not runner.done():
                raise
        except Exception as exc:  # the server had died already: nothing left to close
            self.logger.debug("MCP server {}: session ended with {}", self.spec.name, _describe(exc))

    def _running(self) -> bool:
        return self._client is not None and self._runner is not None and not self._runner.done()

    async def _alive(self) -> Any:
        """The client, starting the server again when its session ended (it crashed or was stopped)."""
        if not self._running():
            await self._stop()
            await self._start()
        return self._client

    # -- what pepperpy.mcp calls ---------------------------------------------------------

    async def list_tools(self) -> list[Any]:
        """The server's tools, listed once and again after it announced a change."""
        if self.listed is None:
            client = await self._alive()
            tools: list[Any] = []
            cursor = None
            try:
                while True:
                    page = await asyncio.wait_for(client.list_tools(cursor=cursor), self.spec.tool_timeout)
                    tools += page.tools
                    cursor = page.next_cursor
                    if cursor is None:
                        break
            except Exception as exc:
                raise ToolError(f"MCP server {self.spec.name!r}: listing its tools failed: {_describe(exc)}") from exc
            self.listed = tools
        return self.listed

    async def call(self, tool: str, arguments: dict[str, Any]) -> tuple[list[Any], bool]:
        """Call ``tool``: its content as parts, and whether the tool reported an error."""
        client = await self._alive()
        where = f"MCP server {self.spec.name!r}, tool {tool!r}"
        try:
            result = await asyncio.wait_for(client.call_tool(tool, arguments), self.spec.tool_timeout)
        except Exception as exc:
            code = _error_code(exc)
            if code is not None and code not in (_CONNECTION_CLOSED, _REQUEST_TIMEOUT) and self._running():
                return [TextPart(text=exc.error.message)], True  # type: ignore[attr-defined] # answered: the model is told
            await self._stop()  # a dead or hung server is started again on the next call
            if isinstance(exc, TimeoutError) or code == _REQUEST_TIMEOUT:
                raise ToolError(
                    f"{where}: no answer within tool_timeout={self.spec.tool_timeout:g} s; "
                    "pass a larger tool_timeout= to MCPServer if the tool is slow"
                ) from None
            raise ToolError(f"{where}: the call failed: {_describe(exc)}; {self.spec.hint()}") from exc
        return _parts(result, where), bool(result.is_error)

    # -- from the server -----------------------------------------------------------------

    async def _on_message(self, message: Any) -> None:
        if getattr(message, "method", None) == "notifications/tools/list_changed":
            self.listed = None
        elif isinstance(message, Exception):
            self.logger.warning("MCP server {}: {}", self.spec.name, _describe(message))

    async def _sampling(self, context: Any, params: Any) -> Any:
        import mcp_types as types

        assert self.sample is not None
        messages = [{"role": m.role, "content": _sampled_text(m.content)} for m in params.messages]
        try:
            text, model = await self.sample(messages, params.system_prompt, params.max_tokens)
        except Exception as exc:
            return types.ErrorData(code=types.INTERNAL_ERROR, message=f"the client's LLM failed: {_describe(exc)}")
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=text), model=model, stop_reason="endTurn"
        )


def _sampled_text(content: Any) -> str:
    blocks = content if isinstance(content, list) else [content]
    return "".join(getattr(block, "text", "") or "" for block in blocks)


def _parts(result: Any, where: str) -> list[Any]:
    """A tool result's content as parts: text as text, images as image parts, other blocks as their JSON."""
    parts: list[Any] = []
    for block in result.content:
        kind = getattr(block, "type", None)
        if kind == "text":
            parts.append(TextPart(text=block.text))
        elif kind == "image":
            try:
                parts.append(Image(_b64(block.data), block.mime_type))
            except (ConfigError, ValueError) as exc:
                raise ToolError(f"{where}: the server sent an image that is not valid base64 {block.mime_type}: {exc}") from exc
        else:
            parts.append(TextPart(text=json.dumps(block.model_dump(mode="json", exclude_none=True, by_alias=True))))
    if result.structured_content is not None and not any(isinstance(p, TextPart) for p in parts):
        parts.append(TextPart(text=json.dumps(result.structured_content, default=str)))
    return parts or [TextPart(text="")]


def _b64(data: str) -> bytes:
    import base64

    return base64.b64decode(data, validate=True)


_CONNECTION_CLOSED, _REQUEST_TIMEOUT = -32000, -32001  # the SDK's codes for a lost session and its own timeout


def _error_code(exc: BaseException) -> int | None:
    """The JSON-RPC code of an error the SDK raised for an answer (``MCPError``); None for any other failure."""
    code = getattr(getattr(exc, "error", None), "code", None)
    return code if isinstance(code, int) else None


def _describe(exc: BaseException | None) -> str:
    if exc is None:
        return "no reason given"
    if isinstance(exc, BaseExceptionGroup):
        return "; ".join(_describe(e) for e in exc.exceptions)
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
