"""MCP servers as tools, against a real MCP server written with the ``mcp`` SDK (tests/servers/mcp_demo.py),
over stdio (a real child process) and over Streamable HTTP (uvicorn on 127.0.0.1). llm/mock scripts the
model's tool calls, and records what each call was sent (``pepper.llm.calls``, ``pepper.llm.options``)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from loguru import logger

from pepperpy import MCPServer, PepperPy
from pepperpy.errors import ConfigError, ToolError
from pepperpy.llm import MessageRole
from pepperpy.parts import ImagePart
from tests.command import default_sigint, run_pepperpy
from tests.integration.test_anthropic_recorded import anthropic, answer, recorded, sent, turns

pytestmark = pytest.mark.integration
DEMO = str(Path(__file__).resolve().parents[1] / "servers" / "mcp_demo.py")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def gone(pid: int, wait_s: float = 15.0) -> bool:
    """True once no process ``pid`` exists, not even a zombie (a zombie keeps its /proc entry until reaped)."""
    deadline = time.monotonic() + wait_s
    while Path(f"/proc/{pid}").exists():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture(scope="module")
def http_url():
    port = free_port()
    process = subprocess.Popen([sys.executable, DEMO, "--http", str(port)], stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        assert process.poll() is None, "the demo MCP server exited at start"
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "the demo MCP server did not listen within 60 s"
            time.sleep(0.1)
    yield f"http://127.0.0.1:{port}/mcp"
    process.terminate()
    process.wait(timeout=30)


def stdio(**options) -> MCPServer:
    return MCPServer.stdio(sys.executable, DEMO, name="demo", **options)


@pytest.fixture(params=["stdio", "http"])
def server(request, http_url) -> MCPServer:
    return stdio() if request.param == "stdio" else MCPServer.http(http_url, name="demo")


def mock(*replies) -> PepperPy:
    return PepperPy().with_llm("mock", replies=list(replies), cycle=False)


def call(tool: str, **arguments) -> dict:
    return {"tool": tool, "arguments": arguments}


def tool_replies(pepper: PepperPy) -> list:
    """The tool messages the model was sent in its last call."""
    return [m for m in pepper.llm.calls[-1] if m.role == MessageRole.TOOL]


async def test_text_structured_and_image_results_reach_the_model(server):
    pepper = mock([call("add", a=2, b=3), call("weather", city="Oslo"), call("picture")], "done")
    async with pepper:
        result = await pepper.chat.with_user("go").with_tools(server).generate()
    assert result.content == "done"
    added, weather, picture = tool_replies(pepper)
    assert added.content == "5"
    assert json.loads(weather.content) == {"city": "Oslo", "celsius": 21.5}
    [image] = picture.content
    assert isinstance(image, ImagePart) and image.media_type == "image/png" and image.read().startswith(b"\x89PNG")
    offered = {tool.name: tool for tool in pepper.llm.options[0]["tools"]}
    assert offered["add"].parameters["properties"].keys() == {"a", "b"}
    assert offered["add"].description == "Add two integers." and offered["add"].source == "demo"


async def test_http_headers_reach_the_server_on_each_request(http_url):
    remote = MCPServer.http(http_url, headers={"X-Demo-Tenant": "tenant-7"}, name="demo")
    async with mock(call("header", name="x-demo-tenant"), call("header", name="x-demo-tenant"), "ok") as pepper:
        await pepper.chat.with_user("go").with_tools(remote).generate()
        assert [m.content for m in tool_replies(pepper)] == ["tenant-7", "tenant-7"], "sent with each request"


async def test_a_tool_error_goes_back_to_the_model_not_raised(server):
    pepper = mock(call("fail", reason="boom"), "recovered")
    async with pepper:
        result = await pepper.chat.with_user("go").with_tools(server).generate()
    assert result.content == "recovered"
    [reply] = tool_replies(pepper)
    assert reply.text.startswith("error: ") and "fail" in reply.text


async def test_a_tool_past_its_timeout_is_a_tool_error_naming_server_and_tool_and_the_next_call_works():
    pepper = mock(call("pid"), "first", call("sleep", seconds=60), call("pid"), "again")
    server = stdio(tool_timeout=1)
    async with pepper:
        await pepper.chat.with_user("go").with_tools(server).generate()
        first_pid = int(tool_replies(pepper)[0].content)
        with pytest.raises(ToolError, match=r"MCP server 'demo', tool 'sleep': no answer within tool_timeout=1 s"):
            await pepper.chat.with_user("go").with_tools(server).generate()
        assert gone(first_pid)  # the hung server was stopped and reaped
        await pepper.chat.with_user("go").with_tools(server).generate()
        assert int(tool_replies(pepper)[0].content) != first_pid  # started again


async def test_a_server_that_exits_mid_call_is_a_tool_error_and_is_reaped():
    pepper = mock(call("pid"), "first", call("die"))
    server = stdio()
    async with pepper:
        await pepper.chat.with_user("go").with_tools(server).generate()
        pid = int(tool_replies(pepper)[0].content)
        with pytest.raises(ToolError, match=r"MCP server 'demo', tool 'die'"):
            await pepper.chat.with_user("go").with_tools(server).generate()
        assert gone(pid)


async def test_the_tool_list_is_cached_and_refreshed_when_the_server_announces_a_change(server):
    pepper = mock(call("grow"), "grew", call("grown"), "done")
    async with pepper:
        before = await server.tools_for(pepper)
        assert await server.tools_for(pepper) is before  # cached
        await pepper.chat.with_user("go").with_tools(server).generate()
        deadline = time.monotonic() + 15  # the change event travels beside the call's answer
        while "grown" not in [t.name for t in await server.tools_for(pepper)] and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await pepper.chat.with_user("go").with_tools(server).generate()
    assert "grown" not in [t.name for t in before]
    assert tool_replies(pepper)[-1].content == "I grew"


async def test_garbage_content_is_a_tool_error_naming_server_and_tool(server):
    async with mock(call("bad_image"), "never") as pepper:
        with pytest.raises(ToolError, match=r"MCP server 'demo', tool 'bad_image': the server sent an image that is not valid base64"):
            await pepper.chat.with_user("go").with_tools(server).generate()


async def test_one_session_is_shared_by_the_chats_of_a_pepperpy_and_closing_reaps_the_process():
    server = stdio()
    pepper = mock(call("pid"), "a", call("pid"), "b")
    await pepper.chat.with_user("go").with_tools(server).generate()  # opened lazily, without `async with`
    first = int(tool_replies(pepper)[0].content)
    await pepper.chat.with_user("go").with_tools(server.tools(include=["pid"])).generate()
    assert int(tool_replies(pepper)[0].content) == first
    await pepper.aclose()
    assert gone(first)


def test_ctrl_c_reaps_the_server_process(tmp_path):
    script = tmp_path / "child.py"
    script.write_text(
        "import asyncio, sys\n"
        "from pepperpy import MCPServer, PepperPy\n"
        "async def main():\n"
        "    pepper = PepperPy().with_llm('mock', replies=[{'tool': 'pid'}, 'ok'])\n"
        "    async with pepper:\n"
        f"        await pepper.chat.with_user('go').with_tools(MCPServer.stdio(sys.executable, {DEMO!r})).generate()\n"
        "        print(pepper.llm.calls[-1][-1].content, flush=True)\n"
        "        await asyncio.sleep(3600)\n"
        "asyncio.run(main())\n"
    )
    child = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             preexec_fn=default_sigint, cwd=Path(__file__).resolve().parents[2])
    pid = int(child.stdout.readline())
    assert not gone(pid, wait_s=0)
    child.send_signal(signal.SIGINT)
    child.wait(timeout=60)
    assert "KeyboardInterrupt" in child.stderr.read()
    assert gone(pid)


@pytest.mark.parametrize("ending", ["asyncio.run returns", "generate_sync, then the interpreter exits"])
def test_leaving_without_closing_reaps_the_server_process(tmp_path, ending):
    """No ``async with``, no ``aclose()``: the loop's end (or the interpreter's exit) closes the session."""
    script = tmp_path / "child.py"
    use = {
        "asyncio.run returns": "asyncio.run(chat.generate())",
        "generate_sync, then the interpreter exits": "chat.generate_sync()",
    }[ending]
    script.write_text(
        "import asyncio, sys\n"
        "from pepperpy import MCPServer, PepperPy\n"
        "pepper = PepperPy().with_llm('mock', replies=[{'tool': 'pid'}, 'ok'])\n"
        f"chat = pepper.chat.with_user('go').with_tools(MCPServer.stdio(sys.executable, {DEMO!r}))\n"
        f"{use}\n"
        "print(pepper.llm.calls[-1][-1].content, flush=True)\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parents[2])
    assert done.returncode == 0, done.stderr
    assert gone(int(done.stdout))


async def test_a_command_that_speaks_no_mcp_is_a_tool_error_and_is_reaped(tmp_path):
    pid_file = tmp_path / "pid"
    code = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); print('{{not json', flush=True); time.sleep(600)"
    garbage = MCPServer.stdio(sys.executable, "-c", code, name="garbage", connect_timeout=10)
    async with mock("x") as pepper:
        with pytest.raises(ToolError, match=r"MCP server 'garbage': starting it did not answer within 10 s"):
            await pepper.chat.with_user("go").with_tools(garbage).generate()
    assert gone(int(pid_file.read_text()))


async def test_stderr_goes_to_the_log_with_the_servers_name():
    lines: list[str] = []
    sink = logger.add(lambda message: lines.append(str(message)), level="INFO")
    logger.enable("pepperpy")
    try:
        pepper = mock(call("shout", text="hello-from-stderr"), "ok")
        async with pepper:
            await pepper.chat.with_user("go").with_tools(stdio()).generate()
            deadline = time.monotonic() + 15
            while not any("hello-from-stderr" in line for line in lines) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
    finally:
        logger.remove(sink)
        logger.disable("pepperpy")
    assert any("MCP server demo: shouting hello-from-stderr" in line for line in lines)


async def test_include_exclude_and_prefix_narrow_and_rename(server):
    pepper = mock(call("fs_echo", text="hi"), "done")
    async with pepper:
        await pepper.chat.with_user("go").with_tools(server.tools(include=["echo", "add"], exclude=["add"], prefix="fs_")).generate()
    assert [t.name for t in pepper.llm.options[0]["tools"]] == ["fs_echo"]
    assert tool_replies(pepper)[0].content == "hi"


async def test_include_of_a_missing_tool_is_refused_naming_the_server():
    async with mock("x") as pepper:
        with pytest.raises(ConfigError, match=r"MCP server 'demo' has no tool named nope \(include=\); its tools are: echo"):
            await pepper.chat.with_user("go").with_tools(stdio().tools(include=["nope"])).generate()


async def test_name_collisions_are_refused_naming_both_sources(http_url):
    def echo(text: str) -> str:
        """A local echo."""
        return text

    async with mock("x") as pepper:
        with pytest.raises(ConfigError, match=r"two tools are named 'echo': one from MCP server 'demo', one from MCP server 'other'"):
            await pepper.chat.with_user("go").with_tools(stdio(), MCPServer.http(http_url, name="other")).generate()
        with pytest.raises(ConfigError, match=r"'echo': one from function .*echo, one from MCP server 'demo'"):
            await pepper.chat.with_user("go").with_tools(echo, stdio()).generate()
        await pepper.chat.with_user("go").with_tools(echo, stdio().tools(prefix="demo_")).generate()  # renamed: fine


async def test_approve_sees_server_tool_and_arguments_and_a_refusal_is_told_to_the_model(server):
    asked = []

    async def approve(source, tool, arguments):
        asked.append((source, tool, arguments))
        return tool == "echo"

    pepper = mock([call("echo", text="yes"), call("add", a=1, b=2)], "done")
    async with pepper:
        await pepper.chat.with_user("go").with_tools(server, approve=approve).generate()
    assert asked == [("demo", "echo", {"text": "yes"}), ("demo", "add", {"a": 1, "b": 2})]
    echoed, refused = tool_replies(pepper)
    assert echoed.content == "yes"
    assert refused.content.startswith("error: the user refused this call of add")


async def test_sampling_answers_with_the_facades_llm_only_when_enabled():
    pepper = mock(call("ask_llm", question="6 times 7?"), "forty-two", "done")
    async with pepper:
        await pepper.chat.with_user("go").with_tools(stdio(sampling=True)).generate()
    assert tool_replies(pepper)[0].content == "the client said: forty-two"
    assert pepper.llm.calls[1][-1].text == "6 times 7?"  # the server's question reached the LLM

    pepper = mock(call("ask_llm", question="6 times 7?"), "done")
    async with pepper:
        await pepper.chat.with_user("go").with_tools(stdio()).generate()
    assert tool_replies(pepper)[0].text.startswith("error: ")
    assert len(pepper.llm.calls) == 2  # the LLM was never asked for the server


def test_from_config_reads_the_mcpservers_format(tmp_path, http_url):
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {
        "files": {"command": sys.executable, "args": [DEMO], "env": {"TOKEN": "xxx-test-secret-not-real"}},
        "remote": {"url": http_url, "headers": {"Authorization": "Bearer xxx-test-secret-not-real"}},
        "off": {"command": "nothing", "disabled": True},
    }}))
    files, remote = MCPServer.from_config(path, tool_timeout=5)
    assert (files.name, files.command, files.args, files.env) == ("files", sys.executable, (DEMO,), {"TOKEN": "xxx-test-secret-not-real"})
    assert (remote.name, remote.url, remote.headers["Authorization"], remote.tool_timeout) == ("remote", http_url, "Bearer xxx-test-secret-not-real", 5)
    assert "xxx-test" not in repr(files) + repr(remote)


@pytest.mark.parametrize("content, problem", [
    ("{", r"not valid JSON"),
    ('{"servers": {}}', r'no "mcpServers" object'),
    ('{"mcpServers": {"a": {}}}', r"mcpServers.a: needs command \(stdio\) or url"),
    ('{"mcpServers": {"a": {"command": "x", "url": "http://h"}}}', r"either command .* or url"),
    ('{"mcpServers": {"a": {"command": "x", "argz": []}}}', r"unknown key\(s\) argz"),
    ('{"mcpServers": {"a": {"command": "x", "args": "y"}}}', r"args must be a JSON array"),
    ('{"mcpServers": {"a": {"url": "http://h", "type": "sse"}}}', r"old SSE transport"),
])
def test_from_config_refuses_a_broken_file_naming_it(tmp_path, content, problem):
    path = tmp_path / "mcp.json"
    path.write_text(content)
    with pytest.raises(ConfigError, match=problem) as caught:
        MCPServer.from_config(path)
    assert str(path) in str(caught.value)


def test_from_config_of_a_missing_file():
    with pytest.raises(ConfigError, match=r"nowhere.json: cannot read it"):
        MCPServer.from_config("nowhere.json")


async def test_a_server_that_dies_starting_shows_the_end_of_its_stderr_in_the_error_without_secrets():
    """An import error (the common first mistake: mcp 2's FastMCP is MCPServer) is in the ToolError itself, not only
    in a log the user has not enabled; a secret of the server's env that it prints stays hidden."""
    code = "import os, sys; print('token', os.environ['SERVICE_TOKEN'], file=sys.stderr); import no_such_module_here"
    dying = MCPServer.stdio(sys.executable, "-c", code, env={"SERVICE_TOKEN": "xxx-test-env-secret-2"}, name="dying")
    async with mock("x") as pepper:
        with pytest.raises(ToolError, match=r"MCP server 'dying': starting it failed") as caught:
            await pepper.chat.with_user("go").with_tools(dying).generate()
    message = str(caught.value)
    assert "its stderr ended with:" in message and "ModuleNotFoundError: No module named 'no_such_module_here'" in message
    assert "token ***" in message and "xxx-test" not in message


def test_bad_server_descriptions_are_refused():
    with pytest.raises(ConfigError, match="either command= .* or url="):
        MCPServer("x")
    with pytest.raises(ConfigError, match="tool_timeout must be a positive number"):
        stdio(tool_timeout=0)
    with pytest.raises(ConfigError, match="http:// or https:// URL"):
        MCPServer.http("localhost:8000")


async def test_a_server_that_cannot_start_is_a_tool_error_naming_it_without_its_secrets():
    broken = MCPServer.stdio("/no/such/command", "--api-key", "xxx-test-secret-not-real", "--token=xxx-test-token-not-real",
                             env={"SERVICE_TOKEN": "xxx-test-env-secret"}, name="broken")
    async with mock("x") as pepper:
        with pytest.raises(ToolError, match=r"MCP server 'broken': starting it failed") as caught:
            await pepper.chat.with_user("go").with_tools(broken).generate()
    shown = f"{caught.value} {broken!r}"
    assert "/no/such/command --api-key ***" in shown
    assert "xxx-test" not in shown


def test_the_command_offers_the_servers_of_an_mcp_file_and_asks_with_approve(tmp_path):
    config = tmp_path / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"demo": {"command": sys.executable, "args": [DEMO]}}}))
    replies = json.dumps([call("add", a=1, b=2), "finished"])
    home = tmp_path / "home"
    done = run_pepperpy(home, "chat", "-p", "mock", "-o", f"replies={replies}", "--mcp", str(config), "--no-log", "add")
    assert (done.returncode, done.stdout) == (0, "finished\n"), done.stderr
    asked = run_pepperpy(home, "chat", "-p", "mock", "-o", f"replies={replies}", "--mcp", str(config), "--approve",
                         "--no-log", "add", stdin="n\n")
    assert asked.returncode == 0, asked.stderr
    assert "Run tool add of MCP server demo with {\"a\": 1, \"b\": 2}?" in asked.stderr
    missing = run_pepperpy(home, "chat", "-p", "mock", "--mcp", str(tmp_path / "none.json"), "hi")
    assert missing.returncode == 1 and "--mcp" in missing.stderr and "none.json: cannot read it" in missing.stderr


