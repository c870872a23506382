"""`pepperpy mcp serve` run for real (stdio and Streamable HTTP), driven by the `mcp` SDK's own client, over a real
rag/local store embedded by the real local embeddings; `ask` answers with llm/mock's scripted reply."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from pepperpy import Document, PepperPy
from pepperpy.plugin_manager import PluginManager, builtin_plugins_dir
from tests.command import default_sigint, environment, run_pepperpy
from tests.mcp_serving import require_sdk, serve_command, serving_http

pytestmark = pytest.mark.integration

DOCS = [
    Document(id="paris", text="Paris is the capital and largest city of France.", metadata={"topic": "geography"}),
    Document(id="python", text="Python is a programming language created by Guido van Rossum.",
             metadata={"topic": "code"}),
    Document(id="everest", text="Mount Everest is the highest mountain above sea level.",
             metadata={"topic": "geography"}),
    Document(id="rust", text="Rust is a systems programming language focused on memory safety.",
             metadata={"topic": "code"}),
]
REPLY = "Guido van Rossum created it."


@pytest.fixture(scope="module")
def home(session_home) -> Path:
    require_sdk(session_home)
    return session_home


def _manager(home: Path) -> PluginManager:
    return PluginManager(search_paths=[builtin_plugins_dir()], home=home)


@pytest.fixture(scope="module")
async def store(home, tmp_path_factory) -> Path:
    """A rag/local file holding DOCS, written by the facade as a user would."""
    path = tmp_path_factory.mktemp("mcp-store") / "notes.sqlite3"
    async with PepperPy(plugin_manager=_manager(home)).with_rag("local", path=path) as pepper:
        await pepper.rag.add(DOCS)
    return path


async def _count(home: Path, path: Path) -> int:
    async with PepperPy(plugin_manager=_manager(home)).with_rag("local", path=path) as pepper:
        return await pepper.rag.count()


def _stdio(home: Path, *args: str):
    from mcp import Client, StdioServerParameters

    command = serve_command(*args)
    return Client(StdioServerParameters(command=command[0], args=command[1:], env=environment(home),
                                        cwd=str(home.parent)))


async def test_stdio_lists_described_tools_and_search_returns_the_stored_chunks(home, store):
    async with _stdio(home, "--path", str(store), "--llm", "mock") as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert sorted(tools) == ["ask", "search"], "add is off without --allow-writes"
        search = tools["search"]
        assert search.description and "closest in meaning" in search.description
        properties = search.input_schema["properties"]
        assert search.input_schema["required"] == ["query"]
        assert {"query", "k", "filter"} == set(properties)
        assert all(properties[name].get("description") for name in properties), properties
        assert properties["k"]["minimum"] == 1 and properties["k"]["default"] == 5
        assert search.output_schema and "results" in search.output_schema["properties"]
        assert tools["ask"].input_schema["required"] == ["question"]

        result = await client.call_tool("search", {"query": "Who created the Python language?", "k": 2})
        assert not result.is_error, result.content
        hits = result.structured_content["results"]
        assert [hit["id"] for hit in hits][0] == "python" and len(hits) == 2
        assert hits[0]["text"] == DOCS[1].text and hits[0]["metadata"] == {"topic": "code"}
        assert hits[0]["score"] > hits[1]["score"]
        assert json.loads(result.content[0].text) == result.structured_content, "the same JSON as text"

        filtered = await client.call_tool("search", {"query": "programming language", "k": 4,
                                                     "filter": {"topic": "geography"}})
        assert {hit["id"] for hit in filtered.structured_content["results"]} == {"paris", "everest"}


async def test_http_ask_answers_with_the_configured_llm_and_lists_its_sources(home, store):
    from mcp import Client

    with serving_http(home, "--path", str(store), "--llm", "mock", "--llm-option", f"replies={json.dumps([REPLY])}") as url:
        async with Client(url) as client:
            result = await client.call_tool("ask", {"question": "Who created Python?", "k": 2})
            assert not result.is_error, result.content
            assert result.structured_content["answer"] == REPLY
            assert result.structured_content["sources"][0]["id"] == "python"

            nothing = await client.call_tool("ask", {"question": "Who created Python?", "filter": {"topic": "none"}})
            assert nothing.structured_content["sources"] == []
            assert "no passage" in nothing.structured_content["answer"].lower()


async def test_add_is_refused_without_allow_writes_and_the_store_is_unchanged(home, store):
    before = await _count(home, store)
    async with _stdio(home, "--path", str(store), "--no-ask") as client:
        assert [tool.name for tool in (await client.list_tools()).tools] == ["search"]
        refused = await client.call_tool("add", {"text": "A note that must not be stored."})
        assert refused.is_error
        assert "add" in refused.content[0].text
    assert await _count(home, store) == before


async def test_add_with_allow_writes_stores_a_text_found_at_once(home, tmp_path):
    from mcp import Client

    path = tmp_path / "writable.sqlite3"
    with serving_http(home, "--path", str(path), "--no-ask", "--allow-writes") as url:
        async with Client(url) as client:
            assert sorted(tool.name for tool in (await client.list_tools()).tools) == ["add", "search"]
            added = await client.call_tool("add", {"text": "The release checklist is signed by Ana.",
                                                   "id": "checklist", "metadata": {"team": "ops"}})
            assert not added.is_error, added.content
            assert added.structured_content == {"id": "checklist", "count": 1}
            again = await client.call_tool("add", {"text": "Lunch is at noon."})
            assert again.structured_content["id"].startswith("text-") and again.structured_content["count"] == 2
            found = await client.call_tool("search", {"query": "who signs the release checklist", "k": 1,
                                                      "filter": {"team": "ops"}})
            assert found.structured_content["results"][0]["id"] == "checklist"
    assert await _count(home, path) == 2, "stored in the file, for the next process too"


async def test_bad_tool_arguments_come_back_as_tool_errors(home, store):
    async with _stdio(home, "--path", str(store), "--no-ask") as client:
        for arguments in ({"query": "x", "k": 0}, {"k": 3}, {"query": "x", "filter": {"topic": {"nested": 1}}}):
            result = await client.call_tool("search", arguments)
            assert result.is_error, arguments
            assert result.content[0].text, arguments


@pytest.mark.parametrize(("args", "code", "message"), [
    (["--rag", "nosuch"], 1, "--rag: no rag plugin named 'nosuch'"),
    (["--llm", "mock", "--llm-option", "nosuch=1"], 1, "--llm: unknown option 'nosuch' for llm/mock"),
    (["--no-ask", "--llm", "mock"], 2, "--no-ask leaves the LLM out"),
    (["--path", "a.sqlite3", "-o", "path=b.sqlite3"], 2, "--path and -o path=... both set the store's path"),
    (["-o", "oops"], 2, "'oops' is not key=value"),
    (["--http", "70000"], 2, "70000 is not in the range"),
])
def test_bad_options_fail_before_serving_with_a_clear_error(home, args, code, message):
    done = run_pepperpy(home, "mcp", "serve", *args)
    assert done.returncode == code, done.stderr
    assert message in " ".join(done.stderr.split()), done.stderr
    assert done.stdout == "", "nothing on the protocol's stream"


def test_a_store_that_cannot_open_fails_at_start_naming_it(home, tmp_path):
    done = run_pepperpy(home, "mcp", "serve", "--no-ask", "--path", str(tmp_path))
    assert done.returncode == 1
    assert f"the store {tmp_path} failed to open" in done.stderr


def test_a_taken_port_fails_at_start_naming_it(home, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = run_pepperpy(home, "mcp", "serve", "--no-ask", "--path", str(tmp_path / "s.sqlite3"), "--http",
                            str(port))
    assert done.returncode == 1
    assert f"--http {port}: cannot listen on 127.0.0.1:{port}" in done.stderr


async def test_the_readme_mcpservers_entry_starts_a_working_server(home, store):
    """The README's copy-paste entry, with its store path pointed at the test store."""
    from mcp import Client, StdioServerParameters

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    block = re.search(r"```json\n(\{\s*\"mcpServers\".*?)```", readme, re.S)
    assert block, "README.md has an mcpServers entry"
    (entry,) = json.loads(block.group(1))["mcpServers"].values()
    assert entry["command"] == "pepperpy"
    args = [str(store) if arg.endswith(".sqlite3") else arg for arg in entry["args"]]
    parameters = StdioServerParameters(command=sys.executable, args=["-m", "pepperpy", *args, "--llm", "mock"],
                                       env=environment(home, entry.get("env")), cwd=str(home.parent))
    async with Client(parameters) as client:
        result = await client.call_tool("search", {"query": "highest mountain", "k": 1})
        assert result.structured_content["results"][0]["id"] == "everest"


