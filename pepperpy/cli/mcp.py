"""``pepperpy mcp serve``: a PepperPy store served to MCP hosts (editors, desktop assistants) as tools.

stdio by default (the host starts the command), ``--http PORT`` for Streamable HTTP on 127.0.0.1 (``--http 0``
picks a free port; the address is printed on stderr either way). The store and the LLM are chosen with the
facade's names and options: ``--rag local --path notes.sqlite3``, ``--llm mock -m ...``. The ``mcp`` SDK is
installed on first use through the ``mcp/client`` plugin (``plugins/mcp_client``), so ``import pepperpy`` never needs it.
"""

from __future__ import annotations

import asyncio
import signal
import sys
from typing import TYPE_CHECKING, Any

import click

from pepperpy.cli._common import fail, manager, parse_key_values
from pepperpy.errors import PepperPyError

if TYPE_CHECKING:
    from pepperpy import PepperPy

SDK_PLUGIN = ("mcp", "client")  # plugins/mcp_client: its requirements.txt names the mcp SDK


def require_sdk() -> None:
    """Make the ``mcp`` SDK importable: installed into the ``mcp/client`` plugin's env on first use."""
    try:
        manager().load_class(*SDK_PLUGIN)
    except PepperPyError as exc:
        fail(f"could not make the mcp SDK importable (plugin {'/'.join(SDK_PLUGIN)}): {exc}")


@click.group()
def mcp() -> None:
    """The Model Context Protocol: serve a PepperPy store to MCP hosts."""


def _facade(rag: str | None, rag_options: dict[str, Any], embeddings: str | None, llm: str | None,
            llm_options: dict[str, Any], ask: bool) -> PepperPy:
    from pepperpy import PepperPy

    pepper = PepperPy()
    step = "--rag"
    try:
        if embeddings is not None:
            step = "--embeddings"
            pepper.with_embeddings(embeddings)
        step = "--rag"
        pepper.with_rag(rag, **rag_options)
        if ask:
            step = "--llm"
            pepper.with_llm(llm, **llm_options)
    except PepperPyError as exc:
        fail(f"{step}: {' '.join(str(exc).split())}")
    return pepper


async def _serve(pepper: PepperPy, port: int | None, allow_writes: bool, ask: bool, name: str) -> None:
    from pepperpy.cli import _mcp_server

    server = _mcp_server.build_server(pepper, ask=ask, allow_writes=allow_writes, name=name)
    tools = ", ".join(_mcp_server.tool_names(ask, allow_writes))
    try:
        await pepper.ready("rag")  # a store that cannot open fails now, not at the host's first call
        if port is None:
            _note(f"serving {pepper.rag.plugin_id} over stdio (tools: {tools})")
            await _mcp_server.serve_stdio(server)
            return
        try:
            sock = _mcp_server.bind(port)
        except OSError as exc:
            fail(f"--http {port}: cannot listen on {_mcp_server.HOST}:{port} ({exc.strerror or exc}); "
                 "pick another port, or 0 for a free one")
        url = f"http://{_mcp_server.HOST}:{sock.getsockname()[1]}{_mcp_server.PATH}"
        _note(f"serving {pepper.rag.plugin_id} at {url} (tools: {tools})")
        await _mcp_server.serve_http(server, sock)
    except PepperPyError as exc:
        fail(" ".join(str(exc).split()))
    finally:
        await pepper.aclose()


def _stop_on_sigterm() -> None:
    """SIGTERM (a host or a service manager stopping the server) ends it cleanly, as Ctrl-C does: the HTTP server
    drains, then the store and the LLM are closed; exit code 0."""

    def stop(_signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


def _note(text: str) -> None:
    """A line for the person running the server: on stderr (stdout is the protocol over stdio)."""
    print(f"pepperpy mcp: {text}", file=sys.stderr, flush=True)


@mcp.command()
@click.option("--rag", "rag", metavar="NAME", help="The store (default: local, or PEPPERPY_RAG).")
@click.option("--path", metavar="FILE", help="The store's path option (rag/local: its SQLite file).")
@click.option("--collection", metavar="NAME", help="The store's collection option.")
@click.option("-o", "--rag-option", "rag_option", multiple=True, metavar="KEY=VALUE",
              help="Another store option (repeatable; a JSON value is parsed).")
@click.option("--embeddings", metavar="NAME", help="The embeddings the store uses (default: local).")
@click.option("--llm", metavar="NAME", help="The LLM that ask answers with (default: local, or PEPPERPY_LLM).")
@click.option("-m", "--model", metavar="MODEL", help="The LLM's model option.")
@click.option("--llm-option", "llm_option", multiple=True, metavar="KEY=VALUE",
              help="Another LLM option (repeatable; a JSON value is parsed).")
@click.option("--no-ask", is_flag=True, help="Leave the ask tool out (no LLM is configured or loaded).")
@click.option("--allow-writes", is_flag=True, help="Offer the add tool, which stores new texts.")
@click.option("--http", "port", type=click.IntRange(0, 65535), metavar="PORT",
              help="Serve Streamable HTTP at http://127.0.0.1:PORT/mcp instead of stdio (0: a free port).")
@click.option("--name", default="pepperpy", show_default=True, help="The server name hosts show.")
def serve(rag: str | None, path: str | None, collection: str | None, rag_option: tuple[str, ...],
          embeddings: str | None, llm: str | None, model: str | None, llm_option: tuple[str, ...], no_ask: bool,
          allow_writes: bool, port: int | None, name: str) -> None:
    """Serve a store to MCP hosts: tools search, ask and (with --allow-writes) add.

    \b
    pepperpy mcp serve --rag local --path notes.sqlite3            # stdio, for a host to start
    pepperpy mcp serve --path notes.sqlite3 --llm openai -m gpt-4o-mini --http 8765
    """
    rag_options = parse_key_values(rag_option, "-o")
    llm_options = parse_key_values(llm_option, "--llm-option")
    if no_ask and (llm or model or llm_options):
        raise click.UsageError("--no-ask leaves the LLM out: drop --llm, -m and --llm-option, or drop --no-ask")
    for option, value in (("path", path), ("collection", collection)):
        if value is not None:
            if option in rag_options:
                raise click.UsageError(f"--{option} and -o {option}=... both set the store's {option}; keep one")
            rag_options[option] = value
    if model is not None:
        llm_options["model"] = model
    require_sdk()
    pepper = _facade(rag, rag_options, embeddings, llm, llm_options, ask=not no_ask)
    _stop_on_sigterm()
    asyncio.run(_serve(pepper, port, allow_writes, not no_ask, name))  # Ctrl-C: exit code 130, as everywhere


__all__ = ["mcp", "require_sdk", "serve"]
