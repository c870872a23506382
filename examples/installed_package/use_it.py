"""Use plugins that an installed distribution exposes (after `uv pip install ./examples/installed_package`).

pyproject.toml's entry points make `llm/awesome` (a provider class, imported only when asked for)
and `llm/folderly` (a plugin folder inside the package) available to every PepperPy in that environment;
its `pepperpy.hooks` entry point runs around every LLM call, and `pepperpy awesome` is a command it adds.
"""

import asyncio

from pepperpy import PepperPy


async def main() -> None:
    async with PepperPy().with_llm("awesome", greeting="Hello") as pepper:
        result = await pepper.chat.with_user("world").generate()
        print(result.content, f"(seen by {result.metadata['seen_by']})")
    async with PepperPy().with_llm("folderly") as pepper:
        print((await pepper.chat.with_user("quiet").generate()).content)


if __name__ == "__main__":
    asyncio.run(main())
