"""`pepperpy chat`, run as the real command in subprocesses (and a real pseudo-terminal) with PEPPERPY_HOME in a tmp dir.

llm/mock echoes the last user message, so what it prints is what the model was sent; the call
log the command writes (<home>/logs.db) is read back to check what each call carried.
"""

from __future__ import annotations

import json
import os
import pty
import select
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from pepperpy._calllog import default_path, recent
from tests.command import default_sigint, environment, ok, run_pepperpy

pytestmark = pytest.mark.integration

SLOW_PROVIDER = '''
import asyncio

from pepperpy.llm import GenerationChunk, GenerationResult, LLMProvider


class SlowProvider(LLMProvider):
    """Streams tick0, tick1, ... with a pause between chunks: a stream still running when Ctrl-C comes."""

    async def generate(self, messages, **options):
        return GenerationResult(content="slow")

    async def generate_stream(self, messages, **options):
        for i in range(600):
            yield GenerationChunk(content=f"tick{i} ")
            await asyncio.sleep(0.1)
'''


def pepperpy(home: Path, *args: str, stdin: str = "", **env: str) -> subprocess.CompletedProcess:
    return run_pepperpy(home, *args, stdin=stdin, env=env)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def slow_plugins(tmp_path: Path, make_plugin) -> Path:
    """A folder holding one plugin, llm/slow, given to the command through PEPPERPY_PLUGIN_PATH."""
    root = tmp_path / "extra-plugins"
    make_plugin("slow", root=root, files={"provider.py": SLOW_PROVIDER}, entry_point="provider:SlowProvider")
    return root


NEEDY_PROVIDER = '''
from pydantic import Field

from pepperpy.llm import GenerationResult, LLMProvider


class NeedyProvider(LLMProvider):
    """Needs the option prefix: no default, no environment variable."""

    prefix: str = Field(description="put before each answer")

    async def generate(self, messages, **options):
        return GenerationResult(content=self.prefix + (messages[-1].content or ""))
'''


@pytest.fixture
def needy_plugins(tmp_path: Path, make_plugin) -> Path:
    """A folder holding llm/needy (a required option), given to the command through PEPPERPY_PLUGIN_PATH."""
    root = tmp_path / "needy-plugins"
    make_plugin("needy", root=root, files={"provider.py": NEEDY_PROVIDER}, entry_point="provider:NeedyProvider")
    return root


def logged(home: Path) -> list:
    return recent(default_path(home), 0)


def test_chat_prints_the_answer_and_logs_the_call(home):
    assert ok(pepperpy(home, "chat", "-p", "mock", "hi")) == "hi\n"
    assert ok(pepperpy(home, "-p", "mock", "hello", "world")) == "hello world\n"  # chat is the default command
    first, second = logged(home)
    assert (first.prompt, first.answer, first.provider, first.stream) == ("hi", "hi", "llm/mock", True)
    assert second.prompt == "hello world" and first.conversation_id != second.conversation_id


def test_piped_stdin_and_files_go_before_the_prompt(home, tmp_path):
    notes = tmp_path / "facts.md"
    notes.write_text("The secret word is pumpkin.\n")
    output = ok(pepperpy(home, "chat", "-p", "mock", "-f", str(notes), "summarize", stdin="launch on friday\n"))
    assert output == "launch on friday\n\nThe secret word is pumpkin.\n\nsummarize\n"  # fragments are sent as they are
    assert ok(pepperpy(home, "chat", "-p", "mock", stdin="only piped text\n")) == "only piped text\n\n"
    (call, _) = logged(home)
    assert [m["role"] for m in call.messages] == ["user"]
    assert [f["source"] for f in call.fragments] == ["stdin", str(notes)]  # the texts are in the fragments table
    assert "pumpkin" not in json.dumps(call.messages) and call.prompt == f"[fragment stdin] [fragment {notes}] summarize"


