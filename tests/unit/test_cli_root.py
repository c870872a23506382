"""The `pepperpy` command's root: routing to chat, --version, --help, exit codes, errors, lazy imports.

Commands run in subprocesses (`python -m pepperpy`, or the venv's `pepperpy` script) with
PEPPERPY_HOME in tmp_path. Commands added by installed distributions are tested with a
distribution written to disk as an installer leaves it (a package and its .dist-info with
entry_points.txt) on PYTHONPATH: importlib.metadata reads it like any installed one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import click
import pytest

from pepperpy._version import __version__
from pepperpy.cli import COMMANDS, route
from pepperpy.cli._common import fail, import_command, manager, parse_key_values, print_table
from pepperpy.plugin_manager import PluginManager
from tests.command import default_sigint

COMMAND_MODULES = sorted({target.split(":")[0] for target, _ in COMMANDS.values()})

COMMANDS_PACKAGE = '''
import sys
import time

import click

from pepperpy.errors import ConfigError


@click.command()
def hello():
    """Say hello (a command of an installed distribution)."""
    click.echo("hello from a distribution")


@click.command()
def boom():
    raise ConfigError("the setting 'colour' of boom is invalid; set it to red or blue")


@click.command()
def crash():
    1 / 0


@click.command()
def wait():
    print("ready", flush=True)
    time.sleep(60)


not_a_command = "just a string"
'''


def run(*args: str, home: Path, env: dict[str, str] | None = None, script: bool = False) -> subprocess.CompletedProcess:
    command = [str(Path(sys.executable).parent / "pepperpy")] if script else [sys.executable, "-m", "pepperpy"]
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, timeout=300, cwd=home.parent,
        env={**os.environ, "PEPPERPY_HOME": str(home), **(env or {})},
    )


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def commands_site(tmp_path: Path) -> Path:
    """A distribution ``pepperpy-test-commands 0.1`` adding commands, on PYTHONPATH of the child processes."""
    site = tmp_path / "site"
    (site / "hello_cmds").mkdir(parents=True)
    (site / "hello_cmds" / "__init__.py").write_text(textwrap.dedent(COMMANDS_PACKAGE))
    info = site / "pepperpy_test_commands-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pepperpy-test-commands\nVersion: 0.1\n")
    entry_points = {
        "hello": "hello_cmds:hello", "boom": "hello_cmds:boom", "crash": "hello_cmds:crash", "wait": "hello_cmds:wait",
        "notcmd": "hello_cmds:not_a_command", "broken": "hello_cmds_missing.module:command",
    }
    lines = "".join(f"{name} = {value}\n" for name, value in entry_points.items())
    (info / "entry_points.txt").write_text(f"[pepperpy.commands]\n{lines}")
    return site


def python_path(site: Path) -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}


def modules_after(argv: list[str], home: Path) -> set[str]:
    """The pepperpy, pydantic and loguru modules a child process imported to run ``main(argv)``."""
    code = textwrap.dedent(f"""
        import contextlib, io, json, sys
        from pepperpy.cli import main
        with contextlib.redirect_stdout(io.StringIO()):
            code = main({argv!r})
        print(json.dumps([code, sorted(m for m in sys.modules if m.startswith(("pepperpy", "pydantic", "loguru")))]))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=home.parent,
                          env={**os.environ, "PEPPERPY_HOME": str(home)})
    assert done.returncode == 0, done.stderr
    code_, modules = json.loads(done.stdout.splitlines()[-1])
    assert code_ == 0
    return set(modules)


# -- --version, --help ------------------------------------------------------------------------------------


def test_version_prints_the_version(home):
    done = run("--version", home=home)
    assert (done.returncode, done.stdout, done.stderr) == (0, f"pepperpy {__version__}\n", "")


def test_the_console_script_runs_the_same_command(home):
    if not (Path(sys.executable).parent / "pepperpy").exists():
        pytest.skip("the pepperpy script is not installed next to this interpreter")
    done = run("--version", home=home, script=True)
    assert (done.returncode, done.stdout) == (0, f"pepperpy {__version__}\n")


def test_help_lists_every_command_with_its_line(home):
    done = run("--help", home=home)
    assert done.returncode == 0 and done.stderr == ""
    listed = " ".join(done.stdout.split())
    for name, (_, help_line) in COMMANDS.items():
        assert f"{name} {' '.join(help_line.split())}" in listed
    assert "--version" in done.stdout and "--debug" in done.stdout
    assert run("-h", home=home).stdout == done.stdout


def test_help_and_version_import_no_command_module(home):
    for argv in (["--help"], ["--version"]):
        imported = modules_after(argv, home)
        assert not imported & set(COMMAND_MODULES), argv
        assert not any(m.startswith(("pydantic", "loguru")) for m in imported), argv
        assert "pepperpy.plugin_manager" not in imported


