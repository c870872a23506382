"""Shared resources: two providers, one database connection, created once and closed once.

The plugin is the plugin-system document's example, as written there, in
examples/plugins/resources/. `get_resource("database", ...)` creates the connection
on the first request; every provider of the same PluginManager gets the same object,
and it is cleaned up when the last provider holding it closes.
"""

import asyncio
import sys
from pathlib import Path

from loguru import logger

from pepperpy import PepperPy
from pepperpy.plugins import register_plugin_path


async def main() -> None:
    logger.remove()
    logger.add(sys.stdout, format="  log: {message}", filter="pepperpy.loaded_plugins")  # the plugin's self.logger
    logger.enable("pepperpy")
    register_plugin_path(Path(__file__).resolve().parent / "plugins")

    async with PepperPy().with_plugin("demo", "resources") as first:
        print("first provider open")
        async with PepperPy().with_plugin("demo", "resources") as second:
            one, two = first.provider("demo"), second.provider("demo")
            print(f"second provider open; same connection: {one.db is two.db} {two.db}")
        print("second provider closed; the connection stays for the first")
    print("first provider closed")


if __name__ == "__main__":
    asyncio.run(main())