def test_attach_sends_files_as_parts_and_the_log_keeps_their_hash_not_their_bytes(home, tmp_path):
    import hashlib

    png = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
    (tmp_path / "cat.png").write_bytes(png)
    (tmp_path / "contract.pdf").write_bytes(b"%PDF-1.4 the terms\n")
    command = ("chat", "-p", "mock", "-a", str(tmp_path / "cat.png"), "--attach", str(tmp_path / "contract.pdf"))
    assert ok(pepperpy(home, *command, "What are these?")) == "What are these?\n"  # the mock echoes the text
    (call,) = logged(home)
    assert call.messages[0]["content"] == [
        {"type": "text", "text": "What are these?"},
        {"type": "image", "media_type": "image/png", "sha256": hashlib.sha256(png).hexdigest(), "size": len(png)},
        {"type": "document", "media_type": "application/pdf", "sha256": hashlib.sha256(b"%PDF-1.4 the terms\n").hexdigest(),
         "size": 19},
    ]
    assert call.prompt == "What are these? [image image/png, 48 bytes] [document application/pdf, 19 bytes]"
    # continuing the conversation sends a note of what was attached (the log has no bytes to send again)
    assert ok(pepperpy(home, "chat", "-p", "mock", "-c", "and now?")) == "and now?\n"
    continued = logged(home)[-1].messages
    assert continued[0]["content"][1]["text"].startswith("[image image/png, 48 bytes] (attached earlier")
    failed = pepperpy(home, "chat", "-p", "mock", "-a", str(tmp_path / "missing.png"), "hi")
    assert failed.returncode == 1 and "missing.png: no such file" in failed.stderr


def test_attach_refusals_say_what_to_do_on_the_command_line(home, tmp_path, slow_plugins):
    """llm/slow takes text only; llm/mock takes any part (it shows what was sent)."""
    (tmp_path / "notes.md").write_text("# notes\n")
    (tmp_path / "foo.xyz").write_bytes(b"\x00\x01 some data")
    extra = {"PEPPERPY_PLUGIN_PATH": str(slow_plugins)}
    text = pepperpy(home, "chat", "-p", "slow", "-a", str(tmp_path / "notes.md"), "hi", **extra)
    assert text.returncode == 1 and "cannot take the document part (text/markdown" in text.stderr
    assert f"pass it with -f {tmp_path / 'notes.md'}" in text.stderr, text.stderr
    (tmp_path / "handbook.pdf").write_bytes(b"%PDF-1.4 the handbook\n")
    pdf = pepperpy(home, "chat", "-p", "slow", "-a", str(tmp_path / "handbook.pdf"), "hi", **extra)
    assert pdf.returncode == 1 and "cannot take the document part (application/pdf" in pdf.stderr, pdf.stderr
    assert f"pass it with -f {tmp_path / 'handbook.pdf'}: loader/pdf reads its text" in pdf.stderr, pdf.stderr
    missing = pepperpy(home, "chat", "-p", "mock", "-a", str(tmp_path / "missing.png"), "hi")
    assert missing.returncode == 1
    assert "missing.png: no such file; attach an existing file or a URL" in missing.stderr, missing.stderr
    assert "bytes" not in missing.stderr
    odd = pepperpy(home, "chat", "-p", "slow", "-a", str(tmp_path / "foo.xyz"), "hi", **extra)
    assert odd.returncode == 1 and "(application/octet-stream, " in odd.stderr and "media type is unknown" in odd.stderr
    assert "chemical" not in odd.stderr
    assert ok(pepperpy(home, "chat", "-p", "mock", "-a", str(tmp_path / "foo.xyz"), "what is it?")) == "what is it?\n"
    assert logged(home)[-1].messages[0]["content"][1]["media_type"] == "application/octet-stream"


def test_json_prints_one_object(home):
    result = json.loads(ok(pepperpy(home, "chat", "-p", "mock", "-s", "be brief", "--json", "hello json")))
    assert result["content"] == "hello json"
    assert (result["provider"], result["model"]) == ("llm/mock", "mock")
    assert result["usage"] == {"prompt_tokens": 4, "completion_tokens": 2}
    (call,) = logged(home)
    assert call.conversation_id == result["conversation_id"] and not call.stream
    assert call.messages[0] == {"role": "system", "content": "be brief"}


def test_continue_sends_the_previous_turns(home):
    ok(pepperpy(home, "chat", "-p", "mock", "-s", "be brief", "first turn"))
    assert ok(pepperpy(home, "chat", "-p", "mock", "-c", "second turn")) == "second turn\n"
    first, second = logged(home)
    assert second.conversation_id == first.conversation_id
    assert [(m["role"], m["content"]) for m in second.messages] == [
        ("system", "be brief"), ("user", "first turn"), ("assistant", "first turn"), ("user", "second turn"),
    ]