def test_every_subcommand_has_help(home):
    """--help everywhere: each group and command answers it with exit code 0."""
    for argv in (["plugins", "--help"], ["plugins", "list", "--help"], ["plugins", "info", "--help"],
                 ["plugins", "install", "--help"], ["plugins", "check", "--help"], ["plugins", "new", "--help"]):
        done = run(*argv, home=home)
        assert done.returncode == 0 and done.stdout.startswith("Usage: pepperpy plugins"), (argv, done.stderr)


GROUPS = (["--help"], ["plugins", "--help"], ["keys", "--help"], ["aliases", "--help"], ["options", "--help"])


def command_lines(help_text: str) -> list[str]:
    """The lines of the help's Commands section."""
    section = help_text.split("Commands:\n", 1)[1]
    return [line for line in section.split("\n\n", 1)[0].splitlines() if line.strip()]


def test_every_command_of_every_group_has_a_whole_help_line(home):
    """On an 80-column screen each command's line is whole: not cut ("Save the key NAME (e.g."), not wrapped."""
    for argv in GROUPS:
        done = run(*argv, home=home, env={"COLUMNS": "80"})
        assert done.returncode == 0, (argv, done.stderr)
        lines = command_lines(done.stdout)
        names = [line.split()[0] for line in lines]
        assert len(names) >= 3 and all(line.startswith("  ") and not line.startswith("   ") for line in lines), (
            argv, lines)  # a wrapped line would be indented under the help column
        for line in lines:
            assert not line.endswith("...") and line.rstrip().endswith("."), (argv, line)
            assert line.count("(") == line.count(")"), (argv, line)  # not cut inside "(e.g. ...)"
            assert len(line) <= 80, (argv, line)


def test_a_multi_line_error_is_reported_on_one_line(home, tmp_path):
    """A PluginNotFoundError lists the folders that failed validation on lines of their own; the root joins them."""
    broken = tmp_path / "extra" / "broken"
    broken.mkdir(parents=True)
    (broken / "plugin.json").write_text("{not json")
    done = run("options", "set", "mokc", "cycle", "false", home=home,
               env={"PEPPERPY_PLUGIN_PATH": str(tmp_path / "extra")})
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1, done.stderr
    assert done.stderr.startswith("pepperpy: no llm plugin named 'mokc'; did you mean llm/mock?")
    assert f"skipped: {broken}: {broken / 'plugin.json'}: invalid JSON" in done.stderr


# -- the default command -----------------------------------------------------------------------------------


def test_route_puts_chat_in_front_of_what_names_no_command():
    assert route([]) == ["chat"]
    assert route(["hello"]) == ["chat", "hello"]
    assert route(["Why is the sky blue?"]) == ["chat", "Why is the sky blue?"]
    assert route(["--debug"]) == ["--debug", "chat"]
    assert route(["--debug", "hi"]) == ["--debug", "chat", "hi"]
    assert route(["-p", "mock", "hi"]) == ["chat", "-p", "mock", "hi"]
    assert route(["--", "-not an option"]) == ["chat", "--", "-not an option"]


def test_route_leaves_commands_and_root_options_alone():
    for args in (["plugins", "list"], ["chat", "hi"], ["--debug", "plugins"], ["--version"], ["--help"], ["-h"],
                 ["--debug", "--help"], ["keys"]):
        assert route(list(args)) == list(args)


def test_route_refuses_a_mistyped_command_instead_of_chatting_it():
    with pytest.raises(click.UsageError, match=r"no command 'plugns'; did you mean 'plugins'\? .*pepperpy chat plugns"):
        route(["plugns", "list"])


@pytest.mark.parametrize(("args", "word", "meant"), [
    (["logz"], "logz", "logs"),  # a letter replaced
    (["keyz"], "keyz", "keys"),
    (["chta", "hi"], "chta", "chat"),  # two letters swapped
    (["doctr"], "doctr", "doctor"),  # a letter dropped
    (["optionss", "list"], "optionss", "options"),  # a letter added
    (["log"], "log", "logs"),
    (["Keys", "list"], "Keys", "keys"),  # case
    (["hcat"], "hcat", "chat"),  # the first two letters swapped
    (["--debug", "plugisn"], "plugisn", "plugins"),
    (["-m", "x", "doctr"], "doctr", "doctor"),  # chat's options before the word
    (["-p", "mock", "-o", "a=1", "--json", "kyes"], "kyes", "keys"),
    (["--model=x", "aliasse"], "aliasse", "aliases"),
    (["-mx", "logz"], "logz", "logs"),  # a value attached to its option
    (["-cm", "x", "logz"], "logz", "logs"),  # a flag, then an option taking the next argument
])
def test_route_refuses_a_word_one_edit_from_a_command(args, word, meant):
    """A slip of one letter in a short command name, also after chat's options, is not sent to the model."""
    with pytest.raises(click.UsageError) as raised:
        route(list(args))
    message = raised.value.format_message()
    assert f"no command '{word}'; did you mean '{meant}'?" in message
    chat_args = args[1:] if args[0] == "--debug" else args
    assert message.endswith(f"To send it to chat, run: pepperpy chat {' '.join(chat_args)}")


