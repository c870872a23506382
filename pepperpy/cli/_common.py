"""Helpers shared by the ``pepperpy`` command modules: option parsing, tables, the manager, failing."""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from pepperpy.plugin_manager import PluginManager


def parse_key_values(pairs: Iterable[str], what: str = "-o") -> dict[str, Any]:
    """``["a=1", "b=x"]`` -> ``{"a": 1, "b": "x"}``: a value is JSON when it parses as JSON, else the string."""
    parsed: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not key=value (for example {what} temperature=0)", param_hint=what)
        try:
            parsed[key] = json.loads(raw)
        except ValueError:
            parsed[key] = raw
    return parsed


def shorten(text: str, width: int) -> str:
    """``text`` on one line, cut to ``width`` characters with "..." at the end when longer."""
    text = " ".join(text.split())
    return text if len(text) <= width else text[: max(width - 3, 0)].rstrip() + "..."


def print_table(headers: list[str], rows: list[list[str]], max_widths: dict[str, int] | None = None) -> None:
    """A rich table on a terminal, plain aligned columns (one row per line) otherwise.

    ``max_widths`` caps columns by header: their cells are cut with "..." (on a terminal also to fit its width).
    On a terminal the first column is never folded, the others wrap.
    """
    max_widths = max_widths or {}
    if sys.stdout.isatty():
        from rich.console import Console
        from rich.table import Table

        console = Console()
        table = Table(box=None, header_style="bold", pad_edge=False)
        for position, header in enumerate(headers):
            if position == 0:  # the key of each row (an id, a name) is never folded
                table.add_column(header, no_wrap=True)
            elif header in max_widths:  # at most a quarter of the terminal: the other columns keep their room
                width = min(max_widths[header], max(len(header), console.width // 4))
                table.add_column(header, overflow="ellipsis", no_wrap=True, max_width=width)
            else:
                table.add_column(header, overflow="fold")  # wrap long cells (paths) rather than cut them
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    limits = [max_widths.get(h) for h in headers]
    rows = [[cell if limit is None else shorten(cell, limit) for cell, limit in zip(row, limits)] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        widths = [max(w, len(cell)) for w, cell in zip(widths, row)]
    for row in [headers, *rows]:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip())


def manager() -> PluginManager:
    """The process-wide PluginManager (``PluginManager.instance()``)."""
    from pepperpy.plugin_manager import PluginManager

    return PluginManager.instance()


def fail(message: str) -> NoReturn:
    """Stop the command: ``pepperpy: <message>`` on stderr, exit code 1."""
    raise click.ClickException(message)


@contextmanager
def stop_on_error() -> Iterator[None]:
    """A PepperPyError raised inside becomes ``pepperpy: <message>`` and exit code 1 (``fail``)."""
    from pepperpy.errors import PepperPyError

    try:
        yield
    except PepperPyError as exc:
        fail(str(exc))


class LazyGroup(click.Group):
    """A click group whose subcommands are imported only when the command line names them.

    ``lazy`` maps a command name to ``("module:attribute", "one-line help")``; the help text
    lists those lines without importing anything.
    """

    def __init__(self, *args: Any, lazy: dict[str, tuple[str, str]] | None = None, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *self.lazy})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.commands:
            return self.commands[cmd_name]
        if cmd_name in self.lazy:
            return import_command(cmd_name, self.lazy[cmd_name][0], ctx.command_path)
        return None

    def help_line(self, ctx: click.Context, name: str) -> str | None:
        """The help line of ``name`` without importing it (None: not a command of this group)."""
        if name in self.commands:
            return self.commands[name].get_short_help_str(limit=90)
        if name in self.lazy:
            return self.lazy[name][1]
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, self.help_line(ctx, name) or "") for name in self.list_commands(ctx)]
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)


def import_command(name: str, target: str, parent: str = "pepperpy") -> click.Command:
    """Import the click command ``target`` ("module:attribute"); a missing module is a one-line error."""
    module_name, _, attribute = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not (module_name == exc.name or module_name.startswith(exc.name + ".")):
            raise  # a module the command itself imports is missing: a real error, reported as such
        fail(
            f"the command '{parent} {name}' is not available in this installation (its module {module_name} "
            "is missing); upgrade or reinstall pepperpy"
        )
    command = getattr(module, attribute, None)
    if not isinstance(command, click.Command):
        fail(f"the command '{parent} {name}': {target} is not a click command; upgrade or reinstall pepperpy")
    return command


__all__ = ["LazyGroup", "fail", "import_command", "manager", "parse_key_values", "print_table", "shorten", "stop_on_error"]