def test_cid_continues_a_given_conversation(home):
    ok(pepperpy(home, "chat", "-p", "mock", "about apples"))
    ok(pepperpy(home, "chat", "-p", "mock", "about pears"))
    apples = logged(home)[0].conversation_id
    ok(pepperpy(home, "chat", "-p", "mock", "--cid", apples, "back to apples"))
    last = logged(home)[-1]
    assert last.conversation_id == apples
    assert [m["content"] for m in last.messages] == ["about apples", "about apples", "back to apples"]
    unknown = pepperpy(home, "chat", "-p", "mock", "--cid", "nope", "hi")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.count("\n") == 1 and "conversation nope" in unknown.stderr and "pepperpy logs" in unknown.stderr


def test_no_log_writes_nothing(home):
    assert ok(pepperpy(home, "chat", "-p", "mock", "--no-log", "private")) == "private\n"
    assert not default_path(home).exists()
    empty = pepperpy(home, "chat", "-p", "mock", "-c", "hi")
    assert empty.returncode == 1 and "no conversation in the call log" in empty.stderr


def test_errors_are_one_line_with_exit_code_1(home, tmp_path):
    unknown = pepperpy(home, "chat", "-p", "mokc", "hi")
    assert unknown.returncode == 1 and unknown.stdout == ""
    assert unknown.stderr.startswith("pepperpy: ") and unknown.stderr.count("\n") == 1
    assert "did you mean llm/mock" in unknown.stderr
    missing = pepperpy(home, "chat", "-p", "mock", "-f", str(tmp_path / "absent.md"), "hi")
    assert missing.returncode == 1 and missing.stderr == f"pepperpy: -f {tmp_path / 'absent.md'}: no such file; check the path\n"
    bad_option = pepperpy(home, "chat", "-p", "mock", "-m", "gpt-x", "hi")
    assert bad_option.returncode == 1 and bad_option.stderr.count("\n") == 1
    assert "unknown option 'model' for llm/mock (-m sets the provider's model option)" in bad_option.stderr
    plain = pepperpy(home, "chat", "-p", "mock", "-o", "model=gpt-x", "hi")  # not -m: no word about it
    assert "unknown option 'model' for llm/mock;" in plain.stderr and "-m sets" not in plain.stderr
    both = pepperpy(home, "chat", "-p", "mock", "-c", "--cid", "x", "hi")
    assert both.returncode == 2 and "pass one of them" in both.stderr


def test_a_missing_option_is_named_as_the_command_passes_it(home, needy_plugins):
    done = pepperpy(home, "chat", "-p", "needy", "hi", PEPPERPY_PLUGIN_PATH=str(needy_plugins))
    assert done.returncode == 1 and done.stderr.count("\n") == 1
    assert "llm/needy needs the option 'prefix'; pass -o prefix=..." in done.stderr
    assert "pass prefix=" not in done.stderr
    answer = pepperpy(home, "chat", "-p", "needy", "-o", "prefix=> ", "hi", PEPPERPY_PLUGIN_PATH=str(needy_plugins))
    assert ok(answer) == "> hi\n"


def test_continue_keeps_the_provider_of_the_conversation(home):
    """-c and --cid without -p go on with what the conversation used: an alias with its presets, a fallback list."""
    ok(pepperpy(home, "aliases", "set", "parrot", "mock", "-o", 'replies=["polly"]'))
    assert ok(pepperpy(home, "chat", "-p", "parrot", "what colour?")) == "polly\n"
    assert ok(pepperpy(home, "chat", "-c", "what colour, again?")) == "polly\n"  # not llm/local, not a bare mock
    parrot = logged(home)[-1].conversation_id

    chain = json.loads(ok(pepperpy(home, "chat", "-p", "openai,mock", "--json", "hi")))  # no OPENAI_API_KEY here
    again = json.loads(ok(pepperpy(home, "chat", "-c", "--json", "again")))
    assert again["conversation_id"] == chain["conversation_id"] and again["content"] == "again"
    assert logged(home)[-1].fallback["failed"][0]["member"] == "openai"  # the whole list was used again

    assert ok(pepperpy(home, "chat", "--cid", parrot, "and the beak?")) == "polly\n"
    assert ok(pepperpy(home, "chat", "--cid", parrot, "-p", "mock", "echo this")) == "echo this\n"  # -p wins
    assert ok(pepperpy(home, "chat", "--cid", parrot, "now?")) == "now?\n"  # ... and is kept from then on
    assert [c.conversation_id for c in logged(home)[-3:]] == [parrot] * 3