def test_route_refuses_a_command_placed_after_chats_options():
    with pytest.raises(click.UsageError, match=r"^'doctor' is a command: put it first \(pepperpy doctor \.\.\.\)\. "
                                               r"To send it to chat, run: pepperpy chat -m x doctor$"):
        route(["-m", "x", "doctor"])


@pytest.mark.parametrize("args", [
    ["hi"], ["ok"], ["log this"], ["what", "is", "love"], ["that", "one"], ["Why is the sky blue?"], ["hello"],
    ["explain", "logs"], ["-p", "mock", "hi"], ["-m", "x", "what", "now"], ["--", "logz"], ["-s", "logz", "hello"],
    ["logs?"], ["chats!"],
])
def test_route_sends_real_prompts_to_chat(args):
    """Short words, sentences, words two edits away or with another first letter (what, that), words after
    "--" and option values are prompts."""
    assert route(list(args)) == ["chat", *args]


def test_a_bare_message_reaches_chat(home):
    """`pepperpy "..."` runs `pepperpy chat "..."`: the mock LLM echoes the message (the chat command's own
    tests cover chat; here only the routing is at stake)."""
    done = run("echo this back", "--no-log", home=home, env={"PEPPERPY_LLM": "mock"})
    if (Path(__file__).parents[2] / "pepperpy" / "cli" / "chat.py").exists():
        assert (done.returncode, done.stdout.strip()) == (0, "echo this back"), done.stderr
    else:
        assert done.returncode == 1 and "the command 'pepperpy chat' is not available" in done.stderr


def test_a_mistyped_command_exits_2_and_asks_no_model(home):
    """`pepperpy logz` with a default provider: a usage error, and no call in the call log (nothing was sent)."""
    for args in (["logz"], ["chta", "hi"], ["-p", "mock", "keyz"]):
        done = run(*args, home=home, env={"PEPPERPY_LLM": "mock"})
        assert (done.returncode, done.stdout) == (2, ""), (args, done.stderr)
        assert len(done.stderr.splitlines()) == 1 and "did you mean" in done.stderr, done.stderr
        assert f"pepperpy chat {' '.join(args)}" in done.stderr
    assert not (home / "logs.db").exists()
    sent = run("chat", "logz", home=home, env={"PEPPERPY_LLM": "mock"})  # the way the message offers
    assert (sent.returncode, sent.stdout) == (0, "logz\n"), sent.stderr


def test_a_group_named_alone_prints_its_help(home):
    """`pepperpy keys` shows the help `pepperpy keys --help` shows, on its lines (not folded into one error line)."""
    for group in ("keys", "aliases", "options"):
        alone, asked = run(group, home=home), run(group, "--help", home=home)
        assert (alone.returncode, alone.stderr) == (0, ""), (group, alone.stderr)
        assert alone.stdout == asked.stdout and alone.stdout.startswith(f"Usage: pepperpy {group} ")
        assert "\nCommands:\n" in alone.stdout


def test_an_unknown_option_before_a_message_is_reported_by_chat(home):
    done = run("--no-such-option", "hi", home=home)
    assert done.returncode in (1, 2) and "pepperpy chat" in done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.strip().splitlines()) == 1


# -- errors and exit codes ---------------------------------------------------------------------------------


def test_a_usage_error_is_one_line_with_exit_code_2(home):
    done = run("plugins", "info", home=home)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == ["pepperpy: Missing argument 'ID' (see 'pepperpy plugins info --help')"]
    done = run("plugins", "nope", home=home)
    assert done.returncode == 2 and done.stderr.startswith("pepperpy: No such command 'nope'")


def test_a_pepperpy_error_is_one_line_with_exit_code_1_and_no_traceback(home, commands_site):
    done = run("boom", home=home, env=python_path(commands_site))
    assert done.returncode == 1 and done.stdout == ""
    assert done.stderr.splitlines() == ["pepperpy: the setting 'colour' of boom is invalid; set it to red or blue"]


