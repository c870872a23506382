"""Hot reload: edit a plugin while the program runs; the next call answers with the new code.

    python examples/hot_reload.py

This writes a tiny plugin folder into a temporary directory, opens it through PepperPy, then
edits the plugin's source as you would in an editor. ``start_hot_reload()`` watches the folders
of plugins marked ``@hot_reloadable_plugin`` and swaps the new class in, without a restart.
"""

import asyncio
import json
import tempfile
import time
from pathlib import Path

from pepperpy import PepperPy
from pepperpy.plugins import register_plugin_path, start_hot_reload, stop_hot_reload

SOURCE = '''
from pepperpy.llm import GenerationResult, LLMProvider
from pepperpy.plugins import hot_reloadable_plugin


@hot_reloadable_plugin
class GreeterProvider(LLMProvider):
    async def generate(self, messages, **options):
        return GenerationResult(content="Hello from VERSION")
'''


async def main() -> None:
    folder = Path(tempfile.mkdtemp()) / "greeter"
    folder.mkdir()
    (folder / "plugin.json").write_text(json.dumps({
        "name": "greeter", "version": "0.1.0", "category": "llm", "provider_name": "greeter",
        "description": "says which version of its code runs", "entry_point": "provider:GreeterProvider",
        "author": "you", "pepperpy_compatibility": ">=0.1.0",
    }))
    (folder / "provider.py").write_text(SOURCE.replace("VERSION", "v1"))
    register_plugin_path(folder)

    async with PepperPy().with_llm("greeter") as pepper:
        reloader = start_hot_reload()
        print("before:", (await pepper.chat.with_user("hi").generate()).content)
        while str(folder.resolve()) not in reloader.watching:  # the watch is live a moment after it starts
            await asyncio.sleep(0.02)
        saved = time.perf_counter()
        (folder / "provider.py").write_text(SOURCE.replace("VERSION", "v2"))  # "save" in an editor
        while (answer := (await pepper.chat.with_user("hi").generate()).content) == "Hello from v1":
            if time.perf_counter() - saved > 10:
                raise SystemExit("the edit was not picked up within 10 s; run with logger.enable('pepperpy') to see why")
            await asyncio.sleep(0.01)
        print("after:", answer, f"({(time.perf_counter() - saved) * 1000:.0f} ms after the save)")
    stop_hot_reload()


if __name__ == "__main__":
    asyncio.run(main())