def test_continue_without_a_record_uses_the_call_logs_provider(home):
    """A conversation the command has no record of (made by a script with with_logging(), or the record file
    lost): the provider of its last logged call. PEPPERPY_LLM names another default, which must not answer."""
    ok(pepperpy(home, "chat", "-p", "mock", "first"))
    (home / "chat_providers.json").unlink()
    ok(pepperpy(home, "aliases", "set", "parrot", "mock", "-o", 'replies=["polly"]'))
    assert ok(pepperpy(home, "chat", "-c", "second", PEPPERPY_LLM="parrot")) == "second\n"
    (home / "chat_providers.json").write_text("{not json")
    corrupt = pepperpy(home, "chat", "-c", "third", PEPPERPY_LLM="parrot")
    assert corrupt.stdout == "third\n" and corrupt.returncode == 0
    assert f"note: {home / 'chat_providers.json'} cannot be read" in corrupt.stderr
    assert json.loads((home / "chat_providers.json").read_text())  # rewritten
    assert ok(pepperpy(home, "chat", "fresh", PEPPERPY_LLM="parrot")) == "polly\n"  # no -c: the default


def test_json_names_the_plugin_behind_an_alias_or_a_fallback_member(home):
    ok(pepperpy(home, "aliases", "set", "parrot", "mock", "-o", 'replies=["polly"]'))
    direct = json.loads(ok(pepperpy(home, "chat", "-p", "parrot", "--json", "hi")))
    assert (direct["content"], direct["provider"], direct["model"]) == ("polly", "llm/mock", "mock")
    served = json.loads(ok(pepperpy(home, "chat", "-p", "openai,parrot", "--json", "hi")))
    assert (served["content"], served["provider"], served["model"]) == ("polly", "llm/mock", "mock")


def test_a_fallback_list_is_served_by_the_next_member(home):
    result = json.loads(ok(pepperpy(home, "chat", "-p", "openai,mock", "--json", "hi")))  # no OPENAI_API_KEY here
    assert (result["content"], result["provider"]) == ("hi", "llm/mock")
    (call,) = logged(home)
    assert call.fallback["served_by"] == "mock"
    assert call.fallback["failed"][0]["member"] == "openai" and "OPENAI_API_KEY" in call.fallback["failed"][0]["error"]


def test_ctrl_c_during_a_stream_stops_it_with_exit_code_130(home, slow_plugins):
    env = environment(home, {"PEPPERPY_PLUGIN_PATH": str(slow_plugins)})
    home.parent.mkdir(parents=True, exist_ok=True)
    child = subprocess.Popen(
        [sys.executable, "-m", "pepperpy", "chat", "-p", "slow", "count"], stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=home.parent,
        preexec_fn=default_sigint,  # Python then installs its own handler, also when this run ignores SIGINT
    )
    try:
        received = b""
        while b"tick1" not in received:
            piece = os.read(child.stdout.fileno(), 4096)
            assert piece, f"the stream ended early: {received!r} {child.stderr.read()!r}"
            received += piece
        child.send_signal(signal.SIGINT)
        rest, errors = child.communicate(timeout=60)
    finally:
        if child.poll() is None:
            child.kill()
    assert child.returncode == 130, errors
    output = (received + rest).decode()
    assert output.startswith("tick0 tick1 ") and output.endswith("\n") and "Traceback" not in errors.decode()
    (call,) = logged(home)
    assert call.outcome == "stopped" and call.answer.startswith("tick0 tick1 ") and call.error is None


