"""The ``pepperpy`` command: version, plugins, keys."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import TYPE_CHECKING

from pepperpy._version import __version__
from pepperpy.errors import PepperPyError

if TYPE_CHECKING:
    from pepperpy.plugin_manager import PluginManager


def _list_plugins(manager: PluginManager) -> int:
    print(f"pepperpy {__version__}")
    lines = []
    for info in manager.list_plugins():
        aliases = f" (aliases: {', '.join(info.manifest.aliases)})" if info.manifest.aliases else ""
        source = manager.plugin_source(info)
        origin = f" (from {source})" if source else ""
        description = f"{info.manifest.description}{aliases}{origin}"
        lines.append((info.id, f"  {info.id:<24} {info.manifest.version:<8} {description}"))
    for plugin in manager.entry_point_plugins.values():  # provider classes named by installed distributions
        value = plugin.entry_point.value
        lines.append((plugin.id, f"  {plugin.id:<24} {plugin.version:<8} {value} (from {plugin.source})"))
    for _, line in sorted(lines):
        print(line)
    for hidden in manager.shadowed:
        print(f"  SHADOWED {hidden.id} at {hidden.path} by {hidden.shadowed_by}")
    for shadowed in manager.shadowed_entry_points:
        print(f"  SHADOWED {shadowed.plugin.id} (from {shadowed.plugin.source}) by {shadowed.shadowed_by}")
    for broken in manager.broken:
        print(f"  BROKEN {broken.path}: {broken.problem}")
    for bad in manager.broken_entry_points:
        print(f"  BROKEN entry point {bad.name} = {bad.value!r} (from {bad.source}): {bad.problem}")
    return 0


def _set_key(manager: PluginManager, variable: str) -> int:
    from pepperpy._config import save_key

    value = getpass.getpass(f"{variable}: ") if sys.stdin.isatty() else sys.stdin.readline().strip()
    if not value:
        print("pepperpy: no key given; nothing saved", file=sys.stderr)
        return 1
    print(f"saved {variable} in {save_key(manager.home, variable, value)}")
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pepperpy", description="PepperPy: LLMs, embeddings and RAG as plugins.")
    parser.add_argument("--version", action="version", version=f"pepperpy {__version__}")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser(
        "plugins", help="list the plugins found (and the distribution each installed one comes from), shadowed plugins "
        "and folders or entry points that failed validation"
    )
    keys = commands.add_parser("keys", help="manage API keys saved in ~/.pepperpy/keys.json")
    key_commands = keys.add_subparsers(dest="keys_command", required=True)
    key_commands.add_parser("set", help="save a key read from the terminal or stdin").add_argument("variable")
    return parser


def main(argv: list[str] | None = None) -> int:
    from pepperpy.plugin_manager import PluginManager

    arguments = _parser().parse_args(argv)
    try:
        manager = PluginManager.instance()
        if arguments.command == "keys":
            return _set_key(manager, arguments.variable)
        return _list_plugins(manager)
    except PepperPyError as exc:
        print(f"pepperpy: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
