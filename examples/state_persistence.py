"""State persistence: a @persistent_plugin counter that continues where the last run stopped.

The plugin is the plugin-system document's example, in examples/plugins/counter/. Its
state lives in <PEPPERPY_HOME>/state/demo/counter.json (PEPPERPY_HOME defaults to
~/.pepperpy): run this script twice and the second run starts at 3.
"""

import asyncio
from pathlib import Path

from pepperpy import PepperPy
from pepperpy.plugins import register_plugin_path


async def main() -> None:
    register_plugin_path(Path(__file__).resolve().parent / "plugins")
    for _ in range(2):  # two instances in a row: the second restores what the first saved
        async with PepperPy().with_plugin("demo", "counter") as pepper:
            counter = pepper.provider("demo")
            await counter.increment()
            print(f"counter: {counter.counter}")
    print(f"saved in {counter.data_path('state', 'demo', 'counter.json')}")


if __name__ == "__main__":
    asyncio.run(main())
