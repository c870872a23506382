"""The MCP server of ``pepperpy mcp serve``: a store's ``search``, ``ask`` and (when allowed) ``add`` as MCP tools.

Built on the ``mcp`` SDK's ``MCPServer``, which must be importable before this module is (``pepperpy/cli/mcp.py``
makes it so through the ``mcp/client`` plugin). Each tool takes JSON arguments described by a schema with a
description per field, and returns structured content (the same JSON as text for hosts that read only text). A
PepperPy error inside a tool (a bad filter, a failing LLM) comes back to the host as a tool error with its message
(the SDK withholds the text of any other exception, a bug, and logs its traceback on stderr).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server import MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from pydantic import BaseModel, Field

from pepperpy.errors import PepperPyError

if TYPE_CHECKING:
    from pepperpy import PepperPy
    from pepperpy.rag import SearchResult

HOST = "127.0.0.1"
PATH = "/mcp"
MAX_K = 50

Scalar = str | int | float | bool
Filter = dict[str, Scalar | list[Scalar]]
FILTER_HELP = (
    "Metadata filter: {\"key\": value} keeps passages whose metadata has that value, {\"key\": [a, b]} any of "
    "those values; several keys must all match. Omit it to search everything."
)


class Passage(BaseModel):
    """One stored passage."""

    id: str = Field(description="The document's id in the store.")
    text: str = Field(description="The passage's text.")
    score: float = Field(description="Cosine similarity to the query; higher is closer.")
    metadata: dict[str, Any] = Field(description="The document's metadata (source file, chunk number, ...).")


class SearchOutput(BaseModel):
    results: list[Passage] = Field(description="The passages found, closest first.")


class AskOutput(BaseModel):
    answer: str = Field(description="The LLM's answer, from the passages only.")
    sources: list[Passage] = Field(description="The passages the answer was given, closest first.")


class AddOutput(BaseModel):
    id: str = Field(description="The id the document is stored under.")
    count: int = Field(description="How many documents the store holds now.")


def _passage(hit: SearchResult) -> Passage:
    document = hit.document
    return Passage(id=document.id, text=document.text, score=hit.score, metadata=dict(document.metadata or {}))


@contextmanager
def _reported() -> Iterator[None]:
    """A PepperPy error as a tool error whose message the host sees (the SDK hides other exceptions' text)."""
    try:
        yield
    except PepperPyError as exc:
        raise ToolError(" ".join(str(exc).split())) from exc


def tool_names(ask: bool, allow_writes: bool) -> list[str]:
    """The tools a server with these settings lists."""
    return ["search", *(["ask"] if ask else []), *(["add"] if allow_writes else [])]


def build_server(pepper: PepperPy, *, ask: bool, allow_writes: bool, name: str = "pepperpy") -> MCPServer:
    """An MCP server over ``pepper``'s store (and LLM, when ``ask``); ``add`` only with ``allow_writes``."""
    store = pepper.rag.plugin_id
    server = MCPServer(name, instructions=(
        f"Passages stored with PepperPy in the {store} store. Use search to find passages by meaning"
        + (", ask to get an answer written from them" if ask else "")
        + (", add to store a new text" if allow_writes else "")
        + "."
    ), log_level="WARNING")

    async def search(
        query: Annotated[str, Field(description="What to look for, in natural language.", min_length=1)],
        k: Annotated[int, Field(description="How many passages to return.", ge=1, le=MAX_K)] = 5,
        filter: Annotated[Filter | None, Field(description=FILTER_HELP)] = None,
    ) -> SearchOutput:
        with _reported():
            hits = await pepper.rag.search(query, k=k, filter=filter)
        return SearchOutput(results=[_passage(hit) for hit in hits])

    server.add_tool(search, name="search", title="Search the store", structured_output=True, description=(
        f"Find the stored passages closest in meaning to a query ({store} store), closest first, with their "
        "ids, scores and metadata."
    ))

    if ask:
        async def ask_tool(
            question: Annotated[str, Field(description="The question to answer.", min_length=1)],
            k: Annotated[int, Field(description="How many passages the answer is written from.", ge=1,
                                    le=MAX_K)] = 4,
            filter: Annotated[Filter | None, Field(description=FILTER_HELP)] = None,
        ) -> AskOutput:
            with _reported():
                answer = await pepper.ask(question, k=k, filter=filter)
            return AskOutput(answer=answer.content, sources=[_passage(hit) for hit in answer.sources])

        server.add_tool(ask_tool, name="ask", title="Answer from the store", structured_output=True, description=(
            f"Answer a question from the stored passages only ({store} store), with the LLM {pepper.llm.plugin_id}; "
            "returns the answer and the passages it used. When no passage matches, the answer says so."
        ))

    if allow_writes:
        async def add(
            text: Annotated[str, Field(description="The text to store, as one document.", min_length=1)],
            id: Annotated[str | None, Field(description=(
                "The document's id; storing an existing id replaces that document. Omitted: an id from the "
                "text's content hash."))] = None,
            metadata: Annotated[dict[str, Scalar] | None, Field(description=(
                "Metadata to filter on later, e.g. {\"team\": \"a\"}."))] = None,
        ) -> AddOutput:
            from pepperpy.documents import text_id
            from pepperpy.rag import Document

            document = Document(id=id or text_id(text), text=text, metadata=metadata or {})
            with _reported():
                await pepper.rag.add(document)
                return AddOutput(id=document.id, count=await pepper.rag.count())

        server.add_tool(add, name="add", title="Add to the store", structured_output=True, description=(
            f"Store a text as one document in the {store} store (embedded now, searchable at once)."
        ))
    return server


def bind(port: int) -> socket.socket:
    """A listening socket on 127.0.0.1:``port`` (0: a free port); OSError when the port is taken."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((HOST, port))
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


async def serve_http(server: MCPServer, sock: socket.socket) -> None:
    """Streamable HTTP at ``http://127.0.0.1:<port>/mcp`` on ``sock`` until cancelled (Ctrl-C), with the SDK's
    DNS-rebinding protection for localhost (other Host and Origin headers are refused)."""
    import uvicorn

    app = server.streamable_http_app(streamable_http_path=PATH, host=HOST)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[sock])


async def serve_stdio(server: MCPServer) -> None:
    """JSON-RPC on stdin/stdout until stdin closes."""
    await server.run_stdio_async()


__all__ = ["HOST", "PATH", "build_server", "bind", "serve_http", "serve_stdio", "tool_names"]
