"""The ``pepperpy`` command: a click group whose subcommands are imported only when named.

``pepperpy "hello"`` is ``pepperpy chat "hello"`` and a bare ``pepperpy`` is ``pepperpy chat``:
when the first argument is neither a command nor a root option, ``chat`` is put in front.
Installed distributions add commands through the entry-point group ``pepperpy.commands``
(name: the command, value: ``"module:attribute"`` naming a click command or group).

A group named alone (``pepperpy keys``) prints its help, as ``--help`` does.
Exit codes: 0 success; 1 an error (``pepperpy: <message>`` on stderr, a traceback only with
``--debug``); 2 a usage error (a bad option or argument, as click reports it); 130 Ctrl-C.
"""

from __future__ import annotations

import sys
import warnings
from typing import Any

import click

from pepperpy._version import __version__
from pepperpy.cli._common import LazyGroup, fail
from pepperpy.errors import PepperPyError

ENTRY_POINT_GROUP = "pepperpy.commands"

# Command -> ("module:attribute", one-line help). Listing the help imports none of them.
COMMANDS: dict[str, tuple[str, str]] = {
    "chat": ("pepperpy.cli.chat:chat", "Chat with an LLM: one answer, or a REPL on a terminal (default)."),
    "logs": ("pepperpy.cli.logs:logs", "Show the last LLM calls of the call log."),
    "plugins": ("pepperpy.cli.plugins:plugins", "List, inspect, install, check and scaffold plugins."),
    "keys": ("pepperpy.cli.settings:keys", "API keys: save, list where each is set, show keys.json's path."),
    "aliases": ("pepperpy.cli.settings:aliases", "Other names for plugins with preset options (aliases.json)."),
    "options": ("pepperpy.cli.settings:options", "Default options per plugin or alias (options.json)."),
    "cooldown": ("pepperpy.cli.cooldown:cooldown", "Install cooldown; packages a plugin may take at any age."),
    "doctor": ("pepperpy.cli.doctor:doctor", "Check Python, uv, the home, plugins, keys and the local model."),
    "templates": ("pepperpy.cli.templates:templates", "Saved prompt templates: save, list, show, edit, remove."),
    "mcp": ("pepperpy.cli.mcp:mcp", "Serve a store to MCP hosts as tools: pepperpy mcp serve."),
}
DEFAULT_COMMAND = "chat"
_ROOT_FLAGS = ("--debug",)
_ROOT_EXITING = ("--version", "--help", "-h")


def command_entry_points() -> dict[str, Any]:
    """The ``pepperpy.commands`` entry points by name (metadata only; the first distribution wins)."""
    import importlib.metadata

    found: dict[str, Any] = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry_point.name, entry_point)
    return found


def _distribution(entry_point: Any) -> str:
    distribution = getattr(entry_point, "dist", None)
    if distribution is None:
        return "an unknown distribution"
    return f"{distribution.metadata['Name']} {distribution.version}".strip()


def load_entry_point_command(name: str, entry_point: Any) -> click.Command:
    """Import the command an installed distribution declares; a broken one is an error naming it."""
    source = _distribution(entry_point)
    described = (
        f"the command '{name}' of {source} (entry point {name} = {entry_point.value!r}, group {ENTRY_POINT_GROUP})"
    )
    try:
        command = entry_point.load()
    except Exception as exc:
        fail(f"{described} failed to load: {type(exc).__name__}: {exc}; reinstall or fix {source}")
    if not isinstance(command, click.Command):
        fail(f"{described} is a {type(command).__name__}, not a click command; fix {source}")
    return command