class Terminal:
    """The command on a real pseudo-terminal (pty.fork: its stdin and stdout are the terminal, Ctrl-C is a SIGINT)."""

    def __init__(self, home: Path, *args: str, **env: str):
        home.parent.mkdir(parents=True, exist_ok=True)
        environment_ = environment(home, env)
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: becomes the command
            default_sigint()
            os.chdir(home.parent)
            os.execve(sys.executable, [sys.executable, "-m", "pepperpy", *args], environment_)
        self.seen = ""

    def expect(self, text: str) -> str:
        """Read until ``text`` appears after what was read so far; return what came before it."""
        while text not in self.seen:
            ready, _, _ = select.select([self.fd], [], [], 300)  # a guard against a hang, not a speed check
            assert ready, f"nothing more from the terminal while waiting for {text!r}; it shows {self.seen!r}"
            try:
                data = os.read(self.fd, 4096)
            except OSError:  # the child closed the terminal
                data = b""
            assert data, f"the command exited before {text!r}; the terminal shows {self.seen!r}"
            self.seen += data.decode(errors="replace").replace("\r\n", "\n")
        before, _, self.seen = self.seen.partition(text)
        return before

    def send(self, text: str) -> None:
        os.write(self.fd, text.encode())

    def exit_code(self) -> int:
        try:
            while os.read(self.fd, 4096):
                pass
        except OSError:
            pass
        _, status = os.waitpid(self.pid, 0)
        os.close(self.fd)
        return os.waitstatus_to_exitcode(status)


def test_the_repl_keeps_the_conversation_and_takes_multi_line_messages(home):
    replies = json.dumps(["first answer", "second answer", "multi answer"])
    terminal = Terminal(home, "chat", "-p", "mock", "-o", f"replies={replies}")
    banner = terminal.expect("> ")
    assert "llm/mock" in banner and "!multi" in banner and "!end" in banner and "exit" in banner
    terminal.send("hello there\n")
    assert terminal.expect("> ").strip().endswith("first answer")
    terminal.send("and then?\n")
    assert terminal.expect("> ").strip().endswith("second answer")
    terminal.send("!multi\nline one\nline two\n!end\n")
    assert terminal.expect("> ").strip().endswith("multi answer")
    terminal.send("quit\n")
    assert terminal.exit_code() == 0

    first, second, multi = logged(home)
    assert first.conversation_id == second.conversation_id == multi.conversation_id
    assert [(m["role"], m["content"]) for m in second.messages] == [
        ("user", "hello there"), ("assistant", "first answer"), ("user", "and then?"),
    ]
    assert multi.prompt == "line one\nline two"
    assert "hello there" in (home / "chat_history").read_text()


def test_ctrl_c_in_the_repl_stops_the_answer_and_ctrl_d_leaves(home, slow_plugins):
    terminal = Terminal(home, "chat", "-p", "slow", PEPPERPY_PLUGIN_PATH=str(slow_plugins))
    terminal.expect("> ")
    terminal.send("count please\n")
    terminal.expect("tick1 ")
    terminal.send("\x03")  # Ctrl-C: the terminal sends SIGINT
    terminal.expect("> ")  # back at the prompt, the command still running
    terminal.send("\x04")  # Ctrl-D on an empty line
    assert terminal.exit_code() == 0
    (call,) = logged(home)
    assert call.outcome == "stopped" and call.answer.startswith("tick0 tick1 ")


def test_the_default_local_model_answers(session_home, local_manager):
    """The real llm/local (SmolLM2 on llama.cpp), the default provider, installed in the session home."""
    output = ok(pepperpy(session_home, "chat", "-o", "max_tokens=24", "-o", "temperature=0",
                         "What is the capital of France?"))
    assert output.strip()
    call = logged(session_home)[-1]
    assert call.provider == "llm/local" and call.answer.strip() == output.strip()
    assert call.completion_tokens > 0


def test_the_ctrl_c_tests_pass_in_a_run_that_ignores_sigint():
    """`nohup bash scripts/test.sh &` from a script starts the suite with SIGINT ignored, and an ignored signal
    stays ignored in every child: the Ctrl-C tests start their commands with SIGINT at its default. Run here
    in a pytest process started with SIGINT ignored, as that script would."""
    repository = Path(__file__).resolve().parents[2]
    tests = ["tests/unit/test_cli_root.py::test_ctrl_c_exits_130_quietly",
             "tests/integration/test_cli_chat.py::test_ctrl_c_in_the_repl_stops_the_answer_and_ctrl_d_leaves",
             "tests/integration/test_cli_chat.py::test_ctrl_c_during_a_stream_stops_it_with_exit_code_130"]
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests], capture_output=True, text=True,
        cwd=repository, timeout=600, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert run.returncode == 0 and "3 passed" in run.stdout, run.stdout[-3000:] + run.stderr[-2000:]