async def test_an_llm_error_inside_ask_comes_back_as_a_tool_error_naming_the_plugin(home, store):
    async with _stdio(home, "--path", str(store), "--llm", "mock", "--llm-option", f"replies={json.dumps([REPLY])}",
                      "--llm-option", "cycle=false") as client:
        first = await client.call_tool("ask", {"question": "Who created Python?"})
        assert first.structured_content["answer"] == REPLY
        exhausted = await client.call_tool("ask", {"question": "Who created Python?"})
        assert exhausted.is_error
        assert "llm/mock" in exhausted.content[0].text
        still = await client.call_tool("search", {"query": "Python", "k": 1})
        assert not still.is_error, "the server serves on"


async def test_ask_answers_with_the_local_model(home, store, local_manager):
    """llm/local (SmolLM2 in llama.cpp, installed in the same home by local_manager): a real answer, from the
    passages the store found."""
    async with _stdio(home, "--path", str(store), "--llm", "local", "--llm-option", "temperature=0",
                      "--llm-option", "max_tokens=24") as client:
        result = await client.call_tool("ask", {"question": "Who created Python?", "k": 1})
        assert not result.is_error, result.content
        assert result.structured_content["answer"].strip()
        assert [source["id"] for source in result.structured_content["sources"]] == ["python"]


def test_a_stdio_server_ends_when_the_host_closes_its_stdin(home, store):
    process = subprocess.Popen(serve_command("--path", str(store), "--no-ask"), stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=environment(home),
                               cwd=home.parent)
    _, stderr = process.communicate(b"", timeout=300)
    assert process.returncode == 0, stderr.decode()
    assert b"serving rag/local over stdio (tools: search)" in stderr


@pytest.mark.parametrize("stop", [signal.SIGINT, signal.SIGTERM])
def test_an_http_server_stops_on_a_signal_and_frees_its_port(home, tmp_path, stop):
    process = subprocess.Popen(serve_command("--http", "0", "--path", str(tmp_path / "s.sqlite3"), "--no-ask"),
                               stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=environment(home),
                               cwd=home.parent, preexec_fn=default_sigint)
    try:
        line = process.stderr.readline()
        port = int(re.search(r"127\.0\.0\.1:(\d+)/mcp", line).group(1))
        process.send_signal(stop)
        assert process.wait(timeout=60) in (0, 130), process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    with socket.socket() as again:
        again.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        again.bind(("127.0.0.1", port))