class RootGroup(LazyGroup):
    """The built-in commands of ``COMMANDS`` plus those of installed distributions."""

    def _entry_points(self, ctx: click.Context) -> dict[str, Any]:
        meta = ctx.find_root().meta
        if "pepperpy.command_entry_points" not in meta:
            found = command_entry_points()
            meta["pepperpy.command_entry_points"] = {k: v for k, v in found.items() if k not in self.lazy}
        return meta["pepperpy.command_entry_points"]

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self._entry_points(ctx)})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is None and cmd_name in self._entry_points(ctx):
            command = load_entry_point_command(cmd_name, self._entry_points(ctx)[cmd_name])
        return command

    def help_line(self, ctx: click.Context, name: str) -> str | None:
        known = super().help_line(ctx, name)
        if known is None and name in self._entry_points(ctx):
            return f"(from {_distribution(self._entry_points(ctx)[name])})"
        return known


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        click.echo(f"pepperpy {__version__}")
        ctx.exit()


@click.group(
    cls=RootGroup,
    lazy=COMMANDS,
    context_settings={"help_option_names": ["-h", "--help"]},
    epilog='Without a command, the arguments go to chat: pepperpy "Why is the sky blue?"',
)
@click.option("--version", is_flag=True, expose_value=False, is_eager=True, callback=_print_version,
              help="Print the version and exit.")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """PepperPy: LLMs, embeddings, retrieval and storage, each provider a plugin."""
    ctx.meta["pepperpy.debug"] = debug


def route(args: list[str]) -> list[str]:
    """Put ``chat`` in front of the arguments when they name no command (``pepperpy "hello"``).

    A first word that looks like a mistyped command (``logz``, ``chta hi``, ``-m x doctr``) is a usage
    error saying "did you mean" and how to send it to chat anyway: a typo must not cost a model call.
    """
    position = 0
    while position < len(args) and args[position] in (*_ROOT_FLAGS, *_ROOT_EXITING):
        position += 1
    if any(arg in _ROOT_EXITING for arg in args[:position]):
        return args
    if position < len(args) and args[position] in COMMANDS:
        return args
    entry_points = command_entry_points() if position < len(args) else {}
    if position < len(args) and args[position] in entry_points:
        return args
    word = _first_word(args, position)
    if word is not None:
        _refuse_a_command_name(args[word], word > position, [*COMMANDS, *entry_points], args[position:])
    return [*args[:position], DEFAULT_COMMAND, *args[position:]]


def _first_word(args: list[str], start: int) -> int | None:
    """The position of chat's first argument that is not an option or an option's value (None: none, or "--")."""
    takes_value: dict[str, int] | None = None
    position = start
    while position < len(args):
        arg = args[position]
        if arg == "--":
            return None  # what follows is the prompt, as the user made explicit
        if not arg.startswith("-") or arg == "-":
            return position
        if takes_value is None:
            takes_value = _chat_value_options()
        position += 1
        if arg.startswith("--"):
            if "=" not in arg and arg in takes_value:
                position += takes_value[arg]  # --model x, --param name value
            continue
        for index, letter in enumerate(arg[1:], start=1):  # -m x, -mx, -cm x (-c a flag)
            if f"-{letter}" in takes_value:
                if index == len(arg) - 1:
                    position += takes_value[f"-{letter}"]  # its values are the next arguments
                else:
                    position += takes_value[f"-{letter}"] - 1  # -Pname value
                break
    return None


def _chat_value_options() -> dict[str, int]:
    """The option names of chat that take values (``-m``, ``--model``, ...) and how many, from the command itself."""
    from pepperpy.cli._common import import_command

    command = import_command(DEFAULT_COMMAND, COMMANDS[DEFAULT_COMMAND][0])
    return {
        name: param.nargs for param in command.params
        if isinstance(param, click.Option) and not param.is_flag and not param.count for name in param.opts
    }


def _refuse_a_command_name(word: str, after_options: bool, names: list[str], chat_args: list[str]) -> None:
    """A usage error when ``word`` is a command placed after chat's options, or looks like a mistyped command."""
    import shlex

    send = f"To send it to chat, run: pepperpy chat {shlex.join(chat_args)}"
    if after_options and word in names:
        raise click.UsageError(f"'{word}' is a command: put it first (pepperpy {word} ...). {send}")
    close = _mistyped_command(word, names)
    if close is not None:
        raise click.UsageError(f"no command '{word}'; did you mean '{close}'? {send}")