async def test_a_recorded_anthropic_tool_loop_runs_an_mcp_tool(remote_manager, cassettes):
    """Recorded traffic (four parallel tool_use blocks, then the answer) drives the loop; the MCP server answers each
    call with the recorded tool result, and what llm/anthropic sends back matches the recorded second request."""
    interactions = cassettes.serve(recorded("test_multiple_parallel_tool_calls.yaml"))
    first_request = interactions[0].request_json()
    facts = {c["tool_use_id"]: c["content"] for c in interactions[1].request_json()["messages"][2]["content"]}
    raw = answer(interactions[0])["content"]
    known = {block["input"]["name"]: facts[block["id"]] for block in raw if block["type"] == "tool_use"}
    server = MCPServer.stdio(sys.executable, DEMO, env={"MCP_DEMO_FACTS": json.dumps(known)}, name="family")
    async with anthropic(remote_manager, cassettes, "claude-haiku-4-5", max_tokens=4096) as pepper:
        chat = pepper.chat.with_system(first_request["system"]).with_user(first_request["messages"][0]["content"][0]["text"])
        result = await chat.with_tools(server.tools(include=["retrieve_entity_info"])).generate()
    assert result.content == answer(interactions[1])["content"][0]["text"]
    for ours, theirs in sent(cassettes, interactions):
        assert turns(ours) == turns(theirs)
        [tool] = ours["tools"]
        assert (tool["name"], tool["description"]) == ("retrieve_entity_info", "Get the knowledge about the given entity.")


async def test_a_streamed_tool_loop_runs_mcp_tools_concurrently_and_shows_their_results(server):
    pepper = mock([call("add", a=2, b=3), call("picture")], "done")
    async with pepper:
        chunks = [chunk async for chunk in pepper.chat.with_user("go").with_tools(server).stream()]
    [results] = [chunk.tool_results for chunk in chunks if chunk.tool_results]
    added, picture = results
    assert added.content == "5" and isinstance(picture.content[0], ImagePart)
    assert "".join(chunk.content for chunk in chunks) == "done"
