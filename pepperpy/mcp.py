"""MCP servers as tools: ``chat.with_tools(MCPServer.stdio("python", "server.py"))``.

An ``MCPServer`` is a description (how to start or reach the server, and which of its tools a
chat offers); it opens nothing. The session opens in the facade's when a chat of that facade
first needs the tools (one session per server and facade, shared by its chats, closed with the
facade's providers). The ``mcp`` SDK speaks the protocol; it lives in the ``mcp/client`` plugin
folder (plugins/mcp_client), whose requirements are installed on that first use, so importing this
module costs nothing more than PepperPy.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from pepperpy._redact import is_secret_option, redact, remember
from pepperpy.errors import ConfigError
from pepperpy.parts import TextPart
from pepperpy.tools import Approve, Tool

DEFAULT_TOOL_TIMEOUT_S = 60.0
DEFAULT_CONNECT_TIMEOUT_S = 30.0
_STDIO_KEYS = {"command", "args", "env", "cwd"}
_HTTP_KEYS = {"url", "headers"}
_CONFIG_KEYS = _STDIO_KEYS | _HTTP_KEYS | {"type", "disabled"}


class MCPServer:
    """An MCP server whose tools a chat may use, over stdio (``MCPServer.stdio``) or Streamable HTTP
    (``MCPServer.http``), or each server of an ``mcpServers`` file (``MCPServer.from_config``).

    ``tool_timeout`` bounds each call (seconds; a ToolError past it); ``sampling=True`` lets the server ask
    the facade's LLM for completions (refused otherwise). ``server.tools(include=, exclude=, prefix=)``
    narrows and renames what a chat offers.
    """

    def __init__(
        self, name: str, *, command: str | None = None, args: Iterable[str] = (), env: dict[str, str] | None = None,
        cwd: str | None = None, url: str | None = None, headers: dict[str, str] | None = None,
        tool_timeout: float = DEFAULT_TOOL_TIMEOUT_S, connect_timeout: float = DEFAULT_CONNECT_TIMEOUT_S,
        sampling: bool = False,
    ):
        if (command is None) == (url is None):
            raise ConfigError(f"MCP server {name!r}: give either command= (stdio) or url= (Streamable HTTP)")
        for label, value in (("tool_timeout", tool_timeout), ("connect_timeout", connect_timeout)):
            if not isinstance(value, (int, float)) or not 0 < value < float("inf"):
                raise ConfigError(f"MCP server {name!r}: {label} must be a positive number of seconds, got {value!r}")
        self.name = name
        self.command, self.args, self.env, self.cwd = command, tuple(args), dict(env or {}), cwd
        self.url, self.headers = url, dict(headers or {})
        _remember_secrets(self)
        self.tool_timeout, self.connect_timeout, self.sampling = float(tool_timeout), float(connect_timeout), sampling
        self._include: frozenset[str] | None = None
        self._exclude: frozenset[str] = frozenset()
        self._prefix = ""
        self._approve: Approve | None = None
        self._key = object()  # what the facade keeps the session under: views from tools() share it
        self._built: tuple[Any, Any, list[Tool]] | None = None

    @classmethod
    def stdio(
        cls, command: str, *args: str, env: dict[str, str] | None = None, cwd: str | None = None, name: str | None = None,
        **options: Any,
    ) -> MCPServer:
        """A server run as a child process speaking MCP on stdin/stdout; its stderr goes to PepperPy's log."""
        return cls(name or Path(args[-1] if args else command).stem, command=command, args=args, env=env, cwd=cwd, **options)

    @classmethod
    def http(cls, url: str, headers: dict[str, str] | None = None, *, name: str | None = None, **options: Any) -> MCPServer:
        """A server reached over Streamable HTTP at ``url``, with ``headers`` (e.g. Authorization) on each request."""
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ConfigError(f"MCPServer.http() takes an http:// or https:// URL, got {url!r:.80}")
        return cls(name or url.split("//", 1)[1].split("/", 1)[0], url=url, headers=headers, **options)

    @classmethod
    def from_config(cls, path: str | Path, **options: Any) -> list[MCPServer]:
        """The servers of an ``mcpServers`` JSON file (the format of desktop assistants and editors):
        ``{"mcpServers": {"name": {"command", "args", "env"} or {"url", "headers"}}}``; ``options``
        (``tool_timeout``, ``sampling``, ...) apply to each. Entries with ``"disabled": true`` are left out."""
        where = str(path)
        try:
            data = json.loads(Path(path).expanduser().read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{where}: cannot read it ({exc.strerror or exc}); pass the path of an mcpServers JSON file") from None
        except ValueError as exc:
            raise ConfigError(f"{where}: not valid JSON ({exc}); fix the file") from None
        servers = data.get("mcpServers") if isinstance(data, dict) else None
        if not isinstance(servers, dict):
            raise ConfigError(f'{where}: no "mcpServers" object; write {{"mcpServers": {{"name": {{"command": ..., "args": [...]}}}}}}')
        return [cls._from_entry(where, name, entry, options) for name, entry in servers.items()
                if not (isinstance(entry, dict) and entry.get("disabled") is True)]

    @classmethod
    def _from_entry(cls, where: str, name: str, entry: Any, options: dict[str, Any]) -> MCPServer:
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: mcpServers.{name} must be an object with command/args/env or url/headers")
        unknown = sorted(set(entry) - _CONFIG_KEYS)
        if unknown:
            raise ConfigError(f"{where}: mcpServers.{name} has unknown key(s) {', '.join(unknown)}; known: {', '.join(sorted(_CONFIG_KEYS))}")
        if entry.get("type", "stdio" if "command" in entry else "http") in ("sse",):
            raise ConfigError(f"{where}: mcpServers.{name} uses the old SSE transport; PepperPy speaks stdio and Streamable HTTP")
        problem = _entry_problem(entry)
        if problem:
            raise ConfigError(f"{where}: mcpServers.{name}: {problem}")
        if "url" in entry:
            return cls.http(entry["url"], entry.get("headers"), name=name, **options)
        return cls(name, command=entry["command"], args=entry.get("args", ()), env=entry.get("env"), cwd=entry.get("cwd"), **options)

    def __repr__(self) -> str:  # never the env's or headers' values, nor a secret argument
        return f"MCPServer({self.name!r}, {self._where()!r})"

    def _where(self) -> str:
        return redact(self.url if self.url is not None else " ".join([self.command or "", *self.args]))

    def redacted(self, text: str) -> str:
        """``text`` with this process's known secrets (this server's header values, secret env values) hidden."""
        return redact(text)

    def hint(self) -> str:
        """What to check when the server fails, for error messages (secrets hidden)."""
        if self.url is not None:
            return f"check that the server at {self._where()} is running and speaks MCP over Streamable HTTP"
        return f"run `{self._where()}` by hand to see its errors (its stderr is also in PepperPy's log)"

    # -- views ------------------------------------------------------------------------

    def _view(self, **changes: Any) -> MCPServer:
        view = object.__new__(MCPServer)
        view.__dict__.update(self.__dict__, _built=None, **changes)
        return view

    def tools(self, include: Iterable[str] | None = None, exclude: Iterable[str] = (), prefix: str = "") -> MCPServer:
        """This server offering only ``include`` (its tool names), without ``exclude``, each renamed ``prefix + name``;
        the same session."""
        return self._view(_include=None if include is None else frozenset(include), _exclude=frozenset(exclude), _prefix=prefix)

    def with_approval(self, approve: Approve | None) -> MCPServer:
        """This server with ``approve(server, tool, arguments)`` asked before each call (ChatBuilder.with_tools)."""
        return self if approve is None else self._view(_approve=approve)

    # -- the tool source (pepperpy.tools.ToolSource) ------------------------------------

    async def tools_for(self, owner: Any) -> list[Tool]:
        """The offered tools, their session opened (on first use) in ``owner``'s, the facade's."""
        client = await owner.kept_open(self._key, lambda: self._client(owner))
        listed = await client.list_tools()
        built = self._built
        if built is None or built[0] is not client or built[1] is not listed:
            self._check_names(listed)
            tools = [self._tool(client, t) for t in listed if self._offers(t.name)]
            built = self._built = (client, listed, tools)
        return built[2]

    def _offers(self, name: str) -> bool:
        return (self._include is None or name in self._include) and name not in self._exclude

    def _check_names(self, listed: list[Any]) -> None:
        missing = sorted((self._include or frozenset()) - {t.name for t in listed})
        if missing:
            raise ConfigError(
                f"MCP server {self.name!r} has no tool named {', '.join(missing)} (include=); "
                f"its tools are: {', '.join(t.name for t in listed) or 'none'}"
            )

    def _tool(self, client: Any, listed: Any) -> Tool:
        remote = listed.name

        async def call(**arguments: Any) -> list[Any]:
            parts, is_error = await client.call(remote, arguments)
            if not is_error:
                return parts
            first = parts[0] if parts and isinstance(parts[0], TextPart) else TextPart(text="")
            return [TextPart(text=f"error: {first.text}"), *(parts[1:] if first is parts[0] else parts)]

        call.__name__ = call.__qualname__ = self._prefix + remote
        schema = listed.input_schema or {"type": "object", "properties": {}}
        return Tool(name=self._prefix + remote, description=listed.description or remote, parameters=schema,
                    function=call, source=self.name, approve=self._approve)

    async def _client(self, owner: Any) -> Any:
        """The ``mcp/client`` plugin's session for this server (its requirements installed in a thread on first use)."""
        manager = owner.plugin_manager
        client = await asyncio.to_thread(manager.create_provider, "mcp", "client")
        client.spec = self
        if self.sampling:
            client.sample = _sampler(owner)
        return client


def _remember_secrets(server: MCPServer) -> None:
    """Hide from every message and log line (pepperpy/_redact.py): header values, env values named as secrets, and
    the value of a secret-named flag among the args (``--api-key VALUE``, ``--token=VALUE``)."""
    secrets = [*server.headers.values(), *(v for k, v in server.env.items() if is_secret_option(k))]
    secrets += [value.split(" ", 1)[-1] for value in server.headers.values()]  # the token of "Bearer TOKEN"
    for number, arg in enumerate(server.args):
        flag, equals, value = arg.partition("=")
        if flag.startswith("-") and is_secret_option(flag.lstrip("-")):
            secrets.append(value if equals else (server.args[number + 1] if number + 1 < len(server.args) else ""))
    for secret in secrets:
        remember(secret)


def _entry_problem(entry: dict[str, Any]) -> str | None:
    if "url" in entry and "command" in entry:
        return "give either command (stdio) or url (Streamable HTTP), not both"
    if "url" not in entry and "command" not in entry:
        return "needs command (stdio) or url (Streamable HTTP)"
    typed = {"command": str, "url": str, "cwd": str, "args": list, "env": dict, "headers": dict}
    for key, kind in typed.items():
        if key in entry and not isinstance(entry[key], kind):
            return f"{key} must be a JSON {'string' if kind is str else 'array' if kind is list else 'object'}"
    if "command" in entry and set(entry) & _HTTP_KEYS or "url" in entry and set(entry) & (_STDIO_KEYS - {"command"}):
        return "mixes stdio keys (command, args, env, cwd) with HTTP keys (url, headers)"
    return None


def _sampler(owner: Any) -> Any:
    """Answers a server's sampling request with ``owner``'s LLM (through its hooks, log and cache)."""

    async def sample(messages: list[dict[str, Any]], system: str | None, max_tokens: int) -> tuple[str, str]:
        from pepperpy.chat import ChatBuilder

        chat = ChatBuilder(owner)
        if system:
            chat = chat.with_system(system)
        result = await chat.with_messages(messages).with_options(max_tokens=max_tokens).generate()
        return result.content, result.usage.model or (await owner.configured("llm")).plugin_id

    return sample


__all__ = ["DEFAULT_TOOL_TIMEOUT_S", "MCPServer"]