def _mistyped_command(word: str, names: list[str]) -> str | None:
    """The command ``word`` is probably a typo of, or None.

    A typo is one edit from a name (a letter added, dropped, replaced, or two neighbours swapped) that keeps
    its first letter (``what`` and ``that`` are prompts, not typos of ``chat``), ignoring case; or close to a
    long name by difflib's measure (``plgns``). Words under 3 letters (``hi``) and words that are not
    identifiers (``"log this"``) are prompts.
    """
    import difflib

    if len(word) < 3 or not word.isidentifier():
        return None
    lowered = word.lower()
    for name in names:
        if _one_edit_apart(lowered, name) and (lowered[0] == name[0] or lowered[:2] == name[1::-1]):
            return name
    close = difflib.get_close_matches(lowered, names, n=1, cutoff=0.8)
    return close[0] if close else None


def _one_edit_apart(a: str, b: str) -> bool:
    """True when ``a`` and ``b`` are at most one edit apart (Damerau-Levenshtein distance <= 1)."""
    if abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        differ = [i for i in range(len(a)) if a[i] != b[i]]
        if len(differ) <= 1:
            return True
        first, second = differ[0], differ[-1]
        return len(differ) == 2 and second == first + 1 and (a[first], a[second]) == (b[second], b[first])
    shorter, longer = sorted((a, b), key=len)
    return any(longer[:i] + longer[i + 1:] == shorter for i in range(len(longer)))


def _debug_requested(args: list[str]) -> bool:
    for arg in args:
        if arg == "--debug":
            return True
        if arg not in _ROOT_EXITING:
            return False
    return False


def _report(message: str) -> None:
    """``pepperpy: <message>`` on stderr, on one line (a multi-line message has its whitespace collapsed)."""
    click.echo(f"pepperpy: {' '.join(message.split())}", err=True)


def _print_traceback(exc: BaseException) -> None:
    import traceback

    traceback.print_exception(exc)


def _show_warning(message: Warning | str, category: type[Warning], *_: object, **__: object) -> None:
    """A warning as one line on stderr, like the command's errors (``--debug`` keeps Python's own format)."""
    click.echo(f"pepperpy: warning: {' '.join(str(message).split())}", err=True)


# click >= 8.2 raises this for a group named without a subcommand; older versions print the help themselves
_NO_ARGS_IS_HELP: type[Exception] | tuple[()] = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``) and return the exit code."""
    args = list(sys.argv[1:] if argv is None else argv)
    debug = _debug_requested(args)
    if not debug:
        warnings.showwarning = _show_warning
    try:
        result = cli.main(route(args), prog_name="pepperpy", standalone_mode=False)
    except _NO_ARGS_IS_HELP as exc:  # a group named alone (`pepperpy keys`): its help, as with --help
        click.echo(exc.ctx.get_help())
        return 0
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
        _report(exc.format_message().rstrip(".") + hint)
        return exc.exit_code
    except click.ClickException as exc:
        if debug:
            _print_traceback(exc)
        _report(exc.format_message())
        return exc.exit_code
    except click.Abort as exc:
        if isinstance(exc.__context__, KeyboardInterrupt):
            return 130
        _report("aborted")
        return 1
    except KeyboardInterrupt:
        return 130
    except PepperPyError as exc:
        if debug:
            _print_traceback(exc)
        _report(str(exc))
        return 1
    except Exception as exc:
        if debug:
            _print_traceback(exc)
            _report(f"{type(exc).__name__}: {exc}")
        else:
            _report(f"{type(exc).__name__}: {exc} (run with --debug for the traceback)")
        return 1
    return result if isinstance(result, int) and not isinstance(result, bool) else 0


__all__ = ["COMMANDS", "ENTRY_POINT_GROUP", "cli", "main", "route"]