def test_debug_shows_the_traceback(home, commands_site):
    done = run("--debug", "boom", home=home, env=python_path(commands_site))
    assert done.returncode == 1
    assert done.stderr.startswith("Traceback (most recent call last):")
    assert 'hello_cmds/__init__.py", line' in done.stderr
    assert done.stderr.splitlines()[-1] == "pepperpy: the setting 'colour' of boom is invalid; set it to red or blue"


def test_an_unexpected_error_is_one_line_that_points_at_debug(home, commands_site):
    done = run("crash", home=home, env=python_path(commands_site))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        "pepperpy: ZeroDivisionError: division by zero (run with --debug for the traceback)"
    ]


def test_ctrl_c_exits_130_quietly(home, commands_site):
    process = subprocess.Popen(
        [sys.executable, "-m", "pepperpy", "wait"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        cwd=home.parent, env={**os.environ, "PEPPERPY_HOME": str(home), **python_path(commands_site)},
        preexec_fn=default_sigint,  # Python then installs its own handler, also when this run ignores SIGINT
    )
    try:
        assert process.stdout.readline() == "ready\n"
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130
    assert stderr.strip() == ""


# -- commands of installed distributions -------------------------------------------------------------------


def test_a_distribution_adds_a_command(home, commands_site):
    done = run("hello", home=home, env=python_path(commands_site))
    assert (done.returncode, done.stdout) == (0, "hello from a distribution\n"), done.stderr
    listed = run("--help", home=home, env=python_path(commands_site)).stdout
    assert "hello" in listed and "(from pepperpy-test-commands 0.1)" in listed


def test_a_broken_entry_point_names_its_distribution(home, commands_site):
    done = run("broken", home=home, env=python_path(commands_site))
    assert done.returncode == 1 and len(done.stderr.splitlines()) == 1
    assert "the command 'broken' of pepperpy-test-commands 0.1" in done.stderr
    assert "ModuleNotFoundError" in done.stderr and "reinstall or fix pepperpy-test-commands 0.1" in done.stderr
    done = run("notcmd", home=home, env=python_path(commands_site))
    assert done.returncode == 1 and "is a str, not a click command; fix pepperpy-test-commands 0.1" in done.stderr


def test_a_built_in_command_wins_over_a_distributions_of_the_same_name(home, commands_site):
    info = commands_site / "pepperpy_test_commands-0.1.dist-info" / "entry_points.txt"
    info.write_text(info.read_text() + "plugins = hello_cmds:hello\n")
    done = run("plugins", "--help", home=home, env=python_path(commands_site))
    assert done.returncode == 0 and "Usage: pepperpy plugins" in done.stdout


def test_a_missing_command_module_is_a_clear_error():
    with pytest.raises(click.ClickException, match=r"'pepperpy gone' is not available .*pepperpy\.cli\.no_such_module"):
        import_command("gone", "pepperpy.cli.no_such_module:gone")
    with pytest.raises(click.ClickException, match=r"json:dumps is not a click command"):
        import_command("dumps", "json:dumps")


def test_a_module_missing_inside_a_command_module_is_not_hidden(tmp_path, monkeypatch):
    (tmp_path / "needs_dep_cmd.py").write_text("import surely_not_installed_dependency_4242\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(ModuleNotFoundError, match="surely_not_installed_dependency_4242"):
        import_command("x", "needs_dep_cmd:x")


# -- helpers for the command modules (pepperpy/cli/_common.py) -------------------------------------------


def test_parse_key_values_reads_json_values_and_keeps_the_rest_as_text():
    parsed = parse_key_values(["t=0.5", "n=3", "on=true", "stop=[\"a\", \"b\"]", "name=gpt-4o", "empty=", "eq=a=b"])
    assert parsed == {"t": 0.5, "n": 3, "on": True, "stop": ["a", "b"], "name": "gpt-4o", "empty": "", "eq": "a=b"}


def test_parse_key_values_names_a_pair_without_equals():
    with pytest.raises(click.BadParameter, match=r"'temperature' is not key=value \(for example --set temperature=0\)"):
        parse_key_values(["a=1", "temperature"], what="--set")


def test_print_table_aligns_plain_columns_when_not_on_a_terminal(capsys):
    print_table(["ID", "VERSION"], [["llm/mock", "0.1.0"], ["rag/a", "12.0.0"]])
    assert capsys.readouterr().out.splitlines() == ["ID        VERSION", "llm/mock  0.1.0", "rag/a     12.0.0"]


def test_fail_is_a_click_error_with_exit_code_1():
    with pytest.raises(click.ClickException) as raised:
        fail("something is wrong; do this")
    assert (raised.value.exit_code, raised.value.format_message()) == (1, "something is wrong; do this")


def test_manager_is_the_process_wide_manager():
    assert manager() is PluginManager.instance()
